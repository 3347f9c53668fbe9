//! `--iface` options: the interfaces it refuses, and what `--snaplen` keeps of each packet.

mod common;

use std::io::Read;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime};

use common::*;
use serde_json::Value;

/// Runs `l7trace --json ARGS` to its end (killed after a minute); status, stdout, stderr.
fn run_to_exit(args: &[&str]) -> (ExitStatus, String, String) {
    let mut child = l7trace()
        .arg("--json")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {} {args:?}: {e}", common::trace::bin()));
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let mut stderr = String::new();
    let _ = err.read_to_string(&mut stderr);
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("l7trace {args:?} still runs after a minute; stderr:\n{stderr}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (status, out_reader.join().unwrap(), stderr)
}

/// l7trace with `args` fails at start: status 1, nothing on stdout, no tracing, and one
/// line on stderr, an error that contains `what`.
fn assert_refused(args: &[&str], what: &str) {
    let (status, stdout, stderr) = run_to_exit(args);
    assert_eq!(status.code(), Some(1), "exit status of {args:?}; stderr:\n{stderr}");
    assert!(stdout.is_empty(), "stdout of {args:?}: {stdout:?}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line on stderr for {args:?}:\n{stderr}");
    assert!(lines[0].starts_with("l7trace: error: "), "not an error line: {:?}", lines[0]);
    assert!(lines[0].contains(what), "{:?} does not say {what:?}", lines[0]);
}

#[test]
fn iface_any_is_refused() {
    let port = free_port().to_string();
    assert_refused(&["--iface", "any", "--port", &port], "--iface any is not supported");
}

#[test]
fn an_unknown_iface_is_refused_by_name() {
    let name = format!("l7tno{:x}", std::process::id());
    assert!(
        !std::path::Path::new(&format!("/sys/class/net/{name}")).exists(),
        "{name} exists here"
    );
    let port = free_port().to_string();
    assert_refused(&["--iface", &name, "--port", &port], &format!("no interface named \"{name}\""));
}

const SNAPLEN: usize = 64;
/// A response head short enough to fit in `SNAPLEN`, so only its body is cut.
const BIG_HEAD: &str = "HTTP/1.1 200 OK\r\nContent-Length: 4096\r\n\r\n";

/// 4 KiB of numbered text lines, so any prefix of it is recognisable.
fn big_body() -> String {
    let mut body = String::new();
    for i in 0.. {
        if body.len() >= 4096 {
            break;
        }
        body.push_str(&format!("line {i:04} of the big body\n"));
    }
    body.truncate(4096);
    body
}

/// One curl GET of `/big` (a 4 KiB body behind `BIG_HEAD`) over lo, traced with
/// `--iface lo --port P EXTRA`: the one record, the request the server read, what
/// l7trace printed, and when tracing began.
fn big_get(extra: &[&str]) -> (Value, Request, trace::Stopped, SystemTime) {
    let server = HttpServer::start("127.0.0.1:0", |_req| {
        let mut wire = BIG_HEAD.as_bytes().to_vec();
        wire.extend_from_slice(big_body().as_bytes());
        Reply::raw(wire)
    });
    let mut args = vec!["--iface", "lo"];
    args.extend_from_slice(extra);
    let trace = Trace::on_port(server.port(), &args);
    let since = trace.started_at;
    let run = curl(&[&format!("http://{}/big", server.authority())]);
    assert_eq!(run.stdout_text(), big_body(), "curl got the body");
    let stopped = trace.stop_full();
    assert_eq!(stopped.records.len(), 1, "one record; records:\n{}", dump(&stopped.records));
    let served = server.served();
    assert_eq!(served.len(), 1, "the server read one request");
    (stopped.records[0].clone(), served[0].request.clone(), stopped, since)
}

/// The request's header lines, as curl sent them (`Name: value`), in wire order.
fn header_pairs(req: &Request) -> Vec<Value> {
    req.headers.iter().map(|(n, v)| serde_json::json!([n, v])).collect()
}

#[test]
fn snaplen_cuts_each_packet_and_the_exchange_says_so() {
    let snaplen = SNAPLEN.to_string();
    let (rec, sent, stopped, since) = big_get(&["--snaplen", &snaplen]);
    // curl's request head (about 80 bytes) is longer than 64: README, a head cut short is
    // reported with its start line and the fields that arrived whole, incomplete, noted
    // "truncated", with an empty body of size 0, and paired with its own response.
    let start_line = "GET /big HTTP/1.1\r\n";
    let mut end = start_line.len();
    let mut whole = Vec::new();
    for (n, v) in &sent.headers {
        end += format!("{n}: {v}\r\n").len();
        if end <= SNAPLEN {
            whole.push(serde_json::json!([n, v]));
        }
    }
    assert!(end > SNAPLEN, "curl's request head fits in {SNAPLEN} bytes: {sent:?}");
    assert!(!whole.is_empty(), "the Host line fits in {SNAPLEN} bytes: {sent:?}");
    assert_eq!(str_at(&rec, "/source"), "packet", "source in {rec}");
    assert_eq!(rec["complete"], false, "complete in {rec}");
    assert_eq!(rec["note"], "truncated", "note in {rec}");
    assert_eq!(rec["lost_bytes"], 0, "uncaptured bytes are not lost bytes: {rec}");
    assert_eq!(str_at(&rec, "/request/method"), "GET", "method in {rec}");
    assert_eq!(str_at(&rec, "/request/target"), "/big", "target in {rec}");
    assert_eq!(rec.pointer("/request/headers"), Some(&Value::Array(whole)), "whole fields only in {rec}");
    assert_eq!(u64_at(&rec, "/request/body_size"), 0, "{rec}");
    assert_eq!(str_at(&rec, "/request/body"), "", "{rec}");
    // The response head fits: its body is framed by Content-Length and cut at the snaplen.
    let kept = SNAPLEN - BIG_HEAD.len();
    assert_eq!(u64_at(&rec, "/response/status"), 200, "status in {rec}");
    assert_eq!(header_at(&rec, "/response/headers", "Content-Length").as_deref(), Some("4096"), "{rec}");
    assert_eq!(u64_at(&rec, "/response/body_size"), 4096, "body_size in {rec}");
    assert!(bool_at(&rec, "/response/body_truncated"), "body_truncated in {rec}");
    assert_eq!(str_at(&rec, "/response/body"), &big_body()[..kept], "the body's first {kept} bytes in {rec}");
    assert!(u64_at(&rec, "/latency_us") >= u64_at(&rec, "/ttfb_us"), "{rec}");
    assert_ts_between(&rec, since - Duration::from_secs(2), SystemTime::now());
    // What was not kept, each message being one packet on lo: all but the first 64 bytes
    // of the response (head and body) and of the request (its head and final CRLF).
    let request_len = end + 2;
    let expected = (BIG_HEAD.len() + 4096 - SNAPLEN) + (request_len - SNAPLEN);
    assert_eq!(
        summary_counter(&stopped.stderr, "uncaptured_bytes"),
        expected as u64,
        "uncaptured_bytes; {}",
        dump(&stopped.records)
    );
    assert_eq!(summary_counter(&stopped.stderr, "lost_bytes"), 0, "{}", dump(&stopped.records));
    assert_eq!(summary_counter(&stopped.stderr, "incomplete"), 1, "{}", dump(&stopped.records));
}

#[test]
fn default_snaplen_keeps_the_same_exchange_whole() {
    let (rec, sent, stopped, since) = big_get(&[]);
    crate::common::assert_complete_exchange_from(&rec, since, "packet");
    assert_eq!(str_at(&rec, "/request/method"), "GET", "method in {rec}");
    assert_eq!(str_at(&rec, "/request/target"), "/big", "target in {rec}");
    assert_eq!(rec.pointer("/request/headers"), Some(&Value::Array(header_pairs(&sent))), "{rec}");
    assert_eq!(u64_at(&rec, "/response/body_size"), 4096, "body_size in {rec}");
    assert!(!bool_at(&rec, "/response/body_truncated"), "body_truncated in {rec}");
    assert_eq!(str_at(&rec, "/response/body"), big_body(), "body in {rec}");
    assert_eq!(summary_counter(&stopped.stderr, "uncaptured_bytes"), 0, "{}", dump(&stopped.records));
    assert_eq!(summary_counter(&stopped.stderr, "incomplete"), 0, "{}", dump(&stopped.records));
}
