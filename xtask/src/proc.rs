//! Small helpers around `std::process::Command`.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The `cargo` to call for child builds: the rustup proxy on PATH, so `+toolchain`
/// works, falling back to the cargo that runs us.
pub fn cargo() -> Command {
    let program = find_in_path("cargo")
        .map(PathBuf::into_os_string)
        .or_else(|| std::env::var_os("CARGO"))
        .unwrap_or_else(|| "cargo".into());
    Command::new(program)
}

/// The first executable `name` on PATH.
pub fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

pub fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Stdout of `program args`, or None when it cannot run or exits non-zero.
pub fn output_of<S: AsRef<OsStr>>(program: impl AsRef<OsStr>, args: &[S]) -> Option<String> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `Command` for an action that needs root: as is when we are root, through sudo when it
/// exists, as is otherwise (it will then fail with its own message).
pub fn as_root(program: &str) -> Command {
    if !crate::is_root() && find_in_path("sudo").is_some() {
        let mut c = Command::new("sudo");
        c.arg("--").arg(program);
        c
    } else {
        Command::new(program)
    }
}

/// Runs `cmd` with inherited stdio; an error names the command when it fails.
pub fn check(cmd: &mut Command) -> anyhow::Result<()> {
    let shown = format!("{cmd:?}");
    let status = cmd
        .status()
        .map_err(|e| anyhow::anyhow!("cannot start {shown}: {e}"))?;
    if !status.success() {
        anyhow::bail!("{shown} failed ({status})");
    }
    Ok(())
}
