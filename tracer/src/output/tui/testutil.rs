//! Entries for unit and snapshot tests, without a kernel.

use std::net::SocketAddr;

use super::{
    app::{Action, App},
    entry::{Entry, MessageView},
};
use crate::protocols::{Headers, Role, StartLine};

/// Types `text` into the filter, a key at a time.
pub fn type_filter(app: &mut App, text: &str) {
    for c in text.chars() {
        app.update(Action::FilterChar(c));
    }
}

fn message(start: StartLine, headers: &[(&str, &str)], body: &[u8], ts: u64) -> MessageView {
    let mut fields = Headers::default();
    for (n, v) in headers {
        fields.push(n.as_bytes(), v.as_bytes());
    }
    MessageView {
        start,
        headers: fields,
        body_size: body.len() as u64,
        body: body.to_vec(),
        body_truncated: false,
        complete: true,
        lost_bytes: 0,
        first_ts_ns: ts,
        last_ts_ns: ts,
    }
}

/// An exchange of pid `seq + 1` (seq is reassigned by the app), `latency_us` long, at a
/// fixed time.
pub fn entry(
    seq: u64,
    method: &str,
    target: &str,
    status: Option<u16>,
    latency_us: Option<u64>,
    comm: &str,
) -> Entry {
    let ts = 1_000_000_000_000 + seq * 1_000_000;
    let client: SocketAddr = "127.0.0.1:50312".parse().unwrap();
    let server: SocketAddr = "127.0.0.1:8080".parse().unwrap();
    let body = format!("hello from {target}");
    let response = status.map(|s| {
        message(
            StartLine::Response { version: 1, status: s, reason: if s < 400 { b"OK".to_vec() } else { b"Error".to_vec() } },
            &[("Content-Type", "text/plain"), ("Content-Length", &body.len().to_string())],
            body.as_bytes(),
            ts + latency_us.unwrap_or(0) * 1000,
        )
    });
    let mut e = Entry {
        seq,
        pending: false,
        // Shown as 10:15:SS.mmm.
        wall: std::time::UNIX_EPOCH + std::time::Duration::from_millis((10 * 3600 + 15 * 60 + seq % 60) * 1000 + seq % 1000),
        pid: seq as u32 + 1,
        tid: seq as u32 + 1,
        role: Some(Role::Client),
        client,
        server,
        text: String::new(),
        at: [0; 3],
        status,
        latency_us,
        ttfb_us: latency_us.map(|l| l / 2),
        req_size: 0,
        resp_size: response.as_ref().map(|m| m.body_size),
        complete: status.is_some(),
        lost_bytes: 0,
        note: None,
        request: message(
            StartLine::Request { method: method.to_owned(), target: target.as_bytes().to_vec(), version: 1 },
            &[("Host", "127.0.0.1:8080"), ("User-Agent", "curl/7.88.1"), ("Accept", "*/*")],
            b"",
            ts,
        ),
        response,
    };
    e.set_text(method.as_bytes(), comm.as_bytes(), b"127.0.0.1:8080", target.as_bytes());
    e
}
