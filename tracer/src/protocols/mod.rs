//! Application-protocol parsers. Sans-IO: bytes and timestamps in, exchanges out.
//! Nothing here knows aya, the kernel or the terminal.

pub mod http1;

use std::borrow::Cow;

/// The thread that moved a segment's bytes: its process (thread group id), its id, and
/// its command name when it did. Carried with the bytes so that each message names the
/// thread that actually wrote or read it, whichever process held the connection before
/// (a socket passed to another process, a thread renamed between requests).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Process {
    pub pid: u32,
    pub tid: u32,
    pub comm: [u8; 16],
}

/// The side of the connection the traced process is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Client,
    Server,
}

/// The TCP ports this host listens on (LISTEN sockets of /proc/net/tcp and tcp6, in
/// l7trace's network namespace), read once, when the first connection open before tracing
/// started is met: its listener was there before too.
pub fn listening_ports() -> &'static std::collections::HashSet<u16> {
    static PORTS: std::sync::OnceLock<std::collections::HashSet<u16>> = std::sync::OnceLock::new();
    PORTS.get_or_init(|| {
        let mut ports = std::collections::HashSet::new();
        for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
            parse_listening(&std::fs::read_to_string(table).unwrap_or_default(), &mut ports);
        }
        ports
    })
}

/// The local ports of the LISTEN (0A) sockets of a /proc/net/tcp table.
fn parse_listening(table: &str, out: &mut std::collections::HashSet<u16>) {
    for line in table.lines().skip(1) {
        let mut f = line.split_whitespace();
        let (Some(local), Some(_remote), Some(state)) = (f.nth(1), f.next(), f.next()) else { continue };
        if state != "0A" {
            continue;
        }
        if let Some(port) = local.rsplit(':').next().and_then(|p| u16::from_str_radix(p, 16).ok()) {
            out.insert(port);
        }
    }
}

/// Which end of a connection seen only mid-way is its client, from the ports alone: when
/// one end's port is one this host is `listening` on and the other's is not, that end is
/// the server (Some(true): the end with port `a` is the client). None otherwise: the first
/// bytes seen decide then. A connection picked up inside a body whose bytes look like a
/// request (a download of a log of requests) would otherwise be taken the wrong way round.
pub fn client_by_ports(a: u16, b: u16, listening: &std::collections::HashSet<u16>) -> Option<bool> {
    match (listening.contains(&a), listening.contains(&b)) {
        (false, true) => Some(true),
        (true, false) => Some(false),
        _ => None,
    }
}

/// Direction of bytes relative to the traced process (not to the client/server pair).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Written by the traced process (write, send*, sendfile).
    Egress,
    /// Read by the traced process (read, recv*).
    Ingress,
}

/// Loss the kernel reported without saying whose (packets dropped from the capture socket,
/// events from a full ring buffer), as one connection sees it: per direction (`Direction`
/// order: egress, ingress), the time of the latest report, until a byte of that direction
/// from after it comes. Bytes lost before such a byte are a gap at their place in the
/// stream; bytes lost after the last byte seen show nowhere, and a connection whose end
/// then never comes may have lost its tail (`suspects`).
#[derive(Debug, Default, Clone, Copy)]
pub struct LossWatch([Option<u64>; 2]);

impl LossWatch {
    /// The kernel reported a loss at `at_ns` (monotonic, as event times are).
    pub fn reported(&mut self, at_ns: u64) {
        self.0 = [Some(at_ns); 2];
    }

    /// A byte of direction `d` from `ts_ns`.
    pub fn seen(&mut self, d: Direction, ts_ns: u64) {
        let slot = &mut self.0[d as usize];
        if slot.is_some_and(|t| ts_ns > t) {
            *slot = None;
        }
    }

    /// Per direction, at `now_ns`: a loss was reported after its last byte, and nothing
    /// came for longer than `quiet_ns` since (a transfer still under way when the report
    /// came, cut short by exit or eviction, is not taken for a loss); None when neither.
    pub fn suspects(&self, now_ns: u64, quiet_ns: u64) -> Option<[bool; 2]> {
        let lost = self.0.map(|t| t.is_some_and(|t| now_ns.saturating_sub(t) > quiet_ns));
        (lost != [false; 2]).then_some(lost)
    }
}

impl Role {
    /// The direction that carries requests for this side.
    pub fn request_direction(self) -> Direction {
        match self {
            Role::Client => Direction::Egress,
            Role::Server => Direction::Ingress,
        }
    }
}

/// A start line's version when it never came: the line was cut short by the capture.
pub const VERSION_UNKNOWN: u8 = u8::MAX;

/// The version `v` (see `StartLine`) as written: None when it never came.
pub fn version_name(v: u8) -> Option<&'static str> {
    match v {
        0 => Some("HTTP/1.0"),
        VERSION_UNKNOWN => None,
        _ => Some("HTTP/1.1"),
    }
}

/// The version a start line names (`StartLine`'s number): None for any other bytes.
pub fn version_of(v: &[u8]) -> Option<u8> {
    match v {
        b"HTTP/1.1" => Some(1),
        b"HTTP/1.0" => Some(0),
        _ => None,
    }
}

/// The first line of a message. `version`: 1 for HTTP/1.1, 0 for HTTP/1.0, or
/// `VERSION_UNKNOWN`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartLine {
    /// The registered methods and the common reasons are borrowed (`known_method`,
    /// `known_reason`): no allocation for them per message.
    Request { method: Cow<'static, str>, target: Vec<u8>, version: u8 },
    Response { version: u8, status: u16, reason: Cow<'static, [u8]> },
}

/// `m` as a static string when it is one of the usual methods.
pub fn known_method(m: &str) -> Cow<'static, str> {
    const KNOWN: [&str; 9] = ["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "CONNECT", "TRACE"];
    match KNOWN.iter().find(|k| **k == m) {
        Some(k) => Cow::Borrowed(k),
        None => Cow::Owned(m.to_owned()),
    }
}

/// `r` as a static byte string when it is one of the usual reason phrases.
pub fn known_reason(r: &[u8]) -> Cow<'static, [u8]> {
    const KNOWN: [&[u8]; 12] = [
        b"OK", b"Created", b"No Content", b"Moved Permanently", b"Found", b"Not Modified", b"Bad Request",
        b"Unauthorized", b"Forbidden", b"Not Found", b"Internal Server Error", b"Continue",
    ];
    match KNOWN.iter().find(|k| **k == r) {
        Some(k) => Cow::Borrowed(k),
        None => Cow::Owned(r.to_vec()),
    }
}

/// An empty request line (nothing allocated): a placeholder, never parsed from the wire.
impl Default for StartLine {
    fn default() -> Self {
        StartLine::Request { method: Cow::Borrowed(""), target: Vec::new(), version: 1 }
    }
}

/// Header fields of one message, in order: every name and value in one buffer, so that a
/// head costs two allocations however many fields it has.
#[derive(Debug, Clone, Default)]
pub struct Headers {
    bytes: Vec<u8>,
    /// Per field: where its name starts and ends, where its value starts and ends.
    spans: Vec<[u32; 4]>,
}

impl Headers {
    /// Room for `fields` fields of `bytes` bytes in all.
    pub fn with_capacity(fields: usize, bytes: usize) -> Self {
        Headers {
            bytes: Vec::with_capacity(bytes),
            spans: Vec::with_capacity(fields),
        }
    }

    pub fn push(&mut self, name: &[u8], value: &[u8]) {
        let start = self.bytes.len() as u32;
        self.bytes.extend_from_slice(name);
        self.bytes.extend_from_slice(value);
        let v = start + name.len() as u32;
        self.spans.push([start, v, v, self.bytes.len() as u32]);
    }

    /// The fields of one parsed head, whose names and values are slices of `head`: the
    /// bytes from the first name to the last value are copied once, as a block, rather
    /// than field by field (the block keeps the ": " and CRLF between fields). Fields
    /// that are not inside `head` are copied one by one.
    pub fn from_head<'a>(head: &'a [u8], fields: impl ExactSizeIterator<Item = (&'a [u8], &'a [u8])> + Clone) -> Self {
        let base = head.as_ptr() as usize;
        let inside = |s: &[u8]| {
            let at = (s.as_ptr() as usize).wrapping_sub(base);
            (at <= head.len() && s.len() <= head.len() - at && head.len() <= u32::MAX as usize).then_some(at as u32)
        };
        let mut spans = Vec::with_capacity(fields.len());
        let (mut lo, mut hi) = (u32::MAX, 0);
        for (n, v) in fields.clone() {
            let (Some(n_at), Some(v_at)) = (inside(n), inside(v)) else {
                let mut h = Headers::with_capacity(fields.len(), 0);
                fields.for_each(|(n, v)| h.push(n, v));
                return h;
            };
            let span = [n_at, n_at + n.len() as u32, v_at, v_at + v.len() as u32];
            lo = lo.min(span[0]).min(span[2]);
            hi = hi.max(span[1]).max(span[3]);
            spans.push(span);
        }
        if spans.is_empty() {
            return Headers::default();
        }
        spans.iter_mut().flatten().for_each(|at| *at -= lo);
        Headers { bytes: head[lo as usize..hi as usize].to_vec(), spans }
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Bytes held for names and values.
    pub fn byte_len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// (name, value) pairs in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&[u8], &[u8])> + '_ {
        (0..self.spans.len()).map(|i| self.field(i))
    }

    /// The names in order.
    pub fn names(&self) -> impl ExactSizeIterator<Item = &[u8]> + '_ {
        self.spans.iter().map(|&[n, m, _, _]| &self.bytes[n as usize..m as usize])
    }

    /// Field `i`: (name, value).
    pub fn field(&self, i: usize) -> (&[u8], &[u8]) {
        let [n, m, v, e] = self.spans[i];
        (&self.bytes[n as usize..m as usize], &self.bytes[v as usize..e as usize])
    }

    /// The value of the first field named `name` (ASCII case-insensitive).
    pub fn get(&self, name: &[u8]) -> Option<&[u8]> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// Line breaks inside values (a response's obs-fold, kept by the parser) become
    /// spaces, as RFC 9112 section 5.2 asks of a recipient; names and order are unchanged.
    pub fn unfold_values(&mut self) {
        for &[_, _, v, e] in &self.spans {
            for b in &mut self.bytes[v as usize..e as usize] {
                if matches!(*b, b'\r' | b'\n') {
                    *b = b' ';
                }
            }
        }
    }

    /// Replaces the value of field `i`; the old value's bytes are overwritten, not left
    /// behind in the buffer (redaction).
    pub fn set_value(&mut self, i: usize, value: &[u8]) {
        let [_, _, v, e] = self.spans[i];
        let (v, e) = (v as usize, e as usize);
        self.bytes[v..e].fill(0);
        if value.len() <= e - v {
            self.bytes[v..v + value.len()].copy_from_slice(value);
            self.spans[i][3] = (v + value.len()) as u32;
        } else {
            let at = self.bytes.len() as u32;
            self.bytes.extend_from_slice(value);
            self.spans[i][2..].copy_from_slice(&[at, self.bytes.len() as u32]);
        }
    }
}

/// The same fields in the same order, however the bytes are laid out.
impl PartialEq for Headers {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for Headers {}

impl<N: AsRef<[u8]>, V: AsRef<[u8]>> FromIterator<(N, V)> for Headers {
    fn from_iter<I: IntoIterator<Item = (N, V)>>(iter: I) -> Self {
        let mut h = Headers::default();
        for (n, v) in iter {
            h.push(n.as_ref(), v.as_ref());
        }
        h
    }
}

/// One HTTP message as seen on the wire. Header names and values are raw bytes; sinks
/// sanitise them for display.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    pub start: StartLine,
    pub headers: Headers,
    /// The trailer fields of a chunked body (RFC 9112 section 7.1.2), as they came; empty
    /// when there were none.
    pub trailers: Headers,
    /// Decoded body size (chunk framing removed), captured or not.
    pub body_size: u64,
    /// The first `max_body` bytes of the decoded body that were captured.
    pub body: Vec<u8>,
    /// `body` is shorter than `body_size` (limit reached, or bytes counted but not copied).
    pub body_truncated: bool,
    /// Kernel timestamp (ns, CLOCK_MONOTONIC) of the first and last byte.
    pub first_ts_ns: u64,
    pub last_ts_ns: u64,
    /// The thread that wrote or read the first byte.
    pub process: Process,
    /// Framed from start line to end of body with no lost byte.
    pub complete: bool,
    /// Bytes of this message known lost (gaps inside it).
    pub lost_bytes: u64,
}

impl Message {
    /// Microseconds from `request`'s first byte to this answer's first byte (its ttfb).
    pub fn ttfb_us(&self, request: &Message) -> u64 {
        self.first_ts_ns.saturating_sub(request.first_ts_ns) / 1000
    }

    /// Microseconds from `request`'s first byte to this answer's last byte (its latency).
    pub fn latency_us(&self, request: &Message) -> u64 {
        self.last_ts_ns.saturating_sub(request.first_ts_ns) / 1000
    }

    /// Bytes this message keeps in memory (head fields and kept body), for the bounds.
    pub fn held_bytes(&self) -> usize {
        let start = match &self.start {
            StartLine::Request { method, target, .. } => method.len() + target.len(),
            StartLine::Response { reason, .. } => reason.len(),
        };
        start + [&self.headers, &self.trailers].iter().map(|h| h.byte_len() + 16 * h.len()).sum::<usize>() + self.body.len()
    }
}

/// Why an exchange is reported the way it is, when something went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Note {
    Gap,
    /// Bytes were counted but not captured (beyond `--max-capture` or `--snaplen`) where
    /// the framing needed them: the message ends there, incomplete, with nothing lost.
    Truncated,
    ResponseTimeout,
    Closed,
    /// l7trace stopped following the connection (it exited, or evicted the connection)
    /// before the message ended: what was seen is reported, as incomplete.
    Unfinished,
    Upgrade,
    ParseError,
}

impl Note {
    pub fn as_str(self) -> &'static str {
        match self {
            Note::Gap => "gap",
            Note::Truncated => "truncated",
            Note::ResponseTimeout => "response_timeout",
            Note::Closed => "closed",
            Note::Unfinished => "unfinished",
            Note::Upgrade => "upgrade",
            Note::ParseError => "parse_error",
        }
    }
}

/// A request and the response paired with it (in order on the connection).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    pub request: Message,
    pub response: Option<Message>,
    pub note: Option<Note>,
    /// Interim (1xx) responses before the final one (100 Continue, 103 Early Hints), in
    /// order: heads only, at most `MAX_INTERIM`.
    pub interim: Vec<Message>,
}

/// Interim responses kept per exchange; later ones are framed and not kept.
pub const MAX_INTERIM: usize = 8;

impl Exchange {
    pub fn complete(&self) -> bool {
        self.request.complete && self.response.as_ref().is_some_and(|r| r.complete)
    }
    pub fn lost_bytes(&self) -> u64 {
        self.request.lost_bytes.saturating_add(self.response.as_ref().map_or(0, |r| r.lost_bytes))
    }
}

/// Limits that bound memory and time per connection.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Body bytes kept per message.
    pub max_body: usize,
    /// Unparsed bytes buffered per direction; beyond this, the oldest are dropped as a gap.
    pub max_buffer: usize,
    /// A request with no response after this long is emitted alone.
    pub response_timeout_ns: u64,
    /// Out-of-order bytes wait this long for the missing bytes before a gap is declared.
    pub reorder_timeout_ns: u64,
    /// Bytes all connections together may hold (stream buffers and heads waiting for their
    /// answers); beyond this, the connections holding most give theirs up (`Budget`).
    pub max_total_buffer: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body: 4096,
            max_buffer: 1 << 20,
            response_timeout_ns: 10_000_000_000,
            reorder_timeout_ns: 200_000_000,
            max_total_buffer: 128 << 20,
        }
    }
}

/// What the connections of a table hold together, against `Limits::max_total_buffer`: the
/// per-connection bounds alone let many connections that each hold a long unfinished head
/// (a peer that sends one and waits) take gigabytes. Kept up to date as data goes in
/// (`changed`, after each connection's `on_data`, from what it held after its last one)
/// and connections go (`release`); when over, `shed` measures every connection and makes
/// those holding most give up what they hold (`Http1Conn::shed`: the bytes dropped and
/// counted, the messages cut marked), the largest first, until the table holds three
/// quarters of the bound. Ticks that free bytes are seen at the connection's next data.
#[derive(Debug, Default)]
pub struct Budget {
    held: usize,
}

impl Budget {
    /// A connection went from holding `before` bytes to `after`; whether the bound `max`
    /// may now be passed.
    pub fn changed(&mut self, before: usize, after: usize, max: usize) -> bool {
        self.held = self.held.saturating_add(after).saturating_sub(before);
        self.held > max
    }

    /// A connection holding `n` bytes went.
    pub fn release(&mut self, n: usize) {
        self.held = self.held.saturating_sub(n);
    }

    /// Measures `conns` (each with the count of what it held that the table keeps, set
    /// here to what it holds now) and sheds the largest until they hold at most 3/4 of
    /// `max`.
    pub fn shed<'a>(&mut self, max: usize, conns: impl Iterator<Item = (&'a mut http1::Http1Conn, &'a mut usize)>) {
        let mut by_size: Vec<(&mut http1::Http1Conn, &mut usize)> = conns.collect();
        for (conn, held) in by_size.iter_mut() {
            **held = conn.held_bytes();
        }
        let mut total: usize = by_size.iter().map(|(_, n)| **n).sum();
        if total > max {
            by_size.sort_unstable_by_key(|(_, n)| std::cmp::Reverse(**n));
            for (conn, held) in by_size {
                if total <= max / 4 * 3 {
                    break;
                }
                conn.shed();
                total -= *held;
                *held = conn.held_bytes();
                total += *held;
            }
        }
        self.held = total;
    }
}

#[cfg(test)]
mod tests {
    use super::{client_by_ports, parse_listening, Headers};

    #[test]
    fn the_client_is_the_end_whose_port_nobody_listens_on() {
        let mut listening = std::collections::HashSet::new();
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0
   1: 0100007F:B9BA 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0000000000000000 20 4 30 10 -1
   2: 00000000000000000000000000000000:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 3 1 0000000000000000 100 0 0 10 0";
        parse_listening(table, &mut listening);
        assert_eq!(listening, [8080, 80].into_iter().collect(), "LISTEN only, v4 and v6");
        assert_eq!(client_by_ports(47546, 8080, &listening), Some(true));
        assert_eq!(client_by_ports(80, 62000, &listening), Some(false));
        assert_eq!(client_by_ports(80, 8080, &listening), None, "both listened on");
        assert_eq!(client_by_ports(40000, 50000, &listening), None, "neither");
    }

    fn pairs(h: &Headers) -> Vec<(String, String)> {
        h.iter()
            .map(|(n, v)| {
                (
                    String::from_utf8_lossy(n).into_owned(),
                    String::from_utf8_lossy(v).into_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn usual_methods_and_reasons_are_borrowed_others_kept_as_sent() {
        use super::{known_method, known_reason};
        use std::borrow::Cow;
        assert!(matches!(known_method("GET"), Cow::Borrowed("GET")));
        assert!(matches!(known_method("PROPFIND"), Cow::Owned(ref m) if m == "PROPFIND"));
        // Case matters: a method token is case-sensitive, "get" is another method.
        assert!(matches!(known_method("get"), Cow::Owned(ref m) if m == "get"));
        assert!(matches!(known_reason(b"Not Found"), Cow::Borrowed(b"Not Found")));
        assert!(matches!(known_reason(b"not found"), Cow::Owned(ref r) if r == b"not found"));
        assert!(matches!(known_reason(b""), Cow::Owned(ref r) if r.is_empty()));
    }

    #[test]
    fn headers_keep_order_and_look_up_any_case() {
        let h: Headers = [("Host", "a"), ("X-Empty", ""), ("host", "b")]
            .into_iter()
            .collect();
        assert_eq!(h.len(), 3);
        assert_eq!(pairs(&h)[1], ("X-Empty".into(), "".into()));
        assert_eq!(h.get(b"HOST"), Some(&b"a"[..]));
        assert_eq!(h.get(b"missing"), None);
    }

    #[test]
    fn a_parsed_head_is_one_block_and_equals_its_fields() {
        let head = b"GET / HTTP/1.1\r\nHost: a\r\nX-Empty:\r\nhost: b\r\n\r\n";
        let fields = [(&head[16..20], &head[22..23]), (&head[25..32], &head[33..33]), (&head[35..39], &head[41..42])];
        assert_eq!(fields[2], (&b"host"[..], &b"b"[..]));
        let h = Headers::from_head(head, fields.iter().copied());
        assert_eq!(h.bytes, &head[16..42], "one copy, from the first name to the last value");
        let pushed: Headers = [("Host", "a"), ("X-Empty", ""), ("host", "b")].into_iter().collect();
        assert_eq!(h, pushed);
        assert_ne!(h, [("Host", "a"), ("X-Empty", ""), ("host", "c")].into_iter().collect());
        // Slices of another buffer: copied one by one, same fields.
        let other = b"Host: a";
        let h = Headers::from_head(&head[..10], [(&other[..4], &other[6..])].into_iter());
        assert_eq!(h, [("Host", "a")].into_iter().collect());
        assert_eq!(Headers::from_head(head, std::iter::empty()), Headers::default());
    }

    #[test]
    fn set_value_shorter_or_longer_leaves_no_old_byte() {
        let mut h: Headers = [
            ("Cookie", "secret-value"),
            ("A", "b"),
            ("Authorization", "t"),
        ]
        .into_iter()
        .collect();
        h.set_value(0, b"[x]");
        h.set_value(2, b"Bearer [redacted]");
        assert_eq!(
            pairs(&h),
            vec![
                ("Cookie".into(), "[x]".into()),
                ("A".into(), "b".into()),
                ("Authorization".into(), "Bearer [redacted]".into())
            ]
        );
        assert!(
            !h.bytes.windows(6).any(|w| w == b"secret"),
            "old value left in {:?}",
            h.bytes
        );
        let first = h
            .bytes
            .windows(13)
            .position(|w| w == b"Authorization")
            .unwrap();
        assert_eq!(h.bytes[first + 13], 0, "old value left in {:?}", h.bytes);
    }
}
