//! The journald log driver with the real runtime (conmon-interface §7.6,
//! contract §12.2; conmon's 02-ctr-logs / 04-runtime / 06-priority-parsing
//! journald parts): entry fields, priorities, `<N>` prefixes, partial
//! entries, tag/name/label fields, SYSLOG_IDENTIFIER fallbacks, journald
//! together with k8s-file, and the label validation errors.
//!
//! A systemd-journald is started if none listens on
//! /run/systemd/journal/socket; entries are read with `journalctl -o json`.

mod common;

use common::*;
use std::time::Duration;

const T: Duration = Duration::from_secs(60);
const JT: Duration = Duration::from_secs(20);

fn need_journald(test: &str) -> bool {
    if skip_without_runtime(test) {
        return false;
    }
    match ensure_journald() {
        Ok(()) => true,
        Err(e) => {
            eprintln!("SKIPPED {test}: {e}");
            false
        }
    }
}

fn field(e: &JournalEntry, name: &str) -> Option<String> {
    e.get(name).map(|v| String::from_utf8_lossy(v).into_owned())
}

/// Run the container to completion, then wait until the journal has at
/// least `n` entries for it (or entries satisfying `done`).
fn run_and_collect(
    c: &mut Container,
    expected_exit: &[u8],
    done: impl FnMut(&[JournalEntry]) -> bool,
) -> Vec<JournalEntry> {
    let (_pid, code) = c.run_to_exit(T);
    assert_eq!(
        code,
        expected_exit,
        "exit status; conmon stderr {}",
        c.conmon_stderr()
    );
    c.wait_conmon_exit(T);
    let m = format!("CONTAINER_ID_FULL={}", c.id);
    wait_journal(&[&m], JT, done)
}

fn messages(entries: &[JournalEntry]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = entries
        .iter()
        .map(|e| {
            (
                field(e, "MESSAGE").unwrap_or_default(),
                field(e, "PRIORITY").unwrap_or_default(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn entry_fields_for_stdout_and_stderr() {
    if !need_journald("entry_fields_for_stdout_and_stderr") {
        return;
    }
    let mut c = Container::new(
        "jd-fields",
        &["sh", "-c", "echo out-line; echo err-line >&2"],
    );
    c.log_specs = vec!["journald:".into()];
    c.extra_args = [
        "--log-tag",
        "mytag",
        "--log-label",
        "A_B=c",
        "--log-label",
        "LBL2=v2",
    ]
    .iter()
    .map(|x| x.to_string())
    .collect();
    let entries = run_and_collect(&mut c, b"0", |e| e.len() >= 2);
    assert_eq!(
        messages(&entries),
        vec![
            ("err-line\n".to_string(), "3".to_string()),
            ("out-line\n".to_string(), "6".to_string())
        ],
        "MESSAGE keeps its newline; PRIORITY 6 stdout / 3 stderr"
    );
    let conmon_pid = c.conmon_pid().to_string();
    for e in &entries {
        assert_eq!(
            field(e, "CONTAINER_ID_FULL").as_deref(),
            Some(c.id.as_str())
        );
        assert_eq!(field(e, "CONTAINER_ID").as_deref(), Some(&c.id[..12]));
        assert_eq!(field(e, "CONTAINER_TAG").as_deref(), Some("mytag"));
        assert_eq!(field(e, "CONTAINER_NAME").as_deref(), Some("jd-fields"));
        assert_eq!(
            field(e, "SYSLOG_IDENTIFIER").as_deref(),
            Some("mytag"),
            "tag wins"
        );
        assert_eq!(field(e, "A_B").as_deref(), Some("c"));
        assert_eq!(field(e, "LBL2").as_deref(), Some("v2"));
        assert_eq!(field(e, "CONTAINER_PARTIAL_MESSAGE"), None);
        assert_eq!(field(e, "_COMM").as_deref(), Some("conmon"));
        assert_eq!(
            field(e, "_PID").as_deref(),
            Some(conmon_pid.as_str()),
            "sent by the monitor daemon"
        );
    }
    // Queries by label and tag find the same entries (02-ctr-logs.bats).
    assert_eq!(
        journal_entries(&[&format!("CONTAINER_ID_FULL={}", c.id), "A_B=c"]).len(),
        2
    );
    assert_eq!(
        journal_entries(&[
            &format!("CONTAINER_ID_FULL={}", c.id),
            "CONTAINER_TAG=mytag"
        ])
        .len(),
        2
    );
    assert_eq!(
        journal_entries(&[&format!("CONTAINER_ID_FULL={}", c.id), "A_B=unused"]).len(),
        0
    );
}

#[test]
fn syslog_identifier_falls_back_to_name() {
    if !need_journald("syslog_identifier_falls_back_to_name") {
        return;
    }
    let mut c = Container::new("jd-ident-name", &["sh", "-c", "echo x"]);
    c.log_specs = vec!["journald:".into()];
    let entries = run_and_collect(&mut c, b"0", |e| !e.is_empty());
    assert_eq!(entries.len(), 1);
    assert_eq!(
        field(&entries[0], "SYSLOG_IDENTIFIER").as_deref(),
        Some("jd-ident-name")
    );
    assert_eq!(
        field(&entries[0], "CONTAINER_NAME").as_deref(),
        Some("jd-ident-name")
    );
    assert_eq!(field(&entries[0], "CONTAINER_TAG"), None);
}

#[test]
fn syslog_identifier_falls_back_to_short_id() {
    if !need_journald("syslog_identifier_falls_back_to_short_id") {
        return;
    }
    let mut c = Container::new("jd-ident-id", &["sh", "-c", "echo y"]);
    c.log_specs = vec!["journald:".into()];
    let args = args_without_option(&c.conmon_args(), "-n");
    let l = c.launch_with_args(args);
    l.expect_pid("data");
    c.start();
    assert_eq!(c.wait_exit_file(T), b"0");
    c.wait_conmon_exit(T);
    let m = format!("CONTAINER_ID_FULL={}", c.id);
    let entries = wait_journal(&[&m], JT, |e| !e.is_empty());
    assert_eq!(entries.len(), 1);
    assert_eq!(field(&entries[0], "MESSAGE").as_deref(), Some("y\n"));
    assert_eq!(
        field(&entries[0], "SYSLOG_IDENTIFIER").as_deref(),
        Some(&c.id[..12])
    );
    assert_eq!(field(&entries[0], "CONTAINER_NAME"), None);
}

fn partial_case(name: &str, extra: &[&str], expect_partial_field: bool, check_piece_size: bool) {
    let mut c = Container::new(
        name,
        &["sh", "-c", "head -c 65535 /dev/zero | tr '\\000' '#'"],
    );
    c.log_specs = vec!["journald:".into()];
    c.extra_args = extra.iter().map(|x| x.to_string()).collect();
    let total = |e: &[JournalEntry]| {
        e.iter()
            .map(|x| x.get("MESSAGE").map_or(0, |m| m.len()))
            .sum::<usize>()
    };
    let entries = run_and_collect(&mut c, b"0", |e| total(e) >= 65535);
    assert_eq!(total(&entries), 65535, "all bytes in the journal");
    if check_piece_size {
        let sizes: Vec<usize> = entries.iter().map(|e| e["MESSAGE"].len()).collect();
        assert!(
            entries.len() >= 8,
            "65535 bytes must be split into ≈8 KiB pieces, got sizes {sizes:?}"
        );
        assert!(
            sizes.iter().all(|&n| n <= 8192),
            "pieces larger than 8 KiB: {sizes:?}"
        );
    }
    let mut joined = Vec::new();
    for e in &entries {
        let m = &e["MESSAGE"];
        joined.extend_from_slice(m);
        assert_eq!(field(e, "PRIORITY").as_deref(), Some("6"));
        if expect_partial_field {
            assert_eq!(
                field(e, "CONTAINER_PARTIAL_MESSAGE").as_deref(),
                Some("true")
            );
        } else {
            assert_eq!(field(e, "CONTAINER_PARTIAL_MESSAGE"), None);
        }
    }
    assert!(joined.iter().all(|&b| b == b'#'));
}

#[test]
fn long_output_without_newline_gives_partial_entries() {
    if !need_journald("long_output_without_newline_gives_partial_entries") {
        return;
    }
    partial_case("jd-partial", &[], true, false);
}

#[test]
fn long_output_is_split_into_8k_pieces() {
    if !need_journald("long_output_is_split_into_8k_pieces") {
        return;
    }
    partial_case("jd-partial-8k", &[], true, true);
}

#[test]
fn no_container_partial_message_drops_the_field() {
    if !need_journald("no_container_partial_message_drops_the_field") {
        return;
    }
    partial_case(
        "jd-nopartial",
        &["--no-container-partial-message"],
        false,
        false,
    );
}

#[test]
fn short_line_split_across_reads_is_one_entry() {
    if !need_journald("short_line_split_across_reads_is_one_entry") {
        return;
    }
    let mut c = Container::new("jd-join", &["sh", "-c", "printf abc; sleep 0.3; echo def"]);
    c.log_specs = vec!["journald:".into()];
    run_and_collect(&mut c, b"0", |e| !e.is_empty());
    // Nothing else may follow.
    std::thread::sleep(Duration::from_millis(500));
    let entries = journal_entries(&[&format!("CONTAINER_ID_FULL={}", c.id)]);
    assert_eq!(
        messages(&entries),
        vec![("abcdef\n".to_string(), "6".to_string())]
    );
    assert_eq!(field(&entries[0], "CONTAINER_PARTIAL_MESSAGE"), None);
}

#[test]
fn priority_prefixes() {
    if !need_journald("priority_prefixes") {
        return;
    }
    let script = "printf '<3>prio three\\n<8>eight\\n<a>letter\\n<0>\\n'; \
                  printf 'abc'; sleep 0.3; printf '<2>def\\n'; \
                  printf '<5>warn\\n' >&2; echo plain >&2";
    let mut c = Container::new("jd-prio", &["sh", "-c", script]);
    c.log_specs = vec!["journald:".into()];
    let entries = run_and_collect(&mut c, b"0", |e| e.len() >= 7);
    let p = |m: &str, pr: &str| (m.to_string(), pr.to_string());
    assert_eq!(messages(&entries), {
        let mut v = vec![
            p("prio three\n", "3"),
            p("<8>eight\n", "6"),
            p("<a>letter\n", "6"),
            p("\n", "0"),
            p("abc<2>def\n", "6"),
            p("warn\n", "5"),
            p("plain\n", "3"),
        ];
        v.sort();
        v
    });
}

#[test]
fn journald_and_k8s_file_together() {
    if !need_journald("journald_and_k8s_file_together") {
        return;
    }
    let mut c = Container::new("jd-both", &["sh", "-c", "echo both-drivers; echo e >&2"]);
    c.log_specs.push("journald:".into());
    let entries = run_and_collect(&mut c, b"0", |e| e.len() >= 2);
    assert_eq!(
        messages(&entries),
        vec![
            ("both-drivers\n".to_string(), "6".to_string()),
            ("e\n".to_string(), "3".to_string())
        ]
    );
    let mut t = triples(&parse_k8s_log(&c.read_log()));
    t.sort();
    assert_eq!(
        t,
        vec![
            ("stderr".to_string(), 'F', "e".to_string()),
            ("stdout".to_string(), 'F', "both-drivers".to_string())
        ]
    );
}

// --- validation (no container needed) ------------------------------------------------

fn journald_args(cid: &str, extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = [
        "--cid",
        cid,
        "--cuuid",
        cid,
        "--runtime",
        "/tmp",
        "-l",
        "journald:",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

fn fails_with(args: &[String], expected: &str) {
    let dir = tempdir("jd-cli");
    let a: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    let out = run_conmon(&a, dir.path());
    assert_eq!(
        out.stderr_str(),
        format!("[conmon:e]: {expected}\n"),
        "stderr of conmon {args:?}"
    );
    assert_eq!(out.code(), Some(1), "exit status of conmon {args:?}");
}

#[test]
fn cid_must_be_longer_than_12_characters() {
    fails_with(
        &journald_args("abcdefghijkl", &[]),
        "Container ID must be longer than 12 characters",
    );
}

#[test]
fn label_without_equals() {
    fails_with(
        &journald_args("jd-label-check-0001", &["--log-label", "CONMON_TEST_LABEL1"]),
        "Container labels must be in format LABEL=VALUE (none or more than one '=' present in 'CONMON_TEST_LABEL1')",
    );
}

#[test]
fn label_with_two_equals() {
    fails_with(
        &journald_args("jd-label-check-0002", &["--log-label", "A=B=C"]),
        "Container labels must be in format LABEL=VALUE (none or more than one '=' present in 'A=B=C')",
    );
}

#[test]
fn label_without_name() {
    fails_with(
        &journald_args("jd-label-check-0003", &["--log-label", "=value"]),
        "Container labels must be in format LABEL=VALUE (no LABEL present in '=value')",
    );
}

#[test]
fn label_name_characters() {
    fails_with(
        &journald_args("jd-label-check-0004", &["--log-label", "MY%LABEL=x"]),
        "Container label names must contain only uppercase letters, numbers and underscore (in 'MY%LABEL=x')",
    );
    fails_with(
        &journald_args("jd-label-check-0005", &["--log-label", "OK=1", "--log-label", "lower=x"]),
        "Container label names must contain only uppercase letters, numbers and underscore (in 'lower=x')",
    );
}
