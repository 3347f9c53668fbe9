//! Options that cannot work are refused at once, in one line, before anything is loaded:
//! `--tui` without a terminal, more ports than the kernel side's filter holds, `--pid 0`,
//! `--port 0`, capture sizes out of range, timeouts that are not seconds above 0, bounds
//! of 0.

mod common;

use std::process::Stdio;

use common::l7trace;

/// Runs l7trace with `args` (stdout not a terminal) and returns its exit code and stderr.
fn refused(args: &[&str]) -> (Option<i32>, String, Vec<u8>) {
    let out = l7trace().args(args).stdin(Stdio::null()).output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned(), out.stdout)
}

fn assert_one_error_line(args: &[&str], says: &str) {
    let (code, stderr, stdout) = refused(args);
    assert_eq!(code, Some(1), "{args:?}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{args:?}: one line: {stderr:?}");
    assert!(stderr.starts_with("l7trace: error: "), "{args:?}: {stderr:?}");
    assert!(stderr.contains(says), "{args:?}: {stderr:?} does not say {says:?}");
    assert!(!stderr.contains("tracing"), "{args:?}: loaded first: {stderr:?}");
    assert!(stdout.is_empty(), "{args:?}: wrote to stdout: {:?}", String::from_utf8_lossy(&stdout));
}

#[test]
fn tui_without_a_terminal_is_refused_before_loading() {
    assert_one_error_line(&["--tui"], "--tui: stdout is not a terminal");
}

#[test]
fn more_ports_than_the_filter_holds_are_refused_before_loading() {
    let ports: Vec<String> = (1..=1025).map(|p| p.to_string()).collect();
    let mut args = vec!["--json"];
    for p in &ports {
        args.extend(["--port", p.as_str()]);
    }
    assert_one_error_line(&args, "--port: at most 1024 ports can be selected (1025 given)");
    // The same port given twice counts once: 1024 distinct pass this check, and meet the
    // check after it (a pid that is no process's).
    let (_, stderr, _) = refused(&[&args[..2049], &["--port", "1", "--pid", "0"]].concat());
    assert!(stderr.contains("--pid 0: no process has this pid"), "{stderr:?}");
}

#[test]
fn pid_zero_is_no_process() {
    assert_one_error_line(&["--json", "--pid", "0"], "--pid 0: no process has this pid");
}

#[test]
fn port_zero_is_no_connections() {
    assert_one_error_line(&["--json", "--port", "80", "--port", "0"], "--port 0: no connection has port 0");
}

/// Under 16 bytes no start line fits, and nothing would be reported; above 16384 the
/// kernel side would copy less than asked, without a word.
#[test]
fn capture_sizes_out_of_range_are_refused() {
    for n in ["0", "15", "16385", "65536"] {
        assert_one_error_line(&["--json", "--max-capture", n], &format!("--max-capture {n}: between 16 and 16384 bytes"));
    }
    assert_one_error_line(&["--json", "--iface", "lo", "--snaplen", "8"], "--snaplen 8: at least 16 bytes");
}

#[test]
fn timeouts_are_seconds_above_zero() {
    for (name, v) in [("--response-timeout", "0"), ("--response-timeout", "NaN"), ("--idle-timeout", "inf"), ("--idle-timeout", "-1"), ("--response-timeout", "1e-12")] {
        let arg = format!("{name}={v}");
        let (code, stderr, _) = refused(&["--json", &arg]);
        assert_eq!(code, Some(1), "{arg}: {stderr}");
        assert!(stderr.contains(&format!("{name} ")) && stderr.contains("a number of seconds above 0"), "{arg}: {stderr:?}");
        assert_eq!(stderr.lines().count(), 1, "{arg}: {stderr:?}");
    }
}

#[test]
fn bounds_of_zero_are_refused() {
    for name in ["--max-conns", "--max-rows", "--max-conn-buffer", "--max-total-buffer"] {
        assert_one_error_line(&["--json", name, "0"], &format!("{name} 0: at least 1"));
    }
}
