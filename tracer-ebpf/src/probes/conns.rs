//! Connection lifecycle, from the socket's TCP states: a connection enters the table when
//! it is established (its role from the state it came from: SYN_SENT, it connected;
//! SYN_RECV, it was accepted), its Close event goes out when it reaches TCP_CLOSE, and it
//! leaves the table when the kernel destroys the socket: after TCP_CLOSE and once no fd
//! refers to it. No probe on close(2): any syscall tracepoint attached sends every syscall
//! of the host through the kernel's slow path (about 60 ns more each, measured here).
//!
//! Both are raw tracepoints (4.17+): the kernel hands over the arguments as they are, where
//! a tracepoint first builds its record (addresses, for `tcp_destroy_sock` a socket cookie)
//! on every connection of the host. And a raw tracepoint's program is skipped only when it
//! is itself running on that CPU, not whenever any tracing program is (a socket destroyed
//! in softirq while a payload probe runs): fewer missed ends.
use aya_ebpf::{macros::raw_tracepoint, programs::RawTracePointContext, EbpfContext};
use tracer_common::{counters, ConnInfo, CONN_CLOSE_SENT, CONN_TCP_CLOSED, FLAG_PREEXISTING, PROTO_UNKNOWN, ROLE_CLIENT, ROLE_SERVER};

use crate::{
    capture::{emit_close, insert_conn, start_seq, unseen_at_end},
    maps::{armed, count, CONNS},
};

const TCP_ESTABLISHED: i32 = 1;
const TCP_SYN_SENT: i32 = 2;
const TCP_SYN_RECV: i32 = 3;
const TCP_CLOSE: i32 = 7;

/// `inet_sock_set_state(const struct sock *sk, const int oldstate, const int newstate)`.
/// Runs in any context (the handshake's end in softirq). No protocol test: SYN_SENT and
/// SYN_RECV are states of TCP sockets only (and of an MPTCP socket, whose entry then
/// carries nothing: its bytes are not TCP's to the payload probes), and a close only
/// touches sockets already in the table.
#[raw_tracepoint(tracepoint = "inet_sock_set_state")]
pub fn inet_sock_set_state(ctx: RawTracePointContext) -> u32 {
    let sk: u64 = ctx.arg(0);
    let oldstate = ctx.arg::<u64>(1) as i32;
    let newstate = ctx.arg::<u64>(2) as i32;
    match (oldstate, newstate) {
        (TCP_SYN_SENT, TCP_ESTABLISHED) => established(sk, ROLE_CLIENT),
        (TCP_SYN_RECV, TCP_ESTABLISHED) => established(sk, ROLE_SERVER),
        (_, TCP_CLOSE) => closed(&ctx, sk),
        _ => {}
    }
    0
}

/// A new connection on `sk`. An entry already there is kept only when it was adopted from
/// this socket's first bytes: a TCP Fast Open client's data goes out before the handshake
/// ends. Any other is stale, an earlier connection on the same socket memory whose end the
/// kernel side missed (a program was already running on that CPU when the socket was
/// destroyed: the kernel then skips ours): it is replaced, never continued.
#[inline(always)]
fn established(sk: u64, role: u8) {
    if !armed() {
        return;
    }
    // SAFETY: read at once.
    if let Some(c) = unsafe { CONNS.get(&sk) } {
        if c.state & CONN_TCP_CLOSED == 0 && c.flags as u32 & FLAG_PREEXISTING != 0 {
            return;
        }
    }
    // Process and fd are not known here (softirq); the first data names them.
    if let Some(conn) = insert_conn(sk, role, PROTO_UNKNOWN, 0, 0, u32::MAX) {
        // SAFETY: map value pointer, used at once.
        start_seq(unsafe { &mut *conn }, sk);
    }
}

/// The connection reached TCP_CLOSE: its Close event. What it received may still be read
/// through an fd (a client that half-closed reads the answer after the server's FIN): the
/// entry stays until the socket is destroyed, so those reads keep the connection's
/// identity and positions.
#[inline(always)]
fn closed<C: EbpfContext>(ctx: &C, sk: u64) {
    let Some(conn) = CONNS.get_ptr_mut(&sk) else {
        return;
    };
    // SAFETY: map value pointer, used at once.
    let conn = unsafe { &mut *conn };
    if conn.state & CONN_TCP_CLOSED == 0 {
        send_close(ctx, conn, sk);
    }
    conn.state |= CONN_TCP_CLOSED;
}

/// The Close event of a connection that sent anything, once: marked sent only when it
/// went into the buffer, so the socket's destruction tries again after a full buffer.
/// False when it could not go.
#[inline(always)]
fn send_close<C: EbpfContext>(ctx: &C, conn: &mut ConnInfo, sk: u64) -> bool {
    if conn.emitted == 0 || conn.state & CONN_CLOSE_SENT != 0 {
        return true;
    }
    if !emit_close(ctx, conn, sk) {
        return false;
    }
    conn.state |= CONN_CLOSE_SENT;
    true
}

/// `tcp_destroy_sock(struct sock *sk)` (4.16+). The socket is closed and no fd refers to it
/// any more (the last close(2), or the process's exit); its memory may be reused by the
/// next socket. Runs in process context or softirq.
#[raw_tracepoint(tracepoint = "tcp_destroy_sock")]
pub fn tcp_destroy_sock(ctx: RawTracePointContext) -> u32 {
    let sk: u64 = ctx.arg(0);
    if let Some(conn) = CONNS.get_ptr_mut(&sk) {
        // SAFETY: map value pointer, used at once.
        let conn = unsafe { &mut *conn };
        // Bytes spliced out after the last traced read: the stream's end moved past them,
        // and a Close already sent goes again with that end, for userspace to see the gap.
        // Not looked for at TCP_CLOSE: a read may still be under way then (one whose lock
        // release handles the peer's FIN, before its own probe has counted its bytes).
        if unseen_at_end(conn, sk) {
            conn.state &= !CONN_CLOSE_SENT;
        }
        // Its TCP_CLOSE event was missed (this program was running on that CPU already,
        // and the kernel does not nest it), or found the buffer full: close it now. A
        // close is counted lost only here, at its last chance.
        if !send_close(&ctx, conn, sk) {
            count(counters::LOST_EVENTS, 1);
        }
        let _ = CONNS.remove(&sk);
    }
    0
}
