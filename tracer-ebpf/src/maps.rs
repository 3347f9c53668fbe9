//! Every map of the kernel side. Sizes here are defaults; the loader may resize.
use aya_ebpf::{
    macros::map,
    maps::{Array, HashMap, LruHashMap, PerCpuArray, PerfEventByteArray, RingBuf},
};
use tracer_common::{counters, ConnInfo, DataEvent};

/// Arguments of a syscall in flight, saved at enter for the exit probe.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct SyscallArgs {
    /// `ARG_*`
    pub kind: u32,
    pub fd: u32,
    /// Buffer, iovec array, or msghdr, depending on `kind`.
    pub ptr: u64,
    /// iovec count where `ptr` is an iovec array.
    pub count: u64,
    /// The socket, as the `sock_*_length` tracepoints report it; 0: not an inet TCP socket.
    pub sk: u64,
    /// The recv flags that change what moved (`MSG_PEEK`: the bytes stay queued, do not
    /// count them; `MSG_TRUNC`: they were dropped, never copied to the buffer).
    pub recv_flags: u32,
    pub _pad: u32,
    /// Entry time: an egress event is stamped with it, the moment its first byte left.
    /// 0 where it is not known (the fast path runs after the bytes moved): stamped at output.
    pub enter_ns: u64,
}

/// The syscall entered before tracing started: recover its arguments from the task's
/// saved user registers at exit.
pub const ARG_FROM_REGS: u32 = 0;
pub const ARG_BUF: u32 = 1;
pub const ARG_IOV: u32 = 2;
pub const ARG_MSG: u32 = 3;
pub const ARG_SENDFILE: u32 = 4;

#[map(name = "EVENTS_RB")]
pub static EVENTS_RB: RingBuf = RingBuf::with_byte_size(8 << 20, 0);

#[map(name = "EVENTS_PERF")]
pub static EVENTS_PERF: PerfEventByteArray = PerfEventByteArray::new(0);

/// LRU: a thread that dies inside a syscall leaves its entry; the oldest go first.
#[map(name = "ARGS")]
pub static ARGS: LruHashMap<u64, SyscallArgs> = LruHashMap::with_max_entries(65536, 0);

/// Keyed by socket address.
#[map(name = "CONNS")]
pub static CONNS: LruHashMap<u64, ConnInfo> = LruHashMap::with_max_entries(65536, 0);

#[map(name = "FILTER_PIDS")]
pub static FILTER_PIDS: HashMap<u32, u8> = HashMap::with_max_entries(1024, 0);

#[map(name = "FILTER_PORTS")]
pub static FILTER_PORTS: HashMap<u16, u8> = HashMap::with_max_entries(tracer_common::MAX_FILTER_PORTS as u32, 0);

/// One event under construction per CPU. A plain array indexed by CPU id, because a
/// per-CPU array value may not exceed 32 KiB and this one does.
#[map(name = "SCRATCH")]
pub static SCRATCH: Array<DataEvent> = Array::with_max_entries(256, 0);

/// Bumped each time a program takes this CPU's scratch slot: a program that finds it
/// changed before output was interrupted by another user of the slot (a preemptible
/// kernel) and drops its event, counted as lost, rather than send another's bytes.
#[map(name = "SCRATCH_SEQ")]
pub static SCRATCH_SEQ: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

/// The ring's consumer position (+1) and the time when a producer last forced a wake-up of
/// the reader: until the reader has consumed something, further forced wake-ups are mostly
/// interrupts wasted (see `capture::reader_not_woken`).
#[map(name = "WAKE_CONS")]
pub static WAKE_CONS: Array<[u64; 2]> = Array::with_max_entries(1, 0);

/// Entry 0 is set once every program is attached and the event buffers are open: until
/// then no program captures anything or enters a connection. Programs attach one after the
/// other (each verified first); a connection used meanwhile would be seen from one side
/// only (its requests without their answers), and with perf buffers its events would be
/// sent to buffers not open yet. It is picked up by its first bytes after, as one that
/// predates tracing.
#[map(name = "ARMED")]
pub static ARMED: Array<u32> = Array::with_max_entries(1, 0);

#[map(name = "COUNTERS")]
pub static COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(counters::COUNT, 0);

/// Whether tracing has started (see `ARMED`).
#[inline(always)]
pub fn armed() -> bool {
    ARMED.get(0).is_some_and(|v| *v != 0)
}

#[inline(always)]
pub fn count(index: u32, n: u64) {
    if let Some(c) = COUNTERS.get_ptr_mut(index) {
        // SAFETY: per-CPU slot, and the program is not preempted while it runs.
        unsafe { *c += n };
    }
}
