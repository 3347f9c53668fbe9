//! One direction of an HTTP/1 connection: in-order bytes in, messages out.
//!
//! Bytes are parsed in place from the segment whenever nothing is held; only an
//! unfinished unit (a head, a chunk-size line, a trailer section) is copied into `held`
//! and completed by the next segments. A response head that cannot be paired yet pauses
//! this side: its bytes stay in `held`, later segments stay in the `StreamBuf`.

use std::sync::LazyLock;

use memchr::memmem;

use super::head::{self, Candidate, Framing, MethodKind, Parsed};
use super::marks::Marks;
use super::pairing::{Decision, Frontier, Hidden, Pairing};
use crate::protocols::{Limits, Message, Note, StartLine};
use crate::reassembly::{Segment, StreamBuf, MAX_STORED_SEGMENTS};

/// Longest chunk-size line (with extensions) accepted before calling it garbage.
const MAX_CHUNK_LINE: usize = 8192;
/// Below this many held bytes, re-parsing is cheaper than looking for a terminator.
const RESCAN_BELOW: usize = 64;
/// How a chunked body ends: the last data chunk's CRLF, the zero-size chunk, the empty
/// trailer section.
const LAST_CHUNK: &[u8] = b"\r\n0\r\n\r\n";

#[derive(Debug, Default)]
pub(super) struct Stats {
    pub dropped: u64,
    pub lost: u64,
    pub unparsed: u64,
    /// Bytes were passed over unparsed in the request (0) and response (1) direction.
    pub unparsed_sides: [bool; 2],
    pub parsed_any: bool,
    pub upgraded: bool,
}

impl Stats {
    fn add_unparsed(&mut self, request: bool, n: u64) {
        self.unparsed += n;
        if n > 0 {
            self.unparsed_sides[usize::from(!request)] = true;
        }
    }
}

pub(super) struct Cx<'a> {
    pub pairing: &'a mut Pairing,
    pub limits: &'a Limits,
    pub stats: &'a mut Stats,
    pub started: &'a mut Option<Vec<Message>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Head,
    Length(u64),
    UntilClose,
    ChunkSize,
    ChunkData(u64),
    ChunkCrlf,
    Trailer,
    /// Inside a chunked body whose framing went by uncaptured (a read or write larger than
    /// the capture, holding several chunk-size lines): chunk boundaries are unknown, so
    /// the body is followed as bytes until it visibly ends (`step_blind`).
    Blind,
}

struct Building {
    msg: Message,
    slot: Option<u64>,
    note: Option<Note>,
    /// Body bytes were skipped: later ones are not the body's prefix, so not kept.
    hole: bool,
}

pub(super) struct Side {
    request: bool,
    max_body: usize,
    stream: StreamBuf,
    held: Vec<u8>,
    held_pos: u64,
    /// Held bytes already known not to contain the current unit's terminator.
    scan_from: usize,
    marks: Marks,
    state: State,
    cur: Option<Building>,
    resync: bool,
    paused: bool,
    force_decide: bool,
    last_ts: u64,
    seen_ts: u64,
    /// The segment being parsed has uncaptured bytes after its data: its data's end is
    /// not the syscall's.
    seg_cut: bool,
    /// A blind body's last bytes went by uncaptured: their last two may be the CRLF that
    /// begins the zero-size chunk's line (see `consume`).
    blind_crlf: bool,
}

impl Side {
    pub fn new(request: bool, max_body: usize) -> Self {
        Side {
            request,
            max_body,
            stream: StreamBuf::new(),
            held: Vec::new(),
            held_pos: 0,
            scan_from: 0,
            marks: Marks::default(),
            state: State::Head,
            cur: None,
            resync: false,
            paused: false,
            force_decide: false,
            last_ts: 0,
            seen_ts: 0,
            seg_cut: false,
            blind_crlf: false,
        }
    }

    /// The stream position of the next byte expected.
    pub fn position(&self) -> u64 {
        self.stream.next_pos()
    }

    /// A side that has seen nothing starts at `pos`: the bytes before it went to an
    /// earlier parser of the same connection (one forgotten, then picked up again).
    pub fn start_at(&mut self, pos: u64) {
        if self.stream.next_pos() == 0 && !self.stream.has_stored() && self.held.is_empty() {
            self.stream.advance_to(pos);
        }
    }

    pub fn buffered(&self) -> usize {
        self.held.len() + self.stream.stored_bytes()
    }

    /// Between messages, not waiting for a pairing decision.
    pub fn at_boundary(&self) -> bool {
        self.state == State::Head && !self.paused
    }

    pub fn frontier(&self) -> Frontier {
        Frontier {
            seen_ts: self.seen_ts,
            waiting_bytes: self.stream.has_stored(),
            partial_head_ts: (!self.held.is_empty()).then(|| self.marks.at(self.held_pos).0),
        }
    }

    pub fn clear(&mut self) {
        self.held = Vec::new();
        self.stream.clear();
    }

    pub fn on_segment(&mut self, seg: Segment<'_>, cx: &mut Cx<'_>) {
        self.seen_ts = self.seen_ts.max(seg.ts_ns);
        let Some(seg) = self.stream.trim(seg) else { return };
        if !self.paused && self.stream.is_next(&seg) {
            self.consume(seg, cx);
        } else {
            self.stream.store(seg);
        }
        self.pump(cx);
        self.enforce(cx.limits.max_buffer, cx);
    }

    fn pump(&mut self, cx: &mut Cx<'_>) {
        while !self.paused && !cx.stats.upgraded {
            let Some(seg) = self.stream.pop_contiguous() else { break };
            self.consume(seg.as_segment(), cx);
        }
    }

    fn consume(&mut self, seg: Segment<'_>, cx: &mut Cx<'_>) {
        self.marks.push(seg.pos, seg.ts_ns, seg.by);
        // A blind body whose end went by unseen (in uncaptured bytes, or with trailers):
        // a syscall (a packet) that starts with the next message's start line ends it.
        if self.state == State::Blind && head::starts_message(self.request, seg.data) {
            self.end_blind_unseen(cx);
        }
        // Resynchronising (after a gap, or a head cut short by the capture, which leaves
        // the framing unknown): a syscall (a packet) that starts with a start token starts
        // the next message, as writers send a head from its first byte. It is taken as
        // one now, so that when the capture cuts it short too, it is salvaged like any
        // cut head rather than dropped with its answer while waiting for one that parses
        // whole (varnish's heads past an iovec limit, every head under a small
        // --max-capture).
        if self.resync && self.state == State::Head && self.held.is_empty() && head::starts_message(self.request, seg.data) {
            self.resync = false;
        }
        self.last_ts = seg.ts_ns;
        self.seg_cut = seg.uncaptured() > 0;
        if std::mem::take(&mut self.blind_crlf) && self.state == State::Blind && seg.data.first() == Some(&b'0') {
            // Matched as the CRLF before it; counted back as body if they were not.
            self.held.extend_from_slice(&LAST_CHUNK[..2]);
            self.held_pos = seg.pos - 2;
            self.unskip(2);
        }
        let data_end = seg.pos + seg.data.len() as u64;
        if !seg.data.is_empty() {
            if self.held.is_empty() {
                let n = self.run(seg.data, seg.pos, cx);
                if n < seg.data.len() && !cx.stats.upgraded {
                    self.held.extend_from_slice(&seg.data[n..]);
                    self.held_pos = seg.pos + n as u64;
                    self.scan_from = if self.paused { 0 } else { self.held.len() };
                }
            } else {
                self.held.extend_from_slice(seg.data);
                if self.may_progress() {
                    self.run_held(cx);
                } else {
                    self.scan_from = self.held.len();
                }
            }
        }
        self.stream.advance_to(data_end);
        let uncaptured = seg.uncaptured();
        if uncaptured > 0 && !cx.stats.upgraded {
            if self.paused {
                // Keep the count in order behind the paused head.
                self.stream.store(Segment::new(data_end, uncaptured, &[], seg.ts_ns, seg.by));
            } else {
                self.stream.advance_to(seg.end());
                self.skip(uncaptured, false, cx);
            }
        }
        let keep_from = if self.held.is_empty() { self.stream.next_pos() } else { self.held_pos };
        self.marks.prune(keep_from);
    }

    fn run_held(&mut self, cx: &mut Cx<'_>) {
        let held = std::mem::take(&mut self.held);
        let n = self.run(&held, self.held_pos, cx);
        self.held = held;
        if cx.stats.upgraded {
            self.held.clear();
            return;
        }
        self.held.drain(..n);
        self.held_pos += n as u64;
        self.scan_from = if self.paused { 0 } else { self.held.len() };
    }

    /// Whether the held unit may now be complete; avoids re-parsing a growing head once
    /// per tiny segment (quadratic).
    fn may_progress(&self) -> bool {
        if self.held.len() < RESCAN_BELOW {
            return true;
        }
        let hay = &self.held[self.scan_from.saturating_sub(3)..];
        match self.state {
            State::ChunkSize | State::ChunkCrlf => hay.contains(&b'\n'),
            State::Blind => true,
            // Once past the longest lenient request line, parse once more to let it go.
            _ => {
                head::find_blank_line(hay).is_some()
                    || (self.scan_from <= head::MAX_LENIENT_LINE && self.held.len() > head::MAX_LENIENT_LINE)
            }
        }
    }

    /// Parses as much of `input` (stream bytes from `base`) as possible; returns how many
    /// bytes were consumed. The rest is an unfinished unit or a paused head.
    fn run(&mut self, input: &[u8], base: u64, cx: &mut Cx<'_>) -> usize {
        let mut off = 0;
        while off < input.len() && !self.paused && !cx.stats.upgraded {
            let pos = base + off as u64;
            let rest = &input[off..];
            let step = match self.state {
                State::Head => self.step_head(rest, pos, cx),
                State::Length(rem) | State::ChunkData(rem) => Some(self.step_data(rem, rest, pos, cx)),
                State::UntilClose => {
                    self.take_body(rest, pos);
                    Some(rest.len())
                }
                State::ChunkSize => self.step_chunk_size(rest, pos, cx),
                State::ChunkCrlf => self.step_chunk_crlf(rest, pos, cx),
                State::Trailer => self.step_trailer(rest, pos, cx),
                State::Blind => self.step_blind(rest, pos, cx),
            };
            match step {
                Some(n) => off += n,
                None => break,
            }
        }
        off
    }

    fn step_head(&mut self, rest: &[u8], pos: u64, cx: &mut Cx<'_>) -> Option<usize> {
        // Empty lines before a start line are ignored (RFC 9112 section 2.2: a CRLF after
        // a body). Consumed on their own, so that a message starts, and is stamped, at its
        // start line: stamped at a CRLF sent with the previous message, a response would
        // look older than its request, be dropped, and shift the pairing of the next ones.
        let blank = rest.iter().take_while(|&&b| b == b'\r' || b == b'\n').count();
        if blank > 0 {
            return Some(blank);
        }
        if self.resync {
            match head::find_candidate(self.request, rest) {
                Candidate::At(0) => {}
                Candidate::Prefix(0) => return None,
                Candidate::At(i) | Candidate::Prefix(i) => return Some(self.unparsed(i, cx)),
                Candidate::None => return Some(self.unparsed(rest.len(), cx)),
            }
        }
        if self.request {
            self.request_head(rest, pos, cx)
        } else {
            self.response_head(rest, pos, cx)
        }
    }

    fn unparsed(&mut self, n: usize, cx: &mut Cx<'_>) -> usize {
        cx.stats.add_unparsed(self.request, n as u64);
        if !self.request {
            cx.pairing.response_passed_over(self.last_ts);
        }
        n
    }

    fn request_head(&mut self, rest: &[u8], pos: u64, cx: &mut Cx<'_>) -> Option<usize> {
        let (len, h) = match head::parse_request(rest) {
            Ok(Parsed::Complete { len, head }) => (len, head),
            Ok(Parsed::Partial) => return self.partial_head(rest, pos, cx),
            Err(_) => return Some(self.head_error(1, cx)),
        };
        let (ts, _) = self.marks.at(pos);
        let slot = cx.pairing.push_request(ts, h.method, cx.limits.max_buffer);
        let msg = self.new_message(h.start, h.headers, pos, len, cx);
        if let Some(started) = cx.started.as_mut() {
            started.push(msg.clone());
        }
        let note = h.lenient.then_some(Note::ParseError);
        self.cur = Some(Building { msg, slot: Some(slot), note, hole: false });
        self.enter_body(h.framing, cx);
        Some(len)
    }

    fn response_head(&mut self, rest: &[u8], pos: u64, cx: &mut Cx<'_>) -> Option<usize> {
        let (len, h) = match head::parse_response(rest) {
            Ok(Parsed::Complete { len, head }) => (len, head),
            Ok(Parsed::Partial) => return self.partial_head(rest, pos, cx),
            Err(_) => return Some(self.head_error(1, cx)),
        };
        let (ts, _) = self.marks.at(pos);
        if h.is_interim() {
            // Its request not parsed yet (the response side ran ahead): wait for it, as a
            // final response does, so the head is kept with it.
            if !cx.pairing.awaiting_answers() && !self.force_decide {
                self.paused = true;
                return None;
            }
            let head = self.new_message(h.start, h.headers, pos, len, cx);
            cx.pairing.interim(head);
            return Some(len);
        }
        let slot = match cx.pairing.decide(ts, self.force_decide) {
            Decision::Wait => {
                self.paused = true;
                return None;
            }
            Decision::Orphan => None,
            Decision::Pair(seq) => Some(seq),
        };
        let method = slot.map_or(MethodKind::Other, |s| cx.pairing.method(s));
        let framing = head::response_framing(h.status, method, &h.body);
        let msg = self.new_message(h.start, h.headers, pos, len, cx);
        self.cur = Some(Building { msg, slot, note: None, hole: false });
        if framing == Framing::Upgrade {
            if let Some(seq) = slot {
                cx.pairing.upgrade(seq);
            }
            self.finish(cx);
            cx.stats.upgraded = true;
            return Some(len);
        }
        self.enter_body(framing, cx);
        Some(len)
    }

    fn new_message(
        &mut self,
        start: StartLine,
        headers: head::Headers,
        pos: u64,
        len: usize,
        cx: &mut Cx<'_>,
    ) -> Message {
        cx.stats.parsed_any = true;
        self.resync = false;
        let (first_ts, process) = self.marks.at(pos);
        Message {
            start,
            headers,
            trailers: Default::default(),
            body_size: 0,
            body: Vec::new(),
            body_truncated: false,
            first_ts_ns: first_ts,
            last_ts_ns: self.marks.at(pos + len as u64 - 1).0.max(first_ts),
            process,
            complete: true,
            lost_bytes: 0,
        }
    }

    fn partial_head(&mut self, rest: &[u8], pos: u64, cx: &mut Cx<'_>) -> Option<usize> {
        if rest.len() < cx.limits.max_buffer {
            return None;
        }
        self.head_too_large(rest, pos, cx);
        Some(rest.len())
    }

    /// The unfinished head `bytes` (from stream position `pos`) outgrew the connection's
    /// buffer bound: dropped. What came of it, its start line and complete field lines, is
    /// reported, incomplete (`gap`), the bytes after them counted lost in it, so that its
    /// answer pairs with it and the connection is still followed; the rest of the head
    /// is passed over looking for the next message start. A start line longer than the
    /// bound is reported by no record (its answer is an orphan), but the connection is
    /// still HTTP: the bytes began with a request's or response's first token.
    fn head_too_large(&mut self, bytes: &[u8], pos: u64, cx: &mut Cx<'_>) {
        cx.stats.dropped += bytes.len() as u64;
        if !self.resync && head::starts_message(self.request, bytes) {
            cx.stats.parsed_any = true;
        }
        let kept = if self.resync { None } else { self.salvage(bytes, pos, cx) };
        match kept {
            Some(kept) => self.framing_lost((bytes.len() - kept) as u64, true, cx),
            None => {
                self.head_error(bytes.len(), cx);
                cx.stats.unparsed -= bytes.len() as u64;
            }
        }
    }

    /// A head that cannot be HTTP: report it once, then look for the next message start.
    fn head_error(&mut self, skip: usize, cx: &mut Cx<'_>) -> usize {
        if !self.resync {
            self.resync = true;
            // Requests lost before the next one need no mark: answers are matched to
            // requests by timestamp (see pairing).
            if !self.request {
                cx.pairing.response_parse_error(self.last_ts);
            }
        }
        self.unparsed(skip, cx)
    }

    fn enter_body(&mut self, framing: Framing, cx: &mut Cx<'_>) {
        self.state = match framing {
            Framing::Empty | Framing::Length(0) | Framing::Upgrade => {
                self.finish(cx);
                State::Head
            }
            Framing::Length(n) => State::Length(n),
            Framing::Chunked => State::ChunkSize,
            Framing::UntilClose => State::UntilClose,
            // The head is reported, marked; where the next message starts is searched for.
            Framing::Unknown => {
                self.framing_error(cx);
                State::Head
            }
        };
    }

    fn step_data(&mut self, rem: u64, rest: &[u8], pos: u64, cx: &mut Cx<'_>) -> usize {
        let k = usize::try_from(rem).unwrap_or(usize::MAX).min(rest.len());
        self.take_body(&rest[..k], pos);
        self.data_taken(rem - k as u64, cx);
        k
    }

    /// `left` body (or chunk) bytes remain after some were taken.
    fn data_taken(&mut self, left: u64, cx: &mut Cx<'_>) {
        self.state = match (self.state, left) {
            (State::Length(_), 0) => {
                self.finish(cx);
                State::Head
            }
            (State::Length(_), n) => State::Length(n),
            (State::ChunkData(_), 0) => State::ChunkCrlf,
            (State::ChunkData(_), n) => State::ChunkData(n),
            (s, _) => s,
        };
    }

    fn take_body(&mut self, bytes: &[u8], pos: u64) {
        if bytes.is_empty() {
            return;
        }
        let ts = self.marks.at(pos + bytes.len() as u64 - 1).0;
        if let Some(b) = self.cur.as_mut() {
            if !b.hole {
                let room = self.max_body.saturating_sub(b.msg.body.len());
                b.msg.body.extend_from_slice(&bytes[..room.min(bytes.len())]);
            }
            b.msg.body_size += bytes.len() as u64;
            b.msg.last_ts_ns = b.msg.last_ts_ns.max(ts);
        }
    }

    fn touch(&mut self, last_pos: u64) {
        let ts = self.marks.at(last_pos).0;
        if let Some(b) = self.cur.as_mut() {
            b.msg.last_ts_ns = b.msg.last_ts_ns.max(ts);
        }
    }

    fn step_chunk_size(&mut self, rest: &[u8], pos: u64, cx: &mut Cx<'_>) -> Option<usize> {
        match httparse::parse_chunk_size(rest) {
            Ok(httparse::Status::Complete((n, size))) => {
                self.touch(pos + n as u64 - 1);
                self.state = if size == 0 { State::Trailer } else { State::ChunkData(size) };
                Some(n)
            }
            Ok(httparse::Status::Partial) if rest.len() <= MAX_CHUNK_LINE => None,
            _ => Some(self.framing_error(cx)),
        }
    }

    fn step_chunk_crlf(&mut self, rest: &[u8], pos: u64, cx: &mut Cx<'_>) -> Option<usize> {
        let n = match rest {
            [b'\r', b'\n', ..] => 2,
            [b'\n', ..] => 1,
            [b'\r'] => return None,
            _ => return Some(self.framing_error(cx)),
        };
        self.touch(pos + n as u64 - 1);
        self.state = State::ChunkSize;
        Some(n)
    }

    /// The trailer section: its fields are kept with the message.
    fn step_trailer(&mut self, rest: &[u8], pos: u64, cx: &mut Cx<'_>) -> Option<usize> {
        let n = match rest {
            [b'\r', b'\n', ..] => 2,
            [b'\n', ..] => 1,
            [b'\r'] => return None,
            _ => match head::find_blank_line(rest) {
                Some(n) => {
                    if let Some(b) = self.cur.as_mut() {
                        b.msg.trailers = head::trailer_fields(&rest[..n]);
                    }
                    n
                }
                None if rest.len() < cx.limits.max_buffer => return None,
                None => return Some(self.framing_error(cx)),
            },
        };
        Some(self.end_at(n, pos, cx))
    }

    /// The message's last byte is the `end`th from `pos`: it is done; returns `end`.
    fn end_at(&mut self, end: usize, pos: u64, cx: &mut Cx<'_>) -> usize {
        self.touch(pos + end as u64 - 1);
        self.finish(cx);
        self.state = State::Head;
        end
    }

    /// A blind chunked body (`State::Blind`) ends at the zero-size chunk, when that is at
    /// the end of what the syscall (the packet) moved or right before the next message's
    /// start line; anywhere else it may be body bytes. Up to 6 bytes that may begin it are
    /// left for the next segment (held). The body size then counts the hidden chunk-size
    /// lines too (a few bytes per hidden chunk): the message is already marked truncated.
    fn step_blind(&mut self, rest: &[u8], pos: u64, cx: &mut Cx<'_>) -> Option<usize> {
        static LAST: LazyLock<memmem::Finder<'static>> = LazyLock::new(|| memmem::Finder::new(LAST_CHUNK));
        let mut from = 0;
        while let Some(i) = LAST.find(&rest[from..]) {
            let at = from + i;
            let end = at + LAST_CHUNK.len();
            let after = &rest[end..];
            // A start line right after it, or the start of one at the end of the syscall.
            if (after.is_empty() && !self.seg_cut) || head::may_start_message(self.request, after, !self.seg_cut) {
                self.body_skipped(at as u64, false, cx);
                let end = self.end_at(end, pos, cx);
                self.blind_ended(false, cx);
                return Some(end);
            }
            from = at + 1;
        }
        let keep = (1..LAST_CHUNK.len()).rev().find(|&k| rest.ends_with(&LAST_CHUNK[..k])).unwrap_or(0);
        let n = rest.len() - keep;
        if n == 0 {
            return None;
        }
        self.body_skipped(n as u64, false, cx);
        self.touch(pos + n as u64 - 1);
        Some(n)
    }

    /// Uncaptured bytes of a blind body: counted.
    fn blind_hidden(&mut self, n: u64, cx: &mut Cx<'_>) {
        self.held_to_body(cx);
        self.body_skipped(n, false, cx);
        self.blind_crlf = n >= 2;
    }

    /// Bytes held in a blind body (a possible start of the zero-size chunk) are body.
    fn held_to_body(&mut self, cx: &mut Cx<'_>) {
        self.body_skipped(self.held.len() as u64, false, cx);
        self.held.clear();
    }

    /// Takes back `n` bytes counted as body (see `consume`).
    fn unskip(&mut self, n: u64) {
        if let Some(b) = self.cur.as_mut() {
            b.msg.body_size = b.msg.body_size.saturating_sub(n);
        }
    }

    /// The blind body ended before this point, unseen (hidden, or for too long no byte
    /// came): the message ends with what was held.
    fn end_blind_unseen(&mut self, cx: &mut Cx<'_>) {
        self.held_to_body(cx);
        self.finish(cx);
        self.state = State::Head;
        self.blind_ended(true, cx);
    }

    /// The hidden bytes of a blind body may have held other messages whole (pipelining):
    /// then later answers are paired as after a gap. Answers: when another request still
    /// waits for one. Requests: when the end was not seen.
    fn blind_ended(&mut self, unseen: bool, cx: &mut Cx<'_>) {
        self.blind_crlf = false;
        let may_have_hidden_one = if self.request { unseen } else { cx.pairing.awaiting_answers() };
        if may_have_hidden_one {
            self.mark_gap(Hidden::Uncaptured, cx);
        }
    }

    /// The body framing broke: the message ends here, incomplete, and parsing restarts at
    /// the next plausible message start.
    fn framing_error(&mut self, cx: &mut Cx<'_>) -> usize {
        self.spoil(Note::ParseError);
        self.finish(cx);
        self.lose_sync(Hidden::Unframed, cx);
        0
    }

    /// The message in progress is incomplete: `note` says why, unless it already does.
    fn spoil(&mut self, note: Note) {
        if let Some(b) = self.cur.as_mut() {
            b.msg.complete = false;
            b.note.get_or_insert(note);
        }
    }

    fn lose_sync(&mut self, why: Hidden, cx: &mut Cx<'_>) {
        self.state = State::Head;
        self.resync = true;
        self.mark_gap(why, cx);
    }

    /// Messages may be hidden after the last byte seen, in bytes `why` says what became of.
    fn mark_gap(&mut self, why: Hidden, cx: &mut Cx<'_>) {
        if self.request {
            cx.pairing.request_gap(self.last_ts);
        } else {
            cx.pairing.response_gap(self.last_ts, why);
        }
    }

    /// `n` stream bytes at the current position are not available: lost (`lost`) or
    /// counted but not captured. Inside a body of known length they are just counted;
    /// anywhere else the framing is unknown and this is a gap.
    pub fn skip(&mut self, mut n: u64, lost: bool, cx: &mut Cx<'_>) {
        while n > 0 {
            match self.state {
                State::Length(rem) | State::ChunkData(rem) if self.held.is_empty() => {
                    let k = n.min(rem);
                    self.body_skipped(k, lost, cx);
                    n -= k;
                    self.data_taken(rem - k, cx);
                }
                State::UntilClose => {
                    self.body_skipped(n, lost, cx);
                    n = 0;
                }
                State::Blind if !lost => {
                    self.blind_hidden(n, cx);
                    n = 0;
                }
                // A chunk's CRLF that its writer sent with the chunk's data, the whole
                // syscall more than was captured: those two bytes were counted, and the
                // next chunk-size line starts after them, in the next syscall. It must
                // then parse, or the framing breaks as it would have.
                State::ChunkCrlf if !lost && n == 2 && self.held.is_empty() => {
                    self.state = State::ChunkSize;
                    n = 0;
                }
                // Uncaptured bytes hide a chunk-size line: the message goes on, blind.
                State::ChunkSize | State::ChunkCrlf if !lost => {
                    self.spoil(Note::Truncated);
                    self.held_to_body(cx);
                    self.state = State::Blind;
                }
                _ => {
                    if self.state == State::Head && self.cur.is_none() && !self.resync {
                        let held = std::mem::take(&mut self.held);
                        let pos = self.held_pos;
                        // A start line cut by the capture is reported as far as it came;
                        // one cut by a loss is not (what the gap held is unknown).
                        let mut kept = self.salvage(&held, pos, cx);
                        if kept.is_none() && !lost {
                            kept = self.salvage_start_line(&held, pos, cx);
                        }
                        if kept.is_none() {
                            self.held = held;
                        }
                    }
                    self.framing_lost(n, lost, cx);
                    n = 0;
                }
            }
        }
    }

    fn body_skipped(&mut self, k: u64, lost: bool, cx: &mut Cx<'_>) {
        let ts = self.last_ts;
        if let Some(b) = self.cur.as_mut() {
            b.msg.body_size = b.msg.body_size.saturating_add(k);
            b.msg.last_ts_ns = b.msg.last_ts_ns.max(ts);
            b.hole = true;
            if lost {
                b.msg.lost_bytes = b.msg.lost_bytes.saturating_add(k);
                b.msg.complete = false;
                b.note.get_or_insert(Note::Gap);
            }
        }
        if lost {
            cx.stats.lost = cx.stats.lost.saturating_add(k);
        }
    }

    /// A head cut short (by a gap, when larger than what a syscall or a packet captured,
    /// or by the buffer bound): what arrived of it, `bytes` from stream position `pos`, the
    /// start line and the complete field lines, becomes the message, incomplete, so that
    /// the exchange is reported and its response pairs with its own request rather than
    /// being dropped or pairing with the next. Returns how many of `bytes` the message
    /// holds (its complete lines), or None when they hold no message.
    fn salvage(&mut self, bytes: &[u8], pos: u64, cx: &mut Cx<'_>) -> Option<usize> {
        let end = bytes.iter().rposition(|&b| b == b'\n')?;
        let mut cut = Vec::with_capacity(end + 3);
        cut.extend_from_slice(&bytes[..=end]);
        cut.extend_from_slice(b"\r\n");
        if self.request {
            let Ok(Parsed::Complete { head: h, .. }) = head::parse_request(&cut) else { return None };
            self.begin_salvaged(h.start, h.headers, h.method, pos, bytes.len(), cx);
        } else {
            let Ok(Parsed::Complete { head: h, .. }) = head::parse_response(&cut) else { return None };
            if h.is_interim() {
                return None;
            }
            self.begin_salvaged(h.start, h.headers, MethodKind::Other, pos, bytes.len(), cx);
        }
        Some(end + 1)
    }

    /// A head whose start line itself was cut short by the capture (a target longer than
    /// what its syscall copied): reported as far as it came (`head::cut_start_line`), with
    /// no field, so that the exchange is not lost with its answer, and the connection,
    /// which began with a start token, is known to be HTTP. Returns how many of `bytes`
    /// the message holds (all of them), or None when they hold no such beginning, or an
    /// interim one.
    fn salvage_start_line(&mut self, bytes: &[u8], pos: u64, cx: &mut Cx<'_>) -> Option<usize> {
        let (start, method) = head::cut_start_line(self.request, bytes)?;
        // An interim answer (100 Continue, a 101 whose switch could not be seen) is not
        // the response: taken as one, it would take the final one's place.
        if matches!(start, StartLine::Response { status: 100..=199, .. }) {
            return None;
        }
        self.begin_salvaged(start, head::Headers::default(), method, pos, bytes.len(), cx);
        Some(bytes.len())
    }

    /// Makes what was salvaged of a head (`len` bytes from stream position `pos`) the
    /// message being built: a request takes its slot in the pairing (and is announced), a
    /// response pairs now if it can.
    fn begin_salvaged(&mut self, start: StartLine, headers: head::Headers, method: MethodKind, pos: u64, len: usize, cx: &mut Cx<'_>) {
        let (ts, _) = self.marks.at(pos);
        let slot = if self.request {
            Some(cx.pairing.push_request(ts, method, cx.limits.max_buffer))
        } else {
            match cx.pairing.decide(ts, true) {
                Decision::Pair(seq) => Some(seq),
                _ => None,
            }
        };
        let msg = self.new_message(start, headers, pos, len, cx);
        if self.request {
            if let Some(started) = cx.started.as_mut() {
                started.push(msg.clone());
            }
        }
        self.cur = Some(Building { msg, slot, note: None, hole: false });
    }

    /// `n` bytes the framing needed are missing: lost (`lost`), or counted but not
    /// captured, which is no loss: the message is then `truncated`, not a `gap`.
    fn framing_lost(&mut self, n: u64, lost: bool, cx: &mut Cx<'_>) {
        let lost_n = if lost { n } else { 0 };
        cx.stats.lost = cx.stats.lost.saturating_add(lost_n);
        if let Some(b) = self.cur.as_mut() {
            b.msg.complete = false;
            b.msg.lost_bytes = b.msg.lost_bytes.saturating_add(lost_n);
            b.note.get_or_insert(if lost { Note::Gap } else { Note::Truncated });
        }
        self.finish(cx);
        if !self.held.is_empty() {
            cx.stats.add_unparsed(self.request, self.held.len() as u64);
            self.held.clear();
        }
        self.lose_sync(if lost { Hidden::Lost } else { Hidden::Uncaptured }, cx);
    }

    fn finish(&mut self, cx: &mut Cx<'_>) {
        let Some(mut b) = self.cur.take() else { return };
        b.msg.body_truncated = (b.msg.body.len() as u64) < b.msg.body_size;
        match (self.request, b.slot) {
            (true, Some(seq)) => cx.pairing.request_done(seq, b.msg, b.note),
            (false, Some(seq)) => cx.pairing.response_done(seq, b.msg, b.note),
            // An orphan response: framed to stay in sync, then dropped (already counted).
            (_, None) => {}
        }
    }

    /// Lets a paused response head be decided again (after request-side progress, or
    /// forced on timeout, memory bound or close).
    pub fn resume(&mut self, force: bool, cx: &mut Cx<'_>) {
        if !self.paused {
            return;
        }
        self.paused = false;
        self.force_decide = force;
        if !self.held.is_empty() {
            self.run_held(cx);
        }
        self.force_decide = false;
        self.pump(cx);
    }

    /// Declares gaps for bytes that out-of-order segments waited on too long.
    pub fn tick(&mut self, now: u64, cx: &mut Cx<'_>) {
        // A blind body with no byte for the response timeout: its end went by unseen.
        if self.state == State::Blind && now.saturating_sub(self.last_ts) > cx.limits.response_timeout_ns {
            self.end_blind_unseen(cx);
        }
        loop {
            if self.paused {
                let head_ts = self.marks.at(self.held_pos).0;
                if now.saturating_sub(head_ts) <= cx.limits.reorder_timeout_ns {
                    return;
                }
                self.resume(true, cx);
            }
            match self.stream.gap_ahead() {
                Some((_, ts)) if now.saturating_sub(ts) > cx.limits.reorder_timeout_ns => {}
                _ => return,
            }
            if cx.stats.upgraded || self.declare_gap(cx).is_none() {
                return;
            }
        }
    }

    fn declare_gap(&mut self, cx: &mut Cx<'_>) -> Option<u64> {
        let len = self.stream.skip_gap()?;
        self.skip(len, true, cx);
        self.pump(cx);
        Some(len)
    }

    /// Keeps held plus stored bytes under `bound` (`max_buffer`, or 0 to shed them all):
    /// decide a paused head, give up on missing ranges early, or drop an oversized
    /// unfinished unit.
    #[inline]
    pub fn enforce(&mut self, bound: usize, cx: &mut Cx<'_>) {
        if self.buffered() > bound || self.stream.stored_segments() > MAX_STORED_SEGMENTS {
            self.shrink_to(bound, cx);
        }
    }

    fn shrink_to(&mut self, bound: usize, cx: &mut Cx<'_>) {
        loop {
            let over = self.buffered() > bound
                || self.stream.stored_segments() > MAX_STORED_SEGMENTS;
            if !over || cx.stats.upgraded {
                return;
            }
            if self.paused {
                self.resume(true, cx);
            } else if let Some(len) = self.declare_gap(cx) {
                cx.stats.dropped = cx.stats.dropped.saturating_add(len);
            } else if !self.held.is_empty() {
                let held = std::mem::take(&mut self.held);
                if self.state == State::Head && self.cur.is_none() {
                    self.head_too_large(&held, self.held_pos, cx);
                } else {
                    // A unit inside a message (a trailer section, a chunk-size line) over
                    // the bound: the message ends at its last byte here, the rest of it
                    // lost, but for the trailer fields complete in it, which are kept.
                    cx.stats.dropped += held.len() as u64;
                    let mut kept = 0;
                    if self.state == State::Trailer {
                        if let (Some(end), Some(b)) = (held.iter().rposition(|&b| b == b'\n'), self.cur.as_mut()) {
                            b.msg.trailers = head::trailer_fields(&held[..=end]);
                            kept = end + 1;
                        }
                    }
                    self.touch(self.held_pos + held.len() as u64 - 1);
                    let lost = (held.len() - kept) as u64;
                    self.held = held;
                    self.framing_lost(lost, true, cx);
                }
            } else {
                return;
            }
        }
    }

    /// Connection closed (`note` Closed) or abandoned (Unfinished): everything stored is
    /// processed, missing ranges become gaps, and the message in progress ends, complete
    /// only if close-delimited and the connection really closed.
    pub fn close(&mut self, note: Note, cx: &mut Cx<'_>) {
        if self.state == State::Blind {
            self.held_to_body(cx);
        }
        while !cx.stats.upgraded {
            if self.paused {
                self.resume(true, cx);
            } else if self.declare_gap(cx).is_none() {
                break;
            }
        }
        // Abandoned after losses the kernel reported (`Http1Conn::on_abandon_after_loss`):
        // the rest of a body of known length was sent (its writer declared it) and is
        // missing.
        if let State::Length(rem) = self.state {
            if note == Note::Gap && self.held.is_empty() && self.cur.is_some() {
                self.body_skipped(rem, true, cx);
            }
        }
        if self.state != State::UntilClose || note != Note::Closed {
            self.spoil(note);
        }
        self.finish(cx);
        cx.stats.add_unparsed(self.request, self.held.len() as u64);
        self.held.clear();
        self.state = State::Head;
    }
}
