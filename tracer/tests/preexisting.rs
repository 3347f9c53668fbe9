//! A connection opened (and used) before l7trace starts is traced when used again.

mod common;

use serde_json::Value;

use common::*;

/// Opens a connection and does `/before` on it, starts tracing, then does `targets` on
/// the same connection. Returns the records and the client's (addr, tid).
fn reuse_after_start(targets: &[&str]) -> (Vec<Value>, HttpServer, String, u32) {
    let server = HttpServer::start_default();
    let mut client = RawClient::connect(server.addr);
    assert_eq!(
        client.exchange("GET", "/before").body_text(),
        "hello from /before"
    );
    // The server thread now waits in recv() for the next request.
    let trace = Trace::on_port(server.port(), &[]);
    let since = trace.started_at;
    for t in targets {
        assert_eq!(
            client.exchange("GET", t).body_text(),
            format!("hello from {t}")
        );
    }
    let src = client.local_addr().to_string();
    let client_tid = client.tid;
    drop(client);
    let records = trace.stop();
    for rec in &records {
        assert_complete_exchange(rec, since);
        assert_ne!(str_at(rec, "/request/target"), "/before", "{rec}");
    }
    (records, server, src, client_tid)
}

fn assert_after(rec: &Value, target: &str, server: &HttpServer, src: &str, tid: u32) {
    assert_eq!(
        u64_at(rec, "/pid"),
        std::process::id() as u64,
        "pid in {rec}"
    );
    assert_eq!(u64_at(rec, "/tid"), tid as u64, "tid in {rec}");
    assert_eq!(str_at(rec, "/src"), src, "src in {rec}");
    assert_eq!(str_at(rec, "/dst"), server.authority(), "dst in {rec}");
    assert_eq!(str_at(rec, "/request/method"), "GET", "method in {rec}");
    assert_eq!(str_at(rec, "/request/target"), target, "target in {rec}");
    assert_eq!(u64_at(rec, "/response/status"), 200, "status in {rec}");
    assert_eq!(
        str_at(rec, "/response/body"),
        format!("hello from {target}"),
        "body in {rec}"
    );
}

/// The second exchange after the start: every syscall of it began after attach.
#[test]
fn connection_opened_before_tracing() {
    let (records, server, src, client_tid) = reuse_after_start(&["/after1", "/after2"]);
    let served = server.served();
    assert_eq!(served.len(), 3);
    let clients = by_role(&records, "client");
    assert_eq!(clients.len(), 2, "client records:\n{}", dump(&records));
    assert_after(clients[0], "/after1", &server, &src, client_tid);
    assert_after(clients[1], "/after2", &server, &src, client_tid);
    let servers = by_role(&records, "server");
    let after2: Vec<&&Value> = servers
        .iter()
        .filter(|r| r["request"]["target"] == "/after2")
        .collect();
    assert_eq!(
        after2.len(),
        1,
        "one server record of /after2; records:\n{}",
        dump(&records)
    );
    assert_after(after2[0], "/after2", &server, &src, served[2].tid);
}

/// The first exchange after the start, whose request the server read with a recv() that
/// was already waiting when l7trace attached (the usual state of an idle keep-alive
/// connection).
#[test]
fn server_blocked_in_recv_when_tracing_starts() {
    let (records, server, src, _) = reuse_after_start(&["/after"]);
    let served = server.served();
    let rec = only_one(&records, "server");
    assert_after(rec, "/after", &server, &src, served[1].tid);
}
