//! The live terminal view: a sink that keeps the last N exchanges and draws them with
//! ratatui.
//!
//! Two rates: the event loop ticks at least every 50 ms (input, counters); a frame is
//! drawn at most every `FRAME_NS` and only when something changed (or the rate needs a
//! refresh). The terminal is restored when the sink is dropped (quit, SIGTERM: the event
//! loop returns normally) and by a panic hook.

mod app;
mod components;
mod entry;
mod filter;
mod keys;
mod ring;
mod sanitize;
mod stats;
mod terminal;
#[cfg(test)]
mod testutil;
#[cfg(test)]
mod tests;
mod ui;

use std::{io, time::Duration};

use ratatui::{backend::Backend, Terminal};

pub use filter::{Filter, FilterError};
pub use sanitize::sanitize;

use self::{app::App, terminal::Screen};
use super::{Clock, Counters, Flow, Sink};
use crate::pipeline::Record;

/// Frames at most every 50 ms (20 per second).
const FRAME_NS: u64 = 50_000_000;
/// Without changes, a frame every second keeps the rate and percentiles current.
const IDLE_FRAME_NS: u64 = 1_000_000_000;

pub struct TuiSink {
    screen: Screen,
    app: App,
    last_frame_ns: u64,
    dirty: bool,
}

impl TuiSink {
    /// Switches the terminal to the view (alternate screen, raw mode, mouse).
    pub fn new(max_rows: usize, clock: Clock) -> io::Result<TuiSink> {
        let screen = Screen::enter()?;
        Ok(TuiSink { screen, app: App::new(max_rows, clock), last_frame_ns: 0, dirty: true })
    }

    fn read_input(&mut self) {
        // Whatever is waiting, without blocking: the event loop's wait is the pacing.
        while crossterm::event::poll(Duration::ZERO).unwrap_or(false) {
            let Ok(ev) = crossterm::event::read() else { break };
            if let Some(action) = keys::action(&ev, self.app.mode) {
                self.app.update(action);
            }
            self.dirty = true;
        }
    }

    fn frame(&mut self) -> io::Result<()> {
        draw(&mut self.screen.terminal, &mut self.app)
    }
}

/// Lays out, brings the app up to date for the frame, and draws it.
fn draw<B: Backend>(terminal: &mut Terminal<B>, app: &mut App) -> io::Result<()>
where
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let size = terminal.size().map_err(io::Error::other)?;
    app.page = ui::table_rows(ratatui::layout::Rect::new(0, 0, size.width, size.height), app);
    app.prepare();
    terminal.draw(|f| ui::draw(f, app)).map_err(io::Error::other)?;
    Ok(())
}

impl Sink for TuiSink {
    fn notice(&mut self, line: &str) -> bool {
        self.app.notice = Some(line.strip_prefix("l7trace: ").unwrap_or(line).to_owned());
        self.dirty = true;
        false
    }

    fn record(&mut self, r: Record) -> Flow {
        self.app.push(r);
        self.dirty = true;
        Flow::Continue
    }

    fn tick(&mut self, now_ns: u64, counters: &Counters) -> Flow {
        self.app.now_ns = now_ns;
        if self.app.counters != *counters {
            self.app.counters = *counters;
            self.dirty = true;
        }
        self.read_input();
        if self.app.quit {
            return Flow::Quit;
        }
        let since = now_ns.saturating_sub(self.last_frame_ns);
        if (self.dirty && since >= FRAME_NS) || since >= IDLE_FRAME_NS {
            if let Err(e) = self.frame() {
                tracing::warn!("drawing the view: {e}");
                return Flow::Quit;
            }
            self.last_frame_ns = now_ns;
            self.dirty = false;
        }
        Flow::Continue
    }
}
