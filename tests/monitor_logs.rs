//! k8s-file logging with the real runtime (spec §7.2–§7.4, contract §12.1):
//! record format, P/F splitting, byte-exact reconstruction of large streams,
//! --log-size-max truncation, --log-rotate/--log-max-files, global cap.

mod common;

use common::*;
use std::fs;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const T: Duration = Duration::from_secs(60);

fn s(x: &str) -> String {
    x.to_string()
}

/// Run a shell script in a container with extra conmon options; return the
/// container (exited, conmon gone) and the parsed log.
fn run_sh(name: &str, script: &str, extra: &[&str]) -> (Container, Vec<Record>) {
    let mut c = Container::new(name, &["sh", "-c", script]);
    c.extra_args = extra.iter().map(|x| x.to_string()).collect();
    let (_pid, code) = c.run_to_exit(T);
    assert_eq!(
        code,
        b"0",
        "container exit status; conmon stderr {}",
        c.conmon_stderr()
    );
    c.wait_conmon_exit(T);
    let recs = parse_k8s_log(&c.read_log());
    (c, recs)
}

fn only(stream: &str, recs: &[Record]) -> Vec<(String, char, String)> {
    triples(recs)
        .into_iter()
        .filter(|t| t.0 == stream)
        .collect()
}

#[test]
fn records_for_full_and_partial_lines() {
    if skip_without_runtime("records_for_full_and_partial_lines") {
        return;
    }
    let (c, recs) = run_sh(
        "logs-basic",
        "echo hello; printf partial; echo err >&2",
        &[],
    );
    assert_eq!(
        only("stdout", &recs),
        vec![
            (s("stdout"), 'F', s("hello")),
            (s("stdout"), 'P', s("partial"))
        ]
    );
    assert_eq!(only("stderr", &recs), vec![(s("stderr"), 'F', s("err"))]);
    assert_eq!(
        recs.len(),
        3,
        "no other records (no terminating F at exit): {recs:?}"
    );
    // Raw bytes: exact layout `<ts> stdout F hello\n`.
    let raw = String::from_utf8(c.read_log()).unwrap();
    let re = regex::Regex::new(
        r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{9}[+-]\d{2}:\d{2} (stdout F hello|stdout P partial|stderr F err)$",
    )
    .unwrap();
    for line in raw.lines() {
        assert!(re.is_match(line), "bad record line {line:?}");
    }
}

#[test]
fn empty_line_keeps_space_after_tag() {
    if skip_without_runtime("empty_line_keeps_space_after_tag") {
        return;
    }
    let (c, recs) = run_sh("logs-empty", "echo; echo x", &[]);
    assert_eq!(
        triples(&recs),
        vec![(s("stdout"), 'F', s("")), (s("stdout"), 'F', s("x"))]
    );
    let raw = c.read_log();
    let first = raw.split(|&b| b == b'\n').next().unwrap();
    assert!(
        first.ends_with(b" stdout F "),
        "empty line record: {}",
        show(first)
    );
}

#[test]
fn one_timestamp_per_chunk_and_content_is_raw() {
    if skip_without_runtime("one_timestamp_per_chunk_and_content_is_raw") {
        return;
    }
    // A single write -> a single read -> one timestamp for all pieces.
    let (_c, recs) = run_sh("logs-chunk", r"printf 'a b\n\nc\r\n\t d  \001'", &[]);
    assert_eq!(
        triples(&recs),
        vec![
            (s("stdout"), 'F', s("a b")),
            (s("stdout"), 'F', s("")),
            (s("stdout"), 'F', s("c\r")),
            (s("stdout"), 'P', s("\t d  \u{1}")),
        ]
    );
    let ts: Vec<&str> = recs.iter().map(|r| r.timestamp.as_str()).collect();
    assert!(
        ts.iter().all(|t| *t == ts[0]),
        "one timestamp per chunk: {ts:?}"
    );
}

/// Seconds since the epoch of a k8s timestamp (`YYYY-MM-DDTHH:MM:SS.N±HH:MM`).
fn ts_epoch(ts: &str) -> i64 {
    let num = |a: usize, b: usize| ts[a..b].parse::<i64>().unwrap();
    let (y, m, d) = (num(0, 4), num(5, 7), num(8, 10));
    let (hh, mm, ss) = (num(11, 13), num(14, 16), num(17, 19));
    let off = &ts[ts.len() - 6..];
    let sign = if off.starts_with('-') { -1 } else { 1 };
    let off_s =
        sign * (off[1..3].parse::<i64>().unwrap() * 3600 + off[4..6].parse::<i64>().unwrap() * 60);
    // days from civil (Howard Hinnant)
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = if y2 >= 0 { y2 } else { y2 - 399 } / 400;
    let yoe = y2 - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    days * 86400 + hh * 3600 + mm * 60 + ss - off_s
}

fn tz_case(tz: &str, offset: &str) {
    let mut c = Container::new(
        &format!("logs-tz{}", offset.replace(':', "")),
        &["sh", "-c", "echo tz"],
    );
    c.env.push(("TZ".into(), tz.into()));
    let before = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let (_pid, code) = c.run_to_exit(T);
    assert_eq!(code, b"0");
    let after = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let recs = parse_k8s_log(&c.read_log());
    assert_eq!(triples(&recs), vec![(s("stdout"), 'F', s("tz"))]);
    let ts = &recs[0].timestamp;
    assert!(
        ts.ends_with(offset),
        "TZ={tz}: timestamp {ts} must end with {offset}"
    );
    let t = ts_epoch(ts);
    assert!(
        t >= before - 1 && t <= after + 1,
        "TZ={tz}: timestamp {ts} ({t}) not within [{before}, {after}]"
    );
}

#[test]
fn timestamps_are_local_time_with_numeric_offset() {
    if skip_without_runtime("timestamps_are_local_time_with_numeric_offset") {
        return;
    }
    tz_case("UTC", "+00:00");
    tz_case("IST-5:30", "+05:30");
    tz_case("XYZ+3", "-03:00");
}

#[test]
fn lines_longer_than_read_buffer_become_partial_records() {
    if skip_without_runtime("lines_longer_than_read_buffer_become_partial_records") {
        return;
    }
    // vigil reads up to 64 KiB at a time (conmon: 8 KiB); a longer line is
    // cut into P records at read boundaries.
    let (_c, recs) = run_sh(
        "logs-long",
        "head -c 200000 /dev/zero | tr '\\000' x; echo; echo short",
        &[],
    );
    let expected = format!("{}\nshort\n", "x".repeat(200000));
    assert_eq!(reconstruct(&recs, "stdout"), expected.as_bytes());
    let p = recs.iter().filter(|r| r.tag == 'P').count();
    assert!(
        p >= 2,
        "a 20000-byte line must produce >= 2 P records, got {p}"
    );
    for r in &recs {
        assert!(
            r.content.len() <= 65536,
            "record longer than one 64 KiB read: {}",
            r.content.len()
        );
    }
    assert_eq!(recs.last().unwrap().tag, 'F');
    assert_eq!(recs.last().unwrap().content, b"short");
}

#[test]
fn binary_output_without_newline_is_drained_completely() {
    if skip_without_runtime("binary_output_without_newline_is_drained_completely") {
        return;
    }
    // 700 000 NUL bytes written just before exit: nothing may be lost.
    let (_c, recs) = run_sh(
        "logs-nul",
        "dd if=/dev/zero bs=1000 count=700 2>/dev/null",
        &[],
    );
    let out = reconstruct(&recs, "stdout");
    assert_eq!(out.len(), 700_000, "stdout bytes in log");
    assert!(out.iter().all(|&b| b == 0));
    assert!(
        recs.iter().all(|r| r.tag == 'P'),
        "no newline => only P records"
    );
}

/// Deterministic stream: lines of 1 B … 20 KiB (incl. "\n"), every byte
/// value except "\n" in the content, ending with a partial line.
fn generate_stream(path: &Path, total: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let mut data = Vec::with_capacity(total + 20 * 1024);
    while data.len() < total {
        let len = if rng.below(2) == 0 {
            1 + rng.below(200)
        } else {
            1 + rng.below(20 * 1024)
        } as usize;
        for _ in 0..len - 1 {
            let mut b = rng.next() as u8;
            if b == b'\n' {
                b = b'N';
            }
            data.push(b);
        }
        data.push(b'\n');
    }
    data.extend_from_slice(b"final partial line without newline");
    let mut f = fs::File::create(path).unwrap();
    f.write_all(&data).unwrap();
    f.sync_all().unwrap();
    data
}

#[test]
fn large_stream_64mib_reconstructs_byte_exactly() {
    if skip_without_runtime("large_stream_64mib_reconstructs_byte_exactly") {
        return;
    }
    let data_dir = tempdir("stream");
    let data = generate_stream(&data_dir.path().join("stream.bin"), 64 << 20, 0x5eed_c0de);
    let mut c = Container::with_mounts(
        "logs-64mib",
        &["cat", "/data/stream.bin"],
        &[BindMount {
            source: fs::canonicalize(data_dir.path()).unwrap(),
            destination: "/data".into(),
            readonly: true,
        }],
    );
    let (_pid, code) = c.run_to_exit(Duration::from_secs(600));
    assert_eq!(code, b"0", "conmon stderr {}", c.conmon_stderr());
    let recs = parse_k8s_log(&c.read_log());
    assert!(
        recs.iter().all(|r| r.stream == "stdout"),
        "unexpected stderr records"
    );
    let out = reconstruct(&recs, "stdout");
    if out != data {
        let first_diff = out.iter().zip(data.iter()).position(|(a, b)| a != b);
        panic!(
            "reconstructed stream differs: got {} bytes, expected {}; first difference at {:?}",
            out.len(),
            data.len(),
            first_diff
        );
    }
    assert!(
        recs.iter().any(|r| r.tag == 'P'),
        "long lines must produce P records"
    );
    let longest = recs.iter().map(|r| r.content.len()).max().unwrap();
    assert!(
        longest <= 65536,
        "record content longer than a 64 KiB read: {longest}"
    );
    assert_eq!(recs.last().unwrap().tag, 'P');
    assert_eq!(
        recs.last().unwrap().content,
        b"final partial line without newline"
    );
}

// --- size limits (§7.4) -------------------------------------------------------

/// `printf` per line: every line is a separate small write, and the whole
/// output stays below 8192 bytes, so records never depend on read timing.
fn numbered_lines_script(fmt: &str, n: usize, tail: Option<&str>) -> String {
    let mut sc = format!("i=1; while [ $i -le {n} ]; do printf '{fmt}\\n' $i; i=$((i+1)); done");
    if let Some(t) = tail {
        sc.push_str(&format!("; printf '{t}'"));
    }
    sc
}

/// `echo TEXT` n times (separate small writes).
fn repeat_line_script(text: &str, n: usize) -> String {
    format!("i=0; while [ $i -lt {n} ]; do echo {text}; i=$((i+1)); done")
}

fn expected_lines(
    fmt_width: usize,
    prefix: &str,
    n: usize,
    tail: Option<&str>,
) -> Vec<(String, char, String)> {
    let mut out = String::new();
    for i in 1..=n {
        out.push_str(&format!("{prefix}{i:0fmt_width$}\n"));
    }
    if let Some(t) = tail {
        out.push_str(t);
    }
    records_for("stdout", &out)
}

fn file_triples(path: &Path) -> Vec<(String, char, String)> {
    triples(&parse_k8s_log(&fs::read(path).unwrap()))
}

#[test]
fn log_size_max_10_keeps_only_last_line() {
    if skip_without_runtime("log_size_max_10_keeps_only_last_line") {
        return;
    }
    let script = numbered_lines_script("hello from %d", 100, None);
    let (c, recs) = run_sh("logs-cap10", &script, &["--log-size-max", "10"]);
    assert_eq!(
        triples(&recs),
        vec![(s("stdout"), 'F', s("hello from 100"))]
    );
    let log = c.log_path.display().to_string();
    for suffix in [".1", ".tmp", ".new"] {
        assert!(
            !Path::new(&format!("{log}{suffix}")).exists(),
            "{log}{suffix} must not exist"
        );
    }
}

#[test]
fn log_size_max_truncation_follows_accounting_rule() {
    if skip_without_runtime("log_size_max_truncation_follows_accounting_rule") {
        return;
    }
    // "line NNN\n" = 9 bytes -> 54 accounted; cap 162 = exactly 3 records
    // (the check is `counter + record > cap`).
    let script = numbered_lines_script("line %03d", 99, Some("tail"));
    let all = expected_lines(3, "line ", 99, Some("tail"));
    let sim = simulate_k8s_limits(&all, 0, 162, -1, None);
    let expected = sim[0].clone().unwrap();
    // 97, 98, 99 fill the file (162); "tail" (50) forces a truncation.
    assert_eq!(expected, vec![(s("stdout"), 'P', s("tail"))]);
    let (c, recs) = run_sh("logs-cap162", &script, &["--log-size-max", "162"]);
    assert_eq!(triples(&recs), expected);
    assert!(!Path::new(&format!("{}.1", c.log_path.display())).exists());

    // Without the tail the last file holds exactly three records.
    let script = numbered_lines_script("line %03d", 99, None);
    let all = expected_lines(3, "line ", 99, None);
    let expected = simulate_k8s_limits(&all, 0, 162, -1, None)[0]
        .clone()
        .unwrap();
    assert_eq!(expected.len(), 3);
    let (_c, recs) = run_sh("logs-cap162b", &script, &["--log-size-max", "162"]);
    assert_eq!(triples(&recs), expected);
}

/// A valid k8s record line of exactly `len` bytes (len >= 47).
fn filler_record(len: usize) -> Vec<u8> {
    let prefix = "2020-01-01T00:00:00.000000000+00:00 stdout F ";
    let mut v = prefix.as_bytes().to_vec();
    v.extend(std::iter::repeat_n(b'f', len - prefix.len() - 1));
    v.push(b'\n');
    assert_eq!(v.len(), len);
    v
}

#[test]
fn existing_log_is_appended() {
    if skip_without_runtime("existing_log_is_appended") {
        return;
    }
    let mut c = Container::new("logs-append", &["sh", "-c", "echo second run"]);
    let old = filler_record(80);
    fs::write(&c.log_path, &old).unwrap();
    let (_pid, code) = c.run_to_exit(T);
    assert_eq!(code, b"0");
    let log = c.read_log();
    assert!(
        log.starts_with(&old),
        "old content must be kept: {}",
        show(&log)
    );
    let recs = parse_k8s_log(&log);
    assert_eq!(
        triples(&recs[1..]),
        vec![(s("stdout"), 'F', s("second run"))]
    );
}

#[test]
fn size_counter_starts_at_existing_file_size() {
    if skip_without_runtime("size_counter_starts_at_existing_file_size") {
        return;
    }
    // 2.2.x: the per-file counter starts at the current file size.
    let mut c = Container::new(
        "logs-initial",
        &["sh", "-c", &repeat_line_script("hello", 10)],
    );
    c.extra_args = vec!["--log-size-max".into(), "160".into()];
    fs::write(&c.log_path, filler_record(100)).unwrap();
    let (_pid, code) = c.run_to_exit(T);
    assert_eq!(code, b"0");
    let all = records_for("stdout", &"hello\n".repeat(10));
    let expected = simulate_k8s_limits(&all, 100, 160, -1, None)[0]
        .clone()
        .unwrap();
    assert_eq!(expected.len(), 3);
    assert_eq!(file_triples(&c.log_path), expected);
}

fn rotation_case(name: &str, max_files: usize) {
    // "line NN\n" = 8 bytes -> 53 accounted; cap 212 = 4 records per file.
    let script = numbered_lines_script("line %02d", 30, None);
    let mut c = Container::new(name, &["sh", "-c", &script]);
    c.extra_args = vec![
        "--log-rotate".into(),
        "--log-max-files".into(),
        max_files.to_string(),
        "--log-size-max".into(),
        "212".into(),
    ];
    let (_pid, code) = c.run_to_exit(T);
    assert_eq!(code, b"0", "conmon stderr {}", c.conmon_stderr());
    c.wait_conmon_exit(T);
    let all = expected_lines(2, "line ", 30, None);
    let sim = simulate_k8s_limits(&all, 0, 212, -1, Some(max_files));
    let log = c.log_path.display().to_string();
    for (i, expected) in sim.iter().enumerate() {
        let path = if i == 0 {
            log.clone()
        } else {
            format!("{log}.{i}")
        };
        match expected {
            Some(recs) => {
                assert!(Path::new(&path).exists(), "{path} must exist");
                assert_eq!(file_triples(Path::new(&path)), *recs, "content of {path}");
                use std::os::unix::fs::PermissionsExt;
                let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
                assert_eq!(mode, 0o640, "mode of {path}");
            }
            None => assert!(!Path::new(&path).exists(), "{path} must not exist"),
        }
    }
    let n = sim.len();
    assert!(
        !Path::new(&format!("{log}.{n}")).exists(),
        "{log}.{n} must not exist"
    );
    assert!(
        !Path::new(&format!("{log}.new")).exists(),
        "{log}.new must not be left behind"
    );
}

#[test]
fn log_rotate_keeps_two_backups() {
    if skip_without_runtime("log_rotate_keeps_two_backups") {
        return;
    }
    rotation_case("logs-rotate2", 2);
}

#[test]
fn log_rotate_keeps_three_backups() {
    if skip_without_runtime("log_rotate_keeps_three_backups") {
        return;
    }
    rotation_case("logs-rotate3", 3);
}

#[test]
fn log_global_size_max_stops_after_cap() {
    if skip_without_runtime("log_global_size_max_stops_after_cap") {
        return;
    }
    // "hello\n" -> 51 accounted; cap 150 keeps 3 records (exceeded by one).
    let script = repeat_line_script("hello", 10);
    let (_c, recs) = run_sh("logs-global", &script, &["--log-global-size-max", "150"]);
    let all = records_for("stdout", &"hello\n".repeat(10));
    let expected = simulate_k8s_limits(&all, 0, -1, 150, None)[0]
        .clone()
        .unwrap();
    assert_eq!(expected.len(), 3);
    assert_eq!(triples(&recs), expected);
}

#[test]
fn log_global_size_max_counts_existing_file() {
    if skip_without_runtime("log_global_size_max_counts_existing_file") {
        return;
    }
    let script = repeat_line_script("hello", 10);
    let mut c = Container::new("logs-global-init", &["sh", "-c", &script]);
    c.extra_args = vec!["--log-global-size-max".into(), "150".into()];
    let old = filler_record(100);
    fs::write(&c.log_path, &old).unwrap();
    let (_pid, code) = c.run_to_exit(T);
    assert_eq!(code, b"0");
    let log = c.read_log();
    assert!(log.starts_with(&old));
    let all = records_for("stdout", &"hello\n".repeat(10));
    let expected = simulate_k8s_limits(&all, 100, -1, 150, None)[0]
        .clone()
        .unwrap();
    assert_eq!(expected.len(), 1);
    assert_eq!(triples(&parse_k8s_log(&log)[1..]), expected);
}

#[test]
fn none_driver_writes_no_log() {
    if skip_without_runtime("none_driver_writes_no_log") {
        return;
    }
    let mut c = Container::new("logs-none", &["sh", "-c", "echo invisible"]);
    c.log_specs = vec!["none:".into()];
    let (_pid, code) = c.run_to_exit(T);
    assert_eq!(code, b"0");
    assert!(!c.log_path.exists());
}

#[test]
fn passthrough_gives_container_conmons_stdio() {
    if skip_without_runtime("passthrough_gives_container_conmons_stdio") {
        return;
    }
    // Our conmon's stdout/stderr are files (see Container::launch): with
    // passthrough the container writes straight into them; nothing is logged
    // and no attach socket or FIFOs are created.
    let mut c = Container::new(
        "logs-passthrough",
        &["sh", "-c", "echo via-passthrough; echo err-pt >&2"],
    );
    c.log_specs = vec!["passthrough:".into()];
    let l = c.launch();
    l.expect_pid("data");
    assert!(
        !c.bundle.join("attach").exists(),
        "no attach socket with passthrough"
    );
    assert!(
        !c.bundle.join("ctl").exists(),
        "no ctl FIFO with passthrough"
    );
    c.start();
    assert_eq!(c.wait_exit_file(T), b"0");
    c.wait_conmon_exit(T);
    let out = fs::read_to_string(c.root().join("conmon.stdout")).unwrap();
    assert_eq!(out, "via-passthrough\n");
    let err = fs::read_to_string(c.root().join("conmon.stderr")).unwrap();
    assert!(
        err.contains("err-pt\n"),
        "container stderr must reach conmon's stderr: {err:?}"
    );
    assert!(!c.log_path.exists());
}
