use std::process::ExitCode;

use clap::Parser;
use tracer::{cli::Cli, privileges, run};

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // No colour codes in a log file or a pipe.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("L7TRACE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    // A wrong interface name is said first: it needs no privilege, nor anything loaded.
    if let Some(Err(e)) = cli.iface.as_deref().map(tracer::packet::socket::ifindex) {
        eprintln!("l7trace: error: --iface: {e}");
        return ExitCode::from(1);
    }
    if let Some(why) = usage_error(&cli) {
        eprintln!("l7trace: error: {why}");
        return ExitCode::from(1);
    }
    if let Some(why) = privileges::missing(cli.iface.is_some()) {
        eprintln!("{why}");
        return ExitCode::from(1);
    }
    // After the privilege check (said first when both are wrong): the processes are
    // watched from here on.
    let pids = match tracer::pids::check(&cli.pids) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("l7trace: error: {e}");
            return ExitCode::from(1);
        }
    };
    match run::run(&cli, pids) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // The chain, each cause once: many errors already name their cause.
            let mut line = e.to_string();
            for cause in e.chain().skip(1).map(|c| c.to_string()) {
                if !line.contains(&cause) {
                    line = format!("{line}: {cause}");
                }
            }
            eprintln!("l7trace: error: {line}");
            ExitCode::from(1)
        }
    }
}

/// Options that cannot work, said before anything needs privileges or is loaded.
fn usage_error(cli: &Cli) -> Option<String> {
    if cli.tui && !std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        return Some("--tui: stdout is not a terminal (--json writes the stream to a file or a pipe)".into());
    }
    let ports: std::collections::BTreeSet<u16> = cli.ports.iter().copied().collect();
    if ports.len() > tracer_common::MAX_FILTER_PORTS {
        return Some(format!("--port: at most {} ports can be selected ({} given)", tracer_common::MAX_FILTER_PORTS, ports.len()));
    }
    if ports.contains(&0) {
        return Some("--port 0: no connection has port 0".into());
    }
    // Fewer bytes than the shortest start line ("GET / HTTP/1.1", "HTTP/1.1 200 OK") would
    // make no record at all; more than the kernel side's bound would be cut silently.
    let max = tracer_common::MAX_CAPTURE as u32;
    if !(MIN_CAPTURE..=max).contains(&cli.max_capture) {
        return Some(format!("--max-capture {}: between {MIN_CAPTURE} and {max} bytes", cli.max_capture));
    }
    if cli.snaplen < MIN_CAPTURE {
        return Some(format!("--snaplen {}: at least {MIN_CAPTURE} bytes", cli.snaplen));
    }
    for (name, secs) in [("--response-timeout", cli.response_timeout), ("--idle-timeout", cli.idle_timeout)] {
        if !secs.is_finite() || tracer::cli::secs_to_ns(secs) == 0 {
            return Some(format!("{name} {secs}: a number of seconds above 0"));
        }
    }
    let bounds = [
        ("--max-conns", cli.max_conns),
        ("--max-rows", cli.max_rows),
        ("--max-conn-buffer", cli.max_conn_buffer),
        ("--max-total-buffer", cli.max_total_buffer),
    ];
    bounds.iter().find(|(_, n)| *n == 0).map(|(name, _)| format!("{name} 0: at least 1"))
}

/// The least `--max-capture` and `--snaplen`: the shortest start lines whole.
const MIN_CAPTURE: u32 = 16;
