//! The list of exchanges: only the visible rows are formatted.
//!
//! Drawn cell by cell rather than with ratatui's `Table`, which solves its column layout
//! (a constraint solver, allocating) on every frame: the columns are fixed widths around
//! one that fills the rest, simple sums, and the solver is asked only when the screen is too
//! narrow for them. Cells borrow their text from the rows where they can.

use std::fmt::Write as _;

use ratatui::{
    buffer::Buffer,
    layout::{Constraint, Layout, Rect},
    style::{Color, Modifier, Style},
    text::Span,
    widgets::Widget,
    Frame,
};

use super::status_color;
use crate::{
    output::{
        fraction, to_the_second,
        tui::{
            app::App,
            entry::{fmt_latency, fmt_size, Entry},
        },
    },
    protocols::Role,
};

const HEADER: [&str; COLUMNS] =
    ["TIME", "PID", "COMM", "R", "METHOD", "HOST+TARGET", "STATUS", "LATENCY", "REQ", "RESP", "!"];
const COLUMNS: usize = 11;
/// Widths of the columns; the URL's (None) fills what the others leave.
const WIDTHS: [Option<u16>; COLUMNS] =
    [Some(12), Some(7), Some(15), Some(1), Some(7), None, Some(6), Some(8), Some(6), Some(6), Some(1)];
/// Blank cells between columns.
const SPACING: u16 = 1;

/// Exchange rows in a table drawn in `area` (one line is the column header).
pub fn body_rows(area: Rect) -> usize {
    area.height.saturating_sub(1) as usize
}

/// The URL column's least width before other columns give up room to it.
const MIN_URL: u16 = 24;
/// On a narrower screen (80 columns), what the other columns give up, in this order, each
/// until the URL has `MIN_URL`: COMM to 8, TIME to the second, then REQ and PID hidden.
const SHRINK: [(usize, u16); 4] = [(2, 8), (0, 8), (8, 0), (1, 0)];

/// The column widths for a table `width` wide (0: hidden).
fn widths(width: u16) -> [Option<u16>; COLUMNS] {
    let mut w = WIDTHS;
    for (col, to) in SHRINK {
        if width >= fixed(&w) + MIN_URL {
            break;
        }
        w[col] = Some(to);
    }
    w
}

/// Width of the fixed columns shown and the spaces between all shown.
fn fixed(w: &[Option<u16>; COLUMNS]) -> u16 {
    let shown = w.iter().filter(|w| **w != Some(0)).count() as u16;
    w.iter().flatten().sum::<u16>() + SPACING * (shown - 1)
}

/// Where each column starts (from the left of the table) and how wide it is.
fn columns(width: u16) -> [(u16, u16); COLUMNS] {
    let ws = widths(width);
    let fixed = fixed(&ws);
    let mut out = [(0, 0); COLUMNS];
    if width > fixed {
        let mut x = 0;
        for (col, w) in out.iter_mut().zip(ws) {
            let w = w.unwrap_or(width - fixed);
            *col = (x, w);
            if w > 0 {
                x += w + SPACING;
            }
        }
    } else {
        let constraints = ws.map(|w| w.map_or(Constraint::Fill(1), Constraint::Length));
        let rects = Layout::horizontal(constraints).spacing(SPACING).split(Rect::new(0, 0, width, 1));
        for (col, r) in out.iter_mut().zip(rects.iter()) {
            *col = (r.x, r.width);
        }
    }
    out
}

pub fn draw(f: &mut Frame, area: Rect, app: &App) {
    let buf = f.buffer_mut();
    let area = area.intersection(buf.area);
    if area.is_empty() {
        return;
    }
    let cols = columns(area.width);
    let line = |y| Rect { y, height: 1, ..area };
    buf.set_style(line(area.y), Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED));
    for (col, text) in cols.iter().zip(HEADER) {
        cell(buf, area, *col, area.y, Span::raw(text));
    }
    let height = body_rows(area);
    let top = app.top_for(height);
    let selected = app.selected_pos();
    let mut scratch = Scratch::default();
    for (y, pos) in (area.y + 1..area.bottom()).zip(top..(top + height).min(app.view_len())) {
        let Some(e) = app.view_entry(pos) else { continue };
        if Some(pos) == selected {
            buf.set_style(line(y), Style::new().add_modifier(Modifier::REVERSED));
        }
        row(buf, area, &cols, y, e, &mut scratch);
    }
}

/// Text of one cell, cut at its column's width.
fn cell(buf: &mut Buffer, area: Rect, (x, w): (u16, u16), y: u16, text: Span) {
    let rect = Rect::new(area.x + x, y, w, 1).intersection(area);
    text.render(rect, buf);
}

/// Buffers the numbers of a row are formatted into, reused row after row.
#[derive(Default)]
struct Scratch {
    time: Vec<u8>,
    text: String,
}

fn row(buf: &mut Buffer, area: Rect, cols: &[(u16, u16); COLUMNS], y: u16, e: &Entry, s: &mut Scratch) {
    let mut put = |i: usize, text: Span| cell(buf, area, cols[i], y, text);
    // "10:15:02.123" of "2026-11-22T10:15:02.123456Z"
    let since = e.wall.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    s.time.clear();
    s.time.extend_from_slice(&to_the_second(since.as_secs())[11..]);
    s.time.extend_from_slice(&fraction(since.subsec_micros())[..4]);
    put(0, Span::raw(std::str::from_utf8(&s.time).unwrap_or_default()));
    s.text.clear();
    if e.pid == 0 {
        s.text.push('-');
    } else {
        let _ = write!(s.text, "{}", e.pid);
    }
    put(1, Span::raw(s.text.as_str()));
    put(2, Span::raw(e.comm()));
    put(3, Span::raw(match e.role {
        Some(Role::Client) => "C",
        Some(Role::Server) => "S",
        None => "-",
    }));
    put(4, Span::raw(e.method()));
    put(5, Span::raw(e.url()));
    s.text.clear();
    match (e.status, e.note) {
        (Some(st), _) => {
            let _ = write!(s.text, "{st}");
        }
        (None, _) if e.pending => s.text.push_str("..."),
        (None, Some(n)) if n.as_str() == "response_timeout" => s.text.push_str("tmout"),
        (None, _) => s.text.push('-'),
    }
    put(6, Span::styled(s.text.as_str(), Style::new().fg(status_color(e.status))));
    put(7, Span::raw(e.latency_us.map_or_else(|| "-".to_owned(), fmt_latency)));
    put(8, Span::raw(fmt_size(e.req_size)));
    put(9, Span::raw(e.resp_size.map_or_else(|| "-".to_owned(), fmt_size)));
    let flagged = !e.complete || e.lost_bytes > 0;
    put(10, Span::styled(if flagged { "!" } else { " " }, Style::new().fg(Color::Red)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_match_the_layout_solver() {
        for width in [103, 120, 160, 400] {
            let constraints = WIDTHS.map(|w| w.map_or(Constraint::Fill(1), Constraint::Length));
            let rects = Layout::horizontal(constraints).spacing(SPACING).split(Rect::new(0, 0, width, 1));
            let solved: Vec<(u16, u16)> = rects.iter().map(|r| (r.x, r.width)).collect();
            assert_eq!(columns(width).to_vec(), solved, "width {width}");
        }
    }

    /// At 80 columns (and down to 77) the URL keeps `MIN_URL`: the other columns give up
    /// room, none overlaps another or the edge.
    #[test]
    fn a_narrow_screen_keeps_room_for_the_url() {
        for width in [77, 80, 89, 90, 102] {
            let cols = columns(width);
            assert!(cols[5].1 >= MIN_URL, "width {width}: {cols:?}");
            let shown: Vec<(u16, u16)> = cols.iter().copied().filter(|c| c.1 > 0).collect();
            for pair in shown.windows(2) {
                assert!(pair[0].0 + pair[0].1 < pair[1].0, "width {width}: {cols:?}");
            }
            let last = shown.last().unwrap();
            assert!(last.0 + last.1 <= width, "width {width}: {cols:?}");
        }
        let at80 = columns(80);
        assert_eq!((at80[2].1, at80[0].1), (8, 8), "COMM and TIME give up room first: {at80:?}");
        assert_eq!(columns(103)[2].1, 15);
    }
}
