//! A server that reads a connection on one fd and writes its replies on a dup() of it
//! (Rust's `TcpStream::try_clone`, Python's `makefile`...): the exchange is still paired.

mod common;

use common::*;

#[test]
fn reply_written_on_duplicated_fd() {
    let server = HttpServer::start_writing_on_dup("127.0.0.1:0", common::server::default_reply);
    let trace = Trace::on_port(server.port(), &[]);
    let since = trace.started_at;
    let run = curl(&[&format!("http://{}/dup", server.authority())]);
    let records = trace.stop();
    assert_eq!(run.stdout_text(), "hello from /dup");
    let served = server.served();
    assert_eq!(served.len(), 1);

    for role in ["client", "server"] {
        let rec = only_one(&records, role);
        assert_complete_exchange(rec, since);
        assert_eq!(
            str_at(rec, "/src"),
            served[0].peer.to_string(),
            "src in {rec}"
        );
        assert_eq!(str_at(rec, "/dst"), server.authority(), "dst in {rec}");
        assert_eq!(str_at(rec, "/request/target"), "/dup", "target in {rec}");
        assert_eq!(u64_at(rec, "/response/status"), 200, "status in {rec}");
        assert_eq!(
            str_at(rec, "/response/body"),
            "hello from /dup",
            "body in {rec}"
        );
    }
    let srv = only_one(&records, "server");
    assert_eq!(
        u64_at(srv, "/pid"),
        std::process::id() as u64,
        "pid in {srv}"
    );
    assert_eq!(u64_at(srv, "/tid"), served[0].tid as u64, "tid in {srv}");
}
