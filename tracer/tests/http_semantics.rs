//! HTTP semantics through the real kernel: upgrades, CONNECT, interim responses, framing
//! corner cases (HEAD, 204/304, close-delimited, chunked uploads, odd Content-Length
//! values, malformed heads) and heads larger than the capture, each played as a scripted
//! conversation between a raw client and a raw server on loopback, and checked in the
//! records of both ends.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::thread::JoinHandle;
use std::time::Duration;

use common::*;
use serde_json::Value;

/// One move of a scripted conversation. Each side does its part: the sender writes the
/// bytes in one write(), the receiver reads exactly as many, so the script is followed
/// in order whatever the scheduler does.
#[derive(Clone)]
enum Step {
    /// The client writes these bytes; the server reads them.
    C(Vec<u8>),
    /// The server writes these bytes; the client reads them.
    S(Vec<u8>),
    /// The server closes; the client reads to the end of the stream.
    SClose,
}

fn c(bytes: impl AsRef<[u8]>) -> Step {
    Step::C(bytes.as_ref().to_vec())
}

fn s(bytes: impl AsRef<[u8]>) -> Step {
    Step::S(bytes.as_ref().to_vec())
}

fn read_n(stream: &mut TcpStream, n: usize) {
    let mut buf = vec![0; n];
    stream.read_exact(&mut buf).expect("read the scripted bytes");
}

fn serve(listener: TcpListener, steps: Vec<Step>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().expect("accept");
        conn.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        for step in steps {
            match step {
                Step::C(b) => read_n(&mut conn, b.len()),
                Step::S(b) => conn.write_all(&b).expect("server write"),
                Step::SClose => {
                    let _ = conn.shutdown(Shutdown::Both);
                    return;
                }
            }
        }
    })
}

fn play(client: &mut TcpStream, steps: &[Step]) {
    for step in steps {
        match step {
            Step::C(b) => client.write_all(b).expect("client write"),
            Step::S(b) => read_n(client, b.len()),
            Step::SClose => {
                let mut rest = Vec::new();
                let _ = client.read_to_end(&mut rest);
                assert!(rest.is_empty(), "unscripted bytes before the close: {rest:?}");
            }
        }
    }
}

/// Plays `steps` on one connection under `l7trace --json --port P EXTRA` and returns the
/// records, after checking that each role has `exchanges` of them.
fn converse(steps: &[Step], extra: &[&str], exchanges: usize) -> Vec<Value> {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr: SocketAddr = listener.local_addr().expect("addr");
    let trace = Trace::on_port(addr.port(), extra);
    let server = serve(listener, steps.to_vec());
    let mut client = TcpStream::connect(addr).expect("connect");
    client.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    play(&mut client, steps);
    drop(client);
    server.join().expect("server thread");
    let records = trace.stop();
    for role in ["client", "server"] {
        assert_eq!(
            by_role(&records, role).len(),
            exchanges,
            "{exchanges} {role} records expected; records:\n{}",
            dump(&records)
        );
    }
    records
}

fn get(target: &str) -> String {
    format!("GET {target} HTTP/1.1\r\nHost: test\r\n\r\n")
}

fn ok(body: &str) -> String {
    format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len())
}

/// The `i`th record of each role, checked by `f`.
fn each_role(records: &[Value], i: usize, f: impl Fn(&Value)) {
    for role in ["client", "server"] {
        f(by_role(records, role)[i]);
    }
}

fn assert_exchange(rec: &Value, method: &str, target: &str, status: u64, resp_body: &str) {
    assert_eq!(str_at(rec, "/request/method"), method, "method in {rec}");
    assert_eq!(str_at(rec, "/request/target"), target, "target in {rec}");
    assert_eq!(u64_at(rec, "/response/status"), status, "status in {rec}");
    assert_eq!(str_at(rec, "/response/body"), resp_body, "response body in {rec}");
    assert_eq!(u64_at(rec, "/response/body_size"), resp_body.len() as u64, "response body_size in {rec}");
}

fn assert_clean(rec: &Value) {
    assert_eq!(rec["complete"], true, "complete in {rec}");
    assert_eq!(rec["lost_bytes"], 0, "lost_bytes in {rec}");
    assert!(rec.get("note").is_none(), "no note expected in {rec}");
}

/// A complete exchange `GET /after` answered `after`: what follows a corner case on the
/// same connection must still parse and pair.
fn assert_after(rec: &Value) {
    assert_clean(rec);
    assert_exchange(rec, "GET", "/after", 200, "after");
}

fn after() -> [Step; 2] {
    [c(get("/after")), s(ok("after"))]
}

fn with_after(mut steps: Vec<Step>) -> Vec<Step> {
    steps.extend(after());
    steps
}

// --- Upgrades and tunnels -------------------------------------------------------------

/// Binary frames that carry text looking like HTTP: after the 101 they are not HTTP of
/// this connection and must produce no record.
const FRAME_FROM_CLIENT: &[u8] = b"\x81\x1aGET /not-http HTTP/1.1\r\n\r\n";
const FRAME_FROM_SERVER: &[u8] = b"\x82\x26HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";

#[test]
fn websocket_upgrade_ends_http_parsing() {
    let req = "GET /chat HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
               Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    let resp = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
    let steps = [c(req), s(resp), c(FRAME_FROM_CLIENT), s(FRAME_FROM_SERVER), c(FRAME_FROM_CLIENT), s(FRAME_FROM_SERVER)];
    let records = converse(&steps, &[], 1);
    each_role(&records, 0, |rec| {
        assert_exchange(rec, "GET", "/chat", 101, "");
        assert_eq!(str_at(rec, "/response/reason"), "Switching Protocols", "{rec}");
        assert_eq!(header_at(rec, "/response/headers", "Upgrade").as_deref(), Some("websocket"), "{rec}");
        assert_eq!(rec["note"], "upgrade", "note in {rec}");
    });
}

#[test]
fn upgrade_refused_with_200_keeps_parsing() {
    let req = "GET /chat HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
    let records = converse(&with_after(vec![c(req), s(ok("plain"))]), &[], 2);
    each_role(&records, 0, |rec| {
        assert_clean(rec);
        assert_exchange(rec, "GET", "/chat", 200, "plain");
    });
    each_role(&records, 1, assert_after);
}

#[test]
fn h2c_upgrade_accepted_then_http2_frames() {
    let req = "GET /h2 HTTP/1.1\r\nHost: test\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n\
               HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n";
    let resp = "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n";
    // The server's SETTINGS frame, then the client's preface and SETTINGS.
    let server_settings = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00";
    let preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";
    let records = converse(&[c(req), s(resp), s(server_settings), c(preface)], &[], 1);
    each_role(&records, 0, |rec| {
        assert_exchange(rec, "GET", "/h2", 101, "");
        assert_eq!(rec["note"], "upgrade", "note in {rec}");
    });
}

#[test]
fn h2c_upgrade_ignored_by_the_server_keeps_parsing() {
    let req = "GET /h2 HTTP/1.1\r\nHost: test\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n\
               HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n";
    let records = converse(&with_after(vec![c(req), s(ok("h1"))]), &[], 2);
    each_role(&records, 0, |rec| {
        assert_clean(rec);
        assert_exchange(rec, "GET", "/h2", 200, "h1");
    });
    each_role(&records, 1, assert_after);
}

/// Decision: after a successful CONNECT the connection carries the tunnel, whose bytes
/// belong to another conversation (even when they are plain HTTP): none becomes a record
/// of this connection, and the CONNECT exchange says `upgrade`.
#[test]
fn connect_tunnel_bytes_are_not_parsed() {
    let req = "CONNECT origin.test:80 HTTP/1.1\r\nHost: origin.test:80\r\n\r\n";
    let resp = "HTTP/1.1 200 Connection Established\r\n\r\n";
    let steps = [c(req), s(resp), c(get("/inside")), s(ok("tunnelled")), c(get("/inside2")), s(ok("again"))];
    let records = converse(&steps, &[], 1);
    each_role(&records, 0, |rec| {
        assert_exchange(rec, "CONNECT", "origin.test:80", 200, "");
        assert_eq!(str_at(rec, "/response/reason"), "Connection Established", "{rec}");
        assert_eq!(rec["note"], "upgrade", "note in {rec}");
    });
}

/// Once a connection leaves HTTP (a 101, a CONNECT answered 2xx), the kernel side stops
/// copying it: the frames that follow, 2,000 writes and as many reads or more, reach
/// l7trace as no event, where each call was one before. The frames start once both
/// records of the upgrade are out (l7trace has parsed the answer by then), and still
/// leave no record.
fn left_http_is_not_copied(req: &str, resp: &str) {
    const FRAMES: usize = 2000;
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr: SocketAddr = listener.local_addr().expect("addr");
    let trace = Trace::on_port(addr.port(), &[]);
    let (go, wait_go) = std::sync::mpsc::channel::<()>();
    let (req_len, resp_bytes) = (req.len(), resp.as_bytes().to_vec());
    let server = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().expect("accept");
        conn.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        read_n(&mut conn, req_len);
        conn.write_all(&resp_bytes).expect("answer");
        wait_go.recv().expect("go");
        let frame = [b'\x82'; 1024];
        for _ in 0..FRAMES {
            conn.write_all(&frame).expect("frame");
        }
    });
    let mut client = TcpStream::connect(addr).expect("connect");
    client.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    client.write_all(req.as_bytes()).expect("request");
    read_n(&mut client, resp.len());
    let seen = trace.wait_for_records(Duration::from_secs(10), |r| r.len() >= 2);
    assert_eq!(seen.len(), 2, "both records of the upgrade expected before the frames:\n{}", dump(&seen));
    go.send(()).expect("go");
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).expect("frames");
    assert_eq!(rest.len(), FRAMES * 1024, "the frames, whole");
    server.join().expect("server thread");
    drop(client);
    let stopped = trace.stop_full();
    assert_eq!(stopped.records.len(), 2, "no record after the upgrade:\n{}", dump(&stopped.records));
    each_role(&stopped.records, 0, |rec| assert_eq!(rec["note"], "upgrade", "note in {rec}"));
    // The request and answer, each seen by both ends, and the two closes; a few more
    // when a read took the answer in two.
    let events = summary_counter(&stopped.stderr, "events");
    assert!(events <= 20, "{events} events for a connection whose {FRAMES} frames should not be copied; stderr:\n{}", stopped.stderr.join("\n"));
}

#[test]
fn websocket_frames_after_the_upgrade_are_not_copied() {
    left_http_is_not_copied(
        "GET /chat HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
    );
}

#[test]
fn tunnel_bytes_after_connect_are_not_copied() {
    left_http_is_not_copied(
        "CONNECT origin.test:443 HTTP/1.1\r\nHost: origin.test:443\r\n\r\n",
        "HTTP/1.1 200 Connection Established\r\n\r\n",
    );
}

#[test]
fn connect_refused_keeps_parsing() {
    let req = "CONNECT origin.test:443 HTTP/1.1\r\nHost: origin.test:443\r\n\r\n";
    let resp = "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\nContent-Length: 6\r\n\r\ndenied";
    let records = converse(&with_after(vec![c(req), s(resp)]), &[], 2);
    each_role(&records, 0, |rec| {
        assert_clean(rec);
        assert_exchange(rec, "CONNECT", "origin.test:443", 407, "denied");
    });
    each_role(&records, 1, assert_after);
}

// --- Interim responses and Expect: 100-continue ----------------------------------------

#[test]
fn early_hints_and_continue_before_the_final_response() {
    let head = "POST /upload HTTP/1.1\r\nHost: test\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n";
    let hints = "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload; as=style\r\nLink: </app.js>; rel=preload\r\n\r\n";
    let final_resp = "HTTP/1.1 201 Created\r\nX-Final: yes\r\nContent-Length: 7\r\n\r\ncreated";
    let steps = with_after(vec![
        c(head),
        s(hints),
        s("HTTP/1.1 100 Continue\r\n\r\n"),
        c("data"),
        s(final_resp),
    ]);
    let records = converse(&steps, &[], 2);
    each_role(&records, 0, |rec| {
        assert_clean(rec);
        assert_exchange(rec, "POST", "/upload", 201, "created");
        assert_eq!(str_at(rec, "/request/body"), "data", "{rec}");
        assert_eq!(header_at(rec, "/response/headers", "X-Final").as_deref(), Some("yes"), "{rec}");
        assert_eq!(header_at(rec, "/response/headers", "Link"), None, "interim fields are not the final's: {rec}");
        // The interim heads, in order, each with its own fields and time.
        let interim = rec["interim"].as_array().unwrap_or_else(|| panic!("no interim: {rec}"));
        let statuses: Vec<u64> = interim.iter().map(|m| m["status"].as_u64().unwrap()).collect();
        assert_eq!(statuses, [103, 100], "{rec}");
        assert_eq!(str_at(&interim[0], "/reason"), "Early Hints", "{rec}");
        assert_eq!(interim[0]["headers"].as_array().map(Vec::len), Some(2), "{rec}");
        assert_eq!(header_at(&interim[0], "/headers", "Link").as_deref(), Some("</style.css>; rel=preload; as=style"), "{rec}");
        let at = |m: &serde_json::Value| m["ttfb_us"].as_u64().unwrap();
        assert!(at(&interim[0]) <= at(&interim[1]) && at(&interim[1]) <= u64_at(rec, "/ttfb_us"), "{rec}");
    });
    each_role(&records, 1, assert_after);
}

/// Decision: a final answer to `Expect: 100-continue` before the body, after which the
/// client closes without sending it: the request never reached its end, so the exchange
/// is reported with its answer, incomplete, `closed`.
#[test]
fn expectation_failed_then_no_body() {
    let head = "PUT /file HTTP/1.1\r\nHost: test\r\nExpect: 100-continue\r\nContent-Length: 10\r\n\r\n";
    let resp = "HTTP/1.1 417 Expectation Failed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    let records = converse(&[c(head), s(resp), Step::SClose], &[], 1);
    each_role(&records, 0, |rec| {
        assert_exchange(rec, "PUT", "/file", 417, "");
        assert_eq!(u64_at(rec, "/request/body_size"), 0, "{rec}");
        assert_eq!(rec["complete"], false, "the request body never came: {rec}");
        assert_eq!(rec["note"], "closed", "{rec}");
        assert_eq!(rec["lost_bytes"], 0, "{rec}");
    });
}

#[test]
fn unauthorized_without_continue_then_body_sent_anyway() {
    let head = "POST /form HTTP/1.1\r\nHost: test\r\nExpect: 100-continue\r\nContent-Length: 9\r\n\r\n";
    let resp = "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"x\"\r\nContent-Length: 4\r\n\r\nauth";
    let records = converse(&with_after(vec![c(head), s(resp), c("a=1&b=two")]), &[], 2);
    each_role(&records, 0, |rec| {
        assert_clean(rec);
        assert_exchange(rec, "POST", "/form", 401, "auth");
        assert_eq!(str_at(rec, "/request/body"), "a=1&b=two", "{rec}");
    });
    each_role(&records, 1, assert_after);
}

// --- Responses without a body, and bodies to the close ----------------------------------

#[test]
fn head_responses_with_framing_headers_pipelined_with_a_get() {
    let reqs = [
        "HEAD /cl HTTP/1.1\r\nHost: test\r\n\r\n".to_owned(),
        "HEAD /te HTTP/1.1\r\nHost: test\r\n\r\n".to_owned(),
        get("/after"),
    ]
    .concat();
    let resps = [
        "HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n".to_owned(),
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_owned(),
        ok("after"),
    ]
    .concat();
    let records = converse(&[c(reqs), s(resps)], &[], 3);
    for (i, target, framing) in [(0, "/cl", "Content-Length"), (1, "/te", "Transfer-Encoding")] {
        each_role(&records, i, |rec| {
            assert_clean(rec);
            assert_exchange(rec, "HEAD", target, 200, "");
            assert!(header_at(rec, "/response/headers", framing).is_some(), "{rec}");
        });
    }
    each_role(&records, 2, assert_after);
}

#[test]
fn no_content_and_not_modified_with_content_length_pipelined() {
    let reqs = [get("/204"), get("/304"), get("/after")].concat();
    let resps = [
        "HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n".to_owned(),
        "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\nContent-Length: 99\r\n\r\n".to_owned(),
        ok("after"),
    ]
    .concat();
    let records = converse(&[c(reqs), s(resps)], &[], 3);
    each_role(&records, 0, |rec| {
        assert_clean(rec);
        assert_exchange(rec, "GET", "/204", 204, "");
    });
    each_role(&records, 1, |rec| {
        assert_clean(rec);
        assert_exchange(rec, "GET", "/304", 304, "");
    });
    each_role(&records, 2, assert_after);
}

#[test]
fn close_delimited_response_on_a_keep_alive_connection() {
    let resp = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of this, until the close";
    let records = converse(&[c(get("/stream")), s(resp), Step::SClose], &[], 1);
    each_role(&records, 0, |rec| {
        assert_clean(rec);
        assert_exchange(rec, "GET", "/stream", 200, "all of this, until the close");
    });
}

#[test]
fn http10_keep_alive_with_content_length() {
    let req = |t: &str| format!("GET {t} HTTP/1.0\r\nHost: test\r\nConnection: keep-alive\r\n\r\n");
    let resp = |b: &str| format!("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: {}\r\n\r\n{b}", b.len());
    let steps = [c(req("/one")), s(resp("first")), c(req("/two")), s(resp("second"))];
    let records = converse(&steps, &[], 2);
    for (i, target, body) in [(0, "/one", "first"), (1, "/two", "second")] {
        each_role(&records, i, |rec| {
            assert_clean(rec);
            assert_exchange(rec, "GET", target, 200, body);
            assert_eq!(str_at(rec, "/request/version"), "HTTP/1.0", "{rec}");
            assert_eq!(str_at(rec, "/response/version"), "HTTP/1.0", "{rec}");
        });
    }
}

// --- Request bodies -------------------------------------------------------------------

#[test]
fn chunked_upload_with_extensions_and_trailers() {
    let req = "POST /up HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n\
               5;ext=1\r\nhello\r\n6 ; name=\"quoted value\"\r\n world\r\n0\r\nX-Sum: 42\r\nX-More: yes\r\n\r\n";
    let records = converse(&with_after(vec![c(req), s(ok("stored"))]), &[], 2);
    each_role(&records, 0, |rec| {
        assert_clean(rec);
        assert_exchange(rec, "POST", "/up", 200, "stored");
        assert_eq!(str_at(rec, "/request/body"), "hello world", "{rec}");
        assert_eq!(u64_at(rec, "/request/body_size"), 11, "{rec}");
    });
    each_role(&records, 1, assert_after);
}

#[test]
fn chunked_upload_in_pieces_written_apart() {
    let head = "POST /up HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n";
    let steps = with_after(vec![
        c(head),
        c("4\r\nab"),
        c("cd\r"),
        c("\n3;x\r\nefg\r\n0\r"),
        c("\nX-T: 1\r"),
        c("\n\r\n"),
        s(ok("stored")),
    ]);
    let records = converse(&steps, &[], 2);
    each_role(&records, 0, |rec| {
        assert_clean(rec);
        assert_eq!(str_at(rec, "/request/body"), "abcdefg", "{rec}");
    });
    each_role(&records, 1, assert_after);
}

/// One write of a 1 MiB body: the client's send is captured up to --max-capture (16 KiB),
/// the rest counted; the body size stays right and the next request still parses.
#[test]
fn one_mebibyte_upload_in_one_write() {
    const SIZE: usize = 1 << 20;
    let body = pseudo_random_bytes(SIZE, 7).iter().map(|b| b'a' + b % 26).collect::<Vec<u8>>();
    let mut req = format!("PUT /blob HTTP/1.1\r\nHost: test\r\nContent-Length: {SIZE}\r\n\r\n").into_bytes();
    req.extend_from_slice(&body);
    let records = converse(&with_after(vec![Step::C(req), s(ok("stored"))]), &[], 2);
    each_role(&records, 0, |rec| {
        assert_clean(rec);
        assert_exchange(rec, "PUT", "/blob", 200, "stored");
        assert_eq!(u64_at(rec, "/request/body_size"), SIZE as u64, "{rec}");
        assert!(bool_at(rec, "/request/body_truncated"), "{rec}");
        assert_eq!(str_at(rec, "/request/body").as_bytes(), &body[..4096], "body prefix");
    });
    each_role(&records, 1, assert_after);
}

/// Decision: the server answers 413 after the head and closes; the client sends no body.
/// The answer pairs with its request, and the exchange says the request was cut.
#[test]
fn early_413_then_close() {
    let head = "POST /big HTTP/1.1\r\nHost: test\r\nContent-Length: 1048576\r\n\r\n";
    let resp = "HTTP/1.1 413 Content Too Large\r\nConnection: close\r\nContent-Length: 8\r\n\r\ntoo big!";
    let records = converse(&[c(head), s(resp), Step::SClose], &[], 1);
    each_role(&records, 0, |rec| {
        assert_exchange(rec, "POST", "/big", 413, "too big!");
        assert_eq!(u64_at(rec, "/request/body_size"), 0, "{rec}");
        assert_eq!(rec["complete"], false, "{rec}");
        assert_eq!(rec["note"], "closed", "{rec}");
        assert_eq!(rec["lost_bytes"], 0, "{rec}");
    });
}

// --- Odd framing headers ----------------------------------------------------------------

/// Transfer-Encoding wins over Content-Length (RFC 9112 section 6.3), both ways.
#[test]
fn transfer_encoding_with_content_length() {
    let req = "POST /both HTTP/1.1\r\nHost: test\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n\
               5\r\nhello\r\n0\r\n\r\n";
    let resp = "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
    let records = converse(&with_after(vec![c(req), s(resp)]), &[], 2);
    each_role(&records, 0, |rec| {
        assert_clean(rec);
        assert_exchange(rec, "POST", "/both", 200, "abc");
        assert_eq!(str_at(rec, "/request/body"), "hello", "{rec}");
    });
    each_role(&records, 1, assert_after);
}

#[test]
fn content_length_with_leading_zeros() {
    let req = "POST /z HTTP/1.1\r\nHost: test\r\nContent-Length: 0005\r\n\r\nhello";
    let resp = "HTTP/1.1 200 OK\r\nContent-Length: 002\r\n\r\nok";
    let records = converse(&with_after(vec![c(req), s(resp)]), &[], 2);
    each_role(&records, 0, |rec| {
        assert_clean(rec);
        assert_exchange(rec, "POST", "/z", 200, "ok");
        assert_eq!(str_at(rec, "/request/body"), "hello", "{rec}");
    });
    each_role(&records, 1, assert_after);
}

/// A request whose Content-Length is invalid (`+5`) or conflicting (`5` then `6`) has no
/// known framing: servers answer 400 and close. It is still reported, as it came, with
/// `parse_error`, paired with that answer.
fn bad_request_length(length_fields: &str) {
    let req = format!("POST /bad HTTP/1.1\r\nHost: test\r\n{length_fields}\r\nhello");
    let resp = "HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 3\r\n\r\nbad";
    let records = converse(&[c(req), s(resp), Step::SClose], &[], 1);
    each_role(&records, 0, |rec| {
        assert_exchange(rec, "POST", "/bad", 400, "bad");
        assert_eq!(rec["note"], "parse_error", "{rec}");
        assert_eq!(rec["complete"], false, "{rec}");
    });
}

#[test]
fn request_content_length_with_plus_sign() {
    bad_request_length("Content-Length: +5\r\n");
}

#[test]
fn request_with_two_different_content_lengths() {
    bad_request_length("Content-Length: 5\r\nContent-Length: 6\r\n");
}

/// A response with conflicting lengths cannot be framed: it is reported with its head,
/// incomplete, `parse_error`; its body is skipped up to the next response, and the next
/// exchange pairs right.
#[test]
fn response_with_two_different_content_lengths() {
    let resp = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok!";
    let records = converse(&with_after(vec![c(get("/two")), s(resp)]), &[], 2);
    each_role(&records, 0, |rec| {
        assert_exchange(rec, "GET", "/two", 200, "");
        assert_eq!(rec["complete"], false, "{rec}");
        assert_eq!(rec["note"], "parse_error", "{rec}");
    });
    each_role(&records, 1, assert_after);
}

/// Where no body may follow (304, HEAD), a bad Content-Length changes nothing.
#[test]
fn bad_content_length_where_no_body_follows() {
    let steps = with_after(vec![
        c(get("/cached")),
        s("HTTP/1.1 304 Not Modified\r\nContent-Length: abc\r\n\r\n"),
        c("HEAD /h HTTP/1.1\r\nHost: test\r\n\r\n"),
        s("HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\n"),
    ]);
    let records = converse(&steps, &[], 3);
    each_role(&records, 0, |rec| {
        assert_clean(rec);
        assert_exchange(rec, "GET", "/cached", 304, "");
    });
    each_role(&records, 1, |rec| {
        assert_clean(rec);
        assert_exchange(rec, "HEAD", "/h", 200, "");
    });
    each_role(&records, 2, assert_after);
}

/// A request coding other than chunked last (RFC 9112 section 6.3 item 4): servers answer
/// 400 and close; the request is reported, marked.
#[test]
fn request_coding_without_final_chunked() {
    let req = "POST /gz HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: gzip\r\n\r\n\x1f\u{8b}";
    let resp = "HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 3\r\n\r\nbad";
    let records = converse(&[c(req), s(resp), Step::SClose], &[], 1);
    each_role(&records, 0, |rec| {
        assert_exchange(rec, "POST", "/gz", 400, "bad");
        assert_eq!(rec["note"], "parse_error", "{rec}");
        assert_eq!(rec["complete"], false, "{rec}");
    });
}

// --- Malformed and unusual heads --------------------------------------------------------

#[test]
fn request_field_line_without_colon() {
    let req = "GET /nocolon HTTP/1.1\r\nHost: test\r\nthis line has no colon\r\n\r\n";
    let resp = "HTTP/1.1 400 Bad Request\r\nContent-Length: 3\r\n\r\nbad";
    let records = converse(&with_after(vec![c(req), s(resp)]), &[], 2);
    each_role(&records, 0, |rec| {
        assert_exchange(rec, "GET", "/nocolon", 400, "bad");
        assert_eq!(rec["note"], "parse_error", "{rec}");
        assert_eq!(header_at(rec, "/request/headers", "Host").as_deref(), Some("test"), "{rec}");
    });
    each_role(&records, 1, assert_after);
}

#[test]
fn response_field_line_without_colon() {
    let resp = "HTTP/1.1 200 OK\r\nX-Good: 1\r\nthis line has no colon\r\nContent-Length: 2\r\n\r\nok";
    let records = converse(&with_after(vec![c(get("/nocolon")), s(resp)]), &[], 2);
    each_role(&records, 0, |rec| {
        assert_eq!(str_at(rec, "/request/target"), "/nocolon", "{rec}");
        assert!(rec["response"].is_null(), "{rec}");
        assert_eq!(rec["note"], "parse_error", "{rec}");
    });
    each_role(&records, 1, assert_after);
}

/// RFC 9112 section 5.2: a recipient of a response replaces an obs-fold with spaces.
#[test]
fn response_with_obs_fold() {
    let resp = "HTTP/1.1 200 OK\r\nX-Folded: first\r\n  second\r\nContent-Length: 2\r\n\r\nok";
    let records = converse(&with_after(vec![c(get("/fold")), s(resp)]), &[], 2);
    each_role(&records, 0, |rec| {
        assert_clean(rec);
        assert_exchange(rec, "GET", "/fold", 200, "ok");
        let folded = header_at(rec, "/response/headers", "X-Folded").expect("X-Folded");
        assert!(folded.starts_with("first") && folded.ends_with("second"), "{rec}");
        assert!(!folded.contains(['\r', '\n']), "the fold is spaces: {rec}");
    });
    each_role(&records, 1, assert_after);
}

/// A server rejects (or unfolds) an obs-fold in a request: reported as it came, marked.
#[test]
fn request_with_obs_fold() {
    let req = "GET /fold HTTP/1.1\r\nHost: test\r\nX-Folded: first\r\n second\r\n\r\n";
    let resp = "HTTP/1.1 400 Bad Request\r\nContent-Length: 3\r\n\r\nbad";
    let records = converse(&with_after(vec![c(req), s(resp)]), &[], 2);
    each_role(&records, 0, |rec| {
        assert_exchange(rec, "GET", "/fold", 400, "bad");
        assert_eq!(rec["note"], "parse_error", "{rec}");
    });
    each_role(&records, 1, assert_after);
}

#[test]
fn long_reason_odd_status_and_no_reason() {
    let reason = "R".repeat(4000);
    let steps = with_after(vec![
        c(get("/long")),
        s(format!("HTTP/1.1 200 {reason}\r\nContent-Length: 1\r\n\r\na")),
        c(get("/999")),
        s("HTTP/1.1 999 Whatever\r\nContent-Length: 1\r\n\r\nb"),
        c(get("/noreason")),
        s("HTTP/1.1 200\r\nContent-Length: 1\r\n\r\nc"),
        c(get("/emptyreason")),
        s("HTTP/1.1 404 \r\nContent-Length: 1\r\n\r\nd"),
    ]);
    let records = converse(&steps, &[], 5);
    let cases = [(0, "/long", 200, reason.as_str(), "a"), (1, "/999", 999, "Whatever", "b"), (2, "/noreason", 200, "", "c"), (3, "/emptyreason", 404, "", "d")];
    for (i, target, status, reason, body) in cases {
        each_role(&records, i, |rec| {
            assert_clean(rec);
            assert_exchange(rec, "GET", target, status, body);
            assert_eq!(str_at(rec, "/response/reason"), reason, "{rec}");
        });
    }
    each_role(&records, 4, assert_after);
}

/// Methods are case-sensitive: `get` is another method than GET, reported as sent. (As a
/// connection's first request it is not followed: the kernel side starts a stream only on
/// an upper-case method token; here it comes second.)
#[test]
fn lowercase_method_is_reported_as_sent() {
    let steps = with_after(vec![
        c(get("/first")),
        s(ok("one")),
        c("get /lower HTTP/1.1\r\nHost: test\r\n\r\n"),
        s("HTTP/1.1 501 Not Implemented\r\nContent-Length: 2\r\n\r\nno"),
    ]);
    let records = converse(&steps, &[], 3);
    each_role(&records, 1, |rec| {
        assert_clean(rec);
        assert_exchange(rec, "get", "/lower", 501, "no");
    });
    each_role(&records, 2, assert_after);
}

// --- Heads larger than the capture ------------------------------------------------------

/// A 20 KiB response head (twenty 1 KiB Set-Cookie fields) written in one write: the
/// server's send is captured up to --max-capture, so its head is cut short there
/// (`truncated`, start line and whole fields kept); the client reads it in pieces and
/// sees all of it. The next exchange pairs right on both ends.
#[test]
fn response_head_larger_than_the_capture() {
    let cookie = "v".repeat(1000);
    let mut resp = String::from("HTTP/1.1 200 OK\r\nX-First: here\r\n");
    for i in 0..20 {
        resp.push_str(&format!("Set-Cookie: c{i}={cookie}\r\n"));
    }
    resp.push_str("Content-Length: 4\r\n\r\nbody");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let trace = Trace::on_port(addr.port(), &[]);
    let steps = with_after(vec![c(get("/cookies")), s(&resp)]);
    let server = serve(listener, steps.clone());
    let mut client = TcpStream::connect(addr).expect("connect");
    // Small reads: the client's side sees every byte of the head.
    play_in_reads_of(&mut client, &steps, 4096);
    drop(client);
    server.join().expect("server thread");
    let records = trace.stop();
    for role in ["client", "server"] {
        let recs = by_role(&records, role);
        assert_eq!(recs.len(), 2, "{role}:\n{}", dump(&records));
        let rec = recs[0];
        assert_eq!(str_at(rec, "/request/target"), "/cookies", "{rec}");
        assert_eq!(u64_at(rec, "/response/status"), 200, "{rec}");
        assert_eq!(header_at(rec, "/response/headers", "X-First").as_deref(), Some("here"), "{rec}");
        assert_eq!(rec["lost_bytes"], 0, "{rec}");
        if role == "client" {
            assert_clean(rec);
            assert_eq!(str_at(rec, "/response/body"), "body", "{rec}");
        } else {
            assert_eq!(rec["complete"], false, "{rec}");
            assert_eq!(rec["note"], "truncated", "{rec}");
        }
        assert_after(recs[1]);
    }
}

/// `play`, with the client reading at most `size` bytes per read.
fn play_in_reads_of(client: &mut TcpStream, steps: &[Step], size: usize) {
    for step in steps {
        match step {
            Step::S(b) => {
                let mut left = b.len();
                let mut buf = vec![0; size];
                while left > 0 {
                    let n = client.read(&mut buf[..size.min(left)]).expect("read");
                    assert!(n > 0, "EOF in a scripted reply");
                    left -= n;
                }
            }
            other => play(client, std::slice::from_ref(other)),
        }
    }
}

/// A 20 KiB request head (one Cookie field) and its body in one write: the send is
/// captured up to --max-capture, and the server reads it in one read too, so both ends
/// see the head cut short: reported with its start line and whole fields, `truncated`,
/// paired with its own answer; the next exchange pairs right.
#[test]
fn request_head_larger_than_the_capture() {
    let cookie = "k".repeat(20 * 1024);
    let req = format!("POST /big-head HTTP/1.1\r\nHost: test\r\nCookie: {cookie}\r\nContent-Length: 5\r\n\r\nhello");
    let records = converse(&with_after(vec![c(req), s(ok("seen"))]), &[], 2);
    each_role(&records, 0, |rec| {
        assert_exchange(rec, "POST", "/big-head", 200, "seen");
        assert_eq!(header_at(rec, "/request/headers", "Host").as_deref(), Some("test"), "{rec}");
        assert_eq!(rec["complete"], false, "{rec}");
        assert_eq!(rec["note"], "truncated", "{rec}");
        assert_eq!(rec["lost_bytes"], 0, "{rec}");
    });
    each_role(&records, 1, assert_after);
}

/// A request line longer than the capture (a 20 KiB query string in one write), read in
/// one read: neither end captures the line's end. Both report the request, its target as
/// far as it was captured, the version unknown (null), `truncated`, with its own answer;
/// the connection stays followed and the next exchange pairs right. Before, the request
/// was dropped with its answer and the connection taken for not HTTP.
#[test]
fn request_line_longer_than_the_capture() {
    let target = format!("/search?q={}", "q".repeat(20 * 1024));
    let req = format!("GET {target} HTTP/1.1\r\nHost: test\r\n\r\n");
    let records = converse(&with_after(vec![c(req), s(ok("found"))]), &[], 2);
    each_role(&records, 0, |rec| {
        assert_eq!(str_at(rec, "/request/method"), "GET", "{rec}");
        assert_eq!(str_at(rec, "/request/target"), &target[..16384 - 4], "the target as captured");
        assert!(rec["request"]["version"].is_null(), "{rec}");
        assert_eq!(u64_at(rec, "/response/status"), 200, "{rec}");
        assert_eq!(str_at(rec, "/response/body"), "found", "{rec}");
        assert_eq!(rec["complete"], false, "{rec}");
        assert_eq!(rec["note"], "truncated", "{rec}");
        assert_eq!(rec["lost_bytes"], 0, "{rec}");
    });
    each_role(&records, 1, assert_after);
}

/// curl uploading 1 MiB with `Transfer-Encoding: chunked`: the body is decoded to its
/// size at both ends. curl sends each chunk (size line, data, CRLF) in one send larger
/// than --max-capture: the chunk's CRLF is counted, not captured, and the next size line
/// starts the next send, so its record is whole too, its body shown up to the capture.
#[test]
fn curl_chunked_upload() {
    const SIZE: usize = 1 << 20;
    let server = HttpServer::start_default();
    let dir = TempDir::new("chunked-upload");
    let file = dir.join("body");
    std::fs::write(&file, pseudo_random_bytes(SIZE, 3)).expect("write body file");
    let trace = Trace::on_port(server.port(), &[]);
    let url = format!("http://{}/upload", server.authority());
    let data = format!("@{}", file.display());
    let out = curl(&["-H", "Transfer-Encoding: chunked", "-H", "Expect:", "--data-binary", &data, &url]);
    assert_eq!(out.stdout_text(), format!("got {SIZE} bytes for /upload"));
    let records = trace.stop();
    let rec = only_one(&records, "server");
    assert_clean(rec);
    assert_eq!(str_at(rec, "/request/method"), "POST", "{rec}");
    assert_eq!(u64_at(rec, "/request/body_size"), SIZE as u64, "{rec}");
    assert!(bool_at(rec, "/request/body_truncated"), "{rec}");
    assert_eq!(u64_at(rec, "/response/status"), 200, "{rec}");
    let client = only_one(&records, "client");
    assert_eq!(str_at(client, "/request/method"), "POST", "{client}");
    assert_eq!(u64_at(client, "/response/status"), 200, "{client}");
    assert_clean(client);
    assert_eq!(u64_at(client, "/request/body_size"), SIZE as u64, "{client}");
    assert!(bool_at(client, "/request/body_truncated"), "{client}");
}

/// A 1 MiB chunked body in one chunk, in one write: the client's send is captured up to
/// --max-capture, so the chunk's end and the last chunk are not seen there: its record
/// says `truncated`, paired with its answer, and the next request still parses.
#[test]
fn one_mebibyte_chunked_upload_in_one_write() {
    const SIZE: usize = 1 << 20;
    let mut req = b"POST /chunks HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    req.extend_from_slice(format!("{SIZE:x}\r\n").as_bytes());
    req.extend(std::iter::repeat_n(b'z', SIZE));
    req.extend_from_slice(b"\r\n0\r\n\r\n");
    let records = converse(&with_after(vec![Step::C(req), s(ok("stored"))]), &[], 2);
    let client = by_role(&records, "client")[0];
    assert_exchange(client, "POST", "/chunks", 200, "stored");
    assert_eq!(client["complete"], false, "{client}");
    assert_eq!(client["note"], "truncated", "{client}");
    // The server's reads may return more than --max-capture each, or not: its record is
    // complete or `truncated` depending on where they end, and paired either way.
    let server = by_role(&records, "server")[0];
    assert_exchange(server, "POST", "/chunks", 200, "stored");
    each_role(&records, 1, assert_after);
}

/// A CRLF after a body, sent with it, by the server and by the client (RFC 9112 section
/// 2.2 lets a recipient ignore empty lines before a start line): each message still
/// pairs with its own. The server's CRLF used to stamp the next response before its
/// request, which dropped it and shifted every later answer by one.
#[test]
fn empty_line_after_a_body() {
    let steps = with_after(vec![
        c(get("/one")),
        s("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\none\r\n"),
        c(get("/two")),
        s(ok("two")),
        c("POST /three HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\n\r\nthree\r\n"),
        s(ok("three")),
    ]);
    let records = converse(&steps, &[], 4);
    for (i, method, target, body) in [(0, "GET", "/one", "one"), (1, "GET", "/two", "two"), (2, "POST", "/three", "three")] {
        each_role(&records, i, |rec| {
            assert_clean(rec);
            assert_exchange(rec, method, target, 200, body);
        });
    }
    each_role(&records, 3, assert_after);
}

/// A client that sends into the tunnel before the proxy's 200 arrives (here a plain
/// request): those bytes follow the CONNECT on the wire but belong to the tunnel, so once
/// the 200 comes they are not reported as a request of this connection.
#[test]
fn connect_with_tunnel_bytes_sent_before_the_answer() {
    let req = "CONNECT origin.test:80 HTTP/1.1\r\nHost: origin.test:80\r\n\r\n".to_owned() + &get("/eager");
    let steps = [c(req), s("HTTP/1.1 200 OK\r\n\r\n"), s(ok("from the origin"))];
    let records = converse(&steps, &[], 1);
    each_role(&records, 0, |rec| {
        assert_exchange(rec, "CONNECT", "origin.test:80", 200, "");
        assert_eq!(rec["note"], "upgrade", "note in {rec}");
    });
}

/// HTTP/2 with prior knowledge (the preface, then binary frames) is not HTTP/1: no record.
#[test]
fn http2_prior_knowledge_yields_nothing() {
    let preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";
    let settings_ack = b"\x00\x00\x00\x04\x01\x00\x00\x00\x00";
    let headers_frame = b"\x00\x00\x05\x01\x05\x00\x00\x00\x01\x82\x86\x84\x41\x8a";
    converse(&[c(preface), s(settings_ack), c(headers_frame), s(settings_ack)], &[], 0);
}

/// Heads with more fields than the parser's usual slots (300 Set-Cookie fields; a request
/// with 300 fields): parsed whole, not reported as parse errors.
#[test]
fn heads_with_hundreds_of_fields() {
    let cookies: String = (0..300).map(|i| format!("Set-Cookie: c{i}=v\r\n")).collect();
    let resp = format!("HTTP/1.1 200 OK\r\n{cookies}Content-Length: 4\r\n\r\nmany");
    let fields: String = (0..300).map(|i| format!("X-F{i}: v\r\n")).collect();
    let req = format!("GET /many HTTP/1.1\r\nHost: test\r\n{fields}\r\n");
    let records = converse(&with_after(vec![c(req), s(resp)]), &[], 2);
    each_role(&records, 0, |rec| {
        assert_clean(rec);
        assert_exchange(rec, "GET", "/many", 200, "many");
        let count = |p: &str| rec.pointer(p).and_then(Value::as_array).map_or(0, Vec::len);
        assert_eq!(count("/request/headers"), 301, "{rec}");
        assert_eq!(count("/response/headers"), 301, "{rec}");
    });
    each_role(&records, 1, assert_after);
}

/// Pinned, known limit: a connection whose first request has a lower-case method (which
/// servers refuse: methods are case-sensitive) is not followed at all. The kernel side
/// decides at a connection's first bytes, and starts a stream only on an upper-case
/// method token or "HTTP", so the well-formed request after it is not reported either.
/// Nothing is made up: no record, no orphan.
#[test]
fn lowercase_method_first_on_its_connection_is_not_followed() {
    let steps = with_after(vec![
        c("get /lower HTTP/1.1\r\nHost: test\r\n\r\n"),
        s("HTTP/1.1 400 Bad Request\r\nContent-Length: 3\r\n\r\nbad"),
    ]);
    converse(&steps, &[], 0);
}
