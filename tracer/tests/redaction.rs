//! Secrets are masked in the JSON stream by default; `--redact NAME` adds names;
//! `--no-redact` shows everything.

mod common;

use common::*;
use serde_json::Value;

fn secret_exchange(extra: &[&str]) -> (Vec<Value>, Vec<u8>) {
    let server = HttpServer::start("127.0.0.1:0", |_req| {
        Reply::with_status(
            200,
            "OK",
            &[("Set-Cookie", "session=srv-s3cret; HttpOnly"), ("X-Session", "hdr-s3cret")],
            "ok",
        )
    });
    let trace = Trace::on_port(server.port(), extra);
    curl(&[
        "-H",
        "Authorization: Bearer s3cret",
        "-H",
        "Cookie: sid=cookie-s3cret",
        "-H",
        "x-api-key: key-s3cret",
        "-H",
        "X-Session: req-s3cret",
        &format!("http://{}/secret", server.authority()),
    ]);
    let stopped = trace.stop_full();
    (stopped.records, stopped.stdout)
}

fn headers(rec: &Value, name: &str, msg: &str) -> Option<String> {
    header_at(rec, &format!("/{msg}/headers"), name)
}

/// The secrets `secret_exchange` sends, masked (X-Session by `--redact`).
fn assert_masked(r: &Value) {
    assert_eq!(headers(r, "Authorization", "request").as_deref(), Some("Bearer <redacted>"));
    assert_eq!(headers(r, "Cookie", "request").as_deref(), Some("<redacted>"));
    assert_eq!(headers(r, "X-Api-Key", "request").as_deref(), Some("<redacted>"));
    assert_eq!(headers(r, "X-Session", "request").as_deref(), Some("<redacted>"));
    assert_eq!(headers(r, "Set-Cookie", "response").as_deref(), Some("<redacted>"));
    assert_eq!(headers(r, "X-Session", "response").as_deref(), Some("<redacted>"));
}

#[test]
fn secrets_are_masked_by_default_and_with_redact() {
    let (records, raw) = secret_exchange(&["--redact", "x-SESSION"]);
    let text = String::from_utf8_lossy(&raw);
    assert!(!text.contains("s3cret"), "a secret leaked into the JSON stream:\n{text}");
    for role in ["client", "server"] {
        let r = only_one(&records, role);
        assert_masked(r);
        assert!(headers(r, "User-Agent", "request").is_some_and(|u| u.starts_with("curl/")));
    }
}

#[test]
fn no_redact_shows_secrets() {
    let (records, _) = secret_exchange(&["--no-redact"]);
    for role in ["client", "server"] {
        let r = only_one(&records, role);
        assert_eq!(headers(r, "Authorization", "request").as_deref(), Some("Bearer s3cret"));
        assert_eq!(headers(r, "Cookie", "request").as_deref(), Some("sid=cookie-s3cret"));
        assert_eq!(headers(r, "X-Api-Key", "request").as_deref(), Some("key-s3cret"));
        assert_eq!(headers(r, "X-Session", "request").as_deref(), Some("req-s3cret"));
        assert_eq!(
            headers(r, "Set-Cookie", "response").as_deref(),
            Some("session=srv-s3cret; HttpOnly")
        );
        assert_eq!(headers(r, "X-Session", "response").as_deref(), Some("hdr-s3cret"));
    }
}

/// The interface capture masks the same secrets: packets carry them too.
#[test]
fn secrets_are_masked_on_the_interface_path() {
    let (records, raw) = secret_exchange(&["--iface", "lo", "--redact", "x-session"]);
    let text = String::from_utf8_lossy(&raw);
    assert!(!text.contains("s3cret"), "a secret leaked into the --iface JSON stream:\n{text}");
    assert_eq!(records.len(), 1, "one record per exchange with --iface:\n{}", dump(&records));
    let r = &records[0];
    assert_eq!(str_at(r, "/source"), "packet", "source in {r}");
    assert_masked(r);
}

/// `--no-redact` with `--redact NAME` is refused before anything starts: the header named
/// to be masked would otherwise be shown as sent.
#[test]
fn no_redact_with_redact_is_refused() {
    let out = l7trace().args(["--json", "--no-redact", "--redact", "X-Secret"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert!(stderr.contains("'--no-redact' cannot be used with '--redact <NAME>'"), "stderr: {stderr}");
    assert!(out.stdout.is_empty());
}
