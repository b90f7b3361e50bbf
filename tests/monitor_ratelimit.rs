//! `--log-rate-limit BYTES_PER_SEC[:BURST]` (vigil extension) under a real
//! flood: a container writes 150 MiB in 1 MiB bursts every ~20 ms (about
//! 40-50 MiB/s for 3-4 s) with `--log-rate-limit 1048576` (burst = one
//! second's worth). Checked:
//! * the k8s log holds about burst + 1 MiB/s × elapsed of the output, never
//!   much more and never much less;
//! * the excess is reported by marker records on stderr
//!   (`vigil: log rate limit 1048576 B/s exceeded: N bytes dropped`, at most
//!   one per second plus one at exit) and logged + ΣN == everything written;
//! * an attach client connected before `runc start` receives every byte
//!   (and no marker: markers are for the logs only);
//! * the container is never blocked: its own wall time (read from
//!   /proc/uptime inside it) is about that of the same container without a
//!   rate limit.
//!
//! One test function on purpose: the two runs are timed against each other
//! and must not compete with sibling tests for the two CPUs.

mod common;

use common::*;
use std::fs;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(120);
const MIB: usize = 1024 * 1024;
/// Bursts of 1 MiB.
const BURSTS: usize = 150;
const TOTAL: usize = BURSTS * MIB;
const RATE: usize = MIB;

/// A 1023-character line body: 64 distinct characters, 16 times, less one.
fn line_body() -> String {
    let alphabet = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_";
    let mut s = alphabet.repeat(16);
    s.pop();
    s
}

/// The 1 MiB chunk the container writes BURSTS times: 1024 lines of 1024 bytes.
fn chunk() -> Vec<u8> {
    let mut line = line_body().into_bytes();
    line.push(b'\n');
    line.repeat(1024)
}

fn flood_script() -> String {
    format!(
        "yes '{body}' | head -c {MIB} > /tmp/chunk; \
         read t0 rest < /proc/uptime; \
         i=0; while [ $i -lt {BURSTS} ]; do cat /tmp/chunk; sleep 0.02; i=$((i+1)); done; \
         read t1 rest < /proc/uptime; \
         echo \"$t0 $t1\" > /out/times",
        body = line_body()
    )
}

/// What an attach client saw: stdout bytes checked against the repeated chunk.
struct Received {
    stdout: usize,
    /// Offset of the first stdout byte that differs from the expected stream.
    mismatch: Option<usize>,
    stderr: Vec<u8>,
    eof: bool,
}

/// Read the attach connection to EOF as fast as possible (one reused
/// buffer), comparing stdout with `chunk` repeated.
fn read_attach(client: AttachClient, chunk: Vec<u8>, timeout: Duration) -> Received {
    let fd = client.fd.as_raw_fd();
    let deadline = Instant::now() + timeout;
    let mut buf = vec![0u8; 16384];
    let mut r = Received {
        stdout: 0,
        mismatch: None,
        stderr: Vec::new(),
        eof: false,
    };
    loop {
        let now = Instant::now();
        if now >= deadline {
            return r;
        }
        let ms = (deadline - now).as_millis().min(1000) as i32;
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        let p = unsafe { libc::poll(&mut pfd, 1, ms.max(1)) };
        if p <= 0 {
            continue;
        }
        let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) | Some(libc::EAGAIN) => continue,
                Some(libc::ECONNRESET) => {
                    r.eof = true;
                    return r;
                }
                _ => panic!("recv on attach socket: {e}"),
            }
        }
        if n == 0 {
            r.eof = true;
            return r;
        }
        let pkt = &buf[..n as usize];
        assert!(pkt.len() <= 8193, "attach packet of {} bytes", pkt.len());
        match pkt[0] {
            2 => {
                let mut payload = &pkt[1..];
                while !payload.is_empty() {
                    let off = r.stdout % chunk.len();
                    let take = payload.len().min(chunk.len() - off);
                    if r.mismatch.is_none() && payload[..take] != chunk[off..off + take] {
                        let i = payload[..take]
                            .iter()
                            .zip(&chunk[off..])
                            .position(|(a, b)| a != b)
                            .unwrap();
                        r.mismatch = Some(r.stdout + i);
                    }
                    r.stdout += take;
                    payload = &payload[take..];
                }
            }
            3 => r.stderr.extend_from_slice(&pkt[1..]),
            id => panic!("attach packet with stream id {id}"),
        }
    }
}

struct Run {
    /// The container's own wall time for the flood (from /proc/uptime).
    ctr_elapsed: f64,
    /// `runc start` → exit file, seen from the test.
    host_elapsed: f64,
    attach: Received,
    /// The log's stdout stream, reassembled.
    stdout: Vec<u8>,
    /// The log's stderr records.
    stderr_records: Vec<Record>,
    conmon_stderr: String,
}

fn flood(name: &str, rate_limit: Option<&str>) -> Run {
    let out = tempdir("ratelimit-out");
    let mounts = [BindMount {
        source: out.path().to_path_buf(),
        destination: "/out".into(),
        readonly: false,
    }];
    let mut c = Container::with_mounts(name, &["sh", "-c", &flood_script()], &mounts);
    // No debug chatter from the monitor while timing.
    c.log_level = "info".into();
    if let Some(r) = rate_limit {
        c.extra_args = vec!["--log-rate-limit".into(), r.into()];
    }
    let l = c.launch();
    l.expect_pid("data");
    let client = AttachClient::connect_or_panic(&c.attach_path());
    let expected_chunk = chunk();
    let reader = std::thread::spawn(move || read_attach(client, expected_chunk, T));
    let t0 = Instant::now();
    c.start();
    assert_eq!(c.wait_exit_file(T), b"0", "{name}: exit status");
    let host_elapsed = t0.elapsed().as_secs_f64();
    c.wait_conmon_exit(T);
    let attach = reader.join().unwrap();
    let times =
        fs::read_to_string(out.path().join("times")).expect("/out/times written by the container");
    let v: Vec<f64> = times
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect();
    assert_eq!(v.len(), 2, "times {times:?}");
    let (stdout, stderr_records) = split_log(&c.read_log());
    Run {
        ctr_elapsed: v[1] - v[0],
        host_elapsed,
        attach,
        stdout,
        stderr_records,
        conmon_stderr: c.conmon_stderr(),
    }
}

/// A k8s-file log split into its reassembled stdout stream and its stderr
/// records.
fn split_log(data: &[u8]) -> (Vec<u8>, Vec<Record>) {
    let records = parse_k8s_log_fast(data);
    let stdout = reconstruct(&records, "stdout");
    (
        stdout,
        records
            .into_iter()
            .filter(|r| r.stream == "stderr")
            .collect(),
    )
}

/// Seconds since midnight of a k8s timestamp (`YYYY-MM-DDTHH:MM:SS.nnnnnnnnn+hh:mm`).
fn seconds_of_day(ts: &str) -> f64 {
    let h: f64 = ts[11..13].parse().unwrap();
    let m: f64 = ts[14..16].parse().unwrap();
    let s: f64 = ts[17..29].parse().unwrap();
    h * 3600.0 + m * 60.0 + s
}

fn check_attach(run: &Run, what: &str) {
    let a = &run.attach;
    assert!(
        a.eof,
        "{what}: attach connection not closed ({} stdout bytes so far)",
        a.stdout
    );
    assert_eq!(a.stdout, TOTAL, "{what}: the attach client gets every byte");
    assert_eq!(
        a.mismatch, None,
        "{what}: attach stdout differs from what was written"
    );
    assert_eq!(
        show(&a.stderr),
        show(b""),
        "{what}: nothing on the attach stderr stream (markers are log-only)"
    );
}

#[test]
fn rate_limit_bounds_the_log_reports_drops_and_never_blocks_the_container() {
    if skip_without_runtime(
        "rate_limit_bounds_the_log_reports_drops_and_never_blocks_the_container",
    ) {
        return;
    }
    // Reference: the same flood without a limit (everything logged).
    let free = flood("ratelimit-free", None);
    eprintln!(
        "[ratelimit] unlimited: container {:.2}s, host {:.2}s",
        free.ctr_elapsed, free.host_elapsed
    );
    check_attach(&free, "unlimited");
    assert_eq!(free.stderr_records, vec![], "unlimited: no stderr record");
    let all = &free.stdout;
    assert_eq!(all.len(), TOTAL, "unlimited: the log holds everything");
    assert!(*all == chunk().repeat(BURSTS), "unlimited: log content");

    let lim = flood("ratelimit-1m", Some("1048576"));
    let elapsed = lim.ctr_elapsed;
    eprintln!(
        "[ratelimit] limited: container {:.2}s, host {:.2}s",
        elapsed, lim.host_elapsed
    );
    check_attach(&lim, "limited");

    // The flood really was a flood: well over the rate for over 2 s.
    assert!(elapsed > 2.0, "the flood took only {elapsed:.2}s");
    assert!(
        TOTAL as f64 / elapsed > 20.0 * MIB as f64,
        "container wrote only {:.1} MiB/s",
        TOTAL as f64 / elapsed / MIB as f64
    );

    // Never blocked: about as fast as without a limit.
    assert!(
        elapsed <= 2.0 * free.ctr_elapsed + 1.0,
        "limited container took {elapsed:.2}s, unlimited {:.2}s",
        free.ctr_elapsed
    );

    // Markers: stderr records only, exact text, each F.
    let marker =
        regex::Regex::new(r"^vigil: log rate limit 1048576 B/s exceeded: (\d+) bytes dropped$")
            .unwrap();
    let mut dropped = 0usize;
    let mut marker_times = Vec::new();
    for r in &lim.stderr_records {
        let text = String::from_utf8_lossy(&r.content);
        let caps = marker
            .captures(&text)
            .unwrap_or_else(|| panic!("unexpected stderr record {text:?}"));
        assert_eq!(r.tag, 'F', "marker record {text:?}");
        let n: usize = caps[1].parse().unwrap();
        assert!(n > 0, "marker with 0 bytes dropped");
        dropped += n;
        marker_times.push(seconds_of_day(&r.timestamp));
    }
    // At most one per second while dropping, plus the one at exit.
    assert!(
        marker_times.len() >= 2,
        "markers: {} (expected one per second and one at exit)",
        marker_times.len()
    );
    assert!(
        marker_times.len() as f64 <= lim.host_elapsed + 2.0,
        "{} markers in {:.2}s",
        marker_times.len(),
        lim.host_elapsed
    );
    for w in marker_times[..marker_times.len() - 1].windows(2) {
        let gap = w[1] - w[0];
        assert!(
            gap >= 0.99 || gap < -43000.0,
            "markers {gap:.3}s apart: {marker_times:?}"
        );
    }

    let logged_bytes = &lim.stdout;
    let logged = logged_bytes.len();
    assert_eq!(
        logged + dropped,
        TOTAL,
        "logged {logged} + dropped {dropped} must add up to everything written"
    );
    let alphabet = line_body();
    assert!(
        logged_bytes
            .iter()
            .all(|&b| b == b'\n' || alphabet.as_bytes().contains(&b)),
        "logged bytes that were never written"
    );

    // burst (1 MiB) + 1 MiB/s while the container wrote.
    let upper = 1.5 * (RATE as f64 + RATE as f64 * lim.host_elapsed);
    let lower = RATE as f64 + 0.5 * RATE as f64 * elapsed;
    eprintln!(
        "[ratelimit] logged {logged} bytes ({:.2} MiB), dropped {dropped}, {} markers; band [{:.2}, {:.2}] MiB",
        logged as f64 / MIB as f64,
        marker_times.len(),
        lower / MIB as f64,
        upper / MIB as f64
    );
    assert!(
        (logged as f64) <= upper,
        "logged {logged} bytes in {:.2}s: over the limit (max {upper:.0})",
        lim.host_elapsed
    );
    assert!(
        (logged as f64) >= lower,
        "logged {logged} bytes in {elapsed:.2}s: far under the limit (min {lower:.0})"
    );
    assert!(
        !lim.conmon_stderr.contains("panicked"),
        "monitor stderr: {}",
        lim.conmon_stderr
    );
}
