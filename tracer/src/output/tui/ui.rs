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

fn areas(area: Rect, app: &App) -> Areas {
    let [header, body, footer] =
        Layout::vertical([Constraint::Length(2), Constraint::Min(3), Constraint::Length(1)]).areas(area);
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
