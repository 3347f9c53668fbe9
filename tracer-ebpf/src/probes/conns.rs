//! Connection lifecycle: accept (server role), connect (client role), close.
use aya_ebpf::{
    helpers::{bpf_ktime_get_ns, bpf_probe_read_user},
    macros::tracepoint,
    programs::TracePointContext,
};
use tracer_common::{ConnInfo, AF_INET, AF_INET6, PROTO_UNKNOWN, ROLE_CLIENT, ROLE_SERVER};

use super::{conn_key, current, sys_arg, sys_ret, traced};
use crate::{
    capture::emit_close,
    maps::{SyscallArgs, ARGS, ARG_ACCEPT, ARG_CONNECT, CONNS},
};

const EINPROGRESS: i64 = 115;

#[tracepoint]
pub fn sys_enter_accept(ctx: TracePointContext) -> u32 {
    save(&ctx, ARG_ACCEPT);
    0
}

#[tracepoint]
pub fn sys_enter_accept4(ctx: TracePointContext) -> u32 {
    save(&ctx, ARG_ACCEPT);
    0
}

#[tracepoint]
pub fn sys_exit_accept(ctx: TracePointContext) -> u32 {
    finish(&ctx, ARG_ACCEPT);
    0
}

#[tracepoint]
pub fn sys_exit_accept4(ctx: TracePointContext) -> u32 {
    finish(&ctx, ARG_ACCEPT);
    0
}

#[tracepoint]
pub fn sys_enter_connect(ctx: TracePointContext) -> u32 {
    let addr = sys_arg(&ctx, 1) as *const u16;
    // Only inet sockets: unix-socket connects are not ours.
    // SAFETY: a user pointer read through the helper, which checks it.
    match unsafe { bpf_probe_read_user(addr) } {
        Ok(AF_INET) | Ok(AF_INET6) => save(&ctx, ARG_CONNECT),
        _ => {}
    }
    0
}

#[tracepoint]
pub fn sys_exit_connect(ctx: TracePointContext) -> u32 {
    finish(&ctx, ARG_CONNECT);
    0
}

#[tracepoint]
pub fn sys_enter_close(ctx: TracePointContext) -> u32 {
    let (_, tgid, tid) = current();
    let key = conn_key(tgid, sys_arg(&ctx, 0) as u32);
    // SAFETY: copied out at once; a concurrent update only makes the close event stale.
    let Some(conn) = (unsafe { CONNS.get(&key) }).copied() else {
        return 0;
    };
    if conn.emitted != 0 {
        emit_close(&ctx, &conn, tgid, tid, key as u32);
    }
    let _ = CONNS.remove(&key);
    0
}

#[inline(always)]
fn save(ctx: &TracePointContext, kind: u32) {
    let (id, tgid, _) = current();
    if !traced(tgid) {
        return;
    }
    let args = SyscallArgs {
        kind,
        fd: sys_arg(ctx, 0) as u32,
        ptr: sys_arg(ctx, 1),
        count: 0,
        sk: 0,
        peek: 0,
        _pad: 0,
        // SAFETY: helper without preconditions.
        enter_ns: unsafe { aya_ebpf::helpers::bpf_ktime_get_ns() },
    };
    let _ = ARGS.insert(&id, &args, 0);
}

#[inline(always)]
fn finish(ctx: &TracePointContext, kind: u32) {
    let (id, tgid, _) = current();
    // SAFETY: copied out at once.
    let Some(args) = (unsafe { ARGS.get(&id) }).copied() else {
        return;
    };
    let _ = ARGS.remove(&id);
    if args.kind != kind {
        return;
    }
    let ret = sys_ret(ctx);
    let (fd, role) = match kind {
        ARG_ACCEPT if ret >= 0 => (ret as u32, ROLE_SERVER),
        ARG_CONNECT if ret == 0 || ret == -EINPROGRESS => (args.fd, ROLE_CLIENT),
        _ => return,
    };
    let conn = ConnInfo {
        // SAFETY: helper without preconditions.
        conn_id: unsafe { bpf_ktime_get_ns() },
        pos: [0, 0],
        family: 0,
        lport: 0,
        rport: 0,
        role,
        proto: PROTO_UNKNOWN,
        addr_known: 0,
        emitted: 0,
        flags: 0,
        _pad: 0,
        laddr: [0; 16],
        raddr: [0; 16],
    };
    if CONNS.insert(&conn_key(tgid, fd), &conn, 0).is_err() {
        crate::maps::count(tracer_common::counters::CONN_TABLE_FULL, 1);
    }
}
