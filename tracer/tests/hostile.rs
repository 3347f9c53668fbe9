//! Bad traffic on a traced HTTP port: l7trace keeps running and reports the next normal
//! exchange, its peak RSS stays bounded, it fabricates no record from garbage, and its
//! stdout is valid JSON without a raw control byte. Every case runs twice: syscall probes,
//! and interface capture (`--iface lo`). Each case prints its peak RSS
//! (`cargo xtask test` shows it with --nocapture; the numbers are in the note).

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// The benchmark's target. l7trace peaks at about 22 MiB in each case here: the ring
/// buffer is 8 MiB and per-connection buffers hold 1 MiB each way at most.
const PEAK_RSS_BOUND_MIB: f64 = 64.0;
/// Every legitimate target a case sends starts with this.
const OURS: &str = "/h-";

/// Where l7trace reads the traffic.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Path {
    Syscall,
    Iface,
}

impl Path {
    fn args(self) -> &'static [&'static str] {
        match self {
            Path::Syscall => &[],
            Path::Iface => &["--iface", "lo"],
        }
    }

    fn source(self) -> &'static str {
        match self {
            Path::Syscall => "syscall",
            Path::Iface => "packet",
        }
    }

    /// Records per exchange between two local processes: one per side from the syscall
    /// probes, one from the interface.
    fn per_exchange(self) -> usize {
        match self {
            Path::Syscall => 2,
            Path::Iface => 1,
        }
    }
}

/// Runs `bad` against a traced server, then a normal exchange; checks what l7trace printed.
fn survives(case: &str, path: Path, bad: impl FnOnce(u16)) -> Vec<Value> {
    let case = match path {
        Path::Syscall => case.to_owned(),
        Path::Iface => format!("{case}-iface"),
    };
    let case = case.as_str();
    let server = HttpServer::start_default();
    let trace = Trace::on_port(server.port(), path.args());
    let since = trace.started_at;
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
    let normal: Vec<&Value> = records.iter().filter(|r| r["request"]["target"] == after.as_str()).collect();
    assert_eq!(normal.len(), path.per_exchange(), "{case}: the records of {after}; records:\n{}", dump(&records));
    if path == Path::Syscall {
        for role in ["client", "server"] {
            let n = normal.iter().filter(|r| r["role"] == role).count();
            assert_eq!(n, 1, "{case}: the {role} record of {after}; records:\n{}", dump(&records));
        }
    }
    for r in &normal {
        assert_complete_exchange_from(r, since, path.source());
        assert_eq!(u64_at(r, "/response/status"), 200);
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

/// The records of a hostile request whose target the JSON shows as `target`: one per
/// exchange of `path`, answered, with request header `name` as `value`. The hostile bytes
/// must reach the JSON (escaped), or the clean-stdout check has nothing to check.
fn assert_hostile_reported(records: &[Value], path: Path, target: &str, (name, value): (&str, &str)) {
    let found: Vec<&Value> = records.iter().filter(|r| r["request"]["target"] == target).collect();
    assert_eq!(found.len(), path.per_exchange(), "the records of {target:?}; records:\n{}", dump(records));
    for r in found {
        assert_eq!(u64_at(r, "/response/status"), 200, "status in {r}");
        assert_eq!(header_at(r, "/request/headers", name).as_deref(), Some(value), "{name} in {r}");
    }
}

/// Every byte of stdout is printable or the newline between records: the JSON writer
/// escapes control bytes, ESC included, and the C1 controls (U+0080..U+009F, whose U+009B
/// is CSI), so nothing reaches a terminal raw.
fn assert_raw_json_clean(stdout: &[u8]) {
    if let Some(i) = stdout.iter().position(|&b| b < 0x20 && b != b'\n') {
        let from = i.saturating_sub(40);
        panic!(
            "raw control byte {:#04x} at {i} in stdout: {:?}",
            stdout[i],
            String::from_utf8_lossy(&stdout[from..(i + 40).min(stdout.len())])
        );
    }
    // Stdout is UTF-8 (checked when it was read): a C1 control is 0xc2 0x80..=0x9f.
    if let Some(i) = stdout.windows(2).position(|w| w[0] == 0xc2 && (0x80..=0x9f).contains(&w[1])) {
        let from = i.saturating_sub(40);
        panic!(
            "raw C1 control U+00{:02X} at {i} in stdout: {:?}",
            stdout[i + 1],
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

fn random_binary(path: Path) {
    let records = survives("binary", path, |port| {
        for seed in 1..=4 {
            send_raw(port, &pseudo_random_bytes(256 * 1024, seed));
        }
    });
    assert_eq!(records.len(), path.per_exchange(), "only the normal exchange:\n{}", dump(&records));
}

fn tls_client_hello(path: Path) {
    let records = survives("tls", path, |port| {
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
    assert_eq!(records.len(), path.per_exchange(), "only the normal exchange:\n{}", dump(&records));
}

fn one_mib_header_line(path: Path) {
    survives("bigline", path, |port| {
        let mut req = b"GET /h-bigline HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
        req.extend(std::iter::repeat_n(b'a', 1 << 20));
        req.extend_from_slice(b"\r\n\r\n");
        send_raw(port, &req);
    });
}

fn ten_thousand_headers(path: Path) {
    survives("headers10k", path, |port| {
        let mut req = b"GET /h-headers HTTP/1.1\r\nHost: x\r\n".to_vec();
        for i in 0..10_000 {
            req.extend_from_slice(format!("X-H-{i}: v{i}\r\n").as_bytes());
        }
        req.extend_from_slice(b"\r\n");
        send_raw(port, &req);
    });
}

fn endless_chunked_body(path: Path) {
    // Twice the RSS bound: a parser that kept the body, or the stream buffers that did,
    // would cross it.
    const TOTAL: usize = (2 * PEAK_RSS_BOUND_MIB as usize) << 20;
    survives("chunked128m", path, |port| {
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

fn trickling_request_without_crlf(path: Path) {
    survives("trickle", path, |port| {
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

fn invalid_utf8(path: Path) {
    let records = survives("utf8", path, |port| {
        send_raw(
            port,
            b"GET /h-utf8-\xff\xfe\xc3\x28 HTTP/1.1\r\nHost: x\r\nX-Bin: \xc3\x28\xa0\xa1\xf0\x28\x8c\xbc\r\n\r\n",
        );
        send_raw(port, b"GET /h-utf8-value HTTP/1.1\r\nHost: x\r\nX-Bin: \xff\xfe\xfd\r\n\r\n");
    });
    // Invalid sequences come out as U+FFFD, as a lossy conversion makes them.
    let lossy = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let bin = lossy(b"\xc3\x28\xa0\xa1\xf0\x28\x8c\xbc");
    assert_hostile_reported(&records, path, &lossy(b"/h-utf8-\xff\xfe\xc3\x28"), ("X-Bin", &bin));
    assert_hostile_reported(&records, path, "/h-utf8-value", ("X-Bin", &lossy(b"\xff\xfe\xfd")));
    // Bytes of 0x80 and above are valid HTTP in a target as in a value, UTF-8 or not: the
    // exchange is whole, not marked.
    for r in records.iter().filter(|r| r["request"]["target"].as_str().is_some_and(|t| t.starts_with("/h-utf8-"))) {
        assert!(r.get("note").is_none() && bool_at(r, "/complete"), "marked: {r}");
    }
}

fn nul_bytes(path: Path) {
    let records = survives("nul", path, |port| {
        send_raw(port, b"GET /h-nul\0x HTTP/1.1\r\nHost: x\r\n\r\n");
        send_raw(port, b"GET /h-nul-value HTTP/1.1\r\nHost: x\r\nX-Nul: a\0b\r\n\r\n");
        send_raw(port, b"\0\0\0\0GET /h-nul-prefix HTTP/1.1\r\n\r\n");
    });
    assert_hostile_reported(&records, path, "/h-nul-value", ("X-Nul", "a\0b"));
}

fn terminal_escapes_in_paths_and_headers(path: Path) {
    let records = survives("escapes", path, |port| {
        send_raw(port, b"GET /h-esc-\x1b[2J\x1b[31m HTTP/1.1\r\nHost: x\r\n\r\n");
        send_raw(
            port,
            b"GET /h-esc-headers HTTP/1.1\r\nHost: x\r\nX-Esc: \x1b[31mred\x1b[0m\r\n\
              User-Agent: \x1b]8;;http://evil.example\x07link\x1b]8;;\x07\r\nX-Title: \x1b]0;pwned\x07\r\n\r\n",
        );
        // Percent-encoded escapes are legal in a target; they must arrive as text.
        send_raw(port, b"GET /h-esc-%1b%5b2J HTTP/1.1\r\nHost: x\r\nX-C1: \xc2\x9b31m\r\n\r\n");
    });
    assert_hostile_reported(&records, path, "/h-esc-headers", ("X-Title", "\x1b]0;pwned\x07"));
    assert_hostile_reported(&records, path, "/h-esc-headers", ("X-Esc", "\x1b[31mred\x1b[0m"));
    assert_hostile_reported(&records, path, "/h-esc-%1b%5b2J", ("X-C1", "\u{9b}31m"));
}

// Each case on both paths.

#[test]
fn random_binary_syscall() {
    random_binary(Path::Syscall);
}

#[test]
fn random_binary_iface() {
    random_binary(Path::Iface);
}

#[test]
fn tls_client_hello_syscall() {
    tls_client_hello(Path::Syscall);
}

#[test]
fn tls_client_hello_iface() {
    tls_client_hello(Path::Iface);
}

#[test]
fn one_mib_header_line_syscall() {
    one_mib_header_line(Path::Syscall);
}

#[test]
fn one_mib_header_line_iface() {
    one_mib_header_line(Path::Iface);
}

#[test]
fn ten_thousand_headers_syscall() {
    ten_thousand_headers(Path::Syscall);
}

#[test]
fn ten_thousand_headers_iface() {
    ten_thousand_headers(Path::Iface);
}

#[test]
fn endless_chunked_body_syscall() {
    endless_chunked_body(Path::Syscall);
}

#[test]
fn endless_chunked_body_iface() {
    endless_chunked_body(Path::Iface);
}

#[test]
fn trickling_request_without_crlf_syscall() {
    trickling_request_without_crlf(Path::Syscall);
}

#[test]
fn trickling_request_without_crlf_iface() {
    trickling_request_without_crlf(Path::Iface);
}

#[test]
fn invalid_utf8_syscall() {
    invalid_utf8(Path::Syscall);
}

#[test]
fn invalid_utf8_iface() {
    invalid_utf8(Path::Iface);
}

#[test]
fn nul_bytes_syscall() {
    nul_bytes(Path::Syscall);
}

#[test]
fn nul_bytes_iface() {
    nul_bytes(Path::Iface);
}

#[test]
fn terminal_escapes_in_paths_and_headers_syscall() {
    terminal_escapes_in_paths_and_headers(Path::Syscall);
}

#[test]
fn terminal_escapes_in_paths_and_headers_iface() {
    terminal_escapes_in_paths_and_headers(Path::Iface);
}
