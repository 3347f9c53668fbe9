//! Request/response pairing: strict order while both streams are intact, timestamps
//! after gaps (the rule is spelled out in the module comment of `http1`).

use std::collections::VecDeque;

use super::head::MethodKind;
use crate::protocols::{Exchange, Message, Note, MAX_INTERIM};

/// Requests waiting for emission or for a late response; beyond this the oldest is given
/// up (emitted alone, marked unfinished), so a peer that never answers cannot grow memory.
/// Its response, when it comes, is still known for what it is (`Pairing::skip`).
const MAX_SLOTS: usize = 1024;
/// Waiting requests beyond which the bytes they hold are checked against the budget.
const BUDGET_CHECK_FROM: usize = 8;

// Done is the state every answered request passes through: boxing its message would
// cost an allocation per response.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum Resp {
    Awaiting,
    /// A head (interim or final) was seen; the request keeps waiting past the timeout.
    Started,
    Done(Message),
    Missing,
    /// Moved into an emitted exchange.
    Taken,
}

/// What a gap in a stream was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Hidden {
    /// Bytes lost, at a time not known.
    Lost,
    /// Bytes that syscalls (packets) up to the last seen moved, not parsed (framing broken).
    Unframed,
    /// Bytes that syscalls (packets) up to the last seen moved, counted but not captured.
    Uncaptured,
}

#[derive(Debug)]
struct Slot {
    first_ts: u64,
    method: MethodKind,
    req: Option<Message>,
    req_last_ts: u64,
    resp: Resp,
    resp_ts: Option<u64>,
    note: Option<Note>,
    /// Already reported (timed out); still here so its late response is not misread.
    emitted: bool,
    /// Request bytes were lost after this request began, the last one before them seen at
    /// this instant: requests may have been lost there, answered by a later response.
    gap_after: Option<u64>,
    /// Paired after request framing was lost before it: held until the response stream
    /// shows no answer left over (`Pairing::req_gap`).
    unconfirmed: bool,
    /// Its pairing was undone: the response being read for it is dropped.
    refuted: bool,
    /// Interim (1xx) heads of its response.
    interim: Vec<Message>,
}

impl Slot {
    /// The message bytes this slot holds (its request, and its response once read).
    fn held(&self) -> usize {
        let resp = match &self.resp {
            Resp::Done(m) => m.held_bytes(),
            _ => 0,
        };
        self.req.as_ref().map_or(0, Message::held_bytes) + resp + self.interim.iter().map(Message::held_bytes).sum::<usize>()
    }

    /// The exchange of its request, moving what it holds.
    fn exchange(&mut self, request: Message, response: Option<Message>, note: Option<Note>) -> Exchange {
        Exchange { request, response, note, interim: std::mem::take(&mut self.interim) }
    }

    fn resolved(&self) -> bool {
        matches!(self.resp, Resp::Done(_) | Resp::Missing | Resp::Taken)
    }
    fn add_note(&mut self, note: Option<Note>) {
        if self.note.is_none() || self.note == Some(Note::Upgrade) {
            self.note = note.or(self.note);
        }
    }
}

/// How far the request stream has been read, to tell whether a request that started
/// before a given instant may still be on its way.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Frontier {
    pub seen_ts: u64,
    pub waiting_bytes: bool,
    pub partial_head_ts: Option<u64>,
}

impl Frontier {
    pub fn closed() -> Self {
        Frontier { seen_ts: u64::MAX, waiting_bytes: false, partial_head_ts: None }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub(super) enum Decision {
    Pair(u64),
    Orphan,
    Wait,
}

#[derive(Debug, Default)]
pub(super) struct Pairing {
    slots: VecDeque<Slot>,
    front_seq: u64,
    /// Sequence number of the first request with no response decided yet.
    cursor: u64,
    /// Responses may have been lost since this timestamp (last response byte before the
    /// gap; 0 when none was seen, i.e. unknown).
    resp_gap: Option<u64>,
    /// While `resp_gap` lasts: the latest timestamp of a syscall (a packet) that held bytes
    /// of it, when every one did (bytes counted but not captured, or passed over looking
    /// for the next message); None when some were lost, at a time not known.
    resp_hidden_ts: Option<u64>,
    /// While `resp_gap` lasts: every byte of it was counted but not captured (none lost,
    /// none merely unparsed).
    resp_gap_uncaptured: bool,
    pipelined: bool,
    /// Responses still owed to requests given up unanswered: while the response stream is
    /// intact, the next this many answer them (they are older than every request held),
    /// and are dropped, not paired with a later request.
    skip: u64,
    /// After a response gap that count is no longer known: responses may answer given-up
    /// requests until an ambiguous decision gives them all up. First byte of the latest.
    given_up_ts: Option<u64>,
    last_given_up_ts: u64,
    pub frontier: Frontier,
    ready: Vec<Exchange>,
    orphans: u64,
    /// Request framing was lost before the request of this sequence number: requests may
    /// have been lost there, and their answers come first. Pairing by order and time is
    /// right for a client that waits for each answer (the lost ones were answered before
    /// the next request was sent: such an answer starts before it, and is dropped), but a
    /// client that sent the next request before the lost one's answer would have that
    /// answer paired with it. So pairings from here on are held (`Slot::unconfirmed`):
    /// an answer left over (no request for it) undoes them; a request sent after the held
    /// answers ended on a connection not seen pipelining, a quiet response stream, or the
    /// connection's end confirms them.
    req_gap: Option<u64>,
    /// `Slot::held` summed over the slots, kept as they change: the budget check of every
    /// new request must not walk them all (a connection seen from one side only, its
    /// answers lost, holds up to MAX_SLOTS, and the walk made each of its events cost
    /// several times a normal one, which under load lost more events).
    held: usize,
}

impl Pairing {
    /// No request waits for a response or for its turn to be emitted.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty() && self.ready.is_empty()
    }

    pub fn orphans(&self) -> u64 {
        self.orphans
    }

    pub fn drain(&mut self, out: &mut Vec<Exchange>) {
        out.append(&mut self.ready);
    }

    fn idx(&self, seq: u64) -> Option<usize> {
        seq.checked_sub(self.front_seq).and_then(|i| usize::try_from(i).ok()).filter(|&i| i < self.slots.len())
    }

    /// Some request seen still waits for its answer.
    pub fn awaiting_answers(&self) -> bool {
        self.unanswered_start() < self.slots.len()
    }

    fn unanswered_start(&self) -> usize {
        usize::try_from(self.cursor.saturating_sub(self.front_seq)).unwrap_or(usize::MAX).min(self.slots.len())
    }

    /// A new request; `budget` bounds the bytes of the messages its connection holds
    /// (heads and kept bodies of requests waiting for their responses, and of responses
    /// waiting for earlier ones), like the stream buffers' own bound.
    pub fn push_request(&mut self, first_ts: u64, method: MethodKind, budget: usize) -> u64 {
        if self.slots.len() >= MAX_SLOTS {
            self.give_up_oldest();
        }
        #[cfg(any(test, debug_assertions))]
        assert_eq!(self.held, self.slots.iter().map(Slot::held).sum::<usize>(), "held bytes kept up to date");
        while self.slots.len() > BUDGET_CHECK_FROM && self.held > budget {
            self.give_up_oldest();
        }
        if let Some(prev) = self.slots.back() {
            // Sent before the previous answer started, or in the same write burst.
            let before_answer = prev.resp_ts.is_some_and(|rt| first_ts < rt);
            if before_answer || (prev.req.is_some() && first_ts <= prev.req_last_ts) {
                self.pipelined = true;
            }
        }
        self.slots.push_back(Slot {
            first_ts,
            method,
            req: None,
            req_last_ts: first_ts,
            resp: Resp::Awaiting,
            resp_ts: None,
            note: None,
            emitted: false,
            gap_after: None,
            unconfirmed: false,
            refuted: false,
            interim: Vec::new(),
        });
        self.front_seq + self.slots.len() as u64 - 1
    }

    /// Runs `f` on slot `i`, keeping `held` up to date.
    fn with_slot<R>(&mut self, i: usize, f: impl FnOnce(&mut Slot) -> R) -> R {
        let s = &mut self.slots[i];
        let before = s.held();
        let r = f(s);
        self.held = self.held - before + s.held();
        r
    }

    fn pop_front(&mut self) -> Option<Slot> {
        let s = self.slots.pop_front()?;
        self.held -= s.held();
        self.front_seq += 1;
        Some(s)
    }

    /// Bytes of the messages held (heads and kept bodies).
    pub fn held(&self) -> usize {
        self.held
    }

    /// Gives up the requests at the front that wait for an answer of which nothing came
    /// yet (see `give_up_oldest`), up to one still being read or answered.
    pub fn give_up_waiting(&mut self) {
        while self.slots.front().is_some_and(|s| (s.req.is_some() || s.emitted) && matches!(s.resp, Resp::Awaiting)) {
            self.give_up_oldest();
        }
    }

    fn give_up_oldest(&mut self) {
        if self.slots.front().is_some_and(|s| s.unconfirmed) {
            // Not confirmed in time: not trusted.
            self.refute();
        }
        if let Some(mut s) = self.pop_front() {
            let first_ts = s.first_ts;
            if !s.emitted && s.req.is_some() {
                s.add_note(Some(Note::Unfinished));
                self.emit(s);
            }
            if self.cursor < self.front_seq {
                // Unanswered: its response is still to come, ahead of the others.
                self.cursor = self.front_seq;
                self.last_given_up_ts = first_ts;
                match self.resp_gap {
                    None => self.skip += 1,
                    Some(_) => self.given_up_ts = Some(first_ts),
                }
            }
        }
    }

    pub fn request_done(&mut self, seq: u64, msg: Message, note: Option<Note>) {
        if let Some(i) = self.idx(seq) {
            self.with_slot(i, |s| {
                s.req_last_ts = msg.last_ts_ns;
                s.req = Some(msg);
                s.add_note(note);
            });
        }
    }

    pub fn method(&self, seq: u64) -> MethodKind {
        self.idx(seq).map_or(MethodKind::Other, |i| self.slots[i].method)
    }

    /// An interim (1xx) head: the response to the first unanswered request has started.
    /// The head is kept with that request only when it surely answers it: the answers are
    /// in order (no response gap, none owed to a request given up) and the head came after
    /// the request (an earlier one answers a request never seen: a connection picked up
    /// mid-way, a request lost).
    pub fn interim(&mut self, head: Message) {
        let i = self.unanswered_start();
        if i == self.slots.len() || head.first_ts_ns < self.slots[i].first_ts {
            return;
        }
        let in_order = self.resp_gap.is_none() && self.skip == 0 && self.given_up_ts.is_none();
        self.with_slot(i, |s| {
            if matches!(s.resp, Resp::Awaiting) {
                s.resp = Resp::Started;
            }
            if in_order && matches!(s.resp, Resp::Started) && s.interim.len() < MAX_INTERIM {
                s.interim.push(head);
            }
        });
    }

    fn caught_up(&self, t: u64, start: usize) -> bool {
        let f = &self.frontier;
        self.slots.range(start..).any(|s| s.first_ts > t)
            || (f.seen_ts >= t && !f.waiting_bytes && f.partial_head_ts.is_none_or(|p| p > t))
    }

    /// Which request the final response whose first byte is at `t` answers.
    pub fn decide(&mut self, t: u64, force: bool) -> Decision {
        if self.resp_gap.is_none() && self.skip > 0 {
            // Owed to a request given up: an orphan of known cause, no sign of a shift.
            self.skip -= 1;
            self.orphans += 1;
            return Decision::Orphan;
        }
        let start = self.unanswered_start();
        if start == self.slots.len() {
            return if force { self.orphan() } else { Decision::Wait };
        }
        // Every byte of the gap moved before the first request waiting for an answer was
        // sent (the rest of a head the capture cut short, with nothing pipelined after its
        // request): none of them answers it or a later one, and the responses from here on
        // are whole.
        let hidden_before = |h: u64| h < self.slots[start].first_ts;
        if self.resp_gap.is_some() && self.given_up_ts.is_none() && self.resp_hidden_ts.is_some_and(hidden_before) {
            self.resp_gap = None;
        }
        let Some(gap_ts) = self.resp_gap else {
            // Egress is stamped at syscall entry and ingress at exit, so an answer never
            // starts before its request: an earlier one answers a request we never saw
            // (a connection picked up mid-way, or a read that began before tracing).
            let q = &self.slots[start];
            return if t >= q.first_ts { self.pair(start, t) } else { self.orphan() };
        };
        if !force && !self.caught_up(t, start) {
            return Decision::Wait;
        }
        let k = self.slots.range(start..).take_while(|s| s.first_ts <= t).count();
        // Given-up requests may still be answered: any later candidate is ambiguous.
        if self.given_up_ts.is_some_and(|g| g <= t) {
            if k == 0 {
                return self.orphan();
            }
            (start..start + k).for_each(|i| self.miss(i, Note::Gap));
            self.given_up_ts = None;
            return self.orphan();
        }
        // Without pipelining, each later candidate was sent after the answer to the one
        // before it, an answer lost in the gap: after the gap began, in a later write.
        let one_by_one = gap_ts > 0
            && (start + 1..start + k)
                .all(|i| self.slots[i].first_ts > gap_ts && self.slots[i].first_ts > self.slots[i - 1].req_last_ts);
        // A request lost after the last candidate, once the bytes before it were sent
        // (before `t`), may be the one this response answers: no candidate can be chosen.
        let lost_after_last = k > 0 && self.slots[start + k - 1].gap_after.is_some_and(|g| g < t);
        match k {
            0 => self.orphan(),
            _ if lost_after_last => {
                (start..start + k).for_each(|i| self.miss(i, Note::Gap));
                self.orphan()
            }
            1 => {
                self.resp_gap = None;
                self.pair(start, t)
            }
            _ if !self.pipelined && one_by_one => {
                (start..start + k - 1).for_each(|i| self.miss(i, Note::Gap));
                self.resp_gap = None;
                self.pair(start + k - 1, t)
            }
            _ => {
                (start..start + k).for_each(|i| self.miss(i, Note::Gap));
                self.orphan()
            }
        }
    }

    /// A response no request is left for: after a request gap, the answers held
    /// unconfirmed were shifted by a lost request's answer, and are undone.
    fn orphan(&mut self) -> Decision {
        self.orphans += 1;
        self.refute();
        Decision::Orphan
    }

    /// Undoes the pairings held unconfirmed: their requests are reported without a
    /// response (`gap`), the responses counted as orphans.
    fn refute(&mut self) {
        let mut undone = 0;
        for s in self.slots.iter_mut().filter(|s| s.unconfirmed) {
            let before = s.held();
            s.unconfirmed = false;
            s.refuted = true;
            undone += matches!(s.resp, Resp::Done(_)) as u64;
            s.interim.clear();
            s.resp = Resp::Missing;
            s.note = Some(Note::Gap);
            self.held -= before - s.held();
        }
        self.orphans += undone;
    }

    /// Confirms the held pairings before slot `i` when its request was sent after all their
    /// answers had ended, on a connection not seen pipelining: a lost request's answer left
    /// over would have come before it (and undone them). False when there are none, or
    /// they cannot be confirmed yet.
    fn confirm_before(&mut self, i: usize) -> bool {
        let (first, pipelined) = (self.slots[i].first_ts, self.pipelined);
        let mut any = false;
        for s in self.slots.range_mut(..i).filter(|s| s.unconfirmed) {
            match &s.resp {
                Resp::Done(m) if !pipelined && m.last_ts_ns < first => any = true,
                _ => return false,
            }
        }
        if any {
            self.confirm();
        }
        any
    }

    fn confirm(&mut self) {
        self.slots.iter_mut().for_each(|s| s.unconfirmed = false);
        self.req_gap = None;
    }

    fn miss(&mut self, i: usize, note: Note) {
        self.with_slot(i, |s| {
            s.resp = Resp::Missing;
            s.add_note(Some(note));
        });
        self.cursor = self.cursor.max(self.front_seq + i as u64 + 1);
    }

    fn pair(&mut self, i: usize, t: u64) -> Decision {
        if self.slots.get(i + 1).is_some_and(|n| n.first_ts < t) {
            self.pipelined = true;
        }
        let seq = self.front_seq + i as u64;
        let held = self.req_gap.is_some_and(|g| seq >= g) && !self.confirm_before(i);
        // Awaiting -> Started: no bytes held either way, `held` stays.
        let s = &mut self.slots[i];
        s.resp = Resp::Started;
        s.resp_ts = Some(t);
        s.unconfirmed = held;
        self.cursor = seq + 1;
        Decision::Pair(seq)
    }

    pub fn response_done(&mut self, seq: u64, msg: Message, note: Option<Note>) {
        let Some(i) = self.idx(seq) else { return };
        let orphan = self.with_slot(i, |s| {
            if s.emitted {
                // Late answer to a request already reported as timed out.
                s.resp = Resp::Taken;
                return true;
            }
            if s.refuted {
                // Its pairing was undone while it was being read.
                return true;
            }
            s.resp = Resp::Done(msg);
            s.add_note(note);
            false
        });
        self.orphans += orphan as u64;
    }

    /// Request framing was lost (bytes lost, or counted but not captured) after the last
    /// request byte at `ts`: requests may be hidden there. The request before is marked
    /// (`Slot::gap_after`), and requests from the next one on are paired unconfirmed.
    pub fn request_gap(&mut self, ts: u64) {
        if let Some(s) = self.slots.back_mut() {
            s.gap_after.get_or_insert(ts);
        }
        self.req_gap.get_or_insert(self.front_seq + self.slots.len() as u64);
    }

    /// Responses may have been lost after the last response byte at `ts`: in bytes that
    /// the syscall (the packet) at `ts` moved without their being captured or framed, or
    /// lost at a time not known (`why`).
    pub fn response_gap(&mut self, ts: u64, why: Hidden) {
        let uncaptured = why == Hidden::Uncaptured;
        self.resp_gap_uncaptured = uncaptured && (self.resp_gap.is_none() || self.resp_gap_uncaptured);
        let hidden = (why != Hidden::Lost).then_some(ts);
        self.resp_hidden_ts = match self.resp_gap {
            None => hidden,
            Some(_) => self.resp_hidden_ts.zip(hidden).map(|(a, b)| a.max(b)),
        };
        self.resp_gap.get_or_insert(ts);
        if self.skip > 0 {
            // Some owed responses may be among the lost ones: how many is unknown now.
            self.skip = 0;
            self.given_up_ts = Some(self.last_given_up_ts);
        }
    }

    /// What a request missing its answer since the response gap began is noted: `gap`, or
    /// `truncated` when every byte of the gap was counted, not lost (a head sent by
    /// sendfile, splice or io_uring, beyond the capture); None without a gap.
    fn gap_note(&self) -> Option<Note> {
        self.resp_gap?;
        Some(if self.resp_gap_uncaptured { Note::Truncated } else { Note::Gap })
    }

    /// A response head failed to parse at a message boundary: it was the answer to the
    /// first unanswered request, if the response stream was intact.
    pub fn response_parse_error(&mut self, ts: u64) {
        let start = self.unanswered_start();
        if self.resp_gap.is_none() && start < self.slots.len() {
            self.miss(start, Note::ParseError);
        }
        self.response_gap(ts, Hidden::Unframed);
    }

    /// Response bytes of the syscall (the packet) at `ts` were passed over looking for the
    /// next message: any gap now open holds them too.
    pub fn response_passed_over(&mut self, ts: u64) {
        if self.resp_gap.is_some() {
            self.resp_hidden_ts = self.resp_hidden_ts.map(|h| h.max(ts));
        }
    }

    /// After a 101 or CONNECT: later "requests" were not HTTP.
    pub fn upgrade(&mut self, seq: u64) {
        if let Some(i) = self.idx(seq) {
            self.held -= self.slots.range(i + 1..).map(Slot::held).sum::<usize>();
            self.slots.truncate(i + 1);
            self.slots[i].add_note(Some(Note::Upgrade));
        }
    }

    /// Emits requests whose response has not started within `limit` of their end.
    pub fn timeouts(&mut self, now: u64, limit: u64) {
        // Held pairings and no answer in progress or ended within `limit`: none is left
        // over (a request still waiting then times out below).
        if self.slots.iter().any(|s| s.unconfirmed)
            && self.slots.iter().all(|s| match &s.resp {
                Resp::Started => false,
                Resp::Done(m) => now.saturating_sub(m.last_ts_ns) > limit,
                _ => true,
            })
        {
            self.confirm();
            self.flush();
        }
        let start = self.unanswered_start();
        if self.slots.range(..start).any(|s| !s.emitted) {
            return;
        }
        // With response bytes lost since, its response may have been among them.
        let note = self.gap_note().unwrap_or(Note::ResponseTimeout);
        for i in start..self.slots.len() {
            let s = &mut self.slots[i];
            if s.emitted {
                continue;
            }
            let waited = now.saturating_sub(s.req_last_ts);
            if s.req.is_none() || !matches!(s.resp, Resp::Awaiting) || waited <= limit {
                break;
            }
            let req = s.req.take();
            s.emitted = true;
            self.held -= req.as_ref().map_or(0, Message::held_bytes);
            if let Some(request) = req {
                self.ready.push(s.exchange(request, None, Some(note)));
            }
        }
    }

    /// Connection closed (`note` Closed), or no longer followed (Unfinished): whatever did
    /// not get a response never will here.
    pub fn close(&mut self, note: Note) {
        // Both streams have ended: an answer left over would have undone them by now.
        self.confirm();
        // Response bytes were lost after the last answer seen: the missing answers may be
        // among them (sent, then lost with the ring full), not cut off by the close.
        let note = match self.gap_note() {
            Some(gap) if note == Note::Closed => gap,
            _ => note,
        };
        for s in self.slots.iter_mut() {
            if matches!(s.resp, Resp::Awaiting | Resp::Started) {
                s.resp = Resp::Missing;
                s.add_note(Some(note));
            }
        }
        self.flush();
        self.held = 0;
        for mut s in self.slots.drain(..) {
            if let (false, Some(request)) = (s.emitted, s.req.take()) {
                let note = s.note.or(Some(note));
                self.ready.push(s.exchange(request, None, note));
            }
        }
        self.front_seq = self.cursor.max(self.front_seq);
        self.cursor = self.front_seq;
    }

    /// Moves exchanges that are finished into the output, in request order.
    pub fn flush(&mut self) {
        let mut i = 0;
        while i < self.slots.len() {
            let s = &mut self.slots[i];
            i += 1;
            if s.emitted {
                continue;
            }
            if s.req.is_none() || s.unconfirmed || !matches!(s.resp, Resp::Done(_) | Resp::Missing) {
                break;
            }
            s.emitted = true;
            self.held -= s.held();
            let request = s.req.take();
            let resp = std::mem::replace(&mut s.resp, Resp::Taken);
            let note = s.note;
            if let Some(request) = request {
                let response = match resp {
                    Resp::Done(m) => Some(m),
                    _ => None,
                };
                self.ready.push(s.exchange(request, response, note));
            }
        }
        while self.slots.front().is_some_and(|s| s.emitted && s.resolved()) {
            self.pop_front();
        }
        self.cursor = self.cursor.max(self.front_seq);
    }

    fn emit(&mut self, mut s: Slot) {
        if let Some(request) = s.req.take() {
            let response = match std::mem::replace(&mut s.resp, Resp::Taken) {
                Resp::Done(m) => Some(m),
                _ => None,
            };
            let note = s.note;
            self.ready.push(s.exchange(request, response, note));
        }
    }
}
