//! `--iface` when the interface changes under it: set down, renamed and up again (the
//! capture socket resumes by itself: l7trace says when it is down and when it is back, and
//! the exchanges after it are captured), and deleted (no socket bound to it can receive again:
//! l7trace stops as on a signal, emitting what it has, prints the summary and then one
//! error line naming the interface, and exits 1, as tcpdump does when its interface goes
//! away). A veth pair between two namespaces; l7trace on the client's end.

mod common;
#[path = "common/netns.rs"]
mod netns;

use std::time::{Duration, Instant};

use common::server::default_reply;
use common::*;
use netns::*;
use serde_json::Value;

fn targets(records: &[Value]) -> Vec<String> {
    records.iter().map(|r| str_at(r, "/request/target").to_owned()).collect()
}

/// The pair, a server in its server namespace, l7trace on the client's veth end; one
/// exchange captured before anything changes.
fn set_up() -> (NetPair, HttpServer, Trace, String) {
    let pair = NetPair::new();
    let bind = format!("{}:0", pair.server_v4);
    let server = in_ns(&pair.server_ns, "l7t-server", move || HttpServer::start(&bind, default_reply));
    let port = server.port().to_string();
    let trace = trace_in(&pair.client_ns, &["--iface", &pair.client_if, "--port", &port]);
    let base = format!("http://{}:{port}", pair.server_v4);
    assert_eq!(curl_in(&pair.client_ns, &[&format!("{base}/before")]).stdout_text(), "hello from /before");
    let seen = trace.wait_for_records(Duration::from_secs(10), |r| targets(r).contains(&"/before".into()));
    assert_eq!(targets(&seen), ["/before"], "the exchange before the change");
    (pair, server, trace, base)
}

#[test]
fn an_interface_set_down_is_said_and_capture_resumes_when_it_is_up() {
    let (pair, server, trace, base) = set_up();
    let (ns, ifname) = (pair.client_ns.as_str(), pair.client_if.as_str());
    ip(&["-n", ns, "link", "set", ifname, "down"]);
    let down = trace.wait_stderr("is down");
    assert!(down.starts_with("l7trace: warning: --iface ") && down.contains(ifname), "{down}");
    // Renamed while down: the same interface still (the socket is bound to its index).
    let renamed = format!("{ifname}r");
    ip(&["-n", ns, "link", "set", ifname, "name", &renamed]);
    ip(&["-n", ns, "link", "set", &renamed, "up"]);
    let up = trace.wait_stderr("up again");
    assert!(up.contains(ifname), "{up}");
    // IPv4 addresses stay on a link set down; the carrier is back once the peer is seen.
    let deadline = Instant::now() + Duration::from_secs(10);
    let after = loop {
        let run = std::process::Command::new("ip")
            .args(["netns", "exec", ns, "curl", "-sS", "--noproxy", "*", "--max-time", "3", &format!("{base}/after")])
            .output()
            .expect("run curl");
        if run.status.success() || Instant::now() > deadline {
            break run;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(String::from_utf8_lossy(&after.stdout), "hello from /after", "curl after the link came back: {after:?}");
    let stopped = trace.stop_full();
    in_ns(&pair.server_ns, "l7t-server-end", move || drop(server));
    // Both exchanges, each once and whole: the one after the flap from the resumed socket.
    assert_eq!(targets(&stopped.records), ["/before", "/after"], "{:#?}", stopped.records);
    for r in &stopped.records {
        assert_eq!(r["complete"], true, "{r}");
        assert_eq!(r["response"]["status"], 200, "{r}");
    }
    // Said once each way, in l7trace's own words (no log-format colour codes).
    let lines = &stopped.stderr;
    assert_eq!(lines.iter().filter(|l| l.contains("is down")).count(), 1, "{lines:#?}");
    assert!(!lines.iter().any(|l| l.contains('\x1b')), "{lines:#?}");
}

#[test]
fn a_deleted_interface_ends_the_capture_with_an_error_after_the_summary() {
    let (pair, server, trace, _) = set_up();
    // Deleting one end of a veth pair deletes both.
    ip(&["-n", &pair.client_ns, "link", "del", &pair.client_if]);
    // Stopping detaches the programs (about a second), as after a signal.
    let stopped = trace.wait_exit(Duration::from_secs(30));
    in_ns(&pair.server_ns, "l7t-server-end", move || drop(server));
    let lines = &stopped.stderr;
    assert_eq!(stopped.status.code(), Some(1), "{lines:#?}");
    // What was captured came out, then the summary, then why it stopped.
    assert_eq!(targets(&stopped.records), ["/before"]);
    let summary = lines.iter().position(|l| l.starts_with("l7trace: summary: ")).expect("summary line");
    let error = lines.iter().position(|l| l.starts_with("l7trace: error: ")).expect("error line");
    assert!(summary < error, "{lines:#?}");
    assert!(lines[summary].contains("exchanges=1 "), "{}", lines[summary]);
    let e = &lines[error];
    assert!(e.contains(&format!("--iface {}", pair.client_if)) && e.contains("went away"), "{e}");
    assert_eq!(error, lines.len() - 1, "the error is the last line: {lines:#?}");
}
