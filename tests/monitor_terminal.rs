//! Terminal mode (`-t`) with the real runtime (conmon-interface §4.1-4.2,
//! §5.3-5.5, contract §10): console socket in `$TMPDIR/conmon-term.XXXXXX/`,
//! pty master received from runc, ONLCR, output as stream 2, input through
//! the attach socket, a fresh pty reports `0 0`, half-close does not end
//! the pty's input side for the container.

mod common;

use common::*;
use std::fs;
use std::time::Duration;

const T: Duration = Duration::from_secs(60);

fn s(x: &str) -> String {
    x.to_string()
}

/// A `-t` container (`process.terminal: true`) with its own TMPDIR.
fn tty_container(name: &str, args: &[&str]) -> Container {
    let mut c = Container::new(name, args);
    c.edit_config(|v| v["process"]["terminal"] = serde_json::Value::Bool(true));
    let tmp = c.root().join("tmp");
    fs::create_dir(&tmp).unwrap();
    c.env.push(("TMPDIR".into(), tmp.display().to_string()));
    c.extra_args.push("-t".into());
    c
}

fn tmpdir_entries(c: &Container) -> Vec<String> {
    fs::read_dir(c.root().join("tmp"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn onlcr_output_to_log_and_clients_as_stdout() {
    if skip_without_runtime("onlcr_output_to_log_and_clients_as_stdout") {
        return;
    }
    let mut c = tty_container("tty-onlcr", &["sh", "-c", "echo hi; echo err >&2"]);
    let l = c.launch();
    l.expect_pid("data");
    // The console socket (and its directory) are gone once the pid is reported.
    assert_eq!(
        tmpdir_entries(&c),
        Vec::<String>::new(),
        "console socket left in TMPDIR"
    );
    let client = AttachClient::connect_or_panic(&c.attach_path());
    c.start();
    let out = client.read_to_eof(T);
    // Everything from the tty is stream 2, with \r\n.
    assert_eq!(show(&out.stdout), show(b"hi\r\nerr\r\n"));
    assert_eq!(show(&out.stderr), show(b""));
    c.expect_exit_and_log(
        b"0",
        &[("stdout", 'F', "hi\r"), ("stdout", 'F', "err\r")],
        T,
    );
}

#[test]
fn stdio_is_the_pty() {
    if skip_without_runtime("stdio_is_the_pty") {
        return;
    }
    let mut c = tty_container(
        "tty-isatty",
        &[
            "sh",
            "-c",
            "tty; [ -t 0 ] && [ -t 1 ] && [ -t 2 ] && echo all-tty",
        ],
    );
    let (_pid, code) = c.run_to_exit(T);
    assert_eq!(code, b"0");
    c.wait_conmon_exit(T);
    let recs = parse_k8s_log(&c.read_log());
    let t = triples(&recs);
    assert_eq!(t.len(), 2, "{t:?}");
    assert!(
        regex::Regex::new(r"^/dev/pts/\d+\r$")
            .unwrap()
            .is_match(&t[0].2),
        "tty output {:?}",
        t[0].2
    );
    assert_eq!(t[1], (s("stdout"), 'F', s("all-tty\r")));
}

#[test]
fn fresh_pty_reports_size_0_0() {
    if skip_without_runtime("fresh_pty_reports_size_0_0") {
        return;
    }
    // conmon never sets an initial size (§4.2). busybox `stty size` fails
    // on 0x0, so the size is read from the host through the container's fd 0.
    let mut c = tty_container("tty-size", &["sleep", "1000"]);
    let l = c.launch();
    let pid = l.expect_pid("data");
    c.start();
    assert_eq!(pty_size_of(pid), (0, 0));
    c.runtime_kill("KILL");
    assert_eq!(c.wait_exit_file(T), b"137");
    c.wait_conmon_exit(T);
}

#[test]
fn input_from_attach_client_reaches_the_pty() {
    if skip_without_runtime("input_from_attach_client_reaches_the_pty") {
        return;
    }
    let mut c = tty_container("tty-input", &["sh", "-c", "read x; echo \"got:$x\""]);
    let l = c.launch();
    l.expect_pid("data");
    let client = AttachClient::connect_or_panic(&c.attach_path());
    c.start();
    client.send(b"hello\n");
    let out = client.read_to_eof(T);
    // The pty echoes the input (with ONLCR) before the program's answer.
    assert_eq!(show(&out.stdout), show(b"hello\r\ngot:hello\r\n"));
    assert_eq!(c.wait_exit_file(T), b"0");
    c.wait_conmon_exit(T);
    let recs = parse_k8s_log(&c.read_log());
    assert_eq!(reconstruct(&recs, "stdout"), b"hello\r\ngot:hello\r\n");
}

#[test]
fn input_sent_before_start_is_delivered() {
    if skip_without_runtime("input_sent_before_start_is_delivered") {
        return;
    }
    let mut c = tty_container("tty-early-input", &["sh", "-c", "read x; echo \"got:$x\""]);
    let l = c.launch();
    l.expect_pid("data");
    let client = AttachClient::connect_or_panic(&c.attach_path());
    client.send(b"early\n");
    std::thread::sleep(Duration::from_millis(200));
    c.start();
    let out = client.read_to_eof(T);
    assert!(
        out.stdout.ends_with(b"got:early\r\n"),
        "stdout {}",
        show(&out.stdout)
    );
    assert_eq!(c.wait_exit_file(T), b"0");
}

#[test]
fn half_close_with_stdin_does_not_give_the_container_eof() {
    if skip_without_runtime("half_close_with_stdin_does_not_give_the_container_eof") {
        return;
    }
    // §5.5: with -t only the master fd used for input is closed; the
    // container sees no EOF (cat keeps running) and output still flows.
    let mut c = tty_container("tty-halfclose", &["sh", "-c", "cat; echo cat-ended"]);
    c.extra_args.push("--stdin".into());
    let l = c.launch();
    let pid = l.expect_pid("data");
    let client = AttachClient::connect_or_panic(&c.attach_path());
    c.start();
    client.send(b"line1\n");
    let mut out = AttachOutput::default();
    assert!(
        client.read_until(&mut out, T, |o| o.stdout == b"line1\r\nline1\r\n"),
        "echo + cat output: {}",
        show(&out.stdout)
    );
    client.shutdown_write();
    std::thread::sleep(Duration::from_millis(700));
    assert!(
        pid_alive(pid),
        "container must not see EOF in terminal mode"
    );
    assert!(!String::from_utf8_lossy(&c.read_log()).contains("cat-ended"));
    c.runtime_kill("KILL");
    let rest = client.read_to_eof(T);
    assert_eq!(
        show(&rest.stdout),
        show(b""),
        "no output after the half-close"
    );
    assert_eq!(c.wait_exit_file(T), b"137");
    c.wait_conmon_exit(T);
}
