//! The `--iface` path as the event loop sees it: frames from the packet socket into flows,
//! syscall events into the attribution table, exchanges out as records.
use std::net::SocketAddr;

use super::{
    attribution::{Attribution, Owner},
    flows::{FlowConfig, FlowExchange, FlowTable},
    frame::parse_ethernet,
    socket::PacketSocket,
};
use crate::{
    events::{self, Event},
    pipeline::{comm_str, Filter, Process, Record, Source},
    redact::Redactor,
};

pub struct PacketPath {
    flows: FlowTable,
    owners: Attribution,
    filter: Filter,
    /// Masks secrets before any sink sees a record, as on the syscall path.
    redactor: Redactor,
    /// The ring block to read next.
    cursor: usize,
    clock: crate::output::Clock,
    ready: Vec<FlowExchange>,
    pub kernel_drops: u64,
    /// Frames read from the capture socket and syscall events read (who owns what).
    pub events: u64,
    pub frame_errors: u64,
    pub exchanges: u64,
    pub incomplete: u64,
    pub lost_bytes: u64,
    /// The socket said its interface went down (ENETDOWN); the loop looks at what became
    /// of it (`PacketSocket::link`) and clears this when it is up again.
    pub link_down: bool,
    /// Errors reading the capture socket, for the loop to say (`Sink::notice`).
    pub read_errors: Vec<String>,
    last_read_error: Option<String>,
}

/// Ring blocks read per poll before the loop looks at its other duties.
const BATCH_BLOCKS: usize = 4;

impl PacketPath {
    pub fn new(cfg: FlowConfig, filter: Filter) -> Self {
        PacketPath {
            flows: FlowTable::new(cfg),
            owners: Attribution::default(),
            filter,
            redactor: Redactor::default(),
            cursor: 0,
            clock: crate::output::Clock::new(),
            ready: Vec::new(),
            kernel_drops: 0,
            events: 0,
            frame_errors: 0,
            exchanges: 0,
            incomplete: 0,
            lost_bytes: 0,
            link_down: false,
            read_errors: Vec::new(),
            last_read_error: None,
        }
    }

    /// Replaces the default redaction (`--redact`, `--no-redact`).
    pub fn with_redactor(mut self, redactor: Redactor) -> Self {
        self.redactor = redactor;
        self
    }

    pub fn active_flows(&self) -> usize {
        self.flows.active()
    }

    pub fn uncaptured_bytes(&self) -> u64 {
        self.flows.stats.uncaptured_bytes
    }

    /// Lost bytes no exchange reported (a gap inside a head that was dropped).
    pub fn unreported_lost_bytes(&self) -> u64 {
        self.flows.stats.unreported_lost_bytes
    }

    pub fn dropped_bytes(&self) -> u64 {
        self.flows.stats.dropped_bytes
    }

    pub fn orphan_responses(&self) -> u64 {
        self.flows.stats.orphan_responses
    }

    pub fn evicted_flows(&self) -> u64 {
        self.flows.stats.evicted_flows
    }

    /// A syscall-probe event: only who owns which connection matters here.
    pub fn on_syscall_raw(&mut self, raw: &[u8], now_ns: u64) {
        self.events += 1;
        match events::decode(raw) {
            Ok(Event::Data { meta, .. }) => self.owners.learn(&meta),
            Ok(Event::Close { meta, .. }) => self.owners.closed(&meta, now_ns),
            Err(_) => self.frame_errors += 1,
        }
    }

    /// Reads the ring blocks the kernel handed over, up to BATCH_BLOCKS; true when that
    /// many were read (more may wait). Finished exchanges wait in a queue for
    /// `emit_ready`: the syscall events that name their processes are read in between.
    pub fn poll(&mut self, sock: &PacketSocket) -> bool {
        // Frames carry wall-clock times; the offset to the monotonic clock is taken afresh
        // for each read, so a step of the wall clock (NTP) does not shift every later
        // frame against the monotonic timeouts.
        self.clock = crate::output::Clock::new();
        // What the ring holds is read all the same: frames from before the link went down.
        match sock.take_error() {
            None => {}
            Some(e) if e.raw_os_error() == Some(libc::ENETDOWN) => self.link_down = true,
            Some(e) => {
                // Said when it changes, not at every poll.
                let said = format!("l7trace: warning: --iface {}: reading the capture socket: {e}", sock.name);
                if self.last_read_error.as_ref() != Some(&said) {
                    self.last_read_error = Some(said.clone());
                    self.read_errors.push(said);
                }
            }
        }
        for _ in 0..BATCH_BLOCKS {
            let Some(mut block) = sock.next_block(&mut self.cursor) else {
                return false;
            };
            while let Some((frame, got)) = block.next_frame() {
                self.events += 1;
                // On loopback each packet shows up twice; keep the incoming copy (the
                // filter drops the outgoing one already; this is the safety net).
                if got.outgoing && sock.loopback {
                    continue;
                }
                // The frame's arrival, not the read's: a block holds frames from a span of time.
                let ts = self.clock.monotonic(got.ts_real_ns);
                let Ok(seg) = parse_ethernet(frame, got.frame_len) else {
                    self.frame_errors += 1;
                    continue;
                };
                let ready = &mut self.ready;
                self.flows.on_segment(&seg, ts, &mut |x| ready.push(x));
            }
        }
        true
    }

    pub fn tick(&mut self, sock: &PacketSocket, now_ns: u64) {
        self.count_drops(sock);
        self.owners.expire(now_ns);
        let ready = &mut self.ready;
        self.flows.tick(now_ns, &mut |x| ready.push(x));
    }

    /// Everything pending is emitted (exit); the socket's last drops are counted.
    pub fn flush(&mut self, sock: &PacketSocket, now_ns: u64) {
        self.count_drops(sock);
        let ready = &mut self.ready;
        self.flows.flush(now_ns, &mut |x| ready.push(x));
    }

    /// Stamped when read, not with the loop's earlier `now`: a drop between the two would
    /// be dated before frames it followed, and those would clear it.
    fn count_drops(&mut self, sock: &PacketSocket) {
        let n = sock.drops();
        if n > 0 {
            self.kernel_drops += n;
            self.flows.kernel_dropped(crate::output::monotonic_ns());
        }
    }

    /// Attributes and emits the finished exchanges. Call after reading the syscall events:
    /// a process's event about a connection precedes the packets that finish its exchange
    /// (it read the request before it sent the response).
    pub fn emit_ready(&mut self, emit: &mut impl FnMut(Record)) {
        for mut x in self.ready.drain(..) {
            self.redactor.apply(&mut x.exchange);
            let Some(owner) = pick(&self.filter, self.owners.both(x.client, x.server)) else {
                continue;
            };
            let mut record = record(x.client, x.server, owner, x.exchange);
            if x.in_flight {
                record.in_flight = true;
                emit(record);
                continue;
            }
            self.exchanges += 1;
            if !record.exchange.complete() {
                self.incomplete += 1;
            }
            self.lost_bytes = self.lost_bytes.saturating_add(record.exchange.lost_bytes());
            emit(record);
        }
    }
}

/// The owner a record is attributed to, from the local owners of its ends (server first),
/// or None to drop the record. Without `--pid`/`--comm`/`--role` every exchange is kept,
/// attributed to the server side if local, else the client side, else nobody. With them,
/// the first end whose process passes them: when both ends are local, `--comm curl` or
/// `--role client` finds the client, as the syscall path would.
fn pick(filter: &Filter, ends: [Option<Owner>; 2]) -> Option<Option<Owner>> {
    if filter.pids.is_empty() && filter.comms.is_empty() && filter.role.is_none() {
        return Some(ends[0].or(ends[1]));
    }
    let passes = |o: &Owner| {
        (filter.pids.is_empty() || filter.pids.contains(&o.pid))
            && (filter.comms.is_empty() || filter.comms.iter().any(|c| c.as_slice() == comm_str(&o.comm)))
            && filter.role.is_none_or(|r| o.role == Some(r))
    };
    ends.into_iter().flatten().find(passes).map(Some)
}

fn record(
    client: SocketAddr,
    server: SocketAddr,
    owner: Option<Owner>,
    exchange: crate::protocols::Exchange,
) -> Record {
    Record {
        source: Source::Packet,
        role: owner.and_then(|o| o.role),
        process: owner.map(|o| Process { pid: o.pid, tid: o.tid, comm: o.comm }),
        client,
        server,
        exchange,
        conn: flow_id(client, server),
        in_flight: false,
    }
}

fn flow_id(client: SocketAddr, server: SocketAddr) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (client, server).hash(&mut h);
    h.finish()
}
