//! Sans-IO HTTP/1.0 and 1.1: segments of both directions in, paired exchanges out.
//!
//! Each direction is a `StreamBuf` (order by byte position, gaps from positions) feeding
//! a parser (`side`) that frames messages with httparse; `pairing` matches responses to
//! requests.
//!
//! # Pairing rule
//! Responses pair with requests in order, and never with a request that started after
//! the response did: the kernel side stamps written bytes when they leave and read bytes
//! when they arrive, so an answer cannot start before its request. A response whose first
//! byte `t` is earlier than the next unanswered request `Q`'s (`t < Q.first_ts`) answered
//! a request we never saw (a connection picked up mid-way, a request lost in a gap, an
//! unparseable request) and is dropped as an orphan. Interim 1xx responses are kept with the
//! request they answer, heads only (`Exchange::interim`), while the answers are in order.
//! A response that arrives before any unanswered request has been parsed waits (its
//! bytes are held) until a request arrives, the reorder timeout passes, the buffer bound
//! is hit or the connection closes; then it is an orphan.
//!
//! After a gap in the response stream the timestamps decide further, with `t` the first
//! byte of the response:
//! - responses may have been lost (gap in the response stream): once the request stream
//!   has been read past `t`, the candidates are the unanswered requests that started at
//!   or before `t`. None: orphan. One: pair. Several: on a connection never seen
//!   pipelining (a request sent before the previous answer started, or in the same
//!   write as the previous request), and when every candidate but the first started
//!   after the last response byte seen before the gap and in a later write than the
//!   candidate before it (so each waited for an answer lost in the gap), the response
//!   pairs with the latest candidate and the earlier ones are emitted alone with
//!   `Note::Gap`; otherwise the pairing is ambiguous: all candidates are emitted alone
//!   with `Note::Gap` and the response is dropped as an orphan.
//!
//! Orphans (and late responses to requests already reported as timed out) are counted by
//! `orphan_responses`. The residual risk is pipelining that begins right at a gap (lost
//! pipelined requests just before a surviving one, or responses lost to a first burst of
//! pipelined requests sent in separate writes): no timestamp can tell those apart.
//!
//! # Notes
//! `Note::Gap` when lost bytes touched either message or its response was lost;
//! `Note::Closed` when the connection closed mid-message or before the response;
//! `Note::ResponseTimeout`; `Note::ParseError` when the response head (or a chunked body)
//! could not be parsed; `Note::Upgrade` on the exchange whose 101 (or successful CONNECT)
//! ended HTTP parsing on the connection.

mod head;
mod marks;
mod pairing;
mod side;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_gaps;

use self::pairing::{Frontier, Pairing};
use self::side::{Cx, Side, Stats};
use crate::protocols::{Direction, Exchange, Limits, Message, Note, Process, Role};
use crate::reassembly::Segment;

/// Bytes that failed to parse, on a connection where nothing parsed yet, after which the
/// connection is declared not HTTP.
pub const NOT_HTTP_AFTER: u64 = 8192;

/// One traced connection.
pub struct Http1Conn {
    role: Role,
    limits: Limits,
    req: Side,
    resp: Side,
    pairing: Pairing,
    stats: Stats,
    closed: bool,
    not_http: bool,
    /// Open before tracing started: followed from its first message start seen, which may
    /// have been body bytes (see `after_step`).
    picked_up: bool,
    last_ts: u64,
    /// Request heads announced as soon as they parse (the live view shows them before their
    /// response); None when nobody asked.
    started: Option<Vec<Message>>,
}

impl Http1Conn {
    pub fn new(role: Role, limits: Limits) -> Self {
        Http1Conn {
            role,
            limits,
            req: Side::new(true, limits.max_body),
            resp: Side::new(false, limits.max_body),
            pairing: Pairing::default(),
            stats: Stats::default(),
            closed: false,
            not_http: false,
            picked_up: false,
            last_ts: 0,
            started: None,
        }
    }

    /// The connection was open before tracing started (see `after_step`).
    pub fn picked_up(&mut self) {
        self.picked_up = true;
    }

    /// Announce each request head as soon as it parses (see `drain_started`).
    pub fn announce_requests(&mut self) {
        self.started.get_or_insert_with(Vec::new);
    }

    /// Request heads parsed since the last call (body empty), in order; with
    /// `announce_requests` only.
    pub fn drain_started(&mut self, out: &mut Vec<Message>) {
        if let Some(s) = self.started.as_mut() {
            out.append(s);
        }
    }

    pub fn on_data(&mut self, dir: Direction, pos: u64, len: u64, data: &[u8], ts_ns: u64, by: Process) {
        self.last_ts = self.last_ts.max(ts_ns);
        if self.is_done() {
            return;
        }
        let seg = Segment::new(pos, len, data, ts_ns, by);
        let mut cx = Cx { pairing: &mut self.pairing, limits: &self.limits, stats: &mut self.stats, started: &mut self.started };
        if dir == self.role.request_direction() {
            self.req.on_segment(seg, &mut cx);
            cx.pairing.frontier = self.req.frontier();
            self.resp.resume(false, &mut cx);
        } else {
            self.resp.on_segment(seg, &mut cx);
        }
        self.after_step();
    }

    /// The `dir` stream ends at `pos` (a FIN or RST there): bytes before it that never
    /// arrive are a gap, declared after the reorder timeout or at close like any other, so
    /// a close-delimited body cut short by lost bytes is not reported complete.
    pub fn on_end(&mut self, dir: Direction, pos: u64, ts_ns: u64) {
        // An empty segment at the end: the stream buffer then knows the bytes before it
        // are missing, as it knows those behind a segment that arrived early.
        self.on_data(dir, pos, 0, &[], ts_ns, Process::default());
    }

    /// The connection closed: a close-delimited body ends here, complete.
    pub fn on_close(&mut self, ts_ns: u64) {
        self.end(ts_ns, Note::Closed);
    }

    /// The connection is no longer followed (l7trace exits, or evicts it): what is in
    /// progress is reported as it stands, incomplete (`unfinished`), a close-delimited body
    /// included, since its end was not seen.
    pub fn on_abandon(&mut self, ts_ns: u64) {
        self.end(ts_ns, Note::Unfinished);
    }

    /// The connection is no longer followed, its end never seen, and the kernel reported
    /// losses after the last bytes of the directions `lost` names (`Direction` order),
    /// without saying whose: what is in progress in those is reported as a `gap`, not as
    /// merely unfinished, and the rest of a body of known length counts as lost.
    pub fn on_abandon_after_loss(&mut self, ts_ns: u64, lost: [bool; 2]) {
        let note = |lost: bool| if lost { Note::Gap } else { Note::Unfinished };
        let req = self.role.request_direction() as usize;
        self.end_with(ts_ns, note(lost[req]), note(lost[1 - req]));
    }

    fn end(&mut self, ts_ns: u64, note: Note) {
        self.end_with(ts_ns, note, note);
    }

    /// `req_note` for the request side, `resp_note` for the response side and the
    /// requests still waiting for an answer.
    fn end_with(&mut self, ts_ns: u64, req_note: Note, resp_note: Note) {
        self.last_ts = self.last_ts.max(ts_ns);
        if self.closed {
            return;
        }
        let mut cx = Cx { pairing: &mut self.pairing, limits: &self.limits, stats: &mut self.stats, started: &mut self.started };
        if !self.not_http {
            self.req.close(req_note, &mut cx);
            cx.pairing.frontier = Frontier::closed();
            self.resp.close(resp_note, &mut cx);
        }
        cx.pairing.close(resp_note);
        self.closed = true;
        self.req.clear();
        self.resp.clear();
    }

    pub fn on_tick(&mut self, now_ns: u64) {
        self.tick(now_ns, true);
    }

    /// A tick of a connection whose socket closed while its requests wait for answers that
    /// its process may still read: they are not timed out (the close, when the connection
    /// ends, says what became of them).
    pub fn on_tick_closed(&mut self, now_ns: u64) {
        self.tick(now_ns, false);
    }

    fn tick(&mut self, now_ns: u64, timeouts: bool) {
        if self.is_done() {
            return;
        }
        let mut cx = Cx { pairing: &mut self.pairing, limits: &self.limits, stats: &mut self.stats, started: &mut self.started };
        self.req.tick(now_ns, &mut cx);
        cx.pairing.frontier = self.req.frontier();
        self.resp.resume(false, &mut cx);
        self.resp.tick(now_ns, &mut cx);
        if timeouts && self.resp.at_boundary() && !cx.stats.upgraded {
            cx.pairing.timeouts(now_ns, cx.limits.response_timeout_ns);
        }
        self.after_step();
    }

    pub fn drain(&mut self, out: &mut Vec<Exchange>) {
        self.pairing.drain(out);
    }

    pub fn buffered_bytes(&self) -> usize {
        self.req.buffered() + self.resp.buffered()
    }

    /// The stream positions reached, in `Direction` order (egress, ingress).
    pub fn positions(&self) -> [u64; 2] {
        let (req, resp) = (self.req.position(), self.resp.position());
        if self.role.request_direction() == Direction::Egress { [req, resp] } else { [resp, req] }
    }

    /// A connection forgotten (idle, evicted) and picked up again by a new parser: the
    /// bytes before `positions` (`Direction` order) went to the old one, which reported
    /// them; they are not missing here.
    pub fn start_at(&mut self, positions: [u64; 2]) {
        let [egress, ingress] = positions;
        let (req, resp) = if self.role.request_direction() == Direction::Egress { (egress, ingress) } else { (ingress, egress) };
        self.req.start_at(req);
        self.resp.start_at(resp);
    }

    /// Bytes held against the table's `Budget`: the stream buffers, and the messages
    /// waiting for their pairing.
    pub fn held_bytes(&self) -> usize {
        self.buffered_bytes() + self.pairing.held()
    }

    /// Gives up everything held (the table is over its `Budget`), as when one direction
    /// passes its own bound: stored and held bytes dropped (counted, and lost to the
    /// messages they belonged to: a head is reported cut, a body `gap`), paused heads
    /// decided now, requests waiting for an answer of which nothing came yet emitted
    /// without it (`unfinished`); a request or response still being read keeps its slot.
    /// The connection is still followed, from the next message start.
    pub fn shed(&mut self) {
        if self.is_done() {
            return;
        }
        let mut cx = Cx { pairing: &mut self.pairing, limits: &self.limits, stats: &mut self.stats, started: &mut self.started };
        self.req.enforce(0, &mut cx);
        cx.pairing.frontier = self.req.frontier();
        // A response head held (paused) is decided now, and pairs with its request.
        self.resp.enforce(0, &mut cx);
        // Last, so that a shed frees what it held: a head cut above keeps its complete
        // lines, which may be most of it, and is reported now, without its answer.
        cx.pairing.give_up_waiting();
        self.after_step();
    }

    pub fn dropped_bytes(&self) -> u64 {
        self.stats.dropped
    }

    /// Bytes known lost (gaps), whether or not inside a reported message.
    pub fn lost_bytes(&self) -> u64 {
        self.stats.lost
    }

    /// Responses dropped because no request could be paired with them safely, plus late
    /// responses to requests already reported as timed out.
    pub fn orphan_responses(&self) -> u64 {
        self.pairing.orphans()
    }

    /// Nothing in progress: every message seen has been emitted, no byte is held. A close
    /// then changes nothing, whatever is read after it.
    pub fn is_idle(&self) -> bool {
        self.is_done()
            || (self.pairing.is_empty()
                && self.req.at_boundary()
                && self.resp.at_boundary()
                && self.buffered_bytes() == 0)
    }

    /// Requests wait for their answers.
    pub fn awaiting_response(&self) -> bool {
        !self.is_done() && self.pairing.awaiting_answers()
    }

    /// Nothing more of the connection will be parsed, whatever comes, though it is open:
    /// it became another protocol (an upgrade, a tunnel) or was found not to be HTTP.
    pub fn left_http(&self) -> bool {
        self.not_http || self.stats.upgraded
    }

    pub fn is_done(&self) -> bool {
        self.closed || self.left_http()
    }

    pub fn last_ts_ns(&self) -> u64 {
        self.last_ts
    }

    fn after_step(&mut self) {
        if self.stats.upgraded {
            self.req.clear();
            self.resp.clear();
        }
        // Picked up inside a long body (a download, an upload), a connection parses as
        // nothing in that one direction until the body ends: no sign that it is not HTTP.
        // A protocol that is not goes both ways.
        let one_way = self.picked_up && !(self.stats.unparsed_sides[0] && self.stats.unparsed_sides[1]);
        if !self.stats.parsed_any && self.stats.unparsed >= NOT_HTTP_AFTER && !one_way {
            self.not_http = true;
            self.req.clear();
            self.resp.clear();
        }
        self.pairing.flush();
    }
}
