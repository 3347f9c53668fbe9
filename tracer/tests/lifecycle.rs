//! Lifecycle: SIGINT and SIGTERM end l7trace cleanly with its summary; after SIGKILL none
//! of its BPF programs or links stays in the kernel; a closed stdout ends it quietly, a
//! full one with an error, a stalled reader does not keep it from ending on its signal;
//! two instances at once both see the same exchange.

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn assert_summary_and_exchange(stopped: &trace::Stopped, target: &str) {
    assert!(stopped.status.success(), "exit status {}", stopped.status);
    assert!(
        stopped.stderr.iter().any(|l| l.starts_with("l7trace: summary: exchanges=")),
        "no summary line; stderr:\n{}",
        stopped.stderr.join("\n")
    );
    for role in ["client", "server"] {
        assert!(
            by_role(&stopped.records, role).iter().any(|r| r["request"]["target"] == target),
            "no {role} record of {target}:\n{}",
            dump(&stopped.records)
        );
    }
}

#[test]
fn sigint_and_sigterm_exit_cleanly_with_summary() {
    for (sig, name) in [(libc::SIGINT, "int"), (libc::SIGTERM, "term")] {
        let server = HttpServer::start_default();
        let trace = Trace::on_port(server.port(), &[]);
        let target = format!("/sig{name}");
        curl(&[&format!("http://{}{target}", server.authority())]);
        let stopped = trace.stop_with(sig);
        assert_summary_and_exchange(&stopped, &target);
    }
}

/// `bpf(cmd, {start_id})` walks the kernel's ids: BPF_PROG_GET_NEXT_ID (11) and
/// BPF_LINK_GET_NEXT_ID (31).
fn kernel_ids(cmd: libc::c_long) -> BTreeSet<u32> {
    let mut ids = BTreeSet::new();
    let mut start = 0u32;
    loop {
        // union bpf_attr: start_id, next_id, open_flags; padded as the kernel expects.
        let mut attr = [0u32; 16];
        attr[0] = start;
        // SAFETY: attr is a valid, large enough buffer for this command.
        let rc = unsafe {
            libc::syscall(libc::SYS_bpf, cmd, attr.as_mut_ptr(), std::mem::size_of_val(&attr))
        };
        if rc != 0 {
            let e = std::io::Error::last_os_error();
            assert_eq!(e.raw_os_error(), Some(libc::ENOENT), "bpf({cmd}) walking ids: {e}");
            return ids;
        }
        start = attr[1];
        ids.insert(start);
    }
}

/// The `prog_id:` and `link_id:` of every fd of `pid` (from /proc/PID/fdinfo).
fn held_ids(pid: u32) -> (BTreeSet<u32>, BTreeSet<u32>) {
    let (mut progs, mut links) = (BTreeSet::new(), BTreeSet::new());
    for e in std::fs::read_dir(format!("/proc/{pid}/fdinfo")).unwrap().flatten() {
        let Ok(info) = std::fs::read_to_string(e.path()) else { continue };
        for line in info.lines() {
            let id = |p: &str| line.strip_prefix(p).and_then(|v| v.trim().parse::<u32>().ok());
            if let Some(id) = id("prog_id:") {
                progs.insert(id);
            }
            if let Some(id) = id("link_id:") {
                links.insert(id);
            }
        }
    }
    (progs, links)
}

#[test]
fn sigkill_leaves_no_program_or_link_attached() {
    sigkill_leaves_nothing(&[]);
}

/// With `--iface`, the socket filter on its packet socket too.
#[test]
fn sigkill_leaves_nothing_of_the_interface_capture() {
    sigkill_leaves_nothing(&["--iface", "lo"]);
}

fn sigkill_leaves_nothing(args: &[&str]) {
    let progs_before = kernel_ids(11);
    let server = HttpServer::start_default();
    let trace = Trace::on_port(server.port(), args);
    let pid = trace.pid();
    // BPF_PROG_TYPE_SOCKET_FILTER (1): `l7_mute`, which l7trace runs itself (never
    // attached), and with --iface the packet filter: both among what must go.
    let filters_held = std::fs::read_dir(format!("/proc/{pid}/fdinfo"))
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .filter(|info| info.lines().any(|l| l.split_whitespace().eq(["prog_type:", "1"])))
        .count();
    assert_eq!(filters_held, if args.contains(&"--iface") { 2 } else { 1 }, "socket filters held by l7trace {args:?}");
    let (progs, links) = held_ids(pid);
    assert!(!progs.is_empty(), "l7trace holds no BPF program fd");
    // Else the check on links below would pass with nothing to check.
    assert!(!links.is_empty(), "l7trace holds no BPF link fd");
    assert!(
        progs.iter().all(|p| !progs_before.contains(p)),
        "l7trace's programs were loaded by it"
    );
    assert!(kernel_ids(11).is_superset(&progs));
    // SAFETY: kill has no memory preconditions; the pid is our own child's.
    assert_eq!(unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) }, 0);
    drop(trace); // reaps it
    // Programs are freed after an RCU grace period: allow a few seconds.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (p, l) = (kernel_ids(11), kernel_ids(31));
        let left_p: Vec<_> = progs.intersection(&p).collect();
        let left_l: Vec<_> = links.intersection(&l).collect();
        if left_p.is_empty() && left_l.is_empty() {
            eprintln!(
                "lifecycle: {args:?}: {} programs and {} links of l7trace gone after SIGKILL",
                progs.len(),
                links.len()
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "after SIGKILL, programs {left_p:?} and links {left_l:?} of l7trace remain"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn closed_stdout_exits_quietly() {
    let server = HttpServer::start_default();
    let port = server.port().to_string();
    let mut child = Command::new(env!("CARGO_BIN_EXE_l7trace"))
        .args(["--json", "--port", &port])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The reads below block: a build that never prints would hang the test, not fail it.
    // After a minute the watchdog kills l7trace, and the reads end (EOF) and fail.
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (watch, pid) = (std::sync::Arc::clone(&done), child.id());
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(60));
        if !watch.load(std::sync::atomic::Ordering::SeqCst) {
            // SAFETY: kill has no memory preconditions; our child, not yet reaped.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
        }
    });
    let mut err = BufReader::new(child.stderr.take().unwrap());
    loop {
        let mut line = String::new();
        assert!(err.read_line(&mut line).unwrap() > 0, "l7trace ended before tracing");
        if line.starts_with("l7trace: tracing") {
            break;
        }
    }
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let url = format!("http://{}/first", server.authority());
    curl(&[&url]);
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    assert!(first.contains("/first"), "first record {first:?} (empty: l7trace killed by the watchdog)");
    drop(out); // like `| head -1`
    // The next records hit the closed pipe.
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        curl(&[&format!("http://{}/more", server.authority())]);
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "l7trace still runs with its stdout closed");
        std::thread::sleep(Duration::from_millis(100));
    };
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
    assert!(status.success(), "exit status {status}; stderr: {rest}");
    assert!(rest.trim().is_empty(), "not quiet; stderr after start: {rest:?}");
}

#[test]
fn two_instances_see_the_same_exchange() {
    let server = HttpServer::start_default();
    let a = Trace::on_port(server.port(), &[]);
    let b = Trace::on_port(server.port(), &[]);
    curl(&[&format!("http://{}/both", server.authority())]);
    let (sa, sb) = (a.stop_full(), b.stop_full());
    assert_summary_and_exchange(&sa, "/both");
    assert_summary_and_exchange(&sb, "/both");
}

/// Starts `l7trace --json --port PORT` with `stdout`, stderr piped; returns once it traces.
// The child is returned, and its callers wait for it (`exits_within`).
#[allow(clippy::zombie_processes)]
fn start_with_stdout(port: u16, stdout: Stdio) -> (std::process::Child, BufReader<std::process::ChildStderr>) {
    let mut child = l7trace()
        .args(["--json", "--port", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    loop {
        let mut line = String::new();
        if err.read_line(&mut line).unwrap() == 0 {
            panic!("l7trace ended before tracing: {}", child.wait().unwrap());
        }
        if line.starts_with("l7trace: tracing") {
            return (child, err);
        }
    }
}

/// Waits up to `limit` for `child` to exit; kills it and fails if it does not.
fn exits_within(child: &mut std::process::Child, limit: Duration, what: &str) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("l7trace did not exit within {limit:?} {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// stdout is a pipe whose reader never reads (a stalled `ssh host 'cat > f'`, a stopped
/// pager): once the pipe is full l7trace blocks in its write, and SIGTERM must still end
/// it: the summary, then an error that the output could not be written, exit status 1.
#[test]
fn a_stop_signal_ends_it_while_its_reader_stalls() {
    let server = HttpServer::start_default();
    let (mut child, err) = start_with_stdout(server.port(), Stdio::piped());
    let _stalled = child.stdout.take().unwrap(); // held open, never read
    let wchan = format!("/proc/{}/wchan", child.id());
    let mut client = RawClient::connect(server.addr);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut n = 0;
    while !std::fs::read_to_string(&wchan).unwrap_or_default().contains("pipe_write") {
        assert!(Instant::now() < deadline, "l7trace never blocked on its full stdout ({n} requests)");
        for _ in 0..100 {
            client.exchange("GET", &format!("/fill/{n}"));
            n += 1;
        }
    }
    // A second signal while it waits for room must not make it wait for good (a user
    // pressing Ctrl-C again).
    for _ in 0..2 {
        // SAFETY: kill has no memory preconditions; our child, not yet reaped.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        std::thread::sleep(Duration::from_millis(300));
    }
    let status = exits_within(&mut child, Duration::from_secs(15), "of SIGTERM with its reader stalled");
    assert_error_after_summary(status, err, "writing the JSON stream: the output's reader stopped reading");
}

/// Exit status 1, and on the rest of stderr the summary, then `l7trace: error: ERROR`.
fn assert_error_after_summary(status: std::process::ExitStatus, mut err: impl std::io::Read, error: &str) {
    let mut rest = String::new();
    err.read_to_string(&mut rest).unwrap();
    assert_eq!(status.code(), Some(1), "stderr: {rest}");
    let summary = rest.find("l7trace: summary: exchanges=").unwrap_or_else(|| panic!("no summary: {rest}"));
    let error = rest.find(&format!("l7trace: error: {error}")).unwrap_or_else(|| panic!("no error line: {rest}"));
    assert!(summary < error, "the error is said after the summary: {rest}");
}

/// stdout on a full disk (`/dev/full`): not a reader gone, which ends output quietly, but
/// a failure: said after the summary, exit status 1.
#[test]
fn a_full_output_is_an_error_said_after_the_summary() {
    let server = HttpServer::start_default();
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
    let (mut child, err) = start_with_stdout(server.port(), Stdio::from(full));
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        curl(&[&format!("http://{}/full", server.authority())]);
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("l7trace still runs with its output failing");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_error_after_summary(status, err, "writing the JSON stream: No space left on device");
}

/// SIGHUP (the terminal or ssh session that ran it went away) stops it as SIGTERM does.
#[test]
fn sighup_exits_cleanly_with_summary() {
    let server = HttpServer::start_default();
    let trace = Trace::on_port(server.port(), &[]);
    curl(&[&format!("http://{}/sighup", server.authority())]);
    let stopped = trace.stop_with(libc::SIGHUP);
    assert_summary_and_exchange(&stopped, "/sighup");
}

/// SIGINT while the programs load (about a second, each verified): loading stops before
/// the next program and l7trace ends, saying it stopped before tracing started, exit 0.
/// Before, it loaded on (the signal also made the verifier's run fail, which was retried
/// at length) and only then stopped.
#[test]
fn a_stop_signal_while_loading_ends_it_before_tracing() {
    let mut child = l7trace()
        .args(["--json", "--port", "9"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The first program in the kernel: loading is under way, the rest still to come.
    let fds = format!("/proc/{}/fd", child.id());
    let deadline = Instant::now() + Duration::from_secs(30);
    let loaded_one = || {
        std::fs::read_dir(&fds).into_iter().flatten().flatten().any(|e| {
            std::fs::read_link(e.path()).is_ok_and(|l| l.to_string_lossy().contains("bpf-prog"))
        })
    };
    while !loaded_one() {
        assert!(Instant::now() < deadline, "no program loaded");
        std::thread::sleep(Duration::from_millis(1));
    }
    // SAFETY: kill has no memory preconditions; our child, not yet reaped.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    let status = exits_within(&mut child, Duration::from_secs(30), "of SIGINT while loading");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "{status}: {stderr}");
    assert!(stderr.contains("l7trace: stopped before tracing started"), "{stderr}");
    assert!(!stderr.contains("l7trace: tracing"), "traced after the signal: {stderr}");
}

/// Under `nohup` (SIGHUP ignored when it starts), a hang-up does not stop it.
#[test]
fn sighup_ignored_at_start_stays_ignored() {
    let server = HttpServer::start_default();
    let trace = Trace::start_wrapped(&["nohup"], &["--port", &server.port().to_string()]);
    // SAFETY: kill has no memory preconditions; the traced child is alive.
    unsafe { libc::kill(trace.pid() as libc::pid_t, libc::SIGHUP) };
    std::thread::sleep(Duration::from_millis(300));
    curl(&[&format!("http://{}/after-hup", server.authority())]);
    let stopped = trace.stop_with(libc::SIGTERM);
    assert_summary_and_exchange(&stopped, "/after-hup");
}
