//! The records of one scenario against what both sides must report.
use std::net::SocketAddr;

use tracer::{
    pipeline::Record,
    protocols::{Note, Role, StartLine},
};

use crate::http::{Expect, Scenario};

/// The records that belong to the scenario's server port.
pub fn of_port(records: &[Record], port: u16) -> Vec<&Record> {
    records
        .iter()
        .filter(|r| r.server.port() == port)
        .collect()
}

/// Every problem found (empty: the scenario passed).
pub fn check(sc: Scenario, records: &[&Record], pid: u32, port: u16) -> Vec<String> {
    let expected = sc.expected();
    let mut problems = Vec::new();
    for role in [Role::Client, Role::Server] {
        let mut mine: Vec<&Record> = records.iter().copied().filter(|r| r.role == Some(role)).collect();
        mine.sort_by_key(|r| r.exchange.request.first_ts_ns);
        if mine.len() != expected.len() {
            problems.push(format!("{role:?}: {} records, want {}", mine.len(), expected.len()));
            continue;
        }
        for (i, (rec, want)) in mine.iter().zip(&expected).enumerate() {
            for p in check_one(rec, want, sc, pid, port) {
                problems.push(format!("{role:?} #{i}: {p}"));
            }
        }
    }
    problems
}

fn check_one(rec: &Record, want: &Expect, sc: Scenario, pid: u32, port: u16) -> Vec<String> {
    let mut p = Vec::new();
    let mut expect = |ok: bool, what: String| {
        if !ok {
            p.push(what);
        }
    };
    let ex = &rec.exchange;
    let got_pid = rec.process.map(|p| p.pid);
    expect(got_pid == Some(pid), format!("pid {got_pid:?} want {pid}"));
    let (client, server): (SocketAddr, SocketAddr) = (rec.client, rec.server);
    expect(server.port() == port, format!("server address {server}, want port {port}"));
    expect(client.port() != 0 && client.port() != port, format!("client address {client}"));
    let loopback = client.ip().is_loopback() && server.ip().is_loopback();
    expect(loopback && server.is_ipv6() == sc.ipv6(), format!("addresses {client} -> {server}"));
    match &ex.request.start {
        StartLine::Request { method, target, .. } => {
            expect(method == want.method, format!("method {method}, want {}", want.method));
            expect(target == want.target.as_bytes(), format!("target {}, want {}", String::from_utf8_lossy(target), want.target));
        }
        other => expect(false, format!("request start line {other:?}")),
    }
    expect(ex.request.body_size == want.request_body.len() as u64, format!("request body_size {}", ex.request.body_size));
    let unseen = want.server_body_unseen && rec.role == Some(Role::Server);
    if unseen {
        // Spliced out of the socket: not seen, known to be missing, in its place.
        let n = want.request_body.len() as u64;
        expect(ex.request.body.is_empty(), format!("spliced request body shown: {} bytes", ex.request.body.len()));
        expect(ex.lost_bytes() == n, format!("lost_bytes {}, want {n}", ex.lost_bytes()));
        expect(ex.note == Some(Note::Gap), format!("note {:?}, want gap", ex.note));
    } else {
        expect(ex.request.body == want.request_body, format!("request body {:?}", String::from_utf8_lossy(&ex.request.body)));
    }
    let Some(resp) = &ex.response else {
        expect(false, format!("no response (note {:?})", ex.note));
        return p;
    };
    match &resp.start {
        StartLine::Response { status, .. } => expect(*status == want.status, format!("status {status}, want {}", want.status)),
        other => expect(false, format!("response start line {other:?}")),
    }
    expect(resp.body_size == want.response_body.len() as u64, format!("response body_size {}, want {}", resp.body_size, want.response_body.len()));
    let uncopied = want.sendfile && rec.role == Some(Role::Server);
    if uncopied {
        expect(resp.body_truncated, "sendfile body not marked truncated".into());
    } else {
        expect(resp.body == want.response_body, format!("response body {:?}", String::from_utf8_lossy(&resp.body)));
    }
    if want.upgrade {
        expect(ex.note == Some(Note::Upgrade), format!("note {:?}, want upgrade", ex.note));
    } else if !unseen {
        expect(ex.complete(), format!("incomplete (lost {} bytes, note {:?})", ex.lost_bytes(), ex.note));
        expect(ex.note.is_none(), format!("note {:?}", ex.note));
    }
    expect(resp.first_ts_ns >= ex.request.first_ts_ns, "response before request".into());
    p
}

/// One line per record, for a failure report.
pub fn describe(r: &Record) -> String {
    let target = match &r.exchange.request.start {
        StartLine::Request { method, target, .. } => format!("{method} {}", String::from_utf8_lossy(target)),
        _ => "?".into(),
    };
    let status = r.exchange.response.as_ref().map(|m| match &m.start {
        StartLine::Response { status, .. } => *status,
        _ => 0,
    });
    format!(
        "{:?} pid={:?} {} -> {} {target} status={status:?} complete={} note={:?}",
        r.role, r.process.map(|p| p.pid), r.client, r.server, r.exchange.complete(), r.exchange.note
    )
}
