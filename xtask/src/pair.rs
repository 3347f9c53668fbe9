//! `xtask bench-pair PORT ITERATIONS` (the bench's own helper, not for users): a TCP pair
//! on loopback in one process, for the probes' cost per event. The client writes a POST
//! with a 1 KiB body and reads a 38-byte answer, ITERATIONS times; the server reads each
//! request whole and answers it. Four calls per iteration, each one event when traced.
//! Prints `pair: iterations=N cpu_ns=T` (T: both threads' CPU time, user and system).
//! The bench runs it under `taskset`, so both threads share one CPU and take turns.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};

const ANSWER: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";

fn request() -> Vec<u8> {
    let mut req = b"POST /pair HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1024\r\n\r\n".to_vec();
    req.extend((0..1024).map(|i| b'a' + (i % 26) as u8));
    req
}

/// This thread's CPU time in ns (the first field of its schedstat: time on a CPU).
fn thread_cpu_ns() -> Result<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").context("reading /proc/thread-self/schedstat")?;
    s.split_whitespace().next().and_then(|v| v.parse().ok()).context("schedstat")
}

pub fn run(args: &[String]) -> Result<ExitCode> {
    let [port, iterations] = args else { bail!("usage: xtask bench-pair PORT ITERATIONS") };
    let port: u16 = port.parse().context("PORT")?;
    let iterations: u64 = iterations.parse().context("ITERATIONS")?;
    let cpu_ns = pair(port, iterations)?;
    println!("pair: iterations={iterations} cpu_ns={cpu_ns}");
    Ok(ExitCode::SUCCESS)
}

/// Runs the pair on 127.0.0.1:`port`; both threads' CPU time in ns.
fn pair(port: u16, iterations: u64) -> Result<u64> {
    let req = request();
    let listener = TcpListener::bind(("127.0.0.1", port)).with_context(|| format!("binding 127.0.0.1:{port}"))?;
    let req_len = req.len() as u64;
    let server = std::thread::spawn(move || -> Result<u64> {
        let t0 = thread_cpu_ns()?;
        let (mut conn, _) = listener.accept()?;
        let mut buf = [0u8; 4096];
        let mut got = 0u64;
        while got < iterations * req_len {
            let n = conn.read(&mut buf)?;
            if n == 0 {
                bail!("the client closed after {got} bytes");
            }
            got += n as u64;
            if got % req_len == 0 {
                conn.write_all(ANSWER)?;
            }
        }
        Ok(thread_cpu_ns()? - t0)
    });
    let t0 = thread_cpu_ns()?;
    let mut conn = TcpStream::connect(("127.0.0.1", port))?;
    conn.set_nodelay(true)?;
    let mut answer = [0u8; ANSWER.len()];
    for _ in 0..iterations {
        conn.write_all(&req)?;
        conn.read_exact(&mut answer)?;
    }
    let client_ns = thread_cpu_ns()? - t0;
    let server_ns = server.join().map_err(|_| anyhow::anyhow!("the server thread panicked"))??;
    Ok(client_ns + server_ns)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_pair_runs_its_iterations_and_counts_its_cpu() {
        let port = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap().local_addr().unwrap().port();
        let ns = super::pair(port, 500).unwrap();
        // 2,000 calls on loopback cannot take no CPU time, nor a minute of it.
        assert!(ns > 0 && ns < 60_000_000_000, "{ns}");
        let req = super::request();
        let head = req.len() - 1024;
        assert!(req[..head].ends_with(b"Content-Length: 1024\r\n\r\n"), "a head, then the 1 KiB body it declares");
    }
}
