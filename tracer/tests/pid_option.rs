//! `--pid` names processes: a pid no process has, or a thread's id (the kernel side filters
//! by process, so either would trace nothing, silently), is refused at start with one line;
//! a named process that exits while traced is said, and the others go on being traced.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::server::default_reply;
use common::*;

/// `l7trace --json --pid PID`: exits 1 at once with one error line containing `says`.
fn refused(pid: u32, says: &str) {
    let mut child = l7trace()
        .args(["--json", "--pid", &pid.to_string()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run l7trace");
    // Refused at once: one that starts tracing instead is stopped, and fails below.
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().expect("wait l7trace").is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: kill has no memory preconditions; the pid is our own child's.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    let out = child.wait_with_output().expect("wait l7trace");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(out.stdout.is_empty());
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr:?}");
    assert!(stderr.starts_with(&format!("l7trace: error: --pid {pid}: ")), "{stderr:?}");
    assert!(stderr.contains(says), "{stderr:?} does not say {says:?}");
}

#[test]
fn a_pid_no_process_has_or_a_threads_id_is_refused() {
    let mut child = Command::new("true").spawn().expect("run true");
    let dead = child.id();
    child.wait().unwrap();
    refused(dead, "no process has this pid");
    // A thread of this test process, while it runs.
    let (tx, rx) = std::sync::mpsc::channel();
    let (done, wait) = std::sync::mpsc::channel::<()>();
    let t = std::thread::spawn(move || {
        // SAFETY: gettid has no preconditions.
        tx.send(unsafe { libc::gettid() } as u32).unwrap();
        let _ = wait.recv();
    });
    let tid = rx.recv().unwrap();
    let me = std::process::id();
    refused(tid, &format!("this is a thread of process {me}: give the process's id, {me}"));
    done.send(()).unwrap();
    t.join().unwrap();
}

#[test]
fn a_traced_process_that_exits_is_said_and_the_others_are_still_traced() {
    let server = HttpServer::start("127.0.0.1:0", default_reply);
    let port = server.port();
    let mut sleeper = Command::new("sleep").arg("30").spawn().expect("run sleep");
    let (gone, me) = (sleeper.id(), std::process::id());
    let trace = Trace::start(&["--port", &port.to_string(), "--pid", &gone.to_string(), "--pid", &me.to_string()]);
    // It exits while traced.
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();
    let said = trace.wait_stderr(&format!("--pid {gone} exited"));
    assert_eq!(said, format!("l7trace: warning: --pid {gone} exited"), "one process is left");
    // This process, still named, is still traced (its server's side of the exchange).
    assert_eq!(curl(&[&format!("http://127.0.0.1:{port}/after")]).stdout_text(), "hello from /after");
    let records = trace.wait_for_records(Duration::from_secs(10), |r| !r.is_empty());
    let stopped = trace.stop_full();
    drop(server);
    assert_eq!(records.len(), 1, "{records:#?}");
    assert_eq!(stopped.records.len(), 1, "{:#?}", stopped.records);
    let r = &stopped.records[0];
    assert_eq!(str_at(r, "/request/target"), "/after");
    assert_eq!(r["pid"], me, "{r}");
    assert_eq!(r["role"], "server", "{r}");
    assert_eq!(stopped.stderr.iter().filter(|l| l.contains("exited")).count(), 1, "{:#?}", stopped.stderr);

}

/// The last process named exits, and a new process is given its pid (forced with
/// ns_last_pid): the new one is not the process asked for, and is not traced.
#[test]
fn a_new_process_given_a_traced_pid_is_not_traced() {
    let server = HttpServer::start("127.0.0.1:0", default_reply);
    let port = server.port();
    let mut last = Command::new("sleep").arg("30").spawn().expect("run sleep");
    let gone = last.id();
    let trace = Trace::start(&["--port", &port.to_string(), "--pid", &gone.to_string()]);
    last.kill().unwrap();
    last.wait().unwrap();
    let said = trace.wait_stderr("exited");
    assert_eq!(said, format!("l7trace: warning: --pid {gone} exited: no --pid process is left, nothing more is traced"));
    // A curl with the same pid: the next pid after ns_last_pid goes to the next process
    // created, unless another took it first (then again).
    let url = format!("http://127.0.0.1:{port}/reused");
    let reused = (0..50).find_map(|_| {
        std::fs::write("/proc/sys/kernel/ns_last_pid", (gone - 1).to_string()).expect("write ns_last_pid (root)");
        let run = Command::new("curl")
            .args(["-sS", "--noproxy", "*", "--max-time", "10", &url])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("run curl");
        let pid = run.id();
        let out = run.wait_with_output().expect("wait curl");
        assert!(out.status.success(), "curl {url}");
        (pid == gone).then_some(pid)
    });
    assert_eq!(reused, Some(gone), "no curl was given pid {gone} in 50 tries");
    let stopped = trace.stop_full();
    drop(server);
    assert!(stopped.records.is_empty(), "the new process was traced: {:#?}", stopped.records);
}
