//! Building events: connection lookup and HTTP detection, addresses from the socket,
//! payload copy into the per-CPU scratch slot, output to the ring or perf buffer.
use core::ffi::c_void;

use aya_ebpf::{
    bindings::{BPF_RB_AVAIL_DATA, BPF_RB_CONS_POS, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP},
    helpers::{
        bpf_ktime_get_ns, bpf_probe_read_kernel, bpf_probe_read_user,
        generated::{
            bpf_get_current_comm as get_comm_raw, bpf_get_smp_processor_id, bpf_loop, bpf_probe_read_user as read_user_raw,
        },
    },
    EbpfContext,
};
use tracer_common::{
    counters, CloseEvent, ConnInfo, DataEvent, EventHeader, CLOSE_ENDS_SIZE, EventKind, AF_INET6, DIR_EGRESS,
    DIR_INGRESS, FLAG_PREEXISTING, FLAG_UNORDERED,
    FLAG_SENDFILE, HEADER_SIZE, LOOP_IOV, MAX_CAPTURE, PROTO_HTTP, PROTO_IGNORED, PROTO_UNKNOWN,
    ROLE_CLIENT, ROLE_SERVER,
};

use crate::{
    config::{
        ATTRIBUTION_ONLY, CFG_COPIED_SEQ_OFF, CFG_IOV_LOOP, CFG_MAX_CAPTURE, CFG_RCV_NXT_OFF, CFG_ULP_OPS_OFF, CFG_WRITE_SEQ_OFF,
        FILTER_PORT_ON,
        USE_RINGBUF,
    },
    maps::{
        count, SyscallArgs, ARG_BUF, ARG_IOV, ARG_MSG, ARG_SENDFILE, CONNS, EVENTS_PERF,
        EVENTS_RB, FILTER_PORTS, SCRATCH, SCRATCH_SEQ, WAKE_CONS,
    },
};

/// What the first bytes of a stream say.
#[derive(PartialEq, Eq, Clone, Copy)]
enum FirstBytes {
    Request,
    Response,
    Other,
    /// No byte could be looked at: the first FIRST_IOVS iovecs are empty (the bytes are
    /// in a later one), or the buffer is unreadable.
    Unseen,
}

#[inline(always)]
pub fn on_payload<C: EbpfContext>(ctx: &C, args: &SyscallArgs, dir: u8, ret: u64, tgid: u32, tid: u32) {
    let sk = args.sk;
    let conn = match CONNS.get_ptr_mut(&sk) {
        Some(c) => c,
        None => match adopt(args, dir, ret, sk, tgid) {
            Some(c) => c,
            None => return,
        },
    };
    // SAFETY: map value pointer. Concurrent users of one socket take their positions
    // atomically (`advance`); the other fields they may race on are set once or checked
    // (the send order).
    let conn = unsafe { &mut *conn };
    if conn.fd == u32::MAX && args.fd != u32::MAX {
        // Entered at the handshake (softirq): its first data names process and fd.
        conn.fd = args.fd;
        conn.pid = tgid;
    }
    if conn.addr_known == 0 {
        read_addrs(conn, sk);
        if FILTER_PORT_ON.load() != 0 && !port_selected(conn) {
            conn.proto = PROTO_IGNORED;
        }
    }
    if conn.proto == PROTO_UNKNOWN {
        // First bytes that cannot be read (sendfile, a recv(MSG_TRUNC), io_uring, a
        // writev whose first iovecs are empty): the connection is followed, its bytes
        // counted and copied where they can be; userspace says whether they are HTTP.
        // Ignored for good, the connection would be invisible with nothing counted (a
        // request replayed from a file, then others).
        conn.proto = if args.kind == ARG_SENDFILE || first_bytes(args, ret, true) != FirstBytes::Other {
            PROTO_HTTP
        } else {
            PROTO_IGNORED
        };
    }
    if conn.proto != PROTO_HTTP {
        return;
    }
    if ATTRIBUTION_ONLY.load() != 0 && conn.emitted != 0 {
        return;
    }
    let in_order = if dir == DIR_INGRESS {
        skip_unseen(conn, sk, ret);
        true
    } else {
        sent_in_order(conn, sk, ret)
    };
    let pos = advance(&mut conn.pos[(dir & 1) as usize], ret);
    emit_data(ctx, conn, args, dir, ret, pos, in_order, tgid, tid, sk);
}

/// Whether this send's `ret` bytes are all the socket queued since the last send seen:
/// its `write_seq` moved by exactly that. The probes run after the send has let go of the
/// socket's lock, so two threads sending at once (no lock of their own) may have their
/// probes run in the other order than their bytes went, or the second's bytes already
/// counted in what the first sees: then neither matches, and both are marked. The first
/// send seen on a connection only sets where the check starts.
#[inline(always)]
fn sent_in_order(conn: &mut ConnInfo, sk: u64, ret: u64) -> bool {
    seq_step(&mut conn.wseq_next, &mut conn.wseq_known, sk, CFG_WRITE_SEQ_OFF.load(), ret).map_or(true, |(extra, _)| extra == 0)
}

/// Takes the next `n` positions of a stream; returns the first. Atomic: two threads that
/// send on one socket at once, with no lock of their own, run their probes at once on two
/// CPUs, and a read-then-add gave both the same position (one's bytes then hid the
/// other's, and the requests after it paired with the wrong answers). Written as the
/// instruction itself: Rust's BPF target offers no atomic read-modify-write.
#[inline(always)]
fn advance(pos: &mut u64, n: u64) -> u64 {
    let mut v = n;
    // SAFETY: `pos` is an aligned u64 in a map value; the instruction adds `n` to it and
    // returns the value before (BPF_ATOMIC | BPF_FETCH, kernel 5.12+).
    unsafe {
        core::arch::asm!(
            "{v} = atomic_fetch_add((u64 *)({p} + 0), {v})",
            p = in(reg) pos as *mut u64,
            v = inout(reg) v,
            options(nostack),
        );
    }
    v
}

/// `ConnInfo::seq_known` and `wseq_known`
const SEQ_UNKNOWN: u32 = 0;
const SEQ_KNOWN: u32 = 1;
/// The socket's sequence numbers do not count the bytes its reads or sends move (kTLS).
const SEQ_OFF: u32 = 2;

/// One step of a socket sequence check, after a call that moved `ret` bytes: reads the
/// `tcp_sock` sequence number at `off` and returns how far it moved beyond those bytes
/// since the last call seen (0: by exactly `ret`), and its value now. None when there is
/// nothing to compare: the check is off or its offset unknown, this is the first call
/// seen (it sets where the check starts), or an upper-layer protocol (kTLS, whose numbers
/// count records, not the bytes the process moved) sits on the socket, which turns the
/// check off for good.
#[inline(always)]
fn seq_step(next: &mut u32, known: &mut u32, sk: u64, off: u32, ret: u64) -> Option<(u32, u32)> {
    if *known == SEQ_OFF {
        return None;
    }
    let after = sock_seq(sk, off)?;
    let was_known = *known == SEQ_KNOWN;
    let extra = after.wrapping_sub(*next).wrapping_sub(ret as u32);
    if was_known && extra != 0 && has_ulp(sk) {
        *known = SEQ_OFF;
        return None;
    }
    *next = after;
    *known = SEQ_KNOWN;
    was_known.then_some((extra, after))
}

/// Received bytes that left the socket through no traced call before this read (splice(2)
/// from the socket, zero-copy receive): the socket's `copied_seq` has moved further than
/// the traced reads returned. Their stream positions are skipped, so userspace sees a gap
/// there, rather than take the bytes that follow for the missing ones. Runs after the read
/// of `ret` bytes, with the socket's reads done.
#[inline(always)]
fn skip_unseen(conn: &mut ConnInfo, sk: u64, ret: u64) {
    let Some((mut unseen, after)) = seq_step(&mut conn.seq_next, &mut conn.seq_known, sk, CFG_COPIED_SEQ_OFF.load(), ret)
    else {
        return;
    };
    if unseen == 0 {
        return;
    }
    // The read that reaches the peer's FIN moves copied_seq one further: no byte.
    if fin_read(sk, after) {
        unseen = unseen.wrapping_sub(1);
    }
    // Beyond 2^30 it is no jump forward but readers racing on one socket, whose order is
    // lost anyway: start again from here.
    if unseen < 1 << 30 {
        advance(&mut conn.pos[DIR_INGRESS as usize], unseen as u64);
        count(counters::UNSEEN_BYTES, unseen as u64);
    }
}

/// At the socket's destruction (no fd, so no read, is left): received bytes that left it
/// through no traced read since the last one (spliced out at the end of the stream, where
/// no later read shows them) are skipped as in `skip_unseen`. Whether there were any.
#[inline(always)]
pub fn unseen_at_end(conn: &mut ConnInfo, sk: u64) -> bool {
    // Connections not followed, or followed for their process only (--iface), have their
    // reads checked by no probe: no baseline to compare with.
    if conn.proto != PROTO_HTTP || ATTRIBUTION_ONLY.load() != 0 {
        return false;
    }
    let before = conn.pos[DIR_INGRESS as usize];
    skip_unseen(conn, sk, 0);
    conn.pos[DIR_INGRESS as usize] != before
}

/// The socket's `copied_seq`: the sequence number of the next byte a read will return.
#[inline(always)]
fn copied_seq(sk: u64) -> Option<u32> {
    sock_seq(sk, CFG_COPIED_SEQ_OFF.load())
}

/// The `tcp_sock` sequence number at `off` (from the kernel's BTF, via the loader); None
/// when the offset is unknown (0) or the read fails.
#[inline(always)]
fn sock_seq(sk: u64, off: u32) -> Option<u32> {
    if off == 0 {
        return None;
    }
    // SAFETY: kernel read through the checking helper.
    unsafe { bpf_probe_read_kernel((sk + off as u64) as *const u32) }.ok()
}

/// Whether the peer's FIN came and was read: the socket is in a state that follows one,
/// and every sequence number received (the FIN's included) was read. A reset also moves
/// a socket to TCP_CLOSE: one that comes while bytes leave through splice can hide one of
/// them (a gap one byte short); the sequence numbers do not tell those apart.
#[inline(always)]
fn fin_read(sk: u64, copied: u32) -> bool {
    // SAFETY: kernel reads through the checking helper; skc_state is at 18 in
    // `struct sock_common` on every kernel we support (see `read_addrs`).
    let state = unsafe { bpf_probe_read_kernel((sk + 18) as *const u8) }.unwrap_or(0);
    // TIME_WAIT, CLOSE, CLOSE_WAIT, LAST_ACK, CLOSING (10 is LISTEN).
    if !matches!(state, 6..=9 | 11) {
        return false;
    }
    sock_seq(sk, CFG_RCV_NXT_OFF.load()) == Some(copied)
}

/// Whether an upper-layer protocol (kTLS) sits on the socket.
#[inline(always)]
fn has_ulp(sk: u64) -> bool {
    let off = CFG_ULP_OPS_OFF.load() as u64;
    // SAFETY: as in `sock_seq`. Unreadable: assume one, which turns the check off.
    unsafe { bpf_probe_read_kernel((sk + off) as *const u64) }.map_or(true, |ops| ops != 0)
}

/// A connection that the kernel saw established: what it reads is counted from here.
#[inline(always)]
pub fn start_seq(conn: &mut ConnInfo, sk: u64) {
    if let Some(seq) = copied_seq(sk) {
        conn.seq_next = seq;
        conn.seq_known = SEQ_KNOWN;
    }
    // No `write_seq` here: a Fast Open client's first send may be queued already (its SYN
    // carries it), so the first send seen sets where the order check starts.
}

#[inline(always)]
pub fn insert_conn(sk: u64, role: u8, proto: u8, flags: u32, tgid: u32, fd: u32) -> Option<*mut ConnInfo> {
    let conn = ConnInfo {
        // SAFETY: helper without preconditions.
        conn_id: unsafe { bpf_ktime_get_ns() },
        pos: [0, 0],
        family: 0,
        lport: 0,
        rport: 0,
        role,
        proto,
        addr_known: 0,
        emitted: 0,
        flags: flags as u16,
        pid: tgid,
        laddr: [0; 16],
        raddr: [0; 16],
        fd,
        state: 0,
        seq_next: 0,
        seq_known: SEQ_UNKNOWN,
        wseq_next: 0,
        wseq_known: SEQ_UNKNOWN,
    };
    if CONNS.insert(&sk, &conn, 0).is_err() {
        count(counters::CONN_TABLE_FULL, 1);
        return None;
    }
    CONNS.get_ptr_mut(&sk)
}

/// A connection the kernel side never saw open (it predates tracing, or the fd came from
/// another process): adopt it when its first bytes here start an HTTP message.
#[inline(always)]
fn adopt(args: &SyscallArgs, dir: u8, ret: u64, sk: u64, tgid: u32) -> Option<*mut ConnInfo> {
    if args.kind == ARG_SENDFILE {
        return None;
    }
    // Only the `ret` bytes that moved: beyond them the buffer holds older data.
    let role = match (first_bytes(args, ret, false), dir == DIR_EGRESS) {
        (FirstBytes::Other | FirstBytes::Unseen, _) => return None,
        (FirstBytes::Request, true) | (FirstBytes::Response, false) => ROLE_CLIENT,
        _ => ROLE_SERVER,
    };
    insert_conn(sk, role, PROTO_HTTP, FLAG_PREEXISTING, tgid, args.fd)
}

/// The first non-empty user buffer of the syscall (among its first FIRST_IOVS iovecs).
#[inline(always)]
fn first_buf(args: &SyscallArgs) -> Option<(u64, u64)> {
    let (iov, n) = match args.kind {
        ARG_BUF => return Some((args.ptr, u64::MAX)),
        ARG_IOV => (args.ptr, args.count),
        ARG_MSG => read_msg_iov(args.ptr)?,
        _ => return None,
    };
    for i in 0..FIRST_IOVS {
        if i >= n {
            break;
        }
        let (base, len) = read_iov(iov, i)?;
        if len > 0 {
            return Some((base, len));
        }
    }
    None
}

/// Empty iovecs skipped looking for a message's first bytes.
const FIRST_IOVS: u64 = 4;

/// Whether the first bytes start a response ("HTTP") or may start a request: a method
/// token (any: PURGE, PROPFIND and MKCOL as much as GET), whose first four bytes are
/// upper-case letters or '-', or a shorter one ended by a space. Up to four CR or LF
/// before it are passed over (RFC 9112 section 2.2: empty lines before a request line,
/// which servers ignore). Userspace parses what this lets through and stops following a
/// stream that turns out not to be HTTP. With `prefix_ok`, fewer than four bytes may
/// match a prefix (requests written a byte at a time), and bytes that are all CR or LF
/// may be followed by a start line.
#[inline(always)]
fn first_bytes(args: &SyscallArgs, avail: u64, prefix_ok: bool) -> FirstBytes {
    let Some((ptr, len)) = first_buf(args) else {
        return FirstBytes::Unseen;
    };
    let n = if len < avail { len } else { avail };
    if n == 0 {
        return FirstBytes::Other;
    }
    // Eight bytes, or four where eight are not readable (a buffer that ends a mapping).
    // SAFETY: user pointer reads through the checking helper.
    let head = match unsafe { bpf_probe_read_user(ptr as *const [u8; 8]) } {
        Ok(b) => u64::from_le_bytes(b),
        Err(_) => match unsafe { bpf_probe_read_user(ptr as *const [u8; 4]) } {
            Ok(b) => u64::from(u32::from_le_bytes(b)),
            // Fewer than 4 readable bytes: read one at a time is not worth it.
            Err(_) => return FirstBytes::Unseen,
        },
    };
    // Without a branch per byte: branches here multiplied the paths the verifier walks
    // through the checks below past its limit. 1 when the byte is zero, else 0.
    let zero = |b: u64| (b.wrapping_sub(1) >> 63) & 1;
    let blank = |i: u32| {
        let b = (head >> (8 * i)) & 0xff;
        zero(b ^ u64::from(b'\r')) | zero(b ^ u64::from(b'\n'))
    };
    let (b0, b1, b2, b3) = (blank(0), blank(1), blank(2), blank(3));
    let skip = (b0 + (b0 & b1) + (b0 & b1 & b2) + (b0 & b1 & b2 & b3)) as u32;
    if n <= skip as u64 {
        return if prefix_ok { FirstBytes::Request } else { FirstBytes::Other };
    }
    let n = n - skip as u64;
    if n < 4 && !prefix_ok {
        return FirstBytes::Other;
    }
    let word = (head >> (8 * skip)) as u32;
    if word == u32::from_le_bytes(*b"HTTP") && n >= 4 {
        return FirstBytes::Response;
    }
    let b = word.to_le_bytes();
    let upper = |c: u8| c.is_ascii_uppercase();
    let token = |c: u8| upper(c) || c == b'-';
    let ok = upper(b[0])
        && (n < 2 || token(b[1]))
        && (n < 3 || token(b[2]) || (b[2] == b' ' && upper(b[1])))
        && (n < 4 || token(b[3]) || (b[3] == b' ' && b[2] != b' ' && upper(b[2])));
    if ok {
        FirstBytes::Request
    } else {
        FirstBytes::Other
    }
}

#[inline(always)]
fn read_iov(iov_array: u64, i: u64) -> Option<(u64, u64)> {
    // SAFETY: struct iovec { void *base; size_t len; } read from user memory.
    let iov = unsafe { bpf_probe_read_user((iov_array + 16 * i) as *const [u64; 2]) }.ok()?;
    Some((iov[0], iov[1]))
}

#[inline(always)]
fn read_msg_iov(msg: u64) -> Option<(u64, u64)> {
    // SAFETY: struct user_msghdr: msg_iov @16, msg_iovlen @24.
    let v = unsafe { bpf_probe_read_user((msg + 16) as *const [u64; 2]) }.ok()?;
    Some((v[0], v[1]))
}

/// Addresses from `struct sock_common`, whose leading fields have kept their offsets
/// across the kernels we support: daddr @0, rcv_saddr @4, dport @12 (be16), num @14,
/// family @16, v6_daddr @56, v6_rcv_saddr @72.
#[inline(always)]
fn read_addrs(conn: &mut ConnInfo, sk: u64) {
    let base = sk as *const u8;
    // SAFETY: kernel reads through the checking helper.
    unsafe {
        let Ok(head) = bpf_probe_read_kernel(base as *const [u8; 20]) else {
            return;
        };
        let family = u16::from_le_bytes([head[16], head[17]]);
        conn.family = family;
        conn.rport = u16::from_be_bytes([head[12], head[13]]);
        conn.lport = u16::from_le_bytes([head[14], head[15]]);
        if family == AF_INET6 {
            if let Ok(v) = bpf_probe_read_kernel(base.add(56) as *const [u8; 32]) {
                conn.raddr.copy_from_slice(&v[..16]);
                conn.laddr.copy_from_slice(&v[16..]);
            }
        } else {
            conn.raddr[..4].copy_from_slice(&head[0..4]);
            conn.laddr[..4].copy_from_slice(&head[4..8]);
        }
    }
    conn.addr_known = 1;
}

#[inline(always)]
fn port_selected(conn: &ConnInfo) -> bool {
    // SAFETY: presence test only.
    unsafe { FILTER_PORTS.get(&conn.lport).is_some() || FILTER_PORTS.get(&conn.rport).is_some() }
}

/// A 16-byte address copied as two words: a `[u8; 16]` assignment compiles to a call of a
/// byte-at-a-time `memmove` on BPF.
#[inline(always)]
fn copy_addr(dst: &mut [u8; 16], src: &[u8; 16]) {
    let (d, s) = (dst.as_mut_ptr() as *mut u64, src.as_ptr() as *const u64);
    // SAFETY: both arrays sit at 8-byte offsets of 8-aligned structs (asserted in
    // tracer-common), so the two word accesses are aligned and in bounds.
    unsafe {
        d.write(s.read());
        d.add(1).write(s.add(1).read());
    }
}

/// Every field but `comm` (and the data fields), which only the owner's context gives.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn fill_header(hdr: &mut EventHeader, conn: &ConnInfo, kind: EventKind, tgid: u32, tid: u32, fd: u32, sk: u64, ts_ns: u64) {
    hdr.kind = kind as u32;
    hdr.sock = sk;
    hdr.flags = conn.flags as u32;
    hdr.ts_ns = ts_ns;
    hdr.conn_id = conn.conn_id;
    hdr.pid = tgid;
    hdr.tid = tid;
    hdr.fd = fd;
    hdr.family = conn.family;
    hdr.role = conn.role;
    hdr.lport = conn.lport;
    hdr.rport = conn.rport;
    hdr._pad = 0;
    copy_addr(&mut hdr.laddr, &conn.laddr);
    copy_addr(&mut hdr.raddr, &conn.raddr);
}

/// This CPU's scratch generation (see `SCRATCH_SEQ`).
#[inline(always)]
fn scratch_seq() -> u64 {
    // SAFETY: per-CPU slot read.
    SCRATCH_SEQ.get_ptr(0).map_or(0, |p| unsafe { *p })
}

#[inline(always)]
fn take_scratch_seq() -> u64 {
    match SCRATCH_SEQ.get_ptr_mut(0) {
        // SAFETY: per-CPU slot.
        Some(p) => unsafe {
            *p += 1;
            *p
        },
        None => 0,
    }
}

#[inline(always)]
fn scratch() -> Option<&'static mut DataEvent> {
    // SAFETY: helper without preconditions; the slot is this CPU's and the program is not
    // preempted while it runs.
    let cpu = unsafe { bpf_get_smp_processor_id() };
    SCRATCH.get_ptr_mut(cpu).map(|p| unsafe { &mut *p })
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn emit_data<C: EbpfContext>(
    ctx: &C,
    conn: &mut ConnInfo,
    args: &SyscallArgs,
    dir: u8,
    ret: u64,
    pos: u64,
    in_order: bool,
    tgid: u32,
    tid: u32,
    sk: u64,
) {
    let Some(ev) = scratch() else {
        return;
    };
    let seq = take_scratch_seq();
    // Egress: when the syscall entered (its first byte left then), if that is known.
    // Ingress: now, when the bytes were there.
    let ts_ns = if dir == DIR_EGRESS && args.enter_ns != 0 {
        args.enter_ns
    } else {
        // SAFETY: helper without preconditions.
        unsafe { bpf_ktime_get_ns() }
    };
    fill_header(&mut ev.hdr, conn, EventKind::Data, tgid, tid, args.fd, sk, ts_ns);
    // Straight into the header: the safe wrapper zeroes a stack copy first, byte by byte.
    // SAFETY: 16 writable bytes; the helper zero-fills them on failure.
    unsafe { get_comm_raw(ev.hdr.comm.as_mut_ptr() as *mut c_void, 16) };
    ev.hdr.dir = dir;
    ev.hdr.pos = pos;
    if !in_order {
        ev.hdr.flags |= FLAG_UNORDERED;
    }
    ev.hdr.len = ret as u32;
    let mut cap = CFG_MAX_CAPTURE.load() as u64;
    if cap > MAX_CAPTURE as u64 {
        cap = MAX_CAPTURE as u64;
    }
    if cap > ret {
        cap = ret;
    }
    if ATTRIBUTION_ONLY.load() != 0 {
        cap = 0;
    }
    let captured = match args.kind {
        ARG_BUF => copy(ev, 0, args.ptr, cap),
        ARG_IOV => copy_iov(ev, args.ptr, args.count, cap),
        ARG_MSG => match read_msg_iov(args.ptr) {
            Some((iov, n)) => copy_iov(ev, iov, n, cap),
            None => 0,
        },
        _ => {
            ev.hdr.flags |= FLAG_SENDFILE;
            0
        }
    };
    ev.hdr.cap = captured as u32;
    if captured < ret {
        count(counters::UNCAPTURED_BYTES, ret - captured);
    }
    let size = (HEADER_SIZE as u64 + captured) as usize;
    // Another program took the slot meanwhile (preemptible kernels): the bytes in it are
    // not ours; drop the event (the position gap tells userspace) rather than send them.
    if scratch_seq() != seq {
        count(counters::LOST_EVENTS, 1);
        count(counters::LOST_BYTES, ret);
    } else if output(ctx, ev as *const DataEvent as *const u8, size, seq & 15 == 0) {
        conn.emitted = 1;
    } else {
        count(counters::LOST_EVENTS, 1);
        count(counters::LOST_BYTES, ret);
        // The gap shows userspace the loss through the next event's position.
        conn.emitted = 1;
    }
}

/// Copies `n` user bytes to `data[off..]`; returns the bytes copied (0 on fault).
#[inline(always)]
fn copy(ev: &mut DataEvent, off: u64, src: u64, n: u64) -> u64 {
    // Bounds the verifier can follow: off < MAX_CAPTURE and n <= MAX_CAPTURE keep the copy
    // inside the 2 * MAX_CAPTURE data area.
    let off = off & (MAX_CAPTURE as u64 - 1);
    let mut n = n;
    if n > MAX_CAPTURE as u64 {
        n = MAX_CAPTURE as u64;
    }
    // SAFETY: dst stays in the scratch value (see bounds above); src checked by the helper.
    let r = unsafe {
        read_user_raw(
            ev.data.as_mut_ptr().add(off as usize) as *mut c_void,
            n as u32,
            src as *const c_void,
        )
    };
    if r == 0 { n } else { 0 }
}

#[inline(always)]
fn copy_iov(ev: &mut DataEvent, iov: u64, iovcnt: u64, cap: u64) -> u64 {
    // The first BATCH_IOV iovecs in one read, instead of one read per iovec in the walk: a
    // helper call each is most of what an iovec costs (writev of a head and a body is the
    // usual response). Past the end of a short array the read may fault (the array ends
    // a mapping): the walk then reads each iovec itself.
    // SAFETY: user memory read through the checking helper.
    let (first, batched) = match unsafe { bpf_probe_read_user(iov as *const [u64; 2 * BATCH_IOV]) } {
        Ok(v) => (v, if iovcnt < BATCH_IOV as u64 { iovcnt } else { BATCH_IOV as u64 }),
        Err(_) => ([0; 2 * BATCH_IOV], 0),
    };
    let mut walk = IovWalk { ev, iov, cap, off: 0, batched, first };
    let ctx = &mut walk as *mut IovWalk as *mut c_void;
    if CFG_IOV_LOOP.load() != 0 {
        let n = if iovcnt < LOOP_IOV as u64 { iovcnt } else { LOOP_IOV as u64 };
        // SAFETY: the callback is a BPF subprogram taking (index, ctx); ctx points at
        // `walk` on this stack, alive for the whole call.
        unsafe {
            bpf_loop(n as u32, iov_step as *const () as *mut c_void, ctx, 0);
        }
    } else if iovcnt > 0 {
        iov_step(0, ctx);
    }
    walk.off
}

/// Iovecs read at once at the start of a walk.
const BATCH_IOV: usize = 4;

/// The state of an iovec walk: the event whose data it fills, the user's iovec array,
/// the bytes to copy at most, the bytes copied so far, and its first `batched` iovecs as
/// read at the start (base, len pairs).
#[repr(C)]
struct IovWalk {
    ev: *mut DataEvent,
    iov: u64,
    cap: u64,
    off: u64,
    batched: u64,
    first: [u64; 2 * BATCH_IOV],
}

/// One iovec of a walk (by `bpf_loop`, or the first alone): copies it after the bytes
/// before it; 1 (stop) once `cap` bytes are in, or on a short copy (what follows must stay
/// contiguous). The mask changes nothing (off < cap): it bounds the copy for the verifier.
#[inline(never)]
extern "C" fn iov_step(i: u64, ctx: *mut c_void) -> i64 {
    // SAFETY: `ctx` is the `IovWalk` of `copy_iov`, whose `ev` is this CPU's scratch slot
    // (BPF programs do not migrate), not otherwise used during the walk.
    let walk = unsafe { &mut *(ctx as *mut IovWalk) };
    let off = walk.off;
    if off >= walk.cap {
        return 1;
    }
    // Constant indexes: the verifier checks each, where a computed one into the stack
    // may not pass older verifiers.
    let (base, len) = match i {
        0 if walk.batched > 0 => (walk.first[0], walk.first[1]),
        1 if walk.batched > 1 => (walk.first[2], walk.first[3]),
        2 if walk.batched > 2 => (walk.first[4], walk.first[5]),
        3 if walk.batched > 3 => (walk.first[6], walk.first[7]),
        _ => match read_iov(walk.iov, i) {
            Some(v) => v,
            None => return 1,
        },
    };
    let room = (walk.cap - off) & (2 * MAX_CAPTURE as u64 - 1);
    let want = if len < room { len } else { room };
    // SAFETY: see above.
    let got = copy(unsafe { &mut *walk.ev }, off, base, want);
    walk.off = off + got;
    (got < len) as i64
}

/// Ring-buffer bytes waiting at which the producer wakes the reader (1/16 of the default
/// 8 MiB ring: far from full at any rate the reader keeps up with).
const WAKEUP_AT: u64 = 512 << 10;

/// `check_fill`: look at the ring's fill level for the early wake-up (see below).
#[inline(always)]
fn output<C: EbpfContext>(ctx: &C, data: *const u8, size: usize, check_fill: bool) -> bool {
    let mut size = size;
    if size > HEADER_SIZE + MAX_CAPTURE {
        size = HEADER_SIZE + MAX_CAPTURE;
    }
    // SAFETY: `data` points at a scratch value at least `size` bytes long.
    let bytes = unsafe { core::slice::from_raw_parts(data, size) };
    if USE_RINGBUF.load() != 0 {
        // No wake-up per event: the reader polls every TICK_MS (run.rs) and is woken early
        // only once WAKEUP_AT bytes wait, so a busy server does not pay a reader wake-up
        // (and the reader a context switch) per syscall.
        // The fill level is looked at on every 16th data event of a CPU only (the caller
        // says which, from the scratch generation it already holds): reading it
        // pulls in the cache line the reader writes; 15 events (at most 240 KiB) late is
        // still far from full.
        let flags = if check_fill && EVENTS_RB.query(BPF_RB_AVAIL_DATA as u64) >= WAKEUP_AT && reader_not_woken() {
            BPF_RB_FORCE_WAKEUP
        } else {
            BPF_RB_NO_WAKEUP
        };
        EVENTS_RB.output::<[u8]>(bytes, flags as u64).is_ok()
    } else {
        EVENTS_PERF.output(ctx, bytes, 0);
        true
    }
}

/// Forced wake-ups of a reader that has not consumed since the last one are spaced by this.
const REWAKE_NS: u64 = 1_000_000;

/// Whether to force a wake-up now: the reader has consumed since the last forced one, or
/// that one is REWAKE_NS old. Each forced wake-up is an interrupt (an irq_work; a VM exit
/// under a hypervisor), and a woken reader drains the ring anyway: without this, every 16th
/// event would raise one until the woken reader got a CPU.
#[inline(always)]
fn reader_not_woken() -> bool {
    // +1: the map starts zeroed, and the first consumer position is 0.
    let cons = EVENTS_RB.query(BPF_RB_CONS_POS as u64) + 1;
    let Some(last) = WAKE_CONS.get_ptr_mut(0) else {
        return true;
    };
    // SAFETY: helper without preconditions.
    let now = unsafe { bpf_ktime_get_ns() };
    // SAFETY: a map value of two words; racing CPUs at worst wake the reader twice.
    unsafe {
        if (*last)[0] == cons && now.wrapping_sub((*last)[1]) < REWAKE_NS {
            return false;
        }
        *last = [cons, now];
    }
    true
}

/// Closes come from `inet_sock_set_state` and `tcp_destroy_sock`, which also run in softirq:
/// they may interrupt a data event being built in this CPU's scratch slot, so a close builds
/// its header on the stack and never touches the slot. False when the buffer was full (the
/// caller counts the loss: a first try may be repeated).
pub fn emit_close<C: EbpfContext>(ctx: &C, conn: &ConnInfo, sk: u64) -> bool {
    // SAFETY: CloseEvent is integers and byte arrays: all zeroes is a valid value.
    let mut ev: CloseEvent = unsafe { core::mem::zeroed() };
    // SAFETY: helper without preconditions.
    let now = unsafe { bpf_ktime_get_ns() };
    // `comm` stays zeroed: this is not the owner's context, the current command is not its.
    fill_header(&mut ev.hdr, conn, EventKind::Close, conn.pid, 0, conn.fd, sk, now);
    ev.hdr.cap = CLOSE_ENDS_SIZE as u32;
    ev.ends[0] = conn.pos[0];
    ev.ends[1] = conn.pos[1];
    output(ctx, &ev as *const CloseEvent as *const u8, HEADER_SIZE + CLOSE_ENDS_SIZE, false)
}
