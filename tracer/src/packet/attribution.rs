//! Which local process owns a captured connection, from the syscall probes running in
//! attribution-only mode (one payload-free event per connection).
use std::{collections::HashMap, net::SocketAddr};

use crate::{events::ConnMeta, protocols::Role};

#[derive(Debug, Clone, Copy)]
pub struct Owner {
    pub pid: u32,
    pub tid: u32,
    pub comm: [u8; 16],
    pub role: Option<Role>,
    /// When the connection closed (monotonic ns); kept a while for late exchanges.
    closed_ns: Option<u64>,
}

/// Keyed by (local, remote) as the owning process sees them.
#[derive(Default)]
pub struct Attribution {
    owners: HashMap<(SocketAddr, SocketAddr), Owner>,
}

/// Closed connections are remembered this long, so exchanges that complete after the close
/// (the packet path waits out the reorder window) still find their process.
const KEEP_CLOSED_NS: u64 = 30_000_000_000;
const MAX_OWNERS: usize = 1 << 18;

impl Attribution {
    pub fn learn(&mut self, meta: &ConnMeta) {
        if self.owners.len() >= MAX_OWNERS {
            self.owners.retain(|_, o| o.closed_ns.is_none());
            // Still half full (closes were missed): start over rather than rescan the table
            // on every insert. Connections known so far lose their process (their one
            // attribution event was sent); new ones are learnt as they start.
            if self.owners.len() >= MAX_OWNERS / 2 {
                self.owners.clear();
            }
        }
        self.owners.insert(
            (meta.local, meta.remote),
            Owner { pid: meta.pid, tid: meta.tid, comm: meta.comm, role: meta.role, closed_ns: None },
        );
    }

    pub fn closed(&mut self, meta: &ConnMeta, now_ns: u64) {
        if let Some(o) = self.owners.get_mut(&(meta.local, meta.remote)) {
            o.closed_ns = Some(now_ns);
        }
    }

    /// The local owners of both ends, server first (both local: a client and a server on
    /// this host talking through the interface).
    pub fn both(&self, client: SocketAddr, server: SocketAddr) -> [Option<Owner>; 2] {
        [
            self.owners.get(&(server, client)).map(|o| Owner { role: Some(Role::Server), ..*o }),
            self.owners.get(&(client, server)).map(|o| Owner { role: Some(Role::Client), ..*o }),
        ]
    }

    pub fn expire(&mut self, now_ns: u64) {
        self.owners.retain(|_, o| o.closed_ns.is_none_or(|t| now_ns.saturating_sub(t) < KEEP_CLOSED_NS));
    }

    pub fn len(&self) -> usize {
        self.owners.len()
    }

    pub fn is_empty(&self) -> bool {
        self.owners.is_empty()
    }
}
