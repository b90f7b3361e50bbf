//! Issue #9, runner side: a monitor killed with SIGKILL, recycled pids, and
//! private state directories, with the real `vigil`, monitor and runc (root).
//!
//! Environment: as tests/e2e_support (`VIGIL_BINARY`, `CONMON_BINARY`), plus
//! `VIGIL_TEST_ROOTFS` (default `<workspace>/target/test-rootfs/busybox`,
//! made by scripts/make-test-rootfs).

mod e2e_support;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use e2e_support::{text, vigil_and_busybox_rootfs, wait_bounded, Vigil};
use vigil_runner::container::runtime::{same_process, start_time};

/// A private vigil and the busybox rootfs, or why the test cannot run.
fn setup(test: &str) -> Option<(Vigil, String)> {
    vigil_and_busybox_rootfs(test)
}

/// `run -d --name NAME --rootfs ROOTFS sleep 1000`: (id, monitor pid, container pid).
fn detached_sleeper(v: &Vigil, rootfs: &str, name: &str) -> (String, i32, i32) {
    let id = v
        .ok(&[
            "run", "-d", "--name", name, "--rootfs", rootfs, "sleep", "1000",
        ])
        .trim()
        .to_string();
    let state = &v.inspect(name)["State"];
    let pid_of = |key: &str| i32::try_from(state[key].as_i64().unwrap_or(0)).unwrap_or(0);
    let (monitor, pid) = (pid_of("ConmonPid"), pid_of("Pid"));
    assert!(monitor > 0 && pid > 0, "inspect pids: {state}");
    let comm = fs::read_to_string(format!("/proc/{monitor}/comm")).unwrap_or_default();
    assert_eq!(comm.trim_end(), "conmon", "ConmonPid is the monitor");
    (id, monitor, pid)
}

/// SIGKILL `pid` and wait (10 s at most) until it is gone.
fn kill_and_reap(v: &Vigil, pid: i32) {
    // SAFETY: plain syscall.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0, "kill {pid}");
    // Not our child: its parent (init, or a subreaper) reaps it; the pid
    // must be free before a stranger can be given it.
    v.wait_for(&format!("pid {pid} to be reaped"), REAP_LIMIT, |_| {
        !Path::new(&format!("/proc/{pid}")).exists()
    });
}

const REAP_LIMIT: Duration = Duration::from_secs(10);

/// A stranger: `sleep 1000` given pid `pid` through `ns_last_pid` (retried,
/// since anything else forking may take it first). `None` if the kernel does
/// not let us choose.
fn stranger_with_pid(pid: i32) -> Option<Child> {
    for _ in 0..200 {
        fs::write("/proc/sys/kernel/ns_last_pid", (pid - 1).to_string()).ok()?;
        let mut child = Command::new("sleep")
            .arg("1000")
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn sleep");
        if child.id() as i32 == pid {
            return Some(child);
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    None
}

/// Strangers of a test, killed when it ends (passing or not).
struct Strangers(Vec<Child>);

impl Drop for Strangers {
    fn drop(&mut self) {
        for s in &mut self.0 {
            let _ = s.kill();
            let _ = s.wait();
        }
    }
}

/// The stranger was not signalled: still running, same process.
fn assert_unharmed(stranger: &mut Child, start: Option<u64>, after: &str) {
    let pid = stranger.id() as i32;
    assert_eq!(
        stranger
            .try_wait()
            .expect("try_wait")
            .map(|s| s.to_string()),
        None,
        "the stranger with pid {pid} died after {after}"
    );
    assert!(same_process(pid, start), "pid {pid} changed after {after}");
}

/// Everything of container `id` is gone: runc state, mounts, directories,
/// and its process `pid` (unless `None`: a stranger has that pid now).
fn assert_removed(v: &Vigil, id: &str, pid: Option<i32>) {
    let runc_root = v.runroot().join("runc");
    let out = Command::new("runc")
        .arg("--root")
        .arg(&runc_root)
        .arg("list")
        .output()
        .expect("runc list");
    assert!(out.status.success(), "runc list: {}", text(&out.stderr));
    assert!(
        !text(&out.stdout).contains(id),
        "runc still knows {id}:\n{}",
        text(&out.stdout)
    );
    if let Some(pid) = pid {
        assert!(
            !same_process(pid, None),
            "container process {pid} still runs"
        );
    }
    let info = fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    let base = v.dir.path().to_string_lossy().into_owned();
    assert!(!info.contains(&base), "mounts left under {base}:\n{info}");
    for d in [
        v.runroot().join("containers").join(id),
        v.root().join("containers").join(id),
    ] {
        assert!(!d.exists(), "{} left behind", d.display());
    }
}

#[test]
fn killed_monitor_is_reported_and_force_remove_cleans_up() {
    let Some((v, rootfs)) = setup("killed_monitor_is_reported_and_force_remove_cleans_up") else {
        return;
    };
    let (id, monitor, pid) = detached_sleeper(&v, &rootfs, "orphan");
    let bundle = v.runroot().join("containers").join(&id);
    assert!(bundle.join("attach").exists(), "attach socket");
    kill_and_reap(&v, monitor);

    // The container process still runs, unmonitored: still `running`, and said so.
    let message = format!("monitor (pid {monitor}) died; container state unknown");
    let ps = v.ok(&["ps", "-a"]);
    let line = ps
        .lines()
        .find(|l| l.contains("orphan"))
        .unwrap_or_default();
    assert!(
        line.contains("Up ") && line.contains("(monitor died)"),
        "{ps}"
    );
    let state = &v.inspect("orphan")["State"];
    assert_eq!(state["Status"], "running", "{state}");
    assert_eq!(state["Error"], message.as_str(), "{state}");
    assert_eq!(state["Pid"], pid);
    assert!(
        same_process(pid, None),
        "the container process was left alone"
    );

    // Plain rm refuses a running container, as Podman.
    let out = v.run(&["rm", "orphan"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));

    assert_eq!(v.ok(&["rm", "-f", "orphan"]), format!("{id}\n"));
    assert_removed(&v, &id, Some(pid));
    assert_eq!(v.ok(&["ps", "-a", "-q"]), "");
}

#[test]
fn killed_monitor_then_container_exit_is_waited_for_and_removed() {
    let Some((v, rootfs)) = setup("killed_monitor_then_container_exit_is_waited_for_and_removed")
    else {
        return;
    };
    let (id, monitor, pid) = detached_sleeper(&v, &rootfs, "gone");
    kill_and_reap(&v, monitor);
    // `wait` follows the container process now that no exit file will come.
    let waiter = v
        .command(&["wait", "gone"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn vigil wait");
    kill_and_reap(&v, pid);
    let out = wait_bounded(waiter, Duration::from_secs(30), "vigil wait");
    let message = format!("monitor (pid {monitor}) died; exit code unknown");
    assert_eq!(
        (text(&out.stdout).as_str(), out.status.code()),
        ("-1\n", Some(0)),
        "{}",
        text(&out.stderr)
    );
    assert!(
        text(&out.stderr).contains(&message),
        "{}",
        text(&out.stderr)
    );

    let ps = v.ok(&["ps", "-a"]);
    assert!(
        ps.contains("Exited (-1)") && ps.contains("(monitor died)"),
        "{ps}"
    );
    assert_eq!(v.ok(&["ps", "-q"]), "", "not running");
    let state = &v.inspect("gone")["State"];
    assert_eq!(state["Status"], "exited", "{state}");
    assert_eq!(state["ExitCode"], -1, "{state}");
    assert_eq!(state["Error"], message.as_str(), "{state}");
    assert_eq!(v.ok(&["wait", "gone"]), "-1\n");
    // Already cleaned up by the refresh that saw it gone.
    let runc = Command::new("runc")
        .arg("--root")
        .arg(v.runroot().join("runc"))
        .args(["list", "-q"])
        .output()
        .expect("runc list");
    assert!(!text(&runc.stdout).contains(&id), "{}", text(&runc.stdout));

    assert_eq!(v.ok(&["rm", "gone"]), format!("{id}\n"));
    assert_removed(&v, &id, Some(pid));
}

/// Runs stop, kill and rm -f on `name` while `stranger` holds a pid the
/// container's record still names; none of them may touch the stranger.
fn commands_spare(v: &Vigil, name: &str, id: &str, stranger: &mut Child, expect_running: bool) {
    let start = start_time(stranger.id() as i32);
    let ps = v.ok(&["ps", "-a"]);
    let running = ps
        .lines()
        .any(|l| l.contains(name) && l.contains("Up ") && l.contains("(monitor died)"));
    assert_eq!(running, expect_running, "{ps}");
    if !expect_running {
        assert!(ps.contains("Exited (-1)"), "{ps}");
    }
    assert_unharmed(stranger, start, "ps");

    let began = Instant::now();
    let out = v.run(&["stop", "-t", "1", name]);
    assert_eq!(out.status.code(), Some(0), "stop: {}", text(&out.stderr));
    assert!(
        began.elapsed() < Duration::from_secs(20),
        "stop took {:?}",
        began.elapsed()
    );
    assert_unharmed(stranger, start, "stop");
    assert_eq!(v.inspect(name)["State"]["Status"], "exited");

    // Not running any more: kill refuses (and signals nobody).
    let out = v.run(&["kill", name]);
    assert_eq!(out.status.code(), Some(125), "kill: {}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("can only kill running containers"),
        "{}",
        text(&out.stderr)
    );
    assert_unharmed(stranger, start, "kill");

    assert_eq!(v.ok(&["rm", "-f", name]), format!("{id}\n"));
    assert_unharmed(stranger, start, "rm -f");
}

#[test]
fn recycled_pids_are_never_signalled() {
    let Some((v, rootfs)) = setup("recycled_pids_are_never_signalled") else {
        return;
    };
    if fs::metadata("/proc/sys/kernel/ns_last_pid").is_err() {
        return eprintln!("skipping recycled_pids_are_never_signalled: no ns_last_pid");
    }
    let mut strangers = Strangers(Vec::new());
    let mut exercised = 0;

    // 1. Monitor and container both killed; a stranger gets the monitor's pid.
    let (id, monitor, pid) = detached_sleeper(&v, &rootfs, "reuse-monitor");
    kill_and_reap(&v, monitor);
    kill_and_reap(&v, pid);
    if let Some(s) = stranger_with_pid(monitor) {
        strangers.0.push(s);
        let s = strangers.0.last_mut().expect("just pushed");
        commands_spare(&v, "reuse-monitor", &id, s, false);
        exercised += 1;
    } else {
        eprintln!("could not place a stranger at pid {monitor}");
        v.ok(&["rm", "-f", "reuse-monitor"]);
    }
    assert_removed(&v, &id, Some(pid));

    // 2. Both killed; a stranger gets the container's pid.
    let (id, monitor, pid) = detached_sleeper(&v, &rootfs, "reuse-ctr");
    kill_and_reap(&v, monitor);
    kill_and_reap(&v, pid);
    if let Some(s) = stranger_with_pid(pid) {
        strangers.0.push(s);
        let s = strangers.0.last_mut().expect("just pushed");
        commands_spare(&v, "reuse-ctr", &id, s, false);
        exercised += 1;
    } else {
        eprintln!("could not place a stranger at pid {pid}");
        v.ok(&["rm", "-f", "reuse-ctr"]);
    }
    assert_removed(&v, &id, None);

    // 3. Only the monitor killed, its pid given to a stranger: the container
    // is still stopped through the runtime, the stranger is not the monitor.
    let (id, monitor, pid) = detached_sleeper(&v, &rootfs, "reuse-live");
    kill_and_reap(&v, monitor);
    if let Some(s) = stranger_with_pid(monitor) {
        strangers.0.push(s);
        let s = strangers.0.last_mut().expect("just pushed");
        commands_spare(&v, "reuse-live", &id, s, true);
        exercised += 1;
    } else {
        eprintln!("could not place a stranger at pid {monitor}");
        v.ok(&["rm", "-f", "reuse-live"]);
    }
    assert_removed(&v, &id, Some(pid));

    assert!(exercised > 0, "no pid could be recycled on purpose");
}

#[test]
fn state_directories_are_private() {
    let Some((v, rootfs)) = setup("state_directories_are_private") else {
        return;
    };
    let id = v
        .ok(&[
            "run", "-d", "--name", "p", "--rootfs", &rootfs, "sleep", "1000",
        ])
        .trim()
        .to_string();
    let mode = |p: &PathBuf| {
        fs::metadata(p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .mode()
            & 0o7777
    };
    for d in [
        v.runroot(),
        v.runroot().join("containers"),
        v.runroot().join("containers").join(&id),
        v.runroot().join("runc"),
        v.root().join("containers"),
        v.root().join("containers").join(&id),
    ] {
        assert_eq!(mode(&d), 0o700, "{}", d.display());
    }
    // The attach socket and the ctl fifo are in the private bundle.
    let bundle = v.runroot().join("containers").join(&id);
    for f in ["attach", "ctl"] {
        assert!(bundle.join(f).exists(), "{f} in the bundle");
    }
    assert_eq!(v.ok(&["exec", "p", "echo", "ok"]), "ok\n");
    v.ok(&["rm", "-f", "p"]);
}
