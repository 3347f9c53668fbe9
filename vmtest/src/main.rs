//! Kernel-matrix test of l7trace (`cargo xtask vm-test`). A static binary that runs as
//! /init of a VM booted on each kernel of the matrix, or on the host with `--host`:
//!
//! - loads every kernel program of l7trace, once per verifier configuration (the
//!   verifier's verdict on this kernel for those settings; see `VERIFIER_CONFIGS`);
//! - per hooks variant (tracepoint, kprobe): loads and attaches l7trace's programs, runs
//!   HTTP scenarios in a child process over loopback, and checks the records;
//! - prints one sentinel line per variant, `L7TRACE-VMTEST kernel=.. variant=.. result=..`,
//!   and `L7TRACE-VMTEST end` when done, which the runner looks for in the serial log.
mod check;
mod http;
mod init;

use std::{
    process::{Child, Command, ExitCode},
    time::{Duration, Instant},
};

use http::Scenario;
use tracer::{
    hooks::{HooksArg, KernelHooks},
    loader::{self, BufferKind, Tracer},
    pipeline::{Config, Filter, Pipeline, Record},
    protocols::Limits,
};

const SENTINEL: &str = "L7TRACE-VMTEST";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("child") => child(&args[1..]),
        Some("--host") => {
            let ok = matrix(false);
            if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
        }
        _ if std::process::id() == 1 => {
            if let Err(e) = init::setup() {
                println!("vmtest: init: {e}");
            }
            matrix(true);
            init::halt()
        }
        _ => {
            eprintln!("usage: vmtest --host   (or as /init of a VM)");
            ExitCode::from(2)
        }
    }
}

fn child(args: &[String]) -> ExitCode {
    let sc = args.first().and_then(|s| Scenario::from_name(s));
    let port = args.get(1).and_then(|p| p.parse().ok());
    let (Some(sc), Some(port)) = (sc, port) else {
        eprintln!("vmtest child: want SCENARIO PORT");
        return ExitCode::from(2);
    };
    match http::run_child(sc, port) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vmtest child {}: {e}", sc.name());
            ExitCode::FAILURE
        }
    }
}

/// Every variant on this kernel; true when none failed.
fn matrix(in_vm: bool) -> bool {
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_owned();
    let kernel_hooks = KernelHooks::probe();
    println!("vmtest: kernel {kernel}: {kernel_hooks:?}");
    let mut ok = true;
    for config in VERIFIER_CONFIGS {
        ok &= verifier(&kernel, config, &kernel_hooks);
    }
    for (variant, arg) in [("tracepoint", HooksArg::Tracepoint), ("kprobe", HooksArg::Kprobe)] {
        if arg == HooksArg::Kprobe && !kernel_hooks.kprobes && !in_vm {
            println!("{SENTINEL} kernel={kernel} variant={variant} hooks=- result=UNAVAILABLE detail=no-kprobes-in-this-kernel");
            continue;
        }
        ok &= suite(&kernel, variant, arg);
    }
    println!("{SENTINEL} end kernel={kernel}");
    ok
}

/// One verifier cell: every program loaded once with the settings `options` gives.
struct VerifierConfig {
    variant: &'static str,
    options: fn(&KernelHooks) -> loader::Options,
}

/// The verifier drops the code behind a setting that is 0 at load time, so each cell loads
/// every program with other settings, together covering every code path a setting turns
/// on: what `l7trace` runs with by default on this kernel (ring buffer, the hooks `auto`
/// picks, the socket offsets from BTF); every filter on, with the fast path where the
/// kernel has it; `--iface lo` (attribution only, outgoing copies dropped, a snaplen) with
/// the perf buffer and the syscall probes on kprobes where there are (the slow path).
const VERIFIER_CONFIGS: &[VerifierConfig] = &[
    VerifierConfig { variant: "verifier", options: |_| default_options(HooksArg::Auto) },
    VerifierConfig {
        variant: "verifier-filters",
        options: |_| loader::Options { pids: vec![1], ports: vec![80], ..default_options(HooksArg::Tracepoint) },
    },
    VerifierConfig {
        variant: "verifier-iface",
        options: |k| loader::Options {
            buffer: BufferKind::Perf,
            pids: vec![1],
            ports: vec![80],
            iface: Some("lo".into()),
            snaplen: 256,
            ..default_options(if k.kprobes { HooksArg::Kprobe } else { HooksArg::Auto })
        },
    },
];

/// `l7trace --hooks HOOKS` and nothing else.
fn default_options(hooks: HooksArg) -> loader::Options {
    loader::Options { buffer: BufferKind::Auto, max_capture: 16384, pids: vec![], ports: vec![], hooks, iface: None, snaplen: 65535 }
}

/// Loads every program (no attach) with the settings of `config`: the verifier's verdict,
/// with its log on refusal.
fn verifier(kernel: &str, config: &VerifierConfig, kernel_hooks: &KernelHooks) -> bool {
    let variant = config.variant;
    let start = Instant::now();
    let settings = match loader::Settings::resolve(&(config.options)(kernel_hooks)) {
        Ok(s) => s,
        Err(e) => {
            println!("vmtest: {variant}: no settings: {e}");
            println!("{SENTINEL} kernel={kernel} variant={variant} hooks=- result=FAIL detail=settings");
            return false;
        }
    };
    println!("vmtest: {variant}: loading every program with hooks={} {settings}", settings.hooks);
    let results = match loader::verify_programs(&settings) {
        Ok(r) => r,
        Err(e) => {
            println!("vmtest: {variant}: cannot open the object: {e}");
            println!("{SENTINEL} kernel={kernel} variant={variant} hooks={} result=FAIL detail=object", settings.hooks);
            return false;
        }
    };
    let refused: Vec<&String> = results.iter().filter(|(_, r)| r.is_err()).map(|(n, _)| n).collect();
    for (name, r) in &results {
        if let Err(e) = r {
            println!("vmtest: {variant}: refused {name}: {e}");
        }
    }
    let result = if refused.is_empty() { "PASS" } else { "FAIL" };
    println!(
        "{SENTINEL} kernel={kernel} variant={variant} hooks={} result={result} detail=accepted-{}/{}{} settings={settings} secs={:.1}",
        settings.hooks,
        results.len() - refused.len(),
        results.len(),
        if refused.is_empty() { String::new() } else { format!(",refused:{}", refused.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("+")) },
        start.elapsed().as_secs_f64()
    );
    refused.is_empty()
}

fn suite(kernel: &str, variant: &str, arg: HooksArg) -> bool {
    let start = Instant::now();
    let mut tracer = match loader::load(&default_options(arg)) {
        Ok(t) => t,
        Err(e) => {
            println!("vmtest: {variant}: loading failed: {e}");
            println!("{SENTINEL} kernel={kernel} variant={variant} hooks=- result=FAIL detail=load");
            return false;
        }
    };
    let hooks = tracer.hooks.to_string();
    let buffer = if tracer.buffer == BufferKind::Perf { "perf" } else { "ringbuf" };
    println!("vmtest: {variant}: attached (hooks={hooks}, buffer={buffer})");
    let mut run = Run::new();
    let (mut passed, mut total) = (0, 0);
    for &sc in http::ALL {
        total += 1;
        // A scenario that cannot run is not a pass: it fails the variant.
        if sc.ipv6() && !http::has_ipv6() {
            println!("vmtest: {variant}: {}: FAIL (no ::1 on lo)", sc.name());
            continue;
        }
        match run.scenario(&mut tracer, sc) {
            Ok(()) => {
                passed += 1;
                println!("vmtest: {variant}: {}: ok", sc.name());
            }
            Err(problems) => {
                println!("vmtest: {variant}: {}: FAIL", sc.name());
                for p in problems {
                    println!("vmtest:     {p}");
                }
            }
        }
    }
    let result = if passed == total { "PASS" } else { "FAIL" };
    println!(
        "{SENTINEL} kernel={kernel} variant={variant} hooks={hooks} result={result} detail=scenarios-{passed}/{total} secs={:.1}",
        start.elapsed().as_secs_f64()
    );
    passed == total
}

/// The pipeline of one attached variant and every record it produced.
struct Run {
    pipeline: Pipeline,
    records: Vec<Record>,
    perf_lost: u64,
    scratch: Vec<u8>,
}

impl Run {
    fn new() -> Self {
        let cfg = Config { limits: Limits::default(), announce_requests: false, max_conns: 1024, idle_timeout_ns: 300_000_000_000 };
        Run { pipeline: Pipeline::new(cfg, Filter::default()), records: Vec::new(), perf_lost: 0, scratch: Vec::new() }
    }

    fn poll(&mut self, tracer: &mut Tracer) {
        let records = &mut self.records;
        let pipeline = &mut self.pipeline;
        tracer::run::drain(&mut tracer.source, &mut |raw| pipeline.on_raw(raw, &mut |r| records.push(r)), &mut self.perf_lost, &mut self.scratch);
        pipeline.end_round(&mut |r| records.push(r));
        for key in pipeline.done_with() {
            tracer.mute(key);
        }
        pipeline.tick(tracer::output::monotonic_ns(), &mut |r| records.push(r));
    }

    fn scenario(&mut self, tracer: &mut Tracer, sc: Scenario) -> Result<(), Vec<String>> {
        let port = http::free_port(sc.ipv6()).map_err(|e| vec![format!("free port: {e}")])?;
        let mut child = spawn(sc, port).map_err(|e| vec![format!("spawn: {e}")])?;
        let pid = child.id();
        let want = 2 * sc.expected().len();
        let events0 = self.pipeline.stats.events;
        let deadline = Instant::now() + Duration::from_secs(15);
        let mut exited_at = None;
        loop {
            self.poll(tracer);
            if exited_at.is_none() {
                match child.try_wait() {
                    Ok(Some(status)) if !status.success() => return Err(vec![format!("child exited with {status}")]),
                    Ok(Some(_)) => exited_at = Some(Instant::now()),
                    _ => {}
                }
            }
            let have = check::of_port(&self.records, port).len();
            // After the child is gone, a short grace for the last events and closes.
            let settled = exited_at.is_some_and(|t| have >= want && t.elapsed() > Duration::from_millis(200));
            if settled || Instant::now() > deadline || exited_at.is_some_and(|t| t.elapsed() > Duration::from_secs(3)) {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if exited_at.is_none() {
            let _ = child.kill();
            let _ = child.wait();
            return Err(vec!["child did not finish in 15 s".into()]);
        }
        let mine = check::of_port(&self.records, port);
        let mut problems = check::check(sc, &mine, pid, port);
        let events = self.pipeline.stats.events - events0;
        if sc == Scenario::Upgrade && events > http::UPGRADE_MAX_EVENTS {
            problems.push(format!("{events} events: the frames after the upgrade were copied"));
        }
        if problems.is_empty() {
            return Ok(());
        }
        Err(problems.into_iter().chain(mine.iter().map(|r| format!("record: {}", check::describe(r)))).collect())
    }
}

fn spawn(sc: Scenario, port: u16) -> std::io::Result<Child> {
    Command::new("/proc/self/exe").args(["child", sc.name(), &port.to_string()]).spawn()
}
