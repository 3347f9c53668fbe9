//! IPv6 loopback: addresses are written `[v6]:port`.

mod common;

use common::*;

#[test]
fn curl_over_ipv6_loopback() {
    let server = HttpServer::start("[::1]:0", common::server::default_reply);
    let trace = Trace::on_port(server.port(), &[]);
    let since = trace.started_at;
    let run = curl(&["-g", &format!("http://[::1]:{}/v6", server.port())]);
    let records = trace.stop();
    assert_eq!(run.stdout_text(), "hello from /v6");
    let served = server.served();
    assert_eq!(served.len(), 1);
    let src = served[0].peer.to_string();
    assert!(src.starts_with("[::1]:"), "peer {src}");
    let dst = format!("[::1]:{}", server.port());

    for role in ["client", "server"] {
        let rec = only_one(&records, role);
        assert_complete_exchange(rec, since);
        assert_eq!(str_at(rec, "/src"), src, "src in {rec}");
        assert_eq!(str_at(rec, "/dst"), dst, "dst in {rec}");
        assert_eq!(str_at(rec, "/request/method"), "GET", "method in {rec}");
        assert_eq!(str_at(rec, "/request/target"), "/v6", "target in {rec}");
        assert_eq!(
            header_at(rec, "/request/headers", "Host").as_deref(),
            Some(dst.as_str()),
            "Host in {rec}"
        );
        assert_eq!(u64_at(rec, "/response/status"), 200, "status in {rec}");
        assert_eq!(
            str_at(rec, "/response/body"),
            "hello from /v6",
            "body in {rec}"
        );
    }
    assert_eq!(u64_at(only_one(&records, "client"), "/pid"), run.pid as u64);
    assert_eq!(
        u64_at(only_one(&records, "server"), "/pid"),
        std::process::id() as u64
    );
}
