//! `cargo xtask fuzz [--secs N] [TARGET...]`: every libFuzzer target of `fuzz/` for a
//! bounded time each; a crash fails the command and leaves its input under
//! `fuzz/artifacts/<target>/`.
//!
//! cargo-fuzz passes nightly flags (`-Zsanitizer`); a machine of this kind has one
//! toolchain (stable, and no other can be fetched), so they are unlocked on it with
//! `RUSTC_BOOTSTRAP=1`. cargo-fuzz is installed with `cargo install cargo-fuzz --locked`
//! when missing. The committed seeds are in
//! `fuzz/corpus/<target>/seed-*`; what the fuzzer adds there is not committed.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};

/// Every target in fuzz/Cargo.toml.
pub const TARGETS: &[&str] = &["http1", "streambuf", "events", "tcp", "tcpstream"];
pub const DEFAULT_SECS: u64 = 300;
/// Per target in `cargo xtask test`.
pub const CI_SECS: u64 = 60;

/// `cargo fuzz ...` on the machine's default toolchain, its nightly flags unlocked.
fn cargo_fuzz(args: &[&str]) -> std::process::Command {
    let mut c = crate::proc::cargo();
    c.arg("fuzz").args(args).env("RUSTC_BOOTSTRAP", "1").current_dir(fuzz_dir());
    c
}

pub struct Outcome {
    pub target: String,
    pub ok: bool,
    pub execs: Option<u64>,
    pub secs: f64,
}

/// Parses `--secs N` and target names, then fuzzes.
pub fn run(args: &[String]) -> Result<std::process::ExitCode> {
    let mut secs = DEFAULT_SECS;
    let mut targets = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--secs" => {
                let v = it.next().context("--secs needs a number")?;
                secs = v.parse().with_context(|| format!("--secs {v:?}"))?;
            }
            t if TARGETS.contains(&t) => targets.push(t.to_owned()),
            other => bail!("unknown fuzz argument {other:?} (targets: {})", TARGETS.join(", ")),
        }
    }
    if targets.is_empty() {
        targets = TARGETS.iter().map(|t| t.to_string()).collect();
    }
    let outcomes = fuzz_all(&targets, secs)?;
    let ok = outcomes.iter().all(|o| o.ok);
    Ok(if ok { std::process::ExitCode::SUCCESS } else { std::process::ExitCode::FAILURE })
}

/// Builds once, then runs each target for `secs`; prints one line per target.
pub fn fuzz_all(targets: &[String], secs: u64) -> Result<Vec<Outcome>> {
    ensure_cargo_fuzz()?;
    eprintln!("xtask: fuzz: building targets (RUSTC_BOOTSTRAP=1 cargo fuzz build)");
    crate::proc::check(&mut cargo_fuzz(&["build"]))?;
    let mut outcomes = Vec::new();
    for t in targets {
        outcomes.push(fuzz_one(t, secs)?);
    }
    eprintln!("xtask: fuzz summary:");
    for o in &outcomes {
        eprintln!(
            "  {:<5} {:<10} {:>12} execs {:6.1}s",
            if o.ok { "ok" } else { "CRASH" },
            o.target,
            o.execs.map_or("?".into(), |n| n.to_string()),
            o.secs
        );
    }
    Ok(outcomes)
}

fn fuzz_one(target: &str, secs: u64) -> Result<Outcome> {
    let dir = fuzz_dir();
    let corpus = dir.join("corpus").join(target);
    std::fs::create_dir_all(&corpus)?;
    eprintln!("xtask: fuzz: {target} for {secs}s");
    let start = Instant::now();
    let out = cargo_fuzz(&["run", target])
        .arg(&corpus)
        .args(["--", &format!("-max_total_time={secs}"), "-max_len=65536", "-rss_limit_mb=2048", "-print_final_stats=1"])
        .output()
        .with_context(|| format!("cannot start cargo fuzz run {target}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let ok = out.status.success();
    if !ok {
        // The crash report: libFuzzer's and the panic's lines.
        eprintln!("{stderr}");
    }
    Ok(Outcome { target: target.to_owned(), ok, execs: execs(&stderr), secs: start.elapsed().as_secs_f64() })
}

/// `stat::number_of_executed_units: N` from `-print_final_stats=1`.
fn execs(stderr: &str) -> Option<u64> {
    stderr
        .lines()
        .find_map(|l| l.strip_prefix("stat::number_of_executed_units:"))
        .and_then(|n| n.trim().parse().ok())
}

fn fuzz_dir() -> PathBuf {
    crate::workspace_root().join("fuzz")
}

/// cargo-fuzz on PATH (or in ~/.cargo/bin), installed when missing.
fn ensure_cargo_fuzz() -> Result<()> {
    if crate::proc::output_of(crate::proc::cargo().get_program(), &["fuzz", "--version"]).is_some() {
        return Ok(());
    }
    eprintln!("xtask: installing cargo-fuzz (cargo install cargo-fuzz --locked)");
    crate::proc::check(crate::proc::cargo().args(["install", "cargo-fuzz", "--locked"]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_execs_from_final_stats() {
        let s = "INFO: seed\nstat::number_of_executed_units: 123456\nstat::average_exec_per_sec:   2057\n";
        assert_eq!(execs(s), Some(123456));
        assert_eq!(execs("nothing"), None);
    }

    #[test]
    fn targets_are_the_fuzz_crates_bins() {
        let manifest = std::fs::read_to_string(fuzz_dir().join("Cargo.toml")).expect("fuzz/Cargo.toml");
        let bins: Vec<&str> = manifest
            .split("[[bin]]")
            .skip(1)
            .filter_map(|b| b.lines().find_map(|l| l.trim().strip_prefix("name = ")))
            .map(|n| n.trim_matches('"'))
            .collect();
        assert_eq!(bins, TARGETS);
    }
}
