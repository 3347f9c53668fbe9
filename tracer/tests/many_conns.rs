//! Many connections: 100,000 short ones, and 10,000 idle ones held open at once. The
//! tracked-connection table stays bounded by `--max-conns` (evictions are counted) and
//! l7trace's peak RSS stays bounded.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use common::*;

const MAX_CONNS: &str = "1000";
const PEAK_RSS_BOUND_MIB: f64 = 128.0;

/// Close without TIME_WAIT (SO_LINGER 0: an RST), so 100,000 connections do not exhaust
/// the ephemeral ports.
fn abort(s: TcpStream) {
    set_linger_zero(&s);
    drop(s);
}

fn final_exchange_is_reported(records: &[serde_json::Value], target: &str) {
    for role in ["client", "server"] {
        assert!(
            by_role(records, role)
                .iter()
                .any(|r| r["request"]["target"] == target && r["response"]["status"] == 200),
            "no {role} record of {target} among {} records",
            records.len()
        );
    }
}

/// Prints what a run cost, checks its peak RSS and that its last exchange (`/c-{last}`) was
/// reported; returns a reader of its summary counters.
fn bounded_and_reported<'a>(what: &str, last: usize, stopped: &'a trace::Stopped, peak: f64) -> impl Fn(&str) -> u64 + 'a {
    let counter = |n: &str| summary_counter(&stopped.stderr, n);
    eprintln!(
        "many_conns: {what}: peak RSS {peak:.1} MiB, records {}, exchanges={} lost_events={} evicted_conns={}",
        stopped.records.len(),
        counter("exchanges"),
        counter("lost_events"),
        counter("evicted_conns")
    );
    assert!(peak < PEAK_RSS_BOUND_MIB, "peak RSS {peak:.1} MiB");
    final_exchange_is_reported(&stopped.records, &format!("/c-{last}"));
    counter
}

/// `n` connections, each one exchange and an abort (`/c-0`...), then `/c-{n}` closed
/// normally; how long the `n` took.
fn short_connections(listener: &TcpListener, n: usize) -> Duration {
    let start = Instant::now();
    for i in 0..n {
        let (c, s) = http_pair(listener, &format!("/c-{i}"));
        abort(c);
        drop(s);
    }
    let took = start.elapsed();
    let (c, s) = http_pair(listener, &format!("/c-{n}"));
    drop(c);
    drop(s);
    took
}

#[test]
fn hundred_thousand_short_connections() {
    const N: usize = 100_000;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let trace = Trace::on_port(port, &["--max-conns", MAX_CONNS]);
    let pid = trace.pid();
    let took = short_connections(&listener, N);
    std::thread::sleep(Duration::from_millis(500));
    let peak = peak_rss_mib(pid);
    let stopped = trace.stop_full();
    let counter = bounded_and_reported(&format!("{N} short connections in {:.1}s", took.as_secs_f64()), N, &stopped, peak);
    // Closed connections leave the table; with nothing lost, every exchange (N, and the
    // last) is reported once per end.
    if counter("lost_events") == 0 {
        assert_eq!(counter("exchanges"), 2 * (N as u64 + 1), "exchanges in {:?}", stopped.stderr);
        assert_eq!(stopped.records.len() as u64, 2 * (N as u64 + 1), "records");
    }
}

/// Set for the child process that holds the server ends of the idle connections (the
/// test process may not have the 20,000 fds both ends need: RLIMIT_NOFILE is 20,000 on
/// this kind of machine and CAP_SYS_RESOURCE is absent).
const HOLD_ENV: &str = "L7TRACE_TEST_HOLD_PORT";

/// Not a test of its own: the server of `ten_thousand_idle_connections`, run as a child
/// process (`--ignored --exact idle_server_child`). It answers one request per connection
/// and keeps every connection open until its stdin closes. Ignored, so that a run of the
/// suite does not count it as a passed test; run by hand it fails.
#[test]
#[ignore = "the server child of ten_thousand_idle_connections, not a test"]
fn idle_server_child() {
    let port = std::env::var_os(HOLD_ENV)
        .unwrap_or_else(|| panic!("run only by ten_thousand_idle_connections ({HOLD_ENV} unset)"));
    raise_nofile(12_000);
    let port: u16 = port.to_str().unwrap().parse().unwrap();
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("child bind");
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming() {
            let mut conn = conn.expect("accept");
            let mut buf = [0u8; 256];
            let mut got = Vec::new();
            while !got.ends_with(b"\r\n\r\n") {
                let n = conn.read(&mut buf).expect("read request");
                assert!(n > 0, "client closed early");
                got.extend_from_slice(&buf[..n]);
            }
            conn.write_all(OK_2).unwrap();
            held.push(conn);
        }
    });
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    std::process::exit(0);
}

fn client_exchange(port: u16, i: usize) -> TcpStream {
    let mut client = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    client.write_all(format!("GET /c-{i} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes()).unwrap();
    let mut back = vec![0; OK_2.len()];
    client.read_exact(&mut back).unwrap();
    client
}

#[test]
fn ten_thousand_idle_connections() {
    const N: usize = 10_000;
    raise_nofile(N as u64 + 1024);
    let port = free_port();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "idle_server_child", "--nocapture", "--test-threads=1"])
        .env(HOLD_ENV, port.to_string())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start the server child");
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).map(client_exchange_done).is_err() {
        assert!(Instant::now() < deadline, "server child did not listen");
        std::thread::sleep(Duration::from_millis(20));
    }
    let trace = Trace::on_port(port, &["--max-conns", MAX_CONNS]);
    let pid = trace.pid();
    // Each connection carries one exchange (so both ends are tracked), then idles open.
    let held: Vec<TcpStream> = (0..N).map(|i| client_exchange(port, i)).collect();
    std::thread::sleep(Duration::from_millis(500));
    let last = client_exchange(port, N);
    std::thread::sleep(Duration::from_millis(300));
    let peak = peak_rss_mib(pid);
    let stopped = trace.stop_full();
    drop(last);
    drop(held);
    drop(child.stdin.take());
    let _ = child.wait();
    let counter = bounded_and_reported(&format!("{N} idle connections held"), N, &stopped, peak);
    // 2N tracked ends (client and server) into a table of 1000: at least 2N - 1000 go.
    let max: u64 = MAX_CONNS.parse().unwrap();
    let evicted = counter("evicted_conns");
    assert!(evicted >= 2 * N as u64 - max, "evicted_conns={evicted}; table not bounded");
    // An evicted connection's exchange was already reported: none is lost or repeated.
    let ours = stopped
        .records
        .iter()
        .filter(|r| r["request"]["target"].as_str().is_some_and(|t| t.starts_with("/c-")))
        .count();
    if counter("lost_events") == 0 {
        assert_eq!(ours, 2 * (N + 1), "one record per end per exchange");
    }
}

/// The readiness probe: one exchange, then the connection closes.
fn client_exchange_done(mut c: TcpStream) {
    let _ = c.write_all(b"GET /probe HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut back = vec![0; OK_2.len()];
    let _ = c.read_exact(&mut back);
}

/// The same 100,000 short connections seen on `lo` by the interface capture (about 50k a
/// second here): each exchange reported once, attributed to its server, the flow table
/// bounded by `--max-conns`, and peak RSS within the benchmark's 64 MiB (28 MiB here; 43
/// MiB on the build before the ring reader and the owners' shorter keep).
#[test]
fn hundred_thousand_short_connections_iface() {
    const N: usize = 100_000;
    const IFACE_RSS_BOUND_MIB: f64 = 64.0;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let trace = Trace::on_port(port, &["--iface", "lo", "--max-conns", MAX_CONNS]);
    let pid = trace.pid();
    let took = short_connections(&listener, N);
    std::thread::sleep(Duration::from_millis(800));
    let peak = peak_rss_mib(pid);
    let stopped = trace.stop_full();
    let counter = |n: &str| summary_counter(&stopped.stderr, n);
    eprintln!(
        "many_conns: {N} short connections on lo (--iface) in {:.1}s: peak RSS {peak:.1} MiB, records {}, exchanges={} lost_events={}",
        took.as_secs_f64(),
        stopped.records.len(),
        counter("exchanges"),
        counter("lost_events")
    );
    assert!(peak < IFACE_RSS_BOUND_MIB, "peak RSS {peak:.1} MiB");
    let last = format!("/c-{N}");
    let lasts: Vec<_> = stopped.records.iter().filter(|r| r["request"]["target"] == last.as_str()).collect();
    assert_eq!(lasts.len(), 1, "the last exchange, once: {lasts:?}");
    assert_eq!(lasts[0]["source"], "packet");
    assert_eq!(lasts[0]["response"]["status"], 200, "{}", lasts[0]);
    // Both ends are this test's: attributed to the server end.
    assert_eq!(lasts[0]["role"], "server", "{}", lasts[0]);
    assert_eq!(lasts[0]["pid"], std::process::id(), "{}", lasts[0]);
    // With nothing lost, every exchange is reported once (one record per exchange).
    if counter("lost_events") == 0 {
        assert_eq!(counter("exchanges"), N as u64 + 1, "exchanges in {:?}", stopped.stderr);
        assert_eq!(stopped.records.len(), N + 1, "records");
    }
}
