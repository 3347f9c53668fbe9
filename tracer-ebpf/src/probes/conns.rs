//! Connection lifecycle, from the socket's TCP states: a connection enters the table when
//! it is established (its role from the state it came from: SYN_SENT, it connected;
//! SYN_RECV, it was accepted) and leaves when both its socket is closed and its fd.
//! The tracepoint entry points are here; `probes::kprobes` has the kprobe ones.
use aya_ebpf::{macros::tracepoint, programs::TracePointContext, EbpfContext};
use tracer_common::{CONN_FD_CLOSED, CONN_TCP_CLOSED, PROTO_UNKNOWN, ROLE_CLIENT, ROLE_SERVER};

use super::{conn_key, current, sys_arg, IPPROTO_TCP};
use crate::{
    capture::{emit_close, insert_conn},
    maps::{CONNS, FD_SOCK},
};

const TCP_ESTABLISHED: i32 = 1;
const TCP_SYN_SENT: i32 = 2;
const TCP_SYN_RECV: i32 = 3;
const TCP_CLOSE: i32 = 7;

/// Closing the fd a connection was first used through: the entry goes once its socket is
/// closed too (other fds may still point at it; they keep it alive until then).
#[tracepoint]
pub fn sys_enter_close(ctx: TracePointContext) -> u32 {
    close_enter(sys_arg(&ctx, 0) as u32);
    0
}

/// `sock/inet_sock_set_state`: skaddr @8, oldstate @16, newstate @20, protocol @30. Runs in
/// any context (the handshake's end in softirq).
#[tracepoint]
pub fn inet_sock_set_state(ctx: TracePointContext) -> u32 {
    let p = ctx.as_ptr() as *const u8;
    // SAFETY: offsets from the tracepoint's format file, stable since 4.16.
    let (sk, oldstate, newstate, protocol) =
        unsafe { (*(p.add(8) as *const u64), *(p.add(16) as *const i32), *(p.add(20) as *const i32), *(p.add(30) as *const u16)) };
    if protocol != IPPROTO_TCP {
        return 0;
    }
    match (oldstate, newstate) {
        (TCP_SYN_SENT, TCP_ESTABLISHED) => established(sk, ROLE_CLIENT),
        (TCP_SYN_RECV, TCP_ESTABLISHED) => established(sk, ROLE_SERVER),
        (_, TCP_CLOSE) => closed(&ctx, sk),
        _ => {}
    }
    0
}

/// A new connection on `sk`. An entry still there belongs to an earlier connection whose
/// socket address is reused (its fd was closed without close(2): at exit, by dup2), unless
/// that entry is live: a TCP Fast Open client's data went out before the handshake ended,
/// and was adopted then.
#[inline(always)]
fn established(sk: u64, role: u8) {
    // SAFETY: read at once.
    if let Some(c) = unsafe { CONNS.get(&sk) } {
        if c.state & CONN_TCP_CLOSED == 0 {
            return;
        }
    }
    // Process and fd are not known here (softirq); the first data names them.
    let _ = insert_conn(sk, role, PROTO_UNKNOWN, 0, 0, u32::MAX);
}

#[inline(always)]
fn closed<C: EbpfContext>(ctx: &C, sk: u64) {
    let Some(conn) = CONNS.get_ptr_mut(&sk) else {
        return;
    };
    // SAFETY: map value pointer, used at once.
    let conn = unsafe { &mut *conn };
    if conn.emitted != 0 && conn.state & CONN_TCP_CLOSED == 0 {
        emit_close(ctx, conn, sk);
    }
    // The socket is closed, but what it received may still be read through its fd (a
    // client that half-closed reads the answer after the server's FIN): the entry stays
    // until the fd closes, so those reads keep the connection's identity and positions.
    if conn.state & CONN_FD_CLOSED != 0 || conn.fd == u32::MAX {
        let _ = CONNS.remove(&sk);
    } else {
        conn.state |= CONN_TCP_CLOSED;
    }
}

#[inline(always)]
pub fn close_enter(fd: u32) {
    let (_, tgid, _) = current();
    let key = conn_key(tgid, fd);
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
