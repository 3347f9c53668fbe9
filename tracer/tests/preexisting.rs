//! A connection opened (and used) before l7trace starts is traced when used again.

mod common;

use serde_json::Value;

use common::*;

/// Opens a connection and does `/before` on it, starts tracing, then does `targets` on
/// the same connection. Returns the records and the client's (addr, tid).
fn reuse_after_start(targets: &[&str]) -> (Vec<Value>, HttpServer, String, u32) {
    let server = HttpServer::start_default();
    let mut client = RawClient::connect(server.addr);
    assert_eq!(
        client.exchange("GET", "/before").body_text(),
        "hello from /before"
    );
    // The server thread now waits in recv() for the next request.
    let trace = Trace::on_port(server.port(), &[]);
    let since = trace.started_at;
    for t in targets {
        assert_eq!(
            client.exchange("GET", t).body_text(),
            format!("hello from {t}")
        );
    }
    let src = client.local_addr().to_string();
    let client_tid = client.tid;
    drop(client);
    let records = trace.stop();
    for rec in &records {
        assert_complete_exchange(rec, since);
        assert_ne!(str_at(rec, "/request/target"), "/before", "{rec}");
    }
    (records, server, src, client_tid)
}

fn assert_after(rec: &Value, target: &str, server: &HttpServer, src: &str, tid: u32) {
    assert_eq!(
        u64_at(rec, "/pid"),
        std::process::id() as u64,
        "pid in {rec}"
    );
    assert_eq!(u64_at(rec, "/tid"), tid as u64, "tid in {rec}");
    assert_eq!(str_at(rec, "/src"), src, "src in {rec}");
    assert_eq!(str_at(rec, "/dst"), server.authority(), "dst in {rec}");
    assert_eq!(str_at(rec, "/request/method"), "GET", "method in {rec}");
    assert_eq!(str_at(rec, "/request/target"), target, "target in {rec}");
    assert_eq!(u64_at(rec, "/response/status"), 200, "status in {rec}");
    assert_eq!(
        str_at(rec, "/response/body"),
        format!("hello from {target}"),
        "body in {rec}"
    );
}

/// The second exchange after the start: every syscall of it began after attach.
#[test]
fn connection_opened_before_tracing() {
    let (records, server, src, client_tid) = reuse_after_start(&["/after1", "/after2"]);
    let served = server.served();
    assert_eq!(served.len(), 3);
    let clients = by_role(&records, "client");
    assert_eq!(clients.len(), 2, "client records:\n{}", dump(&records));
    assert_after(clients[0], "/after1", &server, &src, client_tid);
    assert_after(clients[1], "/after2", &server, &src, client_tid);
    let servers = by_role(&records, "server");
    let after2: Vec<&&Value> = servers
        .iter()
        .filter(|r| r["request"]["target"] == "/after2")
        .collect();
    assert_eq!(
        after2.len(),
        1,
        "one server record of /after2; records:\n{}",
        dump(&records)
    );
    assert_after(after2[0], "/after2", &server, &src, served[2].tid);
}

/// The first exchange after the start, whose request the server read with a recv() that
/// was already waiting when l7trace attached (the usual state of an idle keep-alive
/// connection).
#[test]
fn server_blocked_in_recv_when_tracing_starts() {
    let (records, server, src, _) = reuse_after_start(&["/after"]);
    let served = server.served();
    let rec = only_one(&records, "server");
    assert_after(rec, "/after", &server, &src, served[1].tid);
}

/// Tracing that starts while keep-alive clients are busy: each connection is picked up,
/// from both sides, at the same moment. The programs attach one after another (each
/// verified first, which takes a while); the kernel side captures nothing until the last
/// is attached and the event buffers are open. Before that gate, requests sent in the
/// meantime were seen without their answers (about 80 `gap` records per connection under
/// wrk) and the ring filled before it was read (lost events). The clients pause between
/// requests so that the load stays below what the reader drains: at saturation, events
/// lost to a full ring (counted, and their records marked) would hide what this checks.
#[test]
fn tracing_started_under_load_sees_both_sides_from_the_same_moment() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    const CLIENTS: usize = 8;
    let server = HttpServer::start_default();
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let (stop, addr) = (Arc::clone(&stop), server.addr);
            std::thread::spawn(move || {
                let mut client = RawClient::connect(addr);
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let target = format!("/c{i}-{n}");
                    assert_eq!(client.exchange("GET", &target).body_text(), format!("hello from {target}"));
                    n += 1;
                    // Busy but within what the reader keeps up with on a shared machine:
                    // losses from an overfull ring would leave records one-sided too.
                    std::thread::sleep(std::time::Duration::from_micros(500));
                }
                n
            })
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let trace = Trace::on_port(server.port(), &[]);
    std::thread::sleep(std::time::Duration::from_millis(700));
    stop.store(true, Ordering::Relaxed);
    let sent: u64 = clients.into_iter().map(|c| c.join().unwrap()).sum();
    let stopped = trace.stop_full();
    let records = &stopped.records;
    let bad: Vec<&Value> = records.iter().filter(|r| !bool_at(r, "/complete")).collect();
    assert!(
        bad.is_empty(),
        "{} of {} records incomplete ({sent} requests sent); the first:\n{}",
        bad.len(),
        records.len(),
        dump(&bad.iter().take(5).map(|r| (*r).clone()).collect::<Vec<_>>())
    );
    for role in ["client", "server"] {
        let n = by_role(records, role).len();
        assert!(n > 100, "{n} {role} records: the load was traced too little to tell");
    }
    assert_eq!(summary_counter(&stopped.stderr, "lost_events"), 0, "{}", stopped.stderr.join("\n"));
    // At most one answer per connection and side to a request made before tracing.
    let orphans = summary_counter(&stopped.stderr, "orphan_responses");
    assert!(orphans <= 2 * CLIENTS as u64, "orphan_responses={orphans}");
}

/// Tracing that starts in the middle of a long download whose body is made of request
/// heads (a log of requests, say): the connection is picked up inside the body, whose
/// bytes look like requests from both ends (written by the server, read by the client).
/// No record may be made of them, and the exchanges after the body on the same connection
/// are reported, from both ends, the right way round (the listener on the server's port
/// says which end is which).
#[test]
fn picked_up_inside_a_body_of_request_heads_reports_only_what_follows() {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::Duration;
    const PIECE: &[u8] = b"GET /fake HTTP/1.1\r\nHost: f\r\nContent-Length: 0\r\n\r\n";
    const PIECES: usize = 2000;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let attached = Arc::new(AtomicBool::new(false));
    let server = {
        let attached = Arc::clone(&attached);
        std::thread::spawn(move || {
            let (conn, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut w = conn;
            let read_head = |r: &mut BufReader<std::net::TcpStream>| {
                let mut first = String::new();
                r.read_line(&mut first).unwrap();
                loop {
                    let mut line = String::new();
                    r.read_line(&mut line).unwrap();
                    if line == "\r\n" || line.is_empty() {
                        return first.split(' ').nth(1).unwrap_or_default().to_owned();
                    }
                }
            };
            assert_eq!(read_head(&mut reader), "/download");
            write!(w, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", PIECE.len() * PIECES).unwrap();
            // One piece at a time until tracing has started and 100 more went by while
            // traced; the rest at once.
            let mut sent = 0;
            let mut after = 0;
            while sent < PIECES && after < 100 {
                w.write_all(PIECE).unwrap();
                sent += 1;
                if attached.load(Ordering::SeqCst) {
                    after += 1;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            assert_eq!(after, 100, "the body ended before tracing started");
            w.write_all(&PIECE.repeat(PIECES - sent)).unwrap();
            for _ in 0..2 {
                let target = read_head(&mut reader);
                let body = format!("hello from {target}");
                write!(w, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len()).unwrap();
            }
        })
    };
    let mut client = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    client.write_all(b"GET /download HTTP/1.1\r\nHost: d\r\n\r\n").unwrap();
    let reader = {
        let conn = client.try_clone().unwrap();
        std::thread::spawn(move || {
            let mut r = BufReader::new(conn);
            let mut head = Vec::new();
            while !head.ends_with(b"\r\n\r\n") {
                let mut b = [0u8; 1];
                r.read_exact(&mut b).unwrap();
                head.push(b[0]);
            }
            let mut body = vec![0u8; PIECE.len() * PIECES];
            r.read_exact(&mut body).unwrap();
            r
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    let trace = Trace::on_port(port, &[]);
    let since = trace.started_at;
    attached.store(true, Ordering::SeqCst);
    let mut r = reader.join().unwrap();
    for target in ["/real0", "/real1"] {
        write!(client, "GET {target} HTTP/1.1\r\nHost: d\r\n\r\n").unwrap();
        let want = format!("hello from {target}");
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut b = [0u8; 1];
            r.read_exact(&mut b).unwrap();
            head.push(b[0]);
        }
        let mut body = vec![0u8; want.len()];
        r.read_exact(&mut body).unwrap();
        assert_eq!(body, want.as_bytes());
    }
    server.join().unwrap();
    let src = client.local_addr().unwrap().to_string();
    drop(client);
    let records = trace.stop();
    for role in ["client", "server"] {
        let recs = by_role(&records, role);
        let targets: Vec<&str> = recs.iter().map(|r| str_at(r, "/request/target")).collect();
        assert_eq!(targets, ["/real0", "/real1"], "{role} records:\n{}", dump(&records));
        for rec in recs {
            assert_complete_exchange(rec, since);
            assert_eq!(str_at(rec, "/src"), src, "{rec}");
            assert_eq!(str_at(rec, "/dst"), format!("127.0.0.1:{port}"), "{rec}");
        }
    }
    assert_eq!(records.len(), 4, "records:\n{}", dump(&records));
}
