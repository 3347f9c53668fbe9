//! One curl exchange against the harness server, every field of both records checked.

mod common;

use std::time::SystemTime;

use common::*;
use serde_json::Value;

/// Checks what both roles share: process of each role, addresses, request line, Host.
fn assert_roles(
    records: &[Value],
    server: &HttpServer,
    curl_pid: u32,
    since: SystemTime,
) -> (Value, Value) {
    let served = server.served();
    assert_eq!(served.len(), 1, "the server read one request");
    let client = only_one(records, "client").clone();
    let srv = only_one(records, "server").clone();

    assert_eq!(
        u64_at(&client, "/pid"),
        curl_pid as u64,
        "client pid in {client}"
    );
    assert_eq!(
        u64_at(&client, "/tid"),
        curl_pid as u64,
        "client tid in {client}"
    );
    assert_eq!(str_at(&client, "/comm"), "curl", "client comm in {client}");

    assert_eq!(
        u64_at(&srv, "/pid"),
        std::process::id() as u64,
        "server pid in {srv}"
    );
    assert_eq!(
        u64_at(&srv, "/tid"),
        served[0].tid as u64,
        "server tid in {srv}"
    );
    assert_eq!(
        str_at(&srv, "/comm"),
        served[0].comm,
        "server comm in {srv}"
    );

    for rec in [&client, &srv] {
        assert_complete_exchange(rec, since);
        assert_eq!(
            str_at(rec, "/src"),
            served[0].peer.to_string(),
            "src in {rec}"
        );
        assert_eq!(str_at(rec, "/dst"), server.authority(), "dst in {rec}");
        assert_eq!(
            str_at(rec, "/request/version"),
            "HTTP/1.1",
            "request version in {rec}"
        );
        assert_eq!(
            header_at(rec, "/request/headers", "Host").as_deref(),
            Some(server.authority().as_str()),
            "Host header in {rec}"
        );
        let ua = header_at(rec, "/request/headers", "User-Agent").unwrap_or_default();
        assert!(ua.starts_with("curl/"), "User-Agent {ua:?} in {rec}");
        assert_eq!(
            str_at(rec, "/response/version"),
            "HTTP/1.1",
            "response version in {rec}"
        );
        assert_eq!(u64_at(rec, "/response/status"), 200, "status in {rec}");
        assert_eq!(str_at(rec, "/response/reason"), "OK", "reason in {rec}");
    }
    (client, srv)
}

#[test]
fn curl_get() {
    let server = HttpServer::start_default();
    let trace = Trace::on_port(server.port(), &[]);
    let since = trace.started_at;
    let run = curl(&[&format!("http://{}/index.html", server.authority())]);
    let records = trace.stop();
    assert_eq!(run.stdout_text(), "hello from /index.html");

    let (client, srv) = assert_roles(&records, &server, run.pid, since);
    for rec in [&client, &srv] {
        assert_eq!(str_at(rec, "/request/method"), "GET", "method in {rec}");
        assert_eq!(
            str_at(rec, "/request/target"),
            "/index.html",
            "target in {rec}"
        );
        assert_eq!(
            u64_at(rec, "/request/body_size"),
            0,
            "request body_size in {rec}"
        );
        assert_eq!(str_at(rec, "/request/body"), "", "request body in {rec}");
        assert_eq!(
            u64_at(rec, "/response/body_size"),
            22,
            "response body_size in {rec}"
        );
        assert_eq!(
            str_at(rec, "/response/body"),
            "hello from /index.html",
            "body in {rec}"
        );
        assert!(
            !bool_at(rec, "/response/body_truncated"),
            "body_truncated in {rec}"
        );
        assert_eq!(
            header_at(rec, "/response/headers", "Content-Length").as_deref(),
            Some("22"),
            "Content-Length in {rec}"
        );
    }
}

#[test]
fn curl_post_100_kib() {
    let dir = TempDir::new("post");
    let body: Vec<u8> = (0..102_400u32).map(|i| b'a' + (i % 26) as u8).collect();
    let file = dir.join("body.txt");
    std::fs::write(&file, &body).unwrap();
    let server = HttpServer::start_default();
    let trace = Trace::on_port(server.port(), &[]);
    let since = trace.started_at;
    let run = curl(&[
        "-H",
        "Expect:",
        "-H",
        "Content-Type: text/plain",
        "--data-binary",
        &format!("@{}", file.display()),
        &format!("http://{}/upload", server.authority()),
    ]);
    let records = trace.stop();
    assert_eq!(run.stdout_text(), "got 102400 bytes for /upload");
    assert_eq!(
        server.served()[0].request.body,
        body,
        "the server got the body"
    );

    let (client, srv) = assert_roles(&records, &server, run.pid, since);
    let expected_reply = "got 102400 bytes for /upload";
    let kept = std::str::from_utf8(&body[..4096]).unwrap();
    for rec in [&client, &srv] {
        assert_eq!(str_at(rec, "/request/method"), "POST", "method in {rec}");
        assert_eq!(str_at(rec, "/request/target"), "/upload", "target in {rec}");
        assert_eq!(
            u64_at(rec, "/request/body_size"),
            102_400,
            "request body_size in {rec}"
        );
        assert_eq!(
            header_at(rec, "/request/headers", "Content-Length").as_deref(),
            Some("102400"),
            "request Content-Length in {rec}"
        );
        // Default --max-body 4096: the first 4096 bytes are kept.
        assert_eq!(
            str_at(rec, "/request/body"),
            kept,
            "request body (first 4096 bytes)"
        );
        assert!(
            bool_at(rec, "/request/body_truncated"),
            "request body_truncated in {rec}"
        );
        assert_eq!(
            u64_at(rec, "/response/body_size"),
            expected_reply.len() as u64,
            "response body_size in {rec}"
        );
        assert_eq!(
            str_at(rec, "/response/body"),
            expected_reply,
            "response body in {rec}"
        );
    }
}

#[test]
fn summary_on_sigint() {
    let server = HttpServer::start_default();
    let trace = Trace::on_port(server.port(), &[]);
    curl(&[&format!("http://{}/", server.authority())]);
    let stopped = trace.stop_full();
    let summary = stopped
        .stderr
        .iter()
        .find(|l| l.starts_with("l7trace: summary:"))
        .unwrap_or_else(|| {
            panic!(
                "no `l7trace: summary:` line; stderr:\n{}",
                stopped.stderr.join("\n")
            )
        });
    for key in [
        "exchanges=",
        "lost_events=",
        "lost_bytes=",
        "dropped_bytes=",
    ] {
        assert!(summary.contains(key), "{key} missing in {summary:?}");
    }
    assert!(
        summary.contains("exchanges=2"),
        "two exchanges (client, server) in {summary:?}"
    );
}
