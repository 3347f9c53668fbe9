#![no_std]
// The programs are the `tracer` binary target (src/main.rs); this empty library only lets
// the userspace crate list this crate as a build-dependency, so its build.rs re-runs on change.
