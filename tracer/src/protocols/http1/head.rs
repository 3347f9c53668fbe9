//! Message heads: httparse into owned start lines and headers, and the body framing
//! rules of RFC 9112 section 6.

use std::mem::MaybeUninit;

use httparse::{Header, ParserConfig, Status};

use crate::protocols::{known_method, known_reason, version_of, StartLine, VERSION_UNKNOWN};

/// Header slots on the stack, enough for nearly every head.
pub(super) const MAX_HEADERS: usize = 128;
/// Slots for a head with more fields, allocated only for such a head (a response with many
/// Set-Cookie fields); more than this is a parse error.
const MAX_HEADERS_RARE: usize = 2048;

type Slots<'b> = [MaybeUninit<Header<'b>>];

/// Runs `parse` with `MAX_HEADERS` slots, and again with `MAX_HEADERS_RARE` when they were
/// too few.
fn with_slots<'b, T>(mut parse: impl FnMut(&mut Slots<'b>) -> Result<T, HeadError>) -> Result<T, HeadError> {
    let mut slots = [const { MaybeUninit::<Header<'b>>::uninit() }; MAX_HEADERS];
    match parse(&mut slots) {
        Err(HeadError::Syntax(httparse::Error::TooManyHeaders)) => {
            let mut many: Vec<MaybeUninit<Header<'b>>> =
                std::iter::repeat_with(MaybeUninit::uninit).take(MAX_HEADERS_RARE).collect();
            parse(&mut many)
        }
        parsed => parsed,
    }
}

pub(super) use crate::protocols::Headers;

/// How the body of a message ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Framing {
    Empty,
    Length(u64),
    Chunked,
    UntilClose,
    /// The connection stops being HTTP after this head (101, successful CONNECT).
    Upgrade,
    /// The framing fields cannot be trusted (RFC 9112 section 6.3, items 4 and 5: an
    /// invalid or conflicting Content-Length, a request coding that is not chunked):
    /// recipients reject such a message, and where its body ends is unknown.
    Unknown,
}

/// What of the request method the response framing depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum MethodKind {
    Head,
    Connect,
    Other,
}

impl MethodKind {
    fn of(method: &str) -> Self {
        match method {
            "HEAD" => MethodKind::Head,
            "CONNECT" => MethodKind::Connect,
            _ => MethodKind::Other,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub(super) enum HeadError {
    #[error("malformed head: {0}")]
    Syntax(httparse::Error),
}

pub(super) enum Parsed<T> {
    Partial,
    Complete { len: usize, head: T },
}

/// The method-independent framing headers.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct BodyHeaders {
    chunked: bool,
    other_encoding: bool,
    length: Option<u64>,
    /// A Content-Length that is not a number, or two that differ.
    bad_length: bool,
}

pub(super) struct RequestHead {
    pub start: StartLine,
    pub headers: Headers,
    pub method: MethodKind,
    pub framing: Framing,
    /// Not valid HTTP, read leniently (`parse_request_lenient`): the message is marked.
    pub lenient: bool,
}

pub(super) struct ResponseHead {
    pub start: StartLine,
    pub headers: Headers,
    pub status: u16,
    pub body: BodyHeaders,
}

impl ResponseHead {
    /// 1xx other than 101: not the response, the final one follows.
    pub fn is_interim(&self) -> bool {
        (100..200).contains(&self.status) && self.status != 101
    }
}

pub(super) fn parse_request(buf: &[u8]) -> Result<Parsed<RequestHead>, HeadError> {
    match with_slots(|slots| parse_request_strict(buf, slots)) {
        Err(HeadError::Syntax(e)) => parse_request_lenient(buf).unwrap_or(Err(HeadError::Syntax(e))),
        parsed => parsed,
    }
}

fn parse_request_strict<'b>(buf: &'b [u8], slots: &mut Slots<'b>) -> Result<Parsed<RequestHead>, HeadError> {
    let mut req = httparse::Request::new(&mut []);
    let len = match ParserConfig::default().parse_request_with_uninit_headers(&mut req, buf, slots) {
        Ok(Status::Complete(len)) => len,
        Ok(Status::Partial) => return Ok(Parsed::Partial),
        Err(e) => return Err(HeadError::Syntax(e)),
    };
    let (Some(method), Some(path), Some(version)) = (req.method, req.path, req.version) else {
        return Err(HeadError::Syntax(httparse::Error::Token));
    };
    let body = body_headers(req.headers.iter().map(|h| (h.name.as_bytes(), h.value)));
    let head = RequestHead {
        start: StartLine::Request { method: known_method(method), target: path.as_bytes().to_vec(), version },
        headers: owned(buf, req.headers),
        method: MethodKind::of(method),
        framing: request_framing(&body),
        lenient: false,
    };
    Ok(Parsed::Complete { len, head })
}

/// Longest request line read leniently while it is still coming (servers refuse longer
/// ones); beyond it, bytes after a "GET " that never end the line are not waited on.
pub(super) const MAX_LENIENT_LINE: usize = 8192;

/// A request httparse refuses (a control byte or DEL in a field or the target, a malformed
/// field line) whose request line still has HTTP's shape: a method of upper-case letters,
/// a target of any bytes but space, CR, LF and NUL (a sign of binary data), "HTTP/1.x".
/// Servers answer such requests, so they are reported, their bytes as they came (sinks
/// escape them), each field line split at its first ':' (a line without one is a name
/// with an empty value), and marked. None: not that shape.
fn parse_request_lenient(buf: &[u8]) -> Option<Result<Parsed<RequestHead>, HeadError>> {
    let line_end = buf.iter().position(|&b| b == b'\n');
    let line = &buf[..line_end.unwrap_or(buf.len())];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut parts = line.splitn(3, |&b| b == b' ');
    let (method, target, version) = (parts.next()?, parts.next(), parts.next());
    let target_ok = |t: &[u8]| !t.is_empty() && !t.iter().any(|&b| matches!(b, b' ' | b'\r' | b'\n' | 0));
    if method.is_empty() || !method.iter().all(|b| b.is_ascii_uppercase()) {
        return None;
    }
    let Some(line_end) = line_end else {
        // The line is still coming: wait while what came has the shape.
        let so_far = line.len() <= MAX_LENIENT_LINE
            && target.is_none_or(|t| t.is_empty() || target_ok(t))
            && version.is_none_or(|v| b"HTTP/1.1".starts_with(v) || b"HTTP/1.0".starts_with(v));
        return so_far.then_some(Ok(Parsed::Partial));
    };
    let version = version_of(version?)?;
    let target = target.filter(|t| target_ok(t))?;
    let Some(len) = find_blank_line(&buf[line_end..]).map(|n| line_end + n) else {
        return Some(Ok(Parsed::Partial));
    };
    let fields = lenient_fields(&buf[line_end + 1..len]);
    let method = std::str::from_utf8(method).ok()?;
    let framing = request_framing(&body_headers(fields.iter()));
    Some(Ok(Parsed::Complete {
        len,
        head: RequestHead {
            start: StartLine::Request { method: known_method(method), target: target.to_vec(), version },
            headers: fields,
            method: MethodKind::of(method),
            framing,
            lenient: !valid_but_for_utf8(&buf[..len], line_end),
        },
    }))
}

/// Whether a head httparse refused is valid HTTP all the same: its target holds bytes of
/// 0x80 and above that are not UTF-8 (`/caf\xe9` in Latin-1), which HTTP allows and httparse,
/// whose target is a `str`, does not. Checked on a copy with those bytes made ASCII.
fn valid_but_for_utf8(head: &[u8], line_end: usize) -> bool {
    if !head[..line_end].iter().any(|&b| b >= 0x80) {
        return false;
    }
    let mut copy = head.to_vec();
    copy[..line_end].iter_mut().filter(|b| **b >= 0x80).for_each(|b| *b = b'x');
    matches!(with_slots(|slots| parse_request_strict(&copy, slots)), Ok(Parsed::Complete { .. }))
}

/// The field lines of a head read leniently: each split at its first ':' (a line without
/// one is a name with an empty value); a line that starts with a space or tab continues the
/// value before it (obs-fold, RFC 9112 section 5.2), which is kept whole, its line breaks
/// turned into spaces as in a response, so that a folded secret is masked with its field;
/// unless it reads as a field line itself (`field_shaped`).
fn lenient_fields(lines: &[u8]) -> Headers {
    // (name, value) as offsets into `lines`.
    let mut spans: Vec<[usize; 4]> = Vec::new();
    let mut at = 0;
    for line in lines.split(|&b| b == b'\n') {
        let start = at;
        at += line.len() + 1;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let end = start + line.len();
        let trimmed = |from: usize| {
            let v = lines[from..end].trim_ascii();
            let v_at = v.as_ptr() as usize - lines.as_ptr() as usize;
            [v_at, v_at + v.len()]
        };
        if line.is_empty() {
            continue;
        }
        match spans.last_mut() {
            Some(last) if matches!(line[0], b' ' | b'\t') && !line.trim_ascii().is_empty() && !field_shaped(line.trim_ascii_start()) => {
                let [_, e] = trimmed(start);
                // A field whose value was empty so far starts its value here.
                if last[2] == last[3] {
                    last[2] = trimmed(start)[0];
                }
                last[3] = e;
            }
            _ => match line.iter().position(|&b| b == b':') {
                Some(c) => {
                    let [n, ne] = [start, start + line[..c].trim_ascii_end().len()];
                    let [v, ve] = trimmed(start + c + 1);
                    let n = n + (line.len() - line.trim_ascii_start().len()).min(ne - n);
                    spans.push([n, ne, v, ve]);
                }
                None => spans.push([start, end, end, end]),
            },
        }
    }
    let mut fields = Headers::with_capacity(spans.len(), lines.len());
    for [n, ne, v, ve] in spans {
        fields.push(&lines[n..ne], &lines[v..ve]);
    }
    fields.unfold_values();
    fields
}

/// The fields of a trailer section (its blank line included or not), read as the field
/// lines of a lenient head: a malformed trailer is still shown as it came.
pub(super) fn trailer_fields(section: &[u8]) -> Headers {
    lenient_fields(section)
}

/// A line that reads as a field line (a token, then ':'): though indented, taken as one,
/// not as the value before it continued, so that an indented secret field is masked.
fn field_shaped(line: &[u8]) -> bool {
    let tchar = |b: &u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b);
    line.iter().position(|&b| b == b':').is_some_and(|c| c > 0 && line[..c].iter().all(tchar))
}

/// RFC 9112 6.3 for requests: chunked wins over Content-Length, and without either there
/// is no body.
fn request_framing(body: &BodyHeaders) -> Framing {
    if body.chunked {
        Framing::Chunked
    } else if body.other_encoding || body.bad_length {
        Framing::Unknown
    } else {
        match body.length {
            Some(0) | None => Framing::Empty,
            Some(n) => Framing::Length(n),
        }
    }
}

pub(super) fn parse_response(buf: &[u8]) -> Result<Parsed<ResponseHead>, HeadError> {
    match with_slots(|slots| parse_response_with(buf, false, slots)) {
        // RFC 9112 section 5.2: a recipient of a response replaces each obs-fold (a field
        // line continued on the next, which starts with a space) with spaces, as clients
        // do. Folds are rare and refused by the strict parse: the usual head parses once.
        Err(HeadError::Syntax(_)) => with_slots(|slots| parse_response_with(buf, true, slots)),
        parsed => parsed,
    }
}

fn parse_response_with<'b>(buf: &'b [u8], unfold: bool, slots: &mut Slots<'b>) -> Result<Parsed<ResponseHead>, HeadError> {
    let mut resp = httparse::Response::new(&mut []);
    let mut config = ParserConfig::default();
    config.allow_obsolete_multiline_headers_in_responses(unfold);
    let len = match config.parse_response_with_uninit_headers(&mut resp, buf, slots) {
        Ok(Status::Complete(len)) => len,
        Ok(Status::Partial) => return Ok(Parsed::Partial),
        Err(e) => return Err(HeadError::Syntax(e)),
    };
    let (Some(version), Some(status)) = (resp.version, resp.code) else {
        return Err(HeadError::Syntax(httparse::Error::Status));
    };
    let mut headers = owned(buf, resp.headers);
    if unfold {
        headers.unfold_values();
    }
    let head = ResponseHead {
        start: StartLine::Response {
            version,
            status,
            reason: known_reason(match resp.reason {
                Some(r) if !r.is_empty() => r.as_bytes(),
                _ => raw_reason(buf),
            }),
        },
        headers,
        status,
        body: body_headers(resp.headers.iter().map(|h| (h.name.as_bytes(), h.value))),
    };
    Ok(Parsed::Complete { len, head })
}

/// The reason phrase as it came, from the status line httparse accepted ("HTTP/1.x", SP,
/// three digits, SP, reason): httparse gives "" for one with bytes above 0x7e (RFC 9112's
/// obs-text: "Café", Latin-1), which servers do send; sinks escape what is not UTF-8.
fn raw_reason(buf: &[u8]) -> &[u8] {
    let line = &buf[..memchr::memchr(b'\n', buf).unwrap_or(buf.len())];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    line.get(13..).unwrap_or(b"")
}

/// RFC 9112 6.3, in its order: HEAD and 1xx/204/304 have no body, a successful CONNECT
/// and 101 leave HTTP, chunked wins over Content-Length, and without either the body runs
/// to the close. A bad Content-Length matters only where a body may follow.
pub(super) fn response_framing(status: u16, method: MethodKind, body: &BodyHeaders) -> Framing {
    if status == 101 || (method == MethodKind::Connect && (200..300).contains(&status)) {
        return Framing::Upgrade;
    }
    if method == MethodKind::Head || (100..200).contains(&status) || status == 204 || status == 304 {
        return Framing::Empty;
    }
    if body.chunked {
        Framing::Chunked
    } else if body.other_encoding {
        Framing::UntilClose
    } else if body.bad_length {
        Framing::Unknown
    } else {
        match body.length {
            Some(0) => Framing::Empty,
            Some(n) => Framing::Length(n),
            None => Framing::UntilClose,
        }
    }
}

/// The framing fields; a bad Content-Length is noted, not an error, so that the head is
/// still reported and the framing rules decide whether it matters.
fn body_headers<'a>(headers: impl Iterator<Item = (&'a [u8], &'a [u8])>) -> BodyHeaders {
    let mut out = BodyHeaders::default();
    for (name, value) in headers {
        if name.eq_ignore_ascii_case(b"transfer-encoding") {
            // Only the last coding frames the message; an earlier "chunked" is not final.
            let last = value.rsplit(|&b| b == b',').next().unwrap_or(b"");
            let chunked = trim(last).eq_ignore_ascii_case(b"chunked");
            out.chunked = chunked;
            out.other_encoding = !chunked;
        } else if name.eq_ignore_ascii_case(b"content-length") {
            match parse_length(value) {
                Some(n) if out.length.is_none_or(|old| old == n) => out.length = Some(n),
                _ => out.bad_length = true,
            }
        }
    }
    out
}

/// A Content-Length value; a list of identical values (`3, 3`, from merged fields) is that
/// value, as RFC 9110 section 8.6 lets a recipient take it.
fn parse_length(value: &[u8]) -> Option<u64> {
    let mut values = value.split(|&b| b == b',').map(one_length);
    let first = values.next()??;
    values.all(|v| v == Some(first)).then_some(first)
}

fn one_length(value: &[u8]) -> Option<u64> {
    let v = trim(value);
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    v.iter().try_fold(0u64, |acc, &d| acc.checked_mul(10)?.checked_add(u64::from(d - b'0')))
}

fn trim(v: &[u8]) -> &[u8] {
    let start = v.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(v.len());
    let end = v.iter().rposition(|b| !b.is_ascii_whitespace()).map_or(start, |e| e + 1);
    &v[start..end]
}

fn owned(buf: &[u8], headers: &[Header<'_>]) -> Headers {
    Headers::from_head(buf, headers.iter().map(|h| (h.name.as_bytes(), h.value)))
}

/// Where a plausible message start is, when resynchronising after a gap.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Candidate {
    /// A full start token at this offset.
    At(usize),
    /// The buffer ends with a prefix of a start token beginning here.
    Prefix(usize),
    None,
}

const REQUEST_TOKENS: [&[u8]; 9] = [
    b"GET ", b"POST ", b"PUT ", b"DELETE ", b"HEAD ", b"OPTIONS ", b"PATCH ", b"CONNECT ", b"TRACE ",
];
const RESPONSE_TOKENS: [&[u8]; 1] = [b"HTTP/1."];

/// A start line whose end was not captured (a request target longer than what its syscall
/// copied): what can be said of it from what came. A request: its method (one of the
/// start tokens) and its target so far, the version unknown unless the line got as far
/// as a whole one; a response: its version and status once those came, and the reason
/// so far. None when `buf` holds no such beginning (or holds a line end: that is a head).
pub(super) fn cut_start_line(request: bool, buf: &[u8]) -> Option<(StartLine, MethodKind)> {
    if buf.contains(&b'\n') || !starts_message(request, buf) {
        return None;
    }
    let line = buf.strip_suffix(b"\r").unwrap_or(buf);
    if request {
        let mut parts = line.splitn(3, |&b| b == b' ');
        let (method, target, rest) = (parts.next()?, parts.next()?, parts.next());
        if target.is_empty() || target.iter().any(|&b| matches!(b, b'\r' | 0)) {
            return None;
        }
        let method = std::str::from_utf8(method).ok()?;
        let version = rest.and_then(version_of).unwrap_or(VERSION_UNKNOWN);
        let start = StartLine::Request { method: known_method(method), target: target.to_vec(), version };
        Some((start, MethodKind::of(method)))
    } else {
        let (v, status, rest) = (version_of(line.get(..8)?)?, line.get(8..12)?, line.get(12..).unwrap_or_default());
        let digits = status.strip_prefix(b" ").filter(|d| d.iter().all(u8::is_ascii_digit))?;
        let status = std::str::from_utf8(digits).ok()?.parse().ok()?;
        let reason = match rest {
            [] => rest,
            [b' ', reason @ ..] => reason,
            _ => return None,
        };
        Some((StartLine::Response { version: v, status, reason: known_reason(reason) }, MethodKind::Other))
    }
}

fn start_tokens(request: bool) -> &'static [&'static [u8]] {
    if request { &REQUEST_TOKENS } else { &RESPONSE_TOKENS }
}

/// Whether `buf` begins with a full start token.
pub(super) fn starts_message(request: bool, buf: &[u8]) -> bool {
    may_start_message(request, buf, false)
}

/// Whether `buf` begins with a full start token, or (`ends`: nothing follows `buf`) is a
/// non-empty beginning of one.
pub(super) fn may_start_message(request: bool, buf: &[u8], ends: bool) -> bool {
    start_tokens(request).iter().any(|t| buf.starts_with(t) || (ends && !buf.is_empty() && t.starts_with(buf)))
}

pub(super) fn find_candidate(request: bool, buf: &[u8]) -> Candidate {
    let tokens = start_tokens(request);
    for (i, &b) in buf.iter().enumerate() {
        if !tokens.iter().any(|t| t[0] == b) {
            continue;
        }
        let rest = &buf[i..];
        for t in tokens {
            if rest.starts_with(t) {
                return Candidate::At(i);
            }
            if t.starts_with(rest) {
                return Candidate::Prefix(i);
            }
        }
    }
    Candidate::None
}

/// Offset just past the first empty line ("\n\n" or "\n\r\n"), the end of a head or of
/// a trailer section.
pub(super) fn find_blank_line(buf: &[u8]) -> Option<usize> {
    let mut i = 0;
    while let Some(nl) = buf[i..].iter().position(|&b| b == b'\n') {
        let at = i + nl + 1;
        match buf.get(at..) {
            Some([b'\n', ..]) => return Some(at + 1),
            Some([b'\r', b'\n', ..]) => return Some(at + 2),
            _ => i = at,
        }
        if i >= buf.len() {
            break;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_lines_cut_by_the_capture_say_what_came() {
        let req = |b: &[u8]| match cut_start_line(true, b) {
            Some((StartLine::Request { method, target, version }, _)) => Some((method.into_owned(), String::from_utf8(target).unwrap(), version)),
            _ => None,
        };
        assert_eq!(req(b"GET /search?q=aaaa"), Some(("GET".into(), "/search?q=aaaa".into(), VERSION_UNKNOWN)));
        assert_eq!(req(b"POST /up HTTP/1."), Some(("POST".into(), "/up".into(), VERSION_UNKNOWN)));
        assert_eq!(req(b"GET /x HTTP/1.0\r"), Some(("GET".into(), "/x".into(), 0)));
        assert_eq!(req(b"HEAD /x HTTP/1.1"), Some(("HEAD".into(), "/x".into(), 1)));
        assert!(matches!(cut_start_line(true, b"HEAD /x"), Some((_, MethodKind::Head))));
        // Not even a target, a line that ended (a head), or no start token.
        for b in [&b"GET "[..], b"GET /x HTTP/1.1\r\nHost", b"get /x", b"\x16\x03\x01 GET", b"GET /a\rb"] {
            assert_eq!(req(b), None, "{:?}", String::from_utf8_lossy(b));
        }
        let resp = |b: &[u8]| match cut_start_line(false, b) {
            Some((StartLine::Response { version, status, reason }, _)) => Some((version, status, reason.into_owned())),
            _ => None,
        };
        assert_eq!(resp(b"HTTP/1.1 503 Service Unavail"), Some((1, 503, b"Service Unavail".to_vec())));
        assert_eq!(resp(b"HTTP/1.0 200"), Some((0, 200, Vec::new())));
        for b in [&b"HTTP/1.1 20"[..], b"HTTP/1.1 2x0 OK", b"HTTP/1.1 2000", b"HTTP/2 200 OK", b"HTTP/1.1 200 OK\r\n"] {
            assert_eq!(resp(b), None, "{:?}", String::from_utf8_lossy(b));
        }
    }

    #[test]
    fn framing_rules() {
        let cl = BodyHeaders { length: Some(5), ..Default::default() };
        assert_eq!(response_framing(200, MethodKind::Other, &cl), Framing::Length(5));
        assert_eq!(response_framing(200, MethodKind::Head, &cl), Framing::Empty);
        assert_eq!(response_framing(304, MethodKind::Other, &cl), Framing::Empty);
        assert_eq!(response_framing(200, MethodKind::Connect, &cl), Framing::Upgrade);
        assert_eq!(response_framing(200, MethodKind::Other, &BodyHeaders::default()), Framing::UntilClose);
        let bad = BodyHeaders { bad_length: true, ..Default::default() };
        assert_eq!(response_framing(200, MethodKind::Other, &bad), Framing::Unknown);
        assert_eq!(response_framing(304, MethodKind::Other, &bad), Framing::Empty);
        assert_eq!(response_framing(200, MethodKind::Head, &bad), Framing::Empty);
        assert_eq!(request_framing(&bad), Framing::Unknown);
        let chunked_and_bad = BodyHeaders { chunked: true, bad_length: true, ..Default::default() };
        assert_eq!(request_framing(&chunked_and_bad), Framing::Chunked);
        let gzip_only = BodyHeaders { other_encoding: true, ..Default::default() };
        assert_eq!(request_framing(&gzip_only), Framing::Unknown);
    }

    #[test]
    fn control_bytes_in_the_target_are_read_leniently() {
        for target in [&b"/ctl\x01x"[..], b"/del\x7f", b"/esc\x1b[2J"] {
            let req = [&b"GET "[..], target, b" HTTP/1.1\r\nHost: a\r\n\r\n"].concat();
            let Ok(Parsed::Complete { head, len }) = parse_request(&req) else { panic!("{req:?}") };
            assert_eq!(len, req.len());
            assert!(head.lenient, "{req:?}");
            assert!(matches!(&head.start, StartLine::Request { target: t, .. } if t == target), "{req:?}");
        }
        // Bytes above 0x7e are no error (raw UTF-8 paths, Latin-1 ones, a lone 0x80):
        // not marked, and kept as they came.
        for target in ["/hi\u{e9}".as_bytes(), b"/caf\xe9", b"/b80-\x80", b"/bff-\xff"] {
            let req = [&b"GET "[..], target, b" HTTP/1.1\r\nHost: a\r\n\r\n"].concat();
            let Ok(Parsed::Complete { head, .. }) = parse_request(&req) else { panic!("{req:?}") };
            assert!(!head.lenient, "{req:?}");
            assert!(matches!(&head.start, StartLine::Request { target: t, .. } if t == target), "{req:?}");
        }
        // With a control byte too, it is marked.
        let Ok(Parsed::Complete { head, .. }) = parse_request(b"GET /\xe9\x01 HTTP/1.1\r\n\r\n") else { panic!() };
        assert!(head.lenient);
        // Not a request line: a space in the version, or no version.
        assert!(parse_request(b"GET /a b HTTP/1.1\r\n\r\n").is_err());
        assert!(parse_request(b"GET /\x01\r\n\r\n").is_err());
        assert!(parse_request(b"GET /nul\x00 HTTP/1.1\r\n\r\n").is_err());
    }

    #[test]
    fn candidates() {
        assert_eq!(find_candidate(true, b"xxGET / HTTP/1.1"), Candidate::At(2));
        assert_eq!(find_candidate(true, b"xxPO"), Candidate::Prefix(2));
        assert_eq!(find_candidate(false, b"\x00\x01HTTP/1.1 200"), Candidate::At(2));
        assert_eq!(find_candidate(false, b"zzz"), Candidate::None);
    }

    #[test]
    fn blank_lines() {
        assert_eq!(find_blank_line(b"a\r\n\r\nb"), Some(5));
        assert_eq!(find_blank_line(b"a\n\nb"), Some(3));
        assert_eq!(find_blank_line(b"a\r\nb\r\n"), None);
    }

    #[test]
    fn folded_response_field_is_unfolded() {
        let buf = b"HTTP/1.1 200 OK\r\nX-Folded: first\r\n  second\r\nX-Next: n\r\n\r\n";
        let Ok(Parsed::Complete { len, head }) = parse_response(buf) else { panic!("not parsed") };
        assert_eq!(len, buf.len());
        let fields: Vec<_> = head.headers.iter().collect();
        assert_eq!(fields, [(&b"X-Folded"[..], &b"first    second"[..]), (&b"X-Next"[..], &b"n"[..])]);
        assert!(parse_response(b"HTTP/1.1 200 OK\r\n bad\r\n\r\n").is_err(), "a fold needs a field before it");
    }

    #[test]
    fn heads_with_many_fields_parse() {
        let fields: String = (0..300).map(|i| format!("Set-Cookie: c{i}=v\r\n")).collect();
        let resp = format!("HTTP/1.1 200 OK\r\n{fields}Content-Length: 2\r\n\r\n");
        let Ok(Parsed::Complete { head, .. }) = parse_response(resp.as_bytes()) else { panic!("response") };
        assert_eq!((head.headers.len(), head.body.length), (301, Some(2)));
        let req = format!("GET / HTTP/1.1\r\n{}\r\n", fields.replace("Set-Cookie", "X-Many"));
        let Ok(Parsed::Complete { head, .. }) = parse_request(req.as_bytes()) else { panic!("request") };
        assert_eq!((head.headers.len(), head.lenient), (300, false));
        let too_many: String = (0..=MAX_HEADERS_RARE).map(|i| format!("X-{i}: v\r\n")).collect();
        assert!(parse_response(format!("HTTP/1.1 200 OK\r\n{too_many}\r\n").as_bytes()).is_err());
    }

    #[test]
    fn lengths() {
        assert_eq!(parse_length(b" 42 "), Some(42));
        assert_eq!(parse_length(b"-1"), None);
        assert_eq!(parse_length(b"99999999999999999999"), None);
        assert_eq!(parse_length(b"3, 3"), Some(3));
        assert_eq!(parse_length(b"3,3 ,3"), Some(3));
        assert_eq!(parse_length(b"3, 4"), None);
        assert_eq!(parse_length(b"3,"), None);
        assert_eq!(parse_length(b""), None);
    }
}
