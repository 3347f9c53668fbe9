//! What is not HTTP over TCP yields no record and no error.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};

use common::*;

const STREAM_LEN: usize = 64 * 1024;

/// No record, and no stderr line that reports an error or a panic (the summary line
/// names its counters, some of which may be called errors).
fn assert_quiet(stopped: &trace::Stopped) {
    assert!(
        stopped.records.is_empty(),
        "records:\n{}",
        dump(&stopped.records)
    );
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

/// Random bytes both ways over one TCP connection on 127.0.0.1.
fn binary_stream() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut got = vec![0; STREAM_LEN];
        conn.read_exact(&mut got).unwrap();
        conn.write_all(&pseudo_random_bytes(STREAM_LEN, 2)).unwrap();
    });
    port
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
    binary_client(port);
    assert_quiet(&trace.stop_full());
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
    let file = dir.join("http.txt");
    std::fs::write(&file, http_text()).unwrap();
    assert_eq!(std::fs::read(&file).unwrap(), http_text());
    binary_client(port);
    assert_quiet(&trace.stop_full());
}

#[test]
fn cat_of_http_text_yields_nothing() {
    let dir = TempDir::new("cat");
    let file = dir.join("http.txt");
    std::fs::write(&file, http_text()).unwrap();
    let trace = Trace::start(&["--comm", "cat"]);
    let out = Command::new("cat")
        .arg(&file)
        .stdout(Stdio::piped())
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(out.stdout, http_text());
    assert_quiet(&trace.stop_full());
}
