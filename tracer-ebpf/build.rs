// Re-run when bpf-linker changes, so a newly installed linker rebuilds the object.
fn main() {
    if let Ok(p) = which::which("bpf-linker") {
        println!("cargo:rerun-if-changed={}", p.display());
    }
}
