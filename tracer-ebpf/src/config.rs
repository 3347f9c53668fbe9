//! Settings the loader writes before loading (read-only globals).
use aya_ebpf::Global;

#[unsafe(no_mangle)]
pub static USE_RINGBUF: Global<u8> = Global::new(1);
#[unsafe(no_mangle)]
pub static CFG_MAX_CAPTURE: Global<u32> = Global::new(tracer_common::MAX_CAPTURE as u32);
#[unsafe(no_mangle)]
pub static FILTER_PID_ON: Global<u8> = Global::new(0);
#[unsafe(no_mangle)]
pub static FILTER_PORT_ON: Global<u8> = Global::new(0);
#[unsafe(no_mangle)]
pub static SELF_PID: Global<u32> = Global::new(0);
