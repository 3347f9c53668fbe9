//! Load, configure and attach the kernel programs; hand out the event sources.
//! Knows aya, knows no protocol.
use std::{os::fd::AsRawFd, path::Path};

use aya::{
    maps::{Array, HashMap, MapData, MapError, PerCpuArray, PerfEventArray},
    programs::{SocketFilter, TestRun, TestRunOptions},
    Ebpf, EbpfLoader,
};
use thiserror::Error;
use tracer_common::{counters, globals, maps, ConnInfo, CONN_CLOSE_SENT, CONN_TCP_CLOSED, MAX_CAPTURE};

use crate::{
    events::ConnKey,
    hooks::{self, HookError, Hooks, HooksArg, KernelHooks},
    packet::socket::PacketSocket,
    ringbuf::RingReader,
};

#[derive(Debug, Error)]
pub enum LoadError {
    #[error("tracefs is not mounted at /sys/kernel/tracing and mounting it failed ({0}); run: mount -t tracefs tracefs /sys/kernel/tracing")]
    Tracefs(std::io::Error),
    #[error("loading the eBPF programs failed: {0}")]
    Load(#[from] aya::EbpfError),
    #[error(transparent)]
    Hooks(#[from] HookError),
    #[error("program {0} is missing from the object")]
    MissingProgram(String),
    #[error("program {name}: {source}")]
    Program { name: String, source: aya::programs::ProgramError },
    #[error("map {0} is missing from the object")]
    MissingMap(&'static str),
    #[error("map {name}: {source}")]
    Map { name: &'static str, source: aya::maps::MapError },
    #[error("perf buffer: {0}")]
    Perf(#[from] aya::maps::perf::PerfBufferError),
    #[error("the kernel has no BPF ring buffer (needs 5.8); use --buffer perf or auto")]
    NoRingbuf,
    #[error("{0}")]
    Packet(#[from] crate::packet::socket::PacketError),
    #[error("mapping the ring buffer: {0}")]
    RingMap(std::io::Error),
    #[error("listing CPUs: {0}")]
    Cpus(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BufferKind {
    Auto,
    Ringbuf,
    Perf,
}

pub struct Options {
    pub buffer: BufferKind,
    pub max_capture: u32,
    pub pids: Vec<u32>,
    pub ports: Vec<u16>,
    pub hooks: HooksArg,
    /// `--iface`: capture packets there; the syscall probes then only attribute processes.
    pub iface: Option<String>,
    pub snaplen: u32,
}

/// Where events come from.
pub enum Source {
    Ring(Box<RingReader>),
    Perf(Vec<aya::maps::perf::PerfEventArrayBuffer<MapData>>),
}

impl Source {
    pub fn fds(&self) -> Vec<i32> {
        match self {
            Source::Ring(r) => vec![r.as_raw_fd()],
            Source::Perf(bufs) => bufs.iter().map(|b| b.as_raw_fd()).collect(),
        }
    }
}

pub struct Tracer {
    /// Holds the programs and links; dropping it detaches everything.
    ebpf: Ebpf,
    pub source: Source,
    pub counters: PerCpuArray<MapData, u64>,
    /// The kernel's connection table, looked at for connections whose Close never came.
    conns: HashMap<MapData, u64, ConnInfo>,
    pub buffer: BufferKind,
    /// The hooks chosen for this kernel.
    pub hooks: Hooks,
    /// `--iface`: the filtered packet socket.
    pub packet: Option<PacketSocket>,
    /// The socket sequence checks are on (their offsets came from the kernel's BTF).
    pub seq_checks: bool,
    /// `--pid`'s processes, as the kernel side filters by them.
    filter_pids: HashMap<MapData, u32, u8>,
}

/// The packet socket for `--iface`, its socket filter attached before it is bound, so no
/// unfiltered packet is ever queued.
fn open_packet_socket(ebpf: &mut Ebpf, iface: &str) -> Result<PacketSocket, LoadError> {
    const NAME: &str = "l7_sockfilter";
    let sock = PacketSocket::open(iface)?;
    let prog: &mut SocketFilter = ebpf
        .program_mut(NAME)
        .ok_or_else(|| LoadError::MissingProgram(NAME.into()))?
        .try_into()
        .map_err(|source| LoadError::Program { name: NAME.into(), source })?;
    prog.load().map_err(|source| LoadError::Program { name: NAME.into(), source })?;
    prog.attach(&sock).map_err(|source| LoadError::Program { name: NAME.into(), source })?;
    sock.bind()?;
    Ok(sock)
}

/// The program that stops the probes copying a connection (`Tracer::mute`): run by
/// userspace, never attached.
const MUTE: &str = "l7_mute";

fn load_mute(ebpf: &mut Ebpf) -> Result<(), LoadError> {
    let prog: &mut SocketFilter = ebpf
        .program_mut(MUTE)
        .ok_or_else(|| LoadError::MissingProgram(MUTE.into()))?
        .try_into()
        .map_err(|source| LoadError::Program { name: MUTE.into(), source })?;
    prog.load().map_err(|source| LoadError::Program { name: MUTE.into(), source })
}

const RINGBUF_BYTES: u32 = 8 << 20;
const PERF_PAGES_PER_CPU: usize = 256;

/// What the kernel side is loaded with for some options on this kernel: the hooks and the
/// buffer chosen, and the settings it reads as constants (`tracer-ebpf/src/config.rs`).
/// The verifier drops the code behind a setting that is 0 at load time before it checks
/// the rest: a program is verified for the settings it was loaded with, no others.
#[derive(Debug, Clone)]
pub struct Settings {
    pub hooks: Hooks,
    pub buffer: BufferKind,
    use_ringbuf: u8,
    max_capture: u32,
    pid_on: u8,
    port_on: u8,
    self_pid: u32,
    attribution_only: u8,
    drop_outgoing: u8,
    snaplen: u32,
    fast_path: u8,
    iov_loop: u8,
    seq: SocketOffsets,
    nr_cpus: u32,
}

impl Settings {
    /// What `load` makes of `opts` on this kernel. Mounts tracefs if it is not (the hooks
    /// the kernel offers are looked up there).
    pub fn resolve(opts: &Options) -> Result<Settings, LoadError> {
        ensure_tracefs()?;
        let hooks = KernelHooks::probe().choose(opts.hooks)?;
        let ringbuf_ok = aya::sys::is_map_supported(aya::maps::MapType::RingBuf).unwrap_or(false);
        let buffer = match (opts.buffer, ringbuf_ok) {
            (BufferKind::Ringbuf, false) => return Err(LoadError::NoRingbuf),
            (BufferKind::Auto, true) | (BufferKind::Ringbuf, true) => BufferKind::Ringbuf,
            _ => BufferKind::Perf,
        };
        let nr_cpus = aya::util::nr_cpus().map_err(|(s, e)| LoadError::Cpus(format!("{s}: {e}")))?;
        Ok(Settings {
            hooks,
            buffer,
            use_ringbuf: (buffer == BufferKind::Ringbuf) as u8,
            max_capture: opts.max_capture.min(MAX_CAPTURE as u32),
            pid_on: (!opts.pids.is_empty()) as u8,
            port_on: (!opts.ports.is_empty()) as u8,
            self_pid: std::process::id(),
            attribution_only: opts.iface.is_some() as u8,
            drop_outgoing: opts.iface.as_deref().is_some_and(is_loopback) as u8,
            snaplen: opts.snaplen,
            fast_path: hooks.fast_path() as u8,
            iov_loop: hooks::has_bpf_loop() as u8,
            seq: SocketOffsets::from_kernel(),
            nr_cpus: nr_cpus as u32,
        })
    }

    /// A loader that writes these settings into the object's globals and sizes its maps.
    fn loader(&self) -> EbpfLoader<'_> {
        let mut loader = EbpfLoader::new();
        loader
            .override_global(globals::USE_RINGBUF, &self.use_ringbuf, true)
            .override_global(globals::MAX_CAPTURE, &self.max_capture, true)
            .override_global(globals::FILTER_PID_ON, &self.pid_on, true)
            .override_global(globals::FILTER_PORT_ON, &self.port_on, true)
            .override_global(globals::SELF_PID, &self.self_pid, true)
            .override_global(globals::ATTRIBUTION_ONLY, &self.attribution_only, true)
            .override_global(globals::DROP_OUTGOING, &self.drop_outgoing, true)
            .override_global(globals::SNAPLEN, &self.snaplen, true)
            .override_global(globals::FAST_PATH, &self.fast_path, true)
            .override_global(globals::IOV_LOOP, &self.iov_loop, true)
            .override_global(globals::COPIED_SEQ_OFF, &self.seq.copied_seq, true)
            .override_global(globals::ULP_OPS_OFF, &self.seq.ulp_ops, true)
            .override_global(globals::RCV_NXT_OFF, &self.seq.rcv_nxt, true)
            .override_global(globals::WRITE_SEQ_OFF, &self.seq.write_seq, true)
            .map_max_entries(maps::SCRATCH, self.nr_cpus);
        if self.buffer != BufferKind::Ringbuf {
            // The ring buffer map still exists in the object; keep it at its minimum.
            loader.map_max_entries(maps::EVENTS_RINGBUF, page_size() as u32);
        } else {
            loader.map_max_entries(maps::EVENTS_RINGBUF, RINGBUF_BYTES);
        }
        loader
    }
}

/// The settings that are on, for a verdict: `ringbuf+fast-path+seq-checks+iov-loop`.
impl std::fmt::Display for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.use_ringbuf != 0 { "ringbuf" } else { "perf" })?;
        let on = [
            (self.fast_path, "fast-path"),
            (self.pid_on, "pid-filter"),
            (self.port_on, "port-filter"),
            (self.attribution_only, "attribution-only"),
            (self.drop_outgoing, "drop-outgoing"),
            ((self.seq != SocketOffsets::default()) as u8, "seq-checks"),
            (self.iov_loop, "iov-loop"),
        ];
        for (_, name) in on.iter().filter(|(v, _)| *v != 0) {
            write!(f, "+{name}")?;
        }
        if self.attribution_only != 0 {
            write!(f, "+snaplen-{}", self.snaplen)?;
        }
        Ok(())
    }
}

pub fn load(opts: &Options) -> Result<Tracer, LoadError> {
    raise_memlock();
    let settings = Settings::resolve(opts)?;
    let (buffer, chosen) = (settings.buffer, settings.hooks);
    let mut ebpf = settings.loader().load(OBJECT)?;

    fill_filters(&mut ebpf, opts)?;
    hooks::attach(&mut ebpf, chosen)?;
    load_mute(&mut ebpf)?;
    let packet = match &opts.iface {
        Some(iface) => Some(open_packet_socket(&mut ebpf, iface)?),
        None => None,
    };
    let counters = PerCpuArray::try_from(take(&mut ebpf, maps::COUNTERS)?)
        .map_err(|source| LoadError::Map { name: maps::COUNTERS, source })?;
    let conns = HashMap::try_from(take(&mut ebpf, maps::CONNS)?)
        .map_err(|source| LoadError::Map { name: maps::CONNS, source })?;
    let filter_pids = HashMap::try_from(take(&mut ebpf, maps::FILTER_PIDS)?)
        .map_err(|source| LoadError::Map { name: maps::FILTER_PIDS, source })?;
    let source = if buffer == BufferKind::Ringbuf {
        let aya::maps::Map::RingBuf(data) = take(&mut ebpf, maps::EVENTS_RINGBUF)? else {
            return Err(LoadError::Map {
                name: maps::EVENTS_RINGBUF,
                source: MapError::InvalidMapType { map_type: 0 },
            });
        };
        Source::Ring(Box::new(RingReader::new(data, RINGBUF_BYTES as usize).map_err(LoadError::RingMap)?))
    } else {
        let mut perf = PerfEventArray::try_from(take(&mut ebpf, maps::EVENTS_PERF)?)
            .map_err(|source| LoadError::Map { name: maps::EVENTS_PERF, source })?;
        let cpus = aya::util::online_cpus().map_err(|(s, e)| LoadError::Cpus(format!("{s}: {e}")))?;
        let mut bufs = Vec::with_capacity(cpus.len());
        for cpu in cpus {
            bufs.push(perf.open(cpu, Some(PERF_PAGES_PER_CPU))?);
        }
        Source::Perf(bufs)
    };
    arm(&mut ebpf)?;
    let seq_checks = settings.seq != SocketOffsets::default();
    Ok(Tracer { ebpf, source, counters, conns, buffer, hooks: chosen, packet, seq_checks, filter_pids })
}

/// Where the kernel side finds a TCP socket's `copied_seq`, `rcv_nxt`, `write_seq` and
/// `icsk_ulp_ops`; all 0 (the checks for bytes read through no traced call and for the
/// order of sends are off) without BTF or any one.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SocketOffsets {
    pub copied_seq: u32,
    pub rcv_nxt: u32,
    /// `tcp_sock.write_seq`, for the order of sends; 0 (unknown) turns that check off.
    pub write_seq: u32,
    pub ulp_ops: u32,
}

impl SocketOffsets {
    pub fn from_kernel() -> SocketOffsets {
        match crate::btf::Btf::kernel() {
            Ok(btf) => SocketOffsets::from_btf(&btf),
            Err(e) => {
                tracing::debug!("no kernel BTF: {e}");
                SocketOffsets::default()
            }
        }
    }

    pub fn from_btf<B: crate::btf::Blob + ?Sized>(btf: &crate::btf::Btf<B>) -> SocketOffsets {
        match (
            btf.member_offset("tcp_sock", "copied_seq"),
            btf.member_offset("tcp_sock", "rcv_nxt"),
            btf.member_offset("tcp_sock", "write_seq"),
            btf.member_offset("inet_connection_sock", "icsk_ulp_ops"),
        ) {
            (Some(copied_seq), Some(rcv_nxt), Some(write_seq), Some(ulp_ops))
                if copied_seq > 0 && rcv_nxt > 0 && write_seq > 0 && ulp_ops > 0 =>
            {
                SocketOffsets { copied_seq, rcv_nxt, write_seq, ulp_ops }
            }
            _ => SocketOffsets::default(),
        }
    }
}

/// The kernel-side object, built by build.rs.
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/tracer"));

/// Loads every program of the object with `settings`, attaching none (a verifier check for
/// this kernel and these settings): each program's name and what the verifier said.
pub fn verify_programs(settings: &Settings) -> Result<hooks::Verdicts, LoadError> {
    raise_memlock();
    let mut ebpf = settings.loader().load(OBJECT)?;
    Ok(hooks::verify_all(&mut ebpf))
}

/// Every program is attached and the event buffers are open: capture starts now, on every
/// hook at once (see the kernel side's `ARMED`).
fn arm(ebpf: &mut Ebpf) -> Result<(), LoadError> {
    let mut armed: Array<_, u32> = map_as(ebpf, maps::ARMED)?;
    armed.set(0, 1, 0).map_err(|source| LoadError::Map { name: maps::ARMED, source })
}

/// Map `name` of the object as its type `T`, left in the object (written before capture).
fn map_as<'a, T>(ebpf: &'a mut Ebpf, name: &'static str) -> Result<T, LoadError>
where
    T: TryFrom<&'a mut aya::maps::Map, Error = MapError>,
{
    let map = ebpf.map_mut(name).ok_or(LoadError::MissingMap(name))?;
    T::try_from(map).map_err(|source| LoadError::Map { name, source })
}

fn take(ebpf: &mut Ebpf, name: &'static str) -> Result<aya::maps::Map, LoadError> {
    ebpf.take_map(name).ok_or(LoadError::MissingMap(name))
}

fn fill_filters(ebpf: &mut Ebpf, opts: &Options) -> Result<(), LoadError> {
    let mut pids: HashMap<_, u32, u8> = map_as(ebpf, maps::FILTER_PIDS)?;
    for pid in &opts.pids {
        pids.insert(pid, 1, 0).map_err(|source| LoadError::Map { name: maps::FILTER_PIDS, source })?;
    }
    let mut ports: HashMap<_, u16, u8> = map_as(ebpf, maps::FILTER_PORTS)?;
    for port in &opts.ports {
        ports.insert(port, 1, 0).map_err(|source| LoadError::Map { name: maps::FILTER_PORTS, source })?;
    }
    Ok(())
}

impl Tracer {
    /// The kernel side no longer traces `pid` (a `--pid` process that exited: a new
    /// process given its pid is not the one asked for).
    pub fn forget_pid(&mut self, pid: u32) {
        let _ = self.filter_pids.remove(&pid);
    }

    /// Stops the probes copying the connection `key` (userspace is done with it: upgraded
    /// to another protocol, or not HTTP); its Close still comes. False when its socket's
    /// entry is gone or is a later connection's, or the program could not run (then its
    /// bytes keep coming, and are dropped in userspace as before).
    pub fn mute(&self, key: ConnKey) -> bool {
        let Some(Ok(prog)) = self.ebpf.program(MUTE).map(<&SocketFilter>::try_from) else {
            return false;
        };
        // An Ethernet header (the kernel takes it off before the program runs), then the
        // key: the program reads the frame's last 16 bytes.
        let mut frame = [0u8; 14 + 16];
        frame[12..14].copy_from_slice(&0x88b5u16.to_be_bytes());
        frame[14..22].copy_from_slice(&key.sock.to_ne_bytes());
        frame[22..30].copy_from_slice(&key.conn_id.to_ne_bytes());
        match prog.test_run(TestRunOptions { data_in: Some(&frame), repeat: 1, ..TestRunOptions::new() }) {
            Ok(r) => r.return_value == 1,
            Err(e) => {
                tracing::debug!("{MUTE}: {e}");
                false
            }
        }
    }

    /// Kernel-side counters summed over CPUs, indexed by `tracer_common::counters`.
    pub fn kernel_counters(&self) -> [u64; counters::COUNT as usize] {
        let mut out = [0u64; counters::COUNT as usize];
        for (i, slot) in out.iter_mut().enumerate() {
            if let Ok(values) = self.counters.get(&(i as u32), 0) {
                *slot = values.iter().sum();
            }
        }
        out
    }

    /// Whether the kernel is done with the connection `key` without having sent its Close
    /// (the buffer was full): its socket is gone from the table (or the entry is a later
    /// connection's), or reached TCP_CLOSE with no Close sent. No more events will carry
    /// the key. Unknown (a failed lookup) is not gone.
    pub fn closed_unseen(&self, key: ConnKey) -> bool {
        match self.conns.get(&key.sock, 0) {
            Ok(c) => c.conn_id != key.conn_id || (c.state & CONN_TCP_CLOSED != 0 && c.state & CONN_CLOSE_SENT == 0),
            Err(MapError::KeyNotFound) => true,
            Err(e) => {
                tracing::debug!("connection table lookup: {e}");
                false
            }
        }
    }
}

fn raise_memlock() {
    let rlim = libc::rlimit { rlim_cur: libc::RLIM_INFINITY, rlim_max: libc::RLIM_INFINITY };
    // SAFETY: plain syscall with a valid pointer.
    if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &rlim) } != 0 {
        // Kernels >= 5.11 charge BPF memory to the cgroup; the limit does not matter there.
        tracing::debug!("setrlimit(RLIMIT_MEMLOCK) failed; relying on memcg accounting");
    }
}

fn ensure_tracefs() -> Result<(), LoadError> {
    if Path::new("/sys/kernel/tracing/events").exists()
        || Path::new("/sys/kernel/debug/tracing/events").exists()
    {
        return Ok(());
    }
    // Its own complaint would make the error more than one line: ours names the command.
    let r = std::process::Command::new("mount")
        .args(["-t", "tracefs", "tracefs", "/sys/kernel/tracing"])
        .stderr(std::process::Stdio::null())
        .status();
    match r {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => Err(LoadError::Tracefs(std::io::Error::other(format!("mount exited with {s}")))),
        Err(e) => Err(LoadError::Tracefs(e)),
    }
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_PAGESIZE) as usize }
}

/// Whether `iface` is a loopback interface (IFF_LOOPBACK in its sysfs flags).
fn is_loopback(iface: &str) -> bool {
    const IFF_LOOPBACK: u32 = 0x8;
    std::fs::read_to_string(format!("/sys/class/net/{iface}/flags"))
        .ok()
        .and_then(|f| u32::from_str_radix(f.trim().trim_start_matches("0x"), 16).ok())
        .is_some_and(|flags| flags & IFF_LOOPBACK != 0)
}
