//! What is not HTTP over TCP yields no record and no error.
//!
//! Each test also makes one HTTP exchange that the same l7trace must report (the positive
//! control): without it, "no record" would pass as well when nothing was traced at all.

mod common;

use std::io::{BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::SystemTime;

use common::server::{read_headers, read_line};
use common::*;

const STREAM_LEN: usize = 64 * 1024;
/// The target of the positive control's exchange.
const CONTROL: &str = "/control";

/// The control exchange's records, one per role in `roles`, are all there is; no stderr
/// line reports an error or a panic (the summary line names its counters, some of which
/// may be called errors).
fn assert_only_control(stopped: &trace::Stopped, since: SystemTime, roles: &[&str]) {
    let mut got: Vec<&str> = stopped.records.iter().map(|r| str_at(r, "/role")).collect();
    got.sort();
    assert_eq!(got, roles, "only the control's records; records:\n{}", dump(&stopped.records));
    for r in &stopped.records {
        assert_complete_exchange(r, since);
        assert_eq!(str_at(r, "/request/target"), CONTROL, "target in {r}");
        assert_eq!(u64_at(r, "/response/status"), 200, "status in {r}");
    }
    let bad: Vec<&String> = stopped
        .stderr
        .iter()
        .filter(|l| !l.starts_with("l7trace: summary:"))
        .filter(|l| {
            let l = l.to_ascii_lowercase();
            l.contains("error") || l.contains("panicked")
        })
        .collect();
    assert!(bad.is_empty(), "error lines on stderr: {bad:?}");
}

/// Random bytes both ways over one TCP connection on 127.0.0.1; then, on a second
/// connection to the same port, one HTTP exchange (see `control_exchange`).
fn binary_stream() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut got = vec![0; STREAM_LEN];
        conn.read_exact(&mut got).unwrap();
        conn.write_all(&pseudo_random_bytes(STREAM_LEN, 2)).unwrap();
        drop(conn);
        let (conn, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(&conn);
        let line = read_line(&mut reader).expect("control request line");
        assert_eq!(line, format!("GET {CONTROL} HTTP/1.1"));
        read_headers(&mut reader).expect("control request headers");
        (&conn).write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\ncontrol").unwrap();
        let mut rest = Vec::new();
        let _ = (&conn).read_to_end(&mut rest);
    });
    port
}

/// The positive control: `GET /control` to the server of `binary_stream`.
fn control_exchange(port: u16) {
    let mut c = RawClient::connect(([127, 0, 0, 1], port).into());
    assert_eq!(c.exchange("GET", CONTROL).body_text(), "control");
}

fn binary_client(port: u16) {
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    for piece in pseudo_random_bytes(STREAM_LEN, 1).chunks(1000) {
        c.write_all(piece).unwrap();
    }
    let mut back = vec![0; STREAM_LEN];
    c.read_exact(&mut back).unwrap();
    assert_eq!(back, pseudo_random_bytes(STREAM_LEN, 2));
}

#[test]
fn binary_tcp_stream_yields_nothing() {
    let port = binary_stream();
    let trace = Trace::on_port(port, &[]);
    let since = trace.started_at;
    binary_client(port);
    control_exchange(port);
    assert_only_control(&trace.stop_full(), since, &["client", "server"]);
}

/// Text that parses as HTTP, to show files are not mistaken for sockets.
fn http_text() -> Vec<u8> {
    b"GET /file HTTP/1.1\r\nHost: example\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"
        .repeat(50)
}

#[test]
fn own_file_io_and_binary_stream_yield_nothing() {
    let dir = TempDir::new("files");
    let port = binary_stream();
    let me = std::process::id().to_string();
    // Every fd of this process, no port filter.
    let trace = Trace::start(&["--pid", &me]);
    let since = trace.started_at;
    let file = dir.join("http.txt");
    std::fs::write(&file, http_text()).unwrap();
    assert_eq!(std::fs::read(&file).unwrap(), http_text());
    binary_client(port);
    control_exchange(port);
    assert_only_control(&trace.stop_full(), since, &["client", "server"]);
}

#[test]
fn cat_of_http_text_yields_nothing() {
    let dir = TempDir::new("cat");
    let file = dir.join("http.txt");
    std::fs::write(&file, http_text()).unwrap();
    let trace = Trace::start(&["--comm", "cat"]);
    let since = trace.started_at;
    let out = Command::new("cat")
        .arg(&file)
        .stdout(Stdio::piped())
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(out.stdout, http_text());
    // The control: curl under the name `cat` (its comm), to a server of this test.
    let server = HttpServer::start_default();
    let named_cat = dir.join("cat");
    std::fs::copy("/usr/bin/curl", &named_cat).expect("copy curl as cat");
    let control = Command::new(&named_cat)
        .args(["-sS", "--noproxy", "*", "--max-time", "20"])
        .arg(format!("http://{}{CONTROL}", server.authority()))
        .output()
        .expect("run curl as cat");
    assert!(control.status.success(), "{}", String::from_utf8_lossy(&control.stderr));
    assert_eq!(control.stdout, format!("hello from {CONTROL}").as_bytes());
    let stopped = trace.stop_full();
    assert_only_control(&stopped, since, &["client"]);
    assert_eq!(str_at(&stopped.records[0], "/comm"), "cat", "{}", stopped.records[0]);
}
