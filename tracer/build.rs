//! Builds the eBPF crate with Debian's Rust (see ../shared/notes/toolchain.md, README.md).
use anyhow::{anyhow, Context as _};
use aya_build::{Package, Toolchain};

fn main() -> anyhow::Result<()> {
    let cargo_metadata::Metadata { packages, .. } = cargo_metadata::MetadataCommand::new()
        .no_deps()
        .exec()
        .context("cargo metadata")?;
    let ebpf = packages
        .into_iter()
        .find(|p| p.name.as_str() == "tracer-ebpf")
        .ok_or_else(|| anyhow!("tracer-ebpf package not found"))?;
    let root_dir = ebpf
        .manifest_path
        .parent()
        .ok_or_else(|| anyhow!("tracer-ebpf manifest has no parent"))?
        .as_str()
        .to_owned();
    // aya-ebpf and the programs (the `tracer` binary of tracer-ebpf) need
    // `asm_experimental_arch`; unlock it for those crates only (a list, not "1" or the
    // package's name), so aya-build does not switch to `-Z build-std` (which needs sources
    // this toolchain lacks).
    std::env::set_var("RUSTC_BOOTSTRAP", "aya_ebpf,tracer");
    aya_build::build_ebpf(
        [Package { name: "tracer-ebpf", root_dir: &root_dir, ..Default::default() }],
        Toolchain::Custom("debian-web"),
    )
}
