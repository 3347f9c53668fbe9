//! `--port` selects connections in the kernel: another port's exchanges are neither
//! reported nor counted.

mod common;

use common::*;
use serde_json::Value;

/// Exchanges made on the second server, so that its events, if they leaked, would show.
const B_GETS: usize = 5;

/// The port of a record's server end (`dst`).
fn dst_port(rec: &Value) -> u16 {
    let dst = str_at(rec, "/dst");
    dst.rsplit_once(':')
        .and_then(|(_, p)| p.parse().ok())
        .unwrap_or_else(|| panic!("dst {dst:?} has no port in {rec}"))
}

#[test]
fn only_the_named_port_is_traced_and_counted() {
    let a = HttpServer::start_default();
    let b = HttpServer::start_default();
    let (pa, pb) = (a.port().to_string(), b.port().to_string());
    // Three at once over the same traffic: A alone, B alone, and both. Each instance has
    // its own kernel programs and counts, so A's and B's events add up to both's.
    let only_a = Trace::start(&["--port", &pa]);
    let only_b = Trace::start(&["--port", &pb]);
    let both = Trace::start(&["--port", &pa, "--port", &pb]);
    let since = only_a.started_at;
    let run = curl(&[&format!("http://{}/on-a", a.authority())]);
    assert_eq!(run.stdout_text(), "hello from /on-a");
    for i in 0..B_GETS {
        let run = curl(&[&format!("http://{}/on-b/{i}", b.authority())]);
        assert_eq!(run.stdout_text(), format!("hello from /on-b/{i}"));
    }
    let stopped_a = only_a.stop_full();
    let stopped_b = only_b.stop_full();
    let stopped_both = both.stop_full();

    let records = &stopped_a.records;
    assert_eq!(records.len(), 2, "A's exchange, both roles, and nothing of B; records:\n{}", dump(records));
    for role in ["client", "server"] {
        let rec = only_one(records, role);
        assert_complete_exchange(rec, since);
        assert_eq!(str_at(rec, "/request/target"), "/on-a", "target in {rec}");
        assert_eq!(dst_port(rec), a.port(), "dst in {rec}");
        assert_eq!(str_at(rec, "/response/body"), "hello from /on-a", "body in {rec}");
    }
    // The control: B's exchanges were there to be seen, by the instances that asked.
    let b_records = &stopped_b.records;
    assert_eq!(b_records.len(), 2 * B_GETS, "B's exchanges; records:\n{}", dump(b_records));
    assert!(b_records.iter().all(|r| dst_port(r) == b.port()), "only B in:\n{}", dump(b_records));
    assert_eq!(stopped_both.records.len(), 2 * (B_GETS + 1), "records:\n{}", dump(&stopped_both.records));

    let counter = |s: &trace::Stopped, name: &str| summary_counter(&s.stderr, name);
    for s in [&stopped_a, &stopped_b, &stopped_both] {
        assert_eq!(counter(s, "lost_events"), 0, "stderr:\n{}", s.stderr.join("\n"));
    }
    assert_eq!(counter(&stopped_a, "exchanges"), 2, "stderr:\n{}", stopped_a.stderr.join("\n"));
    let (ea, eb, eab) = (
        counter(&stopped_a, "events"),
        counter(&stopped_b, "events"),
        counter(&stopped_both, "events"),
    );
    assert!(ea > 0 && eb > ea, "events: A alone {ea}, B alone {eb} (B made {B_GETS} times A's traffic)");
    assert_eq!(
        ea + eb,
        eab,
        "events: A alone {ea} + B alone {eb} != both {eab}: one instance counted the other port's traffic"
    );
}
