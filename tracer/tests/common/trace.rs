//! Runs the l7trace binary under test and collects what it prints.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

const START_DEADLINE: Duration = Duration::from_secs(30);
const STOP_DEADLINE: Duration = Duration::from_secs(30);
/// Time for the last events to travel from the kernel before SIGINT.
const SETTLE: Duration = Duration::from_millis(300);
const READY_PREFIX: &str = "l7trace: tracing";

thread_local! {
    /// Stderr of the last l7trace stopped on this thread, for failure messages.
    static LAST_STDERR: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Stderr of the last l7trace this thread stopped.
pub fn last_stderr() -> Vec<String> {
    LAST_STDERR.with(|s| s.borrow().clone())
}

/// A running l7trace; `stop` ends it with SIGINT and returns its records.
pub struct Trace {
    child: Child,
    args: Vec<String>,
    stderr: Arc<Mutex<Vec<String>>>,
    stderr_reader: Option<JoinHandle<()>>,
    /// Stdout as read so far; the reader thread appends as l7trace writes.
    stdout: Arc<Mutex<Vec<u8>>>,
    stdout_reader: Option<JoinHandle<()>>,
    /// Wall-clock time when l7trace said it was tracing.
    pub started_at: SystemTime,
}

/// What a stopped l7trace printed.
pub struct Stopped {
    pub records: Vec<Value>,
    pub stderr: Vec<String>,
    pub status: ExitStatus,
    /// Stdout as written, for checks on the raw bytes.
    pub stdout: Vec<u8>,
}

impl Trace {
    /// `l7trace --json ARGS`, returned once it prints `l7trace: tracing` on stderr.
    pub fn start(args: &[&str]) -> Trace {
        Trace::start_wrapped(&[], args)
    }

    /// `WRAPPER... l7trace --json ARGS` (e.g. a namespace or privilege wrapper that ends
    /// by exec'ing the rest of its arguments), returned once it prints `l7trace: tracing`.
    pub fn start_wrapped(wrapper: &[&str], args: &[&str]) -> Trace {
        let mut all = vec!["--json".to_owned()];
        all.extend(args.iter().map(|a| a.to_string()));
        let bin = bin();
        let mut cmd = match wrapper.split_first() {
            Some((program, rest)) => {
                let mut c = Command::new(program);
                c.args(rest).arg(bin);
                c
            }
            None => Command::new(bin),
        };
        let mut child = cmd
            .args(&all)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start l7trace {all:?}: {e}"));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let err_pipe = child.stderr.take().expect("stderr piped");
        let sink = Arc::clone(&stderr);
        let stderr_reader = std::thread::spawn(move || {
            // Byte lines, shown lossily: a line that is not UTF-8 must not end the reading
            // (the lines after it, a panic message or the summary, are what tests check).
            let mut err = BufReader::new(err_pipe);
            let mut line = Vec::new();
            while err.read_until(b'\n', &mut line).expect("read l7trace's stderr") > 0 {
                let text = String::from_utf8_lossy(&line);
                let text = text.strip_suffix('\n').unwrap_or(&text);
                sink.lock().unwrap().push(text.strip_suffix('\r').unwrap_or(text).to_owned());
                line.clear();
            }
        });
        let mut out_pipe = child.stdout.take().expect("stdout piped");
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let out_sink = Arc::clone(&stdout);
        let stdout_reader = std::thread::spawn(move || {
            let mut chunk = vec![0; 64 * 1024];
            loop {
                let n = match out_pipe.read(&mut chunk) {
                    Ok(0) => return,
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => panic!("read l7trace's stdout: {e}"),
                };
                out_sink.lock().unwrap().extend_from_slice(&chunk[..n]);
            }
        });
        let mut trace = Trace {
            child,
            args: all,
            stderr,
            stderr_reader: Some(stderr_reader),
            stdout,
            stdout_reader: Some(stdout_reader),
            started_at: SystemTime::now(),
        };
        trace.wait_ready();
        trace.started_at = SystemTime::now();
        trace
    }

    /// `l7trace --json --port PORT EXTRA`.
    pub fn on_port(port: u16, extra: &[&str]) -> Trace {
        let port = port.to_string();
        let mut args = vec!["--port", port.as_str()];
        args.extend_from_slice(extra);
        Trace::start(&args)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The stderr lines seen so far.
    pub fn stderr_lines(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }

    /// Polls stderr until a line contains `needle`, and returns it; panics with all of
    /// stderr when none does within 10 s.
    pub fn wait_stderr(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(l) = self.stderr_lines().into_iter().find(|l| l.contains(needle)) {
                return l;
            }
            assert!(Instant::now() < deadline, "no stderr line with {needle:?}:\n{}", self.stderr_lines().join("\n"));
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The records l7trace has printed so far, while it runs (whole lines only).
    pub fn records_so_far(&self) -> Vec<Value> {
        let raw = self.stdout.lock().unwrap().clone();
        // A line still being written is left for the next call.
        let whole = raw.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        parse_records(&raw[..whole])
    }

    /// Polls `records_so_far` until `done` holds for them or `limit` passes; returns the
    /// last records read either way (the caller's assertions say what was missing).
    pub fn wait_for_records(&self, limit: Duration, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + limit;
        loop {
            let records = self.records_so_far();
            if done(&records) || Instant::now() > deadline {
                return records;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            if self
                .stderr_lines()
                .iter()
                .any(|l| l.starts_with(READY_PREFIX))
            {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                // Let the reader catch the last lines.
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "l7trace {:?} exited ({status}) before tracing; stderr:\n{}",
                    self.args,
                    self.stderr_lines().join("\n")
                );
            }
            if Instant::now() > deadline {
                panic!(
                    "l7trace {:?} did not print `{READY_PREFIX}` within {START_DEADLINE:?}; stderr:\n{}",
                    self.args,
                    self.stderr_lines().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGINT, wait for exit 0, and parse every stdout line as JSON.
    pub fn stop(self) -> Vec<Value> {
        self.stop_full().records
    }

    pub fn stop_full(self) -> Stopped {
        self.stop_with(libc::SIGINT)
    }

    /// Like `stop_full`, ending l7trace with `signal` (SIGINT or SIGTERM).
    pub fn stop_with(mut self, signal: libc::c_int) -> Stopped {
        std::thread::sleep(SETTLE);
        // SAFETY: kill has no memory preconditions; the pid is our own child's.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, signal) };
        assert_eq!(rc, 0, "kill({signal}) l7trace");
        let status = self.wait_status(STOP_DEADLINE, "of the signal");
        let stopped = self.collect(status);
        assert!(
            status.success(),
            "l7trace {:?} exited with {status} after signal {signal}; stderr:\n{}",
            self.args,
            stopped.stderr.join("\n")
        );
        stopped
    }

    /// Waits up to `limit` for l7trace to exit by itself (no signal sent), and returns
    /// what it printed, whatever its status.
    pub fn wait_exit(mut self, limit: Duration) -> Stopped {
        let status = self.wait_status(limit, "without a signal");
        self.collect(status)
    }

    fn wait_status(&mut self, limit: Duration, what: &str) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait l7trace") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "l7trace did not exit within {limit:?} {what}; stderr:\n{}",
                    self.stderr_lines().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Output of an exited l7trace; asserts it did not panic.
    fn collect(&mut self, status: ExitStatus) -> Stopped {
        self.stdout_reader
            .take()
            .expect("stdout reader")
            .join()
            .unwrap();
        let stdout = std::mem::take(&mut *self.stdout.lock().unwrap());
        self.stderr_reader
            .take()
            .expect("stderr reader")
            .join()
            .unwrap();
        let stderr = self.stderr_lines();
        LAST_STDERR.with(|s| *s.borrow_mut() = stderr.clone());
        assert!(
            !stderr.iter().any(|l| l.contains("panicked")),
            "l7trace panicked; stderr:\n{}",
            stderr.join("\n")
        );
        let records = parse_records(&stdout);
        Stopped {
            records,
            stderr,
            status,
            stdout,
        }
    }
}

/// Every non-empty line of `stdout` as a JSON object; panics on one that is not.
fn parse_records(stdout: &[u8]) -> Vec<Value> {
    let records = stdout
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            let line = std::str::from_utf8(l)
                .unwrap_or_else(|e| panic!("stdout line is not UTF-8 ({e}): {l:?}"));
            serde_json::from_str::<Value>(line)
                .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line:?}"))
        })
        .collect::<Vec<Value>>();
    for r in &records {
        assert!(r.is_object(), "record is not a JSON object: {r}");
    }
    records
}

impl Drop for Trace {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The l7trace under test: `L7_TEST_BIN`, or the one built with the tests.
pub fn bin() -> String {
    std::env::var("L7_TEST_BIN").unwrap_or(env!("CARGO_BIN_EXE_l7trace").into())
}

/// A command running the l7trace under test (`bin`).
pub fn l7trace() -> Command {
    Command::new(bin())
}

/// A server `serve` runs on a fresh loopback listener, l7trace on its port, and a client
/// connected to it.
pub fn serve_traced<T>(serve: impl FnOnce(std::net::TcpListener) -> T) -> (T, Trace, std::net::TcpStream) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().unwrap().port();
    let server = serve(listener);
    let trace = Trace::on_port(port, &[]);
    let client = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    (server, trace, client)
}
