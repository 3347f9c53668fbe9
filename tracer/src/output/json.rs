//! NDJSON: one object per exchange per line, flushed per line.
use std::{
    borrow::Cow,
    io::{self, Write},
};

use base64::Engine as _;
use serde::Serialize;

use super::{rfc3339, Clock, Flow, Sink};
use crate::{
    pipeline::{comm_str, Record},
    protocols::{Headers, Message, Role, StartLine},
};

#[derive(Serialize)]
struct JsonExchange<'a> {
    ts: String,
    source: &'static str,
    role: Option<&'static str>,
    pid: Option<u32>,
    tid: Option<u32>,
    comm: Option<String>,
    src: String,
    dst: String,
    request: JsonMessage<'a>,
    response: Option<JsonMessage<'a>>,
    latency_us: Option<u64>,
    ttfb_us: Option<u64>,
    complete: bool,
    lost_bytes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<&'static str>,
}

#[derive(Serialize)]
struct JsonMessage<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    method: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<Cow<'a, str>>,
    version: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<Cow<'a, str>>,
    headers: JsonHeaders<'a>,
    body_size: u64,
    body: Cow<'a, str>,
    body_truncated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    body_encoding: Option<&'static str>,
}

/// `[[name, value], ...]`, serialised straight from the message: no list built per record,
/// and no copy of a name or value that is valid UTF-8 (the common case).
struct JsonHeaders<'a>(&'a Headers);

impl Serialize for JsonHeaders<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for (n, v) in self.0.iter() {
            seq.serialize_element(&(String::from_utf8_lossy(n), String::from_utf8_lossy(v)))?;
        }
        seq.end()
    }
}

fn version(v: u8) -> &'static str {
    match v {
        0 => "HTTP/1.0",
        _ => "HTTP/1.1",
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn message(m: &Message) -> JsonMessage<'_> {
    let (body, body_encoding) = match std::str::from_utf8(&m.body) {
        Ok(s) => (Cow::Borrowed(s), None),
        Err(_) => (Cow::Owned(base64::engine::general_purpose::STANDARD.encode(&m.body)), Some("base64")),
    };
    let headers = JsonHeaders(&m.headers);
    let mut out = JsonMessage {
        method: None,
        target: None,
        version: "HTTP/1.1",
        status: None,
        reason: None,
        headers,
        body_size: m.body_size,
        body,
        body_truncated: m.body_truncated,
        body_encoding,
    };
    match &m.start {
        StartLine::Request { method, target, version: v } => {
            out.method = Some(method.as_str());
            out.target = Some(String::from_utf8_lossy(target));
            out.version = version(*v);
        }
        StartLine::Response { version: v, status, reason } => {
            out.version = version(*v);
            out.status = Some(*status);
            out.reason = Some(String::from_utf8_lossy(reason));
        }
    }
    out
}

/// The JSON line for a record, without the newline.
pub fn to_line(r: &Record, clock: &Clock) -> String {
    serde_json::to_string(&exchange(r, clock)).unwrap_or_else(|e| format!("{{\"error\":\"serialising: {e}\"}}"))
}

fn exchange<'a>(r: &'a Record, clock: &Clock) -> JsonExchange<'a> {
    let ex = &r.exchange;
    let req = &ex.request;
    let resp = ex.response.as_ref();
    let j = JsonExchange {
        ts: rfc3339(clock.wall(req.first_ts_ns)),
        source: r.source.as_str(),
        role: r.role.map(|role| match role {
            Role::Client => "client",
            Role::Server => "server",
        }),
        pid: r.process.map(|p| p.pid),
        tid: r.process.map(|p| p.tid),
        comm: r.process.map(|p| text(comm_str(&p.comm))),
        src: r.client.to_string(),
        dst: r.server.to_string(),
        request: message(req),
        response: resp.map(message),
        latency_us: resp.map(|m| m.last_ts_ns.saturating_sub(req.first_ts_ns) / 1000),
        ttfb_us: resp.map(|m| m.first_ts_ns.saturating_sub(req.first_ts_ns) / 1000),
        complete: ex.complete(),
        lost_bytes: ex.lost_bytes(),
        note: ex.note.map(|n| n.as_str()),
    };
    j
}

pub struct JsonSink<W: Write> {
    out: W,
    clock: Clock,
    closed: bool,
    /// Polled for the reader going away (`| head -1`) even while nothing is written.
    watch_fd: Option<i32>,
}

impl<W: Write> JsonSink<W> {
    pub fn new(out: W, clock: Clock) -> Self {
        JsonSink { out, clock, closed: false, watch_fd: None }
    }

    /// Notice when the reader of `fd` (a pipe) goes away, between records too.
    pub fn watch(mut self, fd: i32) -> Self {
        self.watch_fd = Some(fd);
        self
    }

    /// Writes and flushes one line. An error (EPIPE when the reader went away) ends output.
    /// Writes one line; `flush` sends it.
    pub fn write(&mut self, r: &Record) -> io::Result<()> {
        // Straight into the buffered writer: no String per line.
        serde_json::to_writer(&mut self.out, &exchange(r, &self.clock)).map_err(io::Error::other)?;
        self.out.write_all(b"\n")
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
