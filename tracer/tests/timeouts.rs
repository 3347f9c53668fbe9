//! Requests that get no answer: reported alone after `--response-timeout`, while l7trace
//! runs, with the late answer counted as an orphan; or, still pending at SIGINT, reported
//! `unfinished` on the way out.
//!
//! The server here answers only when the test says so (a channel, not a sleep), so "no
//! response yet" is a fact of the test, not a matter of timing.

mod common;

use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use common::server::{read_headers, read_line};
use common::*;
use serde_json::Value;

/// A server of one connection: it reads a request, says so on `got`, and waits for
/// `release` before it answers `late`; then it answers each further request at once with
/// `hello from TARGET`, until the client closes.
struct HeldServer {
    addr: SocketAddr,
    got: Receiver<String>,
    release: Sender<()>,
    thread: JoinHandle<()>,
}

impl HeldServer {
    fn start() -> HeldServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (got_tx, got) = channel();
        let (release, release_rx) = channel::<()>();
        let thread = std::thread::spawn(move || {
            let (conn, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(&conn);
            let line = read_line(&mut reader).expect("request line");
            read_headers(&mut reader).expect("request headers");
            got_tx.send(line).unwrap();
            // Err: the test ended without releasing; the answer goes out anyway.
            let _ = release_rx.recv();
            (&conn)
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nlate")
                .unwrap();
            while let Some(line) = read_line(&mut reader) {
                read_headers(&mut reader).expect("request headers");
                let target = line.split(' ').nth(1).unwrap_or_default().to_owned();
                let body = format!("hello from {target}");
                let reply = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len());
                (&conn).write_all(reply.as_bytes()).unwrap();
            }
            let mut rest = Vec::new();
            let _ = (&conn).read_to_end(&mut rest);
        });
        HeldServer { addr, got, release, thread }
    }

    /// Blocks until the server has read the request; returns its request line.
    fn wait_request(&self) -> String {
        self.got
            .recv_timeout(Duration::from_secs(10))
            .expect("the server read no request")
    }
}

/// The records whose request target is `target`.
fn for_target<'a>(records: &'a [Value], target: &str) -> Vec<&'a Value> {
    records
        .iter()
        .filter(|r| r.pointer("/request/target").and_then(Value::as_str) == Some(target))
        .collect()
}

/// A request reported without a response: request fields whole, response, latency and
/// ttfb present and null, not complete, no loss, `note` as given, ts since `since`.
fn assert_unanswered(rec: &Value, target: &str, host: &str, note: &str, since: SystemTime) {
    assert_eq!(rec["source"], "syscall", "source in {rec}");
    assert_eq!(str_at(rec, "/request/method"), "GET", "method in {rec}");
    assert_eq!(str_at(rec, "/request/target"), target, "target in {rec}");
    assert_eq!(str_at(rec, "/request/version"), "HTTP/1.1", "version in {rec}");
    assert_eq!(header_at(rec, "/request/headers", "Host").as_deref(), Some(host), "Host in {rec}");
    for key in ["response", "latency_us", "ttfb_us"] {
        assert_eq!(rec.get(key), Some(&Value::Null), "{key} must be present and null in {rec}");
    }
    assert_eq!(rec["note"], note, "note in {rec}");
    assert_eq!(rec["complete"], false, "complete in {rec}");
    assert_eq!(rec["lost_bytes"], 0, "lost_bytes in {rec}");
    assert_ts_between(rec, since - Duration::from_secs(1), SystemTime::now() + Duration::from_secs(1));
}

#[test]
fn a_request_unanswered_past_the_timeout_is_emitted_while_tracing() {
    let server = HeldServer::start();
    let host = server.addr.to_string();
    let trace = Trace::on_port(server.addr.port(), &["--response-timeout", "1"]);
    let since = trace.started_at;
    let mut client = RawClient::connect(server.addr);
    client.send(request("GET", "/slow", &host, &[]).as_bytes());
    assert_eq!(server.wait_request(), "GET /slow HTTP/1.1");
    // The server has not answered (it waits for `release`) and l7trace still runs: both
    // records must come out now, from the timeout alone.
    let early = trace.wait_for_records(Duration::from_secs(20), |r| for_target(r, "/slow").len() >= 2);
    let slow = for_target(&early, "/slow");
    assert_eq!(slow.len(), 2, "both roles' /slow records before any answer; records:\n{}", dump(&early));
    for role in ["client", "server"] {
        let rec = only_one(&early, role);
        assert_unanswered(rec, "/slow", &host, "response_timeout", since);
    }
    server.release.send(()).unwrap();
    let late = client.read_response(false);
    assert_eq!((late.status, late.body_text().as_str()), (200, "late"));
    // The late answer must not be paired with the next request either.
    assert_eq!(client.exchange("GET", "/after").body_text(), "hello from /after");
    drop(client);
    server.thread.join().unwrap();
    let stopped = trace.stop_full();
    let records = &stopped.records;
    assert_eq!(
        for_target(records, "/slow").len(),
        2,
        "the /slow exchange is reported once per role, not again with the late answer; records:\n{}",
        dump(records)
    );
    assert_eq!(&records[..2], &early[..2], "the records printed early lead the output");
    let after = for_target(records, "/after");
    assert_eq!(after.len(), 2, "/after, both roles; records:\n{}", dump(records));
    for rec in after {
        assert_complete_exchange(rec, since);
        assert_eq!(str_at(rec, "/response/body"), "hello from /after", "body in {rec}");
    }
    assert_eq!(records.len(), 4, "records:\n{}", dump(records));
    // README: the late response of a request reported alone is counted as an orphan, on
    // each side's connection, and produces no record.
    assert_eq!(summary_counter(&stopped.stderr, "orphan_responses"), 2, "{}", dump(records));
    assert_eq!(summary_counter(&stopped.stderr, "exchanges"), 4, "{}", dump(records));
    assert_eq!(summary_counter(&stopped.stderr, "incomplete"), 2, "{}", dump(records));
}

#[test]
fn a_request_pending_at_sigint_is_emitted_unfinished() {
    let server = HeldServer::start();
    let host = server.addr.to_string();
    // The default response timeout (10 s) is far off: only the stop can emit it.
    let trace = Trace::on_port(server.addr.port(), &[]);
    let since = trace.started_at;
    let mut client = RawClient::connect(server.addr);
    client.send(request("GET", "/pending", &host, &[]).as_bytes());
    assert_eq!(server.wait_request(), "GET /pending HTTP/1.1");
    let stopped = trace.stop_full();
    // Only now does the server answer, l7trace gone.
    server.release.send(()).unwrap();
    assert_eq!(client.read_response(false).body_text(), "late");
    drop(client);
    server.thread.join().unwrap();
    let records = &stopped.records;
    for role in ["client", "server"] {
        let rec = only_one(records, role);
        assert_unanswered(rec, "/pending", &host, "unfinished", since);
    }
    assert_eq!(summary_counter(&stopped.stderr, "exchanges"), 2, "{}", dump(records));
    assert_eq!(summary_counter(&stopped.stderr, "incomplete"), 2, "{}", dump(records));
    assert_eq!(summary_counter(&stopped.stderr, "orphan_responses"), 0, "{}", dump(records));
}
