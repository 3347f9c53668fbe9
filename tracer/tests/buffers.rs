//! Both kernel->user transports deliver exchanges.

mod common;

use common::*;

fn curl_get_with(buffer: &str) {
    let server = HttpServer::start_default();
    let trace = Trace::on_port(server.port(), &["--buffer", buffer]);
    let since = trace.started_at;
    let run = curl(&[&format!("http://{}/via-{buffer}", server.authority())]);
    let stopped = trace.stop_full();
    // The start line names the transport in use: the one asked for, not a fallback.
    let tracing: Vec<&String> =
        stopped.stderr.iter().filter(|l| l.starts_with("l7trace: tracing")).collect();
    assert_eq!(tracing.len(), 1, "one start line; stderr:\n{}", stopped.stderr.join("\n"));
    assert!(
        tracing[0].starts_with(&format!("l7trace: tracing (buffer={buffer}, ")),
        "start line does not name buffer={buffer}: {:?}",
        tracing[0]
    );
    let records = stopped.records;
    let target = format!("/via-{buffer}");
    for role in ["client", "server"] {
        let rec = only_one(&records, role);
        assert_complete_exchange(rec, since);
        assert_eq!(str_at(rec, "/request/method"), "GET", "method in {rec}");
        assert_eq!(str_at(rec, "/request/target"), target, "target in {rec}");
        assert_eq!(u64_at(rec, "/response/status"), 200, "status in {rec}");
        assert_eq!(
            str_at(rec, "/response/body"),
            format!("hello from {target}"),
            "body in {rec}"
        );
    }
    assert_eq!(u64_at(only_one(&records, "client"), "/pid"), run.pid as u64);
}

#[test]
fn perf_buffer_delivers() {
    curl_get_with("perf");
}

#[test]
fn ring_buffer_delivers() {
    curl_get_with("ringbuf");
}
