//! The bottom line: the filter being typed (and why it does not parse yet), the last
//! notice about the capture, or key hints.

use ratatui::{
    layout::Rect,
    style::{Color, Style},
    text::{Line, Span},
    widgets::Paragraph,
    Frame,
};

use crate::output::tui::{
    app::{App, Mode},
    sanitize::sanitize_str,
};

const HINTS: &str = "↑↓/jk move  PgUp/PgDn  g/G  Enter detail  / filter  space pause  s sort  c clear  ? help  q quit";

pub fn draw(f: &mut Frame, area: Rect, app: &App) {
    let line = match app.mode {
        Mode::Filter => {
            let mut spans = vec![
                Span::styled("/", Style::new().fg(Color::Yellow)),
                Span::raw(sanitize_str(&app.filter_input)),
                Span::styled("█", Style::new().fg(Color::Yellow)),
            ];
            if let Some(err) = &app.filter_error {
                spans.push(Span::styled(format!("  {}", sanitize_str(err)), Style::new().fg(Color::Red)));
            } else {
                spans.push(Span::styled("  Enter keep  Esc undo", Style::new().fg(Color::DarkGray)));
            }
            Line::from(spans)
        }
        // A notice about the capture stands where the key hints do (`?` lists the keys).
        _ => match &app.notice {
            Some(n) => Line::from(vec![
                Span::styled(sanitize_str(n), Style::new().fg(Color::Black).bg(Color::Yellow)),
                Span::styled("  ? keys  q quit", Style::new().fg(Color::DarkGray)),
            ]),
            None => Line::styled(HINTS, Style::new().fg(Color::DarkGray)),
        },
    };
    f.render_widget(Paragraph::new(line), area);
}
