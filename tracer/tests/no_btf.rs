//! Without the kernel's BTF file (hidden in a private mount namespace), l7trace still
//! traces, and says at start which checks are off; with it, it says nothing of the kind.

mod common;

use common::*;

const WARNING: &str = "l7trace: warning: no usable kernel BTF";

fn traced_get(wrapper: &[&str], target: &str) -> trace::Stopped {
    let server = HttpServer::start_default();
    let port = server.port().to_string();
    let trace = Trace::start_wrapped(wrapper, &["--port", &port]);
    let since = trace.started_at;
    curl(&[&format!("http://{}{target}", server.authority())]);
    let stopped = trace.stop_full();
    for role in ["client", "server"] {
        let rec = only_one(&stopped.records, role);
        assert_complete_exchange(rec, since);
        assert_eq!(str_at(rec, "/request/target"), target, "{rec}");
    }
    stopped
}

#[test]
fn without_btf_it_traces_and_says_what_is_off() {
    // The script says on stderr that the file is hidden before it execs l7trace ("$0" "$@").
    let script = "mount --bind /dev/null /sys/kernel/btf/vmlinux && echo 'test: btf hidden' >&2; \
                  exec \"$0\" \"$@\"";
    let stopped = traced_get(&["unshare", "--mount", "--propagation", "private", "sh", "-c", script], "/no-btf");
    let stderr = stopped.stderr.join("\n");
    assert!(stopped.stderr.iter().any(|l| l == "test: btf hidden"), "BTF not hidden:\n{stderr}");
    let warned: Vec<&String> = stopped.stderr.iter().filter(|l| l.starts_with(WARNING)).collect();
    assert_eq!(warned.len(), 1, "one warning:\n{stderr}");
    assert!(warned[0].contains("splice") && warned[0].contains("not detected"), "says what is off:\n{stderr}");
    // The host's file is untouched.
    assert!(std::fs::metadata("/sys/kernel/btf/vmlinux").unwrap().len() > 0, "host lost its BTF");
}

#[test]
fn with_btf_there_is_no_such_warning() {
    let stopped = traced_get(&[], "/with-btf");
    assert!(!stopped.stderr.iter().any(|l| l.starts_with(WARNING)), "{:?}", stopped.stderr);
}
