//! One row of the view: what the table shows of a record (and filters on), sanitised once
//! when it arrives, so a frame never does more than format the rows it shows; the messages
//! kept as they came, for the detail pane, which sanitises the one it shows when it draws
//! (the list holds thousands of entries, most never opened: sanitising every header of
//! every exchange up front cost more than all the parsing).
//!
//! A row copies what it keeps out of its record into two buffers of its own, and the
//! record is dropped at once: its many allocations are freed while still warm and serve
//! the next record. Rows kept the record's buffers before, and freeing those when the
//! row fell off the list, thousands of records later and long out of cache, cost a third
//! of the live view's CPU. The row that falls off a full list hands its buffers to the
//! next one (`App` recycles it), so a row costs no allocation once the list is full.

use std::{net::SocketAddr, time::SystemTime};

use super::sanitize::{sanitize, sanitize_into};
use crate::{
    output::Clock,
    pipeline::{comm_str, Record},
    protocols::{version_name, Headers, Message, Note, Role, StartLine},
};

/// Body bytes kept per message for the detail pane (the list holds many entries).
pub const BODY_PREVIEW: usize = 1024;

/// Head bytes (target, field names and values) kept per message for the detail pane, and
/// per interim head: a head may be as long as `--max-conn-buffer`, and the list holds
/// `--max-rows` rows; what is left out is counted and said in the pane (`--json` has it).
pub const HEAD_PREVIEW: usize = 8 << 10;
const INTERIM_PREVIEW: usize = 1024;
/// Bytes of Host and of the target kept in a row's text (the table, the filter).
pub const ROW_FIELD: usize = 1024;

/// Bytes of a row's detail buffer `Entry::prefetch` brings in: a small exchange's heads
/// and body preview.
const PREFETCH_DETAIL: usize = 2048;

/// A recycled buffer this many times larger than what it holds now is given back: one
/// row with a huge head does not pin that much memory in its slot for good.
const SHRINK_FACTOR: usize = 4;
/// Buffers up to this size are always reused.
const KEEP_BYTES: usize = 4096;

/// Where a message's parts lie in `Entry::detail`, and its facts.
#[derive(Debug, Clone, Copy, Default)]
struct MessageAt {
    /// Request: method, target; response: reason (and an empty span).
    start: [Span; 2],
    version: u8,
    /// Some for a response.
    status: Option<u16>,
    /// Fields as (name length, value length, name, value), lengths u32 little-endian.
    headers: Span,
    /// The trailer fields, the same way.
    trailers: Span,
    body: Span,
    body_size: u64,
    body_truncated: bool,
    complete: bool,
    lost_bytes: u64,
    last_ts_ns: u64,
    /// Head bytes not kept (see `HEAD_PREVIEW`).
    head_omitted: u64,
}

/// A byte range of `Entry::detail`.
#[derive(Debug, Clone, Copy, Default)]
struct Span {
    at: u32,
    len: u32,
}

impl Span {
    fn of(self, bytes: &[u8]) -> &[u8] {
        bytes.get(self.at as usize..(self.at + self.len) as usize).unwrap_or_default()
    }
}

/// A message for the detail pane, as it came, borrowed from its row (see `start_line` and
/// `headers` for what is shown of it).
#[derive(Debug, Clone, Copy)]
pub struct MessageView<'a> {
    detail: &'a [u8],
    at: &'a MessageAt,
    /// The first `BODY_PREVIEW` captured bytes, raw: the pane chooses text or hex.
    pub body: &'a [u8],
    pub body_size: u64,
    pub body_truncated: bool,
    pub complete: bool,
    pub lost_bytes: u64,
    /// Head bytes the row did not keep (see `HEAD_PREVIEW`).
    pub head_omitted: u64,
}

#[derive(Debug, Clone)]
pub struct Entry {
    /// Position in arrival order since start (never reused).
    pub seq: u64,
    /// The request was seen, its exchange is not finished yet.
    pub pending: bool,
    /// Passed the filter when last tested: `App` keeps its list of matches by it.
    pub(super) matched: bool,
    /// Not a request after all: bytes tunnelled after a CONNECT or an upgrade, which parsed
    /// as a request head before the answer said what followed was not HTTP. Never shown.
    pub(super) hidden: bool,
    /// Wall-clock time of the request's first byte (shown by `time`).
    pub wall: SystemTime,
    pub pid: u32,
    pub tid: u32,
    pub role: Option<Role>,
    pub client: SocketAddr,
    pub server: SocketAddr,
    /// Method, comm, host and target, sanitised, in one buffer; host and target are
    /// adjacent, so an origin-form URL is their span. See `method`, `comm`, `host`, `target`, `url`.
    text: String,
    /// Where comm, host and target start in `text`.
    at: [u32; 3],
    pub status: Option<u16>,
    pub latency_us: Option<u64>,
    pub ttfb_us: Option<u64>,
    pub req_size: u64,
    pub resp_size: Option<u64>,
    pub complete: bool,
    pub lost_bytes: u64,
    pub note: Option<Note>,
    /// Start lines, header fields and body previews of both messages, raw.
    detail: Vec<u8>,
    request: MessageAt,
    response: Option<MessageAt>,
    /// Interim (1xx) heads before the response, each with its time to first byte (us).
    interim: Vec<(MessageAt, u64)>,
}

impl Entry {
    pub fn new(seq: u64, r: Record, clock: &Clock) -> Entry {
        let mut e = Entry {
            seq,
            pending: false,
            matched: false,
            hidden: false,
            wall: SystemTime::UNIX_EPOCH,
            pid: 0,
            tid: 0,
            role: None,
            client: r.client,
            server: r.server,
            text: String::new(),
            at: [0; 3],
            status: None,
            latency_us: None,
            ttfb_us: None,
            req_size: 0,
            resp_size: None,
            complete: false,
            lost_bytes: 0,
            note: None,
            detail: Vec::new(),
            request: MessageAt::default(),
            response: None,
            interim: Vec::new(),
        };
        e.refill(seq, r, clock);
        e
    }

    /// Makes this (recycled) row the row of `r`, reusing its buffers.
    pub fn refill(&mut self, seq: u64, r: Record, clock: &Clock) {
        let req = &r.exchange.request;
        let host = req.headers.get(b"host").unwrap_or_default();
        let (method, target) = match &req.start {
            StartLine::Request { method, target, .. } => (method.as_bytes(), target.as_slice()),
            StartLine::Response { .. } => (&b"?"[..], &b""[..]),
        };
        let comm = r.process.as_ref().map_or(&b"-"[..], |p| comm_str(&p.comm));
        let (host, target) = (&host[..host.len().min(ROW_FIELD)], &target[..target.len().min(ROW_FIELD)]);
        self.set_text(method, comm, host, target);
        self.seq = seq;
        (self.matched, self.hidden) = (false, false);
        self.wall = clock.wall(req.first_ts_ns);
        // 0: a packet between processes we do not know.
        (self.pid, self.tid) = r.process.map_or((0, 0), |p| (p.pid, p.tid));
        self.role = r.role;
        (self.client, self.server) = (r.client, r.server);
        let in_flight = r.in_flight;
        self.finish(r);
        self.pending = in_flight;
    }

    /// What the exchange says beyond its request head; for a row of a request in flight,
    /// fills it in place when its exchange finished (the head's fields are already there).
    /// The owner too: on packets it may have become known only after the head came (the
    /// server reads the request later), and the finished record knows best.
    pub fn finish(&mut self, r: Record) {
        if let Some(p) = r.process {
            (self.pid, self.tid) = (p.pid, p.tid);
            let comm = comm_str(&p.comm);
            // Equal bytes are the usual case: no need to sanitise again.
            if comm != self.comm().as_bytes() {
                self.set_comm(comm);
            }
        }
        if r.role.is_some() {
            self.role = r.role;
        }
        let ex = r.exchange;
        let (req, resp) = (&ex.request, ex.response.as_ref());
        self.pending = false;
        self.status = resp.and_then(status);
        self.latency_us = resp.map(|m| m.latency_us(req));
        self.ttfb_us = resp.map(|m| m.ttfb_us(req));
        self.req_size = req.body_size;
        self.resp_size = resp.map(|m| m.body_size);
        self.complete = ex.complete();
        self.lost_bytes = ex.lost_bytes();
        self.note = ex.note;
        let need = detail_len(req) + resp.map_or(0, detail_len) + ex.interim.iter().map(detail_len).sum::<usize>();
        recycle(&mut self.detail, need);
        self.request = keep(&mut self.detail, req, HEAD_PREVIEW);
        self.response = resp.map(|m| keep(&mut self.detail, m, HEAD_PREVIEW));
        self.interim.clear();
        for m in &ex.interim {
            self.interim.push((keep(&mut self.detail, m, INTERIM_PREVIEW), m.ttfb_us(req)));
        }
    }

    /// Asks the CPU to bring this row in: it is the next to be refilled. A row of a full
    /// list was last written `--max-rows` rows ago and is long out of cache; refilled cold,
    /// every store into it and its buffers waited for its line. Issued when the row before
    /// it is refilled, a record ahead (keep-alive load on nginx: the live view's CPU per
    /// request 4.2 -> 3.7 us).
    pub fn prefetch(&self) {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            let lines = |p: *const u8, len: usize| {
                for off in (0..len).step_by(64) {
                    // SAFETY: a prefetch is a hint: it never faults, whatever the address.
                    unsafe { _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(off) as *const i8) };
                }
            };
            lines(self as *const Entry as *const u8, std::mem::size_of::<Entry>());
            lines(self.detail.as_ptr(), self.detail.capacity().min(PREFETCH_DETAIL));
            lines(self.text.as_ptr(), self.text.capacity().min(ROW_FIELD / 4));
        }
    }

    /// The request for the detail pane.
    pub fn request(&self) -> MessageView<'_> {
        self.view(&self.request)
    }

    /// The response for the detail pane, when there was one.
    pub fn response(&self) -> Option<MessageView<'_>> {
        self.response.as_ref().map(|m| self.view(m))
    }

    /// The interim (1xx) heads for the detail pane, each with its time to first byte.
    pub fn interim(&self) -> impl Iterator<Item = (MessageView<'_>, u64)> {
        self.interim.iter().map(|(m, ttfb_us)| (self.view(m), *ttfb_us))
    }

    fn view<'a>(&'a self, at: &'a MessageAt) -> MessageView<'a> {
        MessageView {
            detail: &self.detail,
            at,
            body: at.body.of(&self.detail),
            body_size: at.body_size,
            body_truncated: at.body_truncated,
            complete: at.complete,
            lost_bytes: at.lost_bytes,
            head_omitted: at.head_omitted,
        }
    }

    /// Kernel time of the last byte seen of this exchange: when it finished.
    pub fn done_ns(&self) -> u64 {
        self.response.as_ref().map_or(self.request.last_ts_ns, |m| m.last_ts_ns)
    }

    /// `HH:MM:SS.mmm` UTC, formatted when a row is drawn.
    pub fn time(&self) -> String {
        let t = super::super::rfc3339(self.wall);
        // "2026-11-22T10:15:02.123456Z" -> "10:15:02.123"
        t.get(11..23).unwrap_or(&t).to_owned()
    }

    /// Sets method, comm, host and target, each sanitised.
    pub fn set_text(&mut self, method: &[u8], comm: &[u8], host: &[u8], target: &[u8]) {
        let need = method.len() + comm.len() + host.len() + target.len();
        if oversized(self.text.capacity(), need) {
            self.text = String::new();
        }
        let text = &mut self.text;
        text.clear();
        sanitize_into(text, method);
        let mut at = [0; 3];
        for (i, field) in [comm, host, target].into_iter().enumerate() {
            at[i] = text.len() as u32;
            sanitize_into(text, field);
        }
        self.at = at;
    }

    /// Replaces comm, keeping method, host and target (sanitised already).
    fn set_comm(&mut self, comm: &[u8]) {
        let (method, host, url) = (self.method(), self.host(), self.host_and_target());
        let mut text = String::with_capacity(method.len() + comm.len() + url.len());
        text.push_str(method);
        sanitize_into(&mut text, comm);
        let host_at = text.len();
        text.push_str(url);
        self.at = [self.at[0], host_at as u32, (host_at + host.len()) as u32];
        self.text = text;
    }

    pub fn method(&self) -> &str {
        &self.text[..self.at[0] as usize]
    }

    pub fn comm(&self) -> &str {
        &self.text[self.at[0] as usize..self.at[1] as usize]
    }

    pub fn host(&self) -> &str {
        &self.text[self.at[1] as usize..self.at[2] as usize]
    }

    pub fn target(&self) -> &str {
        &self.text[self.at[2] as usize..]
    }

    /// What the table shows: the Host field followed by an origin-form target ("/path"),
    /// or the target alone, which names its host itself (absolute-form "http://h/p" to a
    /// proxy, CONNECT's "h:443") or none ("*").
    pub fn url(&self) -> &str {
        let target = self.target();
        if target.starts_with('/') { self.host_and_target() } else { target }
    }

    fn host_and_target(&self) -> &str {
        &self.text[self.at[1] as usize..]
    }
}

/// A buffer of `cap` bytes kept for `need`: far larger than that, it is let go.
fn oversized(cap: usize, need: usize) -> bool {
    cap > KEEP_BYTES && cap > SHRINK_FACTOR * need
}

/// Empties a recycled buffer for `need` bytes; one far larger than that is let go.
fn recycle(buf: &mut Vec<u8>, need: usize) {
    buf.clear();
    if oversized(buf.capacity(), need) {
        *buf = Vec::new();
    }
    buf.reserve(need);
}

/// Bytes `keep` appends for `m`.
fn detail_len(m: &Message) -> usize {
    let start = match &m.start {
        StartLine::Request { method, target, .. } => method.len() + target.len(),
        StartLine::Response { reason, .. } => reason.len(),
    };
    let fields = |f: &Headers| f.byte_len() + 8 * f.len();
    (start + fields(&m.headers) + fields(&m.trailers)).min(HEAD_PREVIEW + 64) + m.body.len().min(BODY_PREVIEW)
}

/// Appends what the detail pane shows of `m` to `buf`; says where it went.
/// At most `room` bytes of its head: the target, then the fields in order, the one that
/// does not fit cut short, those after it left out.
fn keep(buf: &mut Vec<u8>, m: &Message, mut room: usize) -> MessageAt {
    let mut omitted = 0u64;
    let mut take = |b: &'_ [u8]| -> usize {
        let n = b.len().min(room);
        room -= n;
        omitted += (b.len() - n) as u64;
        n
    };
    let mut put = |bytes: &[u8]| {
        let at = buf.len() as u32;
        buf.extend_from_slice(bytes);
        Span { at, len: bytes.len() as u32 }
    };
    let (start, version, status) = match &m.start {
        StartLine::Request { method, target, version } => {
            let target = &target[..take(target)];
            ([put(method.as_bytes()), put(target)], *version, None)
        }
        StartLine::Response { version, status, reason } => {
            let reason = &reason[..take(reason)];
            ([put(reason), Span::default()], *version, Some(*status))
        }
    };
    let mut fields = |f: &Headers| {
        let at = buf.len() as u32;
        for (n, v) in f.iter() {
            let (n, v) = (&n[..take(n)], &v[..take(v)]);
            if n.is_empty() && v.is_empty() {
                continue;
            }
            buf.extend_from_slice(&(n.len() as u32).to_le_bytes());
            buf.extend_from_slice(&(v.len() as u32).to_le_bytes());
            buf.extend_from_slice(n);
            buf.extend_from_slice(v);
        }
        Span { at, len: buf.len() as u32 - at }
    };
    let headers = fields(&m.headers);
    let trailers = fields(&m.trailers);
    let preview = &m.body[..m.body.len().min(BODY_PREVIEW)];
    let body = Span { at: buf.len() as u32, len: preview.len() as u32 };
    buf.extend_from_slice(preview);
    MessageAt {
        start,
        version,
        status,
        headers,
        trailers,
        body,
        body_size: m.body_size,
        body_truncated: m.body_truncated || m.body.len() > BODY_PREVIEW,
        complete: m.complete,
        lost_bytes: m.lost_bytes,
        last_ts_ns: m.last_ts_ns,
        head_omitted: omitted,
    }
}

impl MessageView<'_> {
    /// A response's status.
    pub fn status(&self) -> Option<u16> {
        self.at.status
    }

    /// The start line, sanitised.
    pub fn start_line(&self) -> String {
        let [a, b] = self.at.start.map(|s| s.of(self.detail));
        let v = version(self.at.version);
        match self.at.status {
            None => format!("{} {} {v}", sanitize(a), sanitize(b)),
            Some(status) => format!("{v} {status} {}", sanitize(a)),
        }
    }

    /// The header fields, sanitised.
    pub fn headers(&self) -> impl Iterator<Item = (String, String)> + '_ {
        self.fields(self.at.headers)
    }

    /// The trailer fields, sanitised.
    pub fn trailers(&self) -> impl Iterator<Item = (String, String)> + '_ {
        self.fields(self.at.trailers)
    }

    fn fields(&self, span: Span) -> impl Iterator<Item = (String, String)> + '_ {
        let mut rest = span.of(self.detail);
        std::iter::from_fn(move || {
            let len = |b: &[u8]| b.try_into().map(u32::from_le_bytes).ok().map(|n| n as usize);
            let (n, v) = (len(rest.get(..4)?)?, len(rest.get(4..8)?)?);
            let field = rest.get(8..8 + n + v)?;
            rest = &rest[8 + n + v..];
            Some((sanitize(&field[..n]), sanitize(&field[n..])))
        })
    }
}

fn status(m: &Message) -> Option<u16> {
    match m.start {
        StartLine::Response { status, .. } => Some(status),
        StartLine::Request { .. } => None,
    }
}

fn version(v: u8) -> &'static str {
    version_name(v).unwrap_or("HTTP/?")
}

/// `412µs`, `12.3ms`, `1.25s`.
pub fn fmt_latency(us: u64) -> String {
    match us {
        0..=999 => format!("{us}µs"),
        1_000..=99_999 => format!("{:.1}ms", us as f64 / 1e3),
        100_000..=999_999 => format!("{}ms", us / 1000),
        _ => format!("{:.2}s", us as f64 / 1e6),
    }
}

/// `512B`, `1.5K`, `12M`.
pub fn fmt_size(n: u64) -> String {
    const UNITS: [&str; 4] = ["K", "M", "G", "T"];
    if n < 1024 {
        return format!("{n}B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if v < 10.0 {
        format!("{v:.1}{}", UNITS[unit])
    } else {
        format!("{v:.0}{}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_latency_and_size() {
        assert_eq!(fmt_latency(412), "412µs");
        assert_eq!(fmt_latency(12_345), "12.3ms");
        assert_eq!(fmt_latency(250_000), "250ms");
        assert_eq!(fmt_latency(1_250_000), "1.25s");
        assert_eq!(fmt_size(5), "5B");
        assert_eq!(fmt_size(1536), "1.5K");
        assert_eq!(fmt_size(20 * 1024 * 1024), "20M");
    }

    #[test]
    fn the_host_is_shown_before_origin_form_targets_only() {
        use crate::output::tui::testutil::entry;
        let url = |target| entry(0, "GET", target, Some(200), Some(5), "curl").url().to_owned();
        assert_eq!(url("/x?q=1"), "127.0.0.1:8080/x?q=1");
        // The target names its host itself (CONNECT; a request to a proxy), or none.
        assert_eq!(url("example.com:443"), "example.com:443");
        assert_eq!(url("http://example.com/a"), "http://example.com/a");
        assert_eq!(url("*"), "*");
        // A row whose owner changes keeps host and target.
        let mut e = entry(0, "GET", "/x", Some(200), Some(5), "curl");
        e.set_comm(b"nginx");
        assert_eq!((e.comm(), e.host(), e.url()), ("nginx", "127.0.0.1:8080", "127.0.0.1:8080/x"));
    }

    /// Trailer fields are kept after the headers, sanitised when shown, within the same
    /// room as the head.
    #[test]
    fn trailers_are_kept_for_the_pane() {
        use crate::output::tui::testutil::{record, row};
        let mut r = record(0, "GET", "/t", Some(200), Some(5), "curl");
        let resp = r.exchange.response.as_mut().unwrap();
        resp.trailers.push(b"Grpc-Status", b"0");
        resp.trailers.push(b"X-Esc", b"\x1b[2Jx");
        let e = row(0, r);
        let resp = e.response().unwrap();
        let trailers: Vec<(String, String)> = resp.trailers().collect();
        assert_eq!(trailers[0], ("Grpc-Status".into(), "0".into()));
        assert_eq!(trailers[1].1, "\\x1b[2Jx");
        assert_eq!(resp.headers().count(), 2, "headers unchanged");
        assert_eq!(e.request().trailers().count(), 0);
    }

    /// A head as long as the connection's bound keeps at most HEAD_PREVIEW bytes in its
    /// row, and the pane says how much it left out; the row's text keeps ROW_FIELD bytes
    /// of the target.
    #[test]
    fn a_huge_head_keeps_a_bounded_preview() {
        use crate::output::tui::testutil::{message, record, row};
        let big = "v".repeat(300 << 10);
        let target = format!("/{}", "t".repeat(100 << 10));
        let mut r = record(0, "GET", &target, Some(200), Some(5), "curl");
        let fields: Vec<(&str, &str)> = vec![("Host", "h"), ("X-A", &big), ("X-B", "b")];
        let start = r.exchange.request.start.clone();
        r.exchange.request = message(start, &fields, b"", 1, 1);
        let e = row(0, r);
        assert_eq!(e.target().len(), ROW_FIELD);
        let req = e.request();
        let kept: usize = req.headers().map(|(n, v)| n.len() + v.len()).sum();
        assert_eq!(kept, 0, "the target took the room");
        let whole = target.len() + 4 + 1 + 3 + big.len() + 3 + 1;
        assert_eq!(req.head_omitted as usize, whole - HEAD_PREVIEW);
        assert!(e.detail.capacity() < 4 * HEAD_PREVIEW, "{}", e.detail.capacity());
        // A head that fits is kept whole.
        let small = row(1, record(1, "GET", "/x", Some(200), Some(5), "curl"));
        assert_eq!((small.request().head_omitted, small.request().headers().count()), (0, 3));
        // The field that does not fit is cut, those after it left out.
        let mut r = record(2, "GET", "/y", Some(200), Some(5), "curl");
        let start = r.exchange.request.start.clone();
        r.exchange.request = message(start, &[("Host", "h"), ("X-A", &big), ("X-B", "b")], b"", 1, 1);
        let e = row(2, r);
        let names: Vec<String> = e.request().headers().map(|(n, _)| n).collect();
        assert_eq!(names, ["Host", "X-A"]);
        let kept: usize = e.request().headers().map(|(n, v)| n.len() + v.len()).sum();
        assert_eq!(kept + 2, HEAD_PREVIEW);
    }
}
