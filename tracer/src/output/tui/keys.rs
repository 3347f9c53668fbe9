//! Terminal events -> actions. Pure: the mode decides what a key means.

use crossterm::event::{Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseEventKind};

use super::app::{Action, Mode};

/// Rows per mouse-wheel notch.
const WHEEL_ROWS: isize = 3;

pub fn action(ev: &Event, mode: Mode) -> Option<Action> {
    match ev {
        Event::Key(k) if k.kind != KeyEventKind::Release => key(k, mode),
        Event::Mouse(m) => match m.kind {
            MouseEventKind::ScrollUp => Some(Action::Move(-WHEEL_ROWS)),
            MouseEventKind::ScrollDown => Some(Action::Move(WHEEL_ROWS)),
            _ => None,
        },
        _ => None,
    }
}

fn key(k: &KeyEvent, mode: Mode) -> Option<Action> {
    let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
    if ctrl && k.code == KeyCode::Char('c') {
        return Some(Action::Quit);
    }
    match mode {
        Mode::Help => Some(Action::ToggleHelp),
        Mode::Filter => filter_key(k, ctrl),
        Mode::Normal => normal_key(k, ctrl),
    }
}

fn filter_key(k: &KeyEvent, ctrl: bool) -> Option<Action> {
    Some(match k.code {
        KeyCode::Char('u') if ctrl => Action::FilterClearInput,
        KeyCode::Char(c) if !ctrl => Action::FilterChar(c),
        KeyCode::Backspace => Action::FilterBackspace,
        KeyCode::Enter => Action::FilterAccept,
        KeyCode::Esc => Action::FilterCancel,
        KeyCode::Up => Action::Move(-1),
        KeyCode::Down => Action::Move(1),
        _ => return None,
    })
}

fn normal_key(k: &KeyEvent, ctrl: bool) -> Option<Action> {
    Some(match k.code {
        KeyCode::Char('b') if ctrl => Action::Page(-1),
        KeyCode::Char('f') if ctrl => Action::Page(1),
        KeyCode::Char('q') => Action::Quit,
        KeyCode::Up | KeyCode::Char('k') => Action::Move(-1),
        KeyCode::Down | KeyCode::Char('j') => Action::Move(1),
        KeyCode::PageUp => Action::Page(-1),
        KeyCode::PageDown => Action::Page(1),
        KeyCode::Home | KeyCode::Char('g') => Action::First,
        KeyCode::End | KeyCode::Char('G') => Action::Last,
        KeyCode::Char('K') => Action::DetailScroll(-1),
        KeyCode::Char('J') => Action::DetailScroll(1),
        KeyCode::Enter => Action::ToggleDetail,
        KeyCode::Esc => Action::Back,
        KeyCode::Char('/') => Action::StartFilter,
        KeyCode::Char(' ') => Action::TogglePause,
        KeyCode::Char('c') => Action::Clear,
        KeyCode::Char('s') => Action::CycleSort,
        KeyCode::Char('?') => Action::ToggleHelp,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn press(code: KeyCode, mods: KeyModifiers) -> Event {
        Event::Key(KeyEvent::new(code, mods))
    }

    #[test]
    fn the_same_key_means_what_the_mode_says() {
        let q = press(KeyCode::Char('q'), KeyModifiers::NONE);
        assert_eq!(action(&q, Mode::Normal), Some(Action::Quit));
        assert_eq!(action(&q, Mode::Filter), Some(Action::FilterChar('q')));
        assert_eq!(action(&q, Mode::Help), Some(Action::ToggleHelp));
        let ctrl_c = press(KeyCode::Char('c'), KeyModifiers::CONTROL);
        for mode in [Mode::Normal, Mode::Filter, Mode::Help] {
            assert_eq!(action(&ctrl_c, mode), Some(Action::Quit));
        }
        let slash = press(KeyCode::Char('/'), KeyModifiers::NONE);
        assert_eq!(action(&slash, Mode::Normal), Some(Action::StartFilter));
        let j = press(KeyCode::Char('j'), KeyModifiers::NONE);
        assert_eq!(action(&j, Mode::Normal), Some(Action::Move(1)));
    }
}
