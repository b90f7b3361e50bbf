//! vigil's log extensions with the real runtime (no conmon has them):
//! the syslog driver (`-l syslog:udp:HOST:PORT`, `syslog:tcp:HOST:PORT` with
//! RFC 6587 octet counting, `syslog:unix:PATH`; RFC 5424 records, one per
//! line, partial line flushed at exit) and `--log-rate-limit
//! BYTES_PER_SEC[:BURST]` (excess dropped from the logs with marker
//! records; attach clients still get everything). Listeners are loopback
//! sockets owned by the test.

mod common;

use common::*;
use std::io::Read;
use std::net::{TcpListener, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(60);

/// One parsed RFC 5424 record.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Rec {
    pri: String,
    stream: String,
    msg: String,
    host: String,
    app: String,
    procid: String,
}

fn parse_record(raw: &[u8]) -> Rec {
    let text = String::from_utf8(raw.to_vec())
        .unwrap_or_else(|_| panic!("record not UTF-8: {}", show(raw)));
    let re = regex::Regex::new(
        r"(?s)^<(\d+)>1 (\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}[+-]\d{2}:\d{2}) (\S+) (\S+) (\S+) (stdout|stderr) - (.*)$",
    )
    .unwrap();
    let c = re
        .captures(&text)
        .unwrap_or_else(|| panic!("not an RFC 5424 record as expected: {text:?}"));
    Rec {
        pri: c[1].to_string(),
        host: c[3].to_string(),
        app: c[4].to_string(),
        procid: c[5].to_string(),
        stream: c[6].to_string(),
        msg: c[7].to_string(),
    }
}

fn hostname() -> String {
    let mut buf = [0u8; 256];
    unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let end = buf.iter().position(|&b| b == 0).unwrap();
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

const SCRIPT: &str = "echo one; echo two >&2; printf 'a\\nb\\nc\\n'; printf tail";

/// (pri, stream, msg) expected for SCRIPT, sorted.
fn expected_for_script() -> Vec<(String, String, String)> {
    let mut v: Vec<(String, String, String)> = [
        ("14", "stdout", "one"),
        ("11", "stderr", "two"),
        ("14", "stdout", "a"),
        ("14", "stdout", "b"),
        ("14", "stdout", "c"),
        ("14", "stdout", "tail"),
    ]
    .iter()
    .map(|(p, s, m)| (p.to_string(), s.to_string(), m.to_string()))
    .collect();
    v.sort();
    v
}

fn check_records(c: &Container, recs: &[Rec], app: &str) {
    let mut got: Vec<(String, String, String)> = recs
        .iter()
        .map(|r| (r.pri.clone(), r.stream.clone(), r.msg.clone()))
        .collect();
    got.sort();
    assert_eq!(got, expected_for_script(), "records: {recs:?}");
    // stdout order is preserved.
    let stdout: Vec<&str> = recs
        .iter()
        .filter(|r| r.stream == "stdout")
        .map(|r| r.msg.as_str())
        .collect();
    assert_eq!(stdout, vec!["one", "a", "b", "c", "tail"]);
    let host = hostname();
    let pid = c.conmon_pid().to_string();
    for r in recs {
        assert_eq!(r.app, app, "APP-NAME");
        assert_eq!(r.host, host, "HOSTNAME");
        assert_eq!(r.procid, pid, "PROCID = the monitor's pid");
    }
}

fn receive_datagrams(recv: impl Fn(&mut [u8]) -> Option<usize>, n: usize) -> Vec<Rec> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 65536];
    let deadline = Instant::now() + T;
    while out.len() < n && Instant::now() < deadline {
        if let Some(len) = recv(&mut buf) {
            out.push(parse_record(&buf[..len]));
        }
    }
    out
}

#[test]
fn udp_records_one_per_line() {
    if skip_without_runtime("udp_records_one_per_line") {
        return;
    }
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let port = sock.local_addr().unwrap().port();
    let mut c = Container::new("syslog-udp", &["sh", "-c", SCRIPT]);
    c.log_specs = vec![format!("syslog:udp:127.0.0.1:{port}")];
    let (_pid, code) = c.run_to_exit(T);
    assert_eq!(code, b"0");
    let recs = receive_datagrams(|b| sock.recv(b).ok(), 6);
    c.wait_conmon_exit(T);
    check_records(&c, &recs, "syslog-udp");
    // Nothing else arrives (e.g. no empty record at exit).
    let mut buf = [0u8; 1024];
    assert!(sock.recv(&mut buf).is_err(), "unexpected extra record");
}

#[test]
fn tcp_records_use_octet_counting() {
    if skip_without_runtime("tcp_records_use_octet_counting") {
        return;
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        conn.set_read_timeout(Some(T)).unwrap();
        let mut data = Vec::new();
        conn.read_to_end(&mut data).unwrap();
        data
    });
    let mut c = Container::new("syslog-tcp", &["sh", "-c", SCRIPT]);
    c.log_specs = vec![format!("syslog:tcp:127.0.0.1:{port}")];
    let (_pid, code) = c.run_to_exit(T);
    assert_eq!(code, b"0");
    c.wait_conmon_exit(T);
    // The monitor closed the connection when it exited.
    let data = server.join().unwrap();
    let mut recs = Vec::new();
    let mut rest = &data[..];
    while !rest.is_empty() {
        let sp = rest
            .iter()
            .position(|&b| b == b' ')
            .unwrap_or_else(|| panic!("no length prefix: {}", show(rest)));
        let len: usize = std::str::from_utf8(&rest[..sp])
            .unwrap()
            .parse()
            .unwrap_or_else(|_| panic!("bad length {}", show(&rest[..sp])));
        assert!(rest.len() >= sp + 1 + len, "truncated frame");
        recs.push(parse_record(&rest[sp + 1..sp + 1 + len]));
        rest = &rest[sp + 1 + len..];
    }
    check_records(&c, &recs, "syslog-tcp");
}

#[test]
fn unix_datagram_records_and_short_id_app_name() {
    if skip_without_runtime("unix_datagram_records_and_short_id_app_name") {
        return;
    }
    let dir = tempdir("syslog-unix");
    let path = dir.path().join("log.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut c = Container::new("syslog-unix", &["sh", "-c", SCRIPT]);
    c.log_specs = vec![format!("syslog:unix:{}", path.display())];
    // Without --name, APP-NAME is the 12-character container id.
    let args = args_without_option(&c.conmon_args(), "-n");
    let l = c.launch_with_args(args);
    l.expect_pid("data");
    c.start();
    assert_eq!(c.wait_exit_file(T), b"0");
    let recs = receive_datagrams(|b| sock.recv(b).ok(), 6);
    c.wait_conmon_exit(T);
    let short = c.id[..12].to_string();
    check_records(&c, &recs, &short);
}

#[test]
fn syslog_with_k8s_file() {
    if skip_without_runtime("syslog_with_k8s_file") {
        return;
    }
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let port = sock.local_addr().unwrap().port();
    let mut c = Container::new("syslog-k8s", &["sh", "-c", SCRIPT]);
    c.log_specs.push(format!("syslog:udp:127.0.0.1:{port}"));
    let (_pid, code) = c.run_to_exit(T);
    assert_eq!(code, b"0");
    let recs = receive_datagrams(|b| sock.recv(b).ok(), 6);
    c.wait_conmon_exit(T);
    check_records(&c, &recs, "syslog-k8s");
    let records = parse_k8s_log(&c.read_log());
    assert_eq!(reconstruct(&records, "stdout"), b"one\na\nb\nc\ntail");
    assert_eq!(reconstruct(&records, "stderr"), b"two\n");
}

fn fails_with_message(log: &str, extra: &[&str], needle: &str) {
    let dir = tempdir("syslog-cli");
    let mut args = vec![
        "--cid",
        "syslog-cli-test-01",
        "--cuuid",
        "syslog-cli-test-01",
        "--runtime",
        "/tmp",
        "-l",
        log,
    ];
    args.extend_from_slice(extra);
    let out = run_conmon(&args, dir.path());
    assert_eq!(
        out.code(),
        Some(1),
        "conmon {args:?} must fail; stderr {:?}",
        out.stderr_str()
    );
    assert!(
        out.stderr_str().starts_with("[conmon:e]: ") && out.stderr_str().contains(needle),
        "stderr of conmon {args:?}: {:?} (expected {needle:?})",
        out.stderr_str()
    );
}

#[test]
fn bad_syslog_destinations_are_rejected() {
    for bad in [
        "syslog:udp:nohostport",
        "syslog:ftp:x:1",
        "syslog:tcp:host:notaport",
        "syslog:unix:",
        "syslog:udp:",
    ] {
        fails_with_message(bad, &[], "Invalid syslog destination");
    }
}

// --- --log-rate-limit ---------------------------------------------------------------------

#[test]
fn invalid_rate_limits_are_rejected() {
    for bad in ["0", "x", "1:0", "1:", ":1", "-5"] {
        let dir = tempdir("rate-cli");
        let log = dir.path().join("ctr.log");
        let logarg = format!("k8s-file:{}", log.display());
        fails_with_message(
            &logarg,
            &["--log-rate-limit", bad],
            "Invalid --log-rate-limit",
        );
    }
}

#[test]
fn rate_limit_drops_excess_from_log_but_not_from_attach() {
    if skip_without_runtime("rate_limit_drops_excess_from_log_but_not_from_attach") {
        return;
    }
    const TOTAL: usize = 1024 * 1024;
    // 1 MiB of 16-byte lines, written as fast as possible.
    let mut c = Container::new(
        "rate-limit",
        // The trailing sleep lets the attach queue drain while the container
        // runs (queued output is lost at shutdown: see
        // monitor_attach::queued_output_is_flushed_to_a_late_reader_before_close).
        &["sh", "-c", "yes 0123456789abcde | head -c 1048576; sleep 1"],
    );
    c.extra_args = vec!["--log-rate-limit".into(), "1000:10000".into()];
    let l = c.launch();
    l.expect_pid("data");
    let client = AttachClient::connect_or_panic(&c.attach_path());
    let t0 = Instant::now();
    c.start();
    let reader = std::thread::spawn(move || client.read_to_eof(T));
    assert_eq!(c.wait_exit_file(T), b"0");
    let elapsed = t0.elapsed().as_secs_f64();
    c.wait_conmon_exit(T);
    let out = reader.join().unwrap();
    let expected: Vec<u8> = b"0123456789abcde\n"
        .iter()
        .copied()
        .cycle()
        .take(TOTAL)
        .collect();
    assert_eq!(out.stdout.len(), TOTAL, "the attach client gets every byte");
    assert!(out.stdout == expected, "attach stdout content");

    let recs = parse_k8s_log(&c.read_log());
    let logged = reconstruct(&recs, "stdout").len();
    let limit = 10000.0 + elapsed * 1000.0 + 1000.0;
    assert!(
        (logged as f64) <= limit,
        "{logged} bytes logged in {elapsed:.2}s exceeds burst 10000 + 1000 B/s"
    );
    assert!(logged >= 10000, "the burst must be logged, got {logged}");
    let marker =
        regex::Regex::new(r"^vigil: log rate limit 1000 B/s exceeded: (\d+) bytes dropped$")
            .unwrap();
    let mut dropped = 0usize;
    let mut markers = 0;
    for r in recs.iter().filter(|r| r.stream == "stderr") {
        let text = String::from_utf8_lossy(&r.content);
        let caps = marker
            .captures(&text)
            .unwrap_or_else(|| panic!("unexpected stderr record {text:?}"));
        assert_eq!(r.tag, 'F');
        dropped += caps[1].parse::<usize>().unwrap();
        markers += 1;
    }
    assert!(markers >= 1, "no marker record");
    assert_eq!(
        logged + dropped,
        TOTAL,
        "logged {logged} + dropped {dropped} must add up to the output"
    );
}

#[test]
fn rate_limit_not_reached_logs_everything_without_marker() {
    if skip_without_runtime("rate_limit_not_reached_logs_everything_without_marker") {
        return;
    }
    let mut c = Container::new("rate-limit-ok", &["sh", "-c", "echo small; echo err >&2"]);
    c.extra_args = vec!["--log-rate-limit".into(), "100000".into()];
    let (_pid, code) = c.run_to_exit(T);
    assert_eq!(code, b"0");
    c.wait_conmon_exit(T);
    let mut t = triples(&parse_k8s_log(&c.read_log()));
    t.sort();
    assert_eq!(
        t,
        vec![
            ("stderr".to_string(), 'F', "err".to_string()),
            ("stdout".to_string(), 'F', "small".to_string())
        ]
    );
}

#[test]
fn long_line_is_sent_in_8k_pieces() {
    if skip_without_runtime("long_line_is_sent_in_8k_pieces") {
        return;
    }
    let dir = tempdir("syslog-long");
    let path = dir.path().join("log.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut c = Container::new(
        "syslog-long",
        &["sh", "-c", "head -c 65535 /dev/zero | tr '\\000' '#'"],
    );
    c.log_specs = vec![format!("syslog:unix:{}", path.display())];
    let (_pid, code) = c.run_to_exit(T);
    assert_eq!(code, b"0");
    let mut sizes = Vec::new();
    let mut total = 0;
    let mut buf = vec![0u8; 131072];
    while let Ok(n) = sock.recv(&mut buf) {
        let r = parse_record(&buf[..n]);
        assert!(r.msg.bytes().all(|b| b == b'#'));
        total += r.msg.len();
        sizes.push(r.msg.len());
    }
    c.wait_conmon_exit(T);
    assert_eq!(total, 65535, "all bytes sent: {sizes:?}");
    assert!(
        sizes.iter().all(|&n| n <= 8192),
        "pieces larger than 8 KiB: {sizes:?}"
    );
}
