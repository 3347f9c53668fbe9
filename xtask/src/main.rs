//! `cargo xtask <cmd>`: set up what this machine lacks, then build, run or test l7trace.
//!
//! Every command first runs the idempotent set-up of `setup.rs`, so a fresh Debian
//! machine gets from a clone to a running tracer with one command.

mod fuzz;
mod bench;
mod pair;
mod proc;
mod run;
mod setup;
mod test;
mod vmtest;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};

const USAGE: &str = "\
usage: cargo xtask <command>

  build             set up what is missing, build l7trace (release)
  run -- ARGS...    set up, build, run target/release/l7trace ARGS as root
  test              set up, build, run every test (unit and real-kernel; needs root)
  fuzz [--secs N] [TARGET...]
                    run the libFuzzer targets of fuzz/ (default 300 s each)
  bench [OPTIONS]   set up, build, measure the tracer's overhead (nginx + wrk) and the
                    pipeline; table on stdout, JSON in bench/results/ (bench --help)
  vm-test           boot Debian's 6.1 and 6.12 kernels under QEMU with a static test
                    binary as /init, run it on the host too; per-kernel results (root)
";

fn main() -> ExitCode {
    match try_main() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn try_main() -> Result<ExitCode> {
    let mut args = std::env::args().skip(1);
    let Some(cmd) = args.next() else {
        eprint!("{USAGE}");
        return Ok(ExitCode::from(2));
    };
    let rest: Vec<String> = args.collect();
    match cmd.as_str() {
        "build" => {
            setup::run()?;
            build_release()?;
            Ok(ExitCode::SUCCESS)
        }
        "run" => run::run(&rest),
        "test" => test::run(),
        "fuzz" => fuzz::run(&rest),
        "bench" => bench::run(&rest),
        // The bench's own helper (see pair.rs), not listed in the usage.
        "bench-pair" => pair::run(&rest),
        "vm-test" => vmtest::run(),
        "help" | "-h" | "--help" => {
            print!("{USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        other => {
            eprint!("xtask: unknown command `{other}`\n{USAGE}");
            Ok(ExitCode::from(2))
        }
    }
}

/// The workspace root: xtask lives one level below it.
pub fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(PathBuf::from).unwrap_or(manifest)
}

/// `cargo build --release -p tracer`; tracer's build.rs compiles the eBPF crate too.
pub fn build_release() -> Result<()> {
    eprintln!("xtask: building l7trace (cargo build --release -p tracer)");
    let status = proc::cargo()
        .args(["build", "--release", "-p", "tracer"])
        .current_dir(workspace_root())
        .status()?;
    if !status.success() {
        bail!("cargo build --release -p tracer failed ({status})");
    }
    Ok(())
}

/// Whether the effective uid is 0, read from /proc (keeps xtask free of libc).
pub fn is_root() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .is_some_and(|euid| euid == "0")
}
