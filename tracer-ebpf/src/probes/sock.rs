//! `sock/sock_{send,recv}_length` fire inside the syscall, in the caller's context, with the
//! socket: they tell the exit probe that the fd is an inet TCP socket, and which one.
//! Below 6.5 these tracepoints do not exist; `probes::kprobes` marks the socket from
//! `tcp_sendmsg`/`tcp_recvmsg`/`tcp_sendpage` instead, through `mark_socket`.
use aya_ebpf::{macros::tracepoint, programs::TracePointContext, EbpfContext};

use super::{current, traced};
use crate::maps::{SyscallArgs, ARGS, ARG_FROM_REGS};

const IPPROTO_TCP: u16 = 6;
pub const MSG_PEEK: i32 = 2;

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
            *(p.add(24) as *const i32),
        )
    };
    if protocol != IPPROTO_TCP {
        return;
    }
    mark_socket(sk, family, recv && flags & MSG_PEEK != 0);
}

/// Tells the pending syscall of this thread that its fd is the inet socket `sk`.
#[inline(always)]
pub fn mark_socket(sk: u64, family: u16, peek: bool) {
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
            let blank = SyscallArgs { kind: ARG_FROM_REGS, fd: 0, ptr: 0, count: 0, sk: 0, peek: 0, _pad: 0, enter_ns: 0 };
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
        if peek {
            (*args).peek = 1;
        }
    }
}
