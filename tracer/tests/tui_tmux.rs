//! The live view in a real terminal: l7trace runs inside tmux, curl makes requests to a
//! server of the test, and the screen is read back with `tmux capture-pane`.

mod common;

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::*;

const DEADLINE: Duration = Duration::from_secs(30);
/// The shell prompt in the pane (capture-pane trims the space after it), so the test can
/// tell the view is gone.
const PROMPT: &str = "tui-test$";

/// A tmux server of its own (`-L`), with one pane running `sh`; killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(tag: &str) -> Tmux {
        let socket = format!("l7t-{tag}-{}", std::process::id());
        let tmux = Tmux { socket };
        let shell = format!("env PS1='{PROMPT} ' sh");
        tmux.run(&["new-session", "-d", "-s", "main", "-x", "160", "-y", "40", &shell]);
        tmux.wait_for("the shell prompt", |s| s.contains(PROMPT));
        tmux
    }

    fn run(&self, args: &[&str]) -> Output {
        let out = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("run tmux (apt package tmux)");
        assert!(out.status.success(), "tmux {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        out
    }

    /// Types text as it is (no key names).
    fn type_text(&self, text: &str) {
        self.run(&["send-keys", "-t", "main", "-l", text]);
    }

    /// Named keys: `Enter`, `Escape`, `C-c`...
    fn key(&self, key: &str) {
        self.run(&["send-keys", "-t", "main", key]);
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p", "-t", "main"]).stdout).into_owned()
    }

    fn alternate_screen_on(&self) -> bool {
        let out = self.run(&["display-message", "-p", "-t", "main", "#{alternate_on}"]);
        String::from_utf8_lossy(&out.stdout).trim() == "1"
    }

    /// The pid of the pane's shell.
    fn shell_pid(&self) -> u32 {
        let out = self.run(&["display-message", "-p", "-t", "main", "#{pane_pid}"]);
        String::from_utf8_lossy(&out.stdout).trim().parse().expect("pane_pid")
    }

    /// Waits until the screen satisfies `ok`; panics with the screen otherwise.
    fn wait_for(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if ok(&screen) {
                return screen;
            }
            if start.elapsed() > DEADLINE {
                panic!("timed out waiting for {what}; screen:\n{screen}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits for l7trace to exit (the `echo EXIT=$?` after it) and checks it exited 0;
    /// the screen then.
    fn wait_exit_0(&self) -> String {
        let screen = self.wait_for("l7trace to exit", |s| s.lines().any(|l| l.starts_with("EXIT=")));
        assert!(screen.lines().any(|l| l == "EXIT=0"), "exit status:\n{screen}");
        screen
    }

    /// Raw mode is off: the shell echoes what is typed and runs it on Enter.
    fn assert_cooked(&self) {
        self.type_text("echo cooked-$((6*7))");
        self.key("Enter");
        self.wait_for("the shell to run a command", |s| s.contains("cooked-42"));
    }

    /// Starts `l7trace --tui ARGS` from the shell and waits for the view's header.
    fn start_l7trace(&self, args: &str) -> String {
        self.start_l7trace_plain(&format!("--tui {args}"))
    }

    /// Starts `l7trace ARGS` (stdout the pane's terminal) and waits for the view's header.
    fn start_l7trace_plain(&self, args: &str) -> String {
        let bin = env!("CARGO_BIN_EXE_l7trace");
        self.type_text(&format!("{bin} {args}; echo EXIT=$?"));
        self.key("Enter");
        self.wait_for("the live view", |s| s.contains(" l7trace ") && s.contains("exch/s"))
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux").arg("-L").arg(&self.socket).arg("kill-server").output();
    }
}

/// The rows of the table whose line contains `needle`.
fn rows_with<'a>(screen: &'a str, needle: &str) -> Vec<&'a str> {
    screen.lines().filter(|l| l.contains(needle)).collect()
}

/// A row (for curl's side) has every field the table shows.
fn assert_row(screen: &str, method: &str, path: &str, status: &str) {
    let rows = rows_with(screen, path);
    let row = rows
        .iter()
        .find(|r| r.contains(" curl "))
        .unwrap_or_else(|| panic!("no curl row for {path}; screen:\n{screen}"));
    let cols: Vec<&str> = row.split_whitespace().collect();
    // TIME PID COMM R METHOD HOST+TARGET STATUS LATENCY REQ RESP
    assert!(cols[0].len() == 12 && cols[0].as_bytes()[2] == b':', "time in {row:?}");
    assert!(cols[1].parse::<u32>().is_ok(), "pid in {row:?}");
    assert_eq!(cols[2], "curl", "comm in {row:?}");
    assert_eq!(cols[3], "C", "role in {row:?}");
    assert_eq!(cols[4], method, "method in {row:?}");
    assert!(cols[5].starts_with("127.0.0.1:") && cols[5].ends_with(path), "host+target in {row:?}");
    assert_eq!(cols[6], status, "status in {row:?}");
    // A number and its unit (`412µs`, `12.3ms`, `1.25s`); `ends_with('s')` alone took any word.
    let number = ["µs", "ms", "s"].iter().find_map(|u| cols[7].strip_suffix(u));
    assert!(number.is_some_and(|n| n.parse::<f64>().is_ok()), "latency in {row:?}");
}

fn server() -> HttpServer {
    HttpServer::start("127.0.0.1:0", |req: &Request| {
        if req.target.starts_with("/fail") {
            Reply::with_status(500, "Internal Server Error", &[], "boom")
        } else {
            common::server::default_reply(req)
        }
    })
}

#[test]
fn rows_filter_and_quit() {
    let server = server();
    let tmux = Tmux::start("rows");
    tmux.start_l7trace(&format!("--port {} --role client", server.port()));

    let base = format!("http://{}", server.authority());
    curl(&[&format!("{base}/hello")]);
    curl(&[&format!("{base}/fail/now")]);
    curl(&[&format!("{base}/api/items?page=2")]);
    curl(&["-d", "x=1", &format!("{base}/submit")]);
    // Rows of finished exchanges: a row is shown as soon as its request is (pending, `...`).
    let screen = tmux.wait_for("four finished rows", |s| {
        ["/hello", "/fail/now", "/api/items?page=2", "/submit"]
            .iter()
            .all(|p| rows_with(s, p).iter().any(|r| r.contains(" curl ") && !r.contains(" ... ")))
    });
    assert_row(&screen, "GET", "/hello", "200");
    assert_row(&screen, "GET", "/fail/now", "500");
    assert_row(&screen, "GET", "/api/items?page=2", "200");
    assert_row(&screen, "POST", "/submit", "200");
    assert!(screen.contains("lost events 0"), "lost events always shown:\n{screen}");

    // A comparison narrows the list as it is typed.
    tmux.type_text("/");
    tmux.type_text("status>=500");
    let screen = tmux.wait_for("the status filter", |s| rows_with(s, "/hello").is_empty());
    assert_row(&screen, "GET", "/fail/now", "500");
    assert!(rows_with(&screen, "/submit").is_empty(), "filtered out:\n{screen}");
    assert!(screen.contains("rows 1/4"), "row count:\n{screen}");

    // Replace it with a path.
    tmux.key("C-u");
    tmux.type_text("path~/api");
    let screen = tmux.wait_for("the path filter", |s| rows_with(s, "/fail/now").is_empty());
    assert_row(&screen, "GET", "/api/items?page=2", "200");
    assert!(rows_with(&screen, "/hello").is_empty(), "filtered out:\n{screen}");
    tmux.key("Enter");

    // A new exchange that matches appears under the filter.
    curl(&[&format!("{base}/api/more")]);
    tmux.wait_for("a new matching row", |s| !rows_with(s, "/api/more").is_empty());

    tmux.type_text("q");
    let screen = tmux.wait_exit_0();
    assert!(screen.contains("l7trace: summary: exchanges="), "summary after restore:\n{screen}");
    assert!(screen.trim_end().ends_with(PROMPT), "prompt back:\n{screen}");
    assert!(!tmux.alternate_screen_on(), "alternate screen left on");
}

#[test]
fn sigterm_restores_terminal() {
    let server = server();
    let tmux = Tmux::start("term");
    tmux.start_l7trace(&format!("--port {}", server.port()));
    curl(&[&format!("http://{}/before-term", server.authority())]);
    tmux.wait_for("a row", |s| !rows_with(s, "/before-term").is_empty());
    assert!(tmux.alternate_screen_on(), "the view uses the alternate screen");

    let shell = tmux.shell_pid();
    let children = std::fs::read_to_string(format!("/proc/{shell}/task/{shell}/children")).expect("children of the shell");
    let pid: i32 = children.split_whitespace().next().expect("l7trace runs under the shell").parse().unwrap();
    // SAFETY: sends a signal to the l7trace this test started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);

    tmux.wait_exit_0();
    assert!(!tmux.alternate_screen_on(), "alternate screen left on");
    tmux.assert_cooked();
}

/// Control sequences sent in a target and in headers reach the screen as text: the title
/// is not set, the screen is not cleared, the view keeps drawing. (httparse refuses C0
/// controls such as ESC in a head, so those never become rows; the 8-bit C1 forms, CSI
/// U+009B and OSC U+009D, are bytes it accepts.) Through the interface
/// capture, which shows the same rows (pending ones included) as the syscall probes.
#[test]
fn hostile_bytes_on_the_interface_path_stay_text() {
    use std::io::{Read, Write};
    let server = server();
    let tmux = Tmux::start("hostile");
    tmux.start_l7trace(&format!("--iface lo --port {}", server.port()));
    let send = |bytes: &[u8]| {
        let mut s = std::net::TcpStream::connect(server.addr).expect("connect");
        s.write_all(bytes).expect("write");
        let _ = s.shutdown(std::net::Shutdown::Write);
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut sink = Vec::new();
        let _ = s.read_to_end(&mut sink);
    };
    send(b"GET /h-c1-\xc2\x9b2J HTTP/1.1\r\nHost: x\r\nX-Title: \xc2\x9d0;pwned\xc2\x9c\r\n\r\n");
    send(b"GET /h-esc-bell HTTP/1.1\r\nHost: x\r\nX-Clear: \xc2\x9b2J\xc2\x9bH\r\n\r\n");
    curl(&[&format!("http://{}/plain-after", server.authority())]);
    let screen = tmux.wait_for("the three rows", |s| {
        ["/h-c1-\\x9b2J", "/h-esc-bell", "/plain-after"].iter().all(|p| !rows_with(s, p).is_empty())
    });
    assert!(screen.contains(" l7trace ") && screen.contains("exch/s"), "header still drawn:\n{screen}");
    for path in ["/h-c1-\\x9b2J", "/h-esc-bell", "/plain-after"] {
        let row = rows_with(&screen, path)[0];
        assert!(row.contains(" GET ") && row.contains(" 200 "), "row for {path}: {row:?}\n{screen}");
    }

    // The detail pane shows the headers, escaped.
    tmux.type_text("/");
    tmux.type_text("path~bell");
    tmux.key("Enter");
    tmux.wait_for("the filter", |s| rows_with(s, "/plain-after").is_empty());
    tmux.key("Enter");
    let screen = tmux.wait_for("the detail pane", |s| s.contains("X-Clear:"));
    assert!(screen.contains(r"\x9b2J\x9bH"), "header value as text:\n{screen}");
    let title = tmux.run(&["display-message", "-p", "-t", "main", "#{pane_title}"]);
    assert!(!String::from_utf8_lossy(&title.stdout).contains("pwned"), "traffic set the terminal title");

    tmux.type_text("q");
    tmux.wait_exit_0();
}

/// Without `--tui` or `--json`, a terminal on stdout gets the live view; the secrets of a
/// request are masked in its detail pane as in the JSON stream; Ctrl-C quits and gives the
/// terminal back in cooked mode.
#[test]
fn view_by_default_on_a_terminal_masks_secrets_and_quits_on_ctrl_c() {
    let server = server();
    let tmux = Tmux::start("auto");
    tmux.start_l7trace_plain(&format!("--port {} --role client", server.port()));
    let url = format!("http://{}/private", server.authority());
    curl(&["-H", "Authorization: Bearer s3cr3t-t0ken", "-H", "Cookie: sid=c00kie-v4lue", "-H", "X-Plain: v1s1ble", &url]);
    tmux.wait_for("the row", |s| rows_with(s, "/private").iter().any(|r| r.contains(" 200 ")));
    tmux.key("Enter");
    let screen = tmux.wait_for("the detail pane", |s| s.contains("X-Plain:"));
    assert!(screen.contains("v1s1ble"), "other headers shown as sent:\n{screen}");
    assert!(screen.contains("Bearer <redacted>"), "the scheme kept, the token masked:\n{screen}");
    assert!(screen.contains("Cookie: <redacted>"), "cookie masked:\n{screen}");
    assert!(!screen.contains("s3cr3t") && !screen.contains("c00kie"), "a secret on screen:\n{screen}");

    tmux.key("C-c");
    tmux.wait_exit_0();
    assert!(!tmux.alternate_screen_on(), "alternate screen left on");
    tmux.assert_cooked();
}

/// The mouse wheel moves the selection three rows a notch: the pane gets the SGR mouse
/// reports a terminal sends for the wheel (the view asked for mouse reporting), and the
/// detail pane then shows the exchange selected.
#[test]
fn mouse_wheel_moves_the_selection() {
    let server = server();
    let tmux = Tmux::start("wheel");
    tmux.start_l7trace(&format!("--port {} --role client", server.port()));
    let base = format!("http://{}", server.authority());
    for i in 1..=12 {
        curl(&[&format!("{base}/wheel/{i}")]);
    }
    tmux.wait_for("twelve rows", |s| rows_with(s, "/wheel/").iter().filter(|r| !r.contains(" ... ")).count() == 12);
    // The newest is selected (the view follows it): one notch up is three rows up.
    let detail_of = |tmux: &Tmux, target: &str| {
        tmux.key("Enter");
        let line = format!("GET {target} HTTP/1.1");
        let screen = tmux.wait_for(&format!("the detail of {target}"), |s| s.lines().any(|l| l.trim_end() == line));
        tmux.key("Escape");
        tmux.wait_for("the detail closed", |s| !s.contains(&line));
        screen
    };
    tmux.type_text("\x1b[<64;40;10M");
    detail_of(&tmux, "/wheel/9");
    tmux.type_text("\x1b[<64;40;10M");
    tmux.type_text("\x1b[<64;40;10M");
    detail_of(&tmux, "/wheel/3");
    // Down again, and past the end it stops at the last row.
    tmux.type_text("\x1b[<65;40;10M");
    detail_of(&tmux, "/wheel/6");
    for _ in 0..4 {
        tmux.type_text("\x1b[<65;40;10M");
    }
    detail_of(&tmux, "/wheel/12");
    tmux.type_text("q");
    tmux.wait_exit_0();
    assert!(!tmux.alternate_screen_on(), "alternate screen left on");
}

/// A notice about the capture reaches the live view's user: a `--pid` process that exits
/// is said in the bottom line while the view is up (stderr, the same terminal, is silenced
/// then), and again on the terminal after the view, before the summary.
#[test]
fn a_process_exit_is_said_in_the_view_and_after_it() {
    let mut sleeper = Command::new("sleep").arg("1").spawn().expect("run sleep");
    let gone = sleeper.id();
    let tmux = Tmux::start("notice");
    tmux.start_l7trace(&format!("--pid {gone}"));
    sleeper.wait().unwrap();
    let said = format!("--pid {gone} exited: no --pid process is left");
    let screen = tmux.wait_for("the notice", |s| s.contains(&said));
    let last = screen.lines().rfind(|l| !l.trim().is_empty()).unwrap_or_default();
    assert!(last.contains(&said), "the bottom line says it:\n{screen}");
    tmux.key("q");
    let screen = tmux.wait_exit_0();
    let lines: Vec<&str> = screen.lines().collect();
    let notice = lines.iter().position(|l| l.starts_with(&format!("l7trace: warning: {said}"))).unwrap_or_else(|| panic!("after the view:\n{screen}"));
    let summary = lines.iter().position(|l| l.starts_with("l7trace: summary:")).expect("summary");
    assert!(notice < summary, "{screen}");
}
