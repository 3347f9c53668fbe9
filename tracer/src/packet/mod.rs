//! `--iface`: packets from a socket filter on an AF_PACKET socket -> TCP flows -> exchanges,
//! with process attribution from the syscall probes where an endpoint is local.
pub mod attribution;
pub mod flows;
pub mod frame;
pub mod path;
pub mod socket;
