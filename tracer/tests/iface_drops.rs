//! Packets the kernel drops on the capture socket (its buffer full while l7trace does not
//! read: PACKET_STATISTICS) are counted as lost events, and the exchange they belonged to
//! says it lost bytes: never a record that looks whole, never a misparse after the hole.
//! Two shapes of hole: the response's tail and the connection's end both dropped (nothing
//! on the wire says where it ended: the kernel's drop count does), and a hole inside a
//! keep-alive connection that goes on (the next request's position says how much).

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;

/// Four times the capture socket's 16 MiB ring: most of it must be dropped while
/// l7trace is stopped.
const BIG: usize = 64 << 20;

fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: kill has no memory preconditions; the pid is l7trace's, our child's.
    let rc = unsafe { libc::kill(pid as libc::pid_t, sig) };
    assert_eq!(rc, 0, "kill({sig}) l7trace");
}

fn big_server() -> HttpServer {
    HttpServer::start("127.0.0.1:0", |req| {
        if req.target == "/big" {
            Reply::ok(vec![b'x'; BIG])
        } else {
            common::server::default_reply(req)
        }
    })
}

#[test]
fn packets_dropped_by_the_kernel_are_counted_and_mark_their_exchange() {
    let server = big_server();
    let trace = Trace::on_port(server.port(), &["--iface", "lo"]);
    let (pid, since) = (trace.pid(), trace.started_at);
    signal(pid, libc::SIGSTOP);
    let big = curl(&["-o", "/dev/null", "-w", "%{size_download}", &format!("http://{}/big", server.authority())]);
    signal(pid, libc::SIGCONT);
    assert_eq!(big.stdout_text(), BIG.to_string(), "curl got the whole body");
    // Past the reorder window, so the hole is declared before the next exchange.
    std::thread::sleep(Duration::from_millis(500));
    let after = curl(&[&format!("http://{}/after", server.authority())]);
    assert_eq!(after.stdout_text(), "hello from /after");
    let stopped = trace.stop_full();
    let records = &stopped.records;
    let shown = format!("records:\n{}\nstderr:\n{}", dump(records), stopped.stderr.join("\n"));
    eprintln!("iface drops: {}", stopped.stderr.iter().find(|l| l.contains("summary")).map_or("", |l| l.as_str()));
    let lost_events = summary_counter(&stopped.stderr, "lost_events");
    assert!(lost_events > 0, "the kernel's drops are lost events; {shown}");
    assert!(summary_counter(&stopped.stderr, "lost_bytes") > 0, "{shown}");

    let of = |target: &str| -> Vec<&Value> { records.iter().filter(|r| r["request"]["target"] == target).collect() };
    assert_eq!(records.len(), 2, "one record per exchange, nothing made up; {shown}");
    let big = of("/big");
    assert_eq!(big.len(), 1, "{shown}");
    let big = big[0];
    assert_eq!(big["complete"], false, "an exchange with dropped packets is not complete: {big}");
    assert_eq!(big["note"], "gap", "{big}");
    assert!(u64_at(big, "/lost_bytes") > 0, "its lost bytes are counted: {big}");
    assert_eq!(str_at(big, "/request/method"), "GET", "{big}");
    assert_eq!(u64_at(big, "/response/status"), 200, "{big}");
    assert_eq!(header_at(big, "/response/headers", "Content-Length"), Some(BIG.to_string()), "{big}");
    // What was seen of the body, never more than was sent.
    assert!(u64_at(big, "/response/body_size") <= BIG as u64, "{big}");
    // The exchange after the hole is read from its first byte, whole.
    let after = of("/after");
    assert_eq!(after.len(), 1, "{shown}");
    assert_complete_exchange_from(after[0], since, "packet");
    assert_eq!(u64_at(after[0], "/response/status"), 200, "{}", after[0]);
    assert_eq!(str_at(after[0], "/response/body"), "hello from /after", "{}", after[0]);
}

/// The hole inside a keep-alive connection: the next exchange on it starts where the hole
/// ends, so the lost bytes are exactly the body bytes not seen, and that exchange is read
/// from its first byte, on the same connection.
#[test]
fn a_hole_in_a_keep_alive_connection_is_measured_and_the_next_exchange_is_whole() {
    let server = big_server();
    let trace = Trace::on_port(server.port(), &["--iface", "lo"]);
    let (pid, since) = (trace.pid(), trace.started_at);
    let addr = format!("127.0.0.1:{}", server.port()).parse().unwrap();
    let mut client = RawClient::connect(addr);
    signal(pid, libc::SIGSTOP);
    let big = client.exchange("GET", "/big");
    signal(pid, libc::SIGCONT);
    assert_eq!(big.body.len(), BIG, "the client got the whole body");
    // l7trace drains the 16 MiB the socket kept before the next request's packets come.
    std::thread::sleep(Duration::from_millis(1000));
    let after = client.exchange("GET", "/after");
    assert_eq!(after.body_text(), "hello from /after");
    let client_addr = client.local_addr().to_string();
    drop(client);
    let stopped = trace.stop_full();
    let records = &stopped.records;
    let shown = format!("records:\n{}\nstderr:\n{}", dump(records), stopped.stderr.join("\n"));
    assert!(summary_counter(&stopped.stderr, "lost_events") > 0, "{shown}");
    // The frames read count as events: the 16 MiB the socket kept alone hold over 200 of
    // the body's (64 KiB of payload at most each, with their overhead).
    assert!(summary_counter(&stopped.stderr, "events") >= 200, "frames read are events: {shown}");
    assert_eq!(records.len(), 2, "one record per exchange, nothing made up; {shown}");
    for r in records {
        assert_eq!(str_at(r, "/src"), client_addr, "both on the one connection: {r}");
    }
    let (big, after) = (&records[0], &records[1]);
    assert_eq!(str_at(big, "/request/target"), "/big", "in order: {shown}");
    assert_eq!(big["complete"], false, "{big}");
    assert_eq!(big["note"], "gap", "{big}");
    assert_eq!(u64_at(big, "/response/status"), 200, "{big}");
    // The hole is inside the body: its size is the declared one, and what was lost is
    // what the capture did not keep of it, a part, not all.
    assert_eq!(u64_at(big, "/response/body_size"), BIG as u64, "{big}");
    let lost = u64_at(big, "/lost_bytes");
    assert!(lost > 0 && lost < BIG as u64, "lost {lost} of {BIG}: {big}");
    assert_eq!(summary_counter(&stopped.stderr, "lost_bytes"), lost, "{shown}");
    assert_eq!(str_at(after, "/request/target"), "/after", "{shown}");
    assert_complete_exchange_from(after, since, "packet");
    assert_eq!(str_at(after, "/response/body"), "hello from /after", "{after}");
}
