//! Which local process owns a captured connection, from the syscall probes running in
//! attribution-only mode (one payload-free event per connection).
use std::net::SocketAddr;

use super::AddrMap;
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
    owners: AddrMap<(SocketAddr, SocketAddr), Owner>,
}

/// Closed connections are remembered this long, so exchanges that complete after the close
/// (the packet path may wait out the 200 ms reorder window, and its ring hands frames over
/// up to 15 ms late) still find their process. Ten times that: every closed connection
/// costs an entry for this long, and with `Connection: close` at 14k connections/s (two
/// local ends each) the 30 s kept before held 260k entries, 55 MiB of table, for exchanges
/// long emitted.
const KEEP_CLOSED_NS: u64 = 2_000_000_000;
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
        // A burst of connections grew the table; give the room back once it is over.
        if self.owners.capacity() > 4 * self.owners.len() + 1024 {
            self.owners.shrink_to(2 * self.owners.len());
        }
    }

    pub fn len(&self) -> usize {
        self.owners.len()
    }

    pub fn is_empty(&self) -> bool {
        self.owners.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::ConnKey;

    fn meta(port: u16) -> ConnMeta {
        ConnMeta {
            key: ConnKey { sock: port as u64, conn_id: 1 },
            pid: 7,
            fd: 3,
            tid: 7,
            comm: *b"srv\0\0\0\0\0\0\0\0\0\0\0\0\0",
            role: Some(Role::Server),
            local: SocketAddr::from(([127, 0, 0, 1], 80)),
            remote: SocketAddr::from(([127, 0, 0, 1], port)),
            preexisting: false,
        }
    }

    #[test]
    fn closed_owners_are_kept_for_late_exchanges_then_forgotten() {
        let mut a = Attribution::default();
        let (open, closed) = (meta(1000), meta(1001));
        a.learn(&open);
        a.learn(&closed);
        a.closed(&closed, 1_000);
        a.expire(1_000 + KEEP_CLOSED_NS - 1);
        assert!(a.both(closed.remote, closed.local)[0].is_some(), "still within the time kept");
        a.expire(1_000 + KEEP_CLOSED_NS);
        assert!(a.both(closed.remote, closed.local)[0].is_none(), "forgotten after it");
        // Open connections are never expired by time.
        a.expire(u64::MAX);
        assert_eq!(a.both(open.remote, open.local)[0].map(|o| o.pid), Some(7));
    }

    #[test]
    fn the_table_gives_back_room_after_a_burst() {
        let mut a = Attribution::default();
        for port in 1..=50_000u16 {
            let m = meta(port);
            a.learn(&m);
            a.closed(&m, 0);
        }
        let grown = a.owners.capacity();
        a.expire(KEEP_CLOSED_NS);
        assert!(a.is_empty());
        assert!(a.owners.capacity() < grown / 8, "capacity {} after the burst, {grown} during it", a.owners.capacity());
    }
}
