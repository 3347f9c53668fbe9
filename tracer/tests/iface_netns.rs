//! `--iface` on a veth pair between two network namespaces: real TCP between a server in
//! one namespace and curl plus a scripted client in the other, l7trace capturing on the
//! client's veth end (started inside the client namespace). Every exchange must come out
//! once, byte-exact, from the packets (`"source":"packet"`), attributed to the local
//! process that owns the server side (the test process; attribution prefers the server
//! side when both ends are local, see tracer/src/packet/attribution.rs).

mod common;
#[path = "common/netns.rs"]
mod netns;

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;

use common::server::default_reply;
use common::*;
use netns::*;
use serde_json::Value;

const CHUNKS: [&[u8]; 3] = [b"first chunk;", b"second", b"-third"];
const POST_LEN: usize = 1 << 20;

fn handler(req: &Request) -> Reply {
    if req.target == "/chunked" {
        Reply::chunked(&CHUNKS, &[])
    } else {
        default_reply(req)
    }
}

/// Printable, deterministic upload body (so the record's body prefix compares as text).
fn post_body() -> Vec<u8> {
    pseudo_random_bytes(POST_LEN, 0x1face)
        .into_iter()
        .map(|b| b'a' + b % 26)
        .collect()
}

/// One expected exchange.
struct Want {
    method: &'static str,
    target: String,
    status: u64,
    body: String,
    body_size: u64,
    req_body_size: u64,
    req_body_prefix: String,
}

impl Want {
    fn get(target: &str) -> Want {
        Want {
            method: "GET",
            target: target.to_owned(),
            status: 200,
            body: format!("hello from {target}"),
            body_size: format!("hello from {target}").len() as u64,
            req_body_size: 0,
            req_body_prefix: String::new(),
        }
    }
}

fn run(v6: bool) {
    let pair = NetPair::new();
    let server_ip = pair.server_ip(v6);
    let client_ip = pair.client_ip(v6);
    let bind = SocketAddr::new(server_ip, 0).to_string();
    let server = in_ns(&pair.server_ns, "l7t-server", move || {
        HttpServer::start(&bind, handler)
    });
    let port = server.port();
    let server_addr = addr_str(server_ip, port);
    let port_s = port.to_string();
    let trace = trace_in(
        &pair.client_ns,
        &["--iface", &pair.client_if, "--port", &port_s],
    );
    let since = trace.started_at;
    let base = format!("http://{server_addr}");

    // curl: GET, a 1 MiB POST (with curl's Expect: 100-continue), a chunked response.
    let got = curl_in(&pair.client_ns, &["-g", &format!("{base}/curl-get")]);
    assert_eq!(got.stdout_text(), "hello from /curl-get");
    let dir = TempDir::new("iface-post");
    let body = post_body();
    std::fs::File::create(dir.join("body"))
        .and_then(|mut f| f.write_all(&body))
        .expect("write POST body");
    let upload = format!("@{}", dir.join("body").display());
    let posted = curl_in(
        &pair.client_ns,
        &["-g", "--data-binary", &upload, &format!("{base}/upload")],
    );
    assert_eq!(
        posted.stdout_text(),
        format!("got {POST_LEN} bytes for /upload")
    );
    let chunked = curl_in(&pair.client_ns, &["-g", &format!("{base}/chunked")]);
    assert_eq!(chunked.stdout_text().as_bytes(), CHUNKS.concat());

    // The scripted client: 5 requests on one connection, then 3 pipelined in one write.
    let server_sock: SocketAddr = server.addr;
    let (ka_addr, pipe_addr) = in_ns(&pair.client_ns, "l7t-client", move || {
        let mut c = RawClient::connect(server_sock);
        for i in 1..=5 {
            let r = c.exchange("GET", &format!("/ka/{i}"));
            assert_eq!(r.body_text(), format!("hello from /ka/{i}"));
        }
        let ka = c.local_addr();
        let mut p = RawClient::connect(server_sock);
        let host = server_sock.to_string();
        let reqs: String = (1..=3)
            .map(|i| request("GET", &format!("/pipe/{i}"), &host, &[]))
            .collect();
        p.send(reqs.as_bytes());
        for i in 1..=3 {
            let r = p.read_response(false);
            assert_eq!(r.body_text(), format!("hello from /pipe/{i}"));
        }
        (ka, p.local_addr())
    });
    let records = trace.stop();
    let served = server.served();
    in_ns(&pair.server_ns, "l7t-server-end", move || drop(server));

    // Who the server saw, per target: the client address and the serving thread.
    let by_target: HashMap<String, (SocketAddr, u32)> = served
        .iter()
        .map(|s| (s.request.target.clone(), (s.peer, s.tid)))
        .collect();
    assert_eq!(served.len(), 11, "requests served: {served:?}");
    assert_eq!(by_target["/ka/1"].0, ka_addr);
    assert_eq!(by_target["/pipe/1"].0, pipe_addr);
    assert_eq!(
        served
            .iter()
            .find(|s| s.request.target == "/upload")
            .map(|s| s.request.body.len()),
        Some(POST_LEN)
    );

    let mut wants = vec![Want::get("/curl-get")];
    let post_reply = format!("got {POST_LEN} bytes for /upload");
    wants.push(Want {
        method: "POST",
        target: "/upload".into(),
        status: 200,
        body_size: post_reply.len() as u64,
        body: post_reply,
        req_body_size: POST_LEN as u64,
        req_body_prefix: String::from_utf8(body[..4096].to_vec()).unwrap(),
    });
    let chunked_body = String::from_utf8(CHUNKS.concat()).unwrap();
    wants.push(Want {
        method: "GET",
        target: "/chunked".into(),
        status: 200,
        body_size: chunked_body.len() as u64,
        body: chunked_body,
        req_body_size: 0,
        req_body_prefix: String::new(),
    });
    wants.extend((1..=5).map(|i| Want::get(&format!("/ka/{i}"))));
    wants.extend((1..=3).map(|i| Want::get(&format!("/pipe/{i}"))));

    assert_eq!(
        records.len(),
        wants.len(),
        "each exchange exactly once; records:\n{}",
        dump(&records)
    );
    let me = std::process::id() as u64;
    for w in &wants {
        let found: Vec<&Value> = records
            .iter()
            .filter(|r| r.pointer("/request/target").and_then(Value::as_str) == Some(&w.target))
            .collect();
        assert_eq!(
            found.len(),
            1,
            "{} once; records:\n{}",
            w.target,
            dump(&records)
        );
        let rec = found[0];
        let (peer, tid) = by_target[&w.target];
        assert_eq!(
            peer.ip(),
            client_ip,
            "the server saw {peer} for {}",
            w.target
        );
        assert_packet_exchange(rec, since);
        assert_eq!(str_at(rec, "/src"), peer.to_string(), "src in {rec}");
        assert_eq!(str_at(rec, "/dst"), server_addr, "dst in {rec}");
        assert_eq!(str_at(rec, "/request/method"), w.method, "method in {rec}");
        assert_eq!(
            str_at(rec, "/request/version"),
            "HTTP/1.1",
            "version in {rec}"
        );
        assert_eq!(
            header_at(rec, "/request/headers", "Host").as_deref(),
            Some(server_addr.as_str()),
            "Host in {rec}"
        );
        assert_eq!(
            u64_at(rec, "/request/body_size"),
            w.req_body_size,
            "request body_size in {rec}"
        );
        assert_eq!(
            str_at(rec, "/request/body"),
            w.req_body_prefix,
            "request body in {rec}"
        );
        assert_eq!(
            bool_at(rec, "/request/body_truncated"),
            w.req_body_size > 4096,
            "request body_truncated in {rec}"
        );
        assert_eq!(u64_at(rec, "/response/status"), w.status, "status in {rec}");
        assert_eq!(
            str_at(rec, "/response/body"),
            w.body,
            "response body in {rec}"
        );
        assert_eq!(
            u64_at(rec, "/response/body_size"),
            w.body_size,
            "response body_size in {rec}"
        );
        assert!(
            !bool_at(rec, "/response/body_truncated"),
            "response body_truncated in {rec}"
        );
        // Both ends are local; the server side is preferred: the test process's thread
        // that served the connection.
        assert_eq!(rec["role"], "server", "role in {rec}");
        assert_eq!(u64_at(rec, "/pid"), me, "pid in {rec}");
        assert_eq!(u64_at(rec, "/tid"), tid as u64, "tid in {rec}");
        assert_eq!(str_at(rec, "/comm"), "l7t-srv", "comm in {rec}");
    }
    let chunked = records
        .iter()
        .find(|r| r["request"]["target"] == "/chunked")
        .unwrap();
    assert_eq!(
        header_at(chunked, "/response/headers", "Transfer-Encoding").as_deref(),
        Some("chunked")
    );
}

#[test]
fn veth_ipv4_curl_and_scripted_client() {
    run(false);
}

#[test]
fn veth_ipv6_curl_and_scripted_client() {
    run(true);
}

/// `--iface lo` with live curl traffic (in a fresh namespace, so only this test's traffic
/// is on that `lo`): the loopback device shows every packet twice, outgoing then
/// incoming; l7trace ignores the outgoing copy, so each exchange comes out once.
#[test]
fn loopback_live_curl_each_exchange_once() {
    let pair = NetPair::new();
    let ns = pair.client_ns.clone();
    let server = in_ns(&ns, "l7t-server", || {
        HttpServer::start("127.0.0.1:0", handler)
    });
    let port = server.port();
    let server_addr = format!("127.0.0.1:{port}");
    let trace = trace_in(&ns, &["--iface", "lo", "--port", &port.to_string()]);
    let since = trace.started_at;
    let base = format!("http://{server_addr}");
    // Two requests on one connection, then a POST, then a chunked response.
    let got = curl_in(&ns, &[&format!("{base}/lo/1"), &format!("{base}/lo/2")]);
    assert_eq!(got.stdout_text(), "hello from /lo/1hello from /lo/2");
    let posted = curl_in(
        &ns,
        &["--data-binary", "0123456789", &format!("{base}/lo/post")],
    );
    assert_eq!(posted.stdout_text(), "got 10 bytes for /lo/post");
    let chunked = curl_in(&ns, &[&format!("{base}/chunked")]);
    assert_eq!(chunked.stdout_text().as_bytes(), CHUNKS.concat());
    let records = trace.stop();
    let served = server.served();
    in_ns(&ns, "l7t-server-end", move || drop(server));
    assert_eq!(served.len(), 4, "requests served: {served:?}");
    assert_eq!(served[0].peer, served[1].peer, "curl reused its connection");
    assert_eq!(
        records.len(),
        4,
        "each exchange once; records:\n{}",
        dump(&records)
    );
    let me = std::process::id() as u64;
    let chunked_body = String::from_utf8(CHUNKS.concat()).unwrap();
    let wants: [(&str, &str, u64, &str, String); 4] = [
        ("GET", "/lo/1", 0, "", "hello from /lo/1".into()),
        ("GET", "/lo/2", 0, "", "hello from /lo/2".into()),
        (
            "POST",
            "/lo/post",
            10,
            "0123456789",
            "got 10 bytes for /lo/post".into(),
        ),
        ("GET", "/chunked", 0, "", chunked_body),
    ];
    for (rec, (s, (method, target, req_size, req_body, body))) in
        records.iter().zip(served.iter().zip(wants.iter()))
    {
        assert_packet_exchange(rec, since);
        assert_eq!(str_at(rec, "/src"), s.peer.to_string(), "src in {rec}");
        assert_eq!(str_at(rec, "/dst"), server_addr, "dst in {rec}");
        assert_eq!(str_at(rec, "/request/method"), *method, "method in {rec}");
        assert_eq!(str_at(rec, "/request/target"), *target, "target in {rec}");
        assert_eq!(
            u64_at(rec, "/request/body_size"),
            *req_size,
            "request body_size in {rec}"
        );
        assert_eq!(
            str_at(rec, "/request/body"),
            *req_body,
            "request body in {rec}"
        );
        assert_eq!(u64_at(rec, "/response/status"), 200, "status in {rec}");
        assert_eq!(
            str_at(rec, "/response/body"),
            body,
            "response body in {rec}"
        );
        assert_eq!(
            u64_at(rec, "/response/body_size"),
            body.len() as u64,
            "body_size in {rec}"
        );
        assert_eq!(rec["role"], "server", "role in {rec}");
        assert_eq!(u64_at(rec, "/pid"), me, "pid in {rec}");
        assert_eq!(u64_at(rec, "/tid"), s.tid as u64, "tid in {rec}");
        assert_eq!(str_at(rec, "/comm"), "l7t-srv", "comm in {rec}");
    }
}
