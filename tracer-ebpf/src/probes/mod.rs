//! Probe entry points, one file per hooked area. The tracepoint entry points live beside
//! the logic they share (`data`, `conns`, `sock`); `kprobes` holds the same entry points as
//! kprobes/kretprobes, for kernels without the tracepoints.
pub mod conns;
pub mod data;
pub mod kprobes;
pub mod mute;
pub mod sock;
pub mod sockfilter;

use aya_ebpf::{
    helpers::{bpf_get_current_pid_tgid, bpf_probe_read_kernel},
    programs::TracePointContext,
    EbpfContext,
};

use crate::{
    config::{FILTER_PID_ON, SELF_PID},
    maps::{armed, FILTER_PIDS},
};

/// Argument `n` of a `syscalls/sys_enter_*` tracepoint.
#[inline(always)]
pub fn sys_arg(ctx: &TracePointContext, n: usize) -> u64 {
    // SAFETY: syscall tracepoint records hold six 8-byte arguments from offset 16.
    unsafe { *(ctx.as_ptr().add(16 + 8 * n) as *const u64) }
}

/// The first four arguments of a `syscalls/sys_enter_*` tracepoint.
#[inline(always)]
pub fn tp_args(ctx: &TracePointContext) -> [u64; 4] {
    [sys_arg(ctx, 0), sys_arg(ctx, 1), sys_arg(ctx, 2), sys_arg(ctx, 3)]
}

/// Words of x86_64 `struct pt_regs` (8 bytes each): the syscall ABI passes arguments in
/// di, si, dx, r10; orig_ax holds the syscall number.
const PT_R10: usize = 7;
const PT_DX: usize = 12;
const PT_SI: usize = 13;
const PT_DI: usize = 14;
const PT_ORIG_AX: usize = 15;

/// The first four syscall arguments from the user registers the kernel saved at syscall
/// entry, `regs` an untyped pointer to them (a kprobe's argument).
#[inline(always)]
pub fn user_args(regs: *const u8) -> Option<[u64; 4]> {
    // SAFETY: kernel read through the checking helper, of the words r10 to di.
    let r = unsafe { bpf_probe_read_kernel(regs.wrapping_add(8 * PT_R10) as *const [u64; PT_DI - PT_R10 + 1]) }.ok()?;
    Some([r[PT_DI - PT_R10], r[PT_SI - PT_R10], r[PT_DX - PT_R10], r[0]])
}

/// The syscall number (orig_ax) and first four arguments the current task entered its
/// syscall with. The registers are read straight through the pointer the helper gives: it
/// is typed by the kernel's BTF (`struct pt_regs`), so the verifier turns each load into a
/// guarded one (a fault reads 0), without a helper call per read.
#[inline(always)]
pub fn current_syscall() -> Option<(u64, [u64; 4])> {
    #[cfg(bpf_target_arch = "x86_64")]
    {
        use aya_ebpf::helpers::generated::{bpf_get_current_task_btf, bpf_task_pt_regs};
        // SAFETY: the helpers return the current task's saved user registers, a BTF-typed
        // kernel pointer whose loads the verifier guards.
        unsafe {
            let r = bpf_task_pt_regs(bpf_get_current_task_btf()) as *const u64;
            if r.is_null() {
                return None;
            }
            let rd = |i: usize| core::ptr::read_volatile(r.add(i));
            Some((rd(PT_ORIG_AX), [rd(PT_DI), rd(PT_SI), rd(PT_DX), rd(PT_R10)]))
        }
    }
    #[cfg(not(bpf_target_arch = "x86_64"))]
    {
        None
    }
}

/// Return value of a `syscalls/sys_exit_*` tracepoint.
#[inline(always)]
pub fn sys_ret(ctx: &TracePointContext) -> i64 {
    // SAFETY: the return value is the 8-byte field at offset 16 of sys_exit records.
    unsafe { *(ctx.as_ptr().add(16) as *const i64) }
}

/// Whether this process is traced: tracing has started, not l7trace itself, and in
/// `--pid` when given.
#[inline(always)]
pub fn traced(tgid: u32) -> bool {
    if tgid == SELF_PID.load() || !armed() {
        return false;
    }
    if FILTER_PID_ON.load() != 0 {
        // SAFETY: the value is only tested for presence.
        return unsafe { FILTER_PIDS.get(&tgid) }.is_some();
    }
    true
}

#[inline(always)]
pub fn current() -> (u64, u32, u32) {
    let id = bpf_get_current_pid_tgid();
    (id, (id >> 32) as u32, id as u32)
}
