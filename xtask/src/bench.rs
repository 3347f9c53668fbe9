//! `cargo xtask bench`: the tracer's overhead on a real server, and the userspace pipeline
//! alone, in one run; a table on stdout and JSON under `bench/results/`.
//!
//! nginx (Debian's, one worker, `master_process off`) serves a 1 KiB file on loopback,
//! pinned to CPU 0; wrk (one thread) drives it at saturation from CPU 1; l7trace is not
//! pinned. Each round runs untraced and every traced variant (in an order rotated from round
//! to round), with keep-alive and with `Connection: close`; each traced run starts a fresh
//! `l7trace --json --port <port> > /dev/null`.
//!
//! Before nginx starts, the probes' cost per event alone: a loopback TCP pair in one
//! process (`xtask bench-pair`, see pair.rs) on one CPU, untraced and traced in turn, its
//! CPU time compared; far steadier than requests/s on a shared machine.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::proc::output_of;

const USAGE: &str = "\
usage: cargo xtask bench [OPTIONS]

  --rounds N          rounds per mode, each untraced and every variant (default 5)
  --duration SECS     wrk time per round (default 10)
  --connections N     wrk connections (default 64)
  --port PORT         nginx port on 127.0.0.1 (default 18080)
  --variant NAME=ARGS an extra traced variant: l7trace --json --port P ARGS
                      (repeatable; e.g. --variant 'iface=--iface lo'; `{nginx}` in
                      ARGS is the server's pid; skipped when `l7trace --help` does not
                      list its first option)
  --bpf-stats         also measure the kernel programs' run time per request
                      (sysctl kernel.bpf_stats_enabled=1 during the run: it adds two
                      clock reads to every program run, traced rounds pay for them)
  --pipeline-secs S   time per case of the fixed-iteration pipeline bench (default 2)
  --no-pipeline       skip the pipeline bench
  --pair-iterations N iterations per run of the probe-cost pair (default 100000)
  --no-pair           skip the probe-cost pair
  --quick             smoke run: 2 rounds x 3 s, pipeline 0.5 s, pair 20000
";

/// nginx and wrk get one core each, so the untraced run is not limited by their fight
/// for a core; l7trace takes whatever is left on either.
const NGINX_CPU: &str = "0";
const WRK_CPU: &str = "1";
const BODY: usize = 1024;
/// In a variant's arguments: the pid of the nginx that serves the load.
const NGINX_PID: &str = "{nginx}";

struct Opts {
    rounds: usize,
    duration: u64,
    connections: u32,
    port: u16,
    variants: Vec<Variant>,
    pipeline_secs: Option<f64>,
    /// Iterations per run of the probe-cost pair; None: not run.
    pair_iterations: Option<u64>,
    bpf_stats: bool,
    /// The nginx that serves the load, whose CPU time each run reads (0: not started).
    nginx_pid: u32,
}

#[derive(Clone)]
struct Variant {
    name: String,
    args: Vec<String>,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            rounds: 5,
            duration: 10,
            connections: 64,
            port: 18080,
            // The interface capture: run when this l7trace has it.
            variants: vec![
                Variant { name: "json".into(), args: vec![] },
                Variant { name: "iface".into(), args: vec!["--iface".into(), "lo".into()] },
                Variant { name: "tui".into(), args: vec!["--tui".into()] },
                // Only the server traced, as when one debugs one service: the client's
                // calls are left in the kernel, after the pid test.
                Variant { name: "server".into(), args: vec!["--pid".into(), NGINX_PID.into()] },
            ],
            pipeline_secs: Some(2.0),
            pair_iterations: Some(100_000),
            bpf_stats: false,
            nginx_pid: 0,
        }
    }
}

fn parse_opts(args: &[String]) -> Result<Opts> {
    let mut o = Opts::default();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = |name: &str| it.next().cloned().with_context(|| format!("{name} needs a value"));
        match a.as_str() {
            "--rounds" => o.rounds = val(a)?.parse().context("--rounds")?,
            "--duration" => o.duration = val(a)?.parse().context("--duration")?,
            "--connections" => o.connections = val(a)?.parse().context("--connections")?,
            "--port" => o.port = val(a)?.parse().context("--port")?,
            "--pipeline-secs" => o.pipeline_secs = Some(val(a)?.parse().context("--pipeline-secs")?),
            "--no-pipeline" => o.pipeline_secs = None,
            "--pair-iterations" => o.pair_iterations = Some(val(a)?.parse().context("--pair-iterations")?),
            "--no-pair" => o.pair_iterations = None,
            "--bpf-stats" => o.bpf_stats = true,
            "--variant" => {
                let v = val(a)?;
                let (name, rest) = v.split_once('=').context("--variant NAME=ARGS")?;
                o.variants.retain(|x| x.name != name);
                o.variants.push(Variant {
                    name: name.to_owned(),
                    args: rest.split_whitespace().map(str::to_owned).collect(),
                });
            }
            "--quick" => {
                o.rounds = 2;
                o.duration = 3;
                o.pipeline_secs = o.pipeline_secs.map(|_| 0.5);
                o.pair_iterations = o.pair_iterations.map(|_| 20_000);
            }
            "-h" | "--help" => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown option `{other}`\n{USAGE}"),
        }
    }
    if o.rounds == 0 || o.duration == 0 || o.pair_iterations == Some(0) {
        bail!("--rounds, --duration and --pair-iterations must be at least 1");
    }
    Ok(o)
}

pub fn run(args: &[String]) -> Result<ExitCode> {
    let mut opts = parse_opts(args)?;
    if !crate::is_root() {
        bail!("`cargo xtask bench` must run as root: l7trace loads eBPF programs");
    }
    crate::setup::run()?;
    crate::build_release()?;
    let bin = crate::workspace_root().join("target/release/l7trace");
    let skipped = drop_unsupported_variants(&bin, &mut opts.variants);
    for (v, why) in &skipped {
        eprintln!("xtask: bench: skipping variant `{v}`: {why}");
    }
    let pipeline = match opts.pipeline_secs {
        Some(secs) => pipeline_bench(secs)?,
        None => Vec::new(),
    };
    let _stats = opts.bpf_stats.then(BpfStats::enable).transpose()?;
    let pair = match opts.pair_iterations {
        Some(n) => Some(probe_cost(&opts, &bin, n)?),
        None => None,
    };
    let nginx = Nginx::start(opts.port)?;
    opts.nginx_pid = nginx.pid();
    eprintln!("xtask: bench: nginx pid {} on 127.0.0.1:{} (CPU {NGINX_CPU}), wrk on CPU {WRK_CPU}", nginx.pid(), opts.port);
    // Warm-up: fills caches, lets nginx allocate its connections.
    wrk(&opts, false, 2.min(opts.duration))?;
    let mut modes = Vec::new();
    for close in [false, true] {
        modes.push(run_mode(&opts, &bin, close)?);
    }
    drop(nginx);
    let report = Report { opts: &opts, modes, pipeline, pair, skipped };
    print!("{}", report.table());
    let path = report.write_json()?;
    println!("\nresults: {}", path.display());
    Ok(ExitCode::SUCCESS)
}

/// Removes the variants whose first option `l7trace --help` does not list.
fn drop_unsupported_variants(bin: &Path, variants: &mut Vec<Variant>) -> Vec<(String, String)> {
    let help = output_of(bin, &["--help"]).unwrap_or_default();
    let mut skipped = Vec::new();
    variants.retain(|v| match v.args.first() {
        Some(opt) if opt.starts_with("--") && !help.contains(opt.as_str()) => {
            skipped.push((v.name.clone(), format!("`l7trace --help` does not list {opt}")));
            false
        }
        _ => true,
    });
    skipped
}

// ---------------------------------------------------------------------------------------
// The userspace pipeline

/// Runs the pipeline bench in fixed-time mode on one core; its `pipeline-fixed:` lines.
fn pipeline_bench(secs: f64) -> Result<Vec<String>> {
    eprintln!("xtask: bench: pipeline (cargo bench -p tracer --bench pipeline, fixed {secs} s per case, CPU {WRK_CPU})");
    let out = Command::new("taskset")
        .args(["-c", WRK_CPU])
        .arg(crate::proc::find_in_path("cargo").unwrap_or_else(|| "cargo".into()))
        .args(["bench", "-q", "-p", "tracer", "--bench", "pipeline"])
        .env("L7TRACE_BENCH_FIXED", secs.to_string())
        .current_dir(crate::workspace_root())
        .stderr(Stdio::inherit())
        .output()
        .context("running the pipeline bench")?;
    if !out.status.success() {
        bail!("the pipeline bench failed ({})", out.status);
    }
    let lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("pipeline-fixed: ").map(str::to_owned))
        .collect();
    if lines.is_empty() {
        bail!("the pipeline bench printed no result");
    }
    Ok(lines)
}

// ---------------------------------------------------------------------------------------
// nginx

struct Nginx {
    child: Child,
    dir: PathBuf,
}

impl Nginx {
    fn start(port: u16) -> Result<Nginx> {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            bail!("127.0.0.1:{port} is already taken: choose another with --port");
        }
        let dir = std::env::temp_dir().join(format!("l7trace-bench-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("root"))?;
        let body: Vec<u8> = (0..BODY).map(|i| b'a' + (i % 26) as u8).collect();
        std::fs::write(dir.join("root/1k.bin"), body)?;
        std::fs::write(dir.join("nginx.conf"), nginx_conf(&dir, port))?;
        let mut child = Command::new("taskset")
            .args(["-c", NGINX_CPU, "/usr/sbin/nginx", "-p"])
            .arg(&dir)
            .arg("-e")
            .arg(dir.join("error.log"))
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .context("starting /usr/sbin/nginx")?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                let log = std::fs::read_to_string(dir.join("error.log")).unwrap_or_default();
                bail!("nginx exited ({status}) at start; error.log:\n{log}");
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                bail!("nginx did not listen on {port} within 10 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(Nginx { child, dir })
    }

    /// taskset execs nginx, and with `master_process off` that process serves.
    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        signal(self.child.id(), "QUIT");
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                let _ = std::fs::remove_dir_all(&self.dir);
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One worker; `sendfile off` so the 1 KiB body goes through writev and is captured and
/// parsed by the tracer (with sendfile it would only be counted).
fn nginx_conf(dir: &Path, port: u16) -> String {
    let d = dir.display();
    format!(
        "daemon off;
master_process off;
user root;
worker_processes 1;
error_log {d}/error.log;
pid {d}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile off;
    keepalive_requests 1000000;
    default_type application/octet-stream;
    client_body_temp_path {d}/client_body_temp;
    proxy_temp_path {d}/proxy_temp;
    fastcgi_temp_path {d}/fastcgi_temp;
    uwsgi_temp_path {d}/uwsgi_temp;
    scgi_temp_path {d}/scgi_temp;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        root {d}/root;
    }}
}}
"
    )
}

fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill").arg(format!("-{sig}")).arg(pid.to_string()).status();
}

// ---------------------------------------------------------------------------------------
// wrk

#[derive(Clone, Copy, Default)]
struct WrkResult {
    rps: f64,
    p99_us: f64,
    requests: u64,
    secs: f64,
    errors: u64,
    /// nginx's CPU time (user + system) during the run: what the server paid, the probes
    /// that ran in its syscalls included. Less moved by the shared machine's load than
    /// requests/s: time nginx waited for a CPU is not in it.
    server_cpu_secs: f64,
}

fn wrk(opts: &Opts, close: bool, secs: u64) -> Result<WrkResult> {
    let mut cmd = Command::new("taskset");
    cmd.args(["-c", WRK_CPU, "wrk", "-t1", "--latency"])
        .arg(format!("-c{}", opts.connections))
        .arg(format!("-d{secs}s"));
    if close {
        cmd.args(["-H", "Connection: close"]);
    }
    cmd.arg(format!("http://127.0.0.1:{}/1k.bin", opts.port));
    let server0 = proc_cpu_secs(opts.nginx_pid).unwrap_or(0.0);
    let out = cmd.stdin(Stdio::null()).output().context("running wrk")?;
    let server_cpu_secs = proc_cpu_secs(opts.nginx_pid).unwrap_or(0.0) - server0;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!("wrk failed ({}): {text}", out.status);
    }
    let r = parse_wrk(&text).with_context(|| format!("cannot read wrk's output:\n{text}"))?;
    Ok(WrkResult { server_cpu_secs, ..r })
}

fn parse_wrk(text: &str) -> Option<WrkResult> {
    let mut r = WrkResult::default();
    for line in text.lines().map(str::trim) {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("Requests/sec:") => r.rps = words.next()?.parse().ok()?,
            Some("99%") => r.p99_us = duration_us(words.next()?)?,
            Some("Non-2xx") => r.errors += line.rsplit(' ').next()?.parse::<u64>().ok()?,
            Some("Socket") => {
                // Socket errors: connect 0, read 0, write 0, timeout 0
                for part in line.split(':').nth(1)?.split(',') {
                    r.errors += part.split_whitespace().nth(1)?.parse::<u64>().ok()?;
                }
            }
            Some(n) if line.contains(" requests in ") => {
                r.requests = n.parse().ok()?;
                let secs = line.split(" requests in ").nth(1)?.split(',').next()?;
                r.secs = duration_us(secs)? / 1e6;
            }
            _ => {}
        }
    }
    (r.rps > 0.0 && r.requests > 0).then_some(r)
}

/// "812.00us", "2.34ms", "1.01s", "2.00m" -> microseconds.
fn duration_us(s: &str) -> Option<f64> {
    let split = s.find(|c: char| c.is_ascii_alphabetic())?;
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    let scale = match unit {
        "us" => 1.0,
        "ms" => 1e3,
        "s" => 1e6,
        "m" => 60e6,
        "h" => 3600e6,
        _ => return None,
    };
    Some(n * scale)
}

// ---------------------------------------------------------------------------------------
// l7trace

#[derive(Clone, Copy, Default)]
struct Traced {
    cpu_secs: f64,
    peak_rss_kib: u64,
    events: u64,
    lost_events: u64,
    /// With --bpf-stats: run time of l7trace's kernel programs during the load.
    bpf_ns: Option<u64>,
}

/// A traced run's l7trace: `--json` to /dev/null, or with `--tui` its live view in a
/// detached tmux pane (a real terminal, redrawn as a user would see it).
struct Tracer {
    child: Option<Child>,
    pid: u32,
    lines: Receiver<String>,
    /// The tmux server (`-L` socket name) of a live-view run.
    tmux: Option<String>,
}

impl Tracer {
    fn start(bin: &Path, port: u16, extra: &[String]) -> Result<Tracer> {
        if extra.iter().any(|a| a == "--tui") {
            return Tracer::start_in_tmux(bin, port, extra);
        }
        let mut child = Command::new(bin)
            .args(["--json", "--port", &port.to_string()])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let stderr = child.stderr.take().context("l7trace stderr")?;
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut t = Tracer { pid: child.id(), child: Some(child), lines, tmux: None };
        t.wait_for("l7trace: tracing", Duration::from_secs(30))
            .context("l7trace did not report `l7trace: tracing`")?;
        Ok(t)
    }

    /// l7trace as the only process of a 160x48 tmux pane (`exec`, so the pane's pid is
    /// its pid), its stderr to a file that a thread follows.
    fn start_in_tmux(bin: &Path, port: u16, extra: &[String]) -> Result<Tracer> {
        // A tmux server and a stderr file of its own per run: the last run's server may
        // still be going away, and its follower thread still reading its file.
        static RUNS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let socket = format!("l7bench-{}-{run}", std::process::id());
        let err_path = std::env::temp_dir().join(format!("{socket}.stderr"));
        let _ = std::fs::remove_file(&err_path);
        let cmd = format!("exec {} --port {port} {} 2>{}", bin.display(), extra.join(" "), err_path.display());
        let tmux = |args: &[&str]| -> Result<String> {
            let out = Command::new("tmux").arg("-L").arg(&socket).args(args).output().context("running tmux")?;
            if !out.status.success() {
                bail!("tmux {args:?}: {}", String::from_utf8_lossy(&out.stderr).trim());
            }
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        };
        tmux(&["new-session", "-d", "-s", "bench", "-x", "160", "-y", "48", &cmd])?;
        let pid: u32 = tmux(&["display-message", "-p", "-t", "bench", "#{pane_pid}"])?.parse().context("pane pid")?;
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            let mut seen = 0usize;
            loop {
                // Gone before the read: the read has all it wrote.
                let done = !Path::new(&format!("/proc/{pid}")).exists();
                let text = std::fs::read_to_string(&err_path).unwrap_or_default();
                let complete = text.rfind('\n').map_or(0, |i| i + 1);
                if complete > seen {
                    for line in text[seen..complete].lines() {
                        if tx.send(line.to_owned()).is_err() {
                            return;
                        }
                    }
                    seen = complete;
                } else if done {
                    let _ = std::fs::remove_file(&err_path);
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        let mut t = Tracer { child: None, pid, lines, tmux: Some(socket) };
        t.wait_for("l7trace: tracing", Duration::from_secs(30))
            .context("l7trace (live view in tmux) did not report `l7trace: tracing`")?;
        Ok(t)
    }

    /// The first stderr line that starts with `prefix`; other lines are shown.
    fn wait_for(&mut self, prefix: &str, timeout: Duration) -> Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.starts_with(prefix) => return Ok(line),
                Ok(line) => eprintln!("  {line}"),
                Err(RecvTimeoutError::Timeout) => bail!("timed out after {timeout:?}"),
                Err(RecvTimeoutError::Disconnected) => bail!("l7trace exited"),
            }
        }
    }

    fn cpu_secs(&self) -> f64 {
        proc_cpu_secs(self.pid).unwrap_or(0.0)
    }

    /// SIGINT, then the summary's counters.
    fn stop(mut self) -> Result<(u64, u64)> {
        signal(self.pid, "INT");
        let line = self.wait_for("l7trace: summary:", Duration::from_secs(30))?;
        if let Some(child) = self.child.as_mut() {
            let status = child.wait()?;
            if !status.success() {
                bail!("l7trace exited with {status}");
            }
        }
        let field = |name: &str| -> u64 {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(name)?.strip_prefix('='))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        Ok((field("events"), field("lost_events")))
    }
}

impl Drop for Tracer {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            if let Ok(None) = child.try_wait() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        if let Some(socket) = &self.tmux {
            if Path::new(&format!("/proc/{}", self.pid)).exists() {
                signal(self.pid, "KILL");
            }
            let _ = Command::new("tmux").arg("-L").arg(socket).arg("kill-server").output();
        }
    }
}

/// utime + stime of a process, from /proc/PID/stat (fields 14 and 15, in clock ticks).
fn proc_cpu_secs(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces: fields are counted after its closing paren.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    let hz: f64 = output_of("getconf", &["CLK_TCK"]).and_then(|s| s.trim().parse().ok()).unwrap_or(100.0);
    Some(ticks as f64 / hz)
}

/// `kernel.bpf_stats_enabled` on for the bench's lifetime (restored on drop): the kernel
/// then keeps each program's run time and count, shown in its fd's fdinfo.
struct BpfStats(String);

impl BpfStats {
    const PATH: &str = "/proc/sys/kernel/bpf_stats_enabled";

    fn enable() -> Result<BpfStats> {
        let was = std::fs::read_to_string(Self::PATH).with_context(|| format!("reading {}", Self::PATH))?;
        std::fs::write(Self::PATH, "1").with_context(|| format!("writing {}", Self::PATH))?;
        Ok(BpfStats(was.trim().to_owned()))
    }
}

impl Drop for BpfStats {
    fn drop(&mut self) {
        let _ = std::fs::write(Self::PATH, &self.0);
    }
}

/// Total `run_time_ns` of the BPF programs process `pid` holds (its fds' fdinfo).
fn prog_run_ns(pid: u32) -> u64 {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { return 0 };
    fds.filter_map(Result::ok)
        .filter(|fd| std::fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == "anon_inode:bpf-prog"))
        .filter_map(|fd| std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{}", fd.file_name().to_string_lossy())).ok())
        .filter_map(|info| info.lines().find_map(|l| l.strip_prefix("run_time_ns:"))?.trim().parse::<u64>().ok())
        .sum()
}

/// VmHWM (peak resident set) in KiB.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix("VmHWM:"))?.split_whitespace().next()?.parse().ok()
}

// ---------------------------------------------------------------------------------------
// Rounds

struct Round {
    wrk: WrkResult,
    traced: Option<Traced>,
}

struct Mode {
    close: bool,
    untraced: Vec<Round>,
    /// Per variant, one round per untraced round.
    traced: Vec<(Variant, Vec<Round>)>,
}

fn run_mode(opts: &Opts, bin: &Path, close: bool) -> Result<Mode> {
    let name = if close { "Connection: close" } else { "keep-alive" };
    let mut mode = Mode {
        close,
        untraced: Vec::new(),
        traced: opts.variants.iter().map(|v| (v.clone(), Vec::new())).collect(),
    };
    // Each round runs untraced and every variant, in an order rotated from round to round:
    // a run's position in the round (warm caches, sockets still in TIME_WAIT from the run
    // before it in close mode) then weighs on each variant alike.
    let slots = 1 + mode.traced.len();
    for r in 1..=opts.rounds {
        for k in 0..slots {
            match (k + r - 1) % slots {
                0 => {
                    let w = wrk(opts, close, opts.duration)?;
                    eprintln!(
                        "xtask: bench: {name} round {r}/{} untraced: {:.0} req/s, p99 {:.0} us, nginx {:.2} us/req",
                        opts.rounds, w.rps, w.p99_us, w.server_cpu_secs * 1e6 / w.requests.max(1) as f64
                    );
                    mode.untraced.push(Round { wrk: w, traced: None });
                }
                i => {
                    let (v, rounds) = &mut mode.traced[i - 1];
                    let round = traced_round(opts, bin, close, v)?;
                    let t = round.traced.unwrap_or_default();
                    eprintln!(
                        "xtask: bench: {name} round {r}/{} traced ({}): {:.0} req/s, p99 {:.0} us, nginx {:.2} us/req, cpu {:.2} s, rss {} KiB, events {}, lost {}",
                        opts.rounds, v.name, round.wrk.rps, round.wrk.p99_us,
                        round.wrk.server_cpu_secs * 1e6 / round.wrk.requests.max(1) as f64,
                        t.cpu_secs, t.peak_rss_kib, t.events, t.lost_events
                    );
                    rounds.push(round);
                }
            }
        }
    }
    Ok(mode)
}

fn traced_round(opts: &Opts, bin: &Path, close: bool, v: &Variant) -> Result<Round> {
    let tracer = Tracer::start(bin, opts.port, &variant_args(v, opts.nginx_pid))?;
    let pid = tracer.pid;
    let cpu0 = tracer.cpu_secs();
    let bpf0 = opts.bpf_stats.then(|| prog_run_ns(pid));
    let w = wrk(opts, close, opts.duration)?;
    let bpf_ns = bpf0.map(|b| prog_run_ns(pid).saturating_sub(b));
    // Let it drain what the last requests produced before the CPU is read.
    std::thread::sleep(Duration::from_millis(300));
    let cpu = tracer.cpu_secs() - cpu0;
    let peak_rss_kib = peak_rss_kib(pid).unwrap_or(0);
    let (events, lost_events) = tracer.stop()?;
    Ok(Round { wrk: w, traced: Some(Traced { cpu_secs: cpu, peak_rss_kib, events, lost_events, bpf_ns }) })
}

/// The variant's arguments with `{nginx}` replaced by the server's pid.
fn variant_args(v: &Variant, nginx_pid: u32) -> Vec<String> {
    v.args.iter().map(|a| a.replace(NGINX_PID, &nginx_pid.to_string())).collect()
}

// ---------------------------------------------------------------------------------------
// Probe cost: the loopback pair

/// Both threads of the pair share this CPU (nginx's when it runs; it does not yet).
const PAIR_CPU: &str = "0";

/// One round of the pair: untraced and traced CPU time, and the traced run's tracer.
struct PairRound {
    untraced_cpu_ns: u64,
    traced_cpu_ns: u64,
    events: u64,
    lost_events: u64,
    bpf_ns: Option<u64>,
}

struct PairCost {
    iterations: u64,
    rounds: Vec<PairRound>,
}

impl PairCost {
    fn untraced_us_per_iter(&self) -> f64 {
        median(self.rounds.iter().map(|r| r.untraced_cpu_ns as f64 / self.iterations as f64 / 1e3).collect())
    }

    fn traced_us_per_iter(&self) -> f64 {
        median(self.rounds.iter().map(|r| r.traced_cpu_ns as f64 / self.iterations as f64 / 1e3).collect())
    }

    fn events_per_iter(&self) -> f64 {
        median(self.rounds.iter().map(|r| r.events as f64 / self.iterations as f64).collect())
    }

    /// What tracing adds to the traced process per event: each round's traced CPU time
    /// less its untraced one, over its events.
    fn extra_ns_per_event(&self) -> f64 {
        median(
            self.rounds
                .iter()
                .map(|r| (r.traced_cpu_ns as f64 - r.untraced_cpu_ns as f64) / r.events.max(1) as f64)
                .collect(),
        )
    }

    /// With --bpf-stats: the programs' own run time per event.
    fn probes_ns_per_event(&self) -> Option<f64> {
        self.rounds.iter().map(|r| Some(r.bpf_ns? as f64 / r.events.max(1) as f64)).collect::<Option<Vec<f64>>>().map(median)
    }

    fn lost_events(&self) -> u64 {
        self.rounds.iter().map(|r| r.lost_events).sum()
    }

    fn json(&self) -> String {
        let rounds: Vec<String> = self
            .rounds
            .iter()
            .map(|r| {
                format!(
                    "{{\"untraced_cpu_ns\": {}, \"traced_cpu_ns\": {}, \"events\": {}, \"lost_events\": {}, \"probes_ns\": {}}}",
                    r.untraced_cpu_ns,
                    r.traced_cpu_ns,
                    r.events,
                    r.lost_events,
                    r.bpf_ns.map_or("null".into(), |n| n.to_string())
                )
            })
            .collect();
        format!(
            "{{\"cpu\": {PAIR_CPU}, \"iterations\": {}, \"untraced_cpu_us_per_iteration\": {:.4}, \"traced_cpu_us_per_iteration\": {:.4}, \
             \"events_per_iteration\": {:.3}, \"extra_ns_per_event\": {:.1}, \"probes_ns_per_event\": {}, \"lost_events\": {}, \"rounds\": [{}]}}",
            self.iterations,
            self.untraced_us_per_iter(),
            self.traced_us_per_iter(),
            self.events_per_iter(),
            self.extra_ns_per_event(),
            self.probes_ns_per_event().map_or("null".into(), |x| format!("{x:.1}")),
            self.lost_events(),
            rounds.join(", ")
        )
    }
}

/// A port nothing listens on now (the pair binds it a moment later).
fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}

/// One run of `xtask bench-pair` on PAIR_CPU; its CPU time in ns.
fn pair_run(port: u16, iterations: u64) -> Result<u64> {
    let exe = std::env::current_exe().context("this xtask's path")?;
    let out = Command::new("taskset")
        .args(["-c", PAIR_CPU])
        .arg(exe)
        .args(["bench-pair", &port.to_string(), &iterations.to_string()])
        .stdin(Stdio::null())
        .output()
        .context("running the pair")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!("the pair failed ({}): {}{}", out.status, text, String::from_utf8_lossy(&out.stderr));
    }
    text.lines()
        .filter_map(|l| l.strip_prefix("pair: "))
        .find_map(|l| l.split_whitespace().find_map(|w| w.strip_prefix("cpu_ns="))?.parse().ok())
        .with_context(|| format!("the pair printed no cpu_ns: {text}"))
}

/// The probes' cost per event in the traced process, alone: rounds of the pair untraced
/// and under `l7trace --json --port <its port>` (the order alternating from round to
/// round), CPU time compared.
fn probe_cost(opts: &Opts, bin: &Path, iterations: u64) -> Result<PairCost> {
    let untraced = || pair_run(free_port()?, iterations);
    // A round with its traced half filled in.
    let traced = || -> Result<PairRound> {
        let port = free_port()?;
        let tracer = Tracer::start(bin, port, &[])?;
        let bpf0 = opts.bpf_stats.then(|| prog_run_ns(tracer.pid));
        let cpu_ns = pair_run(port, iterations)?;
        let bpf_ns = bpf0.map(|b| prog_run_ns(tracer.pid).saturating_sub(b));
        std::thread::sleep(Duration::from_millis(300));
        let (events, lost_events) = tracer.stop()?;
        Ok(PairRound { untraced_cpu_ns: 0, traced_cpu_ns: cpu_ns, events, lost_events, bpf_ns })
    };
    let mut rounds = Vec::new();
    for r in 1..=opts.rounds {
        // Odd rounds run untraced first, even ones traced first.
        let round = if r % 2 == 1 {
            let untraced_cpu_ns = untraced()?;
            PairRound { untraced_cpu_ns, ..traced()? }
        } else {
            let round = traced()?;
            PairRound { untraced_cpu_ns: untraced()?, ..round }
        };
        eprintln!(
            "xtask: bench: pair round {r}/{}: untraced {:.2} us/iteration, traced {:.2}, events {}, lost {}",
            opts.rounds,
            round.untraced_cpu_ns as f64 / iterations as f64 / 1e3,
            round.traced_cpu_ns as f64 / iterations as f64 / 1e3,
            round.events,
            round.lost_events
        );
        rounds.push(round);
    }
    Ok(PairCost { iterations, rounds })
}

// ---------------------------------------------------------------------------------------
// Report

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 }
}

/// Medians of one row of the table.
struct Row {
    mode: &'static str,
    variant: String,
    rps: f64,
    p99_us: f64,
    ratio: Option<f64>,
    /// nginx's CPU microseconds per request, and traced against untraced (median of the
    /// per-round ratios).
    server_us_per_req: f64,
    server_ratio: Option<f64>,
    bpf_ns_per_req: Option<f64>,
    cpu_per_1k: Option<f64>,
    peak_rss_mib: Option<f64>,
    events_per_sec: Option<f64>,
    lost_events: Option<u64>,
    errors: u64,
}

fn rows(mode: &Mode) -> Vec<Row> {
    let name = if mode.close { "close" } else { "keep-alive" };
    let base: Vec<f64> = mode.untraced.iter().map(|r| r.wrk.rps).collect();
    let server_us = |r: &Round| r.wrk.server_cpu_secs * 1e6 / r.wrk.requests.max(1) as f64;
    let base_server: Vec<f64> = mode.untraced.iter().map(server_us).collect();
    let mut out = vec![Row {
        mode: name,
        variant: "untraced".into(),
        rps: median(base.clone()),
        p99_us: median(mode.untraced.iter().map(|r| r.wrk.p99_us).collect()),
        ratio: None,
        server_us_per_req: median(base_server.clone()),
        server_ratio: None,
        bpf_ns_per_req: None,
        cpu_per_1k: None,
        peak_rss_mib: None,
        events_per_sec: None,
        lost_events: None,
        errors: mode.untraced.iter().map(|r| r.wrk.errors).sum(),
    }];
    for (v, rounds) in &mode.traced {
        let t = |r: &Round| r.traced.unwrap_or_default();
        out.push(Row {
            mode: name,
            variant: v.name.clone(),
            rps: median(rounds.iter().map(|r| r.wrk.rps).collect()),
            p99_us: median(rounds.iter().map(|r| r.wrk.p99_us).collect()),
            // Each traced round against the untraced run of the same round.
            ratio: Some(median(rounds.iter().zip(&base).map(|(r, b)| r.wrk.rps / b).collect())),
            server_us_per_req: median(rounds.iter().map(server_us).collect()),
            server_ratio: Some(median(rounds.iter().zip(&base_server).map(|(r, b)| server_us(r) / b).collect())),
            bpf_ns_per_req: rounds
                .iter()
                .map(|r| Some(t(r).bpf_ns? as f64 / r.wrk.requests.max(1) as f64))
                .collect::<Option<Vec<f64>>>()
                .map(median),
            cpu_per_1k: Some(median(
                rounds.iter().map(|r| t(r).cpu_secs / (r.wrk.requests.max(1) as f64 / 1000.0)).collect(),
            )),
            peak_rss_mib: rounds.iter().map(|r| t(r).peak_rss_kib).max().map(|k| k as f64 / 1024.0),
            events_per_sec: Some(median(rounds.iter().map(|r| t(r).events as f64 / r.wrk.secs.max(1e-9)).collect())),
            lost_events: Some(rounds.iter().map(|r| t(r).lost_events).sum()),
            errors: rounds.iter().map(|r| r.wrk.errors).sum(),
        });
    }
    out
}

struct Report<'a> {
    opts: &'a Opts,
    modes: Vec<Mode>,
    pipeline: Vec<String>,
    pair: Option<PairCost>,
    skipped: Vec<(String, String)>,
}

fn opt<T>(v: Option<T>, f: impl Fn(T) -> String) -> String {
    v.map(f).unwrap_or_else(|| "-".into())
}

impl Report<'_> {
    fn table(&self) -> String {
        let o = self.opts;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "\nl7trace overhead: nginx 1 KiB file, 1 worker on CPU {NGINX_CPU}; wrk -t1 -c{} on CPU {WRK_CPU}; \
             l7trace unpinned; {} rounds x {} s; medians over rounds",
            o.connections, o.rounds, o.duration
        );
        let _ = writeln!(
            s,
            "| mode | variant | req/s | p99 latency | traced/untraced | nginx CPU us / req | nginx CPU traced/untraced | probes ns / req | tracer CPU s / 1k req | tracer peak RSS | events/s | lost events | wrk errors |"
        );
        let _ = writeln!(s, "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
        for m in &self.modes {
            for r in rows(m) {
                let _ = writeln!(
                    s,
                    "| {} | {} | {:.0} | {:.0} us | {} | {:.2} | {} | {} | {} | {} | {} | {} | {} |",
                    r.mode,
                    r.variant,
                    r.rps,
                    r.p99_us,
                    opt(r.ratio, |x| format!("{x:.3}")),
                    r.server_us_per_req,
                    opt(r.server_ratio, |x| format!("{x:.3}")),
                    opt(r.bpf_ns_per_req, |x| format!("{x:.0}")),
                    opt(r.cpu_per_1k, |x| format!("{x:.4}")),
                    opt(r.peak_rss_mib, |x| format!("{x:.1} MiB")),
                    opt(r.events_per_sec, |x| format!("{x:.0}")),
                    opt(r.lost_events, |x| x.to_string()),
                    r.errors
                );
            }
        }
        for (v, why) in &self.skipped {
            let _ = writeln!(s, "variant `{v}` skipped: {why}");
        }
        if let Some(p) = &self.pair {
            let _ = writeln!(
                s,
                "\nprobe cost: a loopback TCP pair on CPU {PAIR_CPU} (write 1 KiB POST, read it, write and read a 38-byte answer), \
                 {} iterations per run, {} rounds of untraced and traced; medians over rounds:",
                p.iterations,
                p.rounds.len()
            );
            let _ = writeln!(s, "| untraced CPU us / iteration | traced CPU us / iteration | events / iteration | traced - untraced ns / event | probes ns / event | lost events |");
            let _ = writeln!(s, "| ---: | ---: | ---: | ---: | ---: | ---: |");
            let _ = writeln!(
                s,
                "| {:.2} | {:.2} | {:.2} | {:.0} | {} | {} |",
                p.untraced_us_per_iter(),
                p.traced_us_per_iter(),
                p.events_per_iter(),
                p.extra_ns_per_event(),
                opt(p.probes_ns_per_event(), |x| format!("{x:.0}")),
                p.lost_events()
            );
        }
        if !self.pipeline.is_empty() {
            let _ = writeln!(s, "\nuserspace pipeline, one core (recorded kernel events -> exchanges):");
            let _ = writeln!(s, "| workload | exchanges/s | MB/s (records) | exchanges/s incl. JSON line |");
            let _ = writeln!(s, "| --- | ---: | ---: | ---: |");
            for p in &self.pipeline {
                let num = |k: &str| json_field(p, k).unwrap_or_default();
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} |",
                    num("workload").trim_matches('"'),
                    num("exchanges_per_sec"),
                    num("mb_per_sec"),
                    num("exchanges_per_sec_with_json")
                );
            }
        }
        s
    }

    fn write_json(&self) -> Result<PathBuf> {
        let dir = crate::workspace_root().join("bench/results");
        std::fs::create_dir_all(&dir)?;
        let stamp = output_of("date", &["-u", "+%Y%m%dT%H%M%SZ"]).unwrap_or_default();
        let path = dir.join(format!("{}.json", stamp.trim()));
        std::fs::write(&path, self.json())?;
        Ok(path)
    }

    fn json(&self) -> String {
        let o = self.opts;
        let git = output_of("git", &["rev-parse", "--short", "HEAD"]).unwrap_or_default();
        let dirty = output_of("git", &["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.trim().is_empty());
        let mut s = String::from("{\n");
        let _ = writeln!(s, "  \"date\": {},", q(output_of("date", &["-u", "+%Y-%m-%dT%H:%M:%SZ"]).unwrap_or_default().trim()));
        let _ = writeln!(s, "  \"git\": {}, \"git_dirty\": {dirty},", q(git.trim()));
        let _ = writeln!(s, "  \"kernel\": {},", q(output_of("uname", &["-r"]).unwrap_or_default().trim()));
        let _ = writeln!(s, "  \"cpus\": {},", output_of("nproc", &[""; 0]).unwrap_or_default().trim().parse::<u32>().unwrap_or(0));
        let _ = writeln!(
            s,
            "  \"setup\": {{\"nginx\": \"1 worker, master_process off, sendfile off, access_log off, 1 KiB file\", \
             \"nginx_cpu\": {NGINX_CPU}, \"wrk\": \"-t1 -c{} --latency\", \"wrk_cpu\": {WRK_CPU}, \"tracer\": \"unpinned\", \
             \"rounds\": {}, \"duration_secs\": {}}},",
            o.connections, o.rounds, o.duration
        );
        s.push_str("  \"modes\": [\n");
        let mut first = true;
        for m in &self.modes {
            for r in rows(m) {
                if !first {
                    s.push_str(",\n");
                }
                first = false;
                let n = |v: Option<f64>| v.map_or("null".into(), |x| format!("{x:.6}"));
                let _ = write!(
                    s,
                    "    {{\"mode\": {}, \"variant\": {}, \"requests_per_sec\": {:.1}, \"p99_latency_us\": {:.1}, \
                     \"ratio_traced_untraced\": {}, \"server_cpu_us_per_request\": {:.4}, \"server_cpu_ratio_traced_untraced\": {}, \
                     \"probes_ns_per_request\": {}, \"tracer_cpu_secs_per_1k_requests\": {}, \"tracer_peak_rss_mib\": {}, \
                     \"events_per_sec\": {}, \"lost_events\": {}, \"wrk_errors\": {}}}",
                    q(r.mode), q(&r.variant), r.rps, r.p99_us, n(r.ratio), r.server_us_per_req, n(r.server_ratio),
                    n(r.bpf_ns_per_req), n(r.cpu_per_1k), n(r.peak_rss_mib),
                    n(r.events_per_sec), r.lost_events.map_or("null".into(), |x| x.to_string()), r.errors
                );
            }
        }
        s.push_str("\n  ],\n  \"rounds\": [\n");
        let mut first = true;
        for m in &self.modes {
            let mode = if m.close { "close" } else { "keep-alive" };
            let all = std::iter::once(("untraced".to_string(), &m.untraced))
                .chain(m.traced.iter().map(|(v, r)| (v.name.clone(), r)));
            for (variant, rounds) in all {
                for (i, r) in rounds.iter().enumerate() {
                    if !first {
                        s.push_str(",\n");
                    }
                    first = false;
                    let _ = write!(
                        s,
                        "    {{\"mode\": {}, \"variant\": {}, \"round\": {}, \"requests_per_sec\": {:.1}, \"p99_latency_us\": {:.1}, \"requests\": {}, \"server_cpu_secs\": {:.3}",
                        q(mode), q(&variant), i + 1, r.wrk.rps, r.wrk.p99_us, r.wrk.requests, r.wrk.server_cpu_secs
                    );
                    if let Some(t) = r.traced {
                        let _ = write!(
                            s,
                            ", \"tracer_cpu_secs\": {:.3}, \"tracer_peak_rss_kib\": {}, \"events\": {}, \"lost_events\": {}, \"probes_ns\": {}",
                            t.cpu_secs, t.peak_rss_kib, t.events, t.lost_events, t.bpf_ns.map_or("null".into(), |n| n.to_string())
                        );
                    }
                    s.push('}');
                }
            }
        }
        s.push_str("\n  ],\n  \"skipped_variants\": [");
        let skipped: Vec<String> = self.skipped.iter().map(|(v, why)| format!("{{\"variant\": {}, \"why\": {}}}", q(v), q(why))).collect();
        s.push_str(&skipped.join(", "));
        s.push_str("],\n  \"probe_cost\": ");
        match &self.pair {
            Some(p) => s.push_str(&p.json()),
            None => s.push_str("null"),
        }
        s.push_str(",\n  \"pipeline\": [");
        s.push_str(&self.pipeline.join(", "));
        s.push_str("]\n}\n");
        s
    }
}

/// A JSON string literal.
fn q(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The raw value of `"key":` in a flat one-line JSON object.
fn json_field(obj: &str, key: &str) -> Option<String> {
    let start = obj.find(&format!("\"{key}\":"))? + key.len() + 3;
    let rest = &obj[start..];
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    Some(rest[..end].trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_wrk_output() {
        let text = "Running 10s test @ http://127.0.0.1:18080/1k.bin
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.23ms  200.00us   5.00ms   90.00%
    Req/Sec    52.00k     1.00k   55.00k    80.00%
  Latency Distribution
     50%    1.20ms
     75%    1.30ms
     90%    1.40ms
     99%    2.34ms
  520000 requests in 10.00s, 640.00MB read
  Socket errors: connect 0, read 3, write 0, timeout 1
Requests/sec:  51999.50
Transfer/sec:     64.00MB
";
        let r = parse_wrk(text).unwrap();
        assert_eq!(r.requests, 520_000);
        assert!((r.rps - 51999.5).abs() < 1e-6);
        assert!((r.p99_us - 2340.0).abs() < 1e-6);
        assert!((r.secs - 10.0).abs() < 1e-9);
        assert_eq!(r.errors, 4);
    }

    #[test]
    fn the_server_variant_names_the_server() {
        let o = parse_opts(&["--variant".into(), "mine=--pid {nginx} --max-body 0".into()]).unwrap();
        let server = o.variants.iter().find(|v| v.name == "server").expect("server variant by default");
        assert_eq!(variant_args(server, 4242), ["--pid", "4242"]);
        let mine = o.variants.iter().find(|v| v.name == "mine").unwrap();
        assert_eq!(variant_args(mine, 7), ["--pid", "7", "--max-body", "0"]);
    }

    #[test]
    fn pair_cost_is_taken_per_event_and_round_by_round() {
        let round = |untraced_cpu_ns, traced_cpu_ns, lost_events, bpf_ns| PairRound {
            untraced_cpu_ns,
            traced_cpu_ns,
            events: 4_000,
            lost_events,
            bpf_ns: Some(bpf_ns),
        };
        let p = PairCost {
            iterations: 1_000,
            rounds: vec![
                round(16_000_000, 20_000_000, 0, 3_200_000),
                round(17_000_000, 20_000_000, 2, 3_600_000),
                round(15_000_000, 21_000_000, 0, 2_800_000),
            ],
        };
        // Per round: 1000, 750 and 1500 ns more per event; medians of each column.
        assert_eq!(p.extra_ns_per_event(), 1000.0);
        assert_eq!(p.untraced_us_per_iter(), 16.0);
        assert_eq!(p.traced_us_per_iter(), 20.0);
        assert_eq!(p.events_per_iter(), 4.0);
        assert_eq!(p.probes_ns_per_event(), Some(800.0));
        assert_eq!(p.lost_events(), 2);
        let j = p.json();
        assert!(j.contains("\"extra_ns_per_event\": 1000.0") && j.contains("\"lost_events\": 2, \"rounds\": [{"), "{j}");
        let none = PairCost { iterations: 1, rounds: vec![PairRound { bpf_ns: None, ..round(1, 2, 0, 0) }] };
        assert_eq!(none.probes_ns_per_event(), None);
    }

    #[test]
    fn reads_flat_json_fields() {
        let line = r#"{"workload":"keepalive","exchanges_per_sec":612345,"mb_per_sec":980.1}"#;
        assert_eq!(json_field(line, "workload").as_deref(), Some("\"keepalive\""));
        assert_eq!(json_field(line, "mb_per_sec").as_deref(), Some("980.1"));
        assert_eq!(median(vec![3.0, 1.0, 2.0, 10.0]), 2.5);
    }
}
