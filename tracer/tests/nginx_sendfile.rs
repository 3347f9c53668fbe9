//! nginx sends a 1 MiB static file with sendfile(): both sides report the full size.

mod common;

use common::*;

const SIZE: usize = 1 << 20;

#[test]
fn nginx_sendfile_1_mib() {
    let port = free_port();
    let data = pseudo_random_bytes(SIZE, 0x5eed);
    let nginx = Nginx::start(port, &[("big.bin", &data)]);
    let trace = Trace::on_port(port, &[]);
    let since = trace.started_at;
    let run = curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code} %{size_download}",
        &format!("http://127.0.0.1:{port}/big.bin"),
    ]);
    let records = trace.stop();
    assert_eq!(
        run.stdout_text(),
        format!("200 {SIZE}"),
        "curl got the file"
    );

    let client = only_one(&records, "client");
    assert_eq!(
        u64_at(client, "/pid"),
        run.pid as u64,
        "client pid in {client}"
    );
    assert_eq!(str_at(client, "/comm"), "curl", "client comm in {client}");
    let srv = only_one(&records, "server");
    assert_eq!(
        u64_at(srv, "/pid"),
        nginx.pid() as u64,
        "nginx pid in {srv}"
    );
    assert_eq!(str_at(srv, "/comm"), "nginx", "server comm in {srv}");

    for rec in [client, srv] {
        assert_complete_exchange(rec, since);
        assert_eq!(
            str_at(rec, "/dst"),
            format!("127.0.0.1:{port}"),
            "dst in {rec}"
        );
        assert_eq!(str_at(rec, "/request/method"), "GET", "method in {rec}");
        assert_eq!(
            str_at(rec, "/request/target"),
            "/big.bin",
            "target in {rec}"
        );
        assert_eq!(u64_at(rec, "/response/status"), 200, "status in {rec}");
        assert_eq!(
            header_at(rec, "/response/headers", "Content-Length").as_deref(),
            Some("1048576"),
            "Content-Length in {rec}"
        );
        assert_eq!(
            u64_at(rec, "/response/body_size"),
            SIZE as u64,
            "response body_size in {rec}"
        );
        // 4096 bytes kept at most (and none of what sendfile sent): truncated.
        assert!(
            bool_at(rec, "/response/body_truncated"),
            "body_truncated in {rec}"
        );
    }
    assert!(
        !nginx.error_log().contains("[emerg]"),
        "nginx error.log:\n{}",
        nginx.error_log()
    );
}
