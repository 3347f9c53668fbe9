//! Masks secrets in header values before any sink sees them (JSON stream, live view).
//!
//! The values of `Authorization`, `Proxy-Authorization`, `Cookie`, `Set-Cookie` and
//! `X-Api-Key`, and of any header named with `--redact NAME` (case-insensitive), become
//! `<redacted>`. For the two authorization headers the scheme is kept (`Bearer
//! <redacted>`, `Basic <redacted>`): it tells how a request authenticated without telling
//! the credentials. `--no-redact` turns all of this off.
use crate::protocols::{Exchange, Headers, Message};

/// What a masked value (or the credentials after a kept scheme) is replaced by.
pub const MASK: &str = "<redacted>";

/// Headers masked by default, lower case.
pub const DEFAULT_NAMES: &[&str] = &["authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key"];

/// Headers whose value starts with an authentication scheme worth keeping.
const SCHEME_NAMES: &[&str] = &["authorization", "proxy-authorization"];

/// Longest scheme kept; a longer first token is not a scheme, it is masked too.
const MAX_SCHEME: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redactor {
    /// Lower-case header names to mask; empty when redaction is off.
    names: Vec<Vec<u8>>,
    /// Per first letter (its low five bits, so any case), bit `min(length, 63)` of each
    /// name: most headers are passed over on their first letter and length.
    lengths: [u64; 32],
}

impl Default for Redactor {
    fn default() -> Self {
        Redactor::new::<&str>(&[], true)
    }
}

impl Redactor {
    /// The default names plus `extra` (any case); nothing at all when `enabled` is false.
    pub fn new<S: AsRef<str>>(extra: &[S], enabled: bool) -> Self {
        if !enabled {
            return Redactor { names: Vec::new(), lengths: [0; 32] };
        }
        let mut names: Vec<Vec<u8>> = DEFAULT_NAMES.iter().map(|n| n.as_bytes().to_vec()).collect();
        for n in extra {
            let n = n.as_ref().trim().to_ascii_lowercase().into_bytes();
            if !n.is_empty() && !names.contains(&n) {
                names.push(n);
            }
        }
        let mut lengths = [0; 32];
        for n in &names {
            lengths[first_letter(n)] |= length_bit(n);
        }
        Redactor { names, lengths }
    }

    pub fn disabled() -> Self {
        Redactor::new::<&str>(&[], false)
    }

    pub fn is_enabled(&self) -> bool {
        !self.names.is_empty()
    }

    pub fn apply(&self, ex: &mut Exchange) {
        if !self.is_enabled() {
            return;
        }
        self.apply_message(&mut ex.request);
        if let Some(resp) = ex.response.as_mut() {
            self.apply_message(resp);
        }
        for m in &mut ex.interim {
            self.apply_message(m);
        }
    }

    fn apply_message(&self, m: &mut Message) {
        self.apply_fields(&mut m.headers);
        if !m.trailers.is_empty() {
            self.apply_fields(&mut m.trailers);
        }
    }

    fn apply_fields(&self, fields: &mut Headers) {
        let mut from = 0;
        while let Some((i, lower)) = self.next_named(fields, from) {
            let mask = masked(lower, fields.field(i).1);
            fields.set_value(i, &mask);
            from = i + 1;
        }
    }

    /// The first field from `from` on that is masked, and its name as listed. Names are
    /// walked without indexing each field (most headers are passed over on their length).
    fn next_named(&self, headers: &Headers, from: usize) -> Option<(usize, &[u8])> {
        headers.names().enumerate().skip(from).find_map(|(i, name)| {
            let name = name.trim_ascii();
            if self.lengths[first_letter(name)] & length_bit(name) == 0 {
                return None;
            }
            // No allocation per header: the list is short and compared without copies.
            self.names.iter().find(|n| is_named(n, name)).map(|n| (i, n.as_slice()))
        })
    }
}

/// `name` is `lower` in any case; stops at the first byte that differs (most do at the
/// first: a header of the same length as a secret one is rarely it).
fn is_named(lower: &[u8], name: &[u8]) -> bool {
    lower.len() == name.len() && lower.iter().zip(name).all(|(&l, c)| l == c.to_ascii_lowercase())
}

/// No listed name is empty, so an empty one may share a row: its length bit is never set.
fn first_letter(name: &[u8]) -> usize {
    name.first().map_or(0, |&c| usize::from(c & 0x1f))
}

fn length_bit(name: &[u8]) -> u64 {
    1 << name.len().min(63)
}

fn masked(lower_name: &[u8], value: &[u8]) -> Vec<u8> {
    let value = value.trim_ascii();
    let keeps_scheme = SCHEME_NAMES.iter().any(|n| n.as_bytes() == lower_name);
    if keeps_scheme {
        if let Some(sp) = value.iter().position(|&b| b == b' ') {
            let scheme = &value[..sp];
            if !scheme.is_empty() && scheme.len() <= MAX_SCHEME && scheme.iter().all(is_token_byte) {
                let mut out = scheme.to_vec();
                out.push(b' ');
                out.extend_from_slice(MASK.as_bytes());
                return out;
            }
        }
    }
    MASK.as_bytes().to_vec()
}

/// RFC 9110 `tchar`.
fn is_token_byte(b: &u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocols::StartLine;

    fn msg(headers: &[(&str, &[u8])]) -> Message {
        Message {
            start: StartLine::Request { method: "GET".into(), target: b"/".to_vec(), version: 1 },
            headers: headers.iter().map(|(n, v)| (n.as_bytes(), *v)).collect(),
            trailers: Default::default(),
            body_size: 0,
            body: Vec::new(),
            body_truncated: false,
            first_ts_ns: 0,
            last_ts_ns: 0,
            process: Default::default(),
            complete: true,
            lost_bytes: 0,
        }
    }

    fn values(m: &Message) -> Vec<String> {
        m.headers.iter().map(|(_, v)| String::from_utf8_lossy(v).into_owned()).collect()
    }

    fn exchange(req: &[(&str, &[u8])], resp: &[(&str, &[u8])]) -> Exchange {
        Exchange { request: msg(req), response: Some(msg(resp)), note: None, interim: Vec::new() }
    }

    #[test]
    fn masks_default_names_keeping_the_scheme() {
        let mut ex = exchange(
            &[
                ("Host", b"a"),
                ("Authorization", b"Bearer s3cret"),
                ("proxy-AUTHORIZATION", b"Basic dXNlcjpwYXNz"),
                ("Cookie", b"sid=abc; theme=dark"),
                ("X-API-Key", b"k-123"),
            ],
            &[("Set-Cookie", b"sid=abc; HttpOnly"), ("Content-Length", b"0")],
        );
        Redactor::default().apply(&mut ex);
        assert_eq!(
            values(&ex.request),
            ["a", "Bearer <redacted>", "Basic <redacted>", "<redacted>", "<redacted>"]
        );
        assert_eq!(values(ex.response.as_ref().unwrap()), ["<redacted>", "0"]);
        // An interim head (103 Early Hints) may set cookies too.
        ex.interim.push(msg(&[("Link", b"</a.css>"), ("Set-Cookie", b"early=1")]));
        Redactor::default().apply(&mut ex);
        assert_eq!(values(&ex.interim[0]), ["</a.css>", "<redacted>"]);
    }

    #[test]
    fn trailer_fields_are_masked_as_headers_are() {
        let mut ex = exchange(&[("Host", b"a")], &[]);
        ex.request.trailers.push(b"X-Api-Key", b"k-123");
        ex.request.trailers.push(b"Digest", b"sha-256=abc");
        ex.response.as_mut().unwrap().trailers.push(b"Set-Cookie", b"late=1");
        Redactor::default().apply(&mut ex);
        let trailers = |m: &Message| m.trailers.iter().map(|(_, v)| String::from_utf8_lossy(v).into_owned()).collect::<Vec<_>>();
        assert_eq!(trailers(&ex.request), ["<redacted>", "sha-256=abc"]);
        assert_eq!(trailers(ex.response.as_ref().unwrap()), ["<redacted>"]);
    }

    #[test]
    fn schemeless_or_odd_credentials_are_masked_whole() {
        let mut ex = exchange(
            &[
                ("Authorization", b"s3cret"),
                ("Authorization", b"\x1b[31m s3cret"),
                ("Authorization", &[b'x'; 40]),
                ("Authorization", b""),
            ],
            &[],
        );
        Redactor::default().apply(&mut ex);
        assert_eq!(values(&ex.request), ["<redacted>"; 4]);
    }

    #[test]
    fn extra_names_are_case_insensitive() {
        let mut ex = exchange(&[("X-Session", b"t0k"), ("x-other", b"keep")], &[("x-SESSION", b"t1k")]);
        Redactor::new(&["X-SESSION"], true).apply(&mut ex);
        assert_eq!(values(&ex.request), ["<redacted>", "keep"]);
        assert_eq!(values(ex.response.as_ref().unwrap()), ["<redacted>"]);
        // Names of 63 bytes and more share one length bit.
        let long = "x-".repeat(40);
        let longer = format!("{long}y");
        let mut ex = exchange(&[(&long[..], b"a"), (&longer[..], b"b"), (&long[..63], b"c")], &[]);
        Redactor::new(&[&long], true).apply(&mut ex);
        assert_eq!(values(&ex.request), ["<redacted>", "b", "c"]);
    }

    #[test]
    fn disabled_shows_everything() {
        let mut ex = exchange(&[("Authorization", b"Bearer s3cret"), ("X-Session", b"t")], &[]);
        let before = ex.clone();
        Redactor::new(&["x-session"], false).apply(&mut ex);
        assert_eq!(ex, before);
        assert!(!Redactor::disabled().is_enabled());
    }
}
