//! Idempotent machine set-up shared by every command: each step checks first and only
//! acts on what is missing, so a second run is quick and says "ok".

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::proc::{as_root, check, find_in_path, is_executable, output_of};

const APT_PACKAGES: &[&str] = &[
    "rustc-web",
    "cargo-web",
    "libstd-rust-web-dev-bpf",
    "llvm-22-dev",
    "nginx-light",
    "curl",
    "iproute2",
    "wrk",
    "tmux",
    // Process-model tests: an inetd-style server (socat EXEC), servers that fork and pass fds.
    "socat",
    "python3",
];
const TOOLCHAIN: &str = "debian-web";
const BPF_LINKER_VERSION: &str = "0.13.0";
const LLVM_PREFIX: &str = "/usr/lib/llvm-22";
const TRACEFS: &str = "/sys/kernel/tracing";

pub fn run() -> Result<()> {
    ensure_cargo_bin_on_path();
    apt_packages().context("installing apt packages")?;
    toolchain_link().context("linking the debian-web rustup toolchain")?;
    bpf_linker().context("installing bpf-linker")?;
    tracefs().context("mounting tracefs")?;
    Ok(())
}

/// `~/.cargo/bin` (or `$CARGO_HOME/bin`): where rustup and `cargo install` put binaries.
fn cargo_bin_dir() -> Option<PathBuf> {
    if let Some(home) = std::env::var_os("CARGO_HOME") {
        return Some(PathBuf::from(home).join("bin"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo/bin"))
}

/// Child cargo builds need bpf-linker on PATH; put the cargo bin dir there (this process
/// is still single-threaded, and children inherit the environment).
fn ensure_cargo_bin_on_path() {
    let Some(bin) = cargo_bin_dir() else { return };
    let path = std::env::var_os("PATH").unwrap_or_default();
    if std::env::split_paths(&path).any(|p| p == bin) {
        return;
    }
    let mut dirs = vec![bin];
    dirs.extend(std::env::split_paths(&path));
    if let Ok(joined) = std::env::join_paths(dirs) {
        std::env::set_var("PATH", joined);
    }
}

fn apt_installed(pkg: &str) -> bool {
    output_of("dpkg-query", &["-W", "-f=${Status}", pkg])
        .is_some_and(|s| s.trim() == "install ok installed")
}

fn apt_packages() -> Result<()> {
    let missing: Vec<&str> = APT_PACKAGES
        .iter()
        .copied()
        .filter(|p| !apt_installed(p))
        .collect();
    if missing.is_empty() {
        eprintln!(
            "xtask: setup: apt packages: ok ({} present)",
            APT_PACKAGES.len()
        );
        return Ok(());
    }
    eprintln!("xtask: setup: apt packages missing: {}", missing.join(" "));
    // The machine's package lists are stale; install fails without an update first.
    eprintln!("xtask: setup: apt-get update");
    check(as_root("apt-get").arg("update"))?;
    eprintln!("xtask: setup: apt-get install {}", missing.join(" "));
    let mut install = as_root("env");
    install
        .arg("DEBIAN_FRONTEND=noninteractive")
        .args(["apt-get", "install", "-y", "--no-install-recommends"])
        .args(&missing);
    check(&mut install)
}

fn toolchain_link() -> Result<()> {
    let list = output_of("rustup", &["toolchain", "list"]).context("`rustup toolchain list`")?;
    let linked = list
        .lines()
        .any(|l| l.split_whitespace().next() == Some(TOOLCHAIN));
    if linked {
        eprintln!("xtask: setup: rustup toolchain {TOOLCHAIN}: ok");
        return Ok(());
    }
    eprintln!("xtask: setup: rustup toolchain link {TOOLCHAIN} /usr");
    check(std::process::Command::new("rustup").args(["toolchain", "link", TOOLCHAIN, "/usr"]))
}

/// The version a bpf-linker binary reports, e.g. "0.13.0".
fn bpf_linker_version(bin: &Path) -> Option<String> {
    let out = output_of(bin, &["--version"])?;
    out.split_whitespace().nth(1).map(str::to_owned)
}

fn bpf_linker() -> Result<()> {
    let candidates = find_in_path("bpf-linker")
        .into_iter()
        .chain(cargo_bin_dir().map(|d| d.join("bpf-linker")))
        .filter(|p| is_executable(p));
    for bin in candidates {
        if bpf_linker_version(&bin).as_deref() == Some(BPF_LINKER_VERSION) {
            eprintln!(
                "xtask: setup: bpf-linker {BPF_LINKER_VERSION}: ok ({})",
                bin.display()
            );
            return Ok(());
        }
    }
    eprintln!(
        "xtask: setup: installing bpf-linker {BPF_LINKER_VERSION} against LLVM 22 (about a minute)"
    );
    // Its default feature wants LLVM 23; Debian has 22, matching Debian's rustc.
    check(
        crate::proc::cargo()
            .env("LLVM_PREFIX", LLVM_PREFIX)
            .args([
                "+stable",
                "install",
                "bpf-linker",
                "--version",
                BPF_LINKER_VERSION,
            ])
            .args(["--locked", "--no-default-features", "--features", "llvm-22"]),
    )
}

fn tracefs() -> Result<()> {
    if Path::new(TRACEFS).join("events").exists() {
        eprintln!("xtask: setup: tracefs: ok");
        return Ok(());
    }
    eprintln!("xtask: setup: mount -t tracefs tracefs {TRACEFS}");
    check(as_root("mount").args(["-t", "tracefs", "tracefs", TRACEFS]))
}
