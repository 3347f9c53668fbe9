//! `--iface`: packets from a socket filter on an AF_PACKET socket -> TCP flows -> exchanges,
//! with process attribution from the syscall probes where an endpoint is local.
pub mod attribution;
pub mod flows;
pub mod frame;
pub mod path;
pub mod socket;

/// The packet path's tables are keyed by addresses and ports that any host on the wire
/// chooses: hashed with a per-process random seed (foldhash, as hashbrown's own default),
/// which keeps crafted collisions out at a fraction of SipHash's cost.
pub type AddrMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
