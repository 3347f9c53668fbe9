//! TCP flows -> exchanges. Sequence numbers become stream positions (unwrapped past 2^32);
//! ordering, retransmissions, overlaps and gaps are then the stream buffers' job, as on
//! the syscall path. Client and server come from the SYN, or, for a connection already
//! open at start, from the first payload that starts a request or a response.
use std::{collections::VecDeque, net::SocketAddr};

use super::{frame::TcpSegment, AddrMap};
use crate::protocols::{client_by_ports, listening_ports, http1::Http1Conn, Budget, Direction, Exchange, Limits, LossWatch, Process, Role};

/// A finished exchange of a flow.
#[derive(Debug, Clone)]
pub struct FlowExchange {
    pub client: SocketAddr,
    pub server: SocketAddr,
    pub exchange: Exchange,
    /// Only the request head, announced as soon as it parsed (`announce_requests`); the
    /// finished exchange follows.
    pub in_flight: bool,
}

#[derive(Debug, Clone, Copy)]
pub struct FlowConfig {
    pub limits: Limits,
    pub max_flows: usize,
    pub idle_timeout_ns: u64,
    /// Announce each request head as soon as it parses (the live view's pending rows).
    pub announce_requests: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlowStats {
    pub segments: u64,
    pub flows: u64,
    pub evicted_flows: u64,
    /// Payload bytes on the wire that the snap length cut.
    pub uncaptured_bytes: u64,
    pub dropped_bytes: u64,
    /// Bytes lost where no exchange could carry them (inside a dropped head).
    pub unreported_lost_bytes: u64,
    /// Responses of ended flows that no request could be paired with.
    pub orphan_responses: u64,
}

/// Per-direction sequence state.
#[derive(Debug, Clone, Copy, Default)]
struct SeqState {
    /// Sequence number of stream position 0; None until the direction is seen.
    base: Option<u32>,
    /// Highest position seen, the reference for unwrapping.
    high: u64,
}

impl SeqState {
    /// Stream position of `seq`, or None when it lies before the stream's start.
    fn pos(&mut self, seq: u32) -> Option<u64> {
        let base = *self.base.get_or_insert(seq);
        let rel = seq.wrapping_sub(base) as u64;
        // The candidate in the high mark's 2^32 epoch, or a neighbour, whichever is closest.
        let epoch = self.high & !0xffff_ffff;
        let c = epoch | rel;
        let best = [c.checked_sub(1 << 32), Some(c), c.checked_add(1 << 32)]
            .into_iter()
            .flatten()
            .min_by_key(|&p| p.abs_diff(self.high))?;
        // Further than any window from what was seen: from before the stream's start (a
        // retransmission of bytes we never had), not a real jump.
        if best.abs_diff(self.high) > 1 << 30 {
            return None;
        }
        Some(best)
    }

    fn advance(&mut self, end: u64) {
        self.high = self.high.max(end);
    }
}

struct Flow {
    client: SocketAddr,
    server: SocketAddr,
    /// [client -> server, server -> client]
    seq: [SeqState; 2],
    http: Http1Conn,
    fin: [bool; 2],
    /// Where each direction's stream ended (its FIN's position), once seen.
    ends: [Option<u64>; 2],
    closing_since: Option<u64>,
    last_ns: u64,
    /// Lost bytes already reported through this flow's exchanges.
    lost_counted: u64,
    /// Packets the kernel dropped from the capture socket since this flow's last ones:
    /// if its end is never seen, the missing rest may be among them.
    drops: LossWatch,
    /// Bytes its parser held after its last segment, as counted in the table's budget.
    held: usize,
}

/// Flows keyed by their two endpoints in a fixed order.
type FlowKey = (SocketAddr, SocketAddr);

fn key(a: SocketAddr, b: SocketAddr) -> FlowKey {
    if a <= b { (a, b) } else { (b, a) }
}

pub struct FlowTable {
    cfg: FlowConfig,
    /// Boxed: a flow's parser state is over 1 KiB, and the table, sized for its busiest
    /// moment (thousands of short connections within the reorder window), would hold that
    /// much per bucket, empty or not (10 MiB of 8,192 buckets with `Connection: close`).
    flows: AddrMap<FlowKey, Box<Flow>>,
    /// Flows ended before the reorder window passed, because every byte of both
    /// directions up to their FINs was in (`complete`): when each ended. A segment of one
    /// within the window is a late copy of what was had (a retransmission), not a new
    /// connection picked up mid-way; a new SYN on the ports starts one.
    ended: AddrMap<FlowKey, u64>,
    /// `ended` in the order they ended, to expire them.
    ended_order: VecDeque<(u64, FlowKey)>,
    drained: Vec<Exchange>,
    /// What the flows hold together (`Limits::max_total_buffer`).
    budget: Budget,
    pub stats: FlowStats,
}

enum Start {
    Request,
    Response,
    Neither,
}

fn starts(payload: &[u8]) -> Start {
    const METHODS: [&[u8]; 9] = [b"GET ", b"POST ", b"PUT ", b"HEAD ", b"DELETE ", b"PATCH ", b"OPTIONS ", b"CONNECT ", b"TRACE "];
    if payload.starts_with(b"HTTP/1.") {
        Start::Response
    } else if METHODS.iter().any(|m| payload.starts_with(m)) {
        Start::Request
    } else {
        Start::Neither
    }
}

impl FlowTable {
    pub fn new(cfg: FlowConfig) -> Self {
        FlowTable {
            cfg,
            flows: AddrMap::default(),
            ended: AddrMap::default(),
            ended_order: VecDeque::new(),
            drained: Vec::new(),
            budget: Budget::default(),
            stats: FlowStats::default(),
        }
    }

    pub fn active(&self) -> usize {
        self.flows.len()
    }

    pub fn on_segment(&mut self, seg: &TcpSegment<'_>, ts_ns: u64, sink: &mut impl FnMut(FlowExchange)) {
        self.stats.segments += 1;
        let uncaptured = (seg.wire_len as u64).saturating_sub(seg.payload.len() as u64);
        self.stats.uncaptured_bytes = self.stats.uncaptured_bytes.saturating_add(uncaptured);
        let k = key(seg.src, seg.dst);
        // A client's SYN that is not a retransmission of the flow's own opens a new
        // connection on the same ports: the old flow ends here, so the new stream does not
        // land in the old one's positions. Its end, if seen, is the one `tick` would have
        // acted on after the reorder window (a reset or the server's FIN): closed then;
        // otherwise it was still open, and is abandoned.
        if seg.syn && !seg.ack {
            let stale = self.flows.get(&k).and_then(|f| {
                let d = if seg.src == f.client { 0 } else { 1 };
                let new_conn = d != 0 || f.seq[0].base.is_some_and(|b| b != seg.seq.wrapping_add(1));
                new_conn.then_some(f.closing_since.is_some())
            });
            if let Some(closed) = stale {
                self.close(k, ts_ns, closed, sink);
            }
        }
        if !self.flows.contains_key(&k) {
            if self.ended.contains_key(&k) {
                // Only a client's SYN starts a new connection there; anything else is a
                // late copy of the ended one's.
                if seg.syn && !seg.ack {
                    self.ended.remove(&k);
                } else {
                    return;
                }
            }
            let Some((client, server)) = self.roles_of_new(seg) else { return };
            self.make_room(ts_ns, sink);
            self.stats.flows += 1;
            let mut http = Http1Conn::new(Role::Client, self.cfg.limits);
            if self.cfg.announce_requests {
                http.announce_requests();
            }
            if !seg.syn {
                http.picked_up();
            }
            let flow = Box::new(Flow {
                client,
                server,
                seq: [SeqState::default(); 2],
                http,
                fin: [false; 2],
                ends: [None; 2],
                closing_since: None,
                last_ns: ts_ns,
                lost_counted: 0,
                drops: LossWatch::default(),
                held: 0,
            });
            self.flows.insert(k, flow);
        }
        let Some(flow) = self.flows.get_mut(&k) else { return };
        flow.last_ns = ts_ns;
        let mut over = false;
        let d = if seg.src == flow.client { 0 } else { 1 };
        if seg.syn {
            // The SYN takes one sequence number; data starts after it.
            flow.seq[d] = SeqState { base: Some(seg.seq.wrapping_add(1)), high: 0 };
        }
        let data_seq = if seg.syn { seg.seq.wrapping_add(1) } else { seg.seq };
        // A FIN, or a reset before any FIN (one after it carries the FIN's number plus
        // one), says where this direction's stream ended; without the direction's start
        // there is no position to give it.
        let ends = seg.fin || (seg.rst && !flow.fin[d]);
        let ends_known = ends && flow.seq[d].base.is_some();
        if (seg.wire_len > 0 || ends_known) && !flow.http.is_done() {
            if let Some(pos) = flow.seq[d].pos(data_seq) {
                let dir = if d == 0 { Direction::Egress } else { Direction::Ingress };
                let end = pos + seg.wire_len as u64;
                // Bytes up to the stream's front from after a loss report: what was lost
                // before them is a hole they show. A retransmission of older bytes shows
                // nothing of the tail.
                if end >= flow.seq[d].high {
                    flow.drops.seen(dir, ts_ns);
                }
                if seg.wire_len > 0 {
                    flow.http.on_data(dir, pos, seg.wire_len as u64, seg.payload, ts_ns, Process::default());
                    flow.seq[d].advance(end);
                    let held = flow.http.held_bytes();
                    over = self.budget.changed(std::mem::replace(&mut flow.held, held), held, self.cfg.limits.max_total_buffer);
                }
                if ends_known {
                    flow.http.on_end(dir, end, ts_ns);
                    if seg.fin {
                        flow.ends[d] = Some(end);
                    }
                }
            }
        }
        if seg.fin {
            flow.fin[d] = true;
        }
        // A reset or the server's FIN ends the exchange stream (the client's FIN alone is
        // a half-close: the answer may follow); wait the reorder window first so segments
        // overtaken by the FIN still count.
        if seg.rst || flow.fin[1] {
            flow.closing_since.get_or_insert(ts_ns);
        }
        emit(flow, &mut self.drained, sink);
        if complete(flow) {
            self.close(k, ts_ns, true, sink);
            self.remember_ended(k, ts_ns);
            return;
        }
        if over {
            // What the flows shed is emitted at the next tick.
            let max = self.cfg.limits.max_total_buffer;
            self.budget.shed(max, self.flows.values_mut().map(|f| (&mut f.http, &mut f.held)));
        }
    }

    /// Client and server of a flow seen for the first time, or None to ignore the segment.
    fn roles_of_new(&self, seg: &TcpSegment<'_>) -> Option<(SocketAddr, SocketAddr)> {
        if seg.rst || (seg.fin && seg.payload.is_empty()) {
            return None;
        }
        if seg.syn {
            return Some(if seg.ack { (seg.dst, seg.src) } else { (seg.src, seg.dst) });
        }
        // Open before we started: followed from a message start, in either direction; a
        // listener here on one end's port says which end is the server (`client_by_ports`).
        let start = match starts(seg.payload) {
            Start::Request => Some((seg.src, seg.dst)),
            Start::Response => Some((seg.dst, seg.src)),
            // Mid-message: wait for a message start.
            Start::Neither => None,
        }?;
        Some(match client_by_ports(seg.src.port(), seg.dst.port(), listening_ports()) {
            Some(true) => (seg.src, seg.dst),
            Some(false) => (seg.dst, seg.src),
            None => start,
        })
    }

    /// The kernel dropped packets from the capture socket (PACKET_STATISTICS), whose flows
    /// it does not say: every live flow may have lost some, at `now_ns` at the latest. One
    /// that gets no packet from after that in a direction, and whose end never comes,
    /// reports what it had in progress as a `gap`, not as merely unfinished.
    pub fn kernel_dropped(&mut self, now_ns: u64) {
        for flow in self.flows.values_mut() {
            flow.drops.reported(now_ns);
        }
    }

    /// Remembers a flow ended early for the reorder window (see `ended`), the oldest
    /// forgotten first beyond `max_flows` of them.
    fn remember_ended(&mut self, k: FlowKey, ts_ns: u64) {
        if self.ended_order.len() >= self.cfg.max_flows {
            self.forget_ended(u64::MAX);
        }
        self.ended.insert(k, ts_ns);
        self.ended_order.push_back((ts_ns, k));
    }

    /// Forgets the oldest early-ended flow if it ended at or before `until`; false when
    /// there was none.
    fn forget_ended(&mut self, until: u64) -> bool {
        match self.ended_order.front() {
            Some(&(t, k)) if t <= until => {
                self.ended_order.pop_front();
                // A later end of the same ports (a new connection that also ended) stays.
                if self.ended.get(&k) == Some(&t) {
                    self.ended.remove(&k);
                }
                true
            }
            _ => false,
        }
    }

    pub fn tick(&mut self, now_ns: u64, sink: &mut impl FnMut(FlowExchange)) {
        let window = self.cfg.limits.reorder_timeout_ns;
        while self.forget_ended(now_ns.saturating_sub(window)) {}
        let idle = self.cfg.idle_timeout_ns;
        let mut done = Vec::new();
        for (k, flow) in self.flows.iter_mut() {
            flow.http.on_tick(now_ns);
            emit(flow, &mut self.drained, sink);
            let closed = flow.closing_since.is_some_and(|t| now_ns.saturating_sub(t) > window);
            if closed || now_ns.saturating_sub(flow.last_ns) > idle {
                done.push((*k, closed));
            }
        }
        for (k, closed) in done {
            self.close(k, now_ns, closed, sink);
        }
    }

    pub fn flush(&mut self, now_ns: u64, sink: &mut impl FnMut(FlowExchange)) {
        let keys: Vec<FlowKey> = self.flows.keys().copied().collect();
        for k in keys {
            if let Some(f) = self.flows.get_mut(&k) {
                f.http.on_tick(now_ns);
            }
            self.close(k, now_ns, false, sink);
        }
    }

    /// Ends a flow: `closed` when its FIN/RST was seen; otherwise it is abandoned (idle,
    /// evicted, exit) and a message in progress is reported unfinished.
    fn close(&mut self, k: FlowKey, now_ns: u64, closed: bool, sink: &mut impl FnMut(FlowExchange)) {
        if let Some(mut flow) = self.flows.remove(&k) {
            self.budget.release(flow.held);
            if closed {
                flow.http.on_close(now_ns);
            } else if let Some(lost) = flow.drops.suspects(now_ns, self.cfg.limits.reorder_timeout_ns) {
                flow.http.on_abandon_after_loss(now_ns, lost);
            } else {
                flow.http.on_abandon(now_ns);
            }
            emit(&mut flow, &mut self.drained, sink);
            self.stats.dropped_bytes = self.stats.dropped_bytes.saturating_add(flow.http.dropped_bytes());
            self.stats.orphan_responses = self.stats.orphan_responses.saturating_add(flow.http.orphan_responses());
            let unreported = flow.http.lost_bytes().saturating_sub(flow.lost_counted);
            self.stats.unreported_lost_bytes = self.stats.unreported_lost_bytes.saturating_add(unreported);
        }
    }

    fn make_room(&mut self, now_ns: u64, sink: &mut impl FnMut(FlowExchange)) {
        if self.flows.len() < self.cfg.max_flows {
            return;
        }
        let mut by_age: Vec<(u64, FlowKey)> = self.flows.iter().map(|(k, f)| (f.last_ns, *k)).collect();
        let n = (self.cfg.max_flows / 8).max(1).min(by_age.len());
        by_age.select_nth_unstable(n - 1);
        for (_, k) in by_age.into_iter().take(n) {
            self.stats.evicted_flows += 1;
            self.close(k, now_ns, false, sink);
        }
    }
}

/// Both directions ended with a FIN and every byte before each FIN is in: no segment can
/// still be overtaken, so the flow need not wait the reorder window.
fn complete(flow: &Flow) -> bool {
    let [Some(up), Some(down)] = flow.ends else { return false };
    // Direction order of the parser (client role): egress = client -> server.
    flow.http.positions() == [up, down] && flow.http.buffered_bytes() == 0
}

fn emit(flow: &mut Flow, drained: &mut Vec<Exchange>, sink: &mut impl FnMut(FlowExchange)) {
    let mut heads = Vec::new();
    flow.http.drain_started(&mut heads);
    for request in heads {
        let exchange = Exchange { request, response: None, note: None, interim: Vec::new() };
        sink(FlowExchange { client: flow.client, server: flow.server, exchange, in_flight: true });
    }
    flow.http.drain(drained);
    for exchange in drained.drain(..) {
        flow.lost_counted = flow.lost_counted.saturating_add(exchange.lost_bytes());
        sink(FlowExchange { client: flow.client, server: flow.server, exchange, in_flight: false });
    }
}

#[cfg(test)]
mod tests;
