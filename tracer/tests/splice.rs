//! A server that reads a request's head with read() and moves its body out of the socket
//! with splice(2) (a proxy's zero-copy path, HAProxy's splice mode): the body's bytes pass
//! through no traced call. The server's record of that exchange must say they were not
//! seen, and the next request on the connection must still be the next record, not be
//! taken for the missing body.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::thread;

use common::*;

const BODY: usize = 5000;

/// Serves `n` requests on one connection: a body (Content-Length) is spliced into a pipe
/// and drained, the heads are read normally. Closes after the client did.
fn splice_server(listener: TcpListener, n: usize) -> thread::JoinHandle<Vec<String>> {
    thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        let mut targets = Vec::new();
        for _ in 0..n {
            let head = read_head_exactly(&s);
            let text = String::from_utf8_lossy(&head).into_owned();
            let target = text.split(' ').nth(1).expect("target").to_owned();
            let len = text
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .map_or(0, |v| v.trim().parse::<usize>().expect("length"));
            if len > 0 {
                splice_out(&s, len);
            }
            let reply = format!("got {target}");
            write!(s, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{reply}", reply.len()).expect("reply");
            targets.push(target);
        }
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
        targets
    })
}

/// The head and nothing more: peeks to find its end, then reads exactly that much.
fn read_head_exactly(s: &TcpStream) -> Vec<u8> {
    let mut buf = [0u8; 4096];
    loop {
        let n = s.peek(&mut buf).expect("peek");
        assert!(n > 0, "peer closed before a head");
        if let Some(end) = buf[..n].windows(4).position(|w| w == b"\r\n\r\n") {
            let mut head = vec![0u8; end + 4];
            (&*s).read_exact(&mut head).expect("read head");
            return head;
        }
        thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// Moves `len` bytes from the socket into a pipe with splice(2), and drains the pipe.
fn splice_out(s: &TcpStream, len: usize) {
    let mut p = [0i32; 2];
    // SAFETY: a valid two-int array for pipe().
    assert_eq!(unsafe { libc::pipe(p.as_mut_ptr()) }, 0, "pipe");
    let mut left = len;
    let mut sink = vec![0u8; 65536];
    while left > 0 {
        // SAFETY: valid fds; null offsets (neither is seekable).
        let n = unsafe {
            libc::splice(s.as_raw_fd(), std::ptr::null_mut(), p[1], std::ptr::null_mut(), left, 0)
        };
        assert!(n > 0, "splice: {}", std::io::Error::last_os_error());
        let mut moved = n as usize;
        while moved > 0 {
            // SAFETY: reading into our own buffer from our own pipe.
            let r = unsafe { libc::read(p[0], sink.as_mut_ptr().cast(), moved.min(sink.len())) };
            assert!(r > 0, "pipe read");
            moved -= r as usize;
        }
        left -= n as usize;
    }
    // SAFETY: our own pipe fds.
    unsafe {
        libc::close(p[0]);
        libc::close(p[1]);
    }
}

/// A splice server for `n` requests, l7trace on its port, and a client connected to it.
fn splice_session(n: usize) -> (thread::JoinHandle<Vec<String>>, Trace, TcpStream) {
    serve_traced(|listener| splice_server(listener, n))
}

/// A POST of BODY bytes to `target`.
fn post(target: &str) -> Vec<u8> {
    let mut post = format!("POST {target} HTTP/1.1\r\nHost: t\r\nContent-Length: {BODY}\r\n\r\n").into_bytes();
    post.extend_from_slice(&[b'x'; BODY]);
    post
}

fn read_reply(c: &mut TcpStream, want: &str) {
    let expect = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{want}", want.len());
    let mut got = vec![0u8; expect.len()];
    c.read_exact(&mut got).expect("read reply");
    assert_eq!(String::from_utf8_lossy(&got), expect);
}

#[test]
fn body_moved_by_splice_is_a_gap_not_the_next_request() {
    let (server, trace, mut c) = splice_session(2);
    c.write_all(&post("/upload")).expect("post");
    read_reply(&mut c, "got /upload");
    c.write_all(b"GET /second HTTP/1.1\r\nHost: t\r\n\r\n").expect("get");
    read_reply(&mut c, "got /second");
    drop(c);
    assert_eq!(server.join().expect("server"), ["/upload", "/second"]);
    let stopped = trace.stop_full();
    let records = stopped.records;
    // Counted live, in the kernel, from the socket's sequence numbers.
    assert_eq!(summary_counter(&stopped.stderr, "unseen_bytes"), BODY as u64, "{:?}", stopped.stderr);

    // The client wrote and read everything through traced calls: both complete.
    let client = by_role(&records, "client");
    assert_eq!(client.len(), 2, "client records:\n{}", dump(&records));
    assert_eq!(str_at(client[0], "/request/target"), "/upload");
    assert_eq!(u64_at(client[0], "/request/body_size"), BODY as u64);
    assert!(bool_at(client[0], "/complete"), "client POST: {}", client[0]);
    assert_eq!(str_at(client[1], "/request/target"), "/second");
    assert!(bool_at(client[1], "/complete"), "client GET: {}", client[1]);

    // The server never read the POST's body through a traced call: that exchange says
    // so, and the GET is its own record, complete, with its own response.
    let server_recs = by_role(&records, "server");
    assert_eq!(server_recs.len(), 2, "server records:\n{}", dump(&records));
    let (post_rec, get_rec) = (server_recs[0], server_recs[1]);
    assert_eq!(str_at(post_rec, "/request/method"), "POST", "{post_rec}");
    assert_eq!(str_at(post_rec, "/request/target"), "/upload", "{post_rec}");
    assert!(!bool_at(post_rec, "/complete"), "spliced body not flagged: {post_rec}");
    assert_eq!(u64_at(post_rec, "/lost_bytes"), BODY as u64, "{post_rec}");
    assert_eq!(u64_at(post_rec, "/request/body_size"), BODY as u64, "{post_rec}");
    assert_eq!(str_at(post_rec, "/request/body"), "", "{post_rec}");
    assert_eq!(str_at(post_rec, "/note"), "gap", "{post_rec}");
    assert_eq!(u64_at(post_rec, "/response/status"), 200, "{post_rec}");
    assert_eq!(str_at(post_rec, "/response/body"), "got /upload", "{post_rec}");
    assert_eq!(str_at(get_rec, "/request/method"), "GET", "{get_rec}");
    assert_eq!(str_at(get_rec, "/request/target"), "/second", "{get_rec}");
    assert!(bool_at(get_rec, "/complete"), "{get_rec}");
    assert_eq!(str_at(get_rec, "/response/body"), "got /second", "{get_rec}");
}

#[test]
fn body_moved_by_splice_at_the_end_of_the_connection_is_a_gap() {
    // No read follows the splice to show the bytes it moved: the socket's destruction
    // does, and the exchange says they were not seen, rather than that the connection
    // closed mid-body (found with HAProxy's splice-request).
    let (server, trace, mut c) = splice_session(1);
    c.write_all(&post("/last")).expect("post");
    read_reply(&mut c, "got /last");
    drop(c);
    assert_eq!(server.join().expect("server"), ["/last"]);
    let stopped = trace.stop_full();
    assert_eq!(summary_counter(&stopped.stderr, "unseen_bytes"), BODY as u64, "{:?}", stopped.stderr);
    let records = stopped.records;
    let client = only_one(&records, "client");
    assert!(bool_at(client, "/complete"), "{client}");
    let rec = only_one(&records, "server");
    assert_eq!(str_at(rec, "/request/target"), "/last", "{rec}");
    assert_eq!(str_at(rec, "/note"), "gap", "{rec}");
    assert_eq!(u64_at(rec, "/lost_bytes"), BODY as u64, "{rec}");
    assert_eq!(u64_at(rec, "/request/body_size"), BODY as u64, "{rec}");
    assert_eq!(str_at(rec, "/response/body"), "got /last", "{rec}");
}

/// A whole response, head included, spliced from a pipe into the socket: counted in the
/// kernel but not captured. The server's record says its answer was not captured
/// (`truncated`, nothing lost) rather than that bytes were lost (`gap`); the client, which
/// read it, has it whole.
#[test]
fn response_spliced_into_the_socket_is_truncated_not_a_gap() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().unwrap().port();
    let reply = b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nspliced";
    let server = thread::spawn(move || {
        let (s, _) = listener.accept().expect("accept");
        read_head_exactly(&s);
        let mut p = [0i32; 2];
        // SAFETY: a valid two-int array for pipe(); then our own fds and buffer.
        unsafe {
            assert_eq!(libc::pipe(p.as_mut_ptr()), 0, "pipe");
            assert_eq!(libc::write(p[1], reply.as_ptr().cast(), reply.len()), reply.len() as isize, "pipe write");
            let n = libc::splice(p[0], std::ptr::null_mut(), s.as_raw_fd(), std::ptr::null_mut(), reply.len(), 0);
            assert_eq!(n, reply.len() as isize, "splice: {}", std::io::Error::last_os_error());
            libc::close(p[0]);
            libc::close(p[1]);
        }
        let mut rest = Vec::new();
        let _ = (&s).read_to_end(&mut rest);
    });
    let trace = Trace::on_port(port, &[]);
    let mut c = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    c.write_all(b"GET /spliced-reply HTTP/1.1\r\nHost: h\r\n\r\n").expect("request");
    read_reply(&mut c, "spliced");
    drop(c);
    server.join().expect("server");
    let stopped = trace.stop_full();
    assert!(summary_counter(&stopped.stderr, "uncaptured_bytes") >= reply.len() as u64, "{:?}", stopped.stderr);
    let records = stopped.records;
    let client = only_one(&records, "client");
    assert!(bool_at(client, "/complete"), "{client}");
    assert_eq!(str_at(client, "/response/body"), "spliced", "{client}");
    let rec = only_one(&records, "server");
    assert_eq!(str_at(rec, "/request/target"), "/spliced-reply", "{rec}");
    assert!(rec["response"].is_null(), "an answer made up from uncaptured bytes: {rec}");
    assert_eq!(str_at(rec, "/note"), "truncated", "{rec}");
    assert_eq!(u64_at(rec, "/lost_bytes"), 0, "{rec}");
}
