//! The userspace pipeline alone: recorded kernel events -> exchanges, on one core.
//!
//! The records are built with `events::encode` as the kernel would emit them for small
//! (1 KiB body) HTTP/1.1 exchanges: a request of about 100 bytes and a response of about
//! 1.25 KiB (nginx-like head + 1 KiB body), each one segment, egress or ingress by role.
//! Half the connections are traced servers, half traced clients, and the records of many
//! connections are interleaved as a busy machine would deliver them.
//!
//! `cargo bench -p tracer --bench pipeline` runs criterion. With `L7TRACE_BENCH_FIXED=SECS`
//! it instead runs each case for about SECS seconds and prints one `pipeline-fixed: {json}`
//! line per case (what `cargo xtask bench` reads). `L7TRACE_BENCH_ONLY=NAME` runs one
//! workload (`keepalive`, `close`, `open16k` or `binary`).
use std::hint::black_box;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion, Throughput};
use tracer::{
    events::encode,
    output::{json::JsonSink, Clock, Sink},
    pipeline::{Config, Filter, Pipeline, Record},
    protocols::Limits,
};
use tracer_common::{EventHeader, EventKind, AF_INET, DIR_EGRESS, DIR_INGRESS, ROLE_CLIENT, ROLE_SERVER};

const BODY: usize = 1024;

/// A workload: records in delivery order, and what they add up to.
struct Workload {
    name: &'static str,
    records: Vec<Vec<u8>>,
    exchanges: u64,
    bytes: u64,
}

fn request(i: usize) -> Vec<u8> {
    format!("GET /file-1k.bin?i={i} HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n")
        .into_bytes()
}

/// `binary`: a body that is not UTF-8 (compressed, an image), which the JSON line carries
/// in base64; else lower-case letters, as the nginx of `cargo xtask bench` serves.
fn response(binary: bool) -> Vec<u8> {
    let mut r = format!(
        "HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Sun, 22 Nov 2026 10:15:02 GMT\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: {BODY}\r\n\
         Last-Modified: Sun, 22 Nov 2026 10:00:00 GMT\r\nConnection: keep-alive\r\n\
         ETag: \"6541f2a8-400\"\r\nAccept-Ranges: bytes\r\n\r\n"
    )
    .into_bytes();
    if binary {
        // 0xff is never part of UTF-8.
        r.extend((0..BODY).map(|i| if i % 64 == 0 { 0xff } else { (i * 151 % 256) as u8 }));
    } else {
        r.extend((0..BODY).map(|i| b'a' + (i % 26) as u8));
    }
    r
}

struct ConnGen {
    hdr: EventHeader,
    pos: [u64; 2],
}

impl ConnGen {
    fn new(n: usize, server: bool) -> Self {
        let (lport, rport) = if server { (8080, 40000 + n as u16) } else { (40000 + n as u16, 8080) };
        ConnGen {
            hdr: EventHeader {
                kind: EventKind::Data as u32,
                flags: 0,
                ts_ns: 0,
                conn_id: 1_000_000 + n as u64,
                sock: 0xffff_8880_1000_0000 + 0x1000 * n as u64,
                pos: 0,
                len: 0,
                cap: 0,
                pid: if server { 1000 } else { 2000 },
                tid: if server { 1000 } else { 2000 + n as u32 % 4 },
                fd: 10 + n as u32,
                family: AF_INET,
                role: if server { ROLE_SERVER } else { ROLE_CLIENT },
                dir: 0,
                lport,
                rport,
                _pad: 0,
                laddr: addr(Ipv4Addr::LOCALHOST),
                raddr: addr(Ipv4Addr::LOCALHOST),
                comm: *if server { b"nginx\0\0\0\0\0\0\0\0\0\0\0" } else { b"wrk\0\0\0\0\0\0\0\0\0\0\0\0\0" },
            },
            pos: [0, 0],
        }
    }

    fn data(&mut self, dir: u8, ts: u64, bytes: &[u8]) -> Vec<u8> {
        let mut h = self.hdr;
        h.ts_ns = ts;
        h.dir = dir;
        h.pos = self.pos[dir as usize];
        h.len = bytes.len() as u32;
        h.cap = bytes.len() as u32;
        self.pos[dir as usize] += bytes.len() as u64;
        encode(&h, bytes)
    }

    fn close(&self, ts: u64) -> Vec<u8> {
        let mut h = self.hdr;
        h.kind = EventKind::Close as u32;
        h.ts_ns = ts;
        encode(&h, b"")
    }

    /// Request then response, in the directions of this connection's role.
    fn exchange(&mut self, i: usize, ts: &mut u64, resp: &[u8], out: &mut Vec<Vec<u8>>) {
        let (req_dir, resp_dir) =
            if self.hdr.role == ROLE_SERVER { (DIR_INGRESS, DIR_EGRESS) } else { (DIR_EGRESS, DIR_INGRESS) };
        *ts += 20_000;
        out.push(self.data(req_dir, *ts, &request(i)));
        *ts += 30_000;
        out.push(self.data(resp_dir, *ts, resp));
    }
}

fn addr(ip: Ipv4Addr) -> [u8; 16] {
    let mut a = [0; 16];
    a[..4].copy_from_slice(&ip.octets());
    a
}

/// `conns` connections (half server, half client), `per_conn` exchanges on each, records
/// interleaved round-robin, `window` connections open at a time: each batch of `window`
/// connections does its exchanges, then closes, and the next batch opens (wrk's `-c`
/// connections; with `Connection: close` each is replaced as soon as it closes).
fn workload(name: &'static str, conns: usize, per_conn: usize, window: usize, binary: bool) -> Workload {
    let resp = response(binary);
    let mut records = Vec::new();
    let mut ts = 1_000_000_000u64;
    for first in (0..conns).step_by(window) {
        let mut gens: Vec<ConnGen> =
            (first..(first + window).min(conns)).map(|n| ConnGen::new(n, n % 2 == 0)).collect();
        for i in 0..per_conn {
            for g in gens.iter_mut() {
                g.exchange(i, &mut ts, &resp, &mut records);
            }
        }
        for g in &gens {
            ts += 1000;
            records.push(g.close(ts));
        }
    }
    let bytes = records.iter().map(|r| r.len() as u64).sum();
    Workload { name, records, exchanges: (conns * per_conn) as u64, bytes }
}

/// Every workload, or only the one named by `L7TRACE_BENCH_ONLY` (for profiling one).
fn workloads() -> Vec<Workload> {
    let only = std::env::var("L7TRACE_BENCH_ONLY").ok();
    all_workloads().into_iter().filter(|w| only.as_deref().is_none_or(|o| o == w.name)).collect()
}

fn all_workloads() -> Vec<Workload> {
    vec![
        // Keep-alive: 256 connections, 64 exchanges each.
        workload("keepalive", 256, 64, 256, false),
        // Connection: close: one exchange per connection, 64 open at a time (wrk -c64).
        workload("close", 16_384, 1, 64, false),
        // The worst case for memory: 16,384 connections open at once, one exchange each,
        // then every close.
        workload("open16k", 16_384, 1, 16_384, false),
        // Keep-alive as above, the bodies not UTF-8: base64 in the JSON line.
        workload("binary", 256, 64, 256, true),
    ]
}

fn config() -> Config {
    Config { limits: Limits::default(), announce_requests: false, max_conns: 65_536, idle_timeout_ns: 300_000_000_000 }
}

/// One pass: a fresh pipeline takes every record; returns the exchanges out.
fn run_pass(w: &Workload) -> u64 {
    let mut pipeline = Pipeline::new(config(), Filter::default());
    let mut n = 0u64;
    let mut sink = |r: Record| {
        black_box(&r);
        n += 1;
    };
    for raw in &w.records {
        pipeline.on_raw(raw, &mut sink);
    }
    n
}

/// As `run_pass`, and each record is also rendered as its JSON line (the `--json` sink
/// without the write).
/// With the JSON lines, written as `--json` writes them: into the sink's batch, which a
/// write(2) to /dev/null would send (here `io::sink`, so no syscall is timed).
fn run_pass_json(w: &Workload, clock: &Clock) -> u64 {
    let mut pipeline = Pipeline::new(config(), Filter::default());
    let mut json = JsonSink::new(std::io::sink(), *clock);
    let mut n = 0u64;
    let mut sink = |r: Record| {
        json.record(r);
        n += 1;
    };
    for raw in &w.records {
        pipeline.on_raw(raw, &mut sink);
    }
    black_box(json.flush());
    n
}

fn bench_pipeline(c: &mut Criterion) {
    let clock = Clock::new();
    for w in workloads() {
        assert_eq!(run_pass(&w), w.exchanges, "{}: every exchange comes out", w.name);
        let mut g = c.benchmark_group(format!("pipeline/{}", w.name));
        g.throughput(Throughput::Elements(w.exchanges));
        g.bench_function("exchanges", |b| b.iter(|| run_pass(&w)));
        g.bench_function("exchanges+json", |b| b.iter(|| run_pass_json(&w, &clock)));
        g.throughput(Throughput::Bytes(w.bytes));
        g.bench_function("record-bytes", |b| b.iter(|| run_pass(&w)));
        g.finish();
    }
}

/// Runs `pass` for about `secs` (after one warm-up pass); the median pass rate.
fn fixed(w: &Workload, secs: f64, pass: impl Fn(&Workload) -> u64) -> (f64, usize) {
    assert_eq!(pass(w), w.exchanges, "{}: every exchange comes out", w.name);
    let mut rates = Vec::new();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs_f64(secs) || rates.len() < 3 {
        let t = Instant::now();
        black_box(pass(w));
        rates.push(t.elapsed().as_secs_f64());
    }
    rates.sort_by(f64::total_cmp);
    (rates[rates.len() / 2], rates.len())
}

fn main() {
    if let Ok(secs) = std::env::var("L7TRACE_BENCH_FIXED") {
        let secs: f64 = secs.parse().unwrap_or(2.0);
        let clock = Clock::new();
        for w in workloads() {
            let (t, passes) = fixed(&w, secs, run_pass);
            let (tj, _) = fixed(&w, secs, |w| run_pass_json(w, &clock));
            println!(
                "pipeline-fixed: {{\"workload\":\"{}\",\"exchanges_per_pass\":{},\"record_bytes_per_pass\":{},\
                 \"passes\":{},\"exchanges_per_sec\":{:.0},\"mb_per_sec\":{:.1},\"exchanges_per_sec_with_json\":{:.0}}}",
                w.name,
                w.exchanges,
                w.bytes,
                passes,
                w.exchanges as f64 / t,
                w.bytes as f64 / t / 1e6,
                w.exchanges as f64 / tj,
            );
        }
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).sample_size(20);
    targets = bench_pipeline
}
