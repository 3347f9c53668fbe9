//! Parts of the screen. Each is `draw(frame, area, &App)`: it reads the state and cannot
//! change it; keys become actions in `keys`, and actions change the state in
//! `App::update`.

pub mod detail;
pub mod footer;
pub mod header;
pub mod help;
pub mod table;

use ratatui::style::Color;

/// The colour of a status class.
pub fn status_color(status: Option<u16>) -> Color {
    match status.map(|s| s / 100) {
        Some(1) => Color::Blue,
        Some(2) => Color::Green,
        Some(3) => Color::Cyan,
        Some(4) => Color::Yellow,
        Some(5) => Color::Red,
        _ => Color::DarkGray,
    }
}
