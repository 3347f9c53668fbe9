//! Debian's nginx, in a temp dir of its own, serving static files.

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::TempDir;

pub struct Nginx {
    child: Child,
    pub port: u16,
    pub dir: TempDir,
}

impl Nginx {
    /// Serves the files `(name, bytes)` from its root on 127.0.0.1:`port`, one process
    /// (no master), sendfile on; returns once the port accepts connections.
    pub fn start(port: u16, files: &[(&str, &[u8])]) -> Nginx {
        Nginx::start_with(port, files, "")
    }

    /// As `start`, with `listen_params` after the address of the `listen` directive
    /// (e.g. "fastopen=16").
    pub fn start_with(port: u16, files: &[(&str, &[u8])], listen_params: &str) -> Nginx {
        Nginx::start_conf(port, files, listen_params, "")
    }

    /// As `start_with`, with `http_extra` directives in the `http` block (e.g. gzip).
    pub fn start_conf(port: u16, files: &[(&str, &[u8])], listen_params: &str, http_extra: &str) -> Nginx {
        let dir = TempDir::new("nginx");
        let root = dir.join("root");
        std::fs::create_dir_all(&root).unwrap();
        for (name, bytes) in files {
            std::fs::write(root.join(name), bytes).unwrap();
        }
        let conf = dir.join("nginx.conf");
        std::fs::write(&conf, config(&dir, port, listen_params, http_extra)).unwrap();
        let mut child = Command::new("/usr/sbin/nginx")
            .arg("-p")
            .arg(dir.path())
            .arg("-e")
            .arg(dir.join("error.log"))
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start /usr/sbin/nginx");
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                let log = std::fs::read_to_string(dir.join("error.log")).unwrap_or_default();
                panic!("nginx exited ({status}) at start; error.log:\n{log}");
            }
            assert!(
                Instant::now() < deadline,
                "nginx did not listen on {port} within 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Nginx { child, port, dir }
    }

    /// With `master_process off` this process is the one that serves.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }
}

fn config(dir: &TempDir, port: u16, listen_params: &str, http_extra: &str) -> String {
    let d = dir.path().display();
    // Every temp path inside the dir, so nginx needs nothing under /var.
    format!(
        "daemon off;
master_process off;
user root;
worker_processes 1;
error_log {d}/error.log;
pid {d}/nginx.pid;
events {{ worker_connections 64; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    default_type application/octet-stream;
    {http_extra}
    client_body_temp_path {d}/client_body_temp;
    proxy_temp_path {d}/proxy_temp;
    fastcgi_temp_path {d}/fastcgi_temp;
    uwsgi_temp_path {d}/uwsgi_temp;
    scgi_temp_path {d}/scgi_temp;
    server {{
        listen 127.0.0.1:{port} {listen_params};
        root {d}/root;
    }}
}}
"
    )
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SAFETY: kill has no memory preconditions; the pid is our own child's.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGQUIT) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
