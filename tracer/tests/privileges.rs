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

/// A wrong `--iface` is said before anything is loaded, so before privileges too: a user
/// without any hears of the name first, and then of the capabilities.
#[test]
fn a_wrong_iface_is_named_before_privileges() {
    let name = format!("l7tno{:x}", std::process::id());
    for (iface, says) in [("any", "--iface any is not supported".to_string()), (name.as_str(), format!("no interface named \"{name}\""))] {
        let out = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(env!("CARGO_BIN_EXE_l7trace"))
            .args(["--json", "--iface", iface])
            .output()
            .expect("run setpriv");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(out.stdout.is_empty());
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr:?}");
        assert!(stderr.starts_with("l7trace: error: --iface: "), "{stderr:?}");
        assert!(stderr.contains(&says), "{stderr:?} does not say {says:?}");
    }
    // A good name, no privileges: the capabilities, as ever.
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_l7trace"))
        .args(["--json", "--iface", "lo"])
        .output()
        .expect("run setpriv");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("CAP_NET_RAW") && stderr.contains("CAP_BPF"), "{stderr:?}");
}

/// `setpriv SETPRIV... l7trace --json ARGS`, which must fail at once with one error line
/// starting `l7trace: error: SAYS` and naming what is missing: returns what it names.
fn refused_line(setpriv: &[String], args: &[&str], says: &str) -> String {
    let out = Command::new("setpriv")
        .args(setpriv)
        .arg(env!("CARGO_BIN_EXE_l7trace"))
        .arg("--json")
        .args(args)
        .output()
        .expect("run setpriv");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{setpriv:?} {args:?}: {stderr}");
    assert!(out.stdout.is_empty(), "stdout: {:?}", String::from_utf8_lossy(&out.stdout));
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one stderr line expected: {stderr:?}");
    assert!(lines[0].starts_with(&format!("l7trace: error: {says}")), "{stderr:?}");
    lines[0].split("missing: ").nth(1).unwrap_or_else(|| panic!("no `missing:` in {stderr:?}")).to_owned()
}

/// `l7trace ARGS` as user nobody holding `caps` (setpriv's names: `bpf,+perfmon`), which
/// must fail at once with one error line naming `missing` and nothing of `held`.
fn refused_with_caps(caps: &str, args: &[&str], missing: &str, held: &[&str]) {
    let setpriv = ["--reuid=65534", "--regid=65534", "--clear-groups"].map(String::from);
    let caps_held = [format!("--inh-caps=+{caps}"), format!("--ambient-caps=+{caps}")];
    let said = refused_line(&[&setpriv[..], &caps_held[..]].concat(), args, "");
    assert!(said.contains(missing), "{missing} not named as missing: {said:?}");
    for cap in held {
        assert!(!said.contains(cap), "{cap} is held, named missing: {said:?}");
    }
}

#[test]
fn capabilities_short_of_tracefs_or_the_packet_socket_are_named() {
    // tracefs is root's alone here (0700): the tracepoints' ids cannot be read. Before,
    // this user was told tracefs was not mounted, after mount's own complaint.
    let tracefs = std::fs::metadata("/sys/kernel/tracing").expect("tracefs mounted");
    assert_eq!(std::os::unix::fs::PermissionsExt::mode(&tracefs.permissions()) & 0o005, 0, "tracefs readable by others here");
    refused_with_caps("bpf,+perfmon", &[], "CAP_DAC_READ_SEARCH", &["CAP_BPF", "CAP_PERFMON"]);
    refused_with_caps("bpf,+perfmon,+dac_read_search", &["--iface", "lo"], "CAP_NET_RAW", &["CAP_BPF", "CAP_PERFMON", "CAP_DAC"]);
}

/// Root whose capabilities were dropped (a container, a bounding set) is told which are
/// missing, in one line, before anything is loaded: not a bare EPERM from a map.
#[test]
fn root_without_the_capabilities_is_told_which() {
    for (drop, args, missing) in [
        ("-bpf,-perfmon,-sys_admin", &[][..], &["CAP_BPF", "CAP_PERFMON"][..]),
        ("-net_raw", &["--iface", "lo"][..], &["CAP_NET_RAW"][..]),
    ] {
        let setpriv = ["--inh-caps=-all".into(), "--ambient-caps=-all".into(), format!("--bounding-set={drop}")];
        let said = refused_line(&setpriv, args, "this root process lacks capabilities");
        for cap in missing {
            assert!(said.contains(cap), "{cap} not named: {said:?}");
        }
    }
}

/// The capabilities the error names are enough: user nobody with CAP_BPF, CAP_PERFMON and
/// CAP_DAC_READ_SEARCH traces both sides of a curl request.
#[test]
fn the_named_capabilities_are_enough_to_trace() {
    let caps = "bpf,+perfmon,+dac_read_search";
    let server = HttpServer::start_default();
    let port = server.port().to_string();
    let trace = Trace::start_wrapped(
        &[
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            &format!("--inh-caps=+{caps}"),
            &format!("--ambient-caps=+{caps}"),
        ],
        &["--port", &port],
    );
    let since = trace.started_at;
    let status = std::fs::read_to_string(format!("/proc/{}/status", trace.pid())).expect("l7trace's status");
    assert!(status.lines().any(|l| l.starts_with("Uid:") && l.contains("65534")), "not running as nobody:\n{status}");
    curl(&[&format!("http://{}/with-caps", server.authority())]);
    let records = trace.stop();
    for role in ["client", "server"] {
        let rec = only_one(&records, role);
        assert_complete_exchange(rec, since);
        assert_eq!(str_at(rec, "/request/target"), "/with-caps", "{rec}");
    }
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
