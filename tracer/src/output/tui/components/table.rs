//! The list of exchanges: only the visible rows are formatted.

use ratatui::{
    layout::{Constraint, Rect},
    style::{Color, Modifier, Style},
    text::Span,
    widgets::{Cell, Row, Table},
    Frame,
};

use super::status_color;
use crate::{
    output::tui::{
        app::App,
        entry::{fmt_latency, fmt_size, Entry},
    },
    protocols::Role,
};

const HEADER: [&str; 11] =
    ["TIME", "PID", "COMM", "R", "METHOD", "HOST+TARGET", "STATUS", "LATENCY", "REQ", "RESP", "!"];

fn widths() -> [Constraint; 11] {
    [
        Constraint::Length(12),
        Constraint::Length(7),
        Constraint::Length(15),
        Constraint::Length(1),
        Constraint::Length(7),
        Constraint::Fill(1),
        Constraint::Length(6),
        Constraint::Length(8),
        Constraint::Length(6),
        Constraint::Length(6),
        Constraint::Length(1),
    ]
}

/// Exchange rows in a table drawn in `area` (one line is the column header).
pub fn body_rows(area: Rect) -> usize {
    area.height.saturating_sub(1) as usize
}

pub fn draw(f: &mut Frame, area: Rect, app: &App) {
    let height = body_rows(area);
    let top = app.top_for(height);
    let selected = app.selected_pos();
    let rows = (top..(top + height).min(app.view_len())).filter_map(|pos| {
        let e = app.view_entry(pos)?;
        let row = row(e);
        Some(if Some(pos) == selected { row.style(Style::new().add_modifier(Modifier::REVERSED)) } else { row })
    });
    let header = Row::new(HEADER).style(Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED));
    f.render_widget(Table::new(rows, widths()).header(header), area);
}

fn row(e: &Entry) -> Row<'static> {
    let status = match (e.status, e.note) {
        (Some(s), _) => s.to_string(),
        (None, _) if e.pending => "...".to_owned(),
        (None, Some(n)) if n.as_str() == "response_timeout" => "tmout".to_owned(),
        (None, _) => "-".to_owned(),
    };
    let flagged = !e.complete || e.lost_bytes > 0;
    Row::new([
        Cell::from(e.time()),
        Cell::from(if e.pid == 0 { "-".to_owned() } else { e.pid.to_string() }),
        Cell::from(e.comm().to_owned()),
        Cell::from(match e.role {
            Some(Role::Client) => "C",
            Some(Role::Server) => "S",
            None => "-",
        }),
        Cell::from(e.method().to_owned()),
        Cell::from(e.url().to_owned()),
        Cell::from(Span::styled(status, Style::new().fg(status_color(e.status)))),
        Cell::from(e.latency_us.map_or_else(|| "-".to_owned(), fmt_latency)),
        Cell::from(fmt_size(e.req_size)),
        Cell::from(e.resp_size.map_or_else(|| "-".to_owned(), fmt_size)),
        Cell::from(Span::styled(if flagged { "!" } else { " " }, Style::new().fg(Color::Red))),
    ])
}
