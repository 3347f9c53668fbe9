//! `cargo xtask test`: every test of the workspace, the real-kernel ones included.

use std::io::{BufRead, BufReader, Write};
use std::process::{ExitCode, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};

/// One `cargo test` invocation and what it is for.
struct Step {
    name: &'static str,
    args: &'static [&'static str],
}

const STEPS: &[Step] = &[
    Step {
        name: "tracer unit tests",
        args: &[
            "test",
            "--no-fail-fast",
            "--release",
            "-p",
            "tracer",
            "--lib",
            "--bins",
        ],
    },
    Step {
        // They attach to the one kernel: one at a time.
        name: "tracer real-kernel integration tests",
        args: &[
            "test",
            "--no-fail-fast",
            "--release",
            "-p",
            "tracer",
            "--test",
            "*",
            "--",
            "--test-threads=1",
        ],
    },
    Step {
        name: "tracer-common tests",
        args: &["test", "--no-fail-fast", "-p", "tracer-common"],
    },
    Step {
        name: "xtask tests",
        args: &["test", "--no-fail-fast", "-p", "xtask"],
    },
];

#[derive(Default)]
struct Counts {
    passed: u64,
    failed: u64,
    ignored: u64,
}

struct Outcome {
    name: &'static str,
    ok: bool,
    secs: f64,
    counts: Counts,
}

pub fn run() -> Result<ExitCode> {
    if !crate::is_root() {
        bail!(
            "`cargo xtask test` must run as root: the integration tests load eBPF programs \
             into the kernel (run it with sudo, or as root)"
        );
    }
    crate::setup::run()?;
    crate::build_release()?;
    let mut outcomes: Vec<Outcome> = STEPS.iter().map(run_step).collect::<Result<_>>()?;
    outcomes.push(fuzz_step());
    outcomes.push(vm_step());
    Ok(summarize(&outcomes))
}

/// The kernel matrix (`cargo xtask vm-test`): one test per kernel and variant; a variant
/// the kernel cannot run (UNAVAILABLE) is counted skipped, not passed.
fn vm_step() -> Outcome {
    let start = Instant::now();
    let (ok, counts) = match crate::vmtest::matrix() {
        Ok((ok, cells)) => (ok, vm_counts(&cells)),
        Err(e) => {
            eprintln!("xtask: vm-test: {e:#}");
            (false, Counts { passed: 0, failed: 1, ignored: 0 })
        }
    };
    Outcome { name: "kernel matrix (QEMU 6.1, 6.12; host)", ok, secs: start.elapsed().as_secs_f64(), counts }
}

fn vm_counts(cells: &[crate::vmtest::Cell]) -> Counts {
    let count = |f: &dyn Fn(&crate::vmtest::Cell) -> bool| cells.iter().filter(|c| f(c)).count() as u64;
    Counts {
        passed: count(&|c| c.result == "PASS"),
        failed: count(&|c| !c.ok()),
        ignored: count(&|c| c.ok() && c.result != "PASS"),
    }
}

/// A short pass of every fuzz target; a crash (or a fuzzer that cannot run) fails it.
fn fuzz_step() -> Outcome {
    let start = Instant::now();
    let targets: Vec<String> = crate::fuzz::TARGETS.iter().map(|t| t.to_string()).collect();
    let (ok, passed, failed) = match crate::fuzz::fuzz_all(&targets, crate::fuzz::CI_SECS) {
        Ok(o) => {
            let failed = o.iter().filter(|o| !o.ok).count() as u64;
            (failed == 0, o.len() as u64 - failed, failed)
        }
        Err(e) => {
            eprintln!("xtask: fuzz: {e:#}");
            (false, 0, 1)
        }
    };
    Outcome {
        name: "fuzz targets (short pass)",
        ok,
        secs: start.elapsed().as_secs_f64(),
        counts: Counts { passed, failed, ignored: 0 },
    }
}

fn run_step(step: &Step) -> Result<Outcome> {
    eprintln!("xtask: test: {} (cargo {})", step.name, step.args.join(" "));
    let start = Instant::now();
    let mut child = crate::proc::cargo()
        .args(step.args)
        .current_dir(crate::workspace_root())
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start cargo {}", step.args.join(" ")))?;
    let mut counts = Counts::default();
    if let Some(out) = child.stdout.take() {
        let stdout = std::io::stdout();
        for line in BufReader::new(out).lines() {
            let line = line?;
            count_result_line(&line, &mut counts);
            let mut lock = stdout.lock();
            writeln!(lock, "{line}")?;
            lock.flush()?;
        }
    }
    let status = child.wait()?;
    Ok(Outcome {
        name: step.name,
        ok: status.success(),
        secs: start.elapsed().as_secs_f64(),
        counts,
    })
}

/// Adds the numbers of a libtest line such as
/// `test result: ok. 3 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; ...`.
fn count_result_line(line: &str, counts: &mut Counts) {
    let Some(rest) = line.trim().strip_prefix("test result: ") else {
        return;
    };
    for part in rest.split(';') {
        let mut words = part.split_whitespace().rev();
        let (Some(label), Some(num)) = (words.next(), words.next()) else {
            continue;
        };
        let Ok(n) = num.parse::<u64>() else { continue };
        match label {
            "passed" => counts.passed += n,
            "failed" => counts.failed += n,
            "ignored" => counts.ignored += n,
            _ => {}
        }
    }
}

fn summarize(outcomes: &[Outcome]) -> ExitCode {
    eprintln!("\nxtask: test summary:");
    let mut total = Counts::default();
    for o in outcomes {
        eprintln!(
            "  {:<4} {:<40} {:>4} passed {:>3} failed {:>3} ignored  {:6.1}s",
            if o.ok { "ok" } else { "FAIL" },
            o.name,
            o.counts.passed,
            o.counts.failed,
            o.counts.ignored,
            o.secs
        );
        total.passed += o.counts.passed;
        total.failed += o.counts.failed;
        total.ignored += o.counts.ignored;
    }
    let failed_steps = outcomes.iter().filter(|o| !o.ok).count();
    // A step can fail before any test runs (a build error): count it as a failure.
    let failed = total.failed.max(failed_steps as u64);
    println!(
        "summary: {} passed, {} failed, {} skipped",
        total.passed, failed, total.ignored
    );
    if failed_steps == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_libtest_result_lines() {
        let mut c = Counts::default();
        count_result_line(
            "test result: ok. 3 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s",
            &mut c,
        );
        count_result_line(
            "test result: FAILED. 1 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out",
            &mut c,
        );
        count_result_line("running 3 tests", &mut c);
        assert_eq!((c.passed, c.failed, c.ignored), (4, 2, 1));
    }

    #[test]
    fn an_unavailable_kernel_variant_is_skipped_not_passed() {
        let cell = |result: &str| crate::vmtest::Cell {
            kernel: "6.18".into(),
            variant: "kprobe".into(),
            hooks: "-".into(),
            result: result.into(),
            detail: String::new(),
        };
        let c = vm_counts(&[cell("PASS"), cell("UNAVAILABLE"), cell("FAIL"), cell("PASS")]);
        assert_eq!((c.passed, c.failed, c.ignored), (2, 1, 1));
    }
}
