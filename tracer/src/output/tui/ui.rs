//! The screen: the layout and the components drawn in it. Drawing reads the app and
//! changes nothing.

use ratatui::{
    layout::{Constraint, Layout, Rect},
    Frame,
};

use super::{
    app::{App, Mode},
    components::{detail, footer, header, help, table},
};

struct Areas {
    header: Rect,
    table: Rect,
    detail: Option<Rect>,
    footer: Rect,
}

/// Header, list and footer lines.
const HEADER: u16 = 2;
const MIN_BODY: u16 = 3;
const FOOTER: u16 = 1;

/// Header, body and footer: fixed lines around the rest, a sum (the layout solver, which
/// allocates, only for a screen too short for them).
fn split(area: Rect) -> [Rect; 3] {
    if area.height < HEADER + MIN_BODY + FOOTER {
        let lines = [Constraint::Length(HEADER), Constraint::Min(MIN_BODY), Constraint::Length(FOOTER)];
        return Layout::vertical(lines).areas(area);
    }
    let body = area.height - HEADER - FOOTER;
    let at = |dy, height| Rect { y: area.y + dy, height, ..area };
    [at(0, HEADER), at(HEADER, body), at(HEADER + body, FOOTER)]
}

fn areas(area: Rect, app: &App) -> Areas {
    let [header, body, footer] = split(area);
    if app.detail {
        let [table, detail] =
            Layout::vertical([Constraint::Percentage(40), Constraint::Percentage(60)]).areas(body);
        Areas { header, table, detail: Some(detail), footer }
    } else {
        Areas { header, table: body, detail: None, footer }
    }
}

/// Rows of exchanges the table shows in a screen of `area`.
pub fn table_rows(area: Rect, app: &App) -> usize {
    table::body_rows(areas(area, app).table)
}

pub fn draw(f: &mut Frame, app: &App) {
    let a = areas(f.area(), app);
    header::draw(f, a.header, app);
    table::draw(f, a.table, app);
    if let Some(d) = a.detail {
        detail::draw(f, d, app);
    }
    footer::draw(f, a.footer, app);
    if app.mode == Mode::Help {
        help::draw(f, f.area());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_matches_the_layout_solver() {
        for height in 0..60 {
            let area = Rect::new(3, 2, 100, height);
            let lines = [Constraint::Length(HEADER), Constraint::Min(MIN_BODY), Constraint::Length(FOOTER)];
            let solved: [Rect; 3] = Layout::vertical(lines).areas(area);
            assert_eq!(split(area), solved, "height {height}");
        }
    }
}
