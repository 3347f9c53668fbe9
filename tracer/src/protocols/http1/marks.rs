//! Which segment (timestamp, thread) a stream position came from.
use crate::protocols::Process;

/// Past this many marks the oldest-but-one are merged away: the first byte of the held
/// unit keeps its exact timestamp, later ones may borrow a neighbour's.
const MAX_MARKS: usize = 1024;

#[derive(Debug, Default)]
pub(super) struct Marks {
    /// (first stream position, ts_ns, thread), by position.
    v: Vec<(u64, u64, Process)>,
}

impl Marks {
    pub fn push(&mut self, pos: u64, ts_ns: u64, by: Process) {
        match self.v.last_mut() {
            Some(last) if last.0 == pos => *last = (pos, ts_ns, by),
            _ => self.v.push((pos, ts_ns, by)),
        }
        if self.v.len() > MAX_MARKS {
            self.v.remove(1);
        }
    }

    /// Timestamp and thread of the segment holding `pos`.
    pub fn at(&self, pos: u64) -> (u64, Process) {
        let found = self.v.iter().rev().find(|m| m.0 <= pos).or(self.v.first());
        found.map_or((0, Process::default()), |m| (m.1, m.2))
    }

    /// Forgets marks for positions before `pos`, keeping the one that covers it.
    pub fn prune(&mut self, pos: u64) {
        let covering = self.v.iter().rposition(|m| m.0 <= pos);
        if let Some(i) = covering.filter(|&i| i > 0) {
            self.v.drain(..i);
        }
    }
}
