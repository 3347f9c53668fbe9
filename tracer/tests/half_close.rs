//! A client that half-closes after its request (`nc -N`, HTTP/1.0 clients) and reads the
//! response after the server has closed too: its socket reaches TCP_CLOSE (the server's
//! FIN moves it to TIME_WAIT) while the response still waits unread in its receive queue.
//! The close must not end the connection before those bytes are read.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use common::*;

#[test]
fn response_read_after_the_close_still_pairs() {
    read_after_the_close(Duration::from_millis(300));
}

/// Seconds later (within the response timeout): the connection waits while its request
/// waits for the answer. It once ended half a second after the close, the answer counted
/// as an orphan and the request reported `closed`, without it.
#[test]
fn response_read_seconds_after_the_close_still_pairs() {
    read_after_the_close(Duration::from_secs(2));
}

fn read_after_the_close(delay: Duration) {
    let server = HttpServer::start_default();
    let trace = Trace::on_port(server.port(), &[]);
    let since = trace.started_at;
    let mut s = TcpStream::connect(server.addr).expect("connect");
    let src = s.local_addr().unwrap().to_string();
    s.write_all(format!("GET /half-closed HTTP/1.1\r\nHost: {}\r\n\r\n", server.authority()).as_bytes())
        .unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    // The server answers, sees our FIN and closes: our socket is closed before we read.
    std::thread::sleep(delay);
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    drop(s);
    let text = String::from_utf8_lossy(&got);
    assert!(text.ends_with("hello from /half-closed"), "response: {text:?}");
    let records = trace.stop();
    for role in ["client", "server"] {
        let r = only_one(&records, role);
        assert_complete_exchange(r, since);
        assert_eq!(str_at(r, "/src"), src, "src in {r}");
        assert_eq!(str_at(r, "/request/target"), "/half-closed", "target in {r}");
        assert_eq!(u64_at(r, "/response/status"), 200, "status in {r}");
        assert_eq!(str_at(r, "/response/body"), "hello from /half-closed", "body in {r}");
    }
}
