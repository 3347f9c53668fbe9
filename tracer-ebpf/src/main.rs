//! l7trace kernel side. This file only declares modules; the probes live in `probes/`.
#![no_std]
#![no_main]
// The atomic position update is written as its instruction (`capture::advance`).
#![feature(asm_experimental_arch)]

mod capture;
mod config;
mod maps;
mod probes;

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // SAFETY: the verifier rejects programs with reachable infinite loops, so every panic
    // path must be provably dead; this tells LLVM so.
    unsafe { core::hint::unreachable_unchecked() }
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
