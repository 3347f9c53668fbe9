//! The event loop: kernel buffers -> pipeline -> sink, ticks, signals, summary.
use std::{
    io::{self, IsTerminal as _, Write as _},
    sync::atomic::{AtomicBool, Ordering},
};

use anyhow::Context as _;
use aya::maps::perf::PerfEvent;
use tracer_common::counters;

use crate::{
    cli::{secs_to_ns, Cli, RoleArg},
    events::ConnKey,
    hooks::HooksArg,
    loader::{self, BufferKind, Source, Tracer},
    output::{json::JsonSink, monotonic_ns, tui::TuiSink, Clock, Counters, Flow, Sink},
    pids::PidWatch,
    packet::{
        flows::FlowConfig,
        path::PacketPath,
        socket::{Link, PacketSocket},
    },
    pipeline::{Config, Filter, Pipeline, Record},
    protocols::{Limits, Role},
    redact::Redactor,
};

static STOP: AtomicBool = AtomicBool::new(false);

/// A stop signal came (SIGINT, SIGTERM, SIGHUP; or one waits, blocked while the programs
/// load: see `run`), or the sink asked to quit.
pub fn stop_requested() -> bool {
    if STOP.load(Ordering::Relaxed) {
        return true;
    }
    // SAFETY: sigset_t is plain data, filled by the call.
    unsafe {
        let mut pending: libc::sigset_t = std::mem::zeroed();
        libc::sigpending(&mut pending) == 0 && STOP_SIGNALS.iter().any(|&s| libc::sigismember(&pending, s) == 1)
    }
}

const STOP_SIGNALS: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

/// Blocks (or unblocks) the stop signals for this thread. Blocked while the programs load:
/// a signal that interrupts the verifier makes the load fail with EAGAIN, which aya
/// retries with ever larger verifier logs, a second or more each; blocked, it waits, and
/// loading stops before the next program instead (`hooks::attach`).
fn block_stop_signals(block: bool) {
    // SAFETY: sigset_t is plain data, set up by sigemptyset before use.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in STOP_SIGNALS {
            libc::sigaddset(&mut set, s);
        }
        libc::pthread_sigmask(if block { libc::SIG_BLOCK } else { libc::SIG_UNBLOCK }, &set, std::ptr::null_mut());
    }
}

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

/// INT, TERM and HUP (a closed terminal or ssh session) stop tracing the same way: what
/// is in progress is emitted, then the summary. Without SA_RESTART, so that a write to an
/// output whose reader stopped reading is interrupted, not resumed (see `Stdout`).
fn install_signals() {
    for sig in STOP_SIGNALS {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe; the
        // sigaction structs are plain data, zeroed, then filled.
        unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            libc::sigaction(sig, std::ptr::null(), &mut old);
            // `nohup l7trace ... &` keeps tracing when the session ends.
            if sig == libc::SIGHUP && old.sa_sigaction == libc::SIG_IGN {
                continue;
            }
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as *const () as libc::sighandler_t;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

/// How long a write may wait for the output's reader once tracing is stopping.
const STOPPING_WRITE_WAIT_MS: u64 = 1000;

/// fd 1 for the JSON stream. A write that blocks on a reader that stopped reading (a pipe
/// to a stalled program) is interrupted by a stop signal; once stopping, each write waits
/// at most `STOPPING_WRITE_WAIT_MS` for room and moves at most PIPE_BUF bytes (what room
/// for one write guarantees not to block), so that l7trace still ends on its signal. A
/// stdout left non-blocking by whoever opened it is waited on the same way. Closed when
/// dropped: the reader sees the end of the stream at once, not after detaching.
struct Stdout;

impl Stdout {
    /// Waits for room in fd 1 (up to `limit_ms`, or for ever when None); false when none came.
    fn wait_room(limit_ms: Option<u64>) -> bool {
        let deadline = limit_ms.map(|ms| std::time::Instant::now() + std::time::Duration::from_millis(ms));
        loop {
            let left = deadline.map_or(-1, |d| d.saturating_duration_since(std::time::Instant::now()).as_millis() as i32);
            let mut p = libc::pollfd { fd: 1, events: libc::POLLOUT, revents: 0 };
            // SAFETY: one valid pollfd.
            let r = unsafe { libc::poll(&mut p, 1, left) };
            if r > 0 {
                // Room, or an error the write will report.
                return true;
            }
            let Some(deadline) = deadline else {
                // EINTR with no limit: the caller looks whether it is stopping now.
                return true;
            };
            if r == 0 || std::time::Instant::now() >= deadline {
                return false;
            }
            // EINTR (another signal): wait on to the same deadline.
        }
    }
}

impl io::Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        loop {
            let stopping = STOP.load(Ordering::Relaxed);
            if stopping && !Stdout::wait_room(Some(STOPPING_WRITE_WAIT_MS)) {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "the output's reader stopped reading"));
            }
            let len = if stopping { buf.len().min(libc::PIPE_BUF) } else { buf.len() };
            // SAFETY: fd 1 is open until Drop; `buf` is valid for `len` bytes.
            let n = unsafe { libc::write(1, buf.as_ptr().cast(), len) };
            if n >= 0 {
                return Ok(n as usize);
            }
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::Interrupted => {}
                io::ErrorKind::WouldBlock => {
                    Stdout::wait_room(None);
                }
                _ => return Err(e),
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for Stdout {
    fn drop(&mut self) {
        // SAFETY: fd 1 is ours to close; nothing writes to it after the sink.
        unsafe { libc::close(1) };
    }
}

/// Longest wait for kernel events before ticking (timeouts, input, redraw).
pub const TICK_MS: i32 = 50;
/// `--iface`: how often the packet socket is read.
const PACKET_POLL_MS: i32 = 10;
/// Ring-buffer records read per round at most (a few ms of work). While producers outpace
/// the reader the ring need not empty: an unbounded read would not return to ticks, so
/// reorder and response timeouts, idle eviction, the output's flush and the counters'
/// warning would all wait for the load to drop.
const RING_READS_PER_ROUND: usize = 16_384;
const WARN_EVERY_NS: u64 = 5_000_000_000;

/// Connections whose Close the kernel could not send (its buffer was full at the socket's
/// end and at its destruction) would wait for the idle timeout, holding their buffers.
/// Every `SWEEP_NS`, the kernel's connection table is asked about those quiet that long
/// (`SWEEP_MAX` at a time, in turn), and the ones it is done with are ended at the next
/// sweep, if nothing came for them meanwhile: an event written just before its socket went
/// may still have been in the buffer at the lookup.
struct CloseSweep {
    last_ns: u64,
    /// Where in the table the next sweep's lookups start.
    cursor: usize,
    suspects: Vec<(ConnKey, u64)>,
}

const SWEEP_NS: u64 = 2_000_000_000;
const SWEEP_MAX: usize = 4096;

impl CloseSweep {
    fn run(&mut self, tracer: &Tracer, pipeline: &mut Pipeline, now: u64, sink: &mut impl FnMut(Record)) {
        if now.saturating_sub(self.last_ns) < SWEEP_NS {
            return;
        }
        self.last_ns = now;
        for (key, last) in self.suspects.drain(..) {
            pipeline.end_unclosed(key, last, now, sink);
        }
        let quiet: Vec<(ConnKey, u64)> =
            pipeline.quiet_since(now.saturating_sub(SWEEP_NS)).skip(self.cursor).take(SWEEP_MAX).collect();
        self.cursor = if quiet.len() < SWEEP_MAX { 0 } else { self.cursor + SWEEP_MAX };
        self.suspects.extend(quiet.into_iter().filter(|&(key, _)| tracer.closed_unseen(key)));
    }
}

/// `pids`: the `--pid` processes, checked and watched since before anything was loaded.
pub fn run(cli: &Cli, pids: PidWatch) -> anyhow::Result<()> {
    install_signals();
    block_stop_signals(true);
    let loaded = loader::load(&loader::Options {
        buffer: cli.buffer,
        max_capture: cli.max_capture,
        pids: cli.pids.clone(),
        ports: cli.ports.clone(),
        hooks: cli.hooks,
        iface: cli.iface.clone(),
        snaplen: cli.snaplen,
    })
    ;
    // A stop signal while the programs load (seconds, each verified) ends the loading
    // before the next program (see `hooks::attach`): nothing was traced.
    let stopped = stop_requested();
    block_stop_signals(false);
    if stopped {
        eprintln!("l7trace: stopped before tracing started");
        return Ok(());
    }
    let mut tracer = loaded.context("setting up the kernel side")?;
    if cli.hooks == HooksArg::Auto {
        eprintln!("l7trace: --hooks auto chose {} on this kernel", tracer.hooks);
    }
    if !tracer.seq_checks && cli.iface.is_none() {
        // What the sequence checks catch then goes by unmarked: said once, up front.
        eprintln!(
            "l7trace: warning: no usable kernel BTF at /sys/kernel/btf/vmlinux: bytes spliced out of \
             a socket (splice(2)) and sends racing on one socket are not detected, and may be misframed"
        );
    }
    eprintln!(
        "l7trace: tracing (buffer={}, hooks={}, max_capture={})",
        match tracer.buffer {
            BufferKind::Perf => "perf",
            _ => "ringbuf",
        },
        tracer.hooks,
        cli.max_capture.min(tracer_common::MAX_CAPTURE as u32)
    );
    let mut pipeline =
        Pipeline::new(config(cli), filter(cli)).with_redactor(Redactor::new(&cli.redact, !cli.no_redact));
    pipeline.defer_closes(matches!(tracer.source, Source::Perf(_)));
    let mut packet = cli.iface.as_ref().map(|_| {
        let c = config(cli);
        let cfg = FlowConfig {
            limits: c.limits,
            max_flows: c.max_conns,
            idle_timeout_ns: c.idle_timeout_ns,
            announce_requests: c.announce_requests,
        };
        PacketPath::new(cfg, filter(cli)).with_redactor(Redactor::new(&cli.redact, !cli.no_redact))
    });
    let mut sink = sink(cli)?;
    let Outcome { counters, fault, unshown } =
        event_loop(&mut tracer, &mut pipeline, packet.as_mut(), sink.as_mut(), pids)?;
    let wants_summary = sink.wants_summary();
    let failure = sink.failure();
    // The live view gives the terminal back when dropped: before the summary is printed.
    drop(sink);
    // Not eprintln!, which panics when stderr is gone (the terminal hung up: SIGHUP).
    let mut stderr = io::stderr();
    for note in unshown {
        let _ = writeln!(stderr, "{note}");
    }
    if wants_summary {
        let _ = writeln!(stderr, "{}", counters.summary());
    }
    // Detaching waits for tracepoint grace periods (about a second on this kernel); the
    // summary is out before that.
    drop(tracer);
    match fault.or(failure) {
        // After the summary: what was captured is out, then why capture stopped.
        Some(why) => Err(anyhow::anyhow!(why)),
        None => Ok(()),
    }
}

/// What the loop knows of the capture interface's link.
#[derive(PartialEq, Eq)]
enum LinkSeen {
    Up,
    /// Down, and said so.
    DownSaid,
}

/// After the capture socket reported its interface down: says so once, says when it is up
/// again (the socket resumes by itself), and gives the reason to stop when the interface
/// is gone for good (deleted or moved to another namespace: the kernel unbound the socket).
fn watch_link(path: &mut PacketPath, sock: &PacketSocket, seen: &mut LinkSeen, notes: &mut Vec<String>) -> Option<String> {
    if !path.link_down {
        return None;
    }
    match sock.link() {
        Link::Gone => {
            return Some(format!(
                "--iface {}: the interface went away (deleted, or moved to another network namespace): nothing \
                 more can be captured",
                sock.name
            ))
        }
        Link::Down => {
            if *seen == LinkSeen::Up {
                notes.push(format!(
                    "l7trace: warning: --iface {}: the interface is down: nothing is captured until it is up again",
                    sock.name
                ));
                *seen = LinkSeen::DownSaid;
            }
        }
        Link::Up => {
            if *seen == LinkSeen::DownSaid {
                notes.push(format!("l7trace: --iface {}: the interface is up again: capturing", sock.name));
            } else {
                // Down and up between two looks: the frames in between were not seen.
                notes.push(format!(
                    "l7trace: warning: --iface {}: the interface went down and up again: what passed meanwhile was not captured",
                    sock.name
                ));
            }
            *seen = LinkSeen::Up;
            path.link_down = false;
        }
    }
    None
}

/// `--json` => JSON; `--tui`, or stdout is a terminal => the live view; else JSON.
fn live_view(cli: &Cli) -> bool {
    !cli.json && (cli.tui || io::stdout().is_terminal())
}

fn sink(cli: &Cli) -> anyhow::Result<Box<dyn Sink>> {
    if live_view(cli) {
        let tui = TuiSink::new(cli.max_rows, Clock::new()).context("opening the live view")?;
        return Ok(Box::new(tui));
    }
    // Stdout unbuffered by line: the sink writes each read's records at once (`flush`).
    Ok(Box::new(JsonSink::new(Stdout, Clock::new()).watch(1)))
}

fn config(cli: &Cli) -> Config {
    Config {
        limits: Limits {
            max_body: cli.max_body,
            max_buffer: cli.max_conn_buffer,
            max_total_buffer: cli.max_total_buffer,
            response_timeout_ns: secs_to_ns(cli.response_timeout),
            ..Limits::default()
        },
        // The live view shows a row as soon as a request is seen.
        announce_requests: live_view(cli),
        max_conns: cli.max_conns.max(1),
        idle_timeout_ns: secs_to_ns(cli.idle_timeout),
    }
}

fn filter(cli: &Cli) -> Filter {
    Filter {
        comms: cli.comms.iter().map(|c| c.as_bytes()[..c.len().min(15)].to_vec()).collect(),
        role: cli.role.map(|r| match r {
            RoleArg::Client => Role::Client,
            RoleArg::Server => Role::Server,
        }),
        pids: cli.pids.clone(),
    }
}

/// Runs until a signal, `q`, a closed stdout, or a fault that ends capture (returned, for
/// after the summary).
fn event_loop(
    tracer: &mut Tracer,
    pipeline: &mut Pipeline,
    mut packet: Option<&mut PacketPath>,
    sink: &mut dyn Sink,
    mut pids: PidWatch,
) -> anyhow::Result<Outcome> {
    // The packet socket is not waited on. Its ring is read every PACKET_POLL_MS (its 16
    // MiB hold far more than that), and at once again while reads come back full.
    let fds = tracer.source.fds();
    let epoll = Epoll::new(&fds).context("epoll")?;
    let wait_ms = if tracer.packet.is_some() { PACKET_POLL_MS } else { TICK_MS };
    let mut backlog = false;
    let mut perf_lost = 0u64;
    let mut scratch = Vec::new();
    let mut last_warn = (monotonic_ns(), 0u64);
    let mut last_tick = 0u64;
    // Events the kernel could not deliver, as last seen: a rise marks the live connections.
    let mut kernel_lost = 0u64;
    let mut sweep = CloseSweep { last_ns: monotonic_ns(), cursor: 0, suspects: Vec::new() };
    let mut link = LinkSeen::Up;
    let mut fault = None;
    // Notices about the capture, for the sink; those it could not show (it held the
    // terminal), for after it gave the terminal back.
    let mut notes = Vec::new();
    let mut unshown = Vec::new();
    loop {
        let stopping = STOP.load(Ordering::Relaxed);
        if !stopping && !backlog {
            epoll.wait(wait_ms);
        }
        let now = monotonic_ns();
        let mut quit = false;
        {
            let mut emit = |r| {
                if sink.record(r) == Flow::Quit {
                    quit = true;
                }
            };
            match (packet.as_deref_mut(), tracer.packet.as_ref()) {
                (Some(path), Some(sock)) => {
                    // Packets carry the exchanges; the syscall events read after them name
                    // the processes of the exchanges they finished.
                    backlog = path.poll(sock);
                    notes.append(&mut path.read_errors);
                    if stopping {
                        path.flush(sock, now);
                    } else if now - last_tick >= TICK_MS as u64 * 1_000_000 {
                        path.tick(sock, now);
                        if let Some(why) = watch_link(path, sock, &mut link, &mut notes) {
                            // Stops as a signal would: what is in progress is emitted.
                            fault = Some(why);
                            STOP.store(true, Ordering::Relaxed);
                        }
                    }
                    backlog |= drain_round(&mut tracer.source, stopping, &mut |raw| path.on_syscall_raw(raw, now), &mut perf_lost, &mut scratch);
                    path.emit_ready(&mut emit);
                }
                _ => {
                    backlog = drain_round(&mut tracer.source, stopping, &mut |raw| pipeline.on_raw(raw, &mut emit), &mut perf_lost, &mut scratch);
                    pipeline.end_round(&mut emit);
                    // The kernel side stops copying what nothing here will parse any more.
                    for key in pipeline.done_with() {
                        tracer.mute(key);
                    }
                    if stopping {
                        note_losses(pipeline, &tracer.kernel_counters(), perf_lost, &mut kernel_lost);
                        pipeline.flush(now, &mut emit);
                    } else if now - last_tick >= TICK_MS as u64 * 1_000_000 {
                        pipeline.tick(now, &mut emit);
                        // Only with the buffer read to its end: what it held is in.
                        if !backlog {
                            sweep.run(tracer, pipeline, now, &mut emit);
                        }
                    }
                }
            }
        }
        for note in notes.drain(..) {
            if !sink.notice(&note) {
                unshown.push(note);
            }
        }
        if sink.flush() == Flow::Quit {
            quit = true;
        }
        if stopping {
            break;
        }
        // Ticks are paced, so a busy buffer does not make per-connection work per event.
        if !quit && now - last_tick < TICK_MS as u64 * 1_000_000 {
            continue;
        }
        last_tick = now;
        for pid in pids.exited() {
            tracer.forget_pid(pid);
            let left = if pids.is_empty() { ": no --pid process is left, nothing more is traced" } else { "" };
            let note = format!("l7trace: warning: --pid {pid} exited{left}");
            if !sink.notice(&note) {
                unshown.push(note);
            }
        }
        let k = tracer.kernel_counters();
        if packet.is_none() {
            note_losses(pipeline, &k, perf_lost, &mut kernel_lost);
        }
        let c = counters(&k, pipeline, packet.as_deref(), perf_lost);
        if now - last_warn.0 >= WARN_EVERY_NS {
            if c.lost_events > last_warn.1 {
                eprintln!("l7trace: warning: {} events lost so far (kernel buffer full)", c.lost_events);
            }
            last_warn = (now, c.lost_events);
        }
        if quit || sink.tick(now, &c) == Flow::Quit {
            STOP.store(true, Ordering::Relaxed);
        }
    }
    let counters = counters(&tracer.kernel_counters(), pipeline, packet.as_deref(), perf_lost);
    Ok(Outcome { counters, fault, unshown })
}

/// How the event loop ended.
struct Outcome {
    counters: Counters,
    /// Why capture stopped by itself, if it did: said last.
    fault: Option<String>,
    /// Notices the sink could not show (the live view held the terminal).
    unshown: Vec<String>,
}

/// Tells the pipeline when the kernel's count of events it could not deliver (in `k`, the
/// kernel counters just read) has risen since `seen`, stamped now (a loss after the loop's
/// `now` would otherwise be dated before events it followed, and those would clear it).
fn note_losses(pipeline: &mut Pipeline, k: &[u64; counters::COUNT as usize], perf_lost: u64, seen: &mut u64) {
    let lost = k[counters::LOST_EVENTS as usize] + perf_lost;
    if lost > *seen {
        *seen = lost;
        pipeline.events_lost(monotonic_ns());
    }
}

/// `k`: the kernel counters, just read.
fn counters(k: &[u64; counters::COUNT as usize], pipeline: &Pipeline, packet: Option<&PacketPath>, perf_lost: u64) -> Counters {
    let s = pipeline.stats;
    let mut c = Counters {
        exchanges: s.exchanges,
        incomplete: s.incomplete,
        // Sends whose place in the stream was unknown are shown as lost: counted so.
        lost_events: k[counters::LOST_EVENTS as usize] + perf_lost + s.unordered_events,
        lost_bytes: s.lost_bytes,
        dropped_bytes: s.dropped_bytes,
        uncaptured_bytes: k[counters::UNCAPTURED_BYTES as usize],
        unseen_bytes: k[counters::UNSEEN_BYTES as usize],
        active_conns: pipeline.active_conns() as u64,
        evicted_conns: s.evicted_conns,
        decode_errors: s.decode_errors,
        events: s.events,
        orphan_responses: s.orphan_responses,
    };
    if let Some(p) = packet {
        // Packets the kernel dropped on the capture socket are lost events like any other.
        c.exchanges += p.exchanges;
        c.incomplete += p.incomplete;
        c.lost_events += p.kernel_drops;
        c.events += p.events;
        // Saturating: a Content-Length counted lost is the sender's number.
        c.lost_bytes = c.lost_bytes.saturating_add(p.lost_bytes).saturating_add(p.unreported_lost_bytes());
        c.dropped_bytes += p.dropped_bytes();
        c.uncaptured_bytes = p.uncaptured_bytes();
        c.active_conns = p.active_flows() as u64;
        c.evicted_conns += p.evicted_flows();
        c.decode_errors += p.frame_errors;
        c.orphan_responses += p.orphan_responses();
    }
    c
}

/// One round of reads (`drain`); at exit (`stopping`) the whole ring, since what is left
/// there would be lost. True when the ring may hold more.
fn drain_round(
    source: &mut Source,
    stopping: bool,
    on_raw: &mut impl FnMut(&[u8]),
    perf_lost: &mut u64,
    scratch: &mut Vec<u8>,
) -> bool {
    loop {
        let more = drain(source, on_raw, perf_lost, scratch);
        if !(stopping && more) {
            return more;
        }
    }
}

/// What the kernel buffers hold now, one raw record at a time, at most
/// `RING_READS_PER_ROUND` of the ring; true when the ring may hold more.
pub fn drain(source: &mut Source, on_raw: &mut impl FnMut(&[u8]), perf_lost: &mut u64, scratch: &mut Vec<u8>) -> bool {
    match source {
        Source::Ring(rb) => rb.read(RING_READS_PER_ROUND, on_raw),
        Source::Perf(bufs) => {
            for buf in bufs.iter_mut() {
                buf.for_each(|ev| match ev {
                    PerfEvent::Sample { head, tail: [] } => on_raw(head),
                    PerfEvent::Sample { head, tail } => {
                        scratch.clear();
                        scratch.extend_from_slice(head);
                        scratch.extend_from_slice(tail);
                        on_raw(scratch);
                    }
                    PerfEvent::Lost { count } => *perf_lost += count,
                });
            }
            false
        }
    }
}

/// A minimal epoll set over the buffers' fds.
struct Epoll(i32);

impl Epoll {
    fn new(fds: &[i32]) -> io::Result<Self> {
        // SAFETY: plain syscalls; the fds outlive the set (both live in event_loop).
        let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if ep < 0 {
            return Err(io::Error::last_os_error());
        }
        for &fd in fds {
            let mut ev = libc::epoll_event { events: libc::EPOLLIN as u32, u64: fd as u64 };
            // SAFETY: valid epoll fd, fd and event pointer.
            if unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, fd, &mut ev) } < 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(Epoll(ep))
    }

    fn wait(&self, timeout_ms: i32) {
        let mut evs = [libc::epoll_event { events: 0, u64: 0 }; 16];
        // SAFETY: valid buffer; EINTR (a signal) just returns early, which is what we want.
        unsafe { libc::epoll_wait(self.0, evs.as_mut_ptr(), evs.len() as i32, timeout_ms) };
    }
}

impl Drop for Epoll {
    fn drop(&mut self) {
        // SAFETY: our own fd.
        unsafe { libc::close(self.0) };
    }
}
