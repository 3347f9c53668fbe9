//! What /proc says about a process, and limits of the test process itself.

/// A `kB` field of /proc/PID/status (VmHWM: peak RSS; VmRSS: RSS now), in KiB.
pub fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("read /proc/{pid}/status: {e}"));
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// Peak resident set size of `pid`, in MiB.
pub fn peak_rss_mib(pid: u32) -> f64 {
    status_kib(pid, "VmHWM") as f64 / 1024.0
}

/// Raises this process's open-file limit to at least `n` (as root the hard limit may rise).
pub fn raise_nofile(n: u64) {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: valid pointer to an rlimit.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) }, 0);
    if r.rlim_cur >= n {
        return;
    }
    r.rlim_cur = n;
    r.rlim_max = r.rlim_max.max(n);
    // SAFETY: valid pointer to an rlimit.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &r) };
    assert_eq!(
        rc,
        0,
        "setrlimit(RLIMIT_NOFILE, {n}): {}",
        std::io::Error::last_os_error()
    );
}

/// The `NAME=N` counter of l7trace's summary line.
pub fn summary_counter(stderr: &[String], name: &str) -> u64 {
    let line = stderr
        .iter()
        .find(|l| l.starts_with("l7trace: summary:"))
        .unwrap_or_else(|| panic!("no summary line on stderr:\n{}", stderr.join("\n")));
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name}= in {line:?}"))
}
