//! One row of the view: what the table shows of a record (and filters on), sanitised once
//! when it arrives, so a frame never does more than format the rows it shows; the messages
//! kept as they came, for the detail pane, which sanitises the one it shows when it draws
//! (the list holds thousands of entries, most never opened: sanitising every header of
//! every exchange up front cost more than all the parsing).

use std::{net::SocketAddr, time::SystemTime};

use super::sanitize::{sanitize, sanitize_into, sanitize_str};
use crate::{
    output::Clock,
    pipeline::{comm_str, Record},
    protocols::{Headers, Message, Note, Role, StartLine},
};

/// Body bytes kept per message for the detail pane (the list holds many entries).
pub const BODY_PREVIEW: usize = 1024;

/// A message for the detail pane, as it came (see `start_line` and `headers` for what is
/// shown of it). The default, an empty request with nothing allocated, is what a row holds
/// until `Entry::finish` fills it.
#[derive(Debug, Clone, Default)]
pub struct MessageView {
    pub start: StartLine,
    pub headers: Headers,
    pub body_size: u64,
    /// The first `BODY_PREVIEW` captured bytes, raw: the pane chooses text or hex.
    pub body: Vec<u8>,
    pub body_truncated: bool,
    pub complete: bool,
    pub lost_bytes: u64,
    pub first_ts_ns: u64,
    pub last_ts_ns: u64,
}

#[derive(Debug, Clone)]
pub struct Entry {
    /// Position in arrival order since start (never reused).
    pub seq: u64,
    /// The request was seen, its exchange is not finished yet.
    pub pending: bool,
    /// Wall-clock time of the request's first byte (shown by `time`).
    pub wall: SystemTime,
    pub pid: u32,
    pub tid: u32,
    pub role: Option<Role>,
    pub client: SocketAddr,
    pub server: SocketAddr,
    /// Method, comm, host and target, sanitised, in one buffer (one allocation, not four:
    /// the rows that fall off a full list are freed cold); host and target are adjacent,
    /// so the URL is their span. See `method`, `comm`, `host`, `target`, `url`.
    pub(super) text: String,
    /// Where comm, host and target start in `text`.
    pub(super) at: [u32; 3],
    pub status: Option<u16>,
    pub latency_us: Option<u64>,
    pub ttfb_us: Option<u64>,
    pub req_size: u64,
    pub resp_size: Option<u64>,
    pub complete: bool,
    pub lost_bytes: u64,
    pub note: Option<Note>,
    pub request: MessageView,
    pub response: Option<MessageView>,
}

impl Entry {
    pub fn new(seq: u64, r: Record, clock: &Clock) -> Entry {
        let req = &r.exchange.request;
        let host = req.headers.get(b"host").unwrap_or_default();
        let (method, target) = match &req.start {
            StartLine::Request { method, target, .. } => (method.as_bytes(), target.as_slice()),
            StartLine::Response { .. } => (&b"?"[..], &b""[..]),
        };
        let comm = r.process.as_ref().map_or(&b"-"[..], |p| comm_str(&p.comm));
        let mut e = Entry {
            seq,
            pending: r.in_flight,
            wall: clock.wall(req.first_ts_ns),
            // 0: a packet between processes we do not know.
            pid: r.process.map_or(0, |p| p.pid),
            tid: r.process.map_or(0, |p| p.tid),
            role: r.role,
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
            request: MessageView::default(),
            response: None,
        };
        e.set_text(method, comm, host, target);
        let in_flight = r.in_flight;
        e.finish(r);
        e.pending = in_flight;
        e
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
        self.latency_us = resp.map(|m| m.last_ts_ns.saturating_sub(req.first_ts_ns) / 1000);
        self.ttfb_us = resp.map(|m| m.first_ts_ns.saturating_sub(req.first_ts_ns) / 1000);
        self.req_size = req.body_size;
        self.resp_size = resp.map(|m| m.body_size);
        self.complete = ex.complete();
        self.lost_bytes = ex.lost_bytes();
        self.note = ex.note;
        self.request = MessageView::new(ex.request);
        self.response = ex.response.map(MessageView::new);
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
        let mut text = String::with_capacity(method.len() + comm.len() + host.len() + target.len());
        sanitize_into(&mut text, method);
        let mut at = [0; 3];
        for (i, field) in [comm, host, target].into_iter().enumerate() {
            at[i] = text.len() as u32;
            sanitize_into(&mut text, field);
        }
        (self.text, self.at) = (text, at);
    }

    /// Replaces comm, keeping method, host and target (sanitised already).
    fn set_comm(&mut self, comm: &[u8]) {
        let (method, host, url) = (self.method(), self.host(), self.url());
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

    /// `host` followed by the target, as the table shows it.
    pub fn url(&self) -> &str {
        &self.text[self.at[1] as usize..]
    }
}

impl MessageView {
    fn new(m: Message) -> MessageView {
        let mut body = m.body;
        let body_truncated = m.body_truncated || body.len() > BODY_PREVIEW;
        if body.len() > BODY_PREVIEW {
            body.truncate(BODY_PREVIEW);
            body.shrink_to_fit();
        }
        MessageView {
            start: m.start,
            headers: m.headers,
            body_size: m.body_size,
            body,
            body_truncated,
            complete: m.complete,
            lost_bytes: m.lost_bytes,
            first_ts_ns: m.first_ts_ns,
            last_ts_ns: m.last_ts_ns,
        }
    }

    /// The start line, sanitised.
    pub fn start_line(&self) -> String {
        start_line(&self.start)
    }

    /// The header fields, sanitised.
    pub fn headers(&self) -> impl Iterator<Item = (String, String)> + '_ {
        self.headers.iter().map(|(n, v)| (sanitize(n), sanitize(v)))
    }
}

fn status(m: &Message) -> Option<u16> {
    match m.start {
        StartLine::Response { status, .. } => Some(status),
        StartLine::Request { .. } => None,
    }
}

fn version(v: u8) -> &'static str {
    if v == 0 {
        "HTTP/1.0"
    } else {
        "HTTP/1.1"
    }
}

fn start_line(s: &StartLine) -> String {
    match s {
        StartLine::Request { method, target, version: v } => {
            format!("{} {} {}", sanitize_str(method), sanitize(target), version(*v))
        }
        StartLine::Response { version: v, status, reason } => {
            format!("{} {} {}", version(*v), status, sanitize(reason))
        }
    }
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
}
