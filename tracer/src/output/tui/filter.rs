//! The `/` filter: space-separated terms, all of which must match.
//!
//! ```text
//! GET  /api  curl        a bare word: method, host+target or comm contains it (any case)
//! status>=500  status=4xx  latency>100ms  latency<=2s  pid=4242  size>1K
//! method=POST  path~/api  path=/index.html  host~example  comm=curl  role=server
//! !word  !status=200     a leading `!` negates a term
//! ```
//! `=` is equality, `!=` its negation, `~` (or `:`) "contains"; `<`, `<=`, `>`, `>=`
//! compare numbers. Latency takes `us`, `ms` (the default) or `s`; size takes `B`, `K`, `M`.
//! A term is a comparison only when the text before its operator names a field: `q=a` and
//! `127.0.0.1:8080/x` are bare words.

use super::entry::Entry;
use crate::protocols::Role;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error("`{0}` needs a value")]
    MissingValue(String),
    #[error("bad value `{value}` for {field}")]
    BadValue { field: &'static str, value: String },
    #[error("`{op}` does not apply to {field}")]
    BadOperator { field: &'static str, op: &'static str },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Contains,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Contains => "~",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
        }
    }

    fn cmp(self, a: u64, b: u64) -> bool {
        match self {
            Op::Eq | Op::Contains => a == b,
            Op::Ne => a != b,
            Op::Lt => a < b,
            Op::Le => a <= b,
            Op::Gt => a > b,
            Op::Ge => a >= b,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TextField {
    Method,
    Path,
    Host,
    Comm,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NumField {
    Status,
    Pid,
    LatencyUs,
    Size,
}

/// What a term compares, by the name before its operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Text(TextField),
    Status,
    Pid,
    Latency,
    Size,
    Role,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Test {
    /// Lower-cased word, looked for in method, host+target and comm.
    Word(String),
    Text(TextField, Op, String),
    Num(NumField, Op, u64),
    /// `status=5xx`: the hundreds digit.
    StatusClass(Op, u64),
    Role(Role),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Term {
    negate: bool,
    test: Test,
}

/// A parsed filter; the empty filter matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    terms: Vec<Term>,
}

impl Filter {
    pub fn parse(input: &str) -> Result<Filter, FilterError> {
        let terms = input.split_whitespace().map(term).collect::<Result<_, _>>()?;
        Ok(Filter { terms })
    }

    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    pub fn matches(&self, e: &Entry) -> bool {
        self.terms.iter().all(|t| t.test.matches(e) != t.negate)
    }
}

const OPS: [(&str, Op); 8] = [
    ("<=", Op::Le),
    (">=", Op::Ge),
    ("!=", Op::Ne),
    ("==", Op::Eq),
    ("=", Op::Eq),
    ("<", Op::Lt),
    (">", Op::Gt),
    ("~", Op::Contains),
];

fn term(word: &str) -> Result<Term, FilterError> {
    let (negate, word) = match word.strip_prefix('!') {
        Some(rest) if !rest.is_empty() => (true, rest),
        _ => (false, word),
    };
    Ok(Term { negate, test: test(word)? })
}

/// Where the operator starts, and which: the first operator character in the word.
fn split_op(word: &str) -> Option<(&str, Op, &str)> {
    let at = word.find(['<', '>', '=', '!', '~', ':'])?;
    let (field, rest) = word.split_at(at);
    if let Some(value) = rest.strip_prefix(':') {
        return Some((field, Op::Contains, value));
    }
    OPS.iter()
        .find(|(s, _)| rest.starts_with(s))
        .map(|(s, op)| (field, *op, &rest[s.len()..]))
}

fn test(word: &str) -> Result<Test, FilterError> {
    // Only a field's name makes a comparison: other text before `=` or `:` is part of a
    // word (`q=a`, `127.0.0.1:8080/x`), which the URL may well contain.
    let Some((field, op, value)) = split_op(word).and_then(|(f, op, v)| Some((field(f)?, op, v))) else {
        return Ok(bare(word));
    };
    if value.is_empty() {
        return Err(FilterError::MissingValue(word.to_owned()));
    }
    match field {
        Field::Text(f) => Ok(Test::Text(f, op, value.to_lowercase())),
        Field::Status => status(op, value),
        Field::Pid => num(NumField::Pid, "pid", op, value.parse().ok(), value),
        Field::Latency => num(NumField::LatencyUs, "latency", op, duration_us(value), value),
        Field::Size => num(NumField::Size, "size", op, size(value), value),
        Field::Role => role(op, value),
    }
}

fn field(name: &str) -> Option<Field> {
    Some(match name.to_ascii_lowercase().as_str() {
        "method" | "m" => Field::Text(TextField::Method),
        "path" | "target" | "url" | "p" => Field::Text(TextField::Path),
        "host" | "h" => Field::Text(TextField::Host),
        "comm" | "c" => Field::Text(TextField::Comm),
        "status" | "s" => Field::Status,
        "pid" => Field::Pid,
        "latency" | "lat" | "l" => Field::Latency,
        "size" => Field::Size,
        "role" => Field::Role,
        _ => return None,
    })
}

fn bare(word: &str) -> Test {
    let lower = word.to_ascii_lowercase();
    match class(&lower) {
        Some(c) => Test::StatusClass(Op::Eq, c),
        None => Test::Word(word.to_lowercase()),
    }
}

/// `5xx` -> 5.
fn class(v: &str) -> Option<u64> {
    let b = v.as_bytes();
    (b.len() == 3 && (b'1'..=b'5').contains(&b[0]) && b[1..].eq_ignore_ascii_case(b"xx"))
        .then(|| (b[0] - b'0') as u64)
}

fn status(op: Op, value: &str) -> Result<Test, FilterError> {
    if let Some(c) = class(value) {
        return Ok(Test::StatusClass(op, c));
    }
    num(NumField::Status, "status", op, value.parse().ok(), value)
}

fn num(field: NumField, name: &'static str, op: Op, v: Option<u64>, raw: &str) -> Result<Test, FilterError> {
    if op == Op::Contains {
        return Err(FilterError::BadOperator { field: name, op: "~" });
    }
    v.map(|v| Test::Num(field, op, v))
        .ok_or_else(|| FilterError::BadValue { field: name, value: raw.to_owned() })
}

fn role(op: Op, value: &str) -> Result<Test, FilterError> {
    if !matches!(op, Op::Eq | Op::Contains) {
        return Err(FilterError::BadOperator { field: "role", op: op.as_str() });
    }
    match value.to_ascii_lowercase().as_str() {
        "client" | "c" => Ok(Test::Role(Role::Client)),
        "server" | "s" => Ok(Test::Role(Role::Server)),
        _ => Err(FilterError::BadValue { field: "role", value: value.to_owned() }),
    }
}

/// `100ms`, `250us`, `1.5s`, `100` (ms) -> microseconds.
fn duration_us(v: &str) -> Option<u64> {
    let split = v.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(v.len());
    let (n, unit) = v.split_at(split);
    let n: f64 = n.parse().ok()?;
    let scale = match unit.to_ascii_lowercase().as_str() {
        "us" | "µs" => 1.0,
        "" | "ms" => 1e3,
        "s" => 1e6,
        _ => return None,
    };
    Some((n * scale) as u64)
}

/// `512`, `512B`, `1K`, `2M` -> bytes.
fn size(v: &str) -> Option<u64> {
    let split = v.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(v.len());
    let (n, unit) = v.split_at(split);
    let n: f64 = n.parse().ok()?;
    let scale = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" | "kib" => 1024.0,
        "m" | "mb" | "mib" => 1024.0 * 1024.0,
        _ => return None,
    };
    Some((n * scale) as u64)
}

/// Every new row is tested: ASCII text, the usual, is compared in place; only other text
/// is lower-cased into a new string.
fn contains_ci(haystack: &str, lower_needle: &str) -> bool {
    if !haystack.is_ascii() {
        return haystack.to_lowercase().contains(lower_needle);
    }
    let n = lower_needle.as_bytes();
    n.is_empty() || haystack.as_bytes().windows(n.len()).any(|w| w.eq_ignore_ascii_case(n))
}

/// `have` lower-cased equals `lower`.
fn eq_ci(have: &str, lower: &str) -> bool {
    if !have.is_ascii() {
        return have.to_lowercase() == lower;
    }
    have.as_bytes().eq_ignore_ascii_case(lower.as_bytes())
}

impl Test {
    fn matches(&self, e: &Entry) -> bool {
        match self {
            Test::Word(w) => {
                contains_ci(e.method(), w) || contains_ci(e.url(), w) || contains_ci(e.comm(), w)
            }
            Test::Text(field, op, v) => {
                let have = match field {
                    TextField::Method => e.method(),
                    TextField::Path => e.target(),
                    TextField::Host => e.host(),
                    TextField::Comm => e.comm(),
                };
                match op {
                    Op::Contains => contains_ci(have, v),
                    Op::Ne => !eq_ci(have, v),
                    // Ordering on text means nothing here; treat it as equality.
                    _ => eq_ci(have, v),
                }
            }
            Test::Num(field, op, v) => {
                let have = match field {
                    NumField::Status => e.status.map(u64::from),
                    NumField::Pid => Some(e.pid as u64),
                    NumField::LatencyUs => e.latency_us,
                    NumField::Size => Some(e.req_size.max(e.resp_size.unwrap_or(0))),
                };
                have.is_some_and(|h| op.cmp(h, *v))
            }
            Test::StatusClass(op, c) => e.status.is_some_and(|s| op.cmp(s as u64 / 100, *c)),
            Test::Role(r) => e.role == Some(*r),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::tui::testutil::entry;

    fn m(filter: &str, e: &Entry) -> bool {
        Filter::parse(filter).unwrap_or_else(|err| panic!("{filter}: {err}")).matches(e)
    }

    #[test]
    fn bare_words_and_fields() {
        let ok = entry(1, "GET", "/index.html", Some(200), Some(1_500), "curl");
        let err = entry(2, "POST", "/api/items", Some(503), Some(250_000), "python3");
        assert!(m("", &ok));
        assert!(m("get", &ok) && !m("get", &err));
        assert!(m("/api", &err) && !m("/api", &ok));
        assert!(m("CURL", &ok));
        assert!(m("status>=500", &err) && !m("status>=500", &ok));
        assert!(m("status=5xx", &err) && m("5xx", &err) && !m("5xx", &ok));
        assert!(m("status!=200", &err) && !m("status!=200", &ok));
        assert!(m("latency>100ms", &err) && !m("latency>100ms", &ok));
        assert!(m("latency<2ms", &ok) && m("lat>=1500us", &ok) && m("latency<1s", &err));
        assert!(m("method=post path~api comm=python3", &err));
        assert!(m("path=/index.html", &ok) && !m("path=/index", &ok));
        assert!(m("path:index", &ok));
        assert!(m("!get", &err) && !m("!get", &ok));
        assert!(m("role=client", &ok));
        assert!(m("pid=2", &ok) && !m("pid=2", &err));
    }

    #[test]
    fn a_term_compares_only_a_known_field() {
        let query = entry(1, "GET", "/search?q=a", Some(200), Some(1_500), "curl");
        let other = entry(2, "GET", "/other", Some(503), Some(1_500), "curl");
        let colon = entry(3, "GET", "/foo:bar", Some(200), Some(1_500), "curl");
        // Text before `=` or `:` that names no field is part of the word: host + target.
        assert!(m("q=a", &query) && !m("q=a", &other));
        assert!(m("127.0.0.1:8080/other", &other) && !m("127.0.0.1:8080/other", &query));
        assert!(m("foo:bar", &colon) && !m("foo:bar", &query));
        assert!(m("Q=", &query) && !m("q=", &other));
        assert!(m("!q=a", &other) && !m("!q=a", &query));
        // Known fields (and their short names) still compare.
        assert!(m("status>=500", &other) && !m("status>=500", &query));
        assert!(m("s=5xx", &other) && m("h:8080", &query) && !m("p:8080", &query));
    }

    #[test]
    fn no_response_matches_no_comparison() {
        let pending = entry(1, "GET", "/slow", None, None, "curl");
        assert!(!m("status>=100", &pending));
        assert!(!m("latency>0", &pending));
        assert!(m("!status>=100", &pending));
    }

    #[test]
    fn case_is_ignored_in_ascii_and_beyond() {
        let e = entry(1, "GET", "/Straße/ÉTÉ", Some(200), Some(1), "CuRL");
        assert!(m("comm=curl", &e) && m("comm~URL", &e) && !m("comm=cur", &e) && m("comm!=cur", &e));
        assert!(m("path~straße/été", &e) && m("été", &e) && !m("path~strasse", &e));
        assert!(m("method=get", &e) && !m("method=ge", &e));
    }

    #[test]
    fn errors_while_typing() {
        assert_eq!(Filter::parse("status>="), Err(FilterError::MissingValue("status>=".into())));
        assert!(matches!(Filter::parse("latency>10parsecs"), Err(FilterError::BadValue { .. })));
        assert!(matches!(Filter::parse("status~5"), Err(FilterError::BadOperator { .. })));
    }
}
