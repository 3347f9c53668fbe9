//! Shared harness of the real-kernel integration tests: run l7trace, make traffic with
//! servers and clients the test controls, and check the records it prints.
//!
//! Each test runs l7trace with `--port` of its own server, so it sees only its traffic;
//! the tests share the kernel and run with `--test-threads=1`.
#![allow(dead_code, unused_imports)]

pub mod check;
pub mod client;
pub mod nginx;
pub mod procfs;
pub mod server;
pub mod trace;

pub use check::*;
pub use client::*;
pub use nginx::Nginx;
pub use procfs::*;
pub use server::{HttpServer, Reply, Request};
pub use trace::{l7trace, serve_traced, Trace};

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// The kernel id of the calling thread.
pub fn gettid() -> u32 {
    // SAFETY: gettid has no preconditions and cannot fail.
    unsafe { libc::gettid() as u32 }
}

/// The calling thread's command name, as the kernel reports it (at most 15 bytes).
pub fn thread_comm() -> String {
    std::fs::read_to_string("/proc/thread-self/comm")
        .expect("read /proc/thread-self/comm")
        .trim_end_matches('\n')
        .to_owned()
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local_addr").port()
}

/// A directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("l7trace-test-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Deterministic pseudo-random bytes (xorshift64), so failures reproduce.
pub fn pseudo_random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}
