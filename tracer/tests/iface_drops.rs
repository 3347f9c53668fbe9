//! Packets the kernel drops on the capture socket (its buffer full while l7trace does not
//! read: PACKET_STATISTICS) are counted as lost events, and the exchange they belonged to
//! says it lost bytes: never a record that looks whole, never a misparse after the hole.

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;

/// Four times the capture socket's 16 MiB buffer: most of it must be dropped while
/// l7trace is stopped.
const BIG: usize = 64 << 20;

fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: kill has no memory preconditions; the pid is l7trace's, our child's.
    let rc = unsafe { libc::kill(pid as libc::pid_t, sig) };
    assert_eq!(rc, 0, "kill({sig}) l7trace");
}

#[test]
fn packets_dropped_by_the_kernel_are_counted_and_mark_their_exchange() {
    let server = HttpServer::start("127.0.0.1:0", |req| {
        if req.target == "/big" {
            Reply::ok(vec![b'x'; BIG])
        } else {
            common::server::default_reply(req)
        }
    });
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
