//! The state of the view and the one place it changes: `App::update(Action)`.
//!
//! The list is a ring of the last `max_rows` entries. The filtered view is kept
//! incrementally: each new entry is tested once when it arrives, an evicted one leaves the
//! front; only a filter change re-tests the (bounded) ring. Sorting other than by arrival
//! re-sorts the bounded view at most once per frame.

use std::{
    collections::{HashMap, VecDeque},
    hash::{BuildHasherDefault, Hasher},
};

use super::{entry::Entry, filter::Filter, ring::Ring, stats::LiveStats};
use crate::{
    output::{Clock, Counters},
    pipeline::Record,
    protocols::Note,
};

/// Whether a row belongs in the view.
fn shown(filter: &Filter, e: &Entry) -> bool {
    !e.hidden && filter.matches(e)
}

/// What a key, the mouse or the sink asks of the view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Move the selection by rows (negative: up).
    Move(isize),
    /// Move the selection by pages.
    Page(isize),
    First,
    Last,
    ToggleDetail,
    /// Esc: close help, then the detail pane, then the filter.
    Back,
    DetailScroll(i16),
    StartFilter,
    FilterChar(char),
    FilterBackspace,
    FilterClearInput,
    FilterAccept,
    FilterCancel,
    TogglePause,
    Clear,
    CycleSort,
    ToggleHelp,
    Quit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Normal,
    /// Typing after `/`.
    Filter,
    Help,
}

/// The order of the rows; the last row is the "most" (newest, slowest, highest status).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    Time,
    Latency,
    Status,
}

impl Sort {
    pub fn name(self) -> &'static str {
        match self {
            Sort::Time => "time",
            Sort::Latency => "latency",
            Sort::Status => "status",
        }
    }

    fn next(self) -> Sort {
        match self {
            Sort::Time => Sort::Latency,
            Sort::Latency => Sort::Status,
            Sort::Status => Sort::Time,
        }
    }
}

pub struct App {
    entries: Ring<Entry>,
    max_rows: usize,
    next_seq: u64,
    /// Seqs of the entries that pass the filter, ascending.
    matches: VecDeque<u64>,
    /// Entries below this seq have been tested against the filter (not the ones that came
    /// while paused).
    applied_upto: u64,
    /// `matches` in `sort` order, rebuilt by `prepare` when stale.
    sorted: Vec<u64>,
    sorted_stale: bool,
    pub filter: Filter,
    /// The text `filter` was parsed from: what the header shows as applied, which the
    /// input is not while it does not parse.
    pub filter_text: String,
    pub filter_input: String,
    pub filter_error: Option<String>,
    filter_before_edit: String,
    pub mode: Mode,
    pub sort: Sort,
    pub paused: bool,
    /// The selection sticks to the last row (newest) as rows arrive.
    pub follow: bool,
    /// The selected entry when not following.
    selected: Option<u64>,
    /// First visible row, kept in step with the selection.
    top: usize,
    /// Rows the table showed in the last frame.
    pub page: usize,
    pub detail: bool,
    pub detail_scroll: u16,
    pub stats: LiveStats,
    pub counters: Counters,
    pub now_ns: u64,
    pub quit: bool,
    /// The last notice about the capture (its interface down, a process gone), shown in
    /// the bottom line until the next.
    pub notice: Option<String>,
    clock: Clock,
    /// Rows of requests in flight by (connection, first byte's time); several when
    /// pipelined requests came in one segment (same time), completed in order.
    pending: HashMap<(u64, u64), Waiting, BuildHasherDefault<KeyHasher>>,
}

/// The rows waiting for the exchanges of one (connection, first byte's time), in order:
/// nearly always one, which needs no allocation.
#[derive(Debug, Default)]
struct Waiting {
    first: u64,
    more: VecDeque<u64>,
}

impl Waiting {
    fn new(seq: u64) -> Waiting {
        Waiting { first: seq, more: VecDeque::new() }
    }

    fn push(&mut self, seq: u64) {
        self.more.push_back(seq);
    }

    /// The first row, and whether another is left.
    fn pop(&mut self) -> (u64, bool) {
        let first = self.first;
        match self.more.pop_front() {
            Some(next) => {
                self.first = next;
                (first, true)
            }
            None => (first, false),
        }
    }

    /// Takes out the rows above `seq` into `out`; false when none is left.
    fn take_after(&mut self, seq: u64, out: &mut Vec<u64>) -> bool {
        out.extend(self.more.iter().copied().filter(|s| *s > seq));
        self.more.retain(|s| *s <= seq);
        if self.first > seq {
            out.push(self.first);
            match self.more.pop_front() {
                Some(next) => self.first = next,
                None => return false,
            }
        }
        true
    }

    /// Forgets rows below `seq` (fallen off the list); false when none is left.
    fn keep_from(&mut self, seq: u64) -> bool {
        self.more.retain(|s| *s >= seq);
        if self.first < seq {
            match self.more.pop_front() {
                Some(next) => self.first = next,
                None => return false,
            }
        }
        true
    }
}

/// The pending map's keys, a connection id and a kernel timestamp, are not chosen by
/// anyone who could aim collisions at them, and SipHash cost more than the lookup: this
/// is FxHash's multiply-rotate, its high bits rotated down to where the table looks.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }

    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn finish(&self) -> u64 {
        self.0.rotate_left(26)
    }
}

impl App {
    pub fn new(max_rows: usize, clock: Clock) -> App {
        App {
            entries: Ring::new(max_rows.max(1)),
            max_rows: max_rows.max(1),
            next_seq: 0,
            matches: VecDeque::new(),
            applied_upto: 0,
            sorted: Vec::new(),
            sorted_stale: false,
            filter: Filter::default(),
            filter_text: String::new(),
            filter_input: String::new(),
            filter_error: None,
            filter_before_edit: String::new(),
            mode: Mode::Normal,
            sort: Sort::Time,
            paused: false,
            follow: true,
            selected: None,
            top: 0,
            page: 20,
            detail: false,
            detail_scroll: 0,
            stats: LiveStats::default(),
            counters: Counters::default(),
            now_ns: 0,
            quit: false,
            notice: None,
            clock,
            pending: HashMap::default(),
        }
    }

    pub fn max_rows(&self) -> usize {
        self.max_rows
    }

    /// Entries held (filtered or not).
    pub fn held(&self) -> usize {
        self.entries.len()
    }

    /// A request in flight (a new row), or a finished exchange (fills its row in place, or
    /// a new row): O(1) whatever the size of the list, but for a filter whose verdict
    /// changes when the response arrives.
    pub fn push(&mut self, r: Record) {
        let id = (r.conn, r.exchange.request.first_ts_ns);
        if r.in_flight {
            let seq = self.next_seq;
            self.pending.entry(id).and_modify(|w| w.push(seq)).or_insert_with(|| Waiting::new(seq));
            if self.pending.len() > 2 * self.max_rows {
                let first = self.entries.front().map_or(0, |e| e.seq);
                self.pending.retain(|_, w| w.keep_from(first));
            }
            self.add_row(r);
            return;
        }
        let seq = match self.pending.get_mut(&id).map(Waiting::pop) {
            Some((seq, more)) => {
                if !more {
                    self.pending.remove(&id);
                }
                Some(seq)
            }
            None => None,
        };
        let (conn, upgrade) = (r.conn, r.exchange.note == Some(Note::Upgrade));
        let seq = match seq {
            Some(seq) if self.entry(seq).is_some() => {
                self.complete(seq, r);
                seq
            }
            _ => {
                self.add_row(r);
                self.next_seq - 1
            }
        };
        if upgrade {
            self.hide_tunnelled(conn, seq);
        }
    }

    /// After an upgrade (a CONNECT's 2xx, a 101) on `conn`, the rows announced after its
    /// row `seq` still waiting were tunnelled bytes that parsed as request heads: the
    /// parser dropped them, no exchange will finish them, and they would wait for ever.
    fn hide_tunnelled(&mut self, conn: u64, seq: u64) {
        let mut gone = Vec::new();
        self.pending.retain(|&(c, _), w| c != conn || w.take_after(seq, &mut gone));
        for s in gone {
            let Some(first) = self.entries.front().map(|e| e.seq) else { return };
            let Some(e) = s.checked_sub(first).and_then(|i| self.entries.get_mut(i as usize)) else { continue };
            (e.hidden, e.pending) = (true, false);
            if std::mem::take(&mut e.matched) {
                if let Ok(i) = self.matches.binary_search(&s) {
                    self.matches.remove(i);
                }
                self.sorted_stale = true;
            }
        }
    }

    fn complete(&mut self, seq: u64, r: Record) {
        let Some(first) = self.entries.front().map(|e| e.seq) else { return };
        let Some(e) = self.entries.get_mut((seq - first) as usize) else { return };
        e.finish(r);
        self.stats.add(e.done_ns(), e.status, e.latency_us);
        if seq >= self.applied_upto {
            return;
        }
        let (was, now) = (e.matched, shown(&self.filter, e));
        e.matched = now;
        if was != now {
            match self.matches.binary_search(&seq) {
                Ok(i) => {
                    self.matches.remove(i);
                }
                Err(i) => self.matches.insert(i, seq),
            }
        }
        // A row in the view changed its latency and status: sort keys.
        self.sorted_stale |= was || now;
    }

    /// A new row for `r`; on a full list, the oldest row is refilled in place, its buffers
    /// reused (see `entry`).
    fn add_row(&mut self, r: Record) {
        self.forget_oldest();
        let seq = self.next_seq;
        match self.entries.reuse_oldest() {
            Some(old) => {
                old.refill(seq, r, &self.clock);
                // The next to be refilled.
                if let Some(next) = self.entries.front() {
                    next.prefetch();
                }
            }
            None => self.entries.push(Entry::new(seq, r, &self.clock)),
        }
        self.added();
    }

    /// Appends a row made elsewhere (tests).
    #[cfg(test)]
    pub fn push_entry(&mut self, mut e: Entry) {
        self.forget_oldest();
        e.seq = self.next_seq;
        self.entries.push(e);
        self.added();
    }

    /// On a full list, the view lets go of the oldest row, about to be overwritten.
    fn forget_oldest(&mut self) {
        if !self.entries.is_full() {
            return;
        }
        let Some(old) = self.entries.front().map(|e| e.seq) else { return };
        if self.matches.front() == Some(&old) {
            self.matches.pop_front();
            self.sorted_stale = true;
        }
        if self.selected == Some(old) {
            self.selected = self.matches.front().copied();
        }
    }

    /// The newest row was added.
    fn added(&mut self) {
        self.next_seq += 1;
        if let Some(e) = self.entries.back().filter(|e| !e.pending) {
            self.stats.add(e.done_ns(), e.status, e.latency_us);
        }
        if !self.paused {
            self.apply_pending();
        }
    }

    fn apply_pending(&mut self) {
        while self.applied_upto < self.next_seq {
            let seq = self.applied_upto;
            let filter = &self.filter;
            let first = self.entries.front().map_or(0, |e| e.seq);
            if let Some(e) = seq.checked_sub(first).and_then(|i| self.entries.get_mut(i as usize)) {
                e.matched = shown(filter, e);
                if e.matched {
                    self.matches.push_back(seq);
                    self.sorted_stale = true;
                }
            }
            self.applied_upto += 1;
        }
    }

    pub fn entry(&self, seq: u64) -> Option<&Entry> {
        let first = self.entries.front()?.seq;
        self.entries.get(seq.checked_sub(first)? as usize)
    }


    /// Rows in the view (after the filter).
    pub fn view_len(&self) -> usize {
        self.matches.len()
    }

    /// The entry at a row of the view.
    pub fn view_entry(&self, pos: usize) -> Option<&Entry> {
        let seq = match self.sort {
            Sort::Time => *self.matches.get(pos)?,
            _ => *self.sorted.get(pos)?,
        };
        self.entry(seq)
    }

    pub fn selected_pos(&self) -> Option<usize> {
        let len = self.view_len();
        if len == 0 {
            return None;
        }
        if self.follow {
            return Some(len - 1);
        }
        let seq = self.selected?;
        match self.sort {
            Sort::Time => self.matches.binary_search(&seq).ok(),
            _ => self.sorted.iter().position(|&s| s == seq),
        }
        .or(Some(len - 1))
    }

    pub fn selected_entry(&self) -> Option<&Entry> {
        self.view_entry(self.selected_pos()?)
    }

    /// The first visible row for a table of `height` rows: the selection is visible and,
    /// when the list allows, the table is full.
    pub fn top_for(&self, height: usize) -> usize {
        let len = self.view_len();
        let height = height.max(1);
        let mut top = self.top.min(len.saturating_sub(height));
        if let Some(sel) = self.selected_pos() {
            if sel < top {
                top = sel;
            } else if sel >= top + height {
                top = sel + 1 - height;
            }
        }
        top
    }

    /// Work due before a frame: the sorted view, at most once per frame.
    pub fn prepare(&mut self) {
        if self.sort != Sort::Time && self.sorted_stale {
            let mut v: Vec<u64> = self.matches.iter().copied().collect();
            let key = |s: &u64| {
                let e = self.entry(*s);
                let k = match self.sort {
                    Sort::Latency => e.and_then(|e| e.latency_us).unwrap_or(u64::MAX),
                    Sort::Status => e.and_then(|e| e.status).map_or(u64::MAX, u64::from),
                    Sort::Time => 0,
                };
                (k, *s)
            };
            v.sort_unstable_by_key(key);
            self.sorted = v;
            self.sorted_stale = false;
        }
        self.top = self.top_for(self.page);
    }

    pub fn update(&mut self, action: Action) {
        match action {
            Action::Move(n) => self.move_by(n),
            Action::Page(n) => self.move_by(n * self.page.max(1) as isize),
            Action::First => self.select(0),
            Action::Last => self.select(usize::MAX),
            Action::ToggleDetail => {
                self.detail = !self.detail;
                self.detail_scroll = 0;
            }
            Action::Back => self.back(),
            Action::DetailScroll(n) => {
                self.detail_scroll = self.detail_scroll.saturating_add_signed(n);
            }
            Action::StartFilter => {
                self.filter_before_edit = self.filter_input.clone();
                self.mode = Mode::Filter;
            }
            Action::FilterChar(c) => {
                self.filter_input.push(c);
                self.reparse();
            }
            Action::FilterBackspace => {
                self.filter_input.pop();
                self.reparse();
            }
            Action::FilterClearInput => {
                self.filter_input.clear();
                self.reparse();
            }
            // Text that does not parse is not kept: its error stays in sight until it
            // is mended or undone.
            Action::FilterAccept if self.filter_error.is_none() => self.mode = Mode::Normal,
            Action::FilterAccept => {}
            Action::FilterCancel => {
                self.filter_input = std::mem::take(&mut self.filter_before_edit);
                self.reparse();
                self.mode = Mode::Normal;
            }
            Action::TogglePause => {
                self.paused = !self.paused;
                if !self.paused {
                    self.apply_pending();
                }
            }
            Action::Clear => self.clear(),
            Action::CycleSort => {
                self.sort = self.sort.next();
                self.sorted_stale = true;
                self.prepare();
            }
            Action::ToggleHelp => {
                self.mode = if self.mode == Mode::Help { Mode::Normal } else { Mode::Help };
            }
            Action::Quit => self.quit = true,
        }
    }

    fn move_by(&mut self, n: isize) {
        let Some(pos) = self.selected_pos() else { return };
        self.select(pos.saturating_add_signed(n));
    }

    /// Selects a row (clamped); selecting the last row follows the newest again.
    fn select(&mut self, pos: usize) {
        let len = self.view_len();
        if len == 0 {
            return;
        }
        let pos = pos.min(len - 1);
        let before = self.selected_pos();
        self.follow = pos == len - 1 && !self.paused;
        self.selected = self.view_entry(pos).map(|e| e.seq);
        if before != Some(pos) {
            self.detail_scroll = 0;
        }
        let h = self.page.max(1);
        if pos < self.top {
            self.top = pos;
        } else if pos >= self.top + h {
            self.top = pos + 1 - h;
        }
    }

    fn back(&mut self) {
        if self.mode == Mode::Help {
            self.mode = Mode::Normal;
        } else if self.detail {
            self.detail = false;
        } else if !self.filter_input.is_empty() {
            self.filter_input.clear();
            self.reparse();
        }
    }

    /// Filter as you type: a term being typed that does not parse yet keeps the last
    /// filter that did, and says why.
    fn reparse(&mut self) {
        match Filter::parse(&self.filter_input) {
            Ok(f) => {
                self.filter_error = None;
                self.filter_text.clone_from(&self.filter_input);
                if f != self.filter {
                    self.filter = f;
                    self.refilter();
                }
            }
            Err(e) => self.filter_error = Some(e.to_string()),
        }
    }

    /// Re-tests the held entries (bounded by `max_rows`): only on a filter change.
    fn refilter(&mut self) {
        let selected = if self.follow { None } else { self.selected };
        self.matches.clear();
        let upto = self.applied_upto;
        for i in 0..self.entries.len() {
            let Some(e) = self.entries.get_mut(i).filter(|e| e.seq < upto) else { break };
            e.matched = shown(&self.filter, e);
            if e.matched {
                self.matches.push_back(e.seq);
            }
        }
        self.sorted_stale = true;
        if selected.is_some_and(|s| self.matches.binary_search(&s).is_err()) {
            self.follow = true;
        }
        self.prepare();
    }

    fn clear(&mut self) {
        self.entries.clear();
        self.matches.clear();
        self.sorted.clear();
        self.applied_upto = self.next_seq;
        self.stats = LiveStats::default();
        self.selected = None;
        self.follow = true;
        self.top = 0;
        self.detail_scroll = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::tui::testutil::{entry, type_filter};

    fn app_with(n: u64, max_rows: usize) -> App {
        let mut app = App::new(max_rows, Clock::new());
        app.page = 5;
        for i in 0..n {
            let status = if i % 10 == 9 { 500 } else { 200 };
            app.push_entry(entry(i, "GET", &format!("/r/{i}"), Some(status), Some(i * 1000), "curl"));
        }
        app
    }

    fn seqs(app: &App) -> Vec<u64> {
        (0..app.view_len()).map(|p| app.view_entry(p).unwrap().seq).collect()
    }

    #[test]
    fn ring_is_bounded_and_follows_newest() {
        let app = app_with(25, 10);
        assert_eq!(app.held(), 10);
        assert_eq!(seqs(&app), (15..25).collect::<Vec<_>>());
        assert_eq!(app.selected_entry().unwrap().seq, 24);
    }

    #[test]
    fn filter_is_incremental_and_survives_eviction() {
        let mut app = app_with(0, 20);
        type_filter(&mut app, "status>=500");
        assert_eq!(app.filter_error, None);
        for i in 0..40 {
            let status = if i % 10 == 9 { 500 } else { 200 };
            app.push_entry(entry(0, "GET", "/", Some(status), None, "curl"));
        }
        assert_eq!(seqs(&app), vec![29, 39]);
        // An incomplete term keeps the last good filter and reports the problem.
        app.update(Action::FilterChar('>'));
        assert!(app.filter_error.is_some());
        assert_eq!(seqs(&app), vec![29, 39]);
        app.update(Action::FilterCancel);
        assert_eq!(app.filter_input, "");
        assert_eq!(app.view_len(), 20);
    }

    #[test]
    fn moving_stops_following_and_last_row_resumes() {
        let mut app = app_with(30, 100);
        app.update(Action::Move(-3));
        assert!(!app.follow);
        assert_eq!(app.selected_entry().unwrap().seq, 26);
        app.push_entry(entry(0, "GET", "/new", Some(200), None, "curl"));
        assert_eq!(app.selected_entry().unwrap().seq, 26, "selection stays put");
        app.prepare();
        assert!(app.top_for(5) <= 26 && 26 < app.top_for(5) + 5);
        app.update(Action::First);
        assert_eq!(app.selected_entry().unwrap().seq, 0);
        assert_eq!(app.top_for(5), 0);
        app.update(Action::Page(1));
        assert_eq!(app.selected_entry().unwrap().seq, 5);
        app.update(Action::Last);
        assert!(app.follow);
        assert_eq!(app.selected_entry().unwrap().seq, 30);
    }

    #[test]
    fn pause_holds_the_view_and_clear_empties_it() {
        let mut app = app_with(5, 100);
        app.update(Action::TogglePause);
        app.push_entry(entry(0, "GET", "/later", Some(200), None, "curl"));
        assert_eq!(app.view_len(), 5);
        app.update(Action::TogglePause);
        assert_eq!(app.view_len(), 6);
        app.update(Action::Clear);
        assert_eq!(app.view_len(), 0);
        assert_eq!(app.held(), 0);
        assert_eq!(app.stats.by_class, [0; 6]);
    }

    #[test]
    fn sort_by_latency_puts_slowest_last() {
        let mut app = app_with(0, 100);
        for lat in [5, 1, 9, 3] {
            app.push_entry(entry(0, "GET", "/", Some(200), Some(lat), "curl"));
        }
        app.update(Action::CycleSort);
        assert_eq!(app.sort, Sort::Latency);
        let lats: Vec<u64> =
            (0..app.view_len()).map(|p| app.view_entry(p).unwrap().latency_us.unwrap()).collect();
        assert_eq!(lats, vec![1, 3, 5, 9]);
    }

    fn record(conn: u64, target: &str, status: Option<u16>) -> Record {
        use crate::protocols::{Exchange, Message, StartLine};
        let msg = |start| Message {
            start,
            headers: Default::default(),
            trailers: Default::default(),
            body_size: 0,
            body: vec![],
            body_truncated: false,
            first_ts_ns: 1_000,
            last_ts_ns: 2_000,
            process: Default::default(),
            complete: true,
            lost_bytes: 0,
        };
        let request = msg(StartLine::Request { method: "GET".into(), target: target.as_bytes().to_vec(), version: 1 });
        let response = status.map(|status| msg(StartLine::Response { version: 1, status, reason: b"OK"[..].into() }));
        Record {
            source: crate::pipeline::Source::Syscall,
            role: None,
            process: None,
            client: "127.0.0.1:1".parse().unwrap(),
            server: "127.0.0.1:2".parse().unwrap(),
            exchange: Exchange { request, response, note: None, interim: Vec::new() },
            conn,
            in_flight: status.is_none(),
        }
    }

    #[test]
    fn in_flight_row_is_completed_in_place() {
        let mut app = App::new(10, Clock::new());
        app.push(record(7, "/slow", None));
        app.push(record(8, "/other", Some(200)));
        assert_eq!(app.view_len(), 2);
        assert!(app.view_entry(0).unwrap().pending);
        app.push(record(7, "/slow", Some(503)));
        assert_eq!(app.view_len(), 2, "the row was filled, not added");
        let e = app.view_entry(0).unwrap();
        assert_eq!((e.pending, e.status, e.target()), (false, Some(503), "/slow"));
    }

    #[test]
    fn finished_exchange_names_the_process_its_head_did_not_know() {
        // --iface: the head is attributed to the client; the server process that reads
        // it later owns the connection by the time the exchange finishes.
        use crate::{pipeline::Process, protocols::Role};
        let owner = |pid, comm: &[u8]| {
            let mut c = [0; 16];
            c[..comm.len()].copy_from_slice(comm);
            Some(Process { pid, tid: pid, comm: c })
        };
        let mut app = App::new(10, Clock::new());
        type_filter(&mut app, "comm=slowsrv");
        let mut head = record(7, "/slow", None);
        (head.process, head.role) = (owner(11, b"curl"), Some(Role::Client));
        head.exchange.request.headers.push(b"Host", b"127.0.0.1:8277");
        app.push(head);
        assert_eq!(app.view_len(), 0);
        let mut done = record(7, "/slow", Some(200));
        (done.process, done.role) = (owner(22, b"slowsrv"), Some(Role::Server));
        app.push(done);
        assert_eq!(seqs(&app), vec![0], "the filter sees the final owner");
        let e = app.view_entry(0).unwrap();
        assert_eq!((e.pid, e.tid, e.comm(), e.role), (22, 22, "slowsrv", Some(Role::Server)));
        assert_eq!((e.method(), e.host(), e.target()), ("GET", "127.0.0.1:8277", "/slow"));
    }

    #[test]
    fn pipelined_requests_of_one_segment_fill_their_own_rows() {
        // Two heads parsed from one segment carry the same first timestamp.
        let mut app = App::new(10, Clock::new());
        app.push(record(7, "/a", None));
        app.push(record(7, "/b", None));
        app.push(record(7, "/a", Some(200)));
        app.push(record(7, "/b", Some(404)));
        assert_eq!(app.view_len(), 2, "both rows filled in place");
        let rows: Vec<_> = (0..2).map(|i| app.view_entry(i).unwrap()).map(|e| (e.target().to_owned(), e.status, e.pending)).collect();
        assert!(rows.contains(&("/a".into(), Some(200), false)), "{rows:?}");
        assert!(rows.contains(&("/b".into(), Some(404), false)), "{rows:?}");
    }

    #[test]
    fn filter_picks_up_a_row_when_its_response_arrives() {
        let mut app = App::new(10, Clock::new());
        type_filter(&mut app, "status>=500");
        app.push(record(7, "/slow", None));
        assert_eq!(app.view_len(), 0);
        app.push(record(7, "/slow", Some(503)));
        assert_eq!(seqs(&app), vec![0]);
    }
}
