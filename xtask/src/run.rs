//! `cargo xtask run -- ARGS`: build, then become l7trace (as root).

use std::os::unix::process::CommandExt;
use std::process::{Command, ExitCode};

use anyhow::{Context, Result};

use crate::proc::find_in_path;

pub fn run(args: &[String]) -> Result<ExitCode> {
    crate::setup::run()?;
    crate::build_release()?;
    let args = match args.first().map(String::as_str) {
        Some("--") => &args[1..],
        _ => args,
    };
    let bin = crate::workspace_root().join("target/release/l7trace");
    let mut cmd = if !crate::is_root() && find_in_path("sudo").is_some() {
        eprintln!("xtask: not root: running l7trace through sudo");
        let mut c = Command::new("sudo");
        c.arg("--").arg(&bin);
        c
    } else {
        Command::new(&bin)
    };
    cmd.args(args);
    // exec: l7trace takes our pid, so Ctrl-C and kill reach it directly and its exit
    // status is ours.
    let err = cmd.exec();
    Err(err).with_context(|| format!("cannot exec {}", bin.display()))
}
