//! Settings the loader writes before loading (read-only globals).
use aya_ebpf::Global;

#[unsafe(no_mangle)]
pub static USE_RINGBUF: Global<u8> = Global::new(1);
#[unsafe(no_mangle)]
pub static CFG_MAX_CAPTURE: Global<u32> = Global::new(tracer_common::MAX_CAPTURE as u32);
#[unsafe(no_mangle)]
pub static FILTER_PID_ON: Global<u8> = Global::new(0);
#[unsafe(no_mangle)]
pub static FILTER_PORT_ON: Global<u8> = Global::new(0);
#[unsafe(no_mangle)]
pub static SELF_PID: Global<u32> = Global::new(0);
/// Capture inside `sock_{send,recv}_length` (the syscall's arguments from the saved user
/// registers): no per-syscall enter/exit probes at all, so reads and writes of files and
/// pipes cost nothing. Set where those tracepoints exist and tracepoint hooks are chosen.
#[unsafe(no_mangle)]
pub static FAST_PATH: Global<u8> = Global::new(0);
/// The kernel has `bpf_loop` (5.17+): the iovecs of a readv/writev/recvmsg/sendmsg are
/// walked by it, up to LOOP_IOV, and the verifier checks one step once, however many
/// there are. Without it, the first iovec is copied and the bytes of the others counted
/// (an unrolled loop over more is slow to verify, and 6.1's verifier, which follows
/// impossible paths through it, finds no bound on the copy).
#[unsafe(no_mangle)]
pub static CFG_IOV_LOOP: Global<u8> = Global::new(0);
/// `--iface`: payload bytes kept per packet.
#[unsafe(no_mangle)]
pub static CFG_SNAPLEN: Global<u32> = Global::new(65535);
/// `--iface` on a loopback interface: every packet passes the packet socket twice, once
/// outgoing and once incoming; the outgoing copy is dropped in the filter.
#[unsafe(no_mangle)]
pub static DROP_OUTGOING: Global<u8> = Global::new(0);
/// `--iface`: the syscall probes only tell which process owns a connection (one
/// payload-free event per connection), the packets carry the bytes.
#[unsafe(no_mangle)]
pub static ATTRIBUTION_ONLY: Global<u8> = Global::new(0);
/// Offset of `copied_seq` in `struct tcp_sock`, from the kernel's BTF; 0: unknown, and
/// bytes that leave a socket through no traced call (splice) are not looked for.
#[unsafe(no_mangle)]
pub static CFG_COPIED_SEQ_OFF: Global<u32> = Global::new(0);
/// Offset of `rcv_nxt` in `struct tcp_sock`: with `copied_seq` equal to it, every byte
/// received was read, the peer's FIN included, if it came.
#[unsafe(no_mangle)]
pub static CFG_RCV_NXT_OFF: Global<u32> = Global::new(0);
/// Offset of `write_seq` in `struct tcp_sock`: the sequence number after the last byte a
/// send queued; 0: unknown, and the order of sends is not checked.
#[unsafe(no_mangle)]
pub static CFG_WRITE_SEQ_OFF: Global<u32> = Global::new(0);
/// Offset of `icsk_ulp_ops` in `struct inet_connection_sock` (at the start of a
/// `tcp_sock`): a socket with an upper-layer protocol (kTLS) returns other bytes than its
/// sequence numbers count.
#[unsafe(no_mangle)]
pub static CFG_ULP_OPS_OFF: Global<u32> = Global::new(0);
