//! A server that reads with `recvmsg` into several small iovecs and answers with
//! `sendmsg`: the request is spread over many calls, each over several buffers, and both
//! sides' records must hold every field of both messages.

mod common;

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;

use common::*;

/// Uneven iovec sizes: 98 bytes per call, so the request takes several calls, and its
/// tokens straddle buffer and call boundaries.
const SLOTS: [usize; 8] = [3, 5, 7, 11, 13, 17, 19, 23];
const BODY: &str = "name=recvmsg&parts=eight&text=spread+over+many+small+buffers+and+calls";
const REPLY_BODY: &str = "{\"read_with\":\"recvmsg\",\"sent_with\":\"sendmsg\"}";

/// One `recvmsg` into `SLOTS`-sized buffers; the bytes it returned, in order.
fn recvmsg_once(conn: &TcpStream) -> Vec<u8> {
    let mut bufs: Vec<Vec<u8>> = SLOTS.iter().map(|&n| vec![0; n]).collect();
    let mut iov: Vec<libc::iovec> =
        bufs.iter_mut().map(|b| libc::iovec { iov_base: b.as_mut_ptr().cast(), iov_len: b.len() }).collect();
    // SAFETY: a zeroed msghdr is valid (no name, no control); its iovecs cover live buffers.
    let n = unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = iov.as_mut_ptr();
        msg.msg_iovlen = iov.len();
        libc::recvmsg(conn.as_raw_fd(), &mut msg, 0)
    };
    assert!(n >= 0, "recvmsg: {}", std::io::Error::last_os_error());
    bufs.concat().into_iter().take(n as usize).collect()
}

/// Reads one request (head and Content-Length body) with `recvmsg` only; the calls made.
fn read_request(conn: &TcpStream) -> (Vec<u8>, usize) {
    let (mut got, mut calls) = (Vec::new(), 0);
    loop {
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().expect("Content-Length"));
            if got.len() >= end + 4 + len {
                return (got, calls);
            }
        }
        let more = recvmsg_once(conn);
        assert!(!more.is_empty(), "EOF inside the request: {:?}", String::from_utf8_lossy(&got));
        got.extend(more);
        calls += 1;
    }
}

#[test]
fn a_request_read_with_recvmsg_into_small_iovecs_is_captured_whole() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let trace = Trace::on_port(addr.port(), &[]);
    let since = trace.started_at;
    let server = std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        let (request, calls) = read_request(&conn);
        let head = format!(
            "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nX-Served-By: sendmsg\r\nContent-Length: {}\r\n\r\n",
            REPLY_BODY.len()
        );
        let parts: [&[u8]; 3] = [&head.as_bytes()[..9], &head.as_bytes()[9..], REPLY_BODY.as_bytes()];
        let iov: Vec<libc::iovec> =
            parts.iter().map(|p| libc::iovec { iov_base: p.as_ptr() as *mut _, iov_len: p.len() }).collect();
        // SAFETY: a zeroed msghdr with iovecs over live buffers, on the accepted socket.
        let sent = unsafe {
            let mut msg: libc::msghdr = std::mem::zeroed();
            msg.msg_iov = iov.as_ptr() as *mut _;
            msg.msg_iovlen = iov.len();
            libc::sendmsg(conn.as_raw_fd(), &msg, 0)
        };
        assert_eq!(sent as usize, head.len() + REPLY_BODY.len(), "sendmsg");
        let mut rest = Vec::new();
        let _ = (&conn).read_to_end(&mut rest);
        (request, calls)
    });
    let mut client = RawClient::connect(addr);
    let host = addr.to_string();
    let len = BODY.len().to_string();
    let extra = [
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("X-Request-Id", "recvmsg-7f3a9c"),
        ("Content-Length", len.as_str()),
    ];
    let wire = request("POST", "/form/submit?via=recvmsg", &host, &extra) + BODY;
    client.send(wire.as_bytes());
    let resp = client.read_response(false);
    assert_eq!((resp.status, resp.body_text().as_str()), (201, REPLY_BODY));
    drop(client);
    let (read, calls) = server.join().unwrap();
    assert_eq!(read, wire.as_bytes(), "the server read the request whole");
    assert!(calls > 2, "the request took {calls} recvmsg calls, not several");
    let records = trace.stop();
    for role in ["client", "server"] {
        let rec = only_one(&records, role);
        assert_complete_exchange(rec, since);
        assert_eq!(str_at(rec, "/request/method"), "POST", "method in {rec}");
        assert_eq!(str_at(rec, "/request/target"), "/form/submit?via=recvmsg", "target in {rec}");
        assert_eq!(str_at(rec, "/request/version"), "HTTP/1.1", "version in {rec}");
        let headers = rec.pointer("/request/headers").and_then(|h| h.as_array()).expect("headers");
        assert_eq!(headers.len(), 4, "request headers in {rec}");
        assert_eq!(header_at(rec, "/request/headers", "Host").as_deref(), Some(host.as_str()), "{rec}");
        for (name, value) in extra {
            assert_eq!(header_at(rec, "/request/headers", name).as_deref(), Some(value), "{name} in {rec}");
        }
        assert_eq!(u64_at(rec, "/request/body_size"), BODY.len() as u64, "body_size in {rec}");
        assert_eq!(str_at(rec, "/request/body"), BODY, "body in {rec}");
        assert!(!bool_at(rec, "/request/body_truncated"), "{rec}");
        assert_eq!(u64_at(rec, "/response/status"), 201, "status in {rec}");
        assert_eq!(str_at(rec, "/response/reason"), "Created", "reason in {rec}");
        assert_eq!(header_at(rec, "/response/headers", "X-Served-By").as_deref(), Some("sendmsg"), "{rec}");
        assert_eq!(u64_at(rec, "/response/body_size"), REPLY_BODY.len() as u64, "{rec}");
        assert_eq!(str_at(rec, "/response/body"), REPLY_BODY, "response body in {rec}");
    }
}
