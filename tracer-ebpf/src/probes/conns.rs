//! Connection lifecycle: accept (server role) and connect (client role) name the fd's role
//! until its first data names the socket; the socket's move to TCP_CLOSE ends it.
//! The tracepoint entry points are here; `probes::kprobes` has the kprobe ones.
use aya_ebpf::{helpers::bpf_probe_read_user, macros::tracepoint, programs::TracePointContext, EbpfContext};
use tracer_common::{FdRole, AF_INET, AF_INET6, CONN_FD_CLOSED, CONN_TCP_CLOSED, ROLE_CLIENT, ROLE_SERVER};

use super::{conn_key, current, sys_arg, sys_ret, tp_args, traced};
use crate::{
    capture::emit_close,
    maps::{ARGS, ARG_ACCEPT, ARG_CONNECT, CONNS, FD_ROLES, FD_SOCK},
};

const EINPROGRESS: i64 = 115;
const TCP_CLOSE: i32 = 7;

#[tracepoint]
pub fn sys_enter_accept(ctx: TracePointContext) -> u32 {
    save(ARG_ACCEPT, &tp_args(&ctx));
    0
}

#[tracepoint]
pub fn sys_enter_accept4(ctx: TracePointContext) -> u32 {
    save(ARG_ACCEPT, &tp_args(&ctx));
    0
}

#[tracepoint]
pub fn sys_exit_accept(ctx: TracePointContext) -> u32 {
    finish(ARG_ACCEPT, sys_ret(&ctx));
    0
}

#[tracepoint]
pub fn sys_exit_accept4(ctx: TracePointContext) -> u32 {
    finish(ARG_ACCEPT, sys_ret(&ctx));
    0
}

#[tracepoint]
pub fn sys_enter_connect(ctx: TracePointContext) -> u32 {
    connect_enter(&tp_args(&ctx));
    0
}

#[tracepoint]
pub fn sys_exit_connect(ctx: TracePointContext) -> u32 {
    finish(ARG_CONNECT, sys_ret(&ctx));
    0
}

/// Closing an fd forgets its pending role (the number will be reused); the connection
/// itself lives until its socket closes, whatever other fds still point at it.
#[tracepoint]
pub fn sys_enter_close(ctx: TracePointContext) -> u32 {
    close_enter(sys_arg(&ctx, 0) as u32);
    0
}

/// `sock/inet_sock_set_state`: skaddr @8, newstate @20. Runs in any context (softirq too).
#[tracepoint]
pub fn inet_sock_set_state(ctx: TracePointContext) -> u32 {
    let p = ctx.as_ptr() as *const u8;
    // SAFETY: offsets from the tracepoint's format file, stable since 4.16.
    let (sk, newstate) = unsafe { (*(p.add(8) as *const u64), *(p.add(20) as *const i32)) };
    if newstate != TCP_CLOSE {
        return 0;
    }
    let Some(conn) = CONNS.get_ptr_mut(&sk) else {
        return 0;
    };
    // SAFETY: map value pointer, used at once.
    let conn = unsafe { &mut *conn };
    if conn.emitted != 0 && conn.state & CONN_TCP_CLOSED == 0 {
        emit_close(&ctx, conn, sk);
    }
    // The socket is closed, but what it received may still be read through its fd (a
    // client that half-closed reads the answer after the server's FIN): the entry stays
    // until the fd closes, so those reads keep the connection's identity and positions.
    if conn.state & CONN_FD_CLOSED != 0 || conn.fd == u32::MAX {
        let _ = CONNS.remove(&sk);
    } else {
        conn.state |= CONN_TCP_CLOSED;
    }
    0
}

#[inline(always)]
pub fn connect_enter(a: &[u64; 4]) {
    let addr = a[1] as *const u16;
    // Only inet sockets: unix-socket connects are not ours.
    // SAFETY: a user pointer read through the helper, which checks it.
    match unsafe { bpf_probe_read_user(addr) } {
        Ok(AF_INET) | Ok(AF_INET6) => save(ARG_CONNECT, a),
        _ => {}
    }
}

#[inline(always)]
pub fn close_enter(fd: u32) {
    let (_, tgid, _) = current();
    let key = conn_key(tgid, fd);
    let _ = FD_ROLES.remove(&key);
    // SAFETY: copied out at once.
    let Some(sk) = (unsafe { FD_SOCK.get(&key) }).copied() else {
        return;
    };
    let _ = FD_SOCK.remove(&key);
    let Some(conn) = CONNS.get_ptr_mut(&sk) else {
        return;
    };
    // SAFETY: map value pointer, used at once.
    let conn = unsafe { &mut *conn };
    if conn.pid != tgid || conn.fd != fd {
        return;
    }
    if conn.state & CONN_TCP_CLOSED != 0 {
        let _ = CONNS.remove(&sk);
    } else {
        conn.state |= CONN_FD_CLOSED;
    }
}

/// accept/connect enter: `a` holds the first four syscall arguments (fd, sockaddr).
#[inline(always)]
pub fn save(kind: u32, a: &[u64; 4]) {
    super::data::save(kind, a, 1, 2);
}

/// accept/connect exit with the syscall's return value.
#[inline(always)]
pub fn finish(kind: u32, ret: i64) {
    let (id, tgid, _) = current();
    // SAFETY: copied out at once.
    let saved = (unsafe { ARGS.get(&id) }).copied();
    if saved.is_some() {
        let _ = ARGS.remove(&id);
    }
    let (fd, role) = match (kind, saved) {
        // accept's result is the new fd: the exit needs nothing from the enter, which a
        // server already blocked in accept when tracing began never passed (every idle
        // server). Without this, its first connection would depend on adoption, which
        // needs four bytes in the first read.
        (ARG_ACCEPT, _) if ret >= 0 => (ret as u32, ROLE_SERVER),
        (ARG_CONNECT, Some(args)) if args.kind == ARG_CONNECT && (ret == 0 || ret == -EINPROGRESS) => {
            (args.fd, ROLE_CLIENT)
        }
        _ => return,
    };
    if !traced(tgid) {
        return;
    }
    let _ = FD_ROLES.insert(&conn_key(tgid, fd), &FdRole { role, _pad: [0; 7] }, 0);
}
