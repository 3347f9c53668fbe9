//! `sock/sock_{send,recv}_length` fire inside the syscall, in the caller's context, with the
//! socket: they tell the exit probe that the fd is an inet TCP socket, and which one.
//! Below 6.5 these tracepoints do not exist; `probes::kprobes` marks the socket from
//! `tcp_sendmsg`/`tcp_recvmsg`/`tcp_sendpage` instead, through `mark_socket`.
use aya_ebpf::{macros::tracepoint, programs::TracePointContext, EbpfContext};

use tracer_common::{DIR_EGRESS, DIR_INGRESS};

use super::{current, current_syscall, traced};
use crate::{
    capture::on_payload,
    config::FAST_PATH,
    maps::{SyscallArgs, ARGS, ARG_BUF, ARG_FROM_REGS, ARG_IOV, ARG_MSG, ARG_SENDFILE},
};

/// The `protocol` of the `sock_*_length` records (a u16 there).
const IPPROTO_TCP: u16 = 6;
pub const MSG_PEEK: u32 = 2;
pub const MSG_TRUNC: u32 = 0x20;

#[tracepoint]
pub fn sock_send_length(ctx: TracePointContext) -> u32 {
    on_length(&ctx, false);
    0
}

#[tracepoint]
pub fn sock_recv_length(ctx: TracePointContext) -> u32 {
    on_length(&ctx, true);
    0
}

#[inline(always)]
fn on_length(ctx: &TracePointContext, recv: bool) {
    let p = ctx.as_ptr() as *const u8;
    // SAFETY: field offsets from the tracepoint's format file (stable since 6.5):
    // sk @8, family @16, protocol @18, ret @20, flags @24.
    let (sk, family, protocol, flags) = unsafe {
        (
            *(p.add(8) as *const u64),
            *(p.add(16) as *const u16),
            *(p.add(18) as *const u16),
            *(p.add(24) as *const u32),
        )
    };
    if protocol != IPPROTO_TCP {
        return;
    }
    let flags = if recv { flags } else { 0 };
    if FAST_PATH.load() != 0 {
        // SAFETY: ret @20 per the format file.
        let ret = unsafe { *(p.add(20) as *const i32) };
        capture_now(ctx, sk, family, recv, flags, ret);
    } else {
        mark_socket(sk, family, flags);
    }
}

/// The fast path: the bytes just moved, the buffer is named by the syscall's arguments.
/// Every byte through the socket is counted; bytes of syscalls we cannot read (sendfile,
/// sendmmsg, io_uring workers) are counted without being copied, never guessed at.
#[inline(always)]
fn capture_now(ctx: &TracePointContext, sk: u64, family: u16, recv: bool, flags: u32, ret: i32) {
    if ret <= 0 || flags & MSG_PEEK != 0 || (family != tracer_common::AF_INET && family != tracer_common::AF_INET6) {
        return;
    }
    let (_, tgid, tid) = current();
    if !traced(tgid) {
        return;
    }
    let Some((nr, a)) = current_syscall() else {
        return;
    };
    // x86_64 numbers: read, write, recvfrom, sendto | readv, writev | recvmsg, sendmsg.
    let kind = match nr {
        0 | 1 | 44 | 45 => ARG_BUF,
        19 | 20 => ARG_IOV,
        46 | 47 => ARG_MSG,
        _ => ARG_SENDFILE,
    };
    let known = kind != ARG_SENDFILE || nr == 40;
    // recv(MSG_TRUNC) drops the bytes without copying them: counted, not read (the buffer
    // holds whatever it held before).
    let kind = if flags & MSG_TRUNC != 0 { ARG_SENDFILE } else { kind };
    let args = SyscallArgs {
        kind,
        // An unknown syscall's first register is no fd: name no fd for the connection.
        fd: if known { a[0] as u32 } else { u32::MAX },
        ptr: a[1],
        count: a[2],
        sk,
        recv_flags: 0,
        _pad: 0,
        // Unknown: the syscall entered before this point; the event is stamped now.
        enter_ns: 0,
    };
    on_payload(ctx, &args, if recv { DIR_INGRESS } else { DIR_EGRESS }, ret as u64, tgid, tid);
}

/// Tells the pending syscall of this thread that its fd is the inet socket `sk`, and the
/// recv flags that change what moved (0 for a send).
#[inline(always)]
pub fn mark_socket(sk: u64, family: u16, flags: u32) {
    if family != tracer_common::AF_INET && family != tracer_common::AF_INET6 {
        return;
    }
    let (id, tgid, _) = current();
    let args = match ARGS.get_ptr_mut(id) {
        Some(a) => a,
        None => {
            // The syscall began before the probes were attached (a server blocked in
            // recv on an idle keep-alive connection): its exit probe recovers the rest.
            if !traced(tgid) {
                return;
            }
            let blank = SyscallArgs { kind: ARG_FROM_REGS, fd: 0, ptr: 0, count: 0, sk: 0, recv_flags: 0, _pad: 0, enter_ns: 0 };
            if ARGS.insert(&id, &blank, 0).is_err() {
                return;
            }
            match ARGS.get_ptr_mut(id) {
                Some(a) => a,
                None => return,
            }
        }
    };
    // SAFETY: the entry belongs to this thread, which is inside the syscall.
    unsafe {
        (*args).sk = sk;
        (*args).recv_flags = flags & (MSG_PEEK | MSG_TRUNC);
    }
}
