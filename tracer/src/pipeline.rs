//! Recorded kernel events -> exchanges: routes events to per-connection parsers, applies the
//! userspace filters, bounds the connection table. No aya, no terminal.
use std::{collections::HashMap, net::SocketAddr};

use crate::{
    events::{self, ConnKey, ConnMeta, Event, StreamEnds},
    protocols::{client_by_ports, listening_ports, http1::Http1Conn, Budget, Direction, Exchange, Limits, LossWatch, Role},
    redact::Redactor,
};

/// Connection keys are a kernel pointer and a kernel timestamp, not attacker-chosen
/// bytes: a multiply-xorshift mix is enough, and SipHash showed in profiles.
#[derive(Default, Clone, Copy)]
pub struct BuildConnHasher;

#[derive(Default)]
pub struct ConnHasher(u64);

impl std::hash::Hasher for ConnHasher {
    fn finish(&self) -> u64 {
        let mut x = self.0;
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^ (x >> 33)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(b as u64);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(29) ^ v).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

impl std::hash::BuildHasher for BuildConnHasher {
    type Hasher = ConnHasher;
    fn build_hasher(&self) -> ConnHasher {
        ConnHasher(0)
    }
}

/// Where a record's bytes were seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Syscall,
    Packet,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Syscall => "syscall",
            Source::Packet => "packet",
        }
    }
}

/// The local process on one end of a connection: for the syscall path the thread that
/// wrote or read the request's first byte, for packets the one that first used the
/// connection.
pub use crate::protocols::Process;

/// An exchange with the connection and process it belongs to.
#[derive(Debug, Clone)]
pub struct Record {
    pub source: Source,
    /// The side the process is on; None for packets between processes we do not know.
    pub role: Option<Role>,
    pub process: Option<Process>,
    pub client: SocketAddr,
    pub server: SocketAddr,
    pub exchange: Exchange,
    /// Tells connections apart (opaque): with the request's first timestamp, it matches an
    /// in-flight announcement to its finished exchange.
    pub conn: u64,
    /// Only the request head, announced as soon as it parsed (`Config::announce_requests`);
    /// the finished exchange follows as its own record.
    pub in_flight: bool,
}

impl Record {
    /// A record of the connection described by `meta`, attributed to the thread that
    /// wrote or read its request's first byte (not the connection's first user: a socket
    /// passed on, or a thread renamed, changes who that is).
    pub fn from_syscall(meta: &ConnMeta, role: Role, exchange: Exchange) -> Self {
        let conn = meta.key.sock ^ meta.key.conn_id.rotate_left(32);
        let (client, server) = match role {
            Role::Client => (meta.local, meta.remote),
            Role::Server => (meta.remote, meta.local),
        };
        Record {
            source: Source::Syscall,
            role: Some(role),
            process: Some(exchange.request.process),
            client,
            server,
            exchange,
            conn,
            in_flight: false,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only these command names (exact, as the kernel reports them: at most 15 bytes),
    /// applied to each exchange by the thread of its request (the thread that moved its
    /// first byte): a socket passed to another process, or a thread renamed, changes the
    /// command name within one connection.
    pub comms: Vec<Vec<u8>>,
    pub role: Option<Role>,
    /// Only these processes (`--pid`). The syscall probes apply it in the kernel; the
    /// packet path, which sees every host's traffic, applies it to the attributed owner.
    pub pids: Vec<u32>,
}

impl Filter {
    /// Whether `comm` passes `--comm`.
    pub fn comm_ok(&self, comm: &[u8; 16]) -> bool {
        self.comms.is_empty() || self.comms.iter().any(|c| c.as_slice() == comm_str(comm))
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Config {
    pub limits: Limits,
    /// Emit an in-flight record per request head as soon as it parses (the live view).
    pub announce_requests: bool,
    pub max_conns: usize,
    pub idle_timeout_ns: u64,
}

/// Counters that the summary and the live view show.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub events: u64,
    pub decode_errors: u64,
    pub exchanges: u64,
    pub incomplete: u64,
    /// Bytes lost inside reported exchanges.
    pub lost_bytes: u64,
    /// Bytes dropped by the per-connection buffer limit.
    pub dropped_bytes: u64,
    pub evicted_conns: u64,
    /// Responses of ended connections that no request could be paired with.
    pub orphan_responses: u64,
    /// Sends whose place in the stream was not known (`FLAG_UNORDERED`), taken as lost.
    pub unordered_events: u64,
}

struct Conn {
    meta: ConnMeta,
    role: Role,
    /// None: filtered out, events are ignored until the connection closes.
    parser: Option<Http1Conn>,
    last_ns: u64,
    /// Lost bytes already counted through this connection's exchanges.
    lost_counted: u64,
    /// When its socket closed: it ends `CLOSE_GRACE_NS` later, so bytes the process reads
    /// after the close (a half-closed client reading the answer) still count.
    closing: Option<u64>,
    /// Events the kernel could not deliver since this connection's last ones.
    losses: LossWatch,
    /// Bytes its parser held after its last event, as counted in the table's budget.
    held: usize,
    /// Nothing more of it will be parsed, and the kernel side was asked to stop copying it
    /// (`done_with`).
    given_up: bool,
}

impl Conn {
    /// A client whose socket closed may still read answers that came before the close;
    /// a server's cannot send any more.
    fn reads_after_close(&self) -> bool {
        self.closing.is_some() && self.role == Role::Client
    }

    /// Periodic work; a client reading after its close has its requests not timed out
    /// meanwhile (the close, when it ends, says what became of them).
    fn tick(&mut self, now_ns: u64) {
        let reading = self.reads_after_close();
        if let Some(p) = self.parser.as_mut() {
            if reading {
                p.on_tick_closed(now_ns);
            } else {
                p.on_tick(now_ns);
            }
        }
    }
}

/// How long a closed connection waits for reads of bytes that arrived before its close;
/// a client's whose requests still wait for their answers waits the response timeout (one
/// that reads the answer late: the server's FIN closed its socket before it read).
const CLOSE_GRACE_NS: u64 = 500_000_000;

pub struct Pipeline {
    cfg: Config,
    filter: Filter,
    /// Boxed: a connection's parser state is large, and the table moves its values when
    /// it grows (a memcpy per entry per rehash, and per insert).
    conns: HashMap<ConnKey, Box<Conn>, BuildConnHasher>,
    drained: Vec<Exchange>,
    /// Applied to every record before any sink sees it; masks secrets by default.
    redactor: Redactor,
    /// Closes held until the current read of the kernel buffers ends (`end_round`): with
    /// per-CPU perf buffers a close can be read before data another CPU wrote earlier.
    defer_closes: bool,
    closing: Vec<(ConnKey, u64, Option<StreamEnds>)>,
    /// What the connections hold together (`Limits::max_total_buffer`).
    budget: Budget,
    /// Where the parsers of connections forgotten while still open (idle, evicted) had got
    /// to, so that one picked up again starts there, not missing what they reported.
    forgotten: HashMap<ConnKey, [u64; 2], BuildConnHasher>,
    /// Connections nothing more of which will be parsed (`give_up`) since the caller last
    /// took them (`done_with`): the kernel side can stop copying their bytes. At most
    /// MAX_DONE_WITH wait.
    done_with: Vec<ConnKey>,
    pub stats: Stats,
}

const MAX_DONE_WITH: usize = 4096;

/// Queues `conn` for the kernel side to stop copying, once, when nothing of it will be
/// parsed: it left HTTP (an upgrade, or not HTTP), or it has no parser (`--role` selects
/// the other side). With the queue full it is queued at a later tick.
fn give_up(key: ConnKey, conn: &mut Conn, done_with: &mut Vec<ConnKey>) {
    if !conn.given_up && conn.parser.as_ref().is_none_or(Http1Conn::left_http) && done_with.len() < MAX_DONE_WITH {
        conn.given_up = true;
        done_with.push(key);
    }
}

impl Pipeline {
    pub fn new(cfg: Config, filter: Filter) -> Self {
        Pipeline {
            cfg,
            filter,
            conns: HashMap::default(),
            drained: Vec::new(),
            redactor: Redactor::default(),
            defer_closes: false,
            closing: Vec::new(),
            budget: Budget::default(),
            forgotten: HashMap::default(),
            done_with: Vec::new(),
            stats: Stats::default(),
        }
    }

    /// The connections that left HTTP (upgraded, or not HTTP), or that `--role` leaves
    /// out, since the last call, each once: nothing more of theirs will be parsed.
    pub fn done_with(&mut self) -> std::vec::Drain<'_, ConnKey> {
        self.done_with.drain(..)
    }

    /// Replaces the default redaction (`--redact`, `--no-redact`).
    pub fn with_redactor(mut self, redactor: Redactor) -> Self {
        self.redactor = redactor;
        self
    }

    pub fn active_conns(&self) -> usize {
        self.conns.len()
    }

    /// One raw record from the kernel.
    pub fn on_raw(&mut self, raw: &[u8], sink: &mut impl FnMut(Record)) {
        self.stats.events += 1;
        match events::decode(raw) {
            Ok(ev) => self.on_event(ev, sink),
            Err(e) => {
                self.stats.decode_errors += 1;
                tracing::debug!("dropping kernel record: {e}");
            }
        }
    }

    pub fn on_event(&mut self, ev: Event<'_>, sink: &mut impl FnMut(Record)) {
        match ev {
            Event::Data { meta, ts_ns, dir, pos, len, data, unordered, .. } => {
                // Eviction scans the table, so it is checked only when it is full.
                if self.conns.len() >= self.cfg.max_conns && !self.conns.contains_key(&meta.key) {
                    self.make_room(sink);
                }
                let (cfg, filter, forgotten) = (&self.cfg, &self.filter, &mut self.forgotten);
                let conn = self.conns.entry(meta.key).or_insert_with(|| {
                    let mut conn = new_conn(cfg, filter, meta, ts_ns);
                    let at = if forgotten.is_empty() { None } else { forgotten.remove(&meta.key) };
                    if let (Some(at), Some(p)) = (at, conn.parser.as_mut()) {
                        p.start_at(at);
                    }
                    conn
                });
                conn.last_ns = ts_ns;
                let mut over_budget = false;
                if unordered {
                    // Not passed on: the stream has a hole there, as if it was lost (the
                    // parser resynchronises after it), rather than bytes out of place.
                    self.stats.unordered_events += 1;
                } else if let Some(p) = conn.parser.as_mut() {
                    // In order: the stream's front, from after any loss report it follows.
                    conn.losses.seen(dir, ts_ns);
                    if !p.is_done() {
                        p.on_data(dir, pos, len, data, ts_ns, Process { pid: meta.pid, tid: meta.tid, comm: meta.comm });
                        let held = p.held_bytes();
                        over_budget = self.budget.changed(std::mem::replace(&mut conn.held, held), held, self.cfg.limits.max_total_buffer);
                    }
                }
                give_up(meta.key, conn, &mut self.done_with);
                emit(conn, &mut self.drained, &mut self.stats, &self.redactor, &self.filter, sink);
                if over_budget {
                    // What the connections shed is emitted at the next tick.
                    let max = self.cfg.limits.max_total_buffer;
                    let conns = self.conns.values_mut().filter_map(|c| c.parser.as_mut().map(|p| (p, &mut c.held)));
                    self.budget.shed(max, conns);
                }
            }
            Event::Close { meta, ts_ns, ends } if self.defer_closes => self.closing.push((meta.key, ts_ns, ends)),
            Event::Close { meta, ts_ns, ends } => self.close(meta.key, ts_ns, ends, sink),
        }
    }

    /// Hold closes until `end_round` (perf buffers: per-CPU order only).
    pub fn defer_closes(&mut self, on: bool) {
        self.defer_closes = on;
    }

    /// Every kernel buffer has been read once: apply the closes held meanwhile.
    pub fn end_round(&mut self, sink: &mut impl FnMut(Record)) {
        let mut closing = std::mem::take(&mut self.closing);
        for (key, ts_ns, ends) in closing.drain(..) {
            self.close(key, ts_ns, ends, sink);
        }
        self.closing = closing;
    }

    /// The socket closed. A connection with nothing in progress ends now; one waiting for
    /// bytes (a response to a request, the rest of a message) ends after `CLOSE_GRACE_NS`
    /// (`tick`) or at exit, so what the process reads after the close still counts.
    /// Bytes before the streams' ends that never came (events lost with the ring full, at
    /// the end of a stream, where no later event shows the hole) are a gap.
    fn close(&mut self, key: ConnKey, ts_ns: u64, ends: Option<StreamEnds>, sink: &mut impl FnMut(Record)) {
        let Some(conn) = self.conns.get_mut(&key) else {
            self.forgotten.remove(&key);
            return;
        };
        conn.closing.get_or_insert(ts_ns);
        if let (Some(p), Some(ends)) = (conn.parser.as_mut(), ends) {
            p.on_end(Direction::Egress, ends.egress, ts_ns);
            p.on_end(Direction::Ingress, ends.ingress, ts_ns);
        }
        if conn.parser.as_ref().is_none_or(|p| p.is_idle()) {
            if let Some(conn) = self.conns.remove(&key) {
                self.end_conn(conn, ts_ns, sink);
            }
        }
    }

    /// Ends a connection: closed if its socket closed, abandoned otherwise (exit, eviction).
    fn end_conn(&mut self, mut conn: Box<Conn>, now_ns: u64, sink: &mut impl FnMut(Record)) {
        self.budget.release(conn.held);
        if let Some(p) = conn.parser.as_mut() {
            match conn.closing {
                Some(ts) => p.on_close(ts.max(conn.last_ns)),
                // Its end never came, and events were lost after its last ones: the
                // rest of what it had in progress may be among them.
                None => match conn.losses.suspects(now_ns, self.cfg.limits.reorder_timeout_ns) {
                    Some(lost) => p.on_abandon_after_loss(now_ns, lost),
                    None => p.on_abandon(now_ns),
                },
            }
        }
        self.emit_conn(&mut conn, sink);
    }

    /// Periodic work: response timeouts, reorder timeouts, idle eviction.
    pub fn tick(&mut self, now_ns: u64, sink: &mut impl FnMut(Record)) {
        let idle = self.cfg.idle_timeout_ns;
        let mut idle_keys = Vec::new();
        let mut closed_keys = Vec::new();
        for (key, conn) in self.conns.iter_mut() {
            conn.tick(now_ns);
            // A tick may end HTTP too (a paused 101 decided, a gap's bytes passed over).
            give_up(*key, conn, &mut self.done_with);
            let waiting = conn.reads_after_close() && conn.parser.as_ref().is_some_and(Http1Conn::awaiting_response);
            let last = conn.closing.map_or(conn.last_ns, |c| c.max(conn.last_ns));
            let grace = if waiting { CLOSE_GRACE_NS.max(self.cfg.limits.response_timeout_ns) } else { CLOSE_GRACE_NS };
            if conn.closing.is_some() && now_ns.saturating_sub(last) > grace {
                closed_keys.push(*key);
            } else if conn.given_up && now_ns.saturating_sub(conn.last_ns) > CLOSE_GRACE_NS {
                // Given up, and what was in the buffer before has been read: nothing more
                // will come for it but its Close, which finds it gone and is passed over.
                // Not an eviction: it is not followed any more.
                closed_keys.push(*key);
            } else if now_ns.saturating_sub(conn.last_ns) > idle {
                idle_keys.push(*key);
            }
        }
        for key in closed_keys {
            if let Some(conn) = self.conns.remove(&key) {
                self.end_conn(conn, now_ns, sink);
            }
        }
        for conn in self.conns.values_mut() {
            emit(conn, &mut self.drained, &mut self.stats, &self.redactor, &self.filter, sink);
        }
        for key in idle_keys {
            self.evict(key, now_ns, sink);
        }
    }

    /// Everything pending is emitted (exit).
    pub fn flush(&mut self, now_ns: u64, sink: &mut impl FnMut(Record)) {
        self.end_round(sink);
        let keys: Vec<ConnKey> = self.conns.keys().copied().collect();
        for key in keys {
            if let Some(mut conn) = self.conns.remove(&key) {
                conn.tick(now_ns);
                self.end_conn(conn, now_ns, sink);
            }
        }
    }

    /// Connections with no close and no event since `before_ns`, with their last event's
    /// time: the ones worth asking the kernel whether their Close was lost.
    pub fn quiet_since(&self, before_ns: u64) -> impl Iterator<Item = (ConnKey, u64)> + '_ {
        self.conns
            .iter()
            .filter(move |(_, c)| c.closing.is_none() && c.last_ns < before_ns)
            .map(|(k, c)| (*k, c.last_ns))
    }

    /// The kernel reported events it could not deliver (the buffer was full), at `now_ns`
    /// at the latest, without saying whose: see `LossWatch`.
    pub fn events_lost(&mut self, now_ns: u64) {
        for conn in self.conns.values_mut() {
            conn.losses.reported(now_ns);
        }
    }

    /// Ends a connection whose Close the kernel could not send, unless an event came for it
    /// since `last_ns`: as an eviction (abandoned), since where its streams ended is unknown.
    pub fn end_unclosed(&mut self, key: ConnKey, last_ns: u64, now_ns: u64, sink: &mut impl FnMut(Record)) {
        if self.conns.get(&key).is_some_and(|c| c.closing.is_none() && c.last_ns == last_ns) {
            self.evict(key, now_ns, sink);
        }
    }

    fn make_room(&mut self, sink: &mut impl FnMut(Record)) {
        if self.conns.len() < self.cfg.max_conns {
            return;
        }
        // Evict the least recently active eighth at once, so the scan is paid rarely.
        let mut by_age: Vec<(u64, ConnKey)> = self.conns.iter().map(|(k, c)| (c.last_ns, *k)).collect();
        let n = (self.cfg.max_conns / 8).max(1);
        let last = by_age.len() - 1;
        by_age.select_nth_unstable(n.min(last));
        for (last, key) in by_age.into_iter().take(n) {
            self.evict(key, last, sink);
        }
    }

    fn evict(&mut self, key: ConnKey, now_ns: u64, sink: &mut impl FnMut(Record)) {
        if let Some(conn) = self.conns.remove(&key) {
            if conn.closing.is_none() {
                self.stats.evicted_conns += 1;
                if let Some(p) = conn.parser.as_ref() {
                    if self.forgotten.len() >= self.cfg.max_conns {
                        self.forgotten.clear();
                    }
                    self.forgotten.insert(key, p.positions());
                }
            }
            self.end_conn(conn, now_ns, sink);
        }
    }


    /// Emits what a connection that is going away still holds, and counts its drops.
    fn emit_conn(&mut self, conn: &mut Conn, sink: &mut impl FnMut(Record)) {
        emit(conn, &mut self.drained, &mut self.stats, &self.redactor, &self.filter, sink);
        if let Some(p) = conn.parser.as_ref() {
            self.stats.dropped_bytes = self.stats.dropped_bytes.saturating_add(p.dropped_bytes());
            self.stats.orphan_responses = self.stats.orphan_responses.saturating_add(p.orphan_responses());
            // Bytes lost where no record could carry them (inside a head that was dropped).
            self.stats.lost_bytes = self.stats.lost_bytes.saturating_add(p.lost_bytes().saturating_sub(conn.lost_counted));
        }
    }

}

fn new_conn(cfg: &Config, filter: &Filter, meta: ConnMeta, ts_ns: u64) -> Box<Conn> {
    // The kernel side saw a picked-up connection's role in its first bytes only, which
    // may have been inside a body: a listener on one end's port says it better.
    let by_ports = || {
        let client = client_by_ports(meta.local.port(), meta.remote.port(), listening_ports())?;
        Some(if client { Role::Client } else { Role::Server })
    };
    let role = if meta.preexisting { by_ports().or(meta.role) } else { meta.role }.unwrap_or(Role::Client);
    tracing::debug!(
        pid = meta.pid, fd = meta.fd, ?role, local = %meta.local, remote = %meta.remote,
        comm = %String::from_utf8_lossy(comm_str(&meta.comm)), preexisting = meta.preexisting,
        "new connection"
    );
    let role_ok = filter.role.is_none_or(|r| r == role);
    let parser = role_ok.then(|| {
        let mut p = Http1Conn::new(role, cfg.limits);
        if cfg.announce_requests {
            p.announce_requests();
        }
        if meta.preexisting {
            p.picked_up();
        }
        p
    });
    Box::new(Conn { meta, role, parser, last_ns: ts_ns, lost_counted: 0, closing: None, losses: LossWatch::default(), held: 0, given_up: false })
}

fn emit(
    conn: &mut Conn,
    drained: &mut Vec<Exchange>,
    stats: &mut Stats,
    redactor: &Redactor,
    filter: &Filter,
    sink: &mut impl FnMut(Record),
) {
    let Some(p) = conn.parser.as_mut() else { return };
    let mut heads = Vec::new();
    p.drain_started(&mut heads);
    for request in heads.into_iter().filter(|q| filter.comm_ok(&q.process.comm)) {
        let mut exchange = Exchange { request, response: None, note: None, interim: Vec::new() };
        redactor.apply(&mut exchange);
        let mut r = Record::from_syscall(&conn.meta, conn.role, exchange);
        r.in_flight = true;
        sink(r);
    }
    p.drain(drained);
    for mut exchange in drained.drain(..) {
        if !filter.comm_ok(&exchange.request.process.comm) {
            // Not shown, so not counted: as a filtered connection's never were.
            conn.lost_counted = conn.lost_counted.saturating_add(exchange.lost_bytes());
            continue;
        }
        redactor.apply(&mut exchange);
        stats.exchanges += 1;
        if !exchange.complete() {
            stats.incomplete += 1;
        }
        stats.lost_bytes = stats.lost_bytes.saturating_add(exchange.lost_bytes());
        conn.lost_counted = conn.lost_counted.saturating_add(exchange.lost_bytes());
        sink(Record::from_syscall(&conn.meta, conn.role, exchange));
    }
}

/// The command name up to its NUL.
pub fn comm_str(comm: &[u8; 16]) -> &[u8] {
    let end = comm.iter().position(|&b| b == 0).unwrap_or(comm.len());
    &comm[..end]
}

#[cfg(test)]
mod tests {
    use tracer_common::{EventHeader, EventKind, AF_INET, DIR_EGRESS, DIR_INGRESS, ROLE_CLIENT, ROLE_SERVER};

    use crate::protocols::StartLine;

    use super::*;

    fn data(dir: u8, pos: u64, ts: u64, bytes: &[u8]) -> Vec<u8> {
        data_by(dir, pos, ts, bytes, (10, 11, b"curl"))
    }

    /// A data event moved by thread `tid` of process `pid` named `comm`.
    fn data_by(dir: u8, pos: u64, ts: u64, bytes: &[u8], who: (u32, u32, &[u8])) -> Vec<u8> {
        events::encode(&header_by(dir, pos, ts, bytes, who), bytes)
    }

    fn header_by(dir: u8, pos: u64, ts: u64, bytes: &[u8], (pid, tid, comm): (u32, u32, &[u8])) -> EventHeader {
        let mut name = [0u8; 16];
        name[..comm.len()].copy_from_slice(comm);
        EventHeader {
            kind: EventKind::Data as u32,
            flags: 0,
            ts_ns: ts,
            conn_id: 1,
            sock: 0xffff_0000,
            pos,
            len: bytes.len() as u32,
            cap: bytes.len() as u32,
            pid,
            tid,
            fd: 3,
            family: AF_INET,
            role: ROLE_CLIENT,
            dir,
            lport: 40000,
            rport: 80,
            _pad: 0,
            laddr: [127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            raddr: [127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            comm: name,
        }
    }

    /// Four connections at most, never idle.
    fn cfg(announce_requests: bool) -> Config {
        Config { limits: Limits::default(), announce_requests, max_conns: 4, idle_timeout_ns: u64::MAX }
    }

    fn run(announce: bool) -> Vec<Record> {
        let mut p = Pipeline::new(cfg(announce), Filter::default());
        let mut out = Vec::new();
        p.on_raw(&data(DIR_EGRESS, 0, 100, b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n"), &mut |r| out.push(r));
        p.on_raw(&data(DIR_INGRESS, 0, 200, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"), &mut |r| out.push(r));
        out
    }

    #[test]
    fn records_carry_process_addresses_and_role() {
        let out = run(false);
        assert_eq!(out.len(), 1);
        let r = &out[0];
        assert_eq!((r.source, r.role, r.in_flight), (Source::Syscall, Some(Role::Client), false));
        assert_eq!(r.process.map(|p| (p.pid, p.tid)), Some((10, 11)));
        assert_eq!((r.client.to_string(), r.server.to_string()), ("127.0.0.1:40000".into(), "127.0.0.1:80".into()));
        assert_eq!(r.exchange.response.as_ref().map(|m| m.body.as_slice()), Some(&b"ok"[..]));
    }

    #[test]
    fn announced_request_precedes_its_exchange_and_is_not_counted() {
        let out = run(true);
        assert_eq!(out.len(), 2);
        assert!(out[0].in_flight && out[0].exchange.response.is_none());
        assert!(!out[1].in_flight && out[1].exchange.response.is_some());
        assert_eq!(out[0].conn, out[1].conn);
        assert_eq!(out[0].exchange.request.first_ts_ns, out[1].exchange.request.first_ts_ns);
    }

    #[test]
    fn orphan_responses_are_counted_and_not_shown() {
        let mut p = Pipeline::new(cfg(false), Filter::default());
        let mut out = Vec::new();
        // A response with no request before it (the request predates the trace).
        p.on_raw(&data(DIR_INGRESS, 0, 200, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"), &mut |r| out.push(r));
        p.flush(10_000_000_000, &mut |r| out.push(r));
        assert!(out.is_empty(), "{out:?}");
        assert_eq!(p.stats.orphan_responses, 1);
    }

    /// The answer that ends HTTP on a connection, and the key of the tests' connection.
    const UPGRADED: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n";
    const KEY: ConnKey = ConnKey { sock: 0xffff_0000, conn_id: 1 };

    #[test]
    fn a_connection_that_left_http_is_given_up_once() {
        let mut p = Pipeline::new(cfg(false), Filter::default());
        let mut out = Vec::new();
        p.on_raw(&data(DIR_EGRESS, 0, 100, b"GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n"), &mut |r| out.push(r));
        assert_eq!(p.done_with().count(), 0, "still HTTP after the request");
        p.on_raw(&data(DIR_INGRESS, 0, 200, UPGRADED), &mut |r| out.push(r));
        assert_eq!(p.done_with().collect::<Vec<_>>(), [KEY]);
        // Frames that were already on their way: dropped, the connection not given again.
        p.on_raw(&data(DIR_INGRESS, UPGRADED.len() as u64, 300, b"\x82\x02hi"), &mut |r| out.push(r));
        assert_eq!(p.done_with().count(), 0);
        assert_eq!(out.len(), 1, "{out:?}");
        // Quiet since (the kernel copies nothing more): forgotten after the grace, not as
        // an eviction; its Close then finds nothing.
        p.tick(300 + CLOSE_GRACE_NS, &mut |r| out.push(r));
        assert_eq!(p.active_conns(), 1, "within the grace");
        p.tick(301 + CLOSE_GRACE_NS, &mut |r| out.push(r));
        assert_eq!((p.active_conns(), p.stats.evicted_conns), (0, 0));
        p.on_raw(&close_event(400 + CLOSE_GRACE_NS), &mut |r| out.push(r));
        assert_eq!((p.active_conns(), out.len(), p.done_with().count()), (0, 1, 0));
    }

    #[test]
    fn a_connection_that_leaves_http_at_a_tick_is_given_up_then() {
        // A 101 whose request never came (lost): it waits for it, and the tick that gives
        // up waiting decides it, and with it that the connection left HTTP.
        let mut p = Pipeline::new(cfg(false), Filter::default());
        let mut out = Vec::new();
        p.on_raw(&data(DIR_INGRESS, 0, 200, UPGRADED), &mut |r| out.push(r));
        assert_eq!(p.done_with().count(), 0, "waiting for its request");
        p.tick(200 + Limits::default().reorder_timeout_ns + 1, &mut |r| out.push(r));
        assert_eq!(p.done_with().collect::<Vec<_>>(), [KEY]);
    }

    fn close_event(ts: u64) -> Vec<u8> {
        let mut raw = data(DIR_EGRESS, 0, ts, b"");
        // `kind` is the header's first field.
        raw[..4].copy_from_slice(&(EventKind::Close as u32).to_ne_bytes());
        raw
    }

    #[test]
    fn bytes_read_after_the_close_still_count_and_idle_closes_end_at_once() {
        let mut p = Pipeline::new(cfg(false), Filter::default());
        let mut out = Vec::new();
        let req = b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n";
        let resp = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        // Request out, then the socket closes (the peer's FIN after ours), then the answer
        // is read.
        p.on_raw(&data(DIR_EGRESS, 0, 100, req), &mut |r| out.push(r));
        p.on_raw(&close_event(150), &mut |r| out.push(r));
        assert!(out.is_empty(), "nothing ended yet: {out:?}");
        p.on_raw(&data(DIR_INGRESS, 0, 200, resp), &mut |r| out.push(r));
        assert_eq!(out.len(), 1);
        assert!(out[0].exchange.complete(), "{:?}", out[0].exchange);
        // Nothing in progress any more: the connection is gone at the next tick after the
        // grace.
        p.tick(200 + CLOSE_GRACE_NS + 1, &mut |r| out.push(r));
        assert_eq!(p.active_conns(), 0);
        // A close with nothing in progress ends the connection at once.
        let mut p = Pipeline::new(cfg(false), Filter::default());
        p.on_raw(&data(DIR_EGRESS, 0, 300, req), &mut |r| out.push(r));
        p.on_raw(&data(DIR_INGRESS, 0, 400, resp), &mut |r| out.push(r));
        assert_eq!(out.len(), 2);
        p.on_raw(&close_event(500), &mut |r| out.push(r));
        assert_eq!(p.active_conns(), 0, "ended on its close");
    }

    #[test]
    fn a_connection_whose_close_was_lost_ends_only_if_nothing_came_since_it_was_found() {
        let mut p = Pipeline::new(cfg(false), Filter::default());
        let mut out = Vec::new();
        p.on_raw(&data(DIR_EGRESS, 0, 100, b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n"), &mut |r| out.push(r));
        let quiet: Vec<_> = p.quiet_since(101).collect();
        assert_eq!(quiet.len(), 1);
        assert!(p.quiet_since(100).next().is_none(), "not quiet since its last event");
        // An event came after it was found: it stays.
        p.on_raw(&data(DIR_INGRESS, 0, 200, b"HTTP/1.1 200 OK\r\n"), &mut |r| out.push(r));
        let (key, last) = quiet[0];
        p.end_unclosed(key, last, 300, &mut |r| out.push(r));
        assert_eq!((p.active_conns(), p.stats.evicted_conns), (1, 0));
        // Quiet since: ended as an eviction, the request reported unfinished.
        p.end_unclosed(key, 200, 300, &mut |r| out.push(r));
        assert_eq!((p.active_conns(), p.stats.evicted_conns), (0, 1));
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].exchange.note, Some(crate::protocols::Note::Unfinished), "{:?}", out[0].exchange);
    }

    /// A response whose tail never came, with the ring's losses reported after its last
    /// event: a `gap` at exit, the rest of its declared body lost; with an event of its
    /// direction after the report, only unfinished.
    #[test]
    fn a_tail_never_seen_after_reported_losses_is_a_gap() {
        let run = |event_after: bool| {
            let mut p = Pipeline::new(cfg(false), Filter::default());
            let mut out = Vec::new();
            let req = b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n";
            let head = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n";
            p.on_raw(&data(DIR_EGRESS, 0, 100, req), &mut |r| out.push(r));
            p.on_raw(&data(DIR_INGRESS, 0, 200, head), &mut |r| out.push(r));
            p.events_lost(300);
            if event_after {
                p.on_raw(&data(DIR_INGRESS, head.len() as u64, 400, b"0123456789"), &mut |r| out.push(r));
            }
            p.flush(10_000_000_000, &mut |r| out.push(r));
            assert_eq!(out.len(), 1, "{out:?}");
            out.remove(0).exchange
        };
        let x = run(false);
        assert_eq!(x.note, Some(crate::protocols::Note::Gap), "{x:?}");
        assert_eq!(x.lost_bytes(), 100);
        assert_eq!(x.response.as_ref().map(|r| r.body_size), Some(100));
        let x = run(true);
        assert_eq!(x.note, Some(crate::protocols::Note::Unfinished), "{x:?}");
        assert_eq!(x.lost_bytes(), 0);
        assert_eq!(x.response.as_ref().map(|r| r.body_size), Some(10));
    }

    #[test]
    fn a_send_out_of_order_is_a_gap_not_the_streams_next_bytes() {
        let mut p = Pipeline::new(cfg(false), Filter::default());
        let mut out = Vec::new();
        let (one, two) = (b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\n", b"GET /2 HTTP/1.1\r\nHost: h\r\n\r\n");
        let mut unordered = header_by(DIR_EGRESS, 0, 100, one, (10, 11, b"curl"));
        unordered.flags = tracer_common::FLAG_UNORDERED;
        p.on_raw(&events::encode(&unordered, one), &mut |r| out.push(r));
        p.on_raw(&data(DIR_EGRESS, one.len() as u64, 110, two), &mut |r| out.push(r));
        let ok = |body: &str| format!("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{body}").into_bytes();
        p.on_raw(&data(DIR_INGRESS, 0, 200, &ok("r1")), &mut |r| out.push(r));
        p.on_raw(&data(DIR_INGRESS, 40, 210, &ok("r2")), &mut |r| out.push(r));
        p.flush(10_000_000_000, &mut |r| out.push(r));
        assert_eq!(p.stats.unordered_events, 1);
        // /1 is not shown; /2 is never paired with /1's answer.
        assert!(out.iter().all(|r| !matches!(&r.exchange.request.start, StartLine::Request { target, .. } if target == b"/1")), "{out:?}");
        for r in &out {
            if let Some(resp) = &r.exchange.response {
                assert_ne!(resp.body, b"r1", "/2 paired with the answer to /1: {out:?}");
            }
        }
    }

    /// One connection whose first exchange is made by one process and the second by
    /// another (the socket passed on with SCM_RIGHTS, or a thread renamed in between).
    fn handed_over(filter: Filter) -> Vec<Record> {
        let mut p = Pipeline::new(cfg(false), filter);
        let mut out = Vec::new();
        let (q1, q2) = (b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\n", b"GET /2 HTTP/1.1\r\nHost: h\r\n\r\n");
        let resp = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        let (a, b) = ((10, 11, &b"first"[..]), (20, 21, &b"second"[..]));
        p.on_raw(&data_by(DIR_EGRESS, 0, 100, q1, a), &mut |r| out.push(r));
        p.on_raw(&data_by(DIR_INGRESS, 0, 200, resp, a), &mut |r| out.push(r));
        p.on_raw(&data_by(DIR_EGRESS, q1.len() as u64, 300, q2, b), &mut |r| out.push(r));
        p.on_raw(&data_by(DIR_INGRESS, resp.len() as u64, 400, resp, b), &mut |r| out.push(r));
        out
    }

    fn who(r: &Record) -> (String, u32, u32, String) {
        let target = match &r.exchange.request.start {
            crate::protocols::StartLine::Request { target, .. } => String::from_utf8_lossy(target).into_owned(),
            _ => String::new(),
        };
        let p = r.process.expect("syscall records name a process");
        (target, p.pid, p.tid, String::from_utf8_lossy(comm_str(&p.comm)).into_owned())
    }

    #[test]
    fn each_exchange_names_the_thread_of_its_request_not_the_connections_first() {
        let out: Vec<_> = handed_over(Filter::default()).iter().map(who).collect();
        assert_eq!(out, [("/1".into(), 10, 11, "first".into()), ("/2".into(), 20, 21, "second".into())]);
        let only_second = Filter { comms: vec![b"second".to_vec()], ..Filter::default() };
        let out: Vec<_> = handed_over(only_second).iter().map(who).collect();
        assert_eq!(out, [("/2".into(), 20, 21, "second".into())]);
    }

    /// Many peers each holding a long unfinished head, of one long line or of many short
    /// complete ones (which a cut head keeps): the connections together stay within
    /// `max_total_buffer` (those holding most give theirs up, and each shed frees what it
    /// held), each head given up is still reported, cut, and its dropped bytes counted;
    /// the connections holding little (a request waiting for its answer) are left alone.
    #[test]
    fn connections_together_stay_within_the_total_bound() {
        for short_lines in [false, true] {
            let limits = Limits { max_total_buffer: 64 << 10, ..Limits::default() };
            let cfg = Config { limits, announce_requests: false, max_conns: 1000, idle_timeout_ns: u64::MAX };
            let mut p = Pipeline::new(cfg, Filter::default());
            let mut out = Vec::new();
            let event = |n: u64, dir: u8, pos: u64, ts: u64, bytes: &[u8]| {
                let mut h = header_by(dir, pos, ts, bytes, (10, 11, b"curl"));
                (h.sock, h.conn_id, h.lport) = (0xffff_0000 + 0x100 * n, 1 + n, 40000 + n as u16);
                events::encode(&h, bytes)
            };
            let (hostile, innocent) = (64, 4);
            let pad: Vec<u8> = if short_lines {
                (0..700).flat_map(|i| format!("X-Pad-{i}: v\r\n").into_bytes()).collect()
            } else {
                [&b"X-Big: "[..], &[b'A'; 8192]].concat()
            };
            let heads: Vec<Vec<u8>> = (0..hostile).map(|n| [format!("GET /c{n} HTTP/1.1\r\nHost: h\r\n").as_bytes(), &pad].concat()).collect();
            let small = |n: usize| format!("GET /ok{n} HTTP/1.1\r\nHost: h\r\n\r\n").into_bytes();
            for n in 0..innocent {
                p.on_raw(&event((hostile + n) as u64, DIR_EGRESS, 0, 50 + n as u64, &small(n)), &mut |r| out.push(r));
            }
            for (n, head) in heads.iter().enumerate() {
                p.on_raw(&event(n as u64, DIR_EGRESS, 0, 100 + n as u64, head), &mut |r| out.push(r));
                let held: usize = p.conns.values().filter_map(|c| c.parser.as_ref()).map(Http1Conn::held_bytes).sum();
                assert!(held <= 64 << 10, "{held} bytes held after {n} connections");
            }
            let resp = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
            for (n, head) in heads.iter().enumerate() {
                let ts = 1000 + 10 * n as u64;
                p.on_raw(&event(n as u64, DIR_EGRESS, head.len() as u64, ts, b"\r\n\r\n"), &mut |r| out.push(r));
                p.on_raw(&event(n as u64, DIR_INGRESS, 0, ts + 5, resp), &mut |r| out.push(r));
            }
            for n in 0..innocent {
                p.on_raw(&event((hostile + n) as u64, DIR_INGRESS, 0, 5000 + n as u64, resp), &mut |r| out.push(r));
            }
            p.flush(1_000_000_000, &mut |r| out.push(r));
            let target = |r: &Record| match &r.exchange.request.start {
                crate::protocols::StartLine::Request { target, .. } => String::from_utf8_lossy(target).into_owned(),
                _ => String::new(),
            };
            let mut targets: Vec<String> = out.iter().map(target).collect();
            targets.sort();
            let mut expect: Vec<String> = (0..hostile).map(|n| format!("/c{n}")).chain((0..innocent).map(|n| format!("/ok{n}"))).collect();
            expect.sort();
            assert_eq!(targets, expect, "one record per connection");
            let (cut, whole): (Vec<&Record>, Vec<&Record>) = out.iter().partition(|r| !r.exchange.complete());
            assert!(!cut.is_empty(), "some heads were given up");
            for r in &whole {
                assert_eq!(r.exchange.response.as_ref().map(|m| &m.body[..]), Some(&b"ok"[..]), "{:?}", r.exchange.request.start);
            }
            assert!(innocent <= whole.iter().filter(|r| target(r).starts_with("/ok")).count(), "an innocent connection was shed");
            let mut dropped = 0;
            for r in &cut {
                let start = &r.exchange.request.start;
                assert!(target(r).starts_with("/c"), "{start:?}");
                assert!(r.exchange.response.is_none(), "{start:?}: a shed request's answer is not waited for");
                if r.exchange.note == Some(crate::protocols::Note::Unfinished) {
                    // Shed whole, waiting for its answer: nothing of it dropped.
                    assert_eq!((r.exchange.lost_bytes(), r.exchange.request.complete), (0, true), "{start:?}");
                    continue;
                }
                assert_eq!(r.exchange.note, Some(crate::protocols::Note::Gap), "{start:?}");
                let fields = r.exchange.request.headers.len();
                assert!(fields >= 1 && r.exchange.request.headers.get(b"host") == Some(&b"h"[..]), "{start:?}");
                if !short_lines {
                    assert_eq!(fields, 1);
                    assert_eq!(r.exchange.lost_bytes(), pad.len() as u64);
                }
                // Dropped whole: its complete lines reported, the rest lost.
                dropped += heads[target(r)[2..].parse::<usize>().unwrap()].len() as u64;
            }
            assert_eq!(p.stats.dropped_bytes, dropped, "short lines: {short_lines}");
        }
    }

    /// A connection forgotten while open (idle, or evicted from a full table) and picked
    /// up again: the new parser starts where the old one got to, so the bytes the old one
    /// reported are not counted lost (the summary said 140 lost bytes of two complete
    /// exchanges).
    #[test]
    fn a_connection_picked_up_again_counts_nothing_lost() {
        let cfg = Config { idle_timeout_ns: 1_000, ..cfg(false) };
        let mut p = Pipeline::new(cfg, Filter::default());
        let mut out = Vec::new();
        let req = b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n";
        let resp = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        p.on_raw(&data(DIR_EGRESS, 0, 100, req), &mut |r| out.push(r));
        p.on_raw(&data(DIR_INGRESS, 0, 200, resp), &mut |r| out.push(r));
        p.tick(5_000, &mut |r| out.push(r));
        assert_eq!((p.active_conns(), p.stats.evicted_conns), (0, 1), "forgotten when idle");
        let (q, a) = (req.len() as u64, resp.len() as u64);
        p.on_raw(&data(DIR_EGRESS, q, 6_000, req), &mut |r| out.push(r));
        p.on_raw(&data(DIR_INGRESS, a, 6_100, resp), &mut |r| out.push(r));
        p.tick(6_000 + cfg.limits.reorder_timeout_ns + 1, &mut |r| out.push(r));
        p.flush(6_000 + cfg.limits.reorder_timeout_ns + 2, &mut |r| out.push(r));
        assert_eq!(out.len(), 2, "{out:?}");
        assert!(out.iter().all(|r| r.exchange.complete()), "{out:?}");
        assert_eq!(p.stats.lost_bytes, 0);
    }

    /// A client's socket closed (the server's FIN) before it read the answer: the
    /// connection waits up to the response timeout for that read, and its request is not
    /// timed out meanwhile; one never answered is `closed` when the wait ends. A server's
    /// socket, which can send nothing more, ends after the short grace.
    #[test]
    fn a_closed_client_waits_for_its_reads_and_a_server_does_not() {
        let req = b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n";
        let resp = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        let timeout = Limits::default().response_timeout_ns;
        // Read 2 s after the close.
        let mut p = Pipeline::new(cfg(false), Filter::default());
        let mut out = Vec::new();
        p.on_raw(&data(DIR_EGRESS, 0, 100, req), &mut |r| out.push(r));
        p.on_raw(&close_event(150), &mut |r| out.push(r));
        p.tick(150 + 2_000_000_000, &mut |r| out.push(r));
        assert!(out.is_empty(), "{out:?}");
        p.on_raw(&data(DIR_INGRESS, 0, 150 + 2_000_000_001, resp), &mut |r| out.push(r));
        assert_eq!(out.len(), 1);
        assert!(out[0].exchange.complete(), "{:?}", out[0].exchange);
        // Never read: `closed` once the wait ends, not `response_timeout`.
        let mut p = Pipeline::new(cfg(false), Filter::default());
        let mut out = Vec::new();
        p.on_raw(&data(DIR_EGRESS, 0, 100, req), &mut |r| out.push(r));
        p.on_raw(&close_event(150), &mut |r| out.push(r));
        for t in [timeout / 2, timeout, timeout + 100, timeout + 200] {
            p.tick(t, &mut |r| out.push(r));
        }
        assert_eq!(p.active_conns(), 0);
        assert_eq!(out.iter().map(|r| r.exchange.note).collect::<Vec<_>>(), [Some(crate::protocols::Note::Closed)]);
        // A server: ended after the grace.
        let mut p = Pipeline::new(cfg(false), Filter::default());
        let mut out = Vec::new();
        let mut hdr = header_by(DIR_INGRESS, 0, 100, req, (10, 11, b"nginx"));
        hdr.role = ROLE_SERVER;
        p.on_raw(&events::encode(&hdr, req), &mut |r| out.push(r));
        p.on_raw(&close_event(150), &mut |r| out.push(r));
        p.tick(150 + CLOSE_GRACE_NS + 1, &mut |r| out.push(r));
        assert_eq!(p.active_conns(), 0, "a server's closed connection waited");
        assert_eq!(out.iter().map(|r| r.exchange.note).collect::<Vec<_>>(), [Some(crate::protocols::Note::Closed)]);
    }
}
