//! The kernel side decides from a connection's first bytes whether to follow it. What may
//! come first on an HTTP connection must not make it ignore the connection for good:
//! empty lines before the request line (RFC 9112 section 2.2), or a first request sent
//! with sendfile(2), whose bytes cannot be read.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::thread;

use common::*;

/// Answers `n` requests on one connection, each `ok`, each head found by its blank line
/// (anything before a request line, CRLFs included, belongs to its head here).
fn server(listener: TcpListener, n: usize) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        let mut buf = Vec::new();
        for _ in 0..n {
            let end = loop {
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break i + 4;
                }
                let mut chunk = [0u8; 4096];
                let k = s.read(&mut chunk).expect("read");
                assert!(k > 0, "client closed early");
                buf.extend_from_slice(&chunk[..k]);
            };
            buf.drain(..end);
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").expect("reply");
        }
        let _ = s.read_to_end(&mut buf);
    })
}

fn read_ok(c: &mut TcpStream) {
    let want = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    let mut got = vec![0u8; want.len()];
    c.read_exact(&mut got).expect("reply");
    assert_eq!(got, want);
}

/// A server for `n` requests, l7trace on its port, and a client connected to it.
fn session(n: usize) -> (thread::JoinHandle<()>, Trace, TcpStream) {
    serve_traced(|listener| server(listener, n))
}

/// Writes `request` and reads its answer.
fn ask(c: &mut TcpStream, request: &[u8]) {
    c.write_all(request).expect("request");
    read_ok(c);
}

fn targets(records: &[serde_json::Value], role: &str) -> Vec<String> {
    by_role(records, role).iter().map(|r| str_at(r, "/request/target").to_owned()).collect()
}

/// A CRLF before the first request line (as a client may send after a body, or first):
/// both exchanges of the connection are reported, on both sides. The connection was
/// ignored whole, with nothing counted.
#[test]
fn empty_lines_before_the_first_request_line() {
    let (srv, trace, mut c) = session(2);
    let since = trace.started_at;
    ask(&mut c, b"\r\nGET /a HTTP/1.1\r\nHost: h\r\n\r\n");
    ask(&mut c, b"GET /b HTTP/1.1\r\nHost: h\r\n\r\n");
    drop(c);
    srv.join().expect("server");
    let records = trace.stop();
    for role in ["client", "server"] {
        assert_eq!(targets(&records, role), ["/a", "/b"], "{role}: {}", dump(&records));
        for r in by_role(&records, role) {
            assert_complete_exchange(r, since);
            assert_eq!(str_at(r, "/response/body"), "ok", "{r}");
        }
    }
}

/// The client's first request sent with sendfile(2) from a file (not captured: counted),
/// its second with write(2): the second is reported on the client's side with its own
/// answer, and the first's bytes are counted. The client's side was ignored whole.
#[test]
fn a_first_request_sent_with_sendfile() {
    let dir = TempDir::new("first-sendfile");
    let path = dir.join("request");
    let first = b"GET /from-file HTTP/1.1\r\nHost: h\r\n\r\n";
    std::fs::write(&path, first).expect("request file");
    let (srv, trace, mut c) = session(2);
    let since = trace.started_at;
    let file = std::fs::File::open(&path).expect("open");
    // SAFETY: valid fds; a null offset reads from the file's position.
    let sent = unsafe { libc::sendfile(c.as_raw_fd(), file.as_raw_fd(), std::ptr::null_mut(), first.len()) };
    assert_eq!(sent, first.len() as isize, "sendfile: {}", std::io::Error::last_os_error());
    read_ok(&mut c);
    ask(&mut c, b"GET /written HTTP/1.1\r\nHost: h\r\n\r\n");
    drop(c);
    srv.join().expect("server");
    let stopped = trace.stop_full();
    let records = &stopped.records;
    assert!(summary_counter(&stopped.stderr, "uncaptured_bytes") >= first.len() as u64, "{:?}", stopped.stderr);
    // The server read both through traced calls.
    assert_eq!(targets(records, "server"), ["/from-file", "/written"], "{}", dump(records));
    // The client's first request is not made up; its second is there, with its own answer.
    assert_eq!(targets(records, "client"), ["/written"], "{}", dump(records));
    let r = only_one(records, "client");
    assert_complete_exchange(r, since);
    assert_eq!(str_at(r, "/response/body"), "ok", "{r}");
}
