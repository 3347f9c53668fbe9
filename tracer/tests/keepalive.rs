//! Several exchanges on one kept-alive connection are paired in order.

mod common;

use common::*;

#[test]
fn five_requests_on_one_connection() {
    let server = HttpServer::start_default();
    let trace = Trace::on_port(server.port(), &[]);
    let since = trace.started_at;
    let mut client = RawClient::connect(server.addr);
    for i in 1..=5 {
        let resp = client.exchange("GET", &format!("/{i}"));
        assert_eq!(resp.body_text(), format!("hello from /{i}"));
    }
    let src = client.local_addr().to_string();
    let (client_tid, client_comm) = (client.tid, client.comm.clone());
    drop(client);
    let records = trace.stop();
    let served = server.served();
    assert_eq!(served.len(), 5);

    for role in ["client", "server"] {
        let recs = by_role(&records, role);
        assert_eq!(
            recs.len(),
            5,
            "five {role} records; records:\n{}",
            dump(&records)
        );
        let (tid, comm) = match role {
            "client" => (client_tid, client_comm.as_str()),
            _ => (served[0].tid, served[0].comm.as_str()),
        };
        let mut last_ts = std::time::UNIX_EPOCH;
        for (i, rec) in recs.iter().enumerate() {
            let n = i + 1;
            assert_complete_exchange(rec, since);
            assert_eq!(
                u64_at(rec, "/pid"),
                std::process::id() as u64,
                "pid in {rec}"
            );
            assert_eq!(u64_at(rec, "/tid"), tid as u64, "tid in {rec}");
            assert_eq!(str_at(rec, "/comm"), comm, "comm in {rec}");
            assert_eq!(str_at(rec, "/src"), src, "src in {rec}");
            assert_eq!(str_at(rec, "/dst"), server.authority(), "dst in {rec}");
            assert_eq!(str_at(rec, "/request/method"), "GET", "method in {rec}");
            assert_eq!(
                str_at(rec, "/request/target"),
                format!("/{n}"),
                "target (order) in {rec}"
            );
            assert_eq!(u64_at(rec, "/response/status"), 200, "status in {rec}");
            assert_eq!(
                str_at(rec, "/response/body"),
                format!("hello from /{n}"),
                "body in {rec}"
            );
            let ts = parse_rfc3339_utc(str_at(rec, "/ts")).expect("ts");
            assert!(ts >= last_ts, "ts goes back in {rec}");
            last_ts = ts;
        }
    }
}

/// A connection l7trace forgot while it was idle (`--idle-timeout`), then sees again: its
/// later exchanges keep their process, thread and name, in order, for both ends.
#[test]
fn connection_forgotten_while_idle_keeps_its_process() {
    let server = HttpServer::start_default();
    let trace = Trace::on_port(server.port(), &["--idle-timeout", "0.2"]);
    let mut client = RawClient::connect(server.addr);
    let resp = client.exchange("GET", "/before");
    assert_eq!(resp.status, 200);
    // Idle for several of the pipeline's ticks (50 ms): the connection is evicted.
    std::thread::sleep(std::time::Duration::from_millis(800));
    let resp = client.exchange("GET", "/after");
    assert_eq!(resp.status, 200);
    let (client_tid, client_comm) = (client.tid, client.comm.clone());
    drop(client);
    let stopped = trace.stop_full();
    let records = stopped.records;
    // Both ends were forgotten between the requests (else this tests nothing).
    let evicted = summary_counter(&stopped.stderr, "evicted_conns");
    assert!(evicted >= 2, "evicted_conns={evicted}: {:?}", stopped.stderr);
    let served = server.served();
    assert_eq!(served.len(), 2);
    assert!(!client_comm.is_empty() && !served[1].comm.is_empty());
    for role in ["client", "server"] {
        let recs = by_role(&records, role);
        assert_eq!(recs.len(), 2, "two {role} records:\n{}", dump(&records));
        let (tid, comm) = match role {
            "client" => (client_tid, client_comm.as_str()),
            _ => (served[1].tid, served[1].comm.as_str()),
        };
        for (rec, target) in recs.iter().zip(["/before", "/after"]) {
            assert_eq!(str_at(rec, "/request/target"), target, "order in {rec}");
            assert_eq!(u64_at(rec, "/pid"), std::process::id() as u64, "pid in {rec}");
            assert_eq!(u64_at(rec, "/tid"), tid as u64, "tid in {rec}");
            assert_eq!(str_at(rec, "/comm"), comm, "comm in {rec}");
        }
    }
}
