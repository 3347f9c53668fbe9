//! NDJSON: one object per exchange per line, flushed per line.
use std::io::{self, Write};

use base64::Engine as _;

use super::{rfc3339_into, Clock, Flow, Sink};
use crate::{
    pipeline::{comm_str, Record},
    protocols::{Message, Role, StartLine},
};

// The line is written by hand rather than through serde: one record is a few hundred
// bytes of fixed shape plus bodies, and serde_json's per-byte string escaping and the
// formatting machinery were most of the cost of `--json` (see `benches/pipeline.rs`).

fn version(v: u8) -> &'static str {
    match v {
        0 => "HTTP/1.0",
        _ => "HTTP/1.1",
    }
}

/// The JSON line for a record, without the newline.
pub fn to_line(r: &Record, clock: &Clock) -> String {
    let resp_body = r.exchange.response.as_ref().map_or(0, |m| m.body.len());
    let mut out = Vec::with_capacity(1024 + r.exchange.request.body.len() + resp_body);
    write_record(&mut out, r, clock);
    // Every byte written is ASCII or comes from a `&str`.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Appends the record's JSON object (no newline) to `out`.
pub fn write_record(out: &mut Vec<u8>, r: &Record, clock: &Clock) {
    let ex = &r.exchange;
    let req = &ex.request;
    let resp = ex.response.as_ref();
    out.extend_from_slice(b"{\"ts\":\"");
    rfc3339_into(out, clock.wall(req.first_ts_ns));
    out.extend_from_slice(b"\",\"source\":\"");
    out.extend_from_slice(r.source.as_str().as_bytes());
    out.extend_from_slice(b"\",\"role\":");
    match r.role {
        Some(Role::Client) => out.extend_from_slice(b"\"client\""),
        Some(Role::Server) => out.extend_from_slice(b"\"server\""),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"pid\":");
    opt_num(out, r.process.map(|p| u64::from(p.pid)));
    out.extend_from_slice(b",\"tid\":");
    opt_num(out, r.process.map(|p| u64::from(p.tid)));
    out.extend_from_slice(b",\"comm\":");
    match &r.process {
        Some(p) => string(out, &String::from_utf8_lossy(comm_str(&p.comm))),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"src\":\"");
    addr(out, r.client);
    out.extend_from_slice(b"\",\"dst\":\"");
    addr(out, r.server);
    out.extend_from_slice(b"\",\"request\":");
    message(out, req);
    out.extend_from_slice(b",\"response\":");
    match resp {
        Some(m) => message(out, m),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"latency_us\":");
    opt_num(out, resp.map(|m| m.last_ts_ns.saturating_sub(req.first_ts_ns) / 1000));
    out.extend_from_slice(b",\"ttfb_us\":");
    opt_num(out, resp.map(|m| m.first_ts_ns.saturating_sub(req.first_ts_ns) / 1000));
    out.extend_from_slice(b",\"complete\":");
    boolean(out, ex.complete());
    out.extend_from_slice(b",\"lost_bytes\":");
    num(out, ex.lost_bytes());
    if let Some(note) = ex.note {
        out.extend_from_slice(b",\"note\":");
        string(out, note.as_str());
    }
    out.push(b'}');
}

fn message(out: &mut Vec<u8>, m: &Message) {
    out.push(b'{');
    match &m.start {
        StartLine::Request { method, target, version: v } => {
            out.extend_from_slice(b"\"method\":");
            string(out, method);
            out.extend_from_slice(b",\"target\":");
            string(out, &String::from_utf8_lossy(target));
            out.extend_from_slice(b",\"version\":\"");
            out.extend_from_slice(version(*v).as_bytes());
            out.push(b'"');
        }
        StartLine::Response { version: v, status, reason } => {
            out.extend_from_slice(b"\"version\":\"");
            out.extend_from_slice(version(*v).as_bytes());
            out.extend_from_slice(b"\",\"status\":");
            num(out, u64::from(*status));
            out.extend_from_slice(b",\"reason\":");
            string(out, &String::from_utf8_lossy(reason));
        }
    }
    out.extend_from_slice(b",\"headers\":[");
    for (i, (n, v)) in m.headers.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.push(b'[');
        string(out, &String::from_utf8_lossy(n));
        out.push(b',');
        string(out, &String::from_utf8_lossy(v));
        out.push(b']');
    }
    out.extend_from_slice(b"],\"body_size\":");
    num(out, m.body_size);
    out.extend_from_slice(b",\"body\":");
    let base64 = match std::str::from_utf8(&m.body) {
        Ok(s) => {
            string(out, s);
            false
        }
        Err(_) => {
            // Base64 needs no escaping.
            out.push(b'"');
            let at = out.len();
            out.resize(at + m.body.len().div_ceil(3) * 4, 0);
            let n = base64::engine::general_purpose::STANDARD.encode_slice(&m.body, &mut out[at..]).unwrap_or(0);
            out.truncate(at + n);
            out.push(b'"');
            true
        }
    };
    out.extend_from_slice(b",\"body_truncated\":");
    boolean(out, m.body_truncated);
    if base64 {
        out.extend_from_slice(b",\"body_encoding\":\"base64\"");
    }
    out.push(b'}');
}

/// `ip:port`, or `[v6]:port`: no character that needs escaping.
fn addr(out: &mut Vec<u8>, a: std::net::SocketAddr) {
    match a {
        std::net::SocketAddr::V4(v4) => {
            for (i, octet) in v4.ip().octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                num(out, u64::from(octet));
            }
            out.push(b':');
            num(out, u64::from(v4.port()));
        }
        v6 => {
            let _ = write!(out, "{v6}");
        }
    }
}

fn num(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

fn opt_num(out: &mut Vec<u8>, n: Option<u64>) {
    match n {
        Some(n) => num(out, n),
        None => out.extend_from_slice(b"null"),
    }
}

fn boolean(out: &mut Vec<u8>, b: bool) {
    out.extend_from_slice(if b { b"true" } else { b"false" });
}

/// `s` as a JSON string: quotes, backslashes and control characters escaped as serde_json
/// escapes them, everything else (UTF-8 included) as is.
fn string(out: &mut Vec<u8>, s: &str) {
    let b = s.as_bytes();
    out.reserve(b.len() + 2);
    out.push(b'"');
    let mut done = 0;
    let mut i = 0;
    // Eight bytes at a time while none of them needs escaping.
    while i + 8 <= b.len() {
        let w = u64::from_le_bytes(b[i..i + 8].try_into().unwrap_or([0; 8]));
        if !needs_escape(w) {
            i += 8;
            continue;
        }
        for j in i..i + 8 {
            if let Some(esc) = escape(b[j]) {
                out.extend_from_slice(&b[done..j]);
                push_escape(out, b[j], esc);
                done = j + 1;
            }
        }
        i += 8;
    }
    for j in i..b.len() {
        if let Some(esc) = escape(b[j]) {
            out.extend_from_slice(&b[done..j]);
            push_escape(out, b[j], esc);
            done = j + 1;
        }
    }
    out.extend_from_slice(&b[done..]);
    out.push(b'"');
}

/// Whether any byte of `w` is below 0x20, '"' or '\\' (exact, as a whole-word test).
#[inline]
fn needs_escape(w: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let has_zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH != 0;
    let below_space = w.wrapping_sub(ONES * 0x20) & !w & HIGH != 0;
    below_space || has_zero(w ^ (ONES * b'"' as u64)) || has_zero(w ^ (ONES * b'\\' as u64))
}

#[inline]
fn escape(c: u8) -> Option<u8> {
    match c {
        b'"' => Some(b'"'),
        b'\\' => Some(b'\\'),
        b'\n' => Some(b'n'),
        b'\r' => Some(b'r'),
        b'\t' => Some(b't'),
        0x08 => Some(b'b'),
        0x0c => Some(b'f'),
        0..=0x1f => Some(b'u'),
        _ => None,
    }
}

fn push_escape(out: &mut Vec<u8>, c: u8, esc: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'\\');
    out.push(esc);
    if esc == b'u' {
        out.extend_from_slice(&[b'0', b'0', HEX[(c >> 4) as usize], HEX[(c & 0xf) as usize]]);
    }
}

pub struct JsonSink<W: Write> {
    out: W,
    /// The line being built, reused from record to record.
    line: Vec<u8>,
    clock: Clock,
    closed: bool,
    /// Polled for the reader going away (`| head -1`) even while nothing is written.
    watch_fd: Option<i32>,
}

impl<W: Write> JsonSink<W> {
    pub fn new(out: W, clock: Clock) -> Self {
        JsonSink { out, line: Vec::with_capacity(4096), clock, closed: false, watch_fd: None }
    }

    /// Notice when the reader of `fd` (a pipe) goes away, between records too.
    pub fn watch(mut self, fd: i32) -> Self {
        self.watch_fd = Some(fd);
        self
    }

    /// Writes and flushes one line. An error (EPIPE when the reader went away) ends output.
    /// Writes one line; `flush` sends it.
    pub fn write(&mut self, r: &Record) -> io::Result<()> {
        self.line.clear();
        write_record(&mut self.line, r, &self.clock);
        self.line.push(b'\n');
        self.out.write_all(&self.line)
    }
}

impl<W: Write> Sink for JsonSink<W> {
    fn record(&mut self, r: Record) -> Flow {
        if self.closed {
            return Flow::Quit;
        }
        if r.in_flight {
            return Flow::Continue;
        }
        if self.write(&r).is_err() {
            // The reader went away (`| head -1`): finish quietly.
            self.closed = true;
            return Flow::Quit;
        }
        Flow::Continue
    }

    fn wants_summary(&self) -> bool {
        !self.closed
    }

    fn tick(&mut self, _now_ns: u64, _counters: &super::Counters) -> Flow {
        if let Some(fd) = self.watch_fd {
            let mut p = libc::pollfd { fd, events: 0, revents: 0 };
            // SAFETY: one valid pollfd, no wait.
            if unsafe { libc::poll(&mut p, 1, 0) } == 1 && p.revents & (libc::POLLERR | libc::POLLHUP) != 0 {
                self.closed = true;
            }
        }
        if self.closed { Flow::Quit } else { Flow::Continue }
    }

    fn flush(&mut self) -> Flow {
        if !self.closed && self.out.flush().is_err() {
            self.closed = true;
        }
        if self.closed { Flow::Quit } else { Flow::Continue }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(s: &str) -> String {
        let mut out = Vec::new();
        string(&mut out, s);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn addresses_as_display_writes_them() {
        for a in ["127.0.0.1:80", "0.0.0.0:0", "255.255.255.255:65535", "[::1]:8080", "[fe80::1%2]:1"] {
            let Ok(a) = a.parse::<std::net::SocketAddr>() else { continue };
            let mut out = Vec::new();
            addr(&mut out, a);
            assert_eq!(String::from_utf8(out).unwrap(), a.to_string());
        }
    }

    #[test]
    fn word_test_agrees_with_the_byte_test() {
        for c in 0..=255u8 {
            for k in 0..8 {
                let mut w = [b'a'; 8];
                w[k] = c;
                assert_eq!(needs_escape(u64::from_le_bytes(w)), escape(c).is_some(), "byte {c:#x} at {k}");
            }
        }
        // Pseudo-random words, many bytes near the boundaries.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let bytes = x.to_le_bytes();
            let want = bytes.iter().any(|&b| escape(b).is_some());
            assert_eq!(needs_escape(x), want, "{bytes:?}");
        }
    }

    #[test]
    fn strings_match_serde_json_byte_for_byte() {
        let mut cases: Vec<String> = vec![
            String::new(),
            "plain ascii text that is longer than eight bytes".into(),
            "quote \" backslash \\ slash / tab \t nl \n cr \r bs \u{8} ff \u{c}".into(),
            "\u{0}\u{1}\u{1f}\u{7f} escape \u{1b}[31mred\u{1b}[0m".into(),
            "ünïcödé ✓ 𝄞 and \"quotes\" at odd offsets\\".into(),
            String::from_utf8_lossy(b"bad \xff\xfe utf8 \xc3").into_owned(),
        ];
        cases.extend((0..=0x7fu8).map(|c| format!("{}{}{}", "x".repeat(c as usize % 9), c as char, "y".repeat(7))));
        for s in &cases {
            let ours = encoded(s);
            assert_eq!(ours, serde_json::to_string(s).unwrap(), "{s:?}");
            assert_eq!(serde_json::from_str::<String>(&ours).unwrap(), *s);
        }
    }
}
