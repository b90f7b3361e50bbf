//! The syslog driver (vigil extension: `-l syslog:unix:PATH`,
//! `-l syslog:udp:HOST:PORT`, `-l syslog:tcp:HOST:PORT`) against a REAL
//! rsyslogd (Debian package rsyslog), so the records are checked by an actual
//! RFC 5424 parser rather than by our own regex (tests/monitor_syslog.rs).
//!
//! Each test starts its own `rsyslogd -n` in the foreground with a private
//! config and work dir: imuxsock on a socket in the temp dir (the system
//! `/dev/log` is never touched), imudp and imtcp on free loopback ports, all
//! bound to a ruleset that only accepts RFC 5424 (`parser=["rsyslog.rfc5424"]`)
//! and writes `APP-NAME|MSGID|severity|facility|version|HOSTNAME|PROCID|MSG`
//! lines to a file. Readiness is proven by probe records (APP-NAME
//! `vigil-probe`, routed to a separate file) through every input. rsyslogd is
//! stopped (SIGTERM, then SIGKILL) when the test ends.
//!
//! Skipped (with a printed reason) only when rsyslogd is not installed
//! (scripts/ci-setup installs it) or when real containers cannot run.

mod common;

use common::*;
use std::fs;
use std::io::Write;
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(60);
const RSYSLOGD: &str = "/usr/sbin/rsyslogd";

fn skip(test: &str) -> bool {
    if skip_without_runtime(test) {
        return true;
    }
    if !Path::new(RSYSLOGD).is_file() {
        eprintln!("SKIPPED {test}: {RSYSLOGD} not installed (scripts/ci-setup installs rsyslog)");
        return true;
    }
    false
}

fn hostname() -> String {
    let mut buf = [0u8; 256];
    unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let end = buf.iter().position(|&b| b == 0).unwrap();
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// A port on 127.0.0.1 that was free a moment ago (rsyslogd binds it next;
/// a lost race makes the readiness probe fail and `Rsyslogd::start` retry).
fn free_port(tcp: bool) -> u16 {
    if tcp {
        TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    } else {
        UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }
}

/// An RFC 5424 record as the monitor formats it (for the probes).
fn probe_record(msg: &str) -> Vec<u8> {
    format!("<14>1 2026-01-01T00:00:00.000000+00:00 probehost vigil-probe 1 probe - {msg}")
        .into_bytes()
}

struct Rsyslogd {
    child: Child,
    dir: tempfile::TempDir,
    /// imuxsock socket.
    sock: PathBuf,
    udp_port: u16,
    tcp_port: u16,
    /// The records from the container, one formatted line each.
    out: PathBuf,
}

impl Rsyslogd {
    /// Start a private rsyslogd; `max_message_size` sets `global(maxMessageSize)`.
    fn start(max_message_size: Option<&str>) -> Rsyslogd {
        let mut errors = Vec::new();
        for _ in 0..5 {
            match Self::try_start(max_message_size) {
                Ok(r) => return r,
                Err(e) => errors.push(e),
            }
        }
        panic!("rsyslogd did not come up: {errors:#?}");
    }

    fn try_start(max_message_size: Option<&str>) -> Result<Rsyslogd, String> {
        let dir = tempdir("rsyslog");
        let root = fs::canonicalize(dir.path()).unwrap();
        let work = root.join("work");
        fs::create_dir(&work).unwrap();
        let sock = root.join("log.sock");
        let out = root.join("out.log");
        let probe = root.join("probe.log");
        let internal = root.join("internal.log");
        let udp_port = free_port(false);
        let tcp_port = free_port(true);
        let max = max_message_size
            .map(|m| format!(" maxMessageSize=\"{m}\""))
            .unwrap_or_default();
        let conf = format!(
            r#"global(workDirectory="{work}"{max})
module(load="imuxsock" SysSock.Use="off")
module(load="imudp")
module(load="imtcp")
template(name="vigilfmt" type="string"
         string="%APP-NAME%|%MSGID%|%syslogseverity%|%syslogfacility%|%protocol-version%|%HOSTNAME%|%PROCID%|%msg%\n")
ruleset(name="vigil" parser=["rsyslog.rfc5424"]) {{
    if $app-name == "vigil-probe" then {{
        action(type="omfile" file="{probe}" template="vigilfmt")
        stop
    }}
    action(type="omfile" file="{out}" template="vigilfmt")
}}
input(type="imuxsock" socket="{sock}" useSpecialParser="off" parseHostname="on" ruleset="vigil")
input(type="imudp" address="127.0.0.1" port="{udp_port}" ruleset="vigil")
input(type="imtcp" address="127.0.0.1" port="{tcp_port}" ruleset="vigil")
*.* action(type="omfile" file="{internal}")
"#,
            work = work.display(),
            probe = probe.display(),
            out = out.display(),
            sock = sock.display(),
            internal = internal.display(),
        );
        let conf_path = root.join("rsyslog.conf");
        fs::write(&conf_path, conf).unwrap();
        let child = Command::new(RSYSLOGD)
            .arg("-n")
            .arg("-f")
            .arg(&conf_path)
            .arg("-i")
            .arg(root.join("rsyslogd.pid"))
            .stdin(Stdio::null())
            .stdout(fs::File::create(root.join("rsyslogd.stdout")).unwrap())
            .stderr(fs::File::create(root.join("rsyslogd.stderr")).unwrap())
            .process_group(0)
            .spawn()
            .map_err(|e| format!("spawn {RSYSLOGD}: {e}"))?;
        let mut r = Rsyslogd {
            child,
            dir,
            sock,
            udp_port,
            tcp_port,
            out,
        };
        // Readiness: one probe through each input lands in probe.log.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(st)) = r.child.try_wait() {
                return Err(format!("rsyslogd exited ({st:?}): {}", r.diagnostics()));
            }
            let seen = fs::read_to_string(&probe).unwrap_or_default();
            let need = ["probe-unix", "probe-udp", "probe-tcp"];
            if need
                .iter()
                .all(|p| seen.lines().any(|l| l.ends_with(&format!("|{p}"))))
            {
                break;
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "probes never arrived (probe.log {seen:?}): {}",
                    r.diagnostics()
                ));
            }
            if r.sock.exists() && !seen.contains("probe-unix") {
                if let Ok(s) = UnixDatagram::unbound() {
                    let _ = s.send_to(&probe_record("probe-unix"), &r.sock);
                }
            }
            if !seen.contains("probe-udp") {
                if let Ok(s) = UdpSocket::bind("127.0.0.1:0") {
                    let _ = s.send_to(&probe_record("probe-udp"), ("127.0.0.1", r.udp_port));
                }
            }
            if !seen.contains("probe-tcp") {
                if let Ok(mut s) = TcpStream::connect(("127.0.0.1", r.tcp_port)) {
                    let rec = probe_record("probe-tcp");
                    let _ = s.write_all(format!("{} ", rec.len()).as_bytes());
                    let _ = s.write_all(&rec);
                }
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Ok(r)
    }

    fn diagnostics(&self) -> String {
        let root = self.dir.path();
        format!(
            "rsyslogd stderr {:?}; internal.log {:?}",
            fs::read_to_string(root.join("rsyslogd.stderr")).unwrap_or_default(),
            fs::read_to_string(root.join("internal.log")).unwrap_or_default()
        )
    }

    fn lines(&self) -> Vec<String> {
        fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect()
    }

    /// Wait until `n` records were written, then a little longer (nothing
    /// else may come), and return them.
    fn wait_records(&self, n: usize, timeout: Duration) -> Vec<String> {
        let ok = wait_for(timeout, || self.lines().len() >= n);
        assert!(
            ok,
            "rsyslogd wrote {} of {n} records within {timeout:?}: {:?}; {}",
            self.lines().len(),
            self.lines(),
            self.diagnostics()
        );
        std::thread::sleep(Duration::from_millis(500));
        self.lines()
    }
}

impl Drop for Rsyslogd {
    fn drop(&mut self) {
        let pid = self.child.id() as i32;
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) | Err(_) => return,
                Ok(None) if Instant::now() >= deadline => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }
}

/// A record line as written by the `vigilfmt` template.
fn line(app: &str, stream: &str, msg: &str, pid: i32) -> String {
    let sev = if stream == "stdout" { 6 } else { 3 };
    // facility 1 = user, protocol version 1
    format!("{app}|{stream}|{sev}|1|1|{}|{pid}|{msg}", hostname())
}

/// stdout and stderr lines, including an empty line, inner and leading
/// spaces, and a final partial line (flushed as a record at exit).
const SCRIPT: &str = "echo one; echo 'two  spaced' >&2; printf 'a\\n\\n  indented\\nb b\\n'; \
                      echo 'err 2' >&2; printf tail";

fn check_script_records(got: &[String], app: &str, pid: i32) {
    let expected_stdout: Vec<String> = ["one", "a", "", "  indented", "b b", "tail"]
        .iter()
        .map(|m| line(app, "stdout", m, pid))
        .collect();
    let expected_stderr: Vec<String> = ["two  spaced", "err 2"]
        .iter()
        .map(|m| line(app, "stderr", m, pid))
        .collect();
    let stdout: Vec<String> = got
        .iter()
        .filter(|l| l.contains("|stdout|"))
        .cloned()
        .collect();
    let stderr: Vec<String> = got
        .iter()
        .filter(|l| l.contains("|stderr|"))
        .cloned()
        .collect();
    assert_eq!(
        got.len(),
        stdout.len() + stderr.len(),
        "records on neither stream: {got:#?}"
    );
    // Per stream: exactly these records, in order.
    assert_eq!(stdout, expected_stdout, "stdout records (all: {got:#?})");
    assert_eq!(stderr, expected_stderr, "stderr records (all: {got:#?})");
}

/// Run SCRIPT with `-l <spec>` and check what rsyslogd wrote.
fn run_script_through(test: &str, name: &str, spec: impl Fn(&Rsyslogd) -> String) {
    let rs = Rsyslogd::start(None);
    let mut c = Container::new(name, &["sh", "-c", SCRIPT]);
    c.log_specs = vec![spec(&rs)];
    let (_pid, code) = c.run_to_exit(T);
    assert_eq!(code, b"0", "{test}: exit status");
    c.wait_conmon_exit(T);
    let got = rs.wait_records(8, T);
    check_script_records(&got, name, c.conmon_pid());
}

#[test]
fn unix_socket_records_are_rfc5424_for_rsyslog() {
    if skip("unix_socket_records_are_rfc5424_for_rsyslog") {
        return;
    }
    run_script_through("unix", "rs-unix", |rs| {
        format!("syslog:unix:{}", rs.sock.display())
    });
}

#[test]
fn udp_records_are_rfc5424_for_rsyslog() {
    if skip("udp_records_are_rfc5424_for_rsyslog") {
        return;
    }
    run_script_through("udp", "rs-udp", |rs| {
        format!("syslog:udp:127.0.0.1:{}", rs.udp_port)
    });
}

#[test]
fn tcp_octet_counted_records_are_rfc5424_for_rsyslog() {
    if skip("tcp_octet_counted_records_are_rfc5424_for_rsyslog") {
        return;
    }
    run_script_through("tcp", "rs-tcp", |rs| {
        format!("syslog:tcp:127.0.0.1:{}", rs.tcp_port)
    });
}

#[test]
fn without_name_app_name_is_the_short_id() {
    if skip("without_name_app_name_is_the_short_id") {
        return;
    }
    let rs = Rsyslogd::start(None);
    let mut c = Container::new("rs-noname", &["sh", "-c", SCRIPT]);
    c.log_specs = vec![format!("syslog:tcp:127.0.0.1:{}", rs.tcp_port)];
    let args = args_without_option(&c.conmon_args(), "-n");
    let l = c.launch_with_args(args);
    l.expect_pid("data");
    c.start();
    assert_eq!(c.wait_exit_file(T), b"0");
    c.wait_conmon_exit(T);
    let got = rs.wait_records(8, T);
    check_script_records(&got, &c.id[..12], c.conmon_pid());
}

/// Many lines: none lost, order kept, over the two reliable transports.
fn many_lines_through(name: &str, spec: impl Fn(&Rsyslogd) -> String) {
    const N: usize = 5000;
    let rs = Rsyslogd::start(None);
    let mut c = Container::new(
        name,
        &[
            "sh",
            "-c",
            &format!("seq 1 {N} | sed 's/^/line /'; seq 1 100 | sed 's/^/err /' >&2"),
        ],
    );
    c.log_specs = vec![spec(&rs)];
    let (_pid, code) = c.run_to_exit(T);
    assert_eq!(code, b"0");
    c.wait_conmon_exit(T);
    let pid = c.conmon_pid();
    let got = rs.wait_records(N + 100, T);
    let stdout: Vec<String> = got
        .iter()
        .filter(|l| l.contains("|stdout|"))
        .cloned()
        .collect();
    let stderr: Vec<String> = got
        .iter()
        .filter(|l| l.contains("|stderr|"))
        .cloned()
        .collect();
    let exp_out: Vec<String> = (1..=N)
        .map(|i| line(name, "stdout", &format!("line {i}"), pid))
        .collect();
    let exp_err: Vec<String> = (1..=100)
        .map(|i| line(name, "stderr", &format!("err {i}"), pid))
        .collect();
    assert_eq!(got.len(), N + 100, "record count");
    assert!(
        stdout == exp_out,
        "stdout records differ; first few: {:?}",
        &stdout[..stdout.len().min(5)]
    );
    assert_eq!(stderr, exp_err);
}

#[test]
fn many_lines_over_tcp_none_lost_in_order() {
    if skip("many_lines_over_tcp_none_lost_in_order") {
        return;
    }
    many_lines_through("rs-many-tcp", |rs| {
        format!("syslog:tcp:127.0.0.1:{}", rs.tcp_port)
    });
}

#[test]
fn many_lines_over_unix_none_lost_in_order() {
    if skip("many_lines_over_unix_none_lost_in_order") {
        return;
    }
    many_lines_through("rs-many-unix", |rs| {
        format!("syslog:unix:{}", rs.sock.display())
    });
}

#[test]
fn long_line_arrives_in_pieces_that_fit_rsyslog_defaults() {
    if skip("long_line_arrives_in_pieces_that_fit_rsyslog_defaults") {
        return;
    }
    // Pieces of 7936 message bytes keep each whole record within rsyslog's
    // default maxMessageSize (8 KiB): nothing is truncated by the receiver.
    let rs = Rsyslogd::start(None);
    let mut c = Container::new(
        "rs-long",
        &[
            "sh",
            "-c",
            "head -c 20000 /dev/zero | tr '\\000' x; echo; echo after",
        ],
    );
    c.log_specs = vec![format!("syslog:unix:{}", rs.sock.display())];
    let (_pid, code) = c.run_to_exit(T);
    assert_eq!(code, b"0");
    c.wait_conmon_exit(T);
    let pid = c.conmon_pid();
    let got = rs.wait_records(4, T);
    let expected: Vec<String> = [7936, 7936, 20000 - 2 * 7936]
        .iter()
        .map(|&n| line("rs-long", "stdout", &"x".repeat(n), pid))
        .chain(std::iter::once(line("rs-long", "stdout", "after", pid)))
        .collect();
    assert!(
        got == expected,
        "pieces: {:?}",
        got.iter()
            .map(|l| (l.len(), l.chars().take(60).collect::<String>()))
            .collect::<Vec<_>>()
    );
}
