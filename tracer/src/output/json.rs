//! NDJSON: one object per exchange per line, flushed per line.
use std::io::{self, Write};
use std::mem::MaybeUninit;

use super::{fraction, to_the_second, Clock, Flow, Sink};
use crate::{
    pipeline::{comm_str, Record},
    protocols::{version_name, Headers, Message, Role, StartLine},
};

// The line is written by hand rather than through serde: one record is a few hundred
// bytes of fixed shape plus bodies, and serde_json's per-byte string escaping and the
// formatting machinery were most of the cost of `--json` (see `benches/pipeline.rs`).

/// The version as a JSON value: null when the start line was cut before it.
fn version(out: &mut Vec<u8>, v: u8) {
    match version_name(v) {
        Some(name) => {
            out.push(b'"');
            out.extend_from_slice(name.as_bytes());
            out.push(b'"');
        }
        None => out.extend_from_slice(b"null"),
    }
}

/// The JSON line for a record, without the newline.
pub fn to_line(r: &Record, clock: &Clock) -> String {
    let resp_body = r.exchange.response.as_ref().map_or(0, |m| m.body.len());
    let mut out = Vec::with_capacity(1024 + r.exchange.request.body.len() + resp_body);
    write_record(&mut out, r, clock, &mut Stamps::default());
    // Every byte written is ASCII or comes from a `&str`.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// The date and time to the second of the last timestamp written: records come many a
/// second, and the calendar arithmetic was most of a timestamp's cost.
#[derive(Default)]
struct Stamps {
    secs: Option<u64>,
    text: [u8; 19],
}

impl Stamps {
    /// RFC 3339 UTC with microseconds, as `rfc3339` writes it.
    fn write(&mut self, out: &mut Vec<u8>, ns: u64) {
        let secs = ns / 1_000_000_000;
        if self.secs != Some(secs) {
            self.text = to_the_second(secs);
            self.secs = Some(secs);
        }
        out.extend_from_slice(&self.text);
        out.extend_from_slice(&fraction((ns % 1_000_000_000 / 1000) as u32));
    }
}

/// Appends the record's JSON object (no newline) to `out`.
fn write_record(out: &mut Vec<u8>, r: &Record, clock: &Clock, stamps: &mut Stamps) {
    let ex = &r.exchange;
    let req = &ex.request;
    let resp = ex.response.as_ref();
    out.extend_from_slice(b"{\"ts\":\"");
    stamps.write(out, clock.wall_ns(req.first_ts_ns));
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
        Some(p) => bytes(out, comm_str(&p.comm)),
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
    opt_num(out, resp.map(|m| m.latency_us(req)));
    out.extend_from_slice(b",\"ttfb_us\":");
    opt_num(out, resp.map(|m| m.ttfb_us(req)));
    out.extend_from_slice(b",\"complete\":");
    boolean(out, ex.complete());
    out.extend_from_slice(b",\"lost_bytes\":");
    num(out, ex.lost_bytes());
    if let Some(note) = ex.note {
        out.extend_from_slice(b",\"note\":");
        bytes(out, note.as_str().as_bytes());
    }
    if !ex.interim.is_empty() {
        out.extend_from_slice(b",\"interim\":[");
        for (i, m) in ex.interim.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.push(b'{');
            head(out, m);
            out.extend_from_slice(b",\"ttfb_us\":");
            num(out, m.ttfb_us(req));
            out.push(b'}');
        }
        out.push(b']');
    }
    out.push(b'}');
}

fn message(out: &mut Vec<u8>, m: &Message) {
    out.push(b'{');
    head(out, m);
    out.extend_from_slice(b",\"body_size\":");
    num(out, m.body_size);
    out.extend_from_slice(b",\"body\":");
    // Not UTF-8 (nothing was written then): base64, which needs no escaping. A body kept
    // short of its size (`--max-body`, or a hole) may end inside a character of UTF-8 text:
    // those last bytes of a character cut short are left out, and the text stays text.
    let text = if m.body_truncated { &m.body[..without_cut_char(&m.body)] } else { &m.body[..] };
    let base64 = !quoted(out, text, false);
    if base64 {
        out.push(b'"');
        super::base64::encode_into(out, &m.body);
        out.push(b'"');
    }
    out.extend_from_slice(b",\"body_truncated\":");
    boolean(out, m.body_truncated);
    if base64 {
        out.extend_from_slice(b",\"body_encoding\":\"base64\"");
    }
    if !m.trailers.is_empty() {
        out.extend_from_slice(b",\"trailers\":");
        fields(out, &m.trailers);
    }
    out.push(b'}');
}

/// The start line and header fields of a message, as JSON members.
fn head(out: &mut Vec<u8>, m: &Message) {
    match &m.start {
        StartLine::Request { method, target, version: v } => {
            out.extend_from_slice(b"\"method\":");
            bytes(out, method.as_bytes());
            out.extend_from_slice(b",\"target\":");
            bytes(out, target);
            out.extend_from_slice(b",\"version\":");
            version(out, *v);
        }
        StartLine::Response { version: v, status, reason } => {
            out.extend_from_slice(b"\"version\":");
            version(out, *v);
            out.extend_from_slice(b",\"status\":");
            num(out, u64::from(*status));
            out.extend_from_slice(b",\"reason\":");
            bytes(out, reason);
        }
    }
    out.extend_from_slice(b",\"headers\":");
    fields(out, &m.headers);
}

/// `[[name, value], ...]`
fn fields(out: &mut Vec<u8>, f: &Headers) {
    out.push(b'[');
    for (i, (n, v)) in f.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        field(out, n, v);
    }
    out.push(b']');
}

/// Length of `b` without a UTF-8 character begun but cut short at its end (at most 3
/// bytes: a lead byte and the continuation bytes that came with it, which could still
/// complete a valid character; bytes that never could stay, and the body is base64).
fn without_cut_char(b: &[u8]) -> usize {
    let n = b.len();
    let Some(lead) = (n.saturating_sub(3)..n).rev().find(|&i| b[i] & 0xc0 != 0x80) else {
        return n;
    };
    match std::str::from_utf8(&b[lead..]) {
        // Valid so far, the character unfinished.
        Err(e) if e.valid_up_to() == 0 && e.error_len().is_none() => lead,
        _ => n,
    }
}

/// `ip:port`, or `[v6]:port`: no character that needs escaping.
fn addr(out: &mut Vec<u8>, a: std::net::SocketAddr) {
    match a {
        std::net::SocketAddr::V4(v4) => {
            for (i, octet) in v4.ip().octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                // By hand: a general number writer ends in a copy call per octet.
                if octet >= 100 {
                    out.push(b'0' + octet / 100);
                }
                if octet >= 10 {
                    out.push(b'0' + octet / 10 % 10);
                }
                out.push(b'0' + octet % 10);
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

/// Bytes as a JSON string: quotes, backslashes and control characters escaped as
/// serde_json escapes them, other UTF-8 as is, invalid UTF-8 as U+FFFD (as
/// `String::from_utf8_lossy` replaces it).
fn bytes(out: &mut Vec<u8>, b: &[u8]) {
    string(out, b, short_clean(b));
}

/// As `bytes`, `clean` being `short_clean(b)`, known already: most strings of a record are
/// short (header names and values, method, reason), and those of up to 32 bytes with
/// nothing to escape are written whole.
#[inline(always)]
fn string(out: &mut Vec<u8>, b: &[u8], clean: bool) {
    if clean {
        with_room(out, b.len() + 2, |w| {
            w.byte(b'"');
            w.put_short(b);
            w.byte(b'"');
        });
    } else {
        quoted(out, b, true);
    }
}

/// `b` as a JSON string, in one pass that both escapes and checks UTF-8: plain ASCII runs
/// are found sixteen (in long runs 64) bytes at a time and copied whole; at the first
/// other byte the rest is validated once, and valid runs are then copied the same way.
/// Invalid sequences become U+FFFD when `lossy`; otherwise nothing is written and the
/// answer is false.
fn quoted(out: &mut Vec<u8>, b: &[u8], lossy: bool) -> bool {
    let start = out.len();
    out.reserve(b.len() + 2);
    out.push(b'"');
    let mut i = 0;
    // b[i..valid_to] is known to be valid UTF-8.
    let mut valid_to = 0;
    while i < b.len() {
        let j = if i < valid_to { i + plain::<false>(&b[i..valid_to]) } else { i + plain::<true>(&b[i..]) };
        out.extend_from_slice(&b[i..j]);
        let Some(&c) = b.get(j) else { break };
        if let Some(esc) = escape(c) {
            push_escape(out, c, esc);
            i = j + 1;
        } else if c == 0xc2 && j < valid_to {
            // Inside a valid run, so a continuation byte follows. U+0080..U+009F are the C1
            // controls (0x9b is CSI): escaped, so that `l7trace --json` on a terminal that
            // honours them cannot be driven by traffic. Others are copied.
            match b.get(j + 1) {
                Some(&next) if next <= 0x9f => push_escape(out, next, b'u'),
                _ => out.extend_from_slice(&b[j..(j + 2).min(b.len())]),
            }
            i = j + 2;
        } else {
            // Non-ASCII (inside a valid run only escapes stop the scan): validate from
            // here to the next invalid sequence, in one call.
            match std::str::from_utf8(&b[j..]) {
                Ok(_) => valid_to = b.len(),
                Err(e) if e.valid_up_to() > 0 => valid_to = j + e.valid_up_to(),
                Err(e) => {
                    if !lossy {
                        out.truncate(start);
                        return false;
                    }
                    out.extend_from_slice("\u{fffd}".as_bytes());
                    // An incomplete sequence at the end is one replacement, as in
                    // `from_utf8_lossy`.
                    i = e.error_len().map_or(b.len(), |n| j + n);
                    continue;
                }
            }
            i = j;
        }
    }
    out.push(b'"');
    true
}

/// A header field as `["name","value"]`. Nearly every name and value is short with
/// nothing to escape: such a pair is checked a word at a time and written with a few
/// stores into room reserved for it, without a copy call or a capacity check per piece.
fn field(out: &mut Vec<u8>, n: &[u8], v: &[u8]) {
    let (clean_n, clean_v) = (short_clean(n), short_clean(v));
    if clean_n && clean_v {
        with_room(out, n.len() + v.len() + 7, |w| {
            w.put(b"[\"");
            w.put_short(n);
            w.put(b"\",\"");
            w.put_short(v);
            w.put(b"\"]");
        });
    } else {
        out.push(b'[');
        string(out, n, clean_n);
        out.push(b',');
        string(out, v, clean_v);
        out.push(b']');
    }
}

/// At most 32 bytes, none to escape or outside ASCII; looked at as one or two 16-byte
/// blocks (or a word), made of (possibly overlapping) words from the start and the end,
/// without a per-byte loop.
#[inline(always)]
fn short_clean(b: &[u8]) -> bool {
    if let (Some(lo), Some(hi)) = (b.first_chunk::<16>(), b.last_chunk::<16>()) {
        // Dates, media types, user agents: past 16 bytes but seldom past 32.
        return b.len() <= 32 && !block_stops(lo) && !block_stops(hi);
    }
    if let (Some(lo), Some(hi)) = (b.first_chunk::<8>(), b.last_chunk::<8>()) {
        let mut both = [0u8; 16];
        both[..8].copy_from_slice(lo);
        both[8..].copy_from_slice(hi);
        return !block_stops(&both);
    }
    if let (Some(lo), Some(hi)) = (b.first_chunk::<4>(), b.last_chunk::<4>()) {
        return !word_stops(u64::from(u32::from_le_bytes(*lo)) | u64::from(u32::from_le_bytes(*hi)) << 32);
    }
    !b.iter().any(|&c| STOP_ASCII[c as usize])
}

/// Whether a byte of `b` is below 0x20, '"', '\\' or 0x80 and above.
#[inline(always)]
fn block_stops(b: &[u8; 16]) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::*;
        // SAFETY: SSE2 is part of the x86_64 baseline; the load reads the 16 bytes of `b`
        // (unaligned).
        unsafe { _mm_movemask_epi8(ascii_stops(_mm_loadu_si128(b.as_ptr().cast()))) != 0 }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let (lo, hi) = b.split_at(8);
        let word = |w: &[u8]| u64::from_le_bytes(w.try_into().unwrap_or_default());
        word_stops(word(lo)) || word_stops(word(hi))
    }
}

/// Per byte of `v`: all ones where it is below 0x20, '"', '\\' or 0x80 and above.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn ascii_stops(v: std::arch::x86_64::__m128i) -> std::arch::x86_64::__m128i {
    use std::arch::x86_64::*;
    // SAFETY: SSE2 is part of the x86_64 baseline; register operations only.
    unsafe {
        // Signed, `v < 0x20` also holds for every byte of 0x80 and above (0xc2 included).
        let low = _mm_cmplt_epi8(v, _mm_set1_epi8(0x20));
        let quote = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
        let backslash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
        _mm_or_si128(low, _mm_or_si128(quote, backslash))
    }
}

/// Room reserved at the end of the output, written front to back: its first `at` bytes
/// are written, and become part of the output when `with_room` returns.
struct Room<'a> {
    buf: &'a mut [MaybeUninit<u8>],
    at: usize,
}

impl Room<'_> {
    #[inline(always)]
    fn put(&mut self, b: &[u8]) {
        self.buf[self.at..self.at + b.len()].write_copy_of_slice(b);
        self.at += b.len();
    }

    #[inline(always)]
    fn byte(&mut self, c: u8) {
        self.buf[self.at].write(c);
        self.at += 1;
    }

    /// `b`, of at most 32 bytes, as one or two fixed-size copies rather than a copy call.
    #[inline(always)]
    fn put_short(&mut self, b: &[u8]) {
        match b.len() {
            17..=32 => self.put_overlapping::<16>(b),
            8..=16 => self.put_overlapping::<8>(b),
            4..=7 => self.put_overlapping::<4>(b),
            _ => b.iter().for_each(|&c| self.byte(c)),
        }
    }

    /// `b`, of `W` to `2W` bytes: a word from its start and one ending at its end, which
    /// together cover it.
    #[inline(always)]
    fn put_overlapping<const W: usize>(&mut self, b: &[u8]) {
        let (Some(lo), Some(hi)) = (b.first_chunk::<W>(), b.last_chunk::<W>()) else {
            return self.put(b);
        };
        let (at, n) = (self.at, b.len());
        self.buf[at..at + W].write_copy_of_slice(lo);
        self.buf[at + n - W..at + n].write_copy_of_slice(hi);
        self.at += n;
    }
}

/// Reserves `room` bytes at the end of `out` and lets `write` fill them (a write past
/// them panics); what was written is appended.
#[inline(always)]
fn with_room(out: &mut Vec<u8>, room: usize, write: impl FnOnce(&mut Room<'_>)) {
    out.reserve(room);
    let mut w = Room { buf: &mut out.spare_capacity_mut()[..room], at: 0 };
    write(&mut w);
    let n = w.at;
    // SAFETY: `Room` writes its buffer, the spare capacity from `out.len()` on, front to
    // back (every write ends at the new `at`, every byte before it was written), so the
    // `n` bytes after `out.len()` are initialized.
    unsafe { out.set_len(out.len() + n) };
}

/// Whether a byte of `w` is below 0x20, '"', '\\' or 0x80 and above (the exact "any byte"
/// tests: a borrow can only spread above a byte that already matched).
#[inline(always)]
fn word_stops(w: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let quote = w ^ (ONES * b'"' as u64);
    let backslash = w ^ (ONES * b'\\' as u64);
    let low = w.wrapping_sub(ONES * 0x20) & !w;
    let quote = quote.wrapping_sub(ONES) & !quote;
    let backslash = backslash.wrapping_sub(ONES) & !backslash;
    (low | quote | backslash | w) & HIGH != 0
}

/// Length of the prefix of `b` that is copied as is: no byte below 0x20, no '"', no '\\',
/// no 0xc2 (which starts the C1 controls' encodings), and when `ASCII`, no byte of 0x80 or
/// above.
#[inline]
fn plain<const ASCII: bool>(b: &[u8]) -> usize {
    #[cfg(target_arch = "x86_64")]
    if b.len() >= 16 {
        use std::arch::x86_64::*;
        // SAFETY: SSE2 is part of the x86_64 baseline; every load reads 16 bytes inside
        // `b` (at + 16 <= b.len(); at + 64 <= b.len() for four blocks), unaligned loads.
        unsafe {
            // Per byte of the 16 at `at`: all ones where `plain` stops.
            let stops_v = |at: usize| {
                let v = _mm_loadu_si128(b.as_ptr().add(at).cast());
                if ASCII {
                    ascii_stops(v)
                } else {
                    let quote = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
                    let backslash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
                    let low = _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1f)), v);
                    let c1 = _mm_cmpeq_epi8(v, _mm_set1_epi8(0xc2u8 as i8));
                    _mm_or_si128(_mm_or_si128(low, c1), _mm_or_si128(quote, backslash))
                }
            };
            let stops = |at: usize| _mm_movemask_epi8(stops_v(at)) as u32;
            let mut at = 0;
            // Long runs (bodies) four blocks at a time, with one test for the four.
            while at + 64 <= b.len() {
                let any = _mm_or_si128(_mm_or_si128(stops_v(at), stops_v(at + 16)), _mm_or_si128(stops_v(at + 32), stops_v(at + 48)));
                if _mm_movemask_epi8(any) != 0 {
                    break;
                }
                at += 64;
            }
            while at + 16 <= b.len() {
                let m = stops(at);
                if m != 0 {
                    return at + m.trailing_zeros() as usize;
                }
                at += 16;
            }
            if at == b.len() {
                return at;
            }
            // The partial last block: one load ending at the end of `b`. The bytes it
            // shares with the previous block are plain, so their bits are clear.
            let last = b.len() - 16;
            let m = stops(last);
            return if m != 0 { last + m.trailing_zeros() as usize } else { b.len() };
        }
    }
    let stop = if ASCII { &STOP_ASCII } else { &STOP_ESCAPE };
    b.iter().position(|&c| stop[c as usize]).unwrap_or(b.len())
}

/// Per byte: whether it needs escaping.
static STOP_ESCAPE: [bool; 256] = stop_table(false);
/// Per byte: whether it needs escaping or is not ASCII.
static STOP_ASCII: [bool; 256] = stop_table(true);

const fn stop_table(non_ascii: bool) -> [bool; 256] {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        t[c] = c < 0x20 || c == b'"' as usize || c == b'\\' as usize || c == 0xc2 || (non_ascii && c >= 0x80);
        c += 1;
    }
    t
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

/// Lines waiting are written out once they reach this size, and at every `flush` (once
/// per read of the kernel buffers).
const SEND_AT: usize = 64 << 10;

pub struct JsonSink<W: Write> {
    out: W,
    /// Lines not yet written: records are serialised straight into it, so a line is
    /// copied once, by the write(2) that sends it.
    pending: Vec<u8>,
    clock: Clock,
    stamps: Stamps,
    closed: bool,
    /// The error that ended output, when it was not the reader going away (EPIPE).
    failed: Option<io::Error>,
    /// Polled for the reader going away (`| head -1`) even while nothing is written.
    watch_fd: Option<i32>,
}

impl<W: Write> JsonSink<W> {
    pub fn new(out: W, clock: Clock) -> Self {
        JsonSink {
            out,
            pending: Vec::with_capacity(SEND_AT + 4096),
            clock,
            stamps: Stamps::default(),
            closed: false,
            failed: None,
            watch_fd: None,
        }
    }

    /// Notice when the reader of `fd` (a pipe) goes away, between records too.
    pub fn watch(mut self, fd: i32) -> Self {
        self.watch_fd = Some(fd);
        self
    }

    /// Adds one line; it is written out with the next batch (`flush`, or `SEND_AT` bytes).
    /// An error (EPIPE when the reader went away) ends output.
    pub fn write(&mut self, r: &Record) -> io::Result<()> {
        write_record(&mut self.pending, r, &self.clock, &mut self.stamps);
        self.pending.push(b'\n');
        if self.pending.len() >= SEND_AT {
            self.send()?;
        }
        Ok(())
    }

    fn send(&mut self) -> io::Result<()> {
        let result = self.out.write_all(&self.pending);
        self.pending.clear();
        result
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
        if let Err(e) = self.write(&r) {
            self.close(e);
            return Flow::Quit;
        }
        Flow::Continue
    }

    fn wants_summary(&self) -> bool {
        !self.closed || self.failed.is_some()
    }

    fn failure(&self) -> Option<String> {
        self.failed.as_ref().map(|e| format!("writing the JSON stream: {e}"))
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
        if !self.closed {
            if let Err(e) = self.send().and_then(|()| self.out.flush()) {
                self.close(e);
            }
        }
        if self.closed { Flow::Quit } else { Flow::Continue }
    }
}

impl<W: Write> JsonSink<W> {
    /// Output ended with `e`: quietly when the reader went away (`| head -1`), else kept
    /// to be said (a full disk; a reader stalled when tracing stopped).
    fn close(&mut self, e: io::Error) {
        self.closed = true;
        if !matches!(e.kind(), io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset) {
            self.failed = Some(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// serde_json's string, with the C1 controls escaped as ours are (serde_json leaves
    /// them raw: valid JSON, but bytes a terminal may act on).
    fn serde_with_c1_escaped(s: &str) -> String {
        serde_json::to_string(s)
            .unwrap()
            .chars()
            .map(|c| if ('\u{80}'..='\u{9f}').contains(&c) { format!("\\u{:04x}", c as u32) } else { c.to_string() })
            .collect()
    }

    #[test]
    fn c1_controls_are_escaped_and_other_two_byte_characters_kept() {
        let s = "a\u{9b}[31mb\u{85}c\u{a0}d\u{80}\u{9f}é\u{c2}";
        let ours = encoded(s);
        assert_eq!(ours, "\"a\\u009b[31mb\\u0085c\u{a0}d\\u0080\\u009fé\u{c2}\"");
        assert_eq!(serde_json::from_str::<String>(&ours).unwrap(), s);
        let long = format!("{}{s}{}", "x".repeat(40), "y".repeat(40));
        assert_eq!(serde_json::from_str::<String>(&encoded(&long)).unwrap(), long);
        assert!(!encoded(&long).contains('\u{9b}'));
    }

    fn encoded(s: &str) -> String {
        let mut out = Vec::new();
        bytes(&mut out, s.as_bytes());
        String::from_utf8(out).unwrap()
    }

    fn message(start: StartLine, headers: &[(&str, &[u8])], body: &[u8]) -> Message {
        Message {
            start,
            headers: headers.iter().map(|(n, v)| (n.as_bytes(), *v)).collect(),
            trailers: Default::default(),
            body_size: body.len() as u64 + 10,
            body: body.to_vec(),
            body_truncated: true,
            first_ts_ns: 5_000_000,
            last_ts_ns: 9_000_000,
            process: Default::default(),
            complete: true,
            lost_bytes: 0,
        }
    }

    #[test]
    fn record_lines_have_every_key_with_its_json_type() {
        use crate::pipeline::{Process, Source};
        use crate::protocols::{Exchange, Note};
        let req = message(
            StartLine::Request { method: "GET".into(), target: b"/a\"b\x1b[2J\xff".to_vec(), version: 0 },
            &[("Host", b"x"), ("X-Bin", b"\x00\xfe")],
            b"",
        );
        let mut resp = message(
            StartLine::Response { version: 1, status: 200, reason: b"OK"[..].into() },
            &[("Content-Length", b"14")],
            b"\xff\x00binary",
        );
        resp.trailers.push(b"Grpc-Status", b"0");
        resp.trailers.push(b"X-Esc", b"\x1b[2J");
        let mut comm = [0u8; 16];
        comm[..4].copy_from_slice(b"curl");
        let mut r = Record {
            source: Source::Syscall,
            role: Some(Role::Server),
            process: Some(Process { pid: 42, tid: 43, comm }),
            client: "[::1]:5000".parse().unwrap(),
            server: "127.0.0.1:80".parse().unwrap(),
            exchange: Exchange { request: req.clone(), response: Some(resp), note: Some(Note::Gap), interim: Vec::new() },
            conn: 1,
            in_flight: false,
        };
        let clock = Clock::new();
        let v: serde_json::Value = serde_json::from_str(&to_line(&r, &clock)).unwrap();
        assert_eq!(v["role"], "server");
        assert_eq!(v["pid"], 42);
        assert_eq!(v["tid"], 43);
        assert_eq!(v["comm"], "curl");
        assert_eq!(v["src"], "[::1]:5000");
        assert_eq!(v["dst"], "127.0.0.1:80");
        assert_eq!(v["source"], "syscall");
        assert_eq!(v["note"], "gap");
        assert_eq!(v["latency_us"], 4000);
        assert_eq!(v["ttfb_us"], 0);
        assert_eq!(v["complete"], true);
        assert_eq!(v["lost_bytes"], 0);
        assert!(v["ts"].as_str().unwrap().ends_with('Z'));
        assert_eq!(v["request"]["method"], "GET");
        assert_eq!(v["request"]["target"], "/a\"b\u{1b}[2J\u{fffd}");
        assert_eq!(v["request"]["version"], "HTTP/1.0");
        assert_eq!(v["request"]["headers"][1][1], "\u{0}\u{fffd}");
        assert_eq!(v["request"]["body"], "");
        assert!(v["request"].get("body_encoding").is_none());
        assert!(v["request"].get("status").is_none());
        assert_eq!(v["response"]["status"], 200);
        assert_eq!(v["response"]["reason"], "OK");
        assert_eq!(v["response"]["body_encoding"], "base64");
        assert_eq!(v["response"]["body"], "/wBiaW5hcnk=");
        assert_eq!(v["response"]["body_size"], 18);
        assert_eq!(v["response"]["body_truncated"], true);
        assert!(v["response"].get("method").is_none());
        assert_eq!(v["response"]["trailers"], serde_json::json!([["Grpc-Status", "0"], ["X-Esc", "\u{1b}[2J"]]));
        assert!(v["request"].get("trailers").is_none(), "only when there were trailer fields: {v}");
        assert!(v.get("interim").is_none(), "only when there were interim heads: {v}");

        r.role = None;
        r.process = None;
        r.exchange = Exchange { request: req, response: None, note: None, interim: Vec::new() };
        let v: serde_json::Value = serde_json::from_str(&to_line(&r, &clock)).unwrap();
        for key in ["role", "pid", "tid", "comm", "response", "latency_us", "ttfb_us"] {
            assert!(v[key].is_null(), "{key} in {v}");
        }
        assert!(v.get("note").is_none());
        assert_eq!(v["complete"], false);
        assert_eq!(v["request"]["version"], "HTTP/1.0");

        // A start line cut by the capture before its version: null, not a guess.
        if let StartLine::Request { version, .. } = &mut r.exchange.request.start {
            *version = crate::protocols::VERSION_UNKNOWN;
        }
        let v: serde_json::Value = serde_json::from_str(&to_line(&r, &clock)).unwrap();
        assert!(v["request"]["version"].is_null(), "{v}");
    }

    #[test]
    fn interim_heads_are_listed_with_their_time_to_first_byte() {
        use crate::pipeline::Source;
        use crate::protocols::Exchange;
        let req = message(StartLine::Request { method: "POST".into(), target: b"/up".to_vec(), version: 1 }, &[], b"");
        let mut hints = message(StartLine::Response { version: 1, status: 103, reason: b"Early Hints"[..].into() }, &[("Link", b"</a.css>")], b"");
        hints.first_ts_ns = 6_500_000;
        let mut cont = message(StartLine::Response { version: 1, status: 100, reason: b"Continue"[..].into() }, &[], b"");
        cont.first_ts_ns = 7_000_000;
        let resp = message(StartLine::Response { version: 1, status: 201, reason: b"Created"[..].into() }, &[], b"");
        let r = Record {
            source: Source::Syscall,
            role: None,
            process: None,
            client: "127.0.0.1:5000".parse().unwrap(),
            server: "127.0.0.1:80".parse().unwrap(),
            exchange: Exchange { request: req, response: Some(resp), note: None, interim: vec![hints, cont] },
            conn: 1,
            in_flight: false,
        };
        let v: serde_json::Value = serde_json::from_str(&to_line(&r, &Clock::new())).unwrap();
        let interim = v["interim"].as_array().expect("interim array");
        assert_eq!(interim.len(), 2, "{v}");
        assert_eq!((&interim[0]["status"], &interim[0]["reason"], &interim[0]["ttfb_us"]), (&103.into(), &"Early Hints".into(), &1500.into()));
        assert_eq!(interim[0]["headers"][0], serde_json::json!(["Link", "</a.css>"]));
        assert_eq!((&interim[1]["status"], &interim[1]["version"], &interim[1]["ttfb_us"]), (&100.into(), &"HTTP/1.1".into(), &2000.into()));
        assert!(interim[0].get("body").is_none(), "heads only: {v}");
        assert_eq!(v["response"]["status"], 201);
    }

    /// UTF-8 text longer than `--max-body` is cut at a byte count, often inside a
    /// character (a page in Japanese: three bytes each): it was reported base64 then.
    #[test]
    fn text_body_cut_inside_a_character_stays_text() {
        let body_of = |m: &Message| {
            let mut out = Vec::new();
            super::message(&mut out, m);
            serde_json::from_slice::<serde_json::Value>(&out).unwrap()
        };
        let start = || StartLine::Response { version: 1, status: 200, reason: b"OK"[..].into() };
        for (kept, text) in [(4096, "日本語".repeat(2000)), (4096, format!("{}é", "a".repeat(4095))), (7, "abc\u{1f600}".into())] {
            let v = body_of(&message(start(), &[], &text.as_bytes()[..kept]));
            assert!(v.get("body_encoding").is_none(), "{v}");
            let shown = v["body"].as_str().unwrap();
            assert!(text.starts_with(shown) && shown.len() + 4 > kept, "{shown:?}");
        }
        assert_eq!(body_of(&message(start(), &[], b"ab\xe6\x97"))["body"], "ab");
        // A whole body, and bytes that are not a character cut short, are as before.
        let mut whole = message(start(), &[], b"abc\xc3");
        whole.body_truncated = false;
        assert_eq!(body_of(&whole)["body_encoding"], "base64");
        for bin in [&b"abc\xff"[..], b"ab\x80", b"\xf8\x80", b"a\xc3\xa9\xa9", b"\xc3\xc3", b"ab\xe0\x80", b"ab\xed\xa0"] {
            assert_eq!(body_of(&message(start(), &[], bin))["body_encoding"], "base64", "{bin:?}");
        }
    }

    #[test]
    fn timestamps_kept_to_the_second_match_rfc3339() {
        let mut stamps = Stamps::default();
        // Within a second, across seconds, back in time, and the first one (0).
        for ns in [0, 999_999_999, 1_000_000_000, 1_795_000_000_123_456_789, 1_795_000_000_999_999_000, 1_795_000_001_000_000_000, 5] {
            let mut out = Vec::new();
            stamps.write(&mut out, ns);
            let want = super::super::rfc3339(std::time::UNIX_EPOCH + std::time::Duration::from_nanos(ns));
            assert_eq!(String::from_utf8(out).unwrap(), want, "{ns}");
        }
    }

    #[test]
    fn addresses_as_display_writes_them() {
        for a in ["127.0.0.1:80", "0.0.0.0:0", "255.255.255.255:65535", "10.99.100.9:443", "[::1]:8080", "[fe80::1%2]:1"] {
            let a: std::net::SocketAddr = a.parse().unwrap_or_else(|e| panic!("{a}: {e}"));
            let mut out = Vec::new();
            addr(&mut out, a);
            assert_eq!(String::from_utf8(out).unwrap(), a.to_string());
        }
    }

    #[test]
    fn the_wide_scan_agrees_with_the_byte_test() {
        let stops = |b: &[u8], ascii: bool| {
            b.iter().position(|&c| escape(c).is_some() || c == 0xc2 || (ascii && c >= 0x80)).unwrap_or(b.len())
        };
        // Every length around the 16- and 64-byte blocks, every byte at every offset.
        for len in (0..50).chain([63, 64, 65, 80, 127, 128, 129, 143]) {
            for c in 0..=255u8 {
                for k in 0..len {
                    let mut b = vec![b'a'; len];
                    b[k] = c;
                    assert_eq!(plain::<true>(&b), stops(&b, true), "byte {c:#x} at {k} of {len}");
                    assert_eq!(plain::<false>(&b), stops(&b, false), "byte {c:#x} at {k} of {len}");
                }
            }
            let b = vec![b'a'; len];
            assert_eq!(plain::<true>(&b), len);
        }
    }

    #[test]
    fn the_word_test_agrees_with_the_byte_test() {
        // Every byte at every place of a word whose other bytes are plain, or are the
        // bytes on either side of the ranges.
        for fill in [b'a', b' ', b'~', 0x7f, b'!', b'#', b'[', b']'] {
            for c in 0..=255u8 {
                for k in 0..8 {
                    let mut w = [fill; 8];
                    w[k] = c;
                    let byte_test = w.iter().any(|&c| escape(c).is_some() || c >= 0x80);
                    assert_eq!(word_stops(u64::from_le_bytes(w)), byte_test, "{w:?}");
                }
            }
        }
        // Two special bytes in one word (a borrow out of the lower must not hide the upper).
        for a in 0..=255u8 {
            for c in [0u8, 0x1f, b'"', b'\\', 0x80, 0xff, b'a'] {
                let w = [b'a', a, b'a', c, b'a', b'a', a, c];
                let byte_test = w.iter().any(|&c| escape(c).is_some() || c >= 0x80);
                assert_eq!(word_stops(u64::from_le_bytes(w)), byte_test, "{w:?}");
            }
        }
    }

    #[test]
    fn short_strings_written_whole_match_the_long_path() {
        for len in 0..=33 {
            for c in 0..=255u8 {
                for k in 0..len {
                    let mut b: Vec<u8> = (0..len).map(|i| b'a' + i as u8).collect();
                    b[k] = c;
                    let mut out = b"prefix".to_vec();
                    bytes(&mut out, &b);
                    let want = serde_with_c1_escaped(&String::from_utf8_lossy(&b));
                    assert_eq!(String::from_utf8(out).unwrap(), format!("prefix{want}"), "{b:?}");
                }
            }
        }
    }

    /// Pseudo-random bytes, biased towards the ones that matter: escapes, ASCII, and the
    /// pieces of multi-byte sequences (valid, truncated, overlong, surrogates).
    #[test]
    fn wire_bytes_match_lossy_conversion_through_serde_json() {
        const PIECES: &[&[u8]] = &[b"a", b"plain text ", b"\"", b"\\", b"\n", b"\x01", b"\x7f", b"\xc3\xa9", b"\xe2\x9c\x93",
            b"\xf0\x9d\x84\x9e", b"\xc3", b"\xe2\x9c", b"\xf0\x9d\x84", b"\xff", b"\x80", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80"];
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            let mut b = Vec::new();
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            for k in 0..(x % 24) {
                b.extend_from_slice(PIECES[((x >> (k * 2 % 60)) as usize ^ k as usize) % PIECES.len()]);
            }
            let lossy = String::from_utf8_lossy(&b);
            let mut out = Vec::new();
            bytes(&mut out, &b);
            assert_eq!(String::from_utf8(out).unwrap(), serde_with_c1_escaped(&lossy), "{b:?}");
            let mut strict = b"x".to_vec();
            let valid = quoted(&mut strict, &b, false);
            assert_eq!(valid, std::str::from_utf8(&b).is_ok(), "{b:?}");
            if !valid {
                assert_eq!(strict, b"x", "nothing written for {b:?}");
            }
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
            assert_eq!(ours, serde_with_c1_escaped(s), "{s:?}");
            assert_eq!(serde_json::from_str::<String>(&ours).unwrap(), *s);
        }
    }
}
