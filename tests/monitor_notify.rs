//! sd-notify relay (`--sdnotify-socket`, conmon-interface §10.3, contract
//! §8): `<bundle>/notify/notify.sock` (mode 0777, kept at exit) relays the
//! allowed lines of each datagram to the host socket, joined with `\n`;
//! datagrams without an allowed line send nothing. The test plays the
//! container's side (busybox has no datagram sender) by writing to the
//! socket in the bind-mounted `notify` directory.

mod common;

use common::*;
use std::fs;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

const T: Duration = Duration::from_secs(60);

struct Relay {
    c: Container,
    host: UnixDatagram,
    _hostdir: tempfile::TempDir,
    pid: i32,
}

fn start_relay(name: &str) -> Relay {
    let hostdir = tempdir("notify-host");
    let host_path = hostdir.path().join("host.sock");
    let host = UnixDatagram::bind(&host_path).unwrap();
    // Build the container first so the notify dir exists inside its bundle.
    let probe = Container::new(name, &["sleep", "1000"]);
    let notify_dir = probe.bundle.join("notify");
    fs::create_dir(&notify_dir).unwrap();
    probe.write_config(
        &["sleep", "1000"],
        &[BindMount {
            source: notify_dir.clone(),
            destination: "/tmp/notify".into(),
            readonly: false,
        }],
    );
    let mut c = probe;
    c.extra_args = vec!["--sdnotify-socket".into(), host_path.display().to_string()];
    let l = c.launch();
    let pid = l.expect_pid("data");
    c.start();
    Relay {
        c,
        host,
        _hostdir: hostdir,
        pid,
    }
}

impl Relay {
    fn container_sock(&self) -> std::path::PathBuf {
        self.c.bundle.join("notify/notify.sock")
    }

    fn send(&self, data: &[u8]) {
        let s = UnixDatagram::unbound().unwrap();
        let n = s.send_to(data, self.container_sock()).unwrap();
        assert_eq!(n, data.len());
    }

    fn recv(&self, timeout: Duration) -> Option<Vec<u8>> {
        self.host.set_read_timeout(Some(timeout)).unwrap();
        let mut buf = vec![0u8; 65536];
        match self.host.recv(&mut buf) {
            Ok(n) => Some(buf[..n].to_vec()),
            Err(_) => None,
        }
    }

    fn finish(self) {
        self.c.runtime_kill("KILL");
        assert_eq!(self.c.wait_exit_file(T), b"137");
        self.c.wait_conmon_exit(T);
        let m = fs::symlink_metadata(self.container_sock())
            .expect("notify.sock is not removed at exit");
        assert!(m.file_type().is_socket());
    }
}

#[test]
fn relays_only_allowed_lines() {
    if skip_without_runtime("relays_only_allowed_lines") {
        return;
    }
    let r = start_relay("notify-filter");
    assert!(pid_alive(r.pid));
    let m = fs::symlink_metadata(r.container_sock()).expect("<bundle>/notify/notify.sock");
    assert!(m.file_type().is_socket(), "notify.sock must be a socket");
    assert_eq!(m.permissions().mode() & 0o777, 0o777, "notify.sock mode");
    r.send(b"FOO=1\nREADY=1\nSTATUS=hi there\nMAINPID=5\r\nWATCHDOG=1");
    assert_eq!(
        r.recv(T).map(|d| show(&d)),
        Some(show(b"READY=1\nSTATUS=hi there\nWATCHDOG=1"))
    );
    // Nothing allowed: nothing is sent.
    r.send(b"MAINPID=3\nREADY=10");
    assert_eq!(
        r.recv(Duration::from_millis(700)).map(|d| show(&d)),
        None,
        "nothing may be relayed"
    );
    // The relay keeps working and the earlier datagram produced nothing late.
    r.send(b"STOPPING=1");
    assert_eq!(r.recv(T).map(|d| show(&d)), Some(show(b"STOPPING=1")));
    r.finish();
}

#[test]
fn every_allowed_line_kind_passes() {
    if skip_without_runtime("every_allowed_line_kind_passes") {
        return;
    }
    let r = start_relay("notify-kinds");
    r.send(
        b"RELOADING=1\nWATCHDOG=trigger\nERRNO=2\nBUSERROR=org.x.Err\nMONOTONIC_USEC=12345\n\
          READY=1x\nXSTATUS=no\nstatus=no\nWATCHDOG=0\nSTATUS=\n",
    );
    assert_eq!(
        r.recv(T).map(|d| show(&d)),
        Some(show(b"RELOADING=1\nWATCHDOG=trigger\nERRNO=2\nBUSERROR=org.x.Err\nMONOTONIC_USEC=12345\nSTATUS="))
    );
    // Each datagram is relayed on its own.
    r.send(b"READY=1");
    r.send(b"STATUS=second");
    assert_eq!(r.recv(T).map(|d| show(&d)), Some(show(b"READY=1")));
    assert_eq!(r.recv(T).map(|d| show(&d)), Some(show(b"STATUS=second")));
    r.finish();
}

#[test]
fn container_can_reach_the_socket_through_the_bind_mount() {
    if skip_without_runtime("container_can_reach_the_socket_through_the_bind_mount") {
        return;
    }
    let r = start_relay("notify-mount");
    // The socket is visible inside the container where Podman mounts it.
    let out = run_with_timeout(
        std::process::Command::new(runtime_binary()).args([
            "exec",
            &r.c.id,
            "ls",
            "-l",
            "/tmp/notify/notify.sock",
        ]),
        T,
    );
    assert!(out.status.success(), "runc exec ls: {}", out.stderr_str());
    assert!(
        out.stdout_str().starts_with("srwxrwxrwx"),
        "inside the container: {:?}",
        out.stdout_str()
    );
    r.finish();
}
