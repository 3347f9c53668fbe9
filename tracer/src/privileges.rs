//! What the process may do, said before anything fails obscurely.

const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;
const CAP_SYS_ADMIN: u32 = 21;

/// None when tracing is allowed; otherwise the one-line reason naming what is missing.
pub fn missing() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return None;
    }
    let eff = effective_caps().unwrap_or(0);
    let has = |c: u32| eff & (1u64 << c) != 0;
    if has(CAP_SYS_ADMIN) {
        return None;
    }
    let mut need = Vec::new();
    if !has(CAP_BPF) {
        need.push("CAP_BPF");
    }
    if !has(CAP_PERFMON) {
        need.push("CAP_PERFMON");
    }
    if need.is_empty() {
        return None;
    }
    Some(format!(
        "l7trace: error: loading eBPF programs needs root or {}; missing: {} (try: sudo l7trace)",
        "CAP_BPF + CAP_PERFMON",
        need.join(", ")
    ))
}

fn effective_caps() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("CapEff:"))?;
    u64::from_str_radix(line.trim_start_matches("CapEff:").trim(), 16).ok()
}
