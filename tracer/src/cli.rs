//! Command-line arguments.
use clap::Parser;

use crate::{hooks::HooksArg, loader::BufferKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RoleArg {
    Client,
    Server,
}

/// Trace HTTP/1.x exchanges of this machine's processes with eBPF.
#[derive(Debug, Parser)]
#[command(name = "l7trace", version, about)]
pub struct Cli {
    /// NDJSON stream on stdout, one exchange per line.
    #[arg(long, conflicts_with = "tui")]
    pub json: bool,
    /// Live terminal view (the default when stdout is a terminal; refused when it is not).
    #[arg(long)]
    pub tui: bool,
    /// Exchanges the live view keeps (the most recent).
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    pub max_rows: usize,
    /// Only these processes (repeatable; filtered in the kernel; a forking server's children are
    /// other pids).
    #[arg(long = "pid", value_name = "PID")]
    pub pids: Vec<u32>,
    /// Only connections with this local or remote port (repeatable; filtered in the kernel).
    #[arg(long = "port", value_name = "PORT")]
    pub ports: Vec<u16>,
    /// Only exchanges whose request's thread has this command name (repeatable).
    #[arg(long = "comm", value_name = "NAME")]
    pub comms: Vec<String>,
    /// Only exchanges seen from this side.
    #[arg(long, value_enum)]
    pub role: Option<RoleArg>,
    /// Kernel-to-user transport.
    #[arg(long, value_enum, default_value_t = BufferKind::Auto)]
    pub buffer: BufferKind,
    /// Kernel hooks for the syscall probes: tracepoints, kprobes, or (auto) tracepoints
    /// where the kernel has them and kprobes otherwise.
    #[arg(long, value_enum, default_value_t = HooksArg::Auto)]
    pub hooks: HooksArg,
    /// Capture packets on this interface (socket filter) instead of reading payloads in the
    /// syscall probes; those then only say which local process owns a connection. Sees
    /// other hosts', containers' and VMs' traffic through the interface.
    #[arg(long, value_name = "IFACE")]
    pub iface: Option<String>,
    /// With --iface: payload bytes kept per packet (at least 16); the rest is counted.
    #[arg(long, default_value_t = 65535, value_name = "BYTES")]
    pub snaplen: u32,
    /// Payload bytes copied per syscall (16 to 16384); the rest is counted.
    #[arg(long, default_value_t = 16384, value_name = "BYTES")]
    pub max_capture: u32,
    /// Body bytes kept per message in the record.
    #[arg(long, default_value_t = 4096, value_name = "BYTES")]
    pub max_body: usize,
    /// Emit a request without its response after this many seconds.
    #[arg(long, default_value_t = 10.0, value_name = "SECS")]
    pub response_timeout: f64,
    /// Forget a connection with no traffic for this many seconds.
    #[arg(long, default_value_t = 300.0, value_name = "SECS")]
    pub idle_timeout: f64,
    /// Tracked connections at most; the least recently active are evicted.
    #[arg(long, default_value_t = 65536, value_name = "N")]
    pub max_conns: usize,
    /// Unparsed bytes buffered per connection direction at most.
    #[arg(long, default_value_t = 1 << 20, value_name = "BYTES")]
    pub max_conn_buffer: usize,
    /// Bytes all connections together may buffer; beyond this, those holding most drop
    /// what they hold (counted in dropped_bytes, the messages cut marked).
    #[arg(long, default_value_t = 128 << 20, value_name = "BYTES")]
    pub max_total_buffer: usize,
    /// Also mask the value of this header (repeatable, any case). Authorization,
    /// Proxy-Authorization, Cookie, Set-Cookie and X-Api-Key are always masked.
    #[arg(long = "redact", value_name = "NAME")]
    pub redact: Vec<String>,
    /// Show secret header values as sent (no masking at all). Refused with --redact: a
    /// header named to be masked is never shown.
    #[arg(long, conflicts_with = "redact")]
    pub no_redact: bool,
}

pub fn secs_to_ns(s: f64) -> u64 {
    (s.max(0.0) * 1e9) as u64
}
