//! TCP Fast Open: the client's request rides in the SYN (curl --tcp-fastopen, nginx
//! `fastopen`), so the handshake and the first payload happen within one send. Both roles
//! must still be exchanges of their own, complete, with their addresses and processes.
//! (On loopback the SYN-ACK is processed inside that send, so the connection is already
//! established when its payload is seen; payload before the handshake's end, which the
//! kernel side adopts and keeps, cannot be forced here.)

mod common;

use common::*;

const SYSCTL: &str = "/proc/sys/net/ipv4/tcp_fastopen";

/// Client and server Fast Open on for the test (bit 1: client, bit 2: server), and the old
/// setting back afterwards, even on a failed assertion.
struct FastOpenOn(String);

impl FastOpenOn {
    fn new() -> FastOpenOn {
        let old = std::fs::read_to_string(SYSCTL).expect("read tcp_fastopen").trim().to_owned();
        std::fs::write(SYSCTL, "3").expect("enable tcp_fastopen");
        FastOpenOn(old)
    }
}

impl Drop for FastOpenOn {
    fn drop(&mut self) {
        let _ = std::fs::write(SYSCTL, &self.0);
    }
}

/// TcpExtTCPFastOpenActive: connections whose SYN carried data.
fn fast_open_active() -> u64 {
    let text = std::fs::read_to_string("/proc/net/netstat").expect("read /proc/net/netstat");
    let mut lines = text.lines();
    while let (Some(names), Some(values)) = (lines.next(), lines.next()) {
        if let Some(i) = names.split_whitespace().position(|n| n == "TCPFastOpenActive") {
            return values.split_whitespace().nth(i).and_then(|v| v.parse().ok()).unwrap_or(0);
        }
    }
    panic!("no TCPFastOpenActive in /proc/net/netstat");
}

#[test]
fn requests_in_the_syn_are_exchanges_of_both_roles() {
    let _on = FastOpenOn::new();
    let port = free_port();
    let body = pseudo_random_bytes(1024, 7);
    let nginx = Nginx::start_with(port, &[("tfo.bin", &body)], "fastopen=16");
    let trace = Trace::on_port(port, &[]);
    let since = trace.started_at;
    let before = fast_open_active();
    // The first connection fetches the server's cookie; the next ones send data in the SYN.
    let urls: Vec<String> = (0..3).map(|i| format!("http://127.0.0.1:{port}/tfo.bin?i={i}")).collect();
    let mut pids = Vec::new();
    for url in &urls {
        let run = curl(&["--tcp-fastopen", "-o", "/dev/null", url]);
        pids.push(run.pid);
    }
    let records = trace.stop();
    let in_syn = fast_open_active() - before;
    assert!(in_syn >= 1, "no connection sent data in its SYN (TCPFastOpenActive +{in_syn}): nothing tested");

    assert_eq!(records.len(), 6, "records:\n{}\nnginx: {}", dump(&records), nginx.error_log());
    for (i, pid) in pids.iter().enumerate() {
        let target = format!("/tfo.bin?i={i}");
        let mine: Vec<_> = records.iter().filter(|r| str_at(r, "/request/target") == target).collect();
        assert_eq!(mine.len(), 2, "records for {target}:\n{}", dump(&records));
        assert_eq!(str_at(mine[0], "/src"), str_at(mine[1], "/src"), "one connection for {target}");
        let mut roles: Vec<&str> = mine.iter().map(|r| str_at(r, "/role")).collect();
        roles.sort();
        assert_eq!(roles, ["client", "server"], "roles for {target}");
        for rec in mine {
            assert_complete_exchange(rec, since);
            assert_eq!(str_at(rec, "/dst"), format!("127.0.0.1:{port}"), "dst in {rec}");
            assert_eq!(u64_at(rec, "/response/status"), 200, "status in {rec}");
            assert_eq!(u64_at(rec, "/response/body_size"), 1024, "body_size in {rec}");
            let owner = if str_at(rec, "/role") == "client" { *pid } else { nginx.pid() };
            assert_eq!(u64_at(rec, "/pid"), owner as u64, "pid in {rec}");
        }
    }
}
