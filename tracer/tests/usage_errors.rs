//! Options that cannot work are refused at once, in one line, before anything is loaded:
//! `--tui` without a terminal, more ports than the kernel side's filter holds, `--pid 0`.

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
