//! The `ctl` and `winsz` FIFOs with the real runtime (conmon-interface
//! §4.3-4.4, §7.5, contract §10; conmon's 10-ctrl.bats): resize validation
//! (accepted and rejected lines), resizes sent before `runc start`, line
//! assembly across writes, log reopen (`2 0 0`) and rotation (`2 1 1`).
//!
//! The pty size is read from the host with TIOCGWINSZ on the container's
//! fd 0 (busybox `stty size` refuses to print 0x0); the end-to-end tests
//! also run `stty size` inside the container like 10-ctrl.bats.

mod common;

use common::*;
use std::fs;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::time::Duration;

const T: Duration = Duration::from_secs(60);

fn s(x: &str) -> String {
    x.to_string()
}

fn tty_container(name: &str, args: &[&str], mounts: &[BindMount]) -> Container {
    let mut c = Container::with_mounts(name, args, mounts);
    c.edit_config(|v| v["process"]["terminal"] = serde_json::Value::Bool(true));
    let tmp = c.root().join("tmp");
    fs::create_dir(&tmp).unwrap();
    c.env.push(("TMPDIR".into(), tmp.display().to_string()));
    c.extra_args.push("-t".into());
    c
}

/// A running `sleep` in a terminal; returns (container, pid).
fn running_tty(name: &str) -> (Container, i32) {
    let mut c = tty_container(name, &["sleep", "1000"], &[]);
    let l = c.launch();
    let pid = l.expect_pid("data");
    c.start();
    (c, pid)
}

fn finish(c: &Container) {
    c.runtime_kill("KILL");
    assert_eq!(c.wait_exit_file(T), b"137");
    c.wait_conmon_exit(T);
}

/// Send `msg` to ctl and expect the pty size `expected` afterwards; then
/// check ctl still works (`1 5 6`).
fn resize_case(name: &str, msg: &[u8], expected: (u16, u16)) {
    if skip_without_runtime(name) {
        return;
    }
    let (c, pid) = running_tty(name);
    assert_eq!(pty_size_of(pid), (0, 0), "fresh pty");
    c.write_ctl(msg);
    assert_eq!(
        pty_size_of(pid),
        expected,
        "after ctl message {}",
        show(&msg[..msg.len().min(40)])
    );
    c.write_ctl(b"1 5 6\n");
    assert_eq!(
        pty_size_of(pid),
        (5, 6),
        "ctl must keep working after {}",
        show(&msg[..msg.len().min(40)])
    );
    finish(&c);
}

macro_rules! accepted {
    ($name:ident, $msg:expr, $h:expr, $w:expr) => {
        #[test]
        fn $name() {
            resize_case(stringify!($name), $msg, ($h, $w));
        }
    };
}

macro_rules! rejected {
    ($name:ident, $msg:expr) => {
        #[test]
        fn $name() {
            resize_case(stringify!($name), $msg, (0, 0));
        }
    };
}

accepted!(resize_1_2_2, b"1 2 2\n", 2, 2);
accepted!(resize_trailing_text_ignored_1_2_2_3, b"1 2 2 3\n", 2, 2);
accepted!(resize_leading_zeros_1_0010_0020, b"1 0010 0020\n", 10, 20);
accepted!(resize_maximum_1_1000_1000, b"1 1000 1000\n", 1000, 1000);

rejected!(reject_negative_size, b"1 -1 -1\n");
rejected!(reject_two_numbers, b"1 2\n");
rejected!(reject_one_number, b"1\n");
rejected!(reject_word, b"foo\n");
rejected!(reject_unknown_type_alone, b"999\n");
rejected!(reject_unknown_type, b"999 2 2\n");
rejected!(reject_decimals, b"1 10.5 20.3\n");
rejected!(reject_hex, b"1 0x10 0x20\n");
rejected!(reject_huge, b"1 100000 100000\n");
rejected!(reject_height_1001, b"1 1001 1000\n");
rejected!(reject_width_1001, b"1 1000 1001\n");
rejected!(reject_65535, b"1 65535 65535\n");

#[test]
fn reject_overlong_line() {
    let mut msg = b"1 2 2 ".to_vec();
    msg.extend(std::iter::repeat(b'#').take(65535));
    msg.push(b'\n');
    resize_case("reject_overlong_line", &msg, (0, 0));
}

#[test]
fn last_of_several_lines_in_one_write_wins() {
    resize_case("ctl_several_lines", b"1 3 3\n1 4 4\n", (4, 4));
}

#[test]
fn line_split_across_writes_is_assembled() {
    if skip_without_runtime("line_split_across_writes_is_assembled") {
        return;
    }
    let (c, pid) = running_tty("ctl-split");
    c.write_ctl(b"1 6");
    assert_eq!(pty_size_of(pid), (0, 0), "incomplete line must not act");
    c.write_ctl(b" 7\n");
    assert_eq!(pty_size_of(pid), (6, 7));
    finish(&c);
}

#[test]
fn winsz_fifo_resizes_too() {
    if skip_without_runtime("winsz_fifo_resizes_too") {
        return;
    }
    let (c, pid) = running_tty("ctl-winsz");
    write_fifo_and_wait_drained(&c.bundle.join("winsz"), b"12 34\n");
    assert_eq!(pty_size_of(pid), (12, 34));
    write_fifo_and_wait_drained(&c.bundle.join("winsz"), b"1001 3\n");
    assert_eq!(pty_size_of(pid), (12, 34), "winsz range check");
    finish(&c);
}

#[test]
fn fifo_modes_are_0640() {
    if skip_without_runtime("fifo_modes_are_0640") {
        return;
    }
    let (c, _pid) = running_tty("ctl-modes");
    for f in ["ctl", "winsz"] {
        let m = fs::symlink_metadata(c.bundle.join(f)).unwrap();
        assert!(m.file_type().is_fifo(), "{f} is a FIFO");
        assert_eq!(m.permissions().mode() & 0o777, 0o640, "{f} mode");
    }
    finish(&c);
}

#[test]
fn resize_before_runtime_start_is_applied() {
    if skip_without_runtime("resize_before_runtime_start_is_applied") {
        return;
    }
    // Podman starts resizing before `runc start`; the container's first
    // command must see the size.
    let mut c = tty_container("ctl-early", &["stty", "size"], &[]);
    let l = c.launch();
    l.expect_pid("data");
    c.write_ctl(b"1 7 9\n");
    c.start();
    c.expect_exit_and_log(b"0", &[("stdout", 'F', "7 9\r")], T);
}

#[test]
fn stty_size_in_container_after_resize() {
    if skip_without_runtime("stty_size_in_container_after_resize") {
        return;
    }
    // 10-ctrl.bats: the container waits for a file, then runs `stty size`.
    let trig = Trigger::new();
    let script = format!("{WAIT_FOR_TRIGGER}; stty size");
    let mut c = tty_container("ctl-stty", &["sh", "-c", &script], &trig.mounts());
    let l = c.launch();
    l.expect_pid("data");
    c.start();
    c.write_ctl(b"1 0010 0020\n");
    trig.fire();
    c.expect_exit_and_log(b"0", &[("stdout", 'F', "10 20\r")], T);
}

// --- log reopen (type 2) ------------------------------------------------------------

/// A non-terminal container: `echo before`, wait for /trigger/go, `echo after`.
fn reopen_container(name: &str, trig: &Trigger, before: &str, after: &str) -> Container {
    let script = format!("echo '{before}'; {WAIT_FOR_TRIGGER}; echo '{after}'");
    Container::with_mounts(name, &["sh", "-c", &script], &trig.mounts())
}

#[test]
fn reopen_recreates_a_removed_log() {
    if skip_without_runtime("reopen_recreates_a_removed_log") {
        return;
    }
    let trig = Trigger::new();
    let mut c = reopen_container("ctl-reopen", &trig, "before", "after");
    let l = c.launch();
    l.expect_pid("data");
    c.start();
    c.wait_log_contains("before", T);
    fs::remove_file(&c.log_path).unwrap();
    // Out of range even for type 2: rejected, nothing reopened.
    c.write_ctl(b"2 1001 0\n");
    assert!(!c.log_path.exists(), "`2 1001 0` must be rejected");
    c.write_ctl(b"2 0 0\n");
    assert!(
        wait_for(T, || c.log_path.exists()),
        "log not recreated by `2 0 0`"
    );
    assert_eq!(
        fs::read(&c.log_path).unwrap(),
        b"",
        "recreated log starts empty"
    );
    assert_eq!(
        fs::metadata(&c.log_path).unwrap().permissions().mode() & 0o777,
        0o640
    );
    trig.fire();
    c.expect_exit_and_log(b"0", &[("stdout", 'F', "after")], T);
}

#[test]
fn reopen_with_log_rotate_moves_old_output_to_dot_1() {
    if skip_without_runtime("reopen_with_log_rotate_moves_old_output_to_dot_1") {
        return;
    }
    let trig = Trigger::new();
    let mut c = reopen_container("ctl-rotate", &trig, "before rotation", "after rotation");
    c.extra_args = vec!["--log-rotate".into()];
    let l = c.launch();
    l.expect_pid("data");
    c.start();
    c.wait_log_contains("before rotation", T);
    c.write_ctl(b"2 1 1\n");
    let rotated = c.log_path.with_file_name(format!(
        "{}.1",
        c.log_path.file_name().unwrap().to_string_lossy()
    ));
    assert!(
        wait_for(T, || rotated.exists()),
        "no {} after `2 1 1`",
        rotated.display()
    );
    trig.fire();
    assert_eq!(c.wait_exit_file(T), b"0");
    c.wait_conmon_exit(T);
    assert_eq!(
        triples(&parse_k8s_log(&fs::read(&rotated).unwrap())),
        vec![(s("stdout"), 'F', s("before rotation"))]
    );
    assert_eq!(
        triples(&parse_k8s_log(&c.read_log())),
        vec![(s("stdout"), 'F', s("after rotation"))]
    );
}

#[test]
fn reopen_in_terminal_mode_keeps_logging() {
    if skip_without_runtime("reopen_in_terminal_mode_keeps_logging") {
        return;
    }
    // 10-ctrl.bats variant: terminal container, log removed, `2 1 1`.
    let trig = Trigger::new();
    let script = format!("echo before; {WAIT_FOR_TRIGGER}; echo after");
    let mut c = tty_container("ctl-reopen-tty", &["sh", "-c", &script], &trig.mounts());
    let l = c.launch();
    l.expect_pid("data");
    c.start();
    c.wait_log_contains("before", T);
    fs::remove_file(&c.log_path).unwrap();
    c.write_ctl(b"2 1 1\n");
    assert!(wait_for(T, || c.log_path.exists()), "log not recreated");
    trig.fire();
    c.expect_exit_and_log(b"0", &[("stdout", 'F', "after\r")], T);
}
