//! Entering and leaving the view's terminal mode, and restoring it whatever happens:
//! on drop (quit, SIGTERM) and from a panic hook.
//!
//! While the view is up, stderr (when it is the same terminal) is pointed at /dev/null:
//! a stray warning would draw over the screen. It is put back on restore, before the
//! panic message or the exit summary is printed.

use std::{
    io::{self, IsTerminal, Stdout},
    sync::{
        atomic::{AtomicBool, AtomicI32, Ordering},
        Once,
    },
};

use crossterm::{
    cursor::{Hide, Show},
    event::{DisableMouseCapture, EnableMouseCapture},
    execute,
    terminal::{disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen},
};
use ratatui::{backend::CrosstermBackend, Terminal};

static ACTIVE: AtomicBool = AtomicBool::new(false);
static SAVED_STDERR: AtomicI32 = AtomicI32::new(-1);

pub struct Screen {
    pub terminal: Terminal<CrosstermBackend<Stdout>>,
}

impl Screen {
    pub fn enter() -> io::Result<Screen> {
        install_panic_hook();
        ACTIVE.store(true, Ordering::SeqCst);
        let entered = (|| {
            enable_raw_mode()?;
            execute!(io::stdout(), EnterAlternateScreen, EnableMouseCapture, Hide)?;
            let mut terminal = Terminal::new(CrosstermBackend::new(io::stdout()))?;
            terminal.clear()?;
            Ok(terminal)
        })();
        match entered {
            Ok(terminal) => {
                silence_stderr();
                Ok(Screen { terminal })
            }
            Err(e) => {
                restore();
                Err(e)
            }
        }
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        restore();
    }
}

/// Leaves the view's mode; safe to call more than once and from the panic hook.
pub fn restore() {
    if ACTIVE.swap(false, Ordering::SeqCst) {
        let _ = execute!(io::stdout(), DisableMouseCapture, LeaveAlternateScreen, Show);
        let _ = disable_raw_mode();
    }
    let saved = SAVED_STDERR.swap(-1, Ordering::SeqCst);
    if saved >= 0 {
        // SAFETY: `saved` is our dup of the original stderr; fd 2 is replaced by it.
        unsafe {
            libc::dup2(saved, 2);
            libc::close(saved);
        }
    }
}

fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
    });
}

fn silence_stderr() {
    if !io::stderr().is_terminal() {
        return;
    }
    // SAFETY: plain fd syscalls on a path literal; on failure stderr is left as it is.
    unsafe {
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if null < 0 {
            return;
        }
        let saved = libc::fcntl(2, libc::F_DUPFD_CLOEXEC, 3);
        if saved >= 0 && libc::dup2(null, 2) >= 0 {
            SAVED_STDERR.store(saved, Ordering::SeqCst);
        } else if saved >= 0 {
            libc::close(saved);
        }
        libc::close(null);
    }
}
