//! Bad traffic on a traced HTTP port: l7trace keeps running and reports the next normal
//! exchange, its peak RSS stays bounded, it fabricates no record from garbage, and its
//! stdout is valid JSON without a raw control byte. Each case prints its peak RSS
//! (`cargo xtask test` shows it with --nocapture; the numbers are in the note).

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// Generous: the ring buffer alone is 8 MiB and per-connection buffers are 1 MiB each way.
const PEAK_RSS_BOUND_MIB: f64 = 128.0;
/// Every legitimate target a case sends starts with this.
const OURS: &str = "/h-";

/// Runs `bad` against a traced server, then a normal exchange; checks what l7trace printed.
fn survives(case: &str, bad: impl FnOnce(u16)) -> Vec<Value> {
    let server = HttpServer::start_default();
    let trace = Trace::on_port(server.port(), &[]);
    let pid = trace.pid();
    let started = Instant::now();
    bad(server.port());
    let after = format!("/after-{case}");
    let run = curl(&[&format!("http://{}{after}", server.authority())]);
    assert_eq!(run.stdout_text(), format!("hello from {after}"));
    std::thread::sleep(Duration::from_millis(300));
    let peak = peak_rss_mib(pid);
    let stopped = trace.stop_full();
    eprintln!(
        "hostile: {case:<16} peak RSS {peak:6.1} MiB, {} records, {:.1}s",
        stopped.records.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(peak < PEAK_RSS_BOUND_MIB, "{case}: peak RSS {peak:.1} MiB");
    assert_raw_json_clean(&stopped.stdout);
    let records = stopped.records;
    for role in ["client", "server"] {
        let normal: Vec<&Value> = by_role(&records, role)
            .into_iter()
            .filter(|r| r["request"]["target"] == after.as_str())
            .collect();
        assert_eq!(normal.len(), 1, "{case}: the {role} record of {after}; records:\n{}", dump(&records));
        assert_complete_exchange(normal[0], trace_start_guess());
        assert_eq!(u64_at(normal[0], "/response/status"), 200);
    }
    for r in &records {
        let target = str_at(r, "/request/target");
        assert!(
            target.starts_with(OURS) || target == after,
            "{case}: fabricated record (target not sent by the test):\n{r}"
        );
    }
    records
}

fn trace_start_guess() -> std::time::SystemTime {
    std::time::SystemTime::now() - Duration::from_secs(60)
}

/// Every byte of stdout is printable or the newline between records: serde escapes
/// control bytes, ESC included, so nothing reaches a terminal raw.
fn assert_raw_json_clean(stdout: &[u8]) {
    if let Some(i) = stdout.iter().position(|&b| b < 0x20 && b != b'\n') {
        let from = i.saturating_sub(40);
        panic!(
            "raw control byte {:#04x} at {i} in stdout: {:?}",
            stdout[i],
            String::from_utf8_lossy(&stdout[from..(i + 40).min(stdout.len())])
        );
    }
}

/// Writes `bytes` (errors ignored: the server may hang up on garbage), half-closes, and
/// reads whatever comes back for at most 5 s.
fn send_raw(port: u16, bytes: &[u8]) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let _ = s.write_all(bytes);
    drain_and_close(s);
}

fn drain_and_close(mut s: TcpStream) {
    let _ = s.shutdown(Shutdown::Write);
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut sink = Vec::new();
    let _ = s.read_to_end(&mut sink);
}

#[test]
fn random_binary() {
    let records = survives("binary", |port| {
        for seed in 1..=4 {
            send_raw(port, &pseudo_random_bytes(256 * 1024, seed));
        }
    });
    assert_eq!(records.len(), 2, "only the normal exchange:\n{}", dump(&records));
}

#[test]
fn tls_client_hello() {
    let records = survives("tls", |port| {
        // curl's own ClientHello (and whatever it makes of the plain-HTTP answer).
        let out = Command::new("curl")
            .args(["-sS", "-k", "--noproxy", "*", "--max-time", "5"])
            .arg(format!("https://127.0.0.1:{port}/h-tls"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run curl");
        assert!(!out.success(), "TLS to a plain HTTP server cannot succeed");
    });
    assert_eq!(records.len(), 2, "only the normal exchange:\n{}", dump(&records));
}

#[test]
fn one_mib_header_line() {
    survives("bigline", |port| {
        let mut req = b"GET /h-bigline HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
        req.extend(std::iter::repeat_n(b'a', 1 << 20));
        req.extend_from_slice(b"\r\n\r\n");
        send_raw(port, &req);
    });
}

#[test]
fn ten_thousand_headers() {
    survives("headers10k", |port| {
        let mut req = b"GET /h-headers HTTP/1.1\r\nHost: x\r\n".to_vec();
        for i in 0..10_000 {
            req.extend_from_slice(format!("X-H-{i}: v{i}\r\n").as_bytes());
        }
        req.extend_from_slice(b"\r\n");
        send_raw(port, &req);
    });
}

#[test]
fn endless_chunked_body() {
    const TOTAL: usize = 64 << 20;
    survives("chunked64m", |port| {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.write_all(b"POST /h-chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
            .unwrap();
        let chunk = pseudo_random_bytes(64 * 1024, 9);
        let mut frame = format!("{:x}\r\n", chunk.len()).into_bytes();
        frame.extend_from_slice(&chunk);
        frame.extend_from_slice(b"\r\n");
        let mut sent = 0;
        while sent < TOTAL {
            s.write_all(&frame).expect("write chunk");
            sent += chunk.len();
        }
        // Never the last chunk: the connection just goes away.
        drop(s);
    });
}

#[test]
fn trickling_request_without_crlf() {
    survives("trickle", |port| {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_nodelay(true).unwrap();
        s.write_all(b"GET /h-trickle HTTP/1.1\r\nX-Slow: ").unwrap();
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            s.write_all(b"z").unwrap();
            std::thread::sleep(Duration::from_millis(20));
        }
        drop(s);
    });
}

#[test]
fn invalid_utf8() {
    survives("utf8", |port| {
        send_raw(
            port,
            b"GET /h-utf8-\xff\xfe\xc3\x28 HTTP/1.1\r\nHost: x\r\nX-Bin: \xc3\x28\xa0\xa1\xf0\x28\x8c\xbc\r\n\r\n",
        );
        send_raw(port, b"GET /h-utf8-value HTTP/1.1\r\nHost: x\r\nX-Bin: \xff\xfe\xfd\r\n\r\n");
    });
}

#[test]
fn nul_bytes() {
    survives("nul", |port| {
        send_raw(port, b"GET /h-nul\0x HTTP/1.1\r\nHost: x\r\n\r\n");
        send_raw(port, b"GET /h-nul-value HTTP/1.1\r\nHost: x\r\nX-Nul: a\0b\r\n\r\n");
        send_raw(port, b"\0\0\0\0GET /h-nul-prefix HTTP/1.1\r\n\r\n");
    });
}

#[test]
fn terminal_escapes_in_paths_and_headers() {
    survives("escapes", |port| {
        send_raw(port, b"GET /h-esc-\x1b[2J\x1b[31m HTTP/1.1\r\nHost: x\r\n\r\n");
        send_raw(
            port,
            b"GET /h-esc-headers HTTP/1.1\r\nHost: x\r\nX-Esc: \x1b[31mred\x1b[0m\r\n\
              User-Agent: \x1b]8;;http://evil.example\x07link\x1b]8;;\x07\r\nX-Title: \x1b]0;pwned\x07\r\n\r\n",
        );
        // Percent-encoded escapes are legal in a target; they must arrive as text.
        send_raw(port, b"GET /h-esc-%1b%5b2J HTTP/1.1\r\nHost: x\r\nX-C1: \xc2\x9b31m\r\n\r\n");
    });
}
