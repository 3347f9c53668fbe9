//! `cargo xtask vm-test`: the kernel matrix. Boots Debian's 6.1 and 6.12 kernels under
//! QEMU (TCG: these machines have no KVM) with a static test binary (`vmtest/`) as /init,
//! and runs the same binary on the host kernel. Each run prints sentinel lines, one per
//! variant (three verifier configurations, tracepoint, kprobe); the result is read from
//! them, never from QEMU's exit status (with panic=-1 it exits 0 even when /init crashes).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::proc::{as_root, check, find_in_path, output_of};

const SENTINEL: &str = "L7TRACE-VMTEST";
const TARGET: &str = "x86_64-unknown-linux-gnu";
/// Every cell a kernel's run must report: each verifier configuration (every program
/// loaded with other settings, `vmtest`'s `VERIFIER_CONFIGS`), then each hooks variant.
const VARIANTS: &[&str] = &["verifier", "verifier-filters", "verifier-iface", "tracepoint", "kprobe"];
/// Per boot, including the tests: TCG boots a Debian kernel in 2.5 to 6 s.
const BOOT_TIMEOUT: Duration = Duration::from_secs(180);

/// A kernel series of the matrix: how to find its newest Debian package.
struct Series {
    name: &'static str,
    /// `apt-cache search --names-only` pattern.
    pattern: &'static str,
}

const SERIES: &[Series] = &[
    Series { name: "6.1", pattern: r"^linux-image-6\.1\.0-[0-9]+-amd64$" },
    Series { name: "6.12", pattern: r"^linux-image-6\.12\.[0-9]+\+deb12-amd64$" },
];

/// One cell of the result table.
pub struct Cell {
    pub kernel: String,
    pub variant: String,
    pub hooks: String,
    pub result: String,
    pub detail: String,
}

impl Cell {
    pub fn ok(&self) -> bool {
        self.result == "PASS" || self.result == "UNAVAILABLE"
    }
}

/// `cargo xtask vm-test`.
pub fn run() -> Result<std::process::ExitCode> {
    if !crate::is_root() {
        bail!("`cargo xtask vm-test` must run as root (it loads eBPF programs on the host)");
    }
    crate::setup::run()?;
    let (ok, _) = matrix()?;
    Ok(if ok { std::process::ExitCode::SUCCESS } else { std::process::ExitCode::FAILURE })
}

/// Sets up, builds, boots every kernel and runs on the host; prints the table. Returns
/// whether every cell passed, and the cells.
pub fn matrix() -> Result<(bool, Vec<Cell>)> {
    let start = Instant::now();
    apt_packages()?;
    let root = crate::workspace_root();
    let cache = root.join("target/vm-kernels");
    std::fs::create_dir_all(&cache)?;
    let bin = build_static(&root)?;
    let initrd = cache.join("initramfs.cpio");
    write_initramfs(&bin, &initrd)?;
    let mut cells = Vec::new();
    for series in SERIES {
        let t = Instant::now();
        let (release, vmlinuz) = kernel(&cache, series)?;
        let log = cache.join(format!("serial-{release}.log"));
        eprintln!("xtask: vm-test: booting {release} under QEMU (TCG)");
        let booted = boot(&vmlinuz, &initrd, &log);
        let text = String::from_utf8_lossy(&std::fs::read(&log).unwrap_or_default()).into_owned();
        let found = cells_of(&text, &release);
        if let Err(e) = booted {
            eprintln!("xtask: vm-test: {release}: {e:#}");
        }
        if found.iter().all(Cell::ok) && text.contains(&format!("{SENTINEL} end")) {
            eprintln!("xtask: vm-test: {release}: done in {:.1}s", t.elapsed().as_secs_f64());
        } else {
            eprintln!("xtask: vm-test: {release}: serial log ({}):\n{}", log.display(), vmtest_lines(&text));
        }
        cells.extend(complete(found, &release, &text));
    }
    let t = Instant::now();
    let host = host_release();
    eprintln!("xtask: vm-test: running on the host kernel ({host})");
    let out = Command::new(&bin).arg("--host").stderr(Stdio::inherit()).output().context("running vmtest --host")?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let found = cells_of(&text, &format!("host {host}"));
    if !found.iter().all(Cell::ok) {
        eprintln!("{}", vmtest_lines(&text));
    }
    eprintln!("xtask: vm-test: host: done in {:.1}s", t.elapsed().as_secs_f64());
    cells.extend(complete(found, &format!("host {host}"), &text));
    print_table(&cells);
    eprintln!("xtask: vm-test: matrix took {:.0}s", start.elapsed().as_secs_f64());
    let ok = cells.iter().all(Cell::ok);
    Ok((ok, cells))
}

fn apt_installed(pkg: &str) -> bool {
    output_of("dpkg-query", &["-W", "-f=${Status}", pkg]).is_some_and(|s| s.trim() == "install ok installed")
}

/// QEMU. The initramfs is written here (newc), so neither cpio nor mknod is needed.
fn apt_packages() -> Result<()> {
    let missing: Vec<&str> = ["qemu-system-x86"].into_iter().filter(|p| !apt_installed(p)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("xtask: vm-test: apt-get install {}", missing.join(" "));
    check(as_root("apt-get").arg("update"))?;
    check(
        as_root("env")
            .arg("DEBIAN_FRONTEND=noninteractive")
            .args(["apt-get", "install", "-y", "--no-install-recommends"])
            .args(&missing),
    )
}

/// `vmtest` linked statically (it is /init of an otherwise empty VM).
fn build_static(root: &Path) -> Result<PathBuf> {
    eprintln!("xtask: vm-test: building the static test binary (cargo build --release -p vmtest --target {TARGET})");
    let status = crate::proc::cargo()
        .args(["build", "--release", "-p", "vmtest", "--target", TARGET])
        // Target-specific, so the eBPF build and build scripts are not affected.
        .env("CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS", "-C target-feature=+crt-static")
        .current_dir(root)
        .status()?;
    if !status.success() {
        bail!("building vmtest failed ({status})");
    }
    Ok(root.join("target").join(TARGET).join("release/vmtest"))
}

/// The cached kernel of `series` (release, vmlinuz), downloading it the first time.
fn kernel(cache: &Path, series: &Series) -> Result<(String, PathBuf)> {
    if let Some(found) = cached_kernel(cache, series) {
        return Ok(found);
    }
    let list = output_of("apt-cache", &["search", "--names-only", series.pattern]).unwrap_or_default();
    let mut pkgs: Vec<&str> = list.lines().filter_map(|l| l.split_whitespace().next()).collect();
    pkgs.sort_by_key(|p| version_key(p));
    let Some(pkg) = pkgs.last() else {
        bail!("no Debian package for kernel {} (apt-cache search '{}'; run apt-get update?)", series.name, series.pattern);
    };
    eprintln!("xtask: vm-test: apt-get download {pkg} (cached in {})", cache.display());
    let dl = cache.join("download");
    std::fs::create_dir_all(&dl)?;
    check(Command::new("apt-get").arg("download").arg(pkg).current_dir(&dl))?;
    let deb = std::fs::read_dir(&dl)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with(&format!("{pkg}_"))))
        .context("the downloaded .deb is missing")?;
    let dir = cache.join(pkg);
    std::fs::create_dir_all(&dir)?;
    // Only boot/ is needed (vmlinuz, config), not the 400 MB of modules: `dpkg -x`
    // restricted to it.
    let tar = format!(
        "dpkg-deb --fsys-tarfile '{}' | tar -x -C '{}' --wildcards './boot/*'",
        deb.display(),
        dir.display()
    );
    check(Command::new("sh").args(["-c", &tar]))?;
    let _ = std::fs::remove_file(&deb);
    cached_kernel(cache, series).context("the package has no boot/vmlinuz-*")
}

fn cached_kernel(cache: &Path, series: &Series) -> Option<(String, PathBuf)> {
    let prefix = format!("linux-image-{}.", series.name);
    let mut found: Vec<(String, PathBuf)> = std::fs::read_dir(cache)
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .filter_map(|e| {
            let boot = e.path().join("boot");
            let vmlinuz = std::fs::read_dir(&boot).ok()?.filter_map(|f| f.ok()).find(|f| f.file_name().to_string_lossy().starts_with("vmlinuz-"))?;
            let release = vmlinuz.file_name().to_string_lossy().trim_start_matches("vmlinuz-").to_owned();
            Some((release, vmlinuz.path()))
        })
        .collect();
    found.sort_by_key(|(r, _)| version_key(r));
    found.pop()
}

/// Numbers of a version-ish string, for ordering ("6.1.0-50" after "6.1.0-47").
fn version_key(s: &str) -> Vec<u64> {
    s.split(|c: char| !c.is_ascii_digit()).filter_map(|n| n.parse().ok()).collect()
}

/// Appends one newc entry to a cpio archive.
fn cpio_entry(out: &mut Vec<u8>, ino: u32, name: &str, mode: u32, rdev: (u32, u32), data: &[u8]) {
    let header = format!(
        "070701{ino:08X}{mode:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}",
        0,
        0,
        1,
        0,
        data.len(),
        0,
        0,
        rdev.0,
        rdev.1,
        name.len() + 1,
        0
    );
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
    out.extend_from_slice(data);
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

/// An initramfs with `/init` (the test binary) and `/dev/console` (the kernel opens it as
/// init's stdio).
fn write_initramfs(bin: &Path, out: &Path) -> Result<()> {
    let init = std::fs::read(bin).with_context(|| format!("reading {}", bin.display()))?;
    let mut a = Vec::with_capacity(init.len() + 1024);
    cpio_entry(&mut a, 1, "dev", 0o040755, (0, 0), &[]);
    cpio_entry(&mut a, 2, "dev/console", 0o020600, (5, 1), &[]);
    for (i, d) in ["proc", "sys", "tmp"].iter().enumerate() {
        cpio_entry(&mut a, 3 + i as u32, d, 0o040755, (0, 0), &[]);
    }
    cpio_entry(&mut a, 10, "init", 0o100755, (0, 0), &init);
    cpio_entry(&mut a, 0, "TRAILER!!!", 0, (0, 0), &[]);
    std::fs::File::create(out)?.write_all(&a)?;
    Ok(())
}

fn boot(vmlinuz: &Path, initrd: &Path, log: &Path) -> Result<()> {
    let qemu = find_in_path("qemu-system-x86_64").context("qemu-system-x86_64 is not installed")?;
    let _ = std::fs::remove_file(log);
    let mut child = Command::new(qemu)
        .args(["-accel", "tcg,thread=multi", "-cpu", "max", "-smp", "2", "-m", "1G"])
        .arg("-kernel")
        .arg(vmlinuz)
        .arg("-initrd")
        .arg(initrd)
        .args(["-append", "console=ttyS0 panic=-1 quiet", "-nographic", "-no-reboot", "-nodefaults"])
        .arg("-serial")
        .arg(format!("file:{}", log.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .context("starting qemu-system-x86_64")?;
    let deadline = Instant::now() + BOOT_TIMEOUT;
    loop {
        if child.try_wait()?.is_some() {
            return Ok(());
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("no end within {}s: QEMU killed", BOOT_TIMEOUT.as_secs());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn host_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_owned()
}

/// The sentinel lines of a log (`grep -a`: the serial log starts with escape codes).
fn cells_of(text: &str, kernel: &str) -> Vec<Cell> {
    text.lines()
        .filter_map(|l| l.find(&format!("{SENTINEL} kernel=")).map(|i| &l[i..]))
        .map(|l| {
            let field = |k: &str| {
                l.split_whitespace().find_map(|w| w.strip_prefix(&format!("{k}="))).unwrap_or("-").trim().to_owned()
            };
            let mut detail = field("detail");
            let secs = field("secs");
            if secs != "-" {
                detail = format!("{detail} {secs}s");
            }
            // A verifier cell's settings: what it verified.
            let settings = field("settings");
            if settings != "-" {
                detail = format!("{detail} ({settings})");
            }
            Cell { kernel: kernel.to_owned(), variant: field("variant"), hooks: field("hooks"), result: field("result"), detail }
        })
        .collect()
}

/// Missing variants become failures: the VM died, or never got there.
fn complete(mut found: Vec<Cell>, kernel: &str, text: &str) -> Vec<Cell> {
    let why = if text.contains("Kernel panic") {
        "kernel-panic (init crashed?)"
    } else if text.is_empty() {
        "no-output"
    } else {
        "no-sentinel"
    };
    for v in VARIANTS {
        if !found.iter().any(|c| c.variant == *v) {
            found.push(Cell { kernel: kernel.into(), variant: (*v).into(), hooks: "-".into(), result: "FAIL".into(), detail: why.into() });
        }
    }
    found
}

/// The lines the test binary printed, for a failure report, with the last lines of each
/// verifier log (the verdict is at its end; the whole log is in the serial log file).
fn vmtest_lines(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut keep = vec![false; lines.len()];
    for (i, l) in lines.iter().enumerate() {
        if l.contains("vmtest") || l.contains(SENTINEL) || l.contains("panic") {
            keep[i] = true;
            if i > 0 && !lines[i - 1].contains("vmtest") {
                for k in keep.iter_mut().take(i).skip(i.saturating_sub(8)) {
                    *k = true;
                }
            }
        }
    }
    lines
        .iter()
        .zip(keep)
        .filter(|(_, k)| *k)
        .map(|(l, _)| format!("    {}", l.chars().take(300).collect::<String>()))
        .collect::<Vec<_>>()
        .join("\n")
}

fn print_table(cells: &[Cell]) {
    println!("\nkernel matrix:");
    println!("  {:<28} {:<16} {:<24} {:<12} detail", "kernel", "variant", "hooks", "result");
    for c in cells {
        println!("  {:<28} {:<16} {:<24} {:<12} {}", c.kernel, c.variant, c.hooks, c.result, c.detail);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_sentinels_among_escape_codes() {
        let log = "\x1b[2J\x1bcSeaBIOS\nvmtest: tracepoint: get: ok\n\
                   L7TRACE-VMTEST kernel=6.1.0-50-amd64 variant=tracepoint hooks=tracepoint+tcp-kprobes result=PASS detail=scenarios-7/7 secs=2.1\n\
                   L7TRACE-VMTEST end kernel=6.1.0-50-amd64\n";
        let cells = complete(cells_of(log, "6.1"), "6.1", log);
        assert_eq!(cells.len(), VARIANTS.len());
        assert_eq!((cells[0].variant.as_str(), cells[0].result.as_str()), ("tracepoint", "PASS"));
        assert_eq!(cells[0].hooks, "tracepoint+tcp-kprobes");
        assert!(cells[1..].iter().all(|c| c.result == "FAIL" && c.detail == "no-sentinel"));
        let missing: Vec<&str> = cells[1..].iter().map(|c| c.variant.as_str()).collect();
        assert_eq!(missing, ["verifier", "verifier-filters", "verifier-iface", "kprobe"]);
    }

    #[test]
    fn each_verifier_configuration_is_a_cell_with_its_settings() {
        let log = "L7TRACE-VMTEST kernel=6.12.1 variant=verifier hooks=tracepoint result=PASS detail=accepted-44/44 settings=ringbuf+fast-path secs=0.6\n\
                   L7TRACE-VMTEST kernel=6.12.1 variant=verifier-filters hooks=tracepoint result=PASS detail=accepted-44/44 settings=ringbuf+fast-path+pid-filter secs=0.7\n\
                   L7TRACE-VMTEST kernel=6.12.1 variant=verifier-iface hooks=kprobe result=FAIL detail=accepted-43/44,refused:l7_sockfilter settings=perf+attribution-only secs=0.5\n";
        let cells = complete(cells_of(log, "6.12"), "6.12", log);
        let verifier: Vec<(&str, &str)> = cells.iter().filter(|c| c.variant.starts_with("verifier")).map(|c| (c.variant.as_str(), c.result.as_str())).collect();
        assert_eq!(verifier, [("verifier", "PASS"), ("verifier-filters", "PASS"), ("verifier-iface", "FAIL")]);
        assert_eq!(cells[1].detail, "accepted-44/44 0.7s (ringbuf+fast-path+pid-filter)");
        assert_eq!(cells[2].hooks, "kprobe");
        assert!(!cells[2].ok());
        // The hooks variants never reported: failures, not missing rows.
        assert!(cells[3..].iter().all(|c| c.result == "FAIL" && c.detail == "no-sentinel"));
    }

    #[test]
    fn newc_entries_are_aligned() {
        let mut a = Vec::new();
        cpio_entry(&mut a, 1, "init", 0o100755, (0, 0), b"abc");
        assert_eq!(a.len() % 4, 0);
        assert!(a.starts_with(b"070701"));
    }

    #[test]
    fn versions_order_numerically() {
        assert!(version_key("linux-image-6.1.0-50-amd64") > version_key("linux-image-6.1.0-47-amd64"));
        assert!(version_key("6.12.101+deb12") > version_key("6.12.99+deb12"));
    }
}
