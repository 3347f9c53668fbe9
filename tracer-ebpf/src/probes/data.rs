//! Payload syscalls: enter saves the arguments; exit, once the byte count is known,
//! copies the payload of inet TCP sockets (marked by `probes::sock`) into an event.
//! The tracepoint entry points are here; `probes::kprobes` has the kprobe ones.
use aya_ebpf::{macros::tracepoint, programs::TracePointContext, EbpfContext};
use tracer_common::{DIR_EGRESS, DIR_INGRESS};

use super::{
    current, current_syscall,
    sock::{MSG_PEEK, MSG_TRUNC},
    sys_ret, tp_args, traced,
};
use crate::{
    capture::on_payload,
    maps::{SyscallArgs, ARGS, ARG_BUF, ARG_FROM_REGS, ARG_IOV, ARG_MSG, ARG_SENDFILE},
};

macro_rules! enter {
    ($name:ident, $kind:expr, $ptr_arg:expr, $count_arg:expr) => {
        #[tracepoint]
        pub fn $name(ctx: TracePointContext) -> u32 {
            save($kind, &tp_args(&ctx), $ptr_arg, $count_arg);
            0
        }
    };
}

macro_rules! exit {
    ($name:ident, $dir:expr, $kind:expr, $count_arg:expr) => {
        #[tracepoint]
        pub fn $name(ctx: TracePointContext) -> u32 {
            finish(&ctx, sys_ret(&ctx), $dir, $kind, $count_arg, Recover::FromRegs);
            0
        }
    };
}

// (fd, buf, count) / (fd, iov, iovcnt) / (fd, msghdr, flags)
enter!(sys_enter_read, ARG_BUF, 1, 2);
enter!(sys_enter_recvfrom, ARG_BUF, 1, 2);
enter!(sys_enter_readv, ARG_IOV, 1, 2);
enter!(sys_enter_recvmsg, ARG_MSG, 1, 2);
enter!(sys_enter_write, ARG_BUF, 1, 2);
enter!(sys_enter_sendto, ARG_BUF, 1, 2);
enter!(sys_enter_writev, ARG_IOV, 1, 2);
enter!(sys_enter_sendmsg, ARG_MSG, 1, 2);
// sendfile64(out_fd, in_fd, offset, count): the bytes never pass through user memory.
enter!(sys_enter_sendfile64, ARG_SENDFILE, 1, 3);

exit!(sys_exit_read, DIR_INGRESS, ARG_BUF, 2);
exit!(sys_exit_recvfrom, DIR_INGRESS, ARG_BUF, 2);
exit!(sys_exit_readv, DIR_INGRESS, ARG_IOV, 2);
exit!(sys_exit_recvmsg, DIR_INGRESS, ARG_MSG, 2);
exit!(sys_exit_write, DIR_EGRESS, ARG_BUF, 2);
exit!(sys_exit_sendto, DIR_EGRESS, ARG_BUF, 2);
exit!(sys_exit_writev, DIR_EGRESS, ARG_IOV, 2);
exit!(sys_exit_sendmsg, DIR_EGRESS, ARG_MSG, 2);
exit!(sys_exit_sendfile64, DIR_EGRESS, ARG_SENDFILE, 3);

/// Whether a syscall that entered before its exit probe was attached can be recovered at
/// exit. Only the exit tracepoints see such syscalls (a kretprobe misses calls that entered
/// before it was attached), and only they need `bpf_task_pt_regs` (5.15) and kernel BTF.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Recover {
    FromRegs,
    No,
}

/// Syscall enter: `a` holds the first four arguments; `a[0]` is the fd.
#[inline(always)]
pub fn save(kind: u32, a: &[u64; 4], ptr_arg: usize, count_arg: usize) {
    let (id, tgid, _) = current();
    if !traced(tgid) {
        return;
    }
    let args = SyscallArgs {
        kind,
        fd: a[0] as u32,
        ptr: a[ptr_arg & 3],
        count: a[count_arg & 3],
        sk: 0,
        recv_flags: 0,
        _pad: 0,
        // SAFETY: helper without preconditions.
        enter_ns: unsafe { aya_ebpf::helpers::bpf_ktime_get_ns() },
    };
    let _ = ARGS.insert(&id, &args, 0);
}

/// Syscall exit with its return value.
#[inline(always)]
pub fn finish<C: EbpfContext>(ctx: &C, ret: i64, dir: u8, kind: u32, count_arg: usize, recover: Recover) {
    let (id, tgid, tid) = current();
    // SAFETY: copied out at once.
    let Some(mut args) = (unsafe { ARGS.get(&id) }).copied() else {
        return;
    };
    let _ = ARGS.remove(&id);
    if args.kind == ARG_FROM_REGS {
        if recover == Recover::No || args.sk == 0 || !from_regs(&mut args, kind, count_arg) {
            return;
        }
    }
    if ret <= 0 || args.sk == 0 || args.recv_flags & MSG_PEEK != 0 {
        return;
    }
    if args.recv_flags & MSG_TRUNC != 0 {
        // Counted, not read: the buffer holds whatever it held before.
        args.kind = ARG_SENDFILE;
    }
    on_payload(ctx, &args, dir, ret as u64, tgid, tid);
}

/// Arguments of a syscall that entered before tracing began, from the user registers the
/// kernel saved at entry.
#[inline(always)]
fn from_regs(args: &mut SyscallArgs, kind: u32, count_arg: usize) -> bool {
    let Some((_, a)) = current_syscall() else {
        return false;
    };
    args.kind = kind;
    args.fd = a[0] as u32;
    args.ptr = a[1];
    args.count = if count_arg == 2 { a[2] } else { 0 };
    // Its start is unknown; exit time is the best bound for when its bytes moved.
    // SAFETY: helper without preconditions.
    args.enter_ns = unsafe { aya_ebpf::helpers::bpf_ktime_get_ns() };
    true
}
