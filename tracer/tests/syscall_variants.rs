//! Ways of moving bytes that the kernel side must read right: a connection whose first
//! request uses a method beyond the common ones, a writev whose first iovecs are empty, a
//! head spread over many iovecs (as varnish writes its heads), an iovec array that ends a
//! mapping (the kernel side reads iovecs ahead), and a recv(MSG_TRUNC) that
//! drops bytes without copying them.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::os::fd::AsRawFd;

use common::*;

#[test]
fn any_method_token_starts_a_stream() {
    // The connection's first request decides, in the kernel, whether it is followed.
    let server = HttpServer::start_default();
    let trace = Trace::on_port(server.port(), &[]);
    let since = trace.started_at;
    let mut client = RawClient::connect(server.addr);
    for (method, target) in [("PURGE", "/cache/a"), ("PROPFIND", "/dav/"), ("GET", "/after")] {
        let resp = client.exchange(method, target);
        assert_eq!(resp.body_text(), format!("hello from {target}"));
    }
    drop(client);
    let records = trace.stop();
    for role in ["client", "server"] {
        let recs = by_role(&records, role);
        let methods: Vec<&str> = recs.iter().map(|r| str_at(r, "/request/method")).collect();
        assert_eq!(methods, ["PURGE", "PROPFIND", "GET"], "{role}:\n{}", dump(&records));
        for (rec, target) in recs.iter().zip(["/cache/a", "/dav/", "/after"]) {
            assert_complete_exchange(rec, since);
            assert_eq!(str_at(rec, "/request/target"), target);
            assert_eq!(str_at(rec, "/response/body"), format!("hello from {target}"));
        }
    }
}

/// iovecs over `parts`, for readv/writev/sendmsg.
fn iovecs(parts: &[&[u8]]) -> Vec<libc::iovec> {
    parts.iter().map(|p| libc::iovec { iov_base: p.as_ptr() as *mut _, iov_len: p.len() }).collect()
}

/// A GET for `target` with the field `X-Iov: value`, which `send` writes (on the client's
/// fd; it returns what writev returned) through a traced default server; checks that it
/// was written whole and answered, then that each of `roles` saw it complete, its target
/// and field as sent.
fn writev_request(target: &str, value: &str, roles: &[&str], send: impl FnOnce(i32, &[u8]) -> isize) {
    let server = HttpServer::start_default();
    let trace = Trace::on_port(server.port(), &[]);
    let since = trace.started_at;
    let mut client = RawClient::connect(server.addr);
    let req = request("GET", target, &server.authority(), &[("X-Iov", value)]);
    let n = send(client.stream().as_raw_fd(), req.as_bytes());
    assert_eq!(n, req.len() as isize, "{}", std::io::Error::last_os_error());
    assert_eq!(client.read_response(false).body_text(), format!("hello from {target}"));
    drop(client);
    let records = trace.stop();
    for &role in roles {
        let rec = only_one(&records, role);
        assert_complete_exchange(rec, since);
        assert_eq!(str_at(rec, "/request/target"), target, "{rec}");
        assert_eq!(header_at(rec, "/request/headers", "X-Iov").as_deref(), Some(value), "{rec}");
    }
}

#[test]
fn writev_with_an_empty_first_iovec() {
    writev_request("/iov", "second", &["client", "server"], |fd, req| {
        let iov = iovecs(&[b"", req]);
        // SAFETY: two iovecs over live buffers, on the client's open socket.
        unsafe { libc::writev(fd, iov.as_ptr(), 2) }
    });
}

#[test]
fn a_connections_first_writev_with_many_empty_iovecs_is_followed() {
    // The kernel side looks for the first bytes in the first four iovecs only: with more
    // empty ones before them it cannot tell, and must follow the connection, not ignore it.
    writev_request("/empties", "after-nine", &["client", "server"], |fd, req| {
        let mut parts: Vec<&[u8]> = vec![b""; 9];
        parts.push(req);
        let iov = iovecs(&parts);
        // SAFETY: ten iovecs over live buffers, on the client's open socket.
        unsafe { libc::writev(fd, iov.as_ptr(), iov.len() as i32) }
    });
}

#[test]
fn an_iovec_array_that_ends_a_mapping_is_read() {
    // The kernel side reads the first iovecs of a call in one go, past the end of a short
    // array: where the array ends a mapping (a guard page after it), that read faults, and
    // the iovecs must still be read one by one.
    writev_request("/edge", "at-the-edge", &["client"], |fd, req| {
        let (head, rest) = req.split_at(10);
        // SAFETY: two fresh anonymous pages, the second made inaccessible; the array is
        // written in the last 32 bytes of the first, then unmapped when done.
        unsafe {
            let page = 4096;
            let map = libc::mmap(std::ptr::null_mut(), 2 * page, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0);
            assert_ne!(map, libc::MAP_FAILED);
            assert_eq!(libc::mprotect(map.cast::<u8>().add(page).cast(), page, libc::PROT_NONE), 0);
            let iov = map.cast::<u8>().add(page - 2 * std::mem::size_of::<libc::iovec>()).cast::<libc::iovec>();
            iov.write(libc::iovec { iov_base: head.as_ptr() as *mut _, iov_len: head.len() });
            iov.add(1).write(libc::iovec { iov_base: rest.as_ptr() as *mut _, iov_len: rest.len() });
            let n = libc::writev(fd, iov, 2);
            libc::munmap(map, 2 * page);
            n
        }
    });
}

#[test]
fn a_head_over_many_iovecs_is_captured_whole() {
    // Varnish writes a head as an iovec per token ("HTTP/1.1", " ", "200", ...): some 30
    // per response, 805 for a node server's corked writes. Every iovec is read, not the
    // first 16: the client's writev of 50, the server's readv into 100 iovecs of 4 bytes
    // and its sendmsg of 131.
    const HEADERS: usize = 30;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let trace = Trace::on_port(addr.port(), &[]);
    let since = trace.started_at;
    let server = std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        let mut slots = [[0u8; 4]; 100];
        let mut iov: Vec<libc::iovec> =
            slots.iter_mut().map(|s| libc::iovec { iov_base: s.as_mut_ptr().cast(), iov_len: 4 }).collect();
        let mut got = Vec::new();
        while !got.ends_with(b"\r\n\r\n") {
            // SAFETY: 100 iovecs over live 4-byte buffers, on the accepted socket.
            let n = unsafe { libc::readv(conn.as_raw_fd(), iov.as_mut_ptr(), iov.len() as i32) };
            assert!(n > 0, "readv: {}", std::io::Error::last_os_error());
            got.extend(slots.iter().flatten().take(n as usize));
            for (slot, v) in slots.iter_mut().zip(iov.iter_mut()) {
                v.iov_base = slot.as_mut_ptr().cast();
            }
        }
        let names: Vec<String> = (0..HEADERS).map(|i| format!("X-Part-{i}")).collect();
        let values: Vec<String> = (0..HEADERS).map(|i| format!("value {i}")).collect();
        let mut parts: Vec<&[u8]> = vec![b"HTTP/1.1", b" ", b"200", b" ", b"OK", b"\r\n"];
        for (n, v) in names.iter().zip(&values) {
            parts.extend([n.as_bytes(), b": ", v.as_bytes(), b"\r\n".as_slice()]);
        }
        parts.extend([b"Content-Length: 7\r\n".as_slice(), b"\r\n", b"iov", b"ecs", b"!"]);
        let iov = iovecs(&parts);
        // SAFETY: a msghdr over live iovecs, on the accepted socket.
        let sent = unsafe {
            let mut msg: libc::msghdr = std::mem::zeroed();
            msg.msg_iov = iov.as_ptr() as *mut _;
            msg.msg_iovlen = iov.len();
            libc::sendmsg(conn.as_raw_fd(), &msg, 0)
        };
        assert_eq!(sent as usize, parts.iter().map(|p| p.len()).sum::<usize>());
        assert_eq!(parts.len(), 131);
        let mut rest = Vec::new();
        let _ = (&conn).read_to_end(&mut rest);
    });
    let mut client = RawClient::connect(addr);
    let host = addr.to_string();
    let mut parts: Vec<&[u8]> = vec![b"GET", b" ", b"/many", b" ", b"HTTP/1.1", b"\r\n", b"Host: ", host.as_bytes(), b"\r\n"];
    let lines: Vec<String> = (0..HEADERS / 3).map(|i| format!("X-Req-{i}: r{i}")).collect();
    for l in &lines {
        parts.extend([l.as_bytes(), b"\r\n".as_slice(), b"", b""]);
    }
    parts.push(b"\r\n");
    let iov = iovecs(&parts);
    // SAFETY: iovecs over live buffers, on the client's open socket.
    let n = unsafe { libc::writev(client.stream().as_raw_fd(), iov.as_ptr(), iov.len() as i32) };
    assert_eq!(n as usize, parts.iter().map(|p| p.len()).sum::<usize>());
    assert_eq!(parts.len(), 50);
    let resp = client.read_response(false);
    assert_eq!(resp.body_text(), "iovecs!");
    drop(client);
    server.join().unwrap();
    let records = trace.stop();
    for role in ["client", "server"] {
        let rec = only_one(&records, role);
        assert_complete_exchange(rec, since);
        assert_eq!(str_at(rec, "/request/target"), "/many", "{rec}");
        assert_eq!(header_at(rec, "/request/headers", "X-Req-9").as_deref(), Some("r9"), "{rec}");
        assert_eq!(rec.pointer("/response/headers").and_then(|h| h.as_array()).map(Vec::len), Some(HEADERS + 1), "{rec}");
        assert_eq!(header_at(rec, "/response/headers", "X-Part-29").as_deref(), Some("value 29"), "{rec}");
        assert_eq!(str_at(rec, "/response/body"), "iovecs!", "{rec}");
    }
}

#[test]
fn recv_msg_trunc_bytes_are_counted_never_read() {
    // The server reads the head, then drops the body with recv(MSG_TRUNC) into a buffer
    // that still holds older bytes: the kernel never copies the body there, so what the
    // buffer holds is not the body and must not be reported as it.
    const BODY: usize = 100;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(conn.try_clone().unwrap());
        let mut head = String::new();
        while reader.read_line(&mut head).unwrap() > 2 {}
        assert!(reader.buffer().is_empty(), "the client paused after the head");
        let mut stale = b"STALE".repeat(BODY / 5);
        let mut dropped = 0;
        while dropped < BODY {
            // SAFETY: a live buffer of its own length, on the accepted socket.
            let n = unsafe {
                libc::recv(conn.as_raw_fd(), stale.as_mut_ptr().cast(), BODY - dropped, libc::MSG_TRUNC)
            };
            assert!(n > 0, "recv: {}", std::io::Error::last_os_error());
            dropped += n as usize;
        }
        assert!(stale.starts_with(b"STALE"), "MSG_TRUNC left the buffer alone");
        (&conn).write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").unwrap();
        let mut rest = Vec::new();
        let _ = (&conn).read_to_end(&mut rest);
    });
    let trace = Trace::on_port(addr.port(), &[]);
    let mut client = RawClient::connect(addr);
    let body = "x".repeat(BODY);
    client.send(request("POST", "/trunc", &addr.to_string(), &[("Content-Length", &BODY.to_string())]).as_bytes());
    std::thread::sleep(std::time::Duration::from_millis(100));
    client.send(body.as_bytes());
    assert_eq!(client.read_response(false).body_text(), "ok");
    drop(client);
    server.join().unwrap();
    let records = trace.stop();
    let served = only_one(&records, "server");
    assert_eq!(u64_at(served, "/request/body_size"), BODY as u64, "{served}");
    assert!(!str_at(served, "/request/body").contains("STALE"), "buffer bytes reported as body: {served}");
    assert!(bool_at(served, "/request/body_truncated"), "{served}");
    assert_eq!(u64_at(served, "/response/status"), 200, "{served}");
    let sent = only_one(&records, "client");
    assert_eq!(str_at(sent, "/request/body"), body, "{sent}");
}

/// Sends `wire`, a request for `target` to the default server, then `GET /next` on the
/// same connection; both roles must report the two, in order, the first with its own
/// response. The records, and when tracing began.
fn odd_request_then_next(wire: impl FnOnce(&str) -> String, target: &str) -> (Vec<serde_json::Value>, std::time::SystemTime) {
    let server = HttpServer::start_default();
    let trace = Trace::on_port(server.port(), &[]);
    let since = trace.started_at;
    let mut client = RawClient::connect(server.addr);
    client.send(wire(&server.authority()).as_bytes());
    assert_eq!(client.read_response(false).body_text(), format!("hello from {target}"));
    assert_eq!(client.exchange("GET", "/next").body_text(), "hello from /next");
    drop(client);
    let records = trace.stop();
    for role in ["client", "server"] {
        let recs = by_role(&records, role);
        let targets: Vec<&str> = recs.iter().map(|r| str_at(r, "/request/target")).collect();
        assert_eq!(targets, [target, "/next"], "{role}:\n{}", dump(&records));
        assert_eq!(str_at(recs[0], "/response/body"), format!("hello from {target}"), "{}", recs[0]);
    }
    (records, since)
}

#[test]
fn a_head_beyond_the_capture_is_reported_incomplete() {
    // One write of a 20 KB head: the client's syscall captures its first 16 KiB. The
    // exchange is still reported, marked, with its own response, and the connection is
    // still followed. The server reads the head in pieces the capture holds whole.
    let big = "b".repeat(20_000);
    let (records, since) =
        odd_request_then_next(|host| request("GET", "/big", host, &[("X-Trace", "kept"), ("X-Big", &big)]), "/big");
    for role in ["client", "server"] {
        let recs = by_role(&records, role);
        assert_eq!(header_at(recs[0], "/request/headers", "X-Trace").as_deref(), Some("kept"), "{}", recs[0]);
        assert_complete_exchange(recs[1], since);
    }
    let cut = by_role(&records, "client")[0];
    assert!(!bool_at(cut, "/complete"), "{cut}");
    assert_eq!(str_at(cut, "/note"), "truncated", "{cut}");
    assert_eq!(u64_at(cut, "/lost_bytes"), 0, "not captured is not lost: {cut}");
    let whole = by_role(&records, "server")[0];
    assert_complete_exchange(whole, since);
    assert_eq!(header_at(whole, "/request/headers", "X-Big").map(|v| v.len()), Some(big.len()), "{whole}");
}

#[test]
fn heads_cut_short_one_after_another_are_each_reported() {
    // The first head cut short leaves the framing unknown; each next one starts its own
    // syscall and is reported, cut, with its own response, not dropped with it (three
    // 20 KB heads one after another: all but the first were lost, both roles).
    let big = "b".repeat(20_000);
    let targets = ["/big1", "/big2", "/big3", "/next"];
    let check = |records: &[serde_json::Value], role: &str, cut: &[&str]| {
        let recs = by_role(records, role);
        let got: Vec<(&str, u64)> = recs.iter().map(|r| (str_at(r, "/request/target"), u64_at(r, "/response/status"))).collect();
        assert_eq!(got, targets.map(|t| (t, 200)), "{role}:\n{}", dump(records));
        for rec in &recs {
            let target = str_at(rec, "/request/target");
            let truncated = !bool_at(rec, "/complete") && str_at(rec, "/note") == "truncated";
            assert_eq!(truncated, cut.contains(&target), "{rec}");
            assert_eq!(u64_at(rec, "/lost_bytes"), 0, "{rec}");
        }
    };
    let server = HttpServer::start_default();
    let trace = Trace::on_port(server.port(), &[]);
    let mut client = RawClient::connect(server.addr);
    for target in &targets[..3] {
        client.send(request("GET", target, &server.authority(), &[("X-Big", &big)]).as_bytes());
        assert_eq!(client.read_response(false).body_text(), format!("hello from {target}"));
    }
    assert_eq!(client.exchange("GET", "/next").body_text(), "hello from /next");
    drop(client);
    let records = trace.stop();
    // The client writes each head at once (cut at 16 KiB); the server reads it in pieces.
    check(&records, "client", &targets[..3]);
    check(&records, "server", &[]);
    // Every head cut short (a capture of 40 bytes), requests and responses.
    let trace = Trace::on_port(server.port(), &["--max-capture", "40"]);
    let mut client = RawClient::connect(server.addr);
    for target in targets {
        assert_eq!(client.exchange("GET", target).body_text(), format!("hello from {target}"));
    }
    drop(client);
    let records = trace.stop();
    check(&records, "client", &targets);
    check(&records, "server", &targets);
}

#[test]
fn a_request_with_control_bytes_in_its_target_is_reported_marked() {
    // httparse refuses the request line; the server answers it all the same.
    let target = "/ctl\x01x\x7f";
    let (records, _) = odd_request_then_next(|host| format!("GET {target} HTTP/1.1\r\nHost: {host}\r\n\r\n"), target);
    for role in ["client", "server"] {
        let first = by_role(&records, role)[0];
        assert_eq!(str_at(first, "/note"), "parse_error", "{first}");
        assert_eq!(u64_at(first, "/response/status"), 200, "{first}");
    }
}

#[test]
fn a_request_with_a_control_byte_in_a_field_is_reported_marked() {
    // httparse refuses the field; the server answers the request all the same.
    let (records, _) = odd_request_then_next(
        |host| format!("GET /evil HTTP/1.1\r\nHost: {host}\r\nX-Evil: \x1b]0;pwned\x07\r\n\r\n"),
        "/evil",
    );
    for role in ["client", "server"] {
        let first = by_role(&records, role)[0];
        assert_eq!(str_at(first, "/note"), "parse_error", "{first}");
        assert_eq!(header_at(first, "/request/headers", "X-Evil").as_deref(), Some("\x1b]0;pwned\x07"), "{first}");
    }
}
