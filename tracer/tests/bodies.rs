//! Response framing: chunked with trailers, HEAD, 204 and 304 (no body whatever the
//! headers say), each followed by a request on the same connection that must still parse;
//! and bodies that are not UTF-8, carried in base64.

mod common;

use common::*;
use serde_json::Value;

fn handler(req: &Request) -> Reply {
    match (req.method.as_str(), req.target.as_str()) {
        (_, "/chunked") => Reply::chunked(
            &[b"first chunk;", b"second;", b" and the third, last one"],
            &[("X-Checksum", "abc123")],
        ),
        // Headers of a 1000-byte resource, no body: it answers a HEAD.
        ("HEAD", _) => Reply::raw(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1000\r\n\r\n",
        ),
        (_, "/204") => Reply::raw("HTTP/1.1 204 No Content\r\nX-Why: nothing\r\n\r\n"),
        // A 304 may carry the Content-Length of the representation; it has no body.
        (_, "/304") => {
            Reply::raw("HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\nContent-Length: 1234\r\n\r\n")
        }
        (_, "/binary") => {
            Reply::with_status(200, "OK", &[("Content-Type", "application/octet-stream")], binary(3001, 7))
        }
        _ => common::server::default_reply(req),
    }
}

/// `len` bytes that are not UTF-8 (0xff never is), every byte value among them.
fn binary(len: usize, step: usize) -> Vec<u8> {
    (0..len).map(|i| if i % 97 == 0 { 0xff } else { (i * step % 256) as u8 }).collect()
}

/// Runs `exchanges` (method, target) on one connection and checks their order; returns
/// the records.
fn run(exchanges: &[(&str, &str)]) -> Vec<Value> {
    let server = HttpServer::start("127.0.0.1:0", handler);
    let trace = Trace::on_port(server.port(), &[]);
    let since = trace.started_at;
    let mut client = RawClient::connect(server.addr);
    for (method, target) in exchanges {
        client.exchange(method, target);
    }
    drop(client);
    let records = trace.stop();
    assert_eq!(server.served().len(), exchanges.len());
    for role in ["client", "server"] {
        let recs = by_role(&records, role);
        assert_eq!(
            recs.len(),
            exchanges.len(),
            "{} {role} records; records:\n{}",
            exchanges.len(),
            dump(&records)
        );
        for (rec, (method, target)) in recs.iter().zip(exchanges) {
            assert_complete_exchange(rec, since);
            assert_eq!(
                str_at(rec, "/request/method"),
                *method,
                "method (order) in {rec}"
            );
            assert_eq!(
                str_at(rec, "/request/target"),
                *target,
                "target (order) in {rec}"
            );
        }
    }
    records
}

fn assert_after(rec: &Value) {
    assert_eq!(u64_at(rec, "/response/status"), 200, "status in {rec}");
    assert_eq!(
        str_at(rec, "/response/body"),
        "hello from /after",
        "body after in {rec}"
    );
    assert_eq!(
        u64_at(rec, "/response/body_size"),
        17,
        "body_size after in {rec}"
    );
}

#[test]
fn chunked_response_with_trailers_is_decoded() {
    let records = run(&[("GET", "/chunked"), ("GET", "/after")]);
    let body = "first chunk;second; and the third, last one";
    for role in ["client", "server"] {
        let recs = by_role(&records, role);
        let rec = recs[0];
        assert_eq!(u64_at(rec, "/response/status"), 200, "status in {rec}");
        assert_eq!(
            header_at(rec, "/response/headers", "Transfer-Encoding").as_deref(),
            Some("chunked"),
            "Transfer-Encoding in {rec}"
        );
        assert_eq!(
            u64_at(rec, "/response/body_size"),
            body.len() as u64,
            "decoded body_size in {rec}"
        );
        assert_eq!(str_at(rec, "/response/body"), body, "decoded body in {rec}");
        assert!(
            !bool_at(rec, "/response/body_truncated"),
            "body_truncated in {rec}"
        );
        assert_eq!(
            rec.pointer("/response/trailers"),
            Some(&serde_json::json!([["X-Checksum", "abc123"]])),
            "trailers in {rec}"
        );
        assert!(rec.pointer("/request/trailers").is_none(), "no request trailers in {rec}");
        assert!(recs[1].pointer("/response/trailers").is_none(), "no trailers after in {}", recs[1]);
        assert_after(recs[1]);
    }
}

/// A chunked request's trailer fields are reported with it, a secret one masked as in the
/// headers, and the request after it on the connection still parses.
#[test]
fn chunked_request_trailers_are_reported_and_masked() {
    let server = HttpServer::start("127.0.0.1:0", handler);
    let trace = Trace::on_port(server.port(), &[]);
    let since = trace.started_at;
    let mut client = RawClient::connect(server.addr);
    let host = client.peer_addr().to_string();
    let upload = format!(
        "POST /upload HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\nTrailer: Digest, X-Api-Key\r\n\r\n\
         5\r\nhello\r\n6\r\n world\r\n0\r\nDigest: sha-256=abc\r\nX-Api-Key: s3cret-key\r\n\r\n"
    );
    client.send(upload.as_bytes());
    assert_eq!(client.read_response(false).body_text(), "got 11 bytes for /upload");
    client.exchange("GET", "/after");
    drop(client);
    let records = trace.stop();
    assert_eq!(server.served().len(), 2);
    for role in ["client", "server"] {
        let recs = by_role(&records, role);
        assert_eq!(recs.len(), 2, "{role} records:\n{}", dump(&records));
        let rec = recs[0];
        assert_complete_exchange(rec, since);
        assert_eq!(str_at(rec, "/request/body"), "hello world", "decoded body in {rec}");
        assert_eq!(
            rec.pointer("/request/trailers"),
            Some(&serde_json::json!([["Digest", "sha-256=abc"], ["X-Api-Key", "<redacted>"]])),
            "trailers in {rec}"
        );
        assert!(!rec.to_string().contains("s3cret-key"), "secret trailer shown in {rec}");
        assert_after(recs[1]);
    }
}

#[test]
fn head_with_content_length_has_no_body() {
    let records = run(&[("HEAD", "/resource"), ("GET", "/after")]);
    for role in ["client", "server"] {
        let recs = by_role(&records, role);
        let rec = recs[0];
        assert_eq!(u64_at(rec, "/response/status"), 200, "status in {rec}");
        assert_eq!(
            header_at(rec, "/response/headers", "Content-Length").as_deref(),
            Some("1000"),
            "Content-Length in {rec}"
        );
        assert_eq!(
            u64_at(rec, "/response/body_size"),
            0,
            "HEAD response body_size in {rec}"
        );
        assert_eq!(
            str_at(rec, "/response/body"),
            "",
            "HEAD response body in {rec}"
        );
        assert_after(recs[1]);
    }
}

#[test]
fn no_content_and_not_modified_have_no_body() {
    let records = run(&[("GET", "/204"), ("GET", "/304"), ("GET", "/after")]);
    for role in ["client", "server"] {
        let recs = by_role(&records, role);
        assert_eq!(
            u64_at(recs[0], "/response/status"),
            204,
            "status in {}",
            recs[0]
        );
        assert_eq!(
            str_at(recs[0], "/response/reason"),
            "No Content",
            "reason in {}",
            recs[0]
        );
        assert_eq!(
            u64_at(recs[0], "/response/body_size"),
            0,
            "204 body_size in {}",
            recs[0]
        );
        assert_eq!(
            u64_at(recs[1], "/response/status"),
            304,
            "status in {}",
            recs[1]
        );
        assert_eq!(
            str_at(recs[1], "/response/reason"),
            "Not Modified",
            "reason in {}",
            recs[1]
        );
        assert_eq!(
            u64_at(recs[1], "/response/body_size"),
            0,
            "304 body_size in {}",
            recs[1]
        );
        assert_after(recs[2]);
    }
}

/// A binary upload and a binary answer: each body is reported whole (under `--max-body`)
/// in base64, byte for byte, on both roles. Their lengths leave a tail after the encoder's
/// 12-byte steps (1,502 and 3,001 bytes: one and two bytes of padding).
#[test]
fn binary_bodies_are_base64_byte_for_byte() {
    use base64::Engine as _;
    let server = HttpServer::start("127.0.0.1:0", handler);
    let trace = Trace::on_port(server.port(), &[]);
    let since = trace.started_at;
    let (upload, answer) = (binary(1502, 13), binary(3001, 7));
    let mut client = RawClient::connect(server.addr);
    let mut req = format!(
        "POST /binary HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n\r\n",
        server.authority(),
        upload.len()
    )
    .into_bytes();
    req.extend_from_slice(&upload);
    client.send(&req);
    let resp = client.read_response(false);
    assert_eq!(resp.body, answer, "the server's answer");
    drop(client);
    let records = trace.stop();
    assert_eq!(server.served()[0].request.body, upload, "the server read the upload");
    let decode = |rec: &Value, at: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(str_at(rec, &format!("{at}/body")))
            .unwrap_or_else(|e| panic!("{at}/body is not base64 ({e}) in {rec}"))
    };
    for role in ["client", "server"] {
        let recs = by_role(&records, role);
        assert_eq!(recs.len(), 1, "{role} records:\n{}", dump(&records));
        let rec = recs[0];
        assert_complete_exchange(rec, since);
        for (at, body) in [("/request", &upload), ("/response", &answer)] {
            assert_eq!(str_at(rec, &format!("{at}/body_encoding")), "base64", "{at} in {rec}");
            assert_eq!(u64_at(rec, &format!("{at}/body_size")), body.len() as u64, "{at} in {rec}");
            assert_eq!(&decode(rec, at), body, "{role} {at} body, byte for byte");
        }
    }
}
