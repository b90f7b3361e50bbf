//! The monitor under attack from its own container: huge lines, endless
//! output without newlines, binary garbage, closed stdout with a flooding
//! stderr, orphans that keep writing after the container's process exited.
//! Every byte that reaches the monitor before the container exits is logged,
//! and the monitor's memory stays within a fixed bound.
//!
//! Stated bound: the monitor's peak RSS (VmHWM) stays below
//! [`MEMORY_BOUND_KIB`] whatever the container writes (without attach
//! clients; each attach client may add up to 1 MiB of queued output).

mod common;

use common::*;
use std::fs;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(300);
/// The monitor's peak resident memory, in KiB, for any container output.
const MEMORY_BOUND_KIB: u64 = 16 * 1024;

fn vm_hwm_kib(pid: i32) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Run `script`, which must end with a `sleep` after its output so the
/// monitor's peak memory can be read while it is still alive; returns the
/// reconstructed (stdout, stderr) and the monitor's VmHWM.
fn run_and_measure(
    name: &str,
    script: &str,
    expect_stdout: usize,
    expect_stderr: usize,
) -> (Vec<u8>, Vec<u8>, u64) {
    let mut c = Container::new(name, &["sh", "-c", script]);
    let l = c.launch();
    l.expect_pid("data");
    c.start();
    let pid = c.conmon_pid();
    let log = c.log_path.clone();
    // Wait until the log holds everything, reading its size only (cheap).
    let min_size = (expect_stdout + expect_stderr) as u64;
    // VmHWM only grows: sample it while waiting and keep the largest reading.
    let mut hwm = 0;
    assert!(
        wait_for(T, || {
            hwm = hwm.max(vm_hwm_kib(pid));
            fs::metadata(&log)
                .map(|m| m.len() >= min_size)
                .unwrap_or(false)
        } && {
            let recs = parse_k8s_log_fast(&fs::read(&log).unwrap_or_default());
            reconstruct(&recs, "stdout").len() == expect_stdout
                && reconstruct(&recs, "stderr").len() == expect_stderr
        }),
        "log never held all output"
    );
    hwm = hwm.max(vm_hwm_kib(pid));
    assert_eq!(c.wait_exit_file(T), b"0");
    c.wait_conmon_exit(T);
    let recs = parse_k8s_log_fast(&c.read_log());
    (
        reconstruct(&recs, "stdout"),
        reconstruct(&recs, "stderr"),
        hwm,
    )
}

#[test]
fn one_gib_without_a_newline_is_logged_in_bounded_memory() {
    if skip_without_runtime("one_gib_without_a_newline_is_logged_in_bounded_memory") {
        return;
    }
    const N: usize = 1 << 30;
    let (out, err, hwm) =
        run_and_measure("atk-1gib", &format!("head -c {N} /dev/zero; sleep 1"), N, 0);
    assert_eq!(out.len(), N);
    assert!(out.iter().all(|&b| b == 0));
    assert!(err.is_empty());
    assert!(hwm > 0 && hwm < MEMORY_BOUND_KIB, "monitor VmHWM {hwm} KiB");
}

#[test]
fn a_100_mib_line_is_logged_whole() {
    if skip_without_runtime("a_100_mib_line_is_logged_whole") {
        return;
    }
    const N: usize = 100 << 20;
    let (out, _err, hwm) = run_and_measure(
        "atk-100mib",
        &format!("head -c {N} /dev/zero | tr '\\000' a; echo; sleep 1"),
        N + 1,
        0,
    );
    assert_eq!(out.len(), N + 1);
    assert!(out[..N].iter().all(|&b| b == b'a'));
    assert_eq!(out[N], b'\n');
    assert!(hwm < MEMORY_BOUND_KIB, "monitor VmHWM {hwm} KiB");
}

#[test]
fn stdout_closed_early_while_stderr_floods() {
    if skip_without_runtime("stdout_closed_early_while_stderr_floods") {
        return;
    }
    const N: usize = 64 << 20;
    let (out, err, hwm) = run_and_measure(
        "atk-closed",
        &format!("echo first; exec 1>&-; head -c {N} /dev/zero >&2; sleep 1"),
        6,
        N,
    );
    assert_eq!(out, b"first\n");
    assert_eq!(err.len(), N);
    assert!(hwm < MEMORY_BOUND_KIB, "monitor VmHWM {hwm} KiB");
}

#[test]
fn binary_garbage_and_escape_sequences_are_logged_byte_exactly() {
    if skip_without_runtime("binary_garbage_and_escape_sequences_are_logged_byte_exactly") {
        return;
    }
    let data_dir = tempdir("garbage");
    let mut data: Vec<u8> = Vec::with_capacity(8 << 20);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    while data.len() < (8 << 20) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        data.extend_from_slice(&x.to_le_bytes());
    }
    // Terminal escapes, NULs, CRs and invalid UTF-8 at the start.
    let mut all = b"\x1b[2J\x1b[H\x1b]0;title\x07\r\x00\xff\xfe\n".to_vec();
    all.extend_from_slice(&data);
    fs::write(data_dir.path().join("g.bin"), &all).unwrap();
    let mut c = Container::with_mounts(
        "atk-garbage",
        &["cat", "/data/g.bin"],
        &[BindMount {
            source: fs::canonicalize(data_dir.path()).unwrap(),
            destination: "/data".into(),
            readonly: true,
        }],
    );
    let (_pid, code) = c.run_to_exit(T);
    assert_eq!(code, b"0");
    let recs = parse_k8s_log_fast(&c.read_log());
    let out = reconstruct(&recs, "stdout");
    assert_eq!(out.len(), all.len());
    assert!(out == all, "garbage not logged byte-exactly");
}

/// Without a PID namespace, an orphan keeps writing to the inherited pipe
/// after the container's process exited: the monitor still finishes (its
/// drain is bounded) and reports the container's status.
#[test]
fn orphans_writing_after_the_container_exited_do_not_keep_the_monitor_alive() {
    if skip_without_runtime(
        "orphans_writing_after_the_container_exited_do_not_keep_the_monitor_alive",
    ) {
        return;
    }
    let mut c = Container::new(
        "atk-orphan",
        &[
            "sh",
            "-c",
            "(yes orphan-output >/dev/stdout &); sleep 0.2; exit 5",
        ],
    );
    c.edit_config(|v| {
        if let Some(ns) = v["linux"]["namespaces"].as_array_mut() {
            ns.retain(|n| n["type"] != "pid");
        }
    });
    let l = c.launch();
    l.expect_pid("data");
    c.start();
    let t0 = Instant::now();
    assert_eq!(c.wait_exit_file(Duration::from_secs(60)), b"5");
    c.wait_conmon_exit(Duration::from_secs(60));
    assert!(
        t0.elapsed() < Duration::from_secs(30),
        "monitor took {:?}",
        t0.elapsed()
    );
    let recs = parse_k8s_log_fast(&c.read_log());
    assert!(reconstruct(&recs, "stdout").starts_with(b"orphan-output\n"));
    // The orphan is still around (killed by the harness's `runc delete -f`).
}

/// A pids-limited fork bomb: the container fails to fork, the monitor is
/// unaffected and reports the container's status.
#[test]
fn fork_bomb_limited_by_pids_does_not_disturb_the_monitor() {
    if skip_without_runtime("fork_bomb_limited_by_pids_does_not_disturb_the_monitor") {
        return;
    }
    // The forks run in a subshell: a failed fork ends it, not the container.
    let script = "(i=0; while [ $i -lt 200 ]; do sleep 30 & i=$((i+1)); done) 2>/dev/null; echo forked; exit 0";
    let mut c = Container::new("atk-forkbomb", &["sh", "-c", script]);
    c.edit_config(|v| {
        v["linux"]["resources"]["pids"] = serde_json::json!({ "limit": 16 });
    });
    let (_pid, code) = c.run_to_exit(T);
    assert_eq!(code, b"0");
    let recs = parse_k8s_log_fast(&c.read_log());
    assert!(reconstruct(&recs, "stdout").ends_with(b"forked\n"));
}

fn fd_count(pid: i32) -> usize {
    fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// 1000 attach clients connect and leave (in waves of 100): the monitor keeps
/// no fd of theirs and still serves the next client.
#[test]
fn a_thousand_attach_clients_come_and_go() {
    if skip_without_runtime("a_thousand_attach_clients_come_and_go") {
        return;
    }
    let ctl = tempdir("thousand");
    let script = "while [ ! -e /ctl/go ]; do sleep 0.05; done; echo still-here";
    let mut c = Container::with_mounts(
        "atk-clients",
        &["sh", "-c", script],
        &[BindMount {
            source: fs::canonicalize(ctl.path()).unwrap(),
            destination: "/ctl".into(),
            readonly: false,
        }],
    );
    let l = c.launch();
    l.expect_pid("data");
    c.start();
    let pid = c.conmon_pid();
    let base = fd_count(pid);
    for _wave in 0..10 {
        let clients: Vec<AttachClient> = (0..100)
            .map(|_| AttachClient::connect_or_panic(&c.attach_path()))
            .collect();
        drop(clients);
    }
    assert!(
        wait_for(Duration::from_secs(30), || fd_count(pid) <= base),
        "monitor fds {} > {base}",
        fd_count(pid)
    );
    let last = AttachClient::connect_or_panic(&c.attach_path());
    fs::write(ctl.path().join("go"), b"").unwrap();
    let out = last.read_to_eof(T);
    assert_eq!(out.stdout, b"still-here\n");
    assert_eq!(c.wait_exit_file(T), b"0");
}

/// A client pushes 1 GiB of stdin into a container that never reads it: the
/// client is held back (no unbounded buffering in the monitor) and the
/// container exits normally.
#[test]
fn a_gib_of_stdin_to_a_container_that_never_reads() {
    if skip_without_runtime("a_gib_of_stdin_to_a_container_that_never_reads") {
        return;
    }
    let mut c = Container::new("atk-stdin", &["sh", "-c", "sleep 3; echo done"]);
    c.extra_args.push("--stdin".into());
    let l = c.launch();
    l.expect_pid("data");
    let client = AttachClient::connect_or_panic(&c.attach_path());
    c.start();
    let pid = c.conmon_pid();
    let fd = std::os::fd::AsRawFd::as_raw_fd(&client.fd);
    // Non-blocking sends: count what the monitor accepted before it pushed back.
    unsafe {
        libc::fcntl(
            fd,
            libc::F_SETFL,
            libc::fcntl(fd, libc::F_GETFL) | libc::O_NONBLOCK,
        )
    };
    let chunk = vec![b'i'; 32768];
    let mut sent: u64 = 0;
    let t0 = Instant::now();
    let mut hwm = 0;
    while sent < (1 << 30) && t0.elapsed() < Duration::from_secs(2) {
        let n = unsafe { libc::send(fd, chunk.as_ptr().cast(), chunk.len(), libc::MSG_NOSIGNAL) };
        if n > 0 {
            sent += n as u64;
        } else {
            std::thread::sleep(Duration::from_millis(10));
        }
        hwm = hwm.max(vm_hwm_kib(pid));
    }
    assert!(
        sent < 64 << 20,
        "the monitor took {sent} bytes of stdin nobody reads"
    );
    assert!(hwm < MEMORY_BOUND_KIB, "monitor VmHWM {hwm} KiB");
    // Read only once the monitor is done with the client (the exit file is
    // written after the clients are closed): the unread stdin it discards at
    // close must not turn into a reset that hides the output still queued.
    assert_eq!(c.wait_exit_file(T), b"0");
    let out = client.read_to_eof(T);
    assert_eq!(out.stdout, b"done\n");
}
