//! Two lines of live numbers. Lost events and dropped bytes are always shown.

use ratatui::{
    layout::Rect,
    style::{Color, Modifier, Style},
    text::{Line, Span},
    widgets::Paragraph,
    Frame,
};

use super::status_color;
use crate::output::tui::{app::App, entry::fmt_latency, entry::fmt_size, sanitize::sanitize_str};

pub fn draw(f: &mut Frame, area: Rect, app: &App) {
    f.render_widget(Paragraph::new(vec![title(app), numbers(app)]), area);
}

fn title(app: &App) -> Line<'static> {
    let state = if app.paused {
        Span::styled(" PAUSED ", Style::new().fg(Color::Black).bg(Color::Yellow))
    } else {
        Span::styled(" LIVE ", Style::new().fg(Color::Black).bg(Color::Green))
    };
    let c = &app.counters;
    let alarm = |v: u64| {
        if v > 0 {
            Style::new().fg(Color::White).bg(Color::Red)
        } else {
            Style::new()
        }
    };
    let mut spans = vec![
        Span::styled(" l7trace ", Style::new().add_modifier(Modifier::BOLD | Modifier::REVERSED)),
        Span::raw(" "),
        state,
        Span::raw(format!("  conns {}  ", c.active_conns)),
        Span::styled(format!("lost events {}", c.lost_events), alarm(c.lost_events)),
        Span::raw("  "),
        Span::styled(format!("lost {}", fmt_size(c.lost_bytes)), alarm(c.lost_bytes)),
        Span::raw("  "),
        Span::styled(format!("dropped {}", fmt_size(c.dropped_bytes)), alarm(c.dropped_bytes)),
        Span::raw(format!(
            "  rows {}/{} (max {})  sort {}",
            app.view_len(),
            app.held(),
            app.max_rows(),
            app.sort.name(),
        )),
    ];
    if !app.filter.is_empty() {
        spans.push(Span::styled(format!("  filter {}", sanitize_str(&app.filter_text)), Style::new().fg(Color::Cyan)));
    }
    Line::from(spans)
}

fn numbers(app: &App) -> Line<'static> {
    let snap = app.stats.snapshot(app.now_ns);
    let p = |v: Option<u64>| v.map_or_else(|| "-".to_owned(), fmt_latency);
    let mut spans = vec![Span::raw(format!(
        " {:.1} exch/s  p50 {}  p90 {}  p99 {}  │",
        snap.rate,
        p(snap.p50_us),
        p(snap.p90_us),
        p(snap.p99_us)
    ))];
    let classes = ["1xx", "2xx", "3xx", "4xx", "5xx", "none"];
    for (i, name) in classes.iter().enumerate() {
        let status = (i < 5).then_some((i as u16 + 1) * 100);
        spans.push(Span::styled(
            format!(" {name} {}", app.stats.by_class[i]),
            Style::new().fg(status_color(status)),
        ));
    }
    Line::from(spans)
}
