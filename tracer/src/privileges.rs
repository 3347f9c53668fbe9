//! What the process may do, said before anything fails obscurely.

const CAP_DAC_OVERRIDE: u32 = 1;
const CAP_DAC_READ_SEARCH: u32 = 2;
const CAP_NET_RAW: u32 = 13;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// Where the tracepoints' ids are read when they are attached. tracefs is mounted for root
/// alone (mode 0700) on the distributions' kernels.
const TRACEFS_EVENTS: &str = "/sys/kernel/tracing/events";

/// None when tracing is allowed; otherwise the one-line reason naming what is missing.
/// `iface`: `--iface` also opens a packet socket.
pub fn missing(iface: bool) -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    // Root is judged by its capabilities too: a container, or a bounding set, may have
    // dropped them (then the kernel refuses a map with a bare EPERM).
    let eff = match effective_caps() {
        Some(eff) => eff,
        None if root => return None,
        None => 0,
    };
    let tracefs_denied =
        std::fs::metadata(TRACEFS_EVENTS).is_err_and(|e| e.kind() == std::io::ErrorKind::PermissionDenied);
    let need = needed(eff, tracefs_denied, iface);
    if need.is_empty() {
        return None;
    }
    let iface_too = if iface { ", and CAP_NET_RAW for --iface" } else { "" };
    Some(if root {
        format!(
            "l7trace: error: this root process lacks capabilities tracing needs (CAP_BPF + CAP_PERFMON, or \
             CAP_SYS_ADMIN{iface_too}); missing: {} (dropped by a container or a capability bounding set)",
            need.join(", ")
        )
    } else {
        format!(
            "l7trace: error: tracing needs root, or CAP_BPF + CAP_PERFMON, with CAP_DAC_READ_SEARCH \
             where tracefs is root's alone{iface_too}; missing: {} (try: sudo l7trace)",
            need.join(", ")
        )
    })
}

/// The capabilities missing from `eff` (a CapEff mask): `tracefs_denied` when this user
/// cannot look into tracefs.
fn needed(eff: u64, tracefs_denied: bool, iface: bool) -> Vec<&'static str> {
    let has = |c: u32| eff & (1u64 << c) != 0;
    let mut need = Vec::new();
    // CAP_SYS_ADMIN stands in for both on kernels before 5.8 and after.
    if !has(CAP_BPF) && !has(CAP_SYS_ADMIN) {
        need.push("CAP_BPF");
    }
    if !has(CAP_PERFMON) && !has(CAP_SYS_ADMIN) {
        need.push("CAP_PERFMON");
    }
    if tracefs_denied && !has(CAP_DAC_READ_SEARCH) && !has(CAP_DAC_OVERRIDE) {
        need.push("CAP_DAC_READ_SEARCH");
    }
    if iface && !has(CAP_NET_RAW) {
        need.push("CAP_NET_RAW");
    }
    need
}

fn effective_caps() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("CapEff:"))?;
    u64::from_str_radix(line.trim_start_matches("CapEff:").trim(), 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(list: &[u32]) -> u64 {
        list.iter().fold(0, |m, c| m | 1u64 << c)
    }

    #[test]
    fn names_each_capability_missing() {
        assert_eq!(needed(0, true, true), ["CAP_BPF", "CAP_PERFMON", "CAP_DAC_READ_SEARCH", "CAP_NET_RAW"]);
        assert_eq!(needed(caps(&[CAP_BPF, CAP_PERFMON]), true, false), ["CAP_DAC_READ_SEARCH"]);
        assert_eq!(needed(caps(&[CAP_BPF, CAP_PERFMON]), false, false), [] as [&str; 0]);
        assert_eq!(needed(caps(&[CAP_BPF, CAP_PERFMON, CAP_DAC_OVERRIDE]), true, true), ["CAP_NET_RAW"]);
        assert_eq!(needed(caps(&[CAP_SYS_ADMIN, CAP_DAC_READ_SEARCH, CAP_NET_RAW]), true, true), [] as [&str; 0]);
    }
}
