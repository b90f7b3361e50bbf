//! vigil's own diagnostics (issue #17): one `log::Log` shows warnings,
//! errors and debug lines in Podman's text form (`WARN[0000] ...`),
//! filtered by `--log-level`, and with `--syslog` also sends them to the
//! local syslog.
//!
//! The syslog test binds its own datagram socket and runs vigil in a private
//! mount namespace (`unshare --mount`) whose `/dev` is a directory holding
//! that socket as `log` and the real `/dev/null`, so the host's `/dev/log`
//! is never touched.
//!
//! Skipped with a message when not root (the e2e support's rule).

mod e2e_support;

use std::fs;
use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::time::{Duration, Instant};

use e2e_support::{run_bounded, text, vigil_or_skip, which};

/// A containers.conf with a key vigil does not know: a warning at start-up.
fn conf_with_unknown_key(dir: &std::path::Path) -> std::path::PathBuf {
    let conf = dir.join("containers.conf");
    fs::write(&conf, "[engine]\nno_such_key_for_vigil = 1\n").unwrap();
    conf
}

fn warn_lines(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.contains("no_such_key_for_vigil"))
        .collect()
}

#[test]
fn warnings_are_logrus_lines_filtered_by_log_level() {
    let Some(v) = vigil_or_skip("warnings_are_logrus_lines_filtered_by_log_level") else {
        return;
    };
    let conf = conf_with_unknown_key(v.dir.path());
    let shown = run_bounded(
        v.command(&["images"]).env("CONTAINERS_CONF", &conf),
        b"",
        Duration::from_secs(60),
    );
    assert_eq!(shown.status.code(), Some(0), "{}", text(&shown.stderr));
    let stderr = text(&shown.stderr);
    let lines = warn_lines(&stderr);
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].starts_with("WARN[0000] "), "{stderr}");

    for level in ["error", "fatal"] {
        let quiet = run_bounded(
            v.command(&["--log-level", level, "images"])
                .env("CONTAINERS_CONF", &conf),
            b"",
            Duration::from_secs(60),
        );
        assert_eq!(quiet.status.code(), Some(0), "{}", text(&quiet.stderr));
        assert_eq!(text(&quiet.stderr), "", "--log-level {level}");
    }
}

#[test]
fn debug_level_names_the_command_and_the_runtime_calls() {
    let Some(v) = vigil_or_skip("debug_level_names_the_command_and_the_runtime_calls") else {
        return;
    };
    let out = v.run(&["--log-level", "debug", "images"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    let called = stderr
        .lines()
        .find(|l| l.starts_with("DEBU[") && l.contains("] Called "))
        .unwrap_or_else(|| panic!("no Called line: {stderr}"));
    assert!(called.ends_with("] Called vigil images"), "{called}");
    // Arguments are not logged (they can hold credentials).
    let out = v.run(&[
        "--log-level",
        "debug",
        "login",
        "--get-login",
        "-p",
        "s3cret",
        "localhost:1",
    ]);
    assert!(
        !text(&out.stderr).contains("s3cret"),
        "{}",
        text(&out.stderr)
    );
    // The default level shows no debug line.
    let out = v.run(&["images"]);
    assert!(
        !text(&out.stderr).contains("DEBU["),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn syslog_gets_what_stderr_shows() {
    let Some(v) = vigil_or_skip("syslog_gets_what_stderr_shows") else {
        return;
    };
    if which("unshare").is_none() {
        return eprintln!("skipping: unshare (util-linux) not found");
    }
    let probe = Command::new("unshare")
        .args(["--mount", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if !probe {
        return eprintln!("skipping: cannot make a mount namespace here (unshare --mount)");
    }
    let dev = v.dir.path().join("dev");
    fs::create_dir(&dev).unwrap();
    fs::write(dev.join("null"), b"").unwrap();
    let sock = UnixDatagram::bind(dev.join("log")).unwrap();
    let conf = conf_with_unknown_key(v.dir.path());

    let inner = v.command(&["--syslog", "--log-level", "debug", "images"]);
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(r#"mount --bind /dev/null "$1/null" && mount --rbind "$1" /dev && shift && exec "$@""#)
        .arg("sh")
        .arg(&dev)
        .arg(inner.get_program())
        .args(inner.get_args())
        .env("CONTAINERS_CONF", &conf);
    let out = run_bounded(&mut cmd, b"", Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    let shown = stderr.lines().count();
    assert!(shown >= 2, "{stderr}");

    // Every line shown on stderr arrived as one record, in order.
    let mut records = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 8192];
    while records.len() < shown {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        sock.set_read_timeout(Some(left)).unwrap();
        match sock.recv(&mut buf) {
            Ok(n) => records.push(String::from_utf8_lossy(&buf[..n]).into_owned()),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                break
            }
            Err(e) => panic!("receiving: {e}"),
        }
    }
    assert_eq!(records.len(), shown, "{records:?}\nstderr:\n{stderr}");
    for (line, record) in stderr.lines().zip(&records) {
        // `WARN[0000] text` on stderr; `<12>Mmm dd hh:mm:ss vigil[PID]: text`.
        let (level, message) = line.split_once("] ").unwrap();
        let priority = match &level[..4] {
            "WARN" => "<12>",
            "DEBU" => "<15>",
            other => panic!("unexpected level {other}: {line}"),
        };
        assert!(record.starts_with(priority), "{record:?} for {line:?}");
        let tag = record
            .find(" vigil[")
            .unwrap_or_else(|| panic!("{record:?}"));
        let (_, rest) = record[tag..].split_once("]: ").unwrap();
        assert_eq!(rest, message, "{record:?}");
    }
    assert!(records.iter().any(|r| r.contains("no_such_key_for_vigil")));
}
