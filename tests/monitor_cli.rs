//! conmon command line: --version, --help, GOption parse errors, validation
//! order and messages (spec conmon-interface.md §1), log driver parsing and
//! log file creation (§7.1, §7.2). No runtime needed.

mod common;

use common::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

fn run(args: &[&str]) -> Output {
    let dir = tempdir("cli");
    run_conmon(args, dir.path())
}

/// Assert exit 1 and stderr exactly `expected` (stdout empty).
fn assert_fails_with(args: &[&str], expected: &str) {
    let out = run(args);
    assert_eq!(
        out.stderr_str(),
        expected,
        "stderr of conmon {args:?} (stdout was {:?}, status {})",
        out.stdout_str(),
        describe_status(&out.status)
    );
    assert_eq!(out.code(), Some(1), "exit status of conmon {args:?}");
    assert_eq!(out.stdout_str(), "", "stdout of conmon {args:?}");
}

fn parse_error(args: &[&str], glib_message: &str) {
    assert_fails_with(
        args,
        &format!("conmon: option parsing failed: {glib_message}\n"),
    );
}

/// Minimal valid prefix up to (but excluding) the log path.
const CID: [&str; 6] = [
    "--cid",
    "ctr-cli-test-0001",
    "--cuuid",
    "ctr-cli-test-0001",
    "--runtime",
    "/tmp",
];

fn with_cid(extra: &[&str]) -> Vec<String> {
    CID.iter()
        .chain(extra.iter())
        .map(|s| s.to_string())
        .collect()
}

fn run_in(dir: &Path, args: &[String]) -> Output {
    let a: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    run_conmon(&a, dir)
}

/// Run a "should pass" invocation (`--runtime /tmp`, launcher exits 0) in a
/// fresh directory with a conmon pidfile, and wait for the daemon (which
/// fails on its own because /tmp cannot be executed) to go away.
fn run_passing(extra: &[&str]) -> (tempfile::TempDir, Output) {
    let dir = tempdir("cli-pass");
    let pidfile = dir.path().join("conmon.pid");
    let mut args = with_cid(&["--conmon-pidfile", pidfile.to_str().unwrap()]);
    args.extend(extra.iter().map(|s| s.to_string()));
    let out = run_in(dir.path(), &args);
    assert_eq!(
        out.code(),
        Some(0),
        "conmon {args:?} should pass; stderr {:?} stdout {:?}",
        out.stderr_str(),
        out.stdout_str()
    );
    if let Ok(s) = fs::read_to_string(&pidfile) {
        if let Ok(pid) = s.parse::<i32>() {
            wait_for(Duration::from_secs(10), || !pid_alive(pid));
        }
    }
    (dir, out)
}

// --- --version / --help ----------------------------------------------------

#[test]
fn version_first_line_and_commit_line() {
    let out = run(&["--version"]);
    assert_eq!(out.code(), Some(0), "stderr: {}", out.stderr_str());
    let text = out.stdout_str();
    let mut lines = text.split_inclusive('\n');
    assert_eq!(
        lines.next(),
        Some("conmon version 2.2.1\n"),
        "stdout: {text:?}"
    );
    let commit = lines.next().unwrap_or("");
    assert!(
        commit.starts_with("commit: ") && commit.ends_with('\n'),
        "second line must be `commit: …\\n`: {text:?}"
    );
    assert_eq!(lines.next(), None, "only two lines expected: {text:?}");
    assert_eq!(
        out.stderr_str(),
        "",
        "nothing on stderr (CRI-O reads combined output)"
    );
}

#[test]
fn version_wins_over_missing_options() {
    // §1.4 step 2: --version exits 0 even if other required options are missing.
    let out = run(&["--log-level", "debug", "--version"]);
    assert_eq!(out.code(), Some(0), "stderr: {}", out.stderr_str());
    assert!(out.stdout_str().starts_with("conmon version 2.2.1\n"));
}

#[test]
fn help_lists_options_consumers_grep_for() {
    let out = run(&["--help"]);
    assert_eq!(out.code(), Some(0), "stderr: {}", out.stderr_str());
    let text = out.stdout_str();
    for needle in [
        "--exec",
        "journald",
        "--log-global-size-max",
        "--api-version",
        "--log-rotate",
    ] {
        assert!(text.contains(needle), "--help lacks {needle:?}:\n{text}");
    }
    // Hidden options are not listed.
    for hidden in ["  --pidfile ", "--restore-arg"] {
        assert!(
            !text.contains(hidden),
            "--help must not list hidden {hidden:?}"
        );
    }
}

#[test]
fn help_output_is_conmon_2_2_1_then_vigil_extensions() {
    // Byte-identical to conmon 2.2.1's help, then a separate section for the
    // options only vigil has (log rate limit, syslog driver).
    let expected = include_str!("data/conmon-2.2.1-help.txt");
    for flag in ["--help", "-h", "-?"] {
        let out = run(&[flag]);
        assert_eq!(out.code(), Some(0), "{flag}: stderr {}", out.stderr_str());
        let text = out.stdout_str();
        assert!(
            text.starts_with(expected),
            "output of conmon {flag} must start with conmon 2.2.1's help:\n{text}"
        );
        let ext = &text[expected.len()..];
        assert!(
            ext.starts_with("vigil extensions"),
            "extension section: {ext:?}"
        );
        assert!(
            ext.contains("--log-rate-limit")
                && ext.contains("syslog:")
                && ext.contains("--health-cmd")
                && ext.contains("--health-on-failure"),
            "extension section: {ext:?}"
        );
    }
}

// --- GOption parse errors (§1.1) ---------------------------------------------

#[test]
fn unknown_long_option() {
    parse_error(&["--bogus"], "Unknown option --bogus");
}

#[test]
fn short_option_with_glued_value_is_unknown() {
    // GLib parses "-cfoo" as a group of short options: -c then f, o, o.
    parse_error(&["-cfoo", "x"], "Unknown option -cfoo");
    // ... and when it is the last argument, -c lacks its value first.
    parse_error(&["-cfoo"], "Missing argument for -c");
}

#[test]
fn grouped_short_flags_take_value_from_next_element() {
    // "-tc x": -t is a flag, -c takes "x".
    assert_fails_with(
        &["-tc", "x"],
        "[conmon:e]: Container UUID not provided. Use --cuuid\n",
    );
}

#[test]
fn missing_argument() {
    parse_error(&["--cid"], "Missing argument for --cid");
    parse_error(&["-c"], "Missing argument for -c");
}

#[test]
fn integer_not_parsable() {
    parse_error(
        &["--log-max-files", "abc"],
        "Cannot parse integer value \u{201c}abc\u{201d} for --log-max-files",
    );
    parse_error(
        &["--timeout", "abc"],
        "Cannot parse integer value \u{201c}abc\u{201d} for --timeout",
    );
    parse_error(
        &["--log-size-max", "12k"],
        "Cannot parse integer value \u{201c}12k\u{201d} for --log-size-max",
    );
}

#[test]
fn integer_message_in_c_locale_uses_question_marks() {
    let dir = tempdir("cli");
    let mut cmd = std::process::Command::new(conmon_binary());
    cmd.args(["--exit-delay", "abc"])
        .current_dir(dir.path())
        .env("LC_ALL", "C");
    let out = run_with_timeout(&mut cmd, Duration::from_secs(10));
    assert_eq!(
        out.stderr_str(),
        "conmon: option parsing failed: Cannot parse integer value ?abc? for --exit-delay\n"
    );
    assert_eq!(out.code(), Some(1));
}

#[test]
fn integer_out_of_range() {
    parse_error(
        &["--log-max-files", "2147483648"],
        "Integer value \u{201c}2147483648\u{201d} for --log-max-files out of range",
    );
    parse_error(
        &["--exit-delay", "2147483648"],
        "Integer value \u{201c}2147483648\u{201d} for --exit-delay out of range",
    );
}

#[test]
fn log_max_files_negative_is_rejected_before_cid_check() {
    // -1 parses as a number (value may start with '-'), then §1.4 step 3.
    assert_fails_with(
        &["--log-max-files", "-1"],
        "conmon: log-max-files must be non-negative, got -1\n",
    );
}

#[test]
fn log_rotate_needs_at_least_one_file() {
    assert_fails_with(
        &["--log-rotate", "--log-max-files", "0"],
        "conmon: log-max-files must be at least 1 when log-rotate is enabled, got 0\n",
    );
}

#[test]
fn integer_base_prefixes_are_accepted() {
    // strtol base 0: 0x10 and 010 parse; the next failure is the missing cid.
    for v in ["0x10", "010", "16"] {
        assert_fails_with(
            &["--log-max-files", v],
            "conmon: Container ID not provided. Use --cid\n",
        );
    }
    assert_fails_with(
        &[
            "--log-size-max",
            "0x400",
            "--log-global-size-max",
            "-1",
            "--timeout",
            "-1",
        ],
        "conmon: Container ID not provided. Use --cid\n",
    );
}

// --- validation order (§1.4) ---------------------------------------------------

#[test]
fn no_arguments() {
    assert_fails_with(&[], "conmon: Container ID not provided. Use --cid\n");
}

#[test]
fn cid_without_cuuid() {
    assert_fails_with(
        &["--cid", "x"],
        "[conmon:e]: Container UUID not provided. Use --cuuid\n",
    );
}

#[test]
fn cuuid_without_runtime() {
    assert_fails_with(
        &["--cid", "x", "--cuuid", "x"],
        "[conmon:e]: Runtime path not provided. Use --runtime\n",
    );
}

#[test]
fn runtime_path_not_valid() {
    assert_fails_with(
        &["--cid", "x", "--cuuid", "x", "--runtime", "/not/a/path"],
        "[conmon:e]: Runtime path /not/a/path is not valid No such file or directory\n",
    );
}

#[test]
fn log_level_is_checked_before_cuuid() {
    assert_fails_with(
        &["--cid", "x", "--log-level", "bogus"],
        "[conmon:e]: No such log level bogus\n",
    );
}

#[test]
fn exec_and_restore_conflict() {
    assert_fails_with(
        &["--cid", "x", "--exec", "--restore", "/x"],
        "[conmon:e]: Cannot use 'exec' and 'restore' at the same time\n",
    );
}

#[test]
fn exec_attach_requires_exec() {
    assert_fails_with(
        &["--cid", "x", "--exec-attach"],
        "[conmon:e]: Attach can only be specified with exec\n",
    );
}

#[test]
fn exec_attach_requires_api_version() {
    assert_fails_with(
        &["--cid", "x", "--exec", "--exec-attach"],
        "[conmon:e]: Attach can only be specified for a non-legacy exec session\n",
    );
}

#[test]
fn exec_without_process_spec() {
    assert_fails_with(
        &["--cid", "x", "--cuuid", "x", "--runtime", "/tmp", "--exec"],
        "[conmon:e]: Exec process spec path not provided. Use --exec-process-spec\n",
    );
}

#[test]
fn legacy_exec_does_not_need_cuuid() {
    // exec without --api-version: no cuuid needed; next check is the runtime.
    assert_fails_with(
        &["--cid", "x", "--exec"],
        "[conmon:e]: Runtime path not provided. Use --runtime\n",
    );
}

#[test]
fn negative_exit_delay() {
    assert_fails_with(
        &[
            "--cid",
            "x",
            "--cuuid",
            "x",
            "--runtime",
            "/tmp",
            "--exit-delay",
            "-1",
        ],
        "[conmon:e]: Delay before invoking exit command must be greater than or equal to 0\n",
    );
}

#[test]
fn log_driver_not_provided() {
    assert_fails_with(
        &["--cid", "x", "--cuuid", "x", "--runtime", "/tmp"],
        "[conmon:e]: Log driver not provided. Use --log-path\n",
    );
}

// --- log driver syntax (§7.1) ----------------------------------------------------

fn log_path_error(spec: &str, expected: &str) {
    let args = with_cid(&["-l", spec]);
    let a: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    assert_fails_with(&a, &format!("[conmon:e]: {expected}\n"));
}

#[test]
fn log_path_empty() {
    log_path_error("", "log-path must not be empty");
    log_path_error(":", "log-path must not be empty");
    log_path_error("::", "log-path must not be empty");
}

#[test]
fn log_path_k8s_file_needs_filename() {
    log_path_error("k8s-file", "k8s-file requires a filename");
    log_path_error("k8s-file:", "k8s-file requires a filename");
}

#[test]
fn log_path_unknown_driver() {
    log_path_error("invalid:x", "No such log driver invalid");
    log_path_error("invalid:", "No such log driver invalid");
}

#[test]
fn log_path_unknown_driver_after_valid_one() {
    let dir = tempdir("cli");
    let log = dir.path().join("ctr.log");
    let args = with_cid(&[
        "-l",
        &format!("k8s-file:{}", log.display()),
        "-l",
        "invalid:/x",
    ]);
    let out = run_in(dir.path(), &args);
    assert_eq!(out.stderr_str(), "[conmon:e]: No such log driver invalid\n");
    assert_eq!(out.code(), Some(1));
}

#[test]
fn log_file_cannot_be_opened() {
    log_path_error(
        "k8s-file:/not/a/path",
        "Failed to open log file No such file or directory",
    );
}

#[test]
fn k8s_file_rejects_log_tag() {
    let dir = tempdir("cli");
    let log = dir.path().join("ctr.log");
    let args = with_cid(&[
        "-l",
        &format!("k8s-file:{}", log.display()),
        "--log-tag",
        "t",
    ]);
    let out = run_in(dir.path(), &args);
    assert_eq!(
        out.stderr_str(),
        "[conmon:e]: k8s-file doesn't support --log-tag\n"
    );
    assert_eq!(out.code(), Some(1));
}

fn assert_log_file_created(path: &Path) {
    let md = fs::metadata(path)
        .unwrap_or_else(|e| panic!("log file {} not created: {e}", path.display()));
    assert!(md.is_file());
    assert_eq!(
        md.permissions().mode() & 0o7777,
        0o640,
        "log file {} mode",
        path.display()
    );
}

#[test]
fn plain_path_creates_log_file_0640() {
    let dir = tempdir("cli");
    let log = dir.path().join("plain.log");
    let (_d, _out) = run_passing(&["-l", log.to_str().unwrap()]);
    assert_log_file_created(&log);
}

#[test]
fn k8s_file_path_creates_log_file_0640() {
    let dir = tempdir("cli");
    let log = dir.path().join("k8s.log");
    let (_d, _out) = run_passing(&["-l", &format!("k8s-file:{}", log.display())]);
    assert_log_file_created(&log);
}

#[test]
fn colon_path_creates_log_file_0640() {
    let dir = tempdir("cli");
    let log = dir.path().join("colon.log");
    let (_d, _out) = run_passing(&["-l", &format!(":{}", log.display())]);
    assert_log_file_created(&log);
}

#[test]
fn relative_colon_name_is_a_file_in_cwd() {
    // ":none" is a k8s file named "none" (relative to cwd), not the none driver.
    let (d, _out) = run_passing(&["-l", ":none"]);
    assert_log_file_created(&d.path().join("none"));
}

#[test]
fn path_is_truncated_at_second_colon() {
    let dir = tempdir("cli");
    let log = dir.path().join("a");
    let (_d, _out) = run_passing(&["-l", &format!("k8s-file:{}:b", log.display())]);
    assert_log_file_created(&log);
    assert!(
        !dir.path().join("a:b").exists(),
        "path must be truncated at the second ':'"
    );
}

#[test]
fn none_off_null_create_nothing() {
    for spec in ["none:", "off:", "null:", "none", "off", "null"] {
        let (d, _out) = run_passing(&["-l", spec]);
        let name = spec.trim_end_matches(':');
        assert!(
            !d.path().join(name).exists(),
            "-l {spec} must not create a file named {name}"
        );
    }
}

#[test]
fn existing_log_file_is_appended_not_truncated() {
    let dir = tempdir("cli");
    let log = dir.path().join("keep.log");
    fs::write(&log, b"old content\n").unwrap();
    let (_d, _out) = run_passing(&["-l", &format!("k8s-file:{}", log.display())]);
    assert_eq!(fs::read(&log).unwrap(), b"old content\n");
}

// --- parser quirks (§1.1) ----------------------------------------------------------

#[test]
fn api_version_stray_positional_is_ignored() {
    // Podman passes `--api-version 1`: the `1` is an ignored positional.
    assert_fails_with(
        &["--api-version", "1"],
        "conmon: Container ID not provided. Use --cid\n",
    );
    let dir = tempdir("cli");
    let log = dir.path().join("ctr.log");
    let (_d, _out) = run_passing(&["--api-version", "1", "-l", log.to_str().unwrap()]);
    assert_log_file_created(&log);
}

#[test]
fn positional_arguments_anywhere_are_ignored() {
    assert_fails_with(
        &["foo", "--cid", "x", "bar", "--cuuid", "x", "baz"],
        "[conmon:e]: Runtime path not provided. Use --runtime\n",
    );
}

#[test]
fn equals_form_of_long_options() {
    assert_fails_with(
        &["--cid=x"],
        "[conmon:e]: Container UUID not provided. Use --cuuid\n",
    );
    assert_fails_with(
        &["--cid=x", "--cuuid=y", "--runtime=/not/a/path"],
        "[conmon:e]: Runtime path /not/a/path is not valid No such file or directory\n",
    );
    // flags accept --flag=anything
    assert_fails_with(
        &["--api-version=1"],
        "conmon: Container ID not provided. Use --cid\n",
    );
}

#[test]
fn value_may_start_with_dash() {
    // --cid consumes "--cuuid" as its value, so the cuuid is still missing.
    assert_fails_with(
        &["--cid", "--cuuid", "x"],
        "[conmon:e]: Container UUID not provided. Use --cuuid\n",
    );
}

#[test]
fn short_options_take_next_element() {
    assert_fails_with(
        &["-c", "x", "-u", "x", "-r", "/not/a/path"],
        "[conmon:e]: Runtime path /not/a/path is not valid No such file or directory\n",
    );
}

#[test]
fn last_scalar_value_wins() {
    assert_fails_with(
        &[
            "--cid",
            "x",
            "--cuuid",
            "x",
            "--runtime",
            "/tmp",
            "--runtime",
            "/not/a/path",
        ],
        "[conmon:e]: Runtime path /not/a/path is not valid No such file or directory\n",
    );
}

#[test]
fn double_dash_terminates_options() {
    // After `--`, "--cid" is a positional, so no cid was given.
    assert_fails_with(
        &["--", "--cid", "x"],
        "conmon: Container ID not provided. Use --cid\n",
    );
}

#[test]
fn conmon_pidfile_written_by_launcher() {
    // §2.2: the forking parent writes the daemon's pid, bare digits.
    let dir = tempdir("cli");
    let log = dir.path().join("ctr.log");
    let (d, _out) = run_passing(&["-l", log.to_str().unwrap()]);
    let content = fs::read_to_string(d.path().join("conmon.pid")).expect("conmon pidfile");
    assert!(
        !content.is_empty() && content.bytes().all(|b| b.is_ascii_digit()),
        "conmon pidfile must be bare digits, got {content:?}"
    );
}
