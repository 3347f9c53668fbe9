//! Process models through the real kernel: who served or made each exchange. Pre-fork
//! servers, fork after accept, thread pools that split accept/read/write, fd passing,
//! exec'd programs on an inherited socket, comm changes, SO_REUSEPORT, dual-stack
//! listeners, another network namespace, closes racing reads, many threads at once.
//!
//! The servers written in Python answer each request with a body naming who wrote the
//! answer (`TARGET pid=P tid=T comm=C`), so each record is checked against the process
//! the kernel actually ran, not against what the test expects the model to do.

mod common;
#[path = "common/netns.rs"]
mod netns;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::*;
use serde_json::Value;

/// Shared by every Python server: naming threads, reading heads, answering with who
/// answered.
const PRELUDE: &str = r#"
import os, sys, socket, threading, time, array
def name(n):
    with open('/proc/thread-self/comm', 'w') as f:
        f.write(n)
def whoami():
    with open('/proc/thread-self/comm') as f:
        comm = f.read().strip()
    return 'pid=%d tid=%d comm=%s' % (os.getpid(), threading.get_native_id(), comm)
def read_head(rfd, buf):
    while b'\r\n\r\n' not in buf:
        d = os.read(rfd, 65536)
        if not d:
            return None, buf
        buf += d
    head, _, rest = buf.partition(b'\r\n\r\n')
    return head, rest
def answer(wfd, head):
    target = head.split(b' ')[1].decode()
    body = ('%s %s' % (target, whoami())).encode()
    out = b'HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n' % len(body) + body
    while out:
        out = out[os.write(wfd, out):]
def serve(rfd, wfd, n=None):
    buf = b''
    while n is None or n > 0:
        head, buf = read_head(rfd, buf)
        if head is None:
            return
        answer(wfd, head)
        if n is not None:
            n -= 1
def listener(port, reuseport=False):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuseport:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    s.bind(('127.0.0.1', port))
    s.listen(64)
    return s
def ready():
    print('ready %d' % os.getpid(), flush=True)
"#;

/// A Python server in its own process group (it may fork workers): killed, group and
/// all, on drop.
struct Py {
    child: Child,
    out: BufReader<ChildStdout>,
}

impl Py {
    /// Runs PRELUDE + `script` with `args`; returns once it printed `ready PID`.
    fn start(script: &str, args: &[String]) -> Py {
        let mut child = Command::new("/usr/bin/python3")
            .arg("-c")
            .arg(format!("{PRELUDE}\n{script}"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .process_group(0)
            .spawn()
            .expect("start python3");
        let out = BufReader::new(child.stdout.take().expect("stdout piped"));
        let mut py = Py { child, out };
        let line = py.line();
        assert!(line.starts_with("ready "), "python server said {line:?}");
        py
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.out.read_line(&mut line).expect("read python stdout");
        line.trim_end().to_owned()
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Py {
    fn drop(&mut self) {
        // SAFETY: kill has no memory preconditions; the group is the one this test made.
        unsafe { libc::kill(-(self.child.id() as libc::pid_t), libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

/// Who answered, as the server put it in the body: (pid, tid, comm).
fn answered_by(body: &str) -> (u64, u64, String) {
    let mut it = body.split(' ').skip(1);
    let mut field = |k: &str| {
        let kv = it.next().unwrap_or_else(|| panic!("no {k} in body {body:?}"));
        kv.strip_prefix(k).and_then(|v| v.strip_prefix('=')).unwrap_or_else(|| panic!("{k} in {body:?}")).to_owned()
    };
    let pid = field("pid").parse().expect("pid");
    let tid = field("tid").parse().expect("tid");
    (pid, tid, field("comm"))
}

/// The records of `role` whose request target is `target`.
fn with_target<'a>(records: &'a [Value], role: &str, target: &str) -> Vec<&'a Value> {
    by_role(records, role).into_iter().filter(|r| r.pointer("/request/target").and_then(Value::as_str) == Some(target)).collect()
}

/// The one record of `role` for `target`.
fn one<'a>(records: &'a [Value], role: &str, target: &str) -> &'a Value {
    let found = with_target(records, role, target);
    assert_eq!(found.len(), 1, "expected one {role} record for {target}; records:\n{}", dump(records));
    found[0]
}

/// A server record for `target` from `client` to `server`, answered by the process and
/// thread its body names (the thread that read the request also wrote the answer).
fn check_server_record(records: &[Value], target: &str, client: SocketAddr, server: &str) -> (u64, u64, String) {
    let rec = one(records, "server", target);
    assert_eq!(str_at(rec, "/src"), client.to_string(), "src in {rec}");
    assert_eq!(str_at(rec, "/dst"), server, "dst in {rec}");
    assert_eq!(u64_at(rec, "/response/status"), 200, "status in {rec}");
    let body = str_at(rec, "/response/body");
    assert!(body.starts_with(&format!("{target} ")), "body {body:?} answers another request: {rec}");
    let (pid, tid, comm) = answered_by(body);
    assert_eq!(u64_at(rec, "/pid"), pid, "pid in {rec}");
    assert_eq!(u64_at(rec, "/tid"), tid, "tid in {rec}");
    assert_eq!(str_at(rec, "/comm"), comm, "comm in {rec}");
    assert_eq!(rec["complete"], true, "complete in {rec}");
    (pid, tid, comm)
}

/// The client record for `target` made by `c` (this process, the thread that made it).
fn check_client_record(records: &[Value], target: &str, c: &RawClient) {
    let rec = one(records, "client", target);
    assert_eq!(u64_at(rec, "/pid"), std::process::id() as u64, "pid in {rec}");
    assert_eq!(u64_at(rec, "/tid"), c.tid as u64, "tid in {rec}");
    assert_eq!(str_at(rec, "/comm"), c.comm, "comm in {rec}");
    assert_eq!(str_at(rec, "/src"), c.local_addr().to_string(), "src in {rec}");
    assert_eq!(str_at(rec, "/dst"), c.peer_addr().to_string(), "dst in {rec}");
    assert_eq!(u64_at(rec, "/response/status"), 200, "status in {rec}");
    assert!(str_at(rec, "/response/body").starts_with(&format!("{target} ")), "body in {rec}");
}

fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// GET `target` on `c`; returns the body.
fn get(c: &mut RawClient, target: &str) -> String {
    let r = c.exchange("GET", target);
    assert_eq!(r.status, 200);
    r.body_text()
}

// ---------------------------------------------------------------------------------------
// Pre-fork and fork after accept.

#[test]
fn prefork_workers_each_accepting_are_named() {
    let port = free_port();
    let py = Py::start(
        r#"
s = listener(int(sys.argv[1]))
for i in range(2):
    if os.fork() == 0:
        name('worker%d' % i)
        while True:
            c, _ = s.accept()
            serve(c.fileno(), c.fileno())
            c.close()
ready()
os.wait()
"#,
        &[port.to_string()],
    );
    let trace = Trace::on_port(port, &[]);
    let mut addrs = Vec::new();
    for i in 0..6 {
        let mut c = RawClient::connect(local(port));
        get(&mut c, &format!("/pf{i}"));
        addrs.push(c.local_addr());
    }
    let records = trace.stop();
    for (i, addr) in addrs.into_iter().enumerate() {
        let (pid, _, comm) = check_server_record(&records, &format!("/pf{i}"), addr, &local(port).to_string());
        assert_ne!(pid, py.pid() as u64, "a worker, not the parent, served /pf{i}");
        assert!(comm.starts_with("worker"), "comm {comm} of /pf{i}");
    }
}

#[test]
fn fork_after_accept_child_serves_after_parent_closes_its_copy() {
    let port = free_port();
    // The child answers one request, then waits until the parent has closed its copy of
    // the socket before it reads the next: the parent's close lands mid-connection.
    let py = Py::start(
        r#"
s = listener(int(sys.argv[1]))
ready()
while True:
    c, _ = s.accept()
    r1, w1 = os.pipe()
    r2, w2 = os.pipe()
    if os.fork() == 0:
        s.close()
        name('forked')
        buf = b''
        head, buf = read_head(c.fileno(), buf)
        answer(c.fileno(), head)
        os.write(w1, b'x')
        os.read(r2, 1)
        serve(c.fileno(), c.fileno())
        os._exit(0)
    os.read(r1, 1)
    c.close()
    os.write(w2, b'x')
"#,
        &[port.to_string()],
    );
    let trace = Trace::on_port(port, &[]);
    let mut c = RawClient::connect(local(port));
    for t in ["/fa1", "/fa2", "/fa3"] {
        get(&mut c, t);
    }
    let records = trace.stop();
    let server = local(port).to_string();
    let mut pids = Vec::new();
    for t in ["/fa1", "/fa2", "/fa3"] {
        let (pid, _, comm) = check_server_record(&records, t, c.local_addr(), &server);
        assert_ne!(pid, py.pid() as u64, "the child, not the parent, served {t}");
        assert_eq!(comm, "forked");
        pids.push(pid);
    }
    assert!(pids.windows(2).all(|w| w[0] == w[1]), "one child served all: {pids:?}");
    assert_eq!(by_role(&records, "server").len(), 3, "records:\n{}", dump(&records));
}

// ---------------------------------------------------------------------------------------
// Threads.

/// Reads one request head from `s` (a byte at a time after the first read would be
/// slow; the client sends a request only after the previous answer, so one read ends at
/// a head's end).
fn read_one_head(mut s: &TcpStream) -> Option<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = s.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let line = String::from_utf8_lossy(&buf).lines().next()?.to_owned();
    Some(line.split(' ').nth(1)?.to_owned())
}

fn write_answer(mut s: &TcpStream, target: &str, who: &str) {
    let body = format!("{target} {who}");
    let wire = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len());
    s.write_all(wire.as_bytes()).expect("write answer");
}

fn who() -> String {
    format!("pid={} tid={} comm={}", std::process::id(), gettid(), thread_comm())
}

#[test]
fn thread_pool_accept_read_write_in_three_threads() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (to_reader, from_acceptor) = mpsc::channel::<TcpStream>();
    let (to_writer, from_reader) = mpsc::channel::<(TcpStream, String, String)>();
    let (readers_tx, readers) = mpsc::channel::<(u32, String)>();
    std::thread::Builder::new()
        .name("tp-accept".into())
        .spawn(move || {
            for s in listener.incoming().flatten() {
                if to_reader.send(s).is_err() {
                    return;
                }
            }
        })
        .expect("spawn");
    std::thread::Builder::new()
        .name("tp-read".into())
        .spawn(move || {
            let _ = readers_tx.send((gettid(), thread_comm()));
            for s in from_acceptor {
                // The reader names itself in the answer: it read the request's first byte.
                while let Some(target) = read_one_head(&s) {
                    let Ok(w) = s.try_clone() else { return };
                    let _ = to_writer.send((w, target, who()));
                }
            }
        })
        .expect("spawn");
    std::thread::Builder::new()
        .name("tp-write".into())
        .spawn(move || {
            for (s, target, reader) in from_reader {
                write_answer(&s, &target, &reader);
            }
        })
        .expect("spawn");
    let (reader_tid, reader_comm) = readers.recv().expect("reader tid");
    let trace = Trace::on_port(port, &[]);
    let mut c = RawClient::connect(local(port));
    for t in ["/tp1", "/tp2", "/tp3"] {
        get(&mut c, t);
    }
    let records = trace.stop();
    for t in ["/tp1", "/tp2", "/tp3"] {
        let (pid, tid, comm) = check_server_record(&records, t, c.local_addr(), &local(port).to_string());
        assert_eq!((pid, tid, comm.as_str()), (std::process::id() as u64, reader_tid as u64, reader_comm.as_str()));
        check_client_record(&records, t, &c);
    }
}

#[test]
fn comm_changed_between_requests_is_the_comm_of_each_request() {
    let port = free_port();
    let _py = Py::start(
        r#"
s = listener(int(sys.argv[1]))
name('before')
ready()
while True:
    c, _ = s.accept()
    name('before')
    serve(c.fileno(), c.fileno(), 1)
    name('after')
    serve(c.fileno(), c.fileno())
    c.close()
"#,
        &[port.to_string()],
    );
    let trace = Trace::on_port(port, &[]);
    let mut c = RawClient::connect(local(port));
    get(&mut c, "/cc1");
    get(&mut c, "/cc2");
    let records = trace.stop();
    let server = local(port).to_string();
    let (_, _, comm1) = check_server_record(&records, "/cc1", c.local_addr(), &server);
    let (_, _, comm2) = check_server_record(&records, "/cc2", c.local_addr(), &server);
    assert_eq!((comm1.as_str(), comm2.as_str()), ("before", "after"));
}

#[test]
fn client_connection_reused_by_another_thread_after_the_first_exits() {
    let server = HttpServer::start_default();
    let addr = server.addr;
    let trace = Trace::on_port(server.port(), &[]);
    let (c, first) = std::thread::Builder::new()
        .name("cli-first".into())
        .spawn(move || {
            let mut c = RawClient::connect(addr);
            c.exchange("GET", "/re1");
            (c, (gettid(), thread_comm()))
        })
        .expect("spawn")
        .join()
        .expect("first thread");
    let (c, second) = std::thread::Builder::new()
        .name("cli-second".into())
        .spawn(move || {
            let mut c = c;
            c.exchange("GET", "/re2");
            (c, (gettid(), thread_comm()))
        })
        .expect("spawn")
        .join()
        .expect("second thread");
    let records = trace.stop();
    for (t, (tid, comm)) in [("/re1", first), ("/re2", second)] {
        let rec = one(&records, "client", t);
        assert_eq!(u64_at(rec, "/pid"), std::process::id() as u64, "pid in {rec}");
        assert_eq!(u64_at(rec, "/tid"), tid as u64, "tid in {rec}");
        assert_eq!(str_at(rec, "/comm"), comm, "comm in {rec}");
        assert_eq!(str_at(rec, "/src"), c.local_addr().to_string(), "src in {rec}");
        assert_eq!(str_at(rec, "/dst"), server.authority(), "dst in {rec}");
        assert_eq!(str_at(rec, "/response/body"), format!("hello from {t}"), "body in {rec}");
        assert_eq!(u64_at(one(&records, "server", t), "/response/status"), 200);
    }
}

// ---------------------------------------------------------------------------------------
// fd passing and exec.

/// The dispatcher answers the first request of the first connection itself, then passes
/// the socket over a unix socket (SCM_RIGHTS) to a worker process that serves it on a
/// thread; later connections it passes unread.
const FD_PASSING: &str = r#"
s = listener(int(sys.argv[1]))
a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
worker = os.fork()
if worker == 0:
    name('fdworker')
    a.close()
    while True:
        msg, fds, _, _ = socket.recv_fds(b, 16, 1)
        if not fds:
            os._exit(0)
        def run(fd):
            serve(fd, fd)
            os.close(fd)
        threading.Thread(target=run, args=(fds[0],)).start()
name('dispatcher')
ready()
print(worker, flush=True)
first = True
while True:
    c, _ = s.accept()
    if first:
        serve(c.fileno(), c.fileno(), 1)
        first = False
    socket.send_fds(a, [b'x'], [c.fileno()])
    c.close()
"#;

/// Two connections of two requests each through the fd-passing server; returns the
/// clients' addresses.
fn fd_passing_traffic(port: u16) -> (RawClient, RawClient) {
    let mut c1 = RawClient::connect(local(port));
    get(&mut c1, "/sr1");
    get(&mut c1, "/sr2");
    let mut c2 = RawClient::connect(local(port));
    get(&mut c2, "/sr3");
    get(&mut c2, "/sr4");
    (c1, c2)
}

#[test]
fn fd_passed_with_scm_rights_is_the_receivers_from_then_on() {
    let port = free_port();
    let py = Py::start(FD_PASSING, &[port.to_string()]);
    let trace = Trace::on_port(port, &[]);
    let (c1, c2) = fd_passing_traffic(port);
    let records = trace.stop();
    let server = local(port).to_string();
    let (p1, _, comm1) = check_server_record(&records, "/sr1", c1.local_addr(), &server);
    assert_eq!((p1, comm1.as_str()), (py.pid() as u64, "dispatcher"));
    check_client_record(&records, "/sr1", &c1);
    for (t, c) in [("/sr2", &c1), ("/sr3", &c2), ("/sr4", &c2)] {
        let (pid, _, comm) = check_server_record(&records, t, c.local_addr(), &server);
        assert_ne!(pid, py.pid() as u64, "{t}: the receiver served it");
        assert_eq!(comm, "fdworker");
        check_client_record(&records, t, c);
    }
}

/// `--comm` selects exchanges by the process of each request, not by the connection's
/// first user.
#[test]
fn comm_filter_follows_a_passed_fd() {
    let port = free_port();
    let _py = Py::start(FD_PASSING, &[port.to_string()]);
    let trace = Trace::on_port(port, &["--comm", "fdworker"]);
    let (c1, c2) = fd_passing_traffic(port);
    let records = trace.stop();
    assert_eq!(records.len(), 3, "the worker's three: {}", dump(&records));
    let server = local(port).to_string();
    for (t, c) in [("/sr2", &c1), ("/sr3", &c2), ("/sr4", &c2)] {
        let (_, _, comm) = check_server_record(&records, t, c.local_addr(), &server);
        assert_eq!(comm, "fdworker");
    }

    // A fresh server: the dispatcher answers only the first connection's first request.
    let port = free_port();
    let _py = Py::start(FD_PASSING, &[port.to_string()]);
    let trace = Trace::on_port(port, &["--comm", "dispatcher"]);
    let (c1, _c2) = fd_passing_traffic(port);
    let records = trace.stop();
    assert_eq!(records.len(), 1, "the dispatcher's one: {}", dump(&records));
    check_server_record(&records, "/sr1", c1.local_addr(), &local(port).to_string());
}

/// A server that accepts and execs a program with the socket as its stdin and stdout.
#[test]
fn exec_with_the_socket_on_stdin_and_stdout() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let trace = Trace::on_port(port, &[]);
    let mut c = RawClient::connect(local(port));
    let (conn, _) = listener.accept().expect("accept");
    let read_end = conn.try_clone().expect("dup");
    let mut child = Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(format!("{PRELUDE}\nserve(0, 1)"))
        .stdin(Stdio::from(std::os::fd::OwnedFd::from(read_end)))
        .stdout(Stdio::from(std::os::fd::OwnedFd::from(conn)))
        .spawn()
        .expect("exec python3");
    get(&mut c, "/ex1");
    get(&mut c, "/ex2");
    let records = trace.stop();
    let caddr = c.local_addr();
    drop(c);
    let _ = child.wait();
    let server = local(port).to_string();
    for t in ["/ex1", "/ex2"] {
        let (pid, _, comm) = check_server_record(&records, t, caddr, &server);
        assert_eq!((pid, comm.as_str()), (child.id() as u64, "python3"));
    }
}

/// inetd style: socat forks per connection and execs the program on the socket
/// (`nofork`: no relay process in between).
#[test]
fn socat_exec_inetd_style() {
    let port = free_port();
    let script = format!("{PRELUDE}\nserve(0, 1)");
    let path = std::env::temp_dir().join(format!("l7t-inetd-{}.py", std::process::id()));
    std::fs::write(&path, script).expect("write script");
    let mut socat = Command::new("socat")
        .arg("-d")
        .arg("-d")
        .arg(format!("TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork"))
        .arg(format!("EXEC:/usr/bin/python3 {},nofork", path.display()))
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("start socat (apt-get install socat)");
    let mut err = BufReader::new(socat.stderr.take().expect("stderr"));
    let mut line = String::new();
    while !line.contains("listening on") {
        line.clear();
        assert!(err.read_line(&mut line).expect("socat stderr") > 0, "socat exited");
    }
    std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
    let trace = Trace::on_port(port, &[]);
    let mut c = RawClient::connect(local(port));
    get(&mut c, "/in1");
    get(&mut c, "/in2");
    let records = trace.stop();
    let caddr = c.local_addr();
    drop(c);
    // SAFETY: the group socat leads, which this test started.
    unsafe { libc::kill(-(socat.id() as libc::pid_t), libc::SIGKILL) };
    let _ = socat.wait();
    let _ = std::fs::remove_file(&path);
    for t in ["/in1", "/in2"] {
        let (pid, _, comm) = check_server_record(&records, t, caddr, &local(port).to_string());
        assert_ne!(pid, socat.id() as u64, "the exec'd program, not the listener, served {t}");
        assert_eq!(comm, "python3");
    }
}

// ---------------------------------------------------------------------------------------
// Several processes on one port; filters.

const WORKER: &str = r#"
s = listener(int(sys.argv[1]), reuseport=True)
name(sys.argv[2])
ready()
while True:
    c, _ = s.accept()
    serve(c.fileno(), c.fileno())
    c.close()
"#;

#[test]
fn so_reuseport_each_exchange_is_the_process_that_served_it() {
    let port = free_port();
    let a = Py::start(WORKER, &[port.to_string(), "rp-a".into()]);
    let b = Py::start(WORKER, &[port.to_string(), "rp-b".into()]);
    let trace = Trace::on_port(port, &[]);
    let mut addrs = Vec::new();
    for i in 0..24 {
        let mut c = RawClient::connect(local(port));
        get(&mut c, &format!("/rp{i}"));
        addrs.push(c.local_addr());
    }
    let records = trace.stop();
    let mut seen = std::collections::BTreeSet::new();
    for (i, addr) in addrs.into_iter().enumerate() {
        let (pid, _, comm) = check_server_record(&records, &format!("/rp{i}"), addr, &local(port).to_string());
        let expected = if pid == a.pid() as u64 { "rp-a" } else { "rp-b" };
        assert!(pid == a.pid() as u64 || pid == b.pid() as u64, "pid {pid} is neither server");
        assert_eq!(comm, expected);
        seen.insert(pid);
    }
    // 24 connections hashed over two sockets: all on one has odds of 2^-23.
    assert_eq!(seen.len(), 2, "both servers served");
}

/// A pre-fork server whose workers print their pids.
const PREFORK: &str = r#"
s = listener(int(sys.argv[1]))
name('pf-master')
pids = []
for i in range(2):
    pid = os.fork()
    if pid == 0:
        name('pf-worker%d' % i)
        while True:
            c, _ = s.accept()
            serve(c.fileno(), c.fileno())
            c.close()
    pids.append(pid)
ready()
print(' '.join(str(p) for p in pids), flush=True)
os.wait()
"#;

fn prefork(port: u16) -> (Py, Vec<u32>) {
    let mut py = Py::start(PREFORK, &[port.to_string()]);
    let line = py.line();
    let pids = line.split(' ').map(|p| p.parse().expect("worker pid")).collect();
    (py, pids)
}

/// Connections until each worker has answered at least `per_worker`; returns the targets
/// by worker pid (as the answers say).
fn load_workers(port: u16, tag: &str, workers: &[u32]) -> Vec<(String, u32)> {
    let mut out = Vec::new();
    for i in 0..64 {
        let target = format!("/{tag}{i}");
        let mut c = RawClient::connect(local(port));
        let (pid, _, _) = answered_by(&get(&mut c, &target));
        out.push((target, pid as u32));
        if workers.iter().all(|w| out.iter().filter(|(_, p)| p == w).count() >= 2) {
            break;
        }
    }
    out
}

/// `--pid` is the processes named, in the kernel: a forking server's children are other
/// processes, so the master's pid alone selects none of their exchanges. Users name the
/// workers (`--pid` repeats) or select by command name (`--comm`).
#[test]
fn pid_filter_is_exact_and_a_forking_servers_children_are_other_pids() {
    let port = free_port();
    let (py, workers) = prefork(port);
    let master = py.pid().to_string();
    let trace = Trace::on_port(port, &["--pid", &master]);
    load_workers(port, "pm", &workers);
    let records = trace.stop();
    assert!(records.is_empty(), "the master served nothing: {}", dump(&records));

    let w0 = workers[0].to_string();
    let trace = Trace::on_port(port, &["--pid", &w0]);
    let served = load_workers(port, "pw", &workers);
    let records = trace.stop();
    let mine: Vec<_> = served.iter().filter(|(_, p)| *p == workers[0]).collect();
    assert_eq!(records.len(), mine.len(), "only worker 0's exchanges: {}", dump(&records));
    for (t, _) in mine {
        let rec = one(&records, "server", t);
        assert_eq!(u64_at(rec, "/pid"), workers[0] as u64, "pid in {rec}");
        assert_eq!(str_at(rec, "/comm"), "pf-worker0", "comm in {rec}");
    }
}

#[test]
fn comm_and_role_filters_select_by_the_serving_process() {
    let port = free_port();
    let (_py, workers) = prefork(port);
    let trace = Trace::on_port(port, &["--comm", "pf-worker1", "--role", "server"]);
    let served = load_workers(port, "cf", &workers);
    let records = trace.stop();
    let mine: Vec<_> = served.iter().filter(|(_, p)| *p == workers[1]).collect();
    assert_eq!(records.len(), mine.len(), "only worker 1's server records: {}", dump(&records));
    for (t, _) in mine {
        let rec = one(&records, "server", t);
        assert_eq!(u64_at(rec, "/pid"), workers[1] as u64, "pid in {rec}");
    }

    let trace = Trace::on_port(port, &["--role", "client"]);
    let served = load_workers(port, "rc", &workers);
    let records = trace.stop();
    assert_eq!(records.len(), served.len(), "one client record each: {}", dump(&records));
    for (t, _) in &served {
        let rec = one(&records, "client", t);
        assert_eq!(u64_at(rec, "/pid"), std::process::id() as u64, "pid in {rec}");
    }
}

/// `--role server`: the client's end of a connection is left out, and once l7trace has
/// seen it the kernel side stops copying it: 200 keep-alive exchanges, after the first,
/// reach l7trace as the server's two events each, not four (before: 800 events).
#[test]
fn role_filter_stops_the_other_sides_copies_in_the_kernel() {
    const N: usize = 200;
    let server = HttpServer::start_default();
    let port = server.port();
    let trace = Trace::on_port(port, &["--role", "server"]);
    let mut c = RawClient::connect(local(port));
    get(&mut c, "/first");
    // Its record out: the client's end has been seen, and given up.
    let seen = trace.wait_for_records(Duration::from_secs(10), |r| !r.is_empty());
    assert_eq!(seen.len(), 1, "the first server record: {}", dump(&seen));
    for i in 1..N {
        get(&mut c, &format!("/k{i}"));
    }
    drop(c);
    let stopped = trace.stop_full();
    assert_eq!(stopped.records.len(), N, "one server record each: {}", dump(&stopped.records));
    assert!(stopped.records.iter().all(|r| r["role"] == "server"));
    let events = summary_counter(&stopped.stderr, "events");
    // The server's read and write per exchange, two closes, the client's first calls.
    assert!(events <= 2 * N as u64 + 12, "{events} events: the client's end was still copied; stderr:\n{}", stopped.stderr.join("\n"));
}

// ---------------------------------------------------------------------------------------
// Addresses.

#[test]
fn dual_stack_listener_shows_the_ipv4_the_wire_carries() {
    let server = HttpServer::start("[::]:0", common::server::default_reply);
    let port = server.port();
    let trace = Trace::on_port(port, &[]);
    let mut c = RawClient::connect(local(port));
    get(&mut c, "/v4m");
    let records = trace.stop();
    let served = server.served();
    assert_eq!(served.len(), 1);
    for role in ["client", "server"] {
        let rec = one(&records, role, "/v4m");
        assert_eq!(str_at(rec, "/src"), c.local_addr().to_string(), "src in {rec}");
        assert_eq!(str_at(rec, "/dst"), local(port).to_string(), "dst in {rec}");
        assert_eq!(str_at(rec, "/response/body"), "hello from /v4m", "body in {rec}");
    }
    let srv = one(&records, "server", "/v4m");
    assert_eq!(u64_at(srv, "/tid"), served[0].tid as u64, "tid in {srv}");
    assert_eq!(str_at(srv, "/comm"), served[0].comm, "comm in {srv}");
}

/// A client on an IPv6 socket connecting to a v4-mapped address: both ends' sockets say
/// `::ffff:127.0.0.1`, the wire carries IPv4.
#[test]
fn v4_mapped_client_socket_shows_ipv4() {
    let server = HttpServer::start("[::]:0", common::server::default_reply);
    let port = server.port();
    let trace = Trace::on_port(port, &[]);
    let mapped: SocketAddr = format!("[::ffff:127.0.0.1]:{port}").parse().expect("addr");
    let mut c = RawClient::connect(mapped);
    get(&mut c, "/v6m");
    let records = trace.stop();
    let std::net::IpAddr::V6(v6) = c.local_addr().ip() else { panic!("an IPv6 socket") };
    let src = SocketAddr::new(v6.to_ipv4_mapped().expect("mapped").into(), c.local_addr().port());
    for role in ["client", "server"] {
        let rec = one(&records, role, "/v6m");
        assert_eq!(str_at(rec, "/src"), src.to_string(), "src in {rec}");
        assert_eq!(str_at(rec, "/dst"), local(port).to_string(), "dst in {rec}");
        assert_eq!(str_at(rec, "/response/body"), "hello from /v6m", "body in {rec}");
    }
    let cli = one(&records, "client", "/v6m");
    assert_eq!((u64_at(cli, "/tid"), str_at(cli, "/comm")), (c.tid as u64, c.comm.as_str()), "{cli}");
}

/// The syscall probes are the host's: a server in another network namespace is traced,
/// over its own loopback and over a veth from a third namespace, with that namespace's
/// addresses.
#[test]
fn server_in_another_network_namespace() {
    let pair = netns::NetPair::new();
    let server = netns::in_ns(&pair.server_ns, "ns-setup", || HttpServer::start("0.0.0.0:0", common::server::default_reply));
    let port = server.port();
    let trace = Trace::on_port(port, &[]);
    let lo = SocketAddr::from(([127, 0, 0, 1], port));
    let (lo_client, lo_tid) = netns::in_ns(&pair.server_ns, "ns-lo-cli", move || {
        let mut c = RawClient::connect(lo);
        get(&mut c, "/ns-lo");
        (c.local_addr(), gettid())
    });
    let veth = SocketAddr::new(pair.server_ip(false), port);
    let (veth_client, veth_tid) = netns::in_ns(&pair.client_ns, "ns-veth-cli", move || {
        let mut c = RawClient::connect(veth);
        get(&mut c, "/ns-veth");
        (c.local_addr(), gettid())
    });
    let records = trace.stop();
    for (t, client, dst, tid, comm) in [
        ("/ns-lo", lo_client, lo, lo_tid, "ns-lo-cli"),
        ("/ns-veth", veth_client, veth, veth_tid, "ns-veth-cli"),
    ] {
        for role in ["client", "server"] {
            let rec = one(&records, role, t);
            assert_eq!(str_at(rec, "/src"), client.to_string(), "src in {rec}");
            assert_eq!(str_at(rec, "/dst"), dst.to_string(), "dst in {rec}");
            assert_eq!(str_at(rec, "/response/body"), format!("hello from {t}"), "body in {rec}");
            assert_eq!(u64_at(rec, "/pid"), std::process::id() as u64, "pid in {rec}");
        }
        let cli = one(&records, "client", t);
        assert_eq!((u64_at(cli, "/tid"), str_at(cli, "/comm")), (tid as u64, comm), "{cli}");
        assert_eq!(str_at(one(&records, "server", t), "/comm"), "l7t-srv");
    }
}

/// The same address and port served in the host's namespace and in another at once, with
/// interleaved keep-alive exchanges: each exchange stays with its own connection.
#[test]
fn same_loopback_port_in_two_namespaces_at_once() {
    let pair = netns::NetPair::new();
    let host = HttpServer::start("127.0.0.1:0", |q: &Request| Reply::ok(format!("host {}", q.target)));
    let port = host.port();
    let bind = format!("127.0.0.1:{port}");
    let ns = netns::in_ns(&pair.server_ns, "ns-setup", move || {
        HttpServer::start(&bind, |q: &Request| Reply::ok(format!("ns {}", q.target)))
    });
    let trace = Trace::on_port(port, &[]);
    let mut hc = RawClient::connect(local(port));
    let (to_ns, ns_rx) = mpsc::channel::<String>();
    let (ns_done, from_ns) = mpsc::channel::<String>();
    let addr = local(port);
    let ns_client = std::thread::Builder::new()
        .name("ns-cli".into())
        .spawn({
            let ns_name = pair.server_ns.clone();
            move || {
                netns::enter(&ns_name);
                let mut c = RawClient::connect(addr);
                for t in ns_rx {
                    let body = get(&mut c, &t);
                    let _ = ns_done.send(body);
                }
                (c.local_addr(), c.tid)
            }
        })
        .expect("spawn");
    for i in 0..10 {
        let t = format!("/two{i}");
        to_ns.send(t.clone()).expect("send");
        assert_eq!(get(&mut hc, &t), format!("host {t}"));
        assert_eq!(from_ns.recv().expect("ns answer"), format!("ns {t}"));
    }
    drop(to_ns);
    let (ns_addr, ns_tid) = ns_client.join().expect("ns client");
    let records = trace.stop();
    drop(ns);
    assert_eq!(records.len(), 40, "{}", dump(&records));
    for i in 0..10 {
        let t = format!("/two{i}");
        for role in ["client", "server"] {
            let recs = with_target(&records, role, &t);
            assert_eq!(recs.len(), 2, "{role} {t}: {}", dump(&records));
            for rec in recs {
                let src = str_at(rec, "/src");
                let (expected, body) = if src == hc.local_addr().to_string() {
                    ("host", format!("host {t}"))
                } else {
                    assert_eq!(src, ns_addr.to_string(), "src in {rec}");
                    ("ns", format!("ns {t}"))
                };
                assert_eq!(str_at(rec, "/response/body"), body, "{expected} body in {rec}");
                assert_eq!(str_at(rec, "/dst"), local(port).to_string(), "dst in {rec}");
                if role == "client" {
                    let tid = if expected == "host" { hc.tid } else { ns_tid };
                    assert_eq!(u64_at(rec, "/tid"), tid as u64, "tid in {rec}");
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Closes.

/// A connection served on one thread of this process by `serve`, which gets the stream.
fn serve_one(serve: impl FnOnce(TcpStream) + Send + 'static) -> (u16, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let h = std::thread::Builder::new()
        .name("cl-srv".into())
        .spawn(move || {
            let (s, _) = listener.accept().expect("accept");
            serve(s)
        })
        .expect("spawn");
    (port, h)
}

/// One thread blocks in read on the socket while another closes its fd: Linux lets the
/// read go on (it holds the file), so the socket lives until the read returns. The
/// exchange before is reported once, nothing is made up after.
#[test]
fn close_by_one_thread_while_another_blocks_in_read() {
    use std::os::fd::AsRawFd;
    let (ready_tx, ready_rx) = mpsc::channel::<i32>();
    let (port, h) = serve_one(move |s| {
        let t = read_one_head(&s).expect("head");
        write_answer(&s, &t, &who());
        let _ = ready_tx.send(s.as_raw_fd());
        // Blocks until the client closes; the fd is closed under it meanwhile.
        let mut buf = [0u8; 64];
        let _ = (&s).read(&mut buf);
        std::mem::forget(s);
    });
    let trace = Trace::on_port(port, &[]);
    let mut c = RawClient::connect(local(port));
    get(&mut c, "/cr1");
    let fd = ready_rx.recv().expect("fd");
    std::thread::sleep(Duration::from_millis(100));
    // SAFETY: the fd of the socket the server thread owns and has forgotten; closing it
    // under the blocked read is the case under test.
    assert_eq!(unsafe { libc::close(fd) }, 0);
    let caddr = c.local_addr();
    drop(c);
    h.join().expect("server thread");
    let records = trace.stop();
    assert_eq!(records.len(), 2, "{}", dump(&records));
    check_server_record(&records, "/cr1", caddr, &local(port).to_string());
    assert_eq!(one(&records, "client", "/cr1")["complete"], true);
}

/// shutdown(SHUT_RDWR) then close after one answer; the client's next request, sent into
/// the closed connection, has a client record without response and no server record.
#[test]
fn shutdown_rdwr_then_close() {
    let (port, h) = serve_one(|s| {
        let t = read_one_head(&s).expect("head");
        write_answer(&s, &t, &who());
        s.shutdown(std::net::Shutdown::Both).expect("shutdown");
        drop(s);
    });
    let trace = Trace::on_port(port, &[]);
    let mut c = RawClient::connect(local(port));
    get(&mut c, "/sd1");
    h.join().expect("server thread");
    let mut eof = [0u8; 1];
    assert_eq!(c.stream().read(&mut eof).expect("read eof"), 0, "EOF after shutdown");
    c.send(request("GET", "/sd2", "x", &[]).as_bytes());
    let caddr = c.local_addr();
    drop(c);
    let records = trace.stop();
    check_server_record(&records, "/sd1", caddr, &local(port).to_string());
    assert_eq!(one(&records, "client", "/sd1")["complete"], true);
    assert!(with_target(&records, "server", "/sd2").is_empty(), "{}", dump(&records));
    let late = one(&records, "client", "/sd2");
    assert!(late["response"].is_null(), "no answer was made up: {late}");
}

/// A dup'd fd closed while the original stays open, then the original closed while a dup
/// stays open: the connection goes on through whichever fd is left.
#[test]
fn close_of_one_fd_of_a_socket_while_another_stays_open() {
    let (port, h) = serve_one(|s| {
        let t = read_one_head(&s).expect("head");
        write_answer(&s, &t, &who());
        drop(s.try_clone().expect("dup"));
        let t = read_one_head(&s).expect("head");
        write_answer(&s, &t, &who());
        let d = s.try_clone().expect("dup");
        drop(s);
        let t = read_one_head(&d).expect("head");
        write_answer(&d, &t, &who());
    });
    let trace = Trace::on_port(port, &[]);
    let mut c = RawClient::connect(local(port));
    for t in ["/dc1", "/dc2", "/dc3"] {
        get(&mut c, t);
    }
    h.join().expect("server thread");
    let records = trace.stop();
    assert_eq!(records.len(), 6, "{}", dump(&records));
    for t in ["/dc1", "/dc2", "/dc3"] {
        check_server_record(&records, t, c.local_addr(), &local(port).to_string());
        check_client_record(&records, t, &c);
    }
}

// ---------------------------------------------------------------------------------------
// Many threads at once.

#[test]
fn sixteen_threads_each_with_a_keepalive_connection() {
    const THREADS: usize = 16;
    const REQUESTS: usize = 50;
    let server = HttpServer::start_default();
    let addr = server.addr;
    let trace = Trace::on_port(server.port(), &[]);
    let clients: Vec<_> = (0..THREADS)
        .map(|t| {
            std::thread::Builder::new()
                .name(format!("mt-{t}"))
                .spawn(move || {
                    let mut c = RawClient::connect(addr);
                    for i in 0..REQUESTS {
                        let target = format!("/mt{t}-{i}");
                        assert_eq!(get(&mut c, &target), format!("hello from {target}"));
                    }
                    (c.local_addr(), c.tid, c.comm.clone())
                })
                .expect("spawn")
        })
        .collect();
    let clients: Vec<_> = clients.into_iter().map(|h| h.join().expect("client thread")).collect();
    let records = trace.stop();
    let served = server.served();
    assert_eq!(records.len(), 2 * THREADS * REQUESTS, "{}", summary_line(&records));
    for (t, (addr, tid, comm)) in clients.iter().enumerate() {
        let srv_thread = served.iter().find(|s| s.peer == *addr).expect("served").tid;
        for i in 0..REQUESTS {
            let target = format!("/mt{t}-{i}");
            for role in ["client", "server"] {
                let rec = one(&records, role, &target);
                assert_eq!(str_at(rec, "/src"), addr.to_string(), "src in {rec}");
                assert_eq!(str_at(rec, "/dst"), server.authority(), "dst in {rec}");
                assert_eq!(str_at(rec, "/response/body"), format!("hello from {target}"), "body in {rec}");
                assert_eq!(rec["complete"], true, "complete in {rec}");
                assert_eq!(u64_at(rec, "/pid"), std::process::id() as u64, "pid in {rec}");
            }
            let cli = one(&records, "client", &target);
            assert_eq!((u64_at(cli, "/tid"), str_at(cli, "/comm")), (*tid as u64, comm.as_str()), "{cli}");
            let srv = one(&records, "server", &target);
            assert_eq!((u64_at(srv, "/tid"), str_at(srv, "/comm")), (srv_thread as u64, "l7t-srv"), "{srv}");
        }
    }
}

/// The record count and l7trace's summary, for a failure message without 1,600 lines.
fn summary_line(records: &[Value]) -> String {
    format!("{} records; {}", records.len(), common::trace::last_stderr().join("\n"))
}

/// `--pid` of the process a socket is passed to: its exchanges only, framed from its own
/// first request (the dispatcher's bytes before are not counted for it).
#[test]
fn pid_filter_on_the_receiver_of_a_passed_fd() {
    let port = free_port();
    let mut py = Py::start(FD_PASSING, &[port.to_string()]);
    let worker = py.line();
    let trace = Trace::on_port(port, &["--pid", &worker]);
    let (c1, c2) = fd_passing_traffic(port);
    let records = trace.stop();
    assert_eq!(records.len(), 3, "the worker's three: {}", dump(&records));
    let server = local(port).to_string();
    for (t, c) in [("/sr2", &c1), ("/sr3", &c2), ("/sr4", &c2)] {
        let (pid, _, _) = check_server_record(&records, t, c.local_addr(), &server);
        assert_eq!(pid.to_string(), worker);
    }
}

/// A pool of reader threads sharing every connection: after each answer the connection
/// goes back to a queue and whichever thread takes it next reads its next request. Many
/// clients at once: each exchange names the thread that read it, paired right.
#[test]
fn pool_threads_take_turns_on_every_connection() {
    const CLIENTS: usize = 8;
    const REQUESTS: usize = 30;
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (queue, taken) = mpsc::channel::<TcpStream>();
    let taken = std::sync::Arc::new(std::sync::Mutex::new(taken));
    for n in 0..4 {
        let (taken, queue) = (std::sync::Arc::clone(&taken), queue.clone());
        std::thread::Builder::new()
            .name(format!("pool-{n}"))
            .spawn(move || loop {
                let next = taken.lock().map(|rx| rx.recv());
                let Ok(Ok(s)) = next else { return };
                if let Some(target) = read_one_head(&s) {
                    write_answer(&s, &target, &who());
                    let _ = queue.send(s);
                }
            })
            .expect("spawn");
    }
    std::thread::spawn(move || {
        for s in listener.incoming().flatten() {
            let _ = queue.send(s);
        }
    });
    let trace = Trace::on_port(port, &[]);
    let clients: Vec<_> = (0..CLIENTS)
        .map(|k| {
            std::thread::spawn(move || {
                let mut c = RawClient::connect(local(port));
                for i in 0..REQUESTS {
                    get(&mut c, &format!("/pool{k}-{i}"));
                }
                c.local_addr()
            })
        })
        .collect();
    let addrs: Vec<_> = clients.into_iter().map(|h| h.join().expect("client")).collect();
    let records = trace.stop();
    assert_eq!(records.len(), 2 * CLIENTS * REQUESTS, "{}", summary_line(&records));
    let mut readers = std::collections::BTreeSet::new();
    for (k, addr) in addrs.into_iter().enumerate() {
        for i in 0..REQUESTS {
            let (_, tid, comm) = check_server_record(&records, &format!("/pool{k}-{i}"), addr, &local(port).to_string());
            assert!(comm.starts_with("pool-"), "comm {comm}");
            readers.insert(tid);
        }
    }
    assert!(readers.len() > 1, "connections moved between threads: {readers:?}");
}

/// A client that writes pipelined requests from one thread while another reads the
/// answers at the same time (Go's transport does this): one connection used in both
/// directions at once by two threads. Each exchange names the writing thread.
#[test]
fn full_duplex_client_writer_and_reader_threads() {
    const REQUESTS: usize = 50;
    let server = HttpServer::start_default();
    let trace = Trace::on_port(server.port(), &[]);
    let c = RawClient::connect(server.addr);
    let (caddr, host) = (c.local_addr(), server.authority());
    let mut w = c.stream().try_clone().expect("dup");
    let writer = std::thread::Builder::new()
        .name("dx-write".into())
        .spawn(move || {
            for i in 0..REQUESTS {
                w.write_all(request("GET", &format!("/dx{i}"), &host, &[]).as_bytes()).expect("write");
            }
            (gettid(), thread_comm())
        })
        .expect("spawn");
    let reader = std::thread::Builder::new()
        .name("dx-read".into())
        .spawn(move || {
            let mut c = c;
            (0..REQUESTS).map(|_| c.read_response(false).body_text()).collect::<Vec<_>>()
        })
        .expect("spawn");
    let (wtid, wcomm) = writer.join().expect("writer");
    let bodies = reader.join().expect("reader");
    let records = trace.stop();
    assert_eq!(records.len(), 2 * REQUESTS, "{}", summary_line(&records));
    for (i, body) in bodies.iter().enumerate() {
        let t = format!("/dx{i}");
        assert_eq!(body, &format!("hello from {t}"));
        for role in ["client", "server"] {
            let rec = one(&records, role, &t);
            assert_eq!(str_at(rec, "/response/body"), body, "body in {rec}");
            assert_eq!(str_at(rec, "/src"), caddr.to_string(), "src in {rec}");
            assert_eq!(rec["complete"], true, "complete in {rec}");
        }
        let cli = one(&records, "client", &t);
        assert_eq!((u64_at(cli, "/tid"), str_at(cli, "/comm")), (wtid as u64, wcomm.as_str()), "{cli}");
    }
}

/// Threads writing whole requests on one shared connection with no lock between them:
/// the kernel orders their bytes under the socket lock, the probes see each write just
/// after it (README, "What the syscall path does not see"), in another order at times, or
/// with another thread's bytes already queued: those sends are marked (the socket's
/// `write_seq` moved by other than they sent) and shown as lost, never paired out of
/// order. The server reads with one thread: its records are all whole. At most 1,024
/// requests are in flight here (beyond, the oldest are given up as `unfinished`, as
/// documented).
#[test]
fn concurrent_unlocked_writers_on_one_connection() {
    const THREADS: usize = 4;
    const REQUESTS: usize = 100;
    let server = HttpServer::start_default();
    let trace = Trace::on_port(server.port(), &[]);
    let c = RawClient::connect(server.addr);
    let host = server.authority();
    let writers: Vec<_> = (0..THREADS)
        .map(|t| {
            let mut w = c.stream().try_clone().expect("dup");
            let host = host.clone();
            std::thread::spawn(move || {
                for i in 0..REQUESTS {
                    w.write_all(request("GET", &format!("/cw{t}-{i:03}"), &host, &[]).as_bytes()).expect("write");
                }
            })
        })
        .collect();
    let mut c = c;
    let bodies: Vec<_> = (0..THREADS * REQUESTS).map(|_| c.read_response(false).body_text()).collect();
    for w in writers {
        w.join().expect("writer");
    }
    let stopped = trace.stop_full();
    let records = &stopped.records;
    assert_eq!(bodies.len(), THREADS * REQUESTS);
    let mut gaps = 0;
    for rec in records {
        let t = str_at(rec, "/request/target");
        if rec["response"].is_null() {
            assert_eq!((str_at(rec, "/role"), &rec["note"]), ("client", &Value::from("gap")), "{rec}");
            gaps += 1;
        } else {
            assert_eq!(str_at(rec, "/response/body"), format!("hello from {t}"), "mispaired: {rec}");
        }
    }
    let servers = records.iter().filter(|r| r["role"] == "server" && bool_at(r, "/complete")).count();
    assert_eq!(servers, THREADS * REQUESTS, "{}", summary_line(records));
    let clients = records.len() - servers;
    assert!(clients <= THREADS * REQUESTS, "{}", summary_line(records));
    if gaps > 0 || clients < THREADS * REQUESTS {
        assert!(summary_counter(&stopped.stderr, "lost_events") > 0, "{:?}", stopped.stderr);
    }
}
