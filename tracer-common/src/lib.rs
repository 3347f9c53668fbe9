//! Types shared by the kernel programs and userspace. Integers and byte arrays only, with
//! explicit padding, and a size assertion on each, so both sides agree on the layout.
#![no_std]

/// Most payload bytes one event carries. The kernel copies at most this much per syscall;
/// the rest is counted (`len - cap`).
pub const MAX_CAPTURE: usize = 16384;
/// Ports `--port` may select (the kernel side's port filter map holds this many).
pub const MAX_FILTER_PORTS: usize = 1024;
/// iovecs walked per readv/writev/recvmsg/sendmsg: every one a syscall may have (the
/// kernel's UIO_MAXIOV). Without `bpf_loop` (before 5.17), only the first.
pub const LOOP_IOV: u32 = 1024;

/// Map names, as the loader finds them.
pub mod maps {
    pub const EVENTS_RINGBUF: &str = "EVENTS_RB";
    pub const EVENTS_PERF: &str = "EVENTS_PERF";
    pub const CONNS: &str = "CONNS";
    pub const FILTER_PIDS: &str = "FILTER_PIDS";
    pub const FILTER_PORTS: &str = "FILTER_PORTS";
    pub const SCRATCH: &str = "SCRATCH";
    pub const COUNTERS: &str = "COUNTERS";
    pub const ARMED: &str = "ARMED";
}

/// Global settings the loader writes before loading.
pub mod globals {
    pub const USE_RINGBUF: &str = "USE_RINGBUF";
    pub const MAX_CAPTURE: &str = "CFG_MAX_CAPTURE";
    pub const FILTER_PID_ON: &str = "FILTER_PID_ON";
    pub const FILTER_PORT_ON: &str = "FILTER_PORT_ON";
    pub const SELF_PID: &str = "SELF_PID";
    pub const SNAPLEN: &str = "CFG_SNAPLEN";
    pub const FAST_PATH: &str = "FAST_PATH";
    pub const IOV_LOOP: &str = "CFG_IOV_LOOP";
    pub const ATTRIBUTION_ONLY: &str = "ATTRIBUTION_ONLY";
    pub const DROP_OUTGOING: &str = "DROP_OUTGOING";
    pub const COPIED_SEQ_OFF: &str = "CFG_COPIED_SEQ_OFF";
    pub const ULP_OPS_OFF: &str = "CFG_ULP_OPS_OFF";
    pub const RCV_NXT_OFF: &str = "CFG_RCV_NXT_OFF";
    pub const WRITE_SEQ_OFF: &str = "CFG_WRITE_SEQ_OFF";
}

#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// Bytes of a stream (`cap` of them follow the header; `len - cap` more were not copied).
    Data = 1,
    /// The traced process closed the connection.
    Close = 2,
}

/// `EventHeader::dir`
pub const DIR_EGRESS: u8 = 0;
pub const DIR_INGRESS: u8 = 1;
/// `EventHeader::role` / `ConnInfo::role`
pub const ROLE_UNKNOWN: u8 = 0;
pub const ROLE_CLIENT: u8 = 1;
pub const ROLE_SERVER: u8 = 2;
/// `EventHeader::flags`: the bytes never passed through the user memory named by the
/// syscall (sendfile, recv with MSG_TRUNC): counted, not copied.
pub const FLAG_SENDFILE: u32 = 1;
/// `EventHeader::flags`: the connection existed before tracing started (role inferred).
pub const FLAG_PREEXISTING: u32 = 2;
/// A send whose bytes may stand elsewhere in the stream than its position says: the
/// socket's `write_seq` moved by more or less than it sent since the last send seen
/// (another thread sent on the socket at the same time, its probe run first or not yet).
/// Userspace takes such an event as lost bytes, never as the stream's next bytes.
pub const FLAG_UNORDERED: u32 = 4;

pub const AF_INET: u16 = 2;
pub const AF_INET6: u16 = 10;

/// Every event starts with this header.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct EventHeader {
    pub kind: u32,
    pub flags: u32,
    /// CLOCK_MONOTONIC ns (bpf_ktime_get_ns): syscall entry for egress (the first byte left
    /// then), syscall exit for ingress (the bytes were there then).
    pub ts_ns: u64,
    /// Unique per connection: monotonic ns when the kernel side first knew it.
    pub conn_id: u64,
    /// The socket (`struct sock *`): connections are tracked per socket, not per fd, so
    /// duplicated fds and fds shared across processes are one connection.
    pub sock: u64,
    /// Stream offset of this event's first byte, per direction.
    pub pos: u64,
    /// Stream bytes this event covers.
    pub len: u32,
    /// Bytes captured and following this header (`cap <= len`).
    pub cap: u32,
    pub pid: u32,
    pub tid: u32,
    pub fd: u32,
    pub family: u16,
    pub role: u8,
    pub dir: u8,
    /// Local and remote port, host byte order.
    pub lport: u16,
    pub rport: u16,
    pub _pad: u32,
    /// IPv4 in the first 4 bytes, or IPv6 (v4-mapped possible).
    pub laddr: [u8; 16],
    pub raddr: [u8; 16],
    pub comm: [u8; 16],
}
const _: () = assert!(core::mem::size_of::<EventHeader>() == 120);
// The kernel side copies the addresses as two 8-byte words (see `capture::copy_addr`).
const _: () = assert!(core::mem::offset_of!(EventHeader, laddr) % 8 == 0 && core::mem::offset_of!(EventHeader, raddr) % 8 == 0);

pub const HEADER_SIZE: usize = core::mem::size_of::<EventHeader>();

/// A Close event: the header (`cap` = 16), then where each direction's stream ended, in
/// bytes the kernel side counted (`ConnInfo::pos`, indexed by `DIR_*`). Events lost when
/// the ring was full at the end of a stream leave no later event to show the gap: these
/// positions do.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct CloseEvent {
    pub hdr: EventHeader,
    pub ends: [u64; 2],
}
pub const CLOSE_ENDS_SIZE: usize = 16;
const _: () = assert!(core::mem::size_of::<CloseEvent>() == HEADER_SIZE + CLOSE_ENDS_SIZE);

/// A data event as built in the kernel's scratch slot. The data area is twice the cap so
/// that the verifier can prove `off + n` in bounds with masks only.
#[repr(C)]
pub struct DataEvent {
    pub hdr: EventHeader,
    pub data: [u8; 2 * MAX_CAPTURE],
}

/// Per-connection state in the kernel, keyed by socket address (`struct sock *`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ConnInfo {
    pub conn_id: u64,
    /// Bytes seen so far per direction (`DIR_EGRESS`, `DIR_INGRESS`).
    pub pos: [u64; 2],
    pub family: u16,
    pub lport: u16,
    pub rport: u16,
    pub role: u8,
    /// `PROTO_*`
    pub proto: u8,
    /// Addresses filled from the socket on first data.
    pub addr_known: u8,
    /// An event of this connection reached userspace (so a close is worth sending).
    pub emitted: u8,
    pub flags: u16,
    /// Process that first used the connection (closes arrive outside process context).
    pub pid: u32,
    pub laddr: [u8; 16],
    pub raddr: [u8; 16],
    pub fd: u32,
    /// `CONN_TCP_CLOSED`, `CONN_CLOSE_SENT`; the entry goes when the kernel destroys the
    /// socket.
    pub state: u32,
    /// The socket's `copied_seq` once every received byte counted so far was read: the
    /// sequence number of the next byte a traced read should return. Valid when
    /// `seq_known` is 1.
    pub seq_next: u32,
    pub seq_known: u32,
    /// The socket's `write_seq` after the last send seen: the sequence number the next
    /// send's bytes should start at. Valid when `wseq_known` is 1.
    pub wseq_next: u32,
    pub wseq_known: u32,
}
const _: () = assert!(core::mem::size_of::<ConnInfo>() == 96);
const _: () = assert!(core::mem::offset_of!(ConnInfo, laddr) % 8 == 0 && core::mem::offset_of!(ConnInfo, raddr) % 8 == 0);

/// The socket reached TCP_CLOSE; bytes still queued for the process may be read after it
/// (a half-closed client reading the answer).
pub const CONN_TCP_CLOSED: u32 = 2;
/// Its Close event is in the buffer. Without it (the buffer was full), the socket's
/// destruction tries again; userspace, finding the socket closed or gone with no Close
/// sent, ends the connection itself.
pub const CONN_CLOSE_SENT: u32 = 4;

pub const PROTO_UNKNOWN: u8 = 0;
pub const PROTO_HTTP: u8 = 1;
/// Not HTTP, or filtered out by port: send nothing.
pub const PROTO_IGNORED: u8 = 2;

/// TCP header flag bits (and the combinations the tests send): the socket filter tests
/// them, the userspace segment parser reads them.
pub mod tcp_flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const ACK: u8 = 0x10;
    pub const PSH_ACK: u8 = 0x18;
    pub const FIN_ACK: u8 = 0x11;
}

/// Indexes of the per-CPU `COUNTERS` array.
pub mod counters {
    /// Events the ring/perf buffer refused (full).
    pub const LOST_EVENTS: u32 = 0;
    /// Bytes in those refused events' range.
    pub const LOST_BYTES: u32 = 1;
    /// Bytes counted but not copied (cap, iovec limit, sendfile).
    pub const UNCAPTURED_BYTES: u32 = 2;
    /// Connection-table insertions that failed.
    pub const CONN_TABLE_FULL: u32 = 3;
    /// Received bytes that left the socket through no traced call (splice(2) from the
    /// socket, zero-copy receive): a gap in the stream, its size from the socket's
    /// sequence numbers.
    pub const UNSEEN_BYTES: u32 = 4;
    pub const COUNT: u32 = 5;
}

#[cfg(feature = "user")]
mod user {
    // SAFETY: plain-old-data: integers and byte arrays, explicit padding, no pointers.
    unsafe impl aya::Pod for super::ConnInfo {}
}
