//! The attach socket with the real runtime (conmon-interface §5, contract §9,
//! conmon's 07-attach.bats): location (`--full-attach` and the
//! `<socket-dir>/<cuuid>` symlink with its 107-byte rule), packet framing,
//! stdin forwarding, half-close semantics, `--leave-stdin-open`, many
//! clients, slow clients (vigil: output paused above 1 MiB queued, a client that takes nothing for 5 s is dropped; logging
//! waits at most 5 s for a stuck client), and end of life (EOF before the exit file, socket removed).

mod common;

use common::*;
use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::FileTypeExt;
use std::path::PathBuf;
use std::time::Duration;

const T: Duration = Duration::from_secs(60);

const CAT_SCRIPT: &str = "cat && echo 'Container stopped!'";

/// Launch (pid message checked), connect a client, start the container.
fn launch_attach_start(c: &mut Container) -> (i32, AttachClient) {
    let l = c.launch();
    let pid = l.expect_pid("data");
    let client = AttachClient::connect_or_panic(&c.attach_path());
    c.start();
    (pid, client)
}

#[test]
fn stdin_input_then_half_close_ends_cat_and_client_keeps_receiving() {
    if skip_without_runtime("stdin_input_then_half_close_ends_cat_and_client_keeps_receiving") {
        return;
    }
    let mut c = Container::new("attach-stdin", &["sh", "-c", CAT_SCRIPT]);
    c.extra_args = vec!["--stdin".into()];
    let (_pid, client) = launch_attach_start(&mut c);
    client.send(b"Hello there!\n");
    let mut out = AttachOutput::default();
    assert!(
        client.read_until(&mut out, T, |o| o.stdout.ends_with(b"Hello there!\n")),
        "input must come back through cat: {}",
        show(&out.stdout)
    );
    // Half-close: the container's stdin is closed, `cat` ends, and output
    // produced afterwards still reaches this client.
    client.shutdown_write();
    let rest = client.read_to_eof(T);
    out.stdout.extend_from_slice(&rest.stdout);
    out.stderr.extend_from_slice(&rest.stderr);
    assert_eq!(
        show(&out.stdout),
        show(b"Hello there!\nContainer stopped!\n")
    );
    assert_eq!(show(&out.stderr), show(b""));
    c.expect_exit_and_log(
        b"0",
        &[
            ("stdout", 'F', "Hello there!"),
            ("stdout", 'F', "Container stopped!"),
        ],
        T,
    );
    assert!(
        fs::symlink_metadata(c.attach_path()).is_err(),
        "the attach socket must be removed at exit"
    );
}

#[test]
fn without_stdin_cat_sees_eof_at_once_and_input_is_dropped() {
    if skip_without_runtime("without_stdin_cat_sees_eof_at_once_and_input_is_dropped") {
        return;
    }
    let mut c = Container::new(
        "attach-nostdin",
        &[
            "sh",
            "-c",
            "cat && echo 'Container stopped!'; sleep 0.5; echo end",
        ],
    );
    let (_pid, client) = launch_attach_start(&mut c);
    // Nowhere to write it: never reaches the container.
    client.send(b"dropped input\n");
    let out = client.read_to_eof(T);
    assert_eq!(show(&out.stdout), show(b"Container stopped!\nend\n"));
    c.expect_exit_and_log(
        b"0",
        &[
            ("stdout", 'F', "Container stopped!"),
            ("stdout", 'F', "end"),
        ],
        T,
    );
}

#[test]
fn leave_stdin_open_lets_a_second_client_write() {
    if skip_without_runtime("leave_stdin_open_lets_a_second_client_write") {
        return;
    }
    let mut c = Container::new("attach-leave-open", &["sh", "-c", CAT_SCRIPT]);
    c.extra_args = vec!["--stdin".into(), "--leave-stdin-open".into()];
    let (pid, first) = launch_attach_start(&mut c);
    first.send(b"Hello there!\n");
    first.shutdown_write();
    c.wait_log_contains("Hello there!", T);
    drop(first);
    // The container keeps running and the socket stays.
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        pid_alive(pid),
        "stdin must stay open after the first client left"
    );
    assert!(
        fs::symlink_metadata(c.attach_path())
            .map(|m| m.file_type().is_socket())
            .unwrap_or(false),
        "attach socket must still exist"
    );
    let second = AttachClient::connect_or_panic(&c.attach_path());
    second.send(b"Hello there again!\n");
    let mut out = AttachOutput::default();
    assert!(
        second.read_until(&mut out, T, |o| o.stdout.ends_with(b"Hello there again!\n")),
        "second client's input must reach the container: {}",
        show(&out.stdout)
    );
    second.shutdown_write();
    std::thread::sleep(Duration::from_millis(300));
    assert!(pid_alive(pid), "still running after the second half-close");
    let log = String::from_utf8(c.read_log()).unwrap();
    assert!(
        !log.contains("Container stopped!"),
        "cat must not have ended: {log:?}"
    );
    c.runtime_kill("KILL");
    c.expect_exit_and_log(
        b"137",
        &[
            ("stdout", 'F', "Hello there!"),
            ("stdout", 'F', "Hello there again!"),
        ],
        T,
    );
}

#[test]
fn output_framing_stream_ids_and_payload_limit() {
    if skip_without_runtime("output_framing_stream_ids_and_payload_limit") {
        return;
    }
    // 100 000 bytes on stdout in one go (split into ≤ 8192-byte packets),
    // then stderr.
    let mut c = Container::new(
        "attach-framing",
        &[
            "sh",
            "-c",
            "echo out; head -c 100000 /dev/zero | tr '\\000' x; echo; echo err >&2; sleep 1",
        ],
    );
    let (_pid, client) = launch_attach_start(&mut c);
    let out = client.read_to_eof(T);
    let expected = format!("out\n{}\n", "x".repeat(100000));
    assert_eq!(out.stdout.len(), expected.len(), "stdout byte count");
    assert!(out.stdout == expected.as_bytes(), "stdout content differs");
    assert_eq!(show(&out.stderr), show(b"err\n"));
    assert!(out.max_payload <= 8192);
    assert!(
        out.packets >= 1 + 100001 / 8192 + 1,
        "too few packets: {}",
        out.packets
    );
    assert_eq!(c.wait_exit_file(T), b"0");
    c.wait_conmon_exit(T);
}

#[test]
fn many_clients_receive_identical_output() {
    if skip_without_runtime("many_clients_receive_identical_output") {
        return;
    }
    // The trailing sleep keeps this about broadcasting: output still queued
    // at shutdown is lost (queued_output_is_flushed_to_a_late_reader_before_close).
    let mut c = Container::new(
        "attach-many",
        &["sh", "-c", "seq 1 20000; echo done >&2; sleep 1"],
    );
    let l = c.launch();
    l.expect_pid("data");
    let clients: Vec<AttachClient> = (0..6)
        .map(|_| AttachClient::connect_or_panic(&c.attach_path()))
        .collect();
    c.start();
    let expected: String = (1..=20000).map(|i| format!("{i}\n")).collect();
    // Read them concurrently so none is a slow client.
    let handles: Vec<_> = clients
        .into_iter()
        .map(|cl| std::thread::spawn(move || cl.read_to_eof(T)))
        .collect();
    for (i, h) in handles.into_iter().enumerate() {
        let out = h.join().unwrap();
        assert!(
            out.stdout == expected.as_bytes(),
            "client {i}: stdout differs ({} bytes)",
            out.stdout.len()
        );
        assert_eq!(show(&out.stderr), show(b"done\n"), "client {i} stderr");
    }
    assert_eq!(c.wait_exit_file(T), b"0");
    c.wait_conmon_exit(T);
    assert_eq!(
        reconstruct(&parse_k8s_log(&c.read_log()), "stdout"),
        expected.as_bytes()
    );
}

#[test]
fn clients_see_eof_before_the_exit_file_is_written() {
    if skip_without_runtime("clients_see_eof_before_the_exit_file_is_written") {
        return;
    }
    let mut c = Container::new("attach-eof-order", &["sh", "-c", "echo bye; exit 5"]);
    let (_pid, client) = launch_attach_start(&mut c);
    // Do not read until the exit file exists: by then conmon must already
    // have closed the connection, so EOF follows the queued data at once.
    let exit = c.exit_file();
    assert!(wait_for(T, || exit.exists()), "no exit file");
    assert_eq!(fs::read(&exit).unwrap(), b"5");
    let mut out = AttachOutput::default();
    client.read_until(&mut out, Duration::from_millis(300), |o| o.eof);
    assert_eq!(show(&out.stdout), show(b"bye\n"));
    assert!(
        out.eof,
        "attach connection still open after the exit file was written"
    );
    c.wait_conmon_exit(T);
}

#[test]
fn no_replay_for_late_clients() {
    if skip_without_runtime("no_replay_for_late_clients") {
        return;
    }
    let trig = Trigger::new();
    let script = format!("echo early; {WAIT_FOR_TRIGGER}; echo late");
    let mut c = Container::with_mounts("attach-late", &["sh", "-c", &script], &trig.mounts());
    let l = c.launch();
    l.expect_pid("data");
    c.start();
    c.wait_log_contains("early", T);
    let client = AttachClient::connect_or_panic(&c.attach_path());
    // Give the monitor a moment to accept the connection before output comes.
    std::thread::sleep(Duration::from_millis(300));
    trig.fire();
    let out = client.read_to_eof(T);
    assert_eq!(
        show(&out.stdout),
        show(b"late\n"),
        "a late client only sees later output"
    );
    assert_eq!(c.wait_exit_file(T), b"0");
}

// --- location without --full-attach (CRI-O) ----------------------------------

/// argv without `--full-attach`, with `--socket-dir-path DIR` and `-u CUUID`.
fn socket_dir_args(c: &Container, dir: &std::path::Path, cuuid: &str) -> Vec<OsString> {
    let mut a = args_without_flag(&c.conmon_args(), "--full-attach");
    a = args_with_option_value(&a, "-u", cuuid);
    a.push("--socket-dir-path".into());
    a.push(dir.into());
    a
}

#[test]
fn socket_dir_symlink_to_bundle_removed_at_exit() {
    if skip_without_runtime("socket_dir_symlink_to_bundle_removed_at_exit") {
        return;
    }
    let sockdir = tempdir("sockdir");
    let sockdir_path = fs::canonicalize(sockdir.path()).unwrap();
    let mut c = Container::new("attach-sockdir", &["sh", "-c", "read x; echo got:$x"]);
    c.extra_args = vec!["--stdin".into()];
    let cuuid = format!("uuid-{}", c.id);
    let args = socket_dir_args(&c, &sockdir_path, &cuuid);
    let l = c.launch_with_args(args);
    l.expect_pid("data");
    let link = sockdir_path.join(&cuuid);
    assert_eq!(
        fs::read_link(&link).expect("<socket-dir>/<cuuid> symlink"),
        c.bundle
    );
    // The socket file itself lives in the bundle.
    assert!(fs::symlink_metadata(c.attach_path())
        .unwrap()
        .file_type()
        .is_socket());
    let client = AttachClient::connect_or_panic(&link.join("attach"));
    c.start();
    client.send(b"via-symlink\n");
    let out = client.read_to_eof(T);
    assert_eq!(show(&out.stdout), show(b"got:via-symlink\n"));
    assert_eq!(c.wait_exit_file(T), b"0");
    c.wait_conmon_exit(T);
    assert!(
        fs::symlink_metadata(&link).is_err(),
        "symlink must be removed at exit"
    );
    assert!(
        fs::symlink_metadata(c.attach_path()).is_err(),
        "socket must be removed at exit"
    );
}

#[test]
fn socket_dir_base_of_107_bytes_drops_last_character() {
    if skip_without_runtime("socket_dir_base_of_107_bytes_drops_last_character") {
        return;
    }
    let sockdir = tempdir("sockdir107");
    let sockdir_path = fs::canonicalize(sockdir.path()).unwrap();
    let mut c = Container::new("attach-107", &["sh", "-c", "echo hello107"]);
    let prefix_len = sockdir_path.as_os_str().len() + 1;
    assert!(
        prefix_len < 90,
        "temp dir path too long for this test: {}",
        sockdir_path.display()
    );
    let cuuid: String = "u".repeat(107 - prefix_len);
    let full: PathBuf = sockdir_path.join(&cuuid);
    assert_eq!(full.as_os_str().len(), 107);
    let truncated: PathBuf = sockdir_path.join(&cuuid[..cuuid.len() - 1]);
    let args = socket_dir_args(&c, &sockdir_path, &cuuid);
    let l = c.launch_with_args(args);
    l.expect_pid("data");
    assert_eq!(
        fs::read_link(&truncated).expect("symlink at the 106-byte name"),
        c.bundle,
        "a 107-byte base loses its last character"
    );
    assert!(
        fs::symlink_metadata(&full).is_err(),
        "no entry at the untruncated name"
    );
    let client = AttachClient::connect_or_panic(&truncated.join("attach"));
    c.start();
    let out = client.read_to_eof(T);
    assert_eq!(show(&out.stdout), show(b"hello107\n"));
    assert_eq!(c.wait_exit_file(T), b"0");
    c.wait_conmon_exit(T);
    // Through the (truncated) symlink the socket in the bundle is removed.
    assert!(
        fs::symlink_metadata(c.attach_path()).is_err(),
        "socket must be removed at exit"
    );
}

// --- slow clients -----------------------------------------------------------------

/// §5.6 / contract §9: output read before the exit may not be lost for a
/// connected client. The client only starts reading after the container
/// exited, so most packets are still queued in the monitor at shutdown.
#[test]
fn queued_output_is_flushed_to_a_late_reader_before_close() {
    if skip_without_runtime("queued_output_is_flushed_to_a_late_reader_before_close") {
        return;
    }
    let mut c = Container::new(
        "attach-flush",
        &["sh", "-c", "head -c 200000 /dev/zero | tr '\\000' y; echo"],
    );
    let (_pid, client) = launch_attach_start(&mut c);
    // The whole stream is in the log (the final newline may be its own record).
    let logged = wait_for(T, || {
        fs::read(&c.log_path)
            .map(|l| reconstruct(&parse_k8s_log(&l), "stdout").len() == 200001)
            .unwrap_or(false)
    });
    assert!(logged, "log never held the whole stream");
    let out = client.read_to_eof(T);
    assert_eq!(out.stdout.len(), 200001, "bytes received by the client");
    assert!(out.stdout[..200000].iter().all(|&b| b == b'y'));
    assert_eq!(c.wait_exit_file(T), b"0");
    c.wait_conmon_exit(T);
}

#[test]
fn slow_client_is_dropped_and_never_blocks_logging() {
    if skip_without_runtime("slow_client_is_dropped_and_never_blocks_logging") {
        return;
    }
    const TOTAL: usize = 256 * 1024 * 1024;
    let mut c = Container::new(
        "attach-slow",
        &[
            "sh",
            "-c",
            "dd if=/dev/zero bs=65536 count=4096 2>/dev/null; echo done >&2",
        ],
    );
    let (_pid, slow) = launch_attach_start(&mut c);
    // The slow client never reads while the container runs.
    assert_eq!(c.wait_exit_file(Duration::from_secs(120)), b"0");
    // It was dropped: what it can read now ends in EOF, far short of the
    // whole output (its socket queue + about 1 MiB queued in the monitor).
    let mut got = 0usize;
    let end = loop {
        match slow.recv(Duration::from_secs(5)) {
            Packet::Data(d) => {
                assert!(d.len() <= 8193);
                got += d.len() - 1
            }
            other => break other,
        }
    };
    assert!(
        matches!(end, Packet::Eof),
        "slow client: connection not closed after {got} bytes"
    );
    assert!(
        got <= 5 * 1024 * 1024,
        "slow client received {got} bytes: it should have been dropped (stuck with 1 MiB queued)"
    );
    c.wait_conmon_exit(T);
    let recs = parse_k8s_log_fast(&c.read_log());
    let out = reconstruct(&recs, "stdout");
    assert_eq!(out.len(), TOTAL, "the log holds every stdout byte");
    assert!(out.iter().all(|&b| b == 0));
    assert_eq!(reconstruct(&recs, "stderr"), b"done\n");
}

/// A client that reads slowly but keeps reading is not dropped: it paces
/// the container (like conmon), and it and every other client get all output.
#[test]
fn slow_reading_client_gets_everything_and_paces_the_container() {
    if skip_without_runtime("slow_reading_client_gets_everything_and_paces_the_container") {
        return;
    }
    // 3 MiB: more than the 1 MiB high-water mark of the slow client's queue.
    const TOTAL: usize = 24 * 131072;
    let mut c = Container::new(
        "attach-slow2",
        &["sh", "-c", "head -c 3145728 /dev/zero; echo done >&2"],
    );
    let l = c.launch();
    l.expect_pid("data");
    let slow = AttachClient::connect_or_panic(&c.attach_path());
    let reading = AttachClient::connect_or_panic(&c.attach_path());
    c.start();
    let reader = std::thread::spawn(move || reading.read_to_eof(Duration::from_secs(120)));
    let mut got = 0usize;
    let mut exited_before_slow_finished = false;
    loop {
        match slow.recv(T) {
            Packet::Data(d) => {
                if d[0] == 2 {
                    got += d.len() - 1;
                }
            }
            Packet::Eof => break,
            Packet::Timeout => panic!("slow client stalled"),
        }
        if got < TOTAL / 2 && c.exit_file().exists() {
            exited_before_slow_finished = true;
        }
        // Read slowly: one packet per 2 ms (about 4 MB/s at most).
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(got, TOTAL, "the slow client gets every byte");
    assert!(
        !exited_before_slow_finished,
        "the container is paced by the slow reader, not run ahead of it"
    );
    let out = reader.join().unwrap();
    assert_eq!(
        out.stdout.len(),
        TOTAL,
        "the reading client gets every byte"
    );
    assert!(out.stdout.iter().all(|&b| b == 0));
    assert_eq!(c.wait_exit_file(T), b"0");
    c.wait_conmon_exit(T);
    assert_eq!(
        reconstruct(&parse_k8s_log(&c.read_log()), "stdout").len(),
        TOTAL
    );
}

#[test]
fn large_stdin_input_with_back_pressure_is_not_lost() {
    if skip_without_runtime("large_stdin_input_with_back_pressure_is_not_lost") {
        return;
    }
    // Contract §9: 1.5 MB pushed through stdin in 32 KiB messages; the
    // monitor must stop reading while the pipe is full, never drop.
    const TOTAL: usize = 48 * 32768;
    let mut c = Container::new("attach-bigin", &["sh", "-c", "wc -c"]);
    c.extra_args = vec!["--stdin".into()];
    let (_pid, client) = launch_attach_start(&mut c);
    let writer = std::thread::spawn(move || {
        let mut rng = Rng::new(7);
        for _ in 0..TOTAL / 32768 {
            let msg: Vec<u8> = (0..32768).map(|_| rng.next() as u8).collect();
            client.send(&msg);
        }
        client.shutdown_write();
        client
    });
    let client = writer.join().unwrap();
    let out = client.read_to_eof(T);
    assert_eq!(show(&out.stdout), show(format!("{TOTAL}\n").as_bytes()));
    assert_eq!(c.wait_exit_file(T), b"0");
    c.wait_conmon_exit(T);
}
