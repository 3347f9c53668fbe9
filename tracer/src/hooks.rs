//! Which kernel hooks carry the syscall probes (tracepoints or kprobes), chosen for the
//! running kernel, and attaching them. Knows aya, knows no protocol.
//!
//! Two groups of hooks: the syscalls themselves (`syscalls/sys_{enter,exit}_*`, or
//! kprobes/kretprobes on `__x64_sys_*`), and socket identity (`sock/sock_{send,recv}_length`
//! from 6.5, or kprobes on `tcp_sendmsg`/`tcp_recvmsg`/`tcp_sendpage`). A connection's
//! start, role (which side connected, from the handshake's states) and close are always the
//! raw tracepoint `inet_sock_set_state`, and its socket's end `tcp_destroy_sock` (4.17+).
//! Where the fast path is taken no syscall tracepoint is attached at all: one alone
//! sends every syscall of the host through the kernel's slow path.
use std::{fmt, path::Path};

use aya::{
    programs::{KProbe, Program, ProgramError, RawTracePoint, TracePoint},
    Ebpf,
};
use thiserror::Error;

/// `--hooks`
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum HooksArg {
    /// Tracepoints where the kernel has them, kprobes otherwise.
    Auto,
    /// Syscall tracepoints (socket identity from kprobes where `sock_*_length` is missing).
    Tracepoint,
    /// Kprobes/kretprobes on the syscall and TCP functions.
    Kprobe,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookKind {
    Tracepoint,
    Kprobe,
}

/// What was chosen for each group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hooks {
    pub syscalls: HookKind,
    pub sockets: HookKind,
}

impl fmt::Display for Hooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.syscalls, self.sockets) {
            (HookKind::Tracepoint, HookKind::Tracepoint) => f.write_str("tracepoint"),
            (HookKind::Kprobe, HookKind::Kprobe) => f.write_str("kprobe"),
            (HookKind::Tracepoint, HookKind::Kprobe) => f.write_str("tracepoint+tcp-kprobes"),
            (HookKind::Kprobe, HookKind::Tracepoint) => f.write_str("kprobe+sock-tracepoints"),
        }
    }
}

#[derive(Debug, Error)]
pub enum HookError {
    #[error("the kernel has no syscall tracepoints (syscalls/sys_enter_read is missing from tracefs; CONFIG_FTRACE_SYSCALLS); try --hooks kprobe")]
    NoSyscallTracepoints,
    #[error("the kernel lacks the tracepoints sock/sock_send_length and sock/sock_recv_length (added in 6.5) and has no kprobes (CONFIG_KPROBES) to find sockets with instead")]
    NoSocketHooks,
    #[error("the kernel has no kprobes (CONFIG_KPROBES is not set, or no kprobe PMU/kprobe_events); use --hooks tracepoint or auto")]
    NoKprobes,
    #[error("program {0} is missing from the object")]
    MissingProgram(String),
    #[error("program {name}: {}", describe(source))]
    Program { name: String, source: ProgramError },
    #[error("stopped by a signal while loading")]
    Stopped,
}

/// A verifier refusal with the verifier's whole log, so it can be read on stderr.
fn describe(e: &ProgramError) -> String {
    match e {
        ProgramError::LoadError { io_error, verifier_log } => {
            format!("the verifier refused it ({io_error}); verifier log:\n{verifier_log}")
        }
        other => other.to_string(),
    }
}

/// What the running kernel offers.
#[derive(Debug, Clone, Copy)]
pub struct KernelHooks {
    pub syscall_tracepoints: bool,
    pub sock_length_tracepoints: bool,
    pub kprobes: bool,
    /// The exit tracepoints recover syscalls that entered before tracing with
    /// `bpf_task_pt_regs` (5.15) on `bpf_get_current_task_btf` (kernel BTF).
    pub task_regs: bool,
}

impl KernelHooks {
    pub fn probe() -> Self {
        KernelHooks {
            syscall_tracepoints: tracepoint_exists("syscalls", "sys_enter_read"),
            sock_length_tracepoints: tracepoint_exists("sock", "sock_send_length")
                && tracepoint_exists("sock", "sock_recv_length"),
            kprobes: Path::new("/sys/bus/event_source/devices/kprobe").exists()
                || tracefs_file_exists("kprobe_events"),
            task_regs: Path::new("/sys/kernel/btf/vmlinux").exists() && kernel_at_least(5, 15),
        }
    }

    /// The hooks for `arg` on this kernel, or why there are none.
    pub fn choose(&self, arg: HooksArg) -> Result<Hooks, HookError> {
        let sockets = |preferred: HookKind| -> Result<HookKind, HookError> {
            match (preferred, self.sock_length_tracepoints, self.kprobes) {
                (HookKind::Kprobe, _, true) => Ok(HookKind::Kprobe),
                (HookKind::Kprobe, _, false) => Err(HookError::NoKprobes),
                (HookKind::Tracepoint, true, _) => Ok(HookKind::Tracepoint),
                (HookKind::Tracepoint, false, true) => Ok(HookKind::Kprobe),
                (HookKind::Tracepoint, false, false) => Err(HookError::NoSocketHooks),
            }
        };
        match arg {
            HooksArg::Tracepoint if !self.syscall_tracepoints => Err(HookError::NoSyscallTracepoints),
            HooksArg::Tracepoint => Ok(Hooks { syscalls: HookKind::Tracepoint, sockets: sockets(HookKind::Tracepoint)? }),
            HooksArg::Kprobe => Ok(Hooks { syscalls: HookKind::Kprobe, sockets: sockets(HookKind::Kprobe)? }),
            HooksArg::Auto => {
                let syscalls = match (self.syscall_tracepoints, self.task_regs, self.kprobes) {
                    (true, true, _) | (true, false, false) => HookKind::Tracepoint,
                    (_, _, true) => HookKind::Kprobe,
                    (false, _, false) => return Err(HookError::NoSyscallTracepoints),
                };
                Ok(Hooks { syscalls, sockets: sockets(HookKind::Tracepoint)? })
            }
        }
    }
}

fn tracefs_file_exists(rel: &str) -> bool {
    ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]
        .iter()
        .any(|root| Path::new(root).join(rel).exists())
}

fn tracepoint_exists(category: &str, name: &str) -> bool {
    tracefs_file_exists(&format!("events/{category}/{name}"))
}

/// `bpf_loop` (5.17): the kernel side walks every iovec of a syscall with it.
pub fn has_bpf_loop() -> bool {
    kernel_at_least(5, 17)
}

fn kernel_at_least(major: u32, minor: u32) -> bool {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut parts = release.trim().split(['.', '-']).map(|p| p.parse::<u32>().unwrap_or(0));
    let (ma, mi) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (ma, mi) >= (major, minor)
}

/// Syscalls probed where the fast path is not taken, each with a `sys_enter_<name>` and a
/// `sys_exit_<name>` program (or `kprobe_<name>` and `kretprobe_<name>`): their only job
/// is to find payload buffers.
const SYSCALLS: &[&str] = &["read", "readv", "recvfrom", "recvmsg", "write", "writev", "sendto", "sendmsg", "sendfile64"];

/// Socket identity by kprobe: (program, kernel function, required). `tcp_sendpage` is
/// sendfile's path before 6.5 and gone after.
const TCP_KPROBES: &[(&str, &str, bool)] = &[
    ("kprobe_tcp_sendmsg", "tcp_sendmsg", true),
    ("kprobe_tcp_recvmsg", "tcp_recvmsg", true),
    ("kprobe_tcp_sendpage", "tcp_sendpage", false),
];

/// The syscall functions' prefix on this architecture.
const SYSCALL_PREFIX: &str = if cfg!(target_arch = "aarch64") { "__arm64_sys_" } else { "__x64_sys_" };

impl Hooks {
    /// Payload captured inside the `sock_*_length` tracepoints, with the syscall's
    /// arguments from the saved user registers (x86_64): no per-syscall probes.
    pub fn fast_path(self) -> bool {
        cfg!(target_arch = "x86_64") && self.syscalls == HookKind::Tracepoint && self.sockets == HookKind::Tracepoint
    }
}

/// One program to attach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hook {
    /// Program `name` on tracepoint `category/name`.
    Tracepoint { category: &'static str, name: String },
    /// Program `name` on the raw tracepoint `name`.
    RawTracepoint { name: &'static str },
    /// Program `prog` on kernel function `func`; an optional one may be missing.
    Kprobe { prog: String, func: String, required: bool },
}

impl Hooks {
    /// Every program to attach for these hooks, in order.
    pub fn plan(self) -> Vec<Hook> {
        let tp = |category, name: &str| Hook::Tracepoint { category, name: name.to_owned() };
        let kp = |prog: String, func: String, required| Hook::Kprobe { prog, func, required };
        let raw = |name| Hook::RawTracepoint { name };
        let mut plan = vec![raw("inet_sock_set_state"), raw("tcp_destroy_sock")];
        match self.sockets {
            HookKind::Tracepoint => {
                plan.push(tp("sock", "sock_send_length"));
                plan.push(tp("sock", "sock_recv_length"));
            }
            HookKind::Kprobe => {
                for (prog, func, required) in TCP_KPROBES {
                    plan.push(kp(prog.to_string(), func.to_string(), *required));
                }
            }
        }
        if self.fast_path() {
            return plan;
        }
        for name in SYSCALLS {
            match self.syscalls {
                HookKind::Tracepoint => {
                    plan.push(tp("syscalls", &format!("sys_enter_{name}")));
                    plan.push(tp("syscalls", &format!("sys_exit_{name}")));
                }
                HookKind::Kprobe => {
                    let func = format!("{SYSCALL_PREFIX}{name}");
                    plan.push(kp(format!("kprobe_{name}"), func.clone(), true));
                    plan.push(kp(format!("kretprobe_{name}"), func, true));
                }
            }
        }
        plan
    }
}

/// Loads and attaches the programs of `hooks`; the others stay unloaded.
pub fn attach(ebpf: &mut Ebpf, hooks: Hooks) -> Result<(), HookError> {
    for hook in hooks.plan() {
        if crate::run::stop_requested() {
            return Err(HookError::Stopped);
        }
        match hook {
            Hook::Tracepoint { category, name } => tracepoint(ebpf, category, &name)?,
            Hook::RawTracepoint { name } => raw_tracepoint(ebpf, name)?,
            Hook::Kprobe { prog, func, required } => match kprobe(ebpf, &prog, &func) {
                Err(e) if !required => tracing::debug!("optional kprobe on {func} not attached: {e}"),
                r => r?,
            },
        }
    }
    Ok(())
}

fn program_error(name: &str) -> impl Fn(ProgramError) -> HookError + '_ {
    move |source| HookError::Program { name: name.to_owned(), source }
}

/// Program `name` of the object, as its type `T`.
fn program<'a, T>(ebpf: &'a mut Ebpf, name: &str) -> Result<&'a mut T, HookError>
where
    &'a mut T: TryFrom<&'a mut Program, Error = ProgramError>,
{
    ebpf.program_mut(name)
        .ok_or_else(|| HookError::MissingProgram(name.into()))?
        .try_into()
        .map_err(program_error(name))
}

fn tracepoint(ebpf: &mut Ebpf, category: &str, name: &str) -> Result<(), HookError> {
    let prog: &mut TracePoint = program(ebpf, name)?;
    prog.load().map_err(program_error(name))?;
    prog.attach(category, name).map_err(program_error(name))?;
    Ok(())
}

fn raw_tracepoint(ebpf: &mut Ebpf, name: &str) -> Result<(), HookError> {
    let prog: &mut RawTracePoint = program(ebpf, name)?;
    prog.load().map_err(program_error(name))?;
    prog.attach(name).map_err(program_error(name))?;
    Ok(())
}

fn kprobe(ebpf: &mut Ebpf, name: &str, func: &str) -> Result<(), HookError> {
    let prog: &mut KProbe = program(ebpf, name)?;
    prog.load().map_err(program_error(name))?;
    prog.attach(func, 0).map_err(program_error(name))?;
    Ok(())
}

/// Each program's name and what the verifier said of it.
pub type Verdicts = Vec<(String, Result<(), HookError>)>;

/// Loads every program of the object into the kernel without attaching any: what the
/// verifier says of each, by name (sorted).
pub fn verify_all(ebpf: &mut Ebpf) -> Verdicts {
    let mut out: Verdicts = ebpf
        .programs_mut()
        .map(|(name, prog)| {
            let r = match prog {
                Program::TracePoint(p) => p.load(),
                Program::KProbe(p) => p.load(),
                Program::RawTracePoint(p) => p.load(),
                Program::SocketFilter(p) => p.load(),
                _ => Ok(()),
            };
            (name.to_owned(), r.map_err(program_error(name)))
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kernel(syscall_tp: bool, sock_tp: bool, kprobes: bool, task_regs: bool) -> KernelHooks {
        KernelHooks { syscall_tracepoints: syscall_tp, sock_length_tracepoints: sock_tp, kprobes, task_regs }
    }

    const TP: HookKind = HookKind::Tracepoint;
    const KP: HookKind = HookKind::Kprobe;

    #[test]
    fn auto_prefers_tracepoints() {
        // 6.18 without kprobes (the CI host).
        let h = kernel(true, true, false, true).choose(HooksArg::Auto).unwrap();
        assert_eq!(h, Hooks { syscalls: TP, sockets: TP });
        assert_eq!(h.to_string(), "tracepoint");
        // 6.1: no sock_*_length.
        let h = kernel(true, false, true, true).choose(HooksArg::Auto).unwrap();
        assert_eq!(h, Hooks { syscalls: TP, sockets: KP });
        // 5.10 or no BTF: the exit tracepoints cannot load; kprobes can.
        let h = kernel(true, false, true, false).choose(HooksArg::Auto).unwrap();
        assert_eq!(h.to_string(), "kprobe");
    }

    #[test]
    fn explicit_choices_and_refusals() {
        assert!(matches!(kernel(true, true, false, true).choose(HooksArg::Kprobe), Err(HookError::NoKprobes)));
        assert!(matches!(kernel(true, false, false, true).choose(HooksArg::Tracepoint), Err(HookError::NoSocketHooks)));
        assert!(matches!(kernel(false, true, true, true).choose(HooksArg::Tracepoint), Err(HookError::NoSyscallTracepoints)));
        let h = kernel(true, false, true, true).choose(HooksArg::Tracepoint).unwrap();
        assert_eq!(h.to_string(), "tracepoint+tcp-kprobes");
        let h = kernel(true, true, true, true).choose(HooksArg::Kprobe).unwrap();
        assert_eq!(h, Hooks { syscalls: KP, sockets: KP });
    }

    #[test]
    fn fast_path_attaches_no_syscall_tracepoint() {
        // One syscall tracepoint alone sends every syscall of the host through the slow
        // path; the fast path needs none.
        let h = Hooks { syscalls: TP, sockets: TP };
        assert_eq!(h.fast_path(), cfg!(target_arch = "x86_64"));
        let plan = h.plan();
        if h.fast_path() {
            let names: Vec<_> = plan.iter().map(|p| format!("{p:?}")).collect();
            assert_eq!(plan.len(), 4, "{names:?}");
            assert!(!plan.iter().any(|p| matches!(p, Hook::Tracepoint { category: "syscalls", .. })), "{names:?}");
        }
        // Without it, every payload syscall has an enter and an exit program, and close none.
        let slow = Hooks { syscalls: TP, sockets: KP }.plan();
        let sys: Vec<_> = slow
            .iter()
            .filter_map(|p| match p {
                Hook::Tracepoint { category: "syscalls", name } => Some(name.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(sys.len(), 2 * SYSCALLS.len());
        assert!(sys.contains(&"sys_enter_sendfile64") && sys.contains(&"sys_exit_read"));
        assert!(!sys.iter().any(|n| n.contains("close")));
        let kprobes = Hooks { syscalls: KP, sockets: KP }.plan();
        assert!(kprobes.contains(&Hook::Kprobe { prog: "kretprobe_writev".into(), func: format!("{SYSCALL_PREFIX}writev"), required: true }));
        assert!(kprobes.contains(&Hook::RawTracepoint { name: "tcp_destroy_sock" }));
    }

    #[test]
    fn missing_tracepoints_are_named() {
        let msg = HookError::NoSocketHooks.to_string();
        assert!(msg.contains("sock/sock_send_length") && msg.contains("sock/sock_recv_length"), "{msg}");
    }
}
