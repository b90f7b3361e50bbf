//! Batching of small container writes (issue #16, `--log-coalesce-ms`): a
//! busy writer's small writes are read and logged in batches, but the
//! interactive paths (a terminal, an attach client) never wait.
//!
//! The interactive tests configure the longest batching delay (60 s) and then
//! make several echo round trips one after the other, all within a deadline
//! shorter than that delay: if any output after the first were held back for
//! batching, the round trip would take up to a minute and miss the deadline.
//! (Speed itself is measured by scripts/bench-monitor, not here.)

mod common;

use common::*;
use std::fs;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(60);
/// All round trips together: well under the 60 s batching delay.
const ROUND_TRIPS_DEADLINE: Duration = Duration::from_secs(30);
const ROUND_TRIPS: usize = 5;
const LONGEST_DELAY_MS: &str = "60000";

const ECHO_LOOP: &str = "while read x; do [ \"$x\" = quit ] && exit 0; echo \"got:$x\"; done";

/// Send `ping<i>` lines one at a time, each after the answer to the last one
/// arrived; panics if the answers do not all arrive by the deadline.
fn echo_round_trips(client: &AttachClient) -> AttachOutput {
    let deadline = Instant::now() + ROUND_TRIPS_DEADLINE;
    let mut out = AttachOutput::default();
    for i in 0..ROUND_TRIPS {
        client.send(format!("ping{i}\n").as_bytes());
        let want = format!("got:ping{i}");
        let left = deadline.saturating_duration_since(Instant::now());
        let arrived = client.read_until(&mut out, left, |o| {
            String::from_utf8_lossy(&o.stdout).contains(&want)
        });
        assert!(
            arrived,
            "round trip {i}: {want:?} did not arrive within {ROUND_TRIPS_DEADLINE:?} of the \
             first (output held back for batching?); stdout so far {}",
            show(&out.stdout)
        );
    }
    client.send(b"quit\n");
    out
}

#[test]
fn pty_echo_round_trips_are_never_batched() {
    if skip_without_runtime("pty_echo_round_trips_are_never_batched") {
        return;
    }
    let mut c = Container::new("coalesce-pty", &["sh", "-c", ECHO_LOOP]);
    c.edit_config(|v| v["process"]["terminal"] = serde_json::Value::Bool(true));
    let tmp = c.root().join("tmp");
    fs::create_dir(&tmp).unwrap();
    c.env.push(("TMPDIR".into(), tmp.display().to_string()));
    c.extra_args = vec![
        "-t".into(),
        "--log-coalesce-ms".into(),
        LONGEST_DELAY_MS.into(),
    ];
    let l = c.launch();
    l.expect_pid("data");
    let client = AttachClient::connect_or_panic(&c.attach_path());
    c.start();
    echo_round_trips(&client);
    assert_eq!(c.wait_exit_file(T), b"0");
    c.wait_conmon_exit(T);
    let log = reconstruct(&parse_k8s_log(&c.read_log()), "stdout");
    for i in 0..ROUND_TRIPS {
        let want = format!("got:ping{i}\r\n");
        assert!(
            String::from_utf8_lossy(&log).contains(&want),
            "log lacks {want:?}: {}",
            show(&log)
        );
    }
}

#[test]
fn attach_echo_round_trips_are_never_batched() {
    if skip_without_runtime("attach_echo_round_trips_are_never_batched") {
        return;
    }
    let mut c = Container::new("coalesce-attach", &["sh", "-c", ECHO_LOOP]);
    c.extra_args = vec![
        "--stdin".into(),
        "--log-coalesce-ms".into(),
        LONGEST_DELAY_MS.into(),
    ];
    let l = c.launch();
    l.expect_pid("data");
    let client = AttachClient::connect_or_panic(&c.attach_path());
    c.start();
    echo_round_trips(&client);
    let out = client.read_to_eof(T);
    assert_eq!(c.wait_exit_file(T), b"0");
    c.wait_conmon_exit(T);
    let want: String = (0..ROUND_TRIPS).map(|i| format!("got:ping{i}\n")).collect();
    assert!(out.stderr.is_empty(), "stderr {}", show(&out.stderr));
    let log = reconstruct(&parse_k8s_log(&c.read_log()), "stdout");
    assert_eq!(show(&log), show(want.as_bytes()));
}

/// Many small writes, some of them parts of lines, reach the log byte for
/// byte with batching on (the default delay), and at exit nothing parked is
/// left behind.
#[test]
fn small_writes_are_logged_exactly_with_batching() {
    if skip_without_runtime("small_writes_are_logged_exactly_with_batching") {
        return;
    }
    // Each printf is one write(): a line in three pieces, then a whole line.
    let script = "i=0; while [ $i -lt 3000 ]; do printf 'a%d' $i; printf '-b'; \
                  printf -- '-c\\n'; echo \"line $i\"; i=$((i+1)); done; printf 'tail'";
    let mut c = Container::new("coalesce-small", &["sh", "-c", script]);
    let (_, code) = c.run_to_exit(T);
    assert_eq!(code, b"0");
    c.wait_conmon_exit(T);
    let want: String = (0..3000)
        .map(|i| format!("a{i}-b-c\nline {i}\n"))
        .chain(std::iter::once("tail".to_string()))
        .collect();
    let log = reconstruct(&parse_k8s_log(&c.read_log()), "stdout");
    assert_eq!(
        log.len(),
        want.len(),
        "log {}",
        show(&log[..log.len().min(400)])
    );
    assert!(log == want.as_bytes(), "log differs from what was written");
}

#[test]
fn out_of_range_delays_are_rejected() {
    for bad in ["-1", "60001"] {
        let dir = tempdir("coalesce-cli");
        let log = format!("k8s-file:{}", dir.path().join("ctr.log").display());
        let args = [
            "--cid",
            "coalesce-cli-test-01",
            "--cuuid",
            "coalesce-cli-test-01",
            "--runtime",
            "/tmp",
            "-l",
            &log,
            "--log-coalesce-ms",
            bad,
        ];
        let out = run_conmon(&args, dir.path());
        assert_eq!(out.code(), Some(1), "stderr {:?}", out.stderr_str());
        assert_eq!(
            out.stderr_str(),
            format!(
                "[conmon:e]: Invalid --log-coalesce-ms {bad}: expected milliseconds from 0 to \
                 60000\n"
            )
        );
    }
}
