//! Entries for unit and snapshot tests, without a kernel.

use super::{
    app::{Action, App},
    entry::Entry,
};
use crate::{
    output::Clock,
    pipeline::{Process, Record, Source},
    protocols::{Exchange, Headers, Message, Role, StartLine},
};

/// Types `text` into the filter, a key at a time.
pub fn type_filter(app: &mut App, text: &str) {
    for c in text.chars() {
        app.update(Action::FilterChar(c));
    }
}

pub fn message(start: StartLine, headers: &[(&str, &str)], body: &[u8], first_ts_ns: u64, last_ts_ns: u64) -> Message {
    let mut fields = Headers::default();
    for (n, v) in headers {
        fields.push(n.as_bytes(), v.as_bytes());
    }
    Message {
        start,
        headers: fields,
        trailers: Default::default(),
        body_size: body.len() as u64,
        body: body.to_vec(),
        body_truncated: false,
        first_ts_ns,
        last_ts_ns,
        process: Process::default(),
        complete: true,
        lost_bytes: 0,
    }
}

/// The record of an exchange by pid `seq + 1`, `latency_us` long (its first byte after
/// half of it), answered when there is a status.
pub fn record(seq: u64, method: &str, target: &str, status: Option<u16>, latency_us: Option<u64>, comm: &str) -> Record {
    let ts = 1_000_000_000_000 + seq * 1_000_000;
    let body = format!("hello from {target}");
    let lat_ns = latency_us.unwrap_or(0) * 1000;
    let response = status.map(|s| {
        message(
            StartLine::Response { version: 1, status: s, reason: if s < 400 { b"OK"[..].into() } else { b"Error"[..].into() } },
            &[("Content-Type", "text/plain"), ("Content-Length", &body.len().to_string())],
            body.as_bytes(),
            ts + lat_ns / 2000 * 1000,
            ts + lat_ns,
        )
    });
    let request = message(
        StartLine::Request { method: method.to_owned().into(), target: target.as_bytes().to_vec(), version: 1 },
        &[("Host", "127.0.0.1:8080"), ("User-Agent", "curl/7.88.1"), ("Accept", "*/*")],
        b"",
        ts,
        ts,
    );
    let mut c = [0; 16];
    c[..comm.len()].copy_from_slice(comm.as_bytes());
    let pid = seq as u32 + 1;
    Record {
        source: Source::Syscall,
        role: Some(Role::Client),
        process: Some(Process { pid, tid: pid, comm: c }),
        client: "127.0.0.1:50312".parse().unwrap(),
        server: "127.0.0.1:8080".parse().unwrap(),
        exchange: Exchange { request, response, note: None, interim: Vec::new() },
        conn: 1,
        in_flight: false,
    }
}

/// The row of `record(..)` (seq is reassigned by the app), at a fixed time.
pub fn entry(seq: u64, method: &str, target: &str, status: Option<u16>, latency_us: Option<u64>, comm: &str) -> Entry {
    row(seq, record(seq, method, target, status, latency_us, comm))
}

/// The row of a record, at a fixed time: 10:15:SS.mmm.
pub fn row(seq: u64, r: Record) -> Entry {
    let mut e = Entry::new(seq, r, &Clock::new());
    e.wall = std::time::UNIX_EPOCH + std::time::Duration::from_millis((10 * 3600 + 15 * 60 + seq % 60) * 1000 + seq % 1000);
    e
}
