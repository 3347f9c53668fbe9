//! The syscall probes as kprobes/kretprobes on the syscall functions (`__x64_sys_*`), and
//! socket identity from the TCP functions, for kernels without the tracepoints (the
//! `sock_*_length` ones appeared in 6.5). Only the entry points differ: the logic is the
//! one the tracepoints use (`data`, `conns`, `sock`).
//!
//! A `__x64_sys_*` function takes the `struct pt_regs *` the kernel saved at syscall
//! entry: the syscall's arguments are read from there. A kretprobe sees only calls that
//! entered after it was attached, so a syscall in flight at start is not recovered.
use aya_ebpf::{
    helpers::bpf_probe_read_kernel,
    macros::{kprobe, kretprobe},
    programs::{ProbeContext, RetProbeContext},
};
use tracer_common::{DIR_EGRESS, DIR_INGRESS};

use super::{
    data::{self, Recover},
    sock,
    user_args,
};
use crate::maps::{ARG_BUF, ARG_IOV, ARG_MSG, ARG_SENDFILE};

/// The syscall's first four arguments, from the user registers the wrapper receives.
#[inline(always)]
fn sys_args(ctx: &ProbeContext) -> Option<[u64; 4]> {
    let regs: u64 = ctx.arg(0)?;
    user_args(regs as *const u8)
}

#[inline(always)]
fn sys_ret(ctx: &RetProbeContext) -> i64 {
    ctx.ret::<i64>()
}

macro_rules! enter {
    ($name:ident, $kind:expr, $ptr_arg:expr, $count_arg:expr) => {
        #[kprobe]
        pub fn $name(ctx: ProbeContext) -> u32 {
            if let Some(a) = sys_args(&ctx) {
                data::save($kind, &a, $ptr_arg, $count_arg);
            }
            0
        }
    };
}

macro_rules! exit {
    ($name:ident, $dir:expr, $kind:expr, $count_arg:expr) => {
        #[kretprobe]
        pub fn $name(ctx: RetProbeContext) -> u32 {
            data::finish(&ctx, sys_ret(&ctx), $dir, $kind, $count_arg, Recover::No);
            0
        }
    };
}

// Program names: `kprobe_<syscall>` on `__x64_sys_<syscall>`, `kretprobe_<syscall>` on its
// return. Arguments as in `data`: (fd, buf, count) / (fd, iov, iovcnt) / (fd, msghdr, flags).
enter!(kprobe_read, ARG_BUF, 1, 2);
enter!(kprobe_recvfrom, ARG_BUF, 1, 2);
enter!(kprobe_readv, ARG_IOV, 1, 2);
enter!(kprobe_recvmsg, ARG_MSG, 1, 2);
enter!(kprobe_write, ARG_BUF, 1, 2);
enter!(kprobe_sendto, ARG_BUF, 1, 2);
enter!(kprobe_writev, ARG_IOV, 1, 2);
enter!(kprobe_sendmsg, ARG_MSG, 1, 2);
enter!(kprobe_sendfile64, ARG_SENDFILE, 1, 3);

exit!(kretprobe_read, DIR_INGRESS, ARG_BUF, 2);
exit!(kretprobe_recvfrom, DIR_INGRESS, ARG_BUF, 2);
exit!(kretprobe_readv, DIR_INGRESS, ARG_IOV, 2);
exit!(kretprobe_recvmsg, DIR_INGRESS, ARG_MSG, 2);
exit!(kretprobe_write, DIR_EGRESS, ARG_BUF, 2);
exit!(kretprobe_sendto, DIR_EGRESS, ARG_BUF, 2);
exit!(kretprobe_writev, DIR_EGRESS, ARG_IOV, 2);
exit!(kretprobe_sendmsg, DIR_EGRESS, ARG_MSG, 2);
exit!(kretprobe_sendfile64, DIR_EGRESS, ARG_SENDFILE, 3);

/// `tcp_sendmsg(struct sock *sk, struct msghdr *msg, size_t size)`: write, send*, and on
/// 6.5+ sendfile (MSG_SPLICE_PAGES).
#[kprobe]
pub fn kprobe_tcp_sendmsg(ctx: ProbeContext) -> u32 {
    on_tcp(&ctx, false);
    0
}

/// `tcp_recvmsg(struct sock *sk, struct msghdr *msg, size_t len, int flags, int *addr_len)`
/// (the 5.19+ signature; before, `nonblock` came before `flags`).
#[kprobe]
pub fn kprobe_tcp_recvmsg(ctx: ProbeContext) -> u32 {
    on_tcp(&ctx, true);
    0
}

/// `tcp_sendpage(struct sock *sk, struct page *page, int offset, size_t size, int flags)`:
/// sendfile to a TCP socket before 6.5.
#[kprobe]
pub fn kprobe_tcp_sendpage(ctx: ProbeContext) -> u32 {
    on_tcp(&ctx, false);
    0
}

#[inline(always)]
fn on_tcp(ctx: &ProbeContext, recv: bool) {
    let Some(sk) = ctx.arg::<u64>(0) else {
        return;
    };
    // SAFETY: kernel read through the checking helper; skc_family @16 of struct sock_common.
    let Ok(family) = (unsafe { bpf_probe_read_kernel((sk as *const u8).wrapping_add(16) as *const u16) }) else {
        return;
    };
    let flags = if recv { ctx.arg::<u64>(3).unwrap_or(0) as u32 } else { 0 };
    sock::mark_socket(sk, family, flags);
}
