//! Without privileges, one line naming what is missing; without tracefs mounted, l7trace
//! mounts it and traces.

mod common;

use std::process::Command;

use common::*;

#[test]
fn unprivileged_gets_one_line_naming_cap_bpf() {
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_l7trace"))
        .arg("--json")
        .output()
        .expect("run setpriv");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "l7trace ran unprivileged: {stderr}");
    assert!(out.stdout.is_empty(), "stdout: {:?}", String::from_utf8_lossy(&out.stdout));
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one stderr line expected: {stderr:?}");
    assert!(lines[0].contains("CAP_BPF"), "does not name CAP_BPF: {stderr:?}");
    assert!(lines[0].starts_with("l7trace: error:"), "{stderr:?}");
}

#[test]
fn tracefs_unmounted_is_mounted_again() {
    // A private mount namespace where tracefs is not mounted; the script says so on
    // stderr before it execs l7trace (its "$0" "$@").
    let script = "umount /sys/kernel/tracing 2>/dev/null; \
                  umount /sys/kernel/debug/tracing 2>/dev/null; \
                  grep -q tracefs /proc/self/mounts || echo 'test: tracefs not mounted' >&2; \
                  exec \"$0\" \"$@\"";
    let server = HttpServer::start_default();
    let port = server.port().to_string();
    let trace = Trace::start_wrapped(
        &["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
        &["--port", &port],
    );
    curl(&[&format!("http://{}/no-tracefs", server.authority())]);
    let stopped = trace.stop_full();
    assert!(
        stopped.stderr.iter().any(|l| l == "test: tracefs not mounted"),
        "tracefs was still mounted in the namespace; stderr:\n{}",
        stopped.stderr.join("\n")
    );
    for role in ["client", "server"] {
        let recs = by_role(&stopped.records, role);
        assert!(
            recs.iter().any(|r| r["request"]["target"] == "/no-tracefs"),
            "no {role} record:\n{}",
            dump(&stopped.records)
        );
    }
    // The host's tracefs is untouched.
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    assert!(mounts.contains("tracefs"), "host lost its tracefs mount");
}
