//! Three requests in one write(), answered in order: three exchanges paired in order.

mod common;

use common::*;

#[test]
fn three_requests_in_one_write() {
    let server = HttpServer::start_default();
    let trace = Trace::on_port(server.port(), &[]);
    let since = trace.started_at;
    let host = server.authority();
    let mut client = RawClient::connect(server.addr);
    let batch: String = ["/p1", "/p2", "/p3"]
        .iter()
        .map(|t| request("GET", t, &host, &[("X-Pipelined", "yes")]))
        .collect();
    client.send(batch.as_bytes());
    for t in ["/p1", "/p2", "/p3"] {
        assert_eq!(
            client.read_response(false).body_text(),
            format!("hello from {t}")
        );
    }
    drop(client);
    let records = trace.stop();
    assert_eq!(server.served().len(), 3);

    for role in ["client", "server"] {
        let recs = by_role(&records, role);
        assert_eq!(
            recs.len(),
            3,
            "three {role} records; records:\n{}",
            dump(&records)
        );
        for (rec, t) in recs.iter().zip(["/p1", "/p2", "/p3"]) {
            assert_complete_exchange(rec, since);
            assert_eq!(str_at(rec, "/dst"), host, "dst in {rec}");
            assert_eq!(str_at(rec, "/request/method"), "GET", "method in {rec}");
            assert_eq!(str_at(rec, "/request/target"), t, "target (order) in {rec}");
            assert_eq!(
                header_at(rec, "/request/headers", "X-Pipelined").as_deref(),
                Some("yes"),
                "X-Pipelined in {rec}"
            );
            assert_eq!(u64_at(rec, "/response/status"), 200, "status in {rec}");
            assert_eq!(
                str_at(rec, "/response/body"),
                format!("hello from {t}"),
                "pairing in {rec}"
            );
        }
    }
}
