//! A request written one byte per write() and a response in 10-byte writes.
//!
//! The server's accept thread is already blocked in accept() when l7trace starts (as an
//! idle server's is), and the first bytes are paced so that its first read returns a
//! single byte: the connection must be known from accept's exit alone, since a one-byte
//! first read is too little to adopt a stream by its first bytes.

mod common;

use common::*;

#[test]
fn one_byte_request_writes_and_ten_byte_response_writes() {
    let answer = format!("small writes answer: {}", "0123456789".repeat(20));
    let reply = answer.clone();
    let server = HttpServer::start("127.0.0.1:0", move |_req| {
        Reply::ok(reply.clone()).in_writes_of(10)
    });
    let trace = Trace::on_port(server.port(), &[]);
    let since = trace.started_at;
    let body = format!("field1=value1&field2=value2&padding={}", "p".repeat(100));
    let request = format!(
        "POST /small?x=1 HTTP/1.1\r\nHost: {}\r\nX-Test: one-byte-writes\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        server.authority(),
        body.len()
    );
    let mut client = RawClient::connect(server.addr);
    client.send_bytewise(request.as_bytes());
    let resp = client.read_response(false);
    assert_eq!(resp.body_text(), answer);
    let src = client.local_addr().to_string();
    drop(client);
    let records = trace.stop();
    let served = server.served();
    assert_eq!(served.len(), 1);
    assert_eq!(served[0].request.body, body.as_bytes());

    for role in ["client", "server"] {
        let rec = only_one(&records, role);
        assert_complete_exchange(rec, since);
        assert_eq!(str_at(rec, "/src"), src, "src in {rec}");
        assert_eq!(str_at(rec, "/dst"), server.authority(), "dst in {rec}");
        assert_eq!(str_at(rec, "/request/method"), "POST", "method in {rec}");
        assert_eq!(
            str_at(rec, "/request/target"),
            "/small?x=1",
            "target in {rec}"
        );
        assert_eq!(
            str_at(rec, "/request/version"),
            "HTTP/1.1",
            "version in {rec}"
        );
        assert_eq!(
            header_at(rec, "/request/headers", "X-Test").as_deref(),
            Some("one-byte-writes"),
            "X-Test header in {rec}"
        );
        assert_eq!(
            u64_at(rec, "/request/body_size"),
            body.len() as u64,
            "request body_size in {rec}"
        );
        assert_eq!(str_at(rec, "/request/body"), body, "request body in {rec}");
        assert_eq!(u64_at(rec, "/response/status"), 200, "status in {rec}");
        assert_eq!(str_at(rec, "/response/reason"), "OK", "reason in {rec}");
        assert_eq!(
            u64_at(rec, "/response/body_size"),
            answer.len() as u64,
            "response body_size in {rec}"
        );
        assert_eq!(
            str_at(rec, "/response/body"),
            answer,
            "response body in {rec}"
        );
        assert!(
            !bool_at(rec, "/response/body_truncated"),
            "body_truncated in {rec}"
        );
    }
}
