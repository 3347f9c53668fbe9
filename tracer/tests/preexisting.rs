//! A connection opened (and used) before l7trace starts is traced when used again.

mod common;

use common::*;

#[test]
fn connection_opened_before_tracing() {
    let server = HttpServer::start_default();
    let mut client = RawClient::connect(server.addr);
    assert_eq!(client.exchange("GET", "/before").body_text(), "hello from /before");

    let trace = Trace::on_port(server.port(), &[]);
    let since = trace.started_at;
    assert_eq!(client.exchange("GET", "/after").body_text(), "hello from /after");
    let src = client.local_addr().to_string();
    let client_tid = client.tid;
    drop(client);
    let records = trace.stop();
    let served = server.served();
    assert_eq!(served.len(), 2);

    for role in ["client", "server"] {
        let rec = only_one(&records, role);
        assert_complete_exchange(rec, since);
        assert_eq!(u64_at(rec, "/pid"), std::process::id() as u64, "pid in {rec}");
        let tid = if role == "client" { client_tid } else { served[1].tid };
        assert_eq!(u64_at(rec, "/tid"), tid as u64, "tid in {rec}");
        assert_eq!(str_at(rec, "/src"), src, "src in {rec}");
        assert_eq!(str_at(rec, "/dst"), server.authority(), "dst in {rec}");
        assert_eq!(str_at(rec, "/request/method"), "GET", "method in {rec}");
        assert_eq!(str_at(rec, "/request/target"), "/after", "target in {rec}");
        assert_eq!(u64_at(rec, "/response/status"), 200, "status in {rec}");
        assert_eq!(str_at(rec, "/response/body"), "hello from /after", "body in {rec}");
    }
}
