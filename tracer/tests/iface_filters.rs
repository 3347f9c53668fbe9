//! `--pid`, `--comm` and `--role` with `--iface`: they select by the local process an end
//! is attributed to, as the syscall path selects by the traced process; when both ends are
//! local (curl to a server of this test, over lo), the record is attributed to the end
//! that passes them.

mod common;

use common::*;
use serde_json::Value;

/// One curl GET through lo, traced with `--iface lo --port P EXTRA`.
fn one_get(extra: &[&str]) -> Vec<Value> {
    let server = HttpServer::start_default();
    let mut args = vec!["--iface", "lo"];
    args.extend_from_slice(extra);
    let trace = Trace::on_port(server.port(), &args);
    let run = curl(&[&format!("http://{}/filtered", server.authority())]);
    assert_eq!(run.stdout_text(), "hello from /filtered");
    trace.stop()
}

fn the_record(records: &[Value]) -> &Value {
    assert_eq!(records.len(), 1, "one record; records:\n{}", dump(records));
    let r = &records[0];
    assert_eq!(str_at(r, "/source"), "packet", "source in {r}");
    assert_eq!(str_at(r, "/request/target"), "/filtered", "target in {r}");
    assert_eq!(u64_at(r, "/response/status"), 200, "status in {r}");
    r
}

#[test]
fn without_filters_the_server_end_is_named() {
    let records = one_get(&[]);
    let r = the_record(&records);
    assert_eq!(str_at(r, "/role"), "server", "role in {r}");
    assert_eq!(u64_at(r, "/pid"), std::process::id() as u64, "pid in {r}");
}

#[test]
fn comm_and_role_find_the_client_end() {
    for extra in [&["--comm", "curl"][..], &["--role", "client"][..]] {
        let records = one_get(extra);
        let r = the_record(&records);
        assert_eq!(str_at(r, "/role"), "client", "role with {extra:?} in {r}");
        assert_eq!(str_at(r, "/comm"), "curl", "comm with {extra:?} in {r}");
        assert_ne!(u64_at(r, "/pid"), std::process::id() as u64, "pid with {extra:?} in {r}");
    }
}

#[test]
fn pid_selects_by_process() {
    let me = std::process::id().to_string();
    let records = one_get(&["--pid", &me]);
    let r = the_record(&records);
    assert_eq!(u64_at(r, "/pid").to_string(), me, "pid in {r}");
    assert_eq!(str_at(r, "/role"), "server", "role in {r}");
    // No process of the capture is pid 1: nothing is shown, not every host's exchanges.
    // An unfiltered l7trace on the same capture at the same time sees the exchange, so
    // the empty output is the filter's doing.
    let server = HttpServer::start_default();
    let port = server.port().to_string();
    let control = Trace::start(&["--iface", "lo", "--port", &port]);
    let filtered = Trace::start(&["--iface", "lo", "--port", &port, "--pid", "1"]);
    let run = curl(&[&format!("http://{}/filtered", server.authority())]);
    assert_eq!(run.stdout_text(), "hello from /filtered");
    let records = filtered.stop();
    assert!(records.is_empty(), "--pid 1 shows nothing; records:\n{}", dump(&records));
    let seen = control.stop();
    assert_eq!(u64_at(the_record(&seen), "/pid"), std::process::id() as u64);
}
