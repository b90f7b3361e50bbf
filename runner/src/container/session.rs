//! An attached session: container output to our stdout/stderr, our stdin to
//! the container, terminal raw mode and resizes, detach keys, signal proxying.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::termios::{self, SetArg, Termios};
use nix::unistd;
use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGWINCH};
use signal_hook::iterator::Signals;
use vigil::client::{self, Attach, AttachWriter, Ctl};
use vigil::proto::attach::Stream;

use super::lifecycle::Engine;
use super::record::Record;
use super::runtime::Runtime;
use crate::error::RunnerError;

/// Podman's default detach keys: ctrl-p, ctrl-q.
pub const DEFAULT_DETACH_KEYS: [u8; 2] = [0x10, 0x11];

/// How a session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionEnd {
    /// The monitor closed the attach socket: the process exited.
    Exited,
    /// The user typed the detach keys.
    Detached,
    /// Our stdout (or stderr) went away (`vigil attach X | head -1`): the
    /// session ends quietly, the container keeps running.
    OutputClosed,
}

/// What the session relays.
pub struct SessionOptions {
    /// Forward our stdin.
    pub stdin: bool,
    /// The process has a terminal: raw mode and resizes.
    pub tty: bool,
    /// Honoured on stdin with or without a terminal, like Podman; empty disables.
    pub detach_keys: Vec<u8>,
    /// Forward signals we receive to this container.
    pub sig_proxy: Option<(Runtime, String)>,
}

/// Parse `--detach-keys` (`ctrl-p,ctrl-q`, `a,ctrl-@`); empty disables.
pub fn parse_detach_keys(spec: Option<&str>) -> Result<Vec<u8>, RunnerError> {
    let Some(spec) = spec else {
        return Ok(DEFAULT_DETACH_KEYS.to_vec());
    };
    if spec.is_empty() {
        return Ok(Vec::new());
    }
    spec.split(',')
        .map(|k| {
            let bad = || RunnerError::Engine(format!("invalid detach keys {spec:?}"));
            match k.strip_prefix("ctrl-") {
                Some(c) if c.len() == 1 => {
                    let b = c.as_bytes()[0].to_ascii_lowercase();
                    match b {
                        b'a'..=b'z' => Ok(b - b'a' + 1),
                        b'@' => Ok(0),
                        b'[' => Ok(27),
                        b'\\' => Ok(28),
                        b']' => Ok(29),
                        b'^' => Ok(30),
                        b'_' => Ok(31),
                        _ => Err(bad()),
                    }
                }
                None if k.len() == 1 => Ok(k.as_bytes()[0]),
                _ => Err(bad()),
            }
        })
        .collect()
}

/// Signals forwarded with sig-proxy. As with Podman 4.3.1's `--sig-proxy`
/// (checked: `timeout 3 podman attach C`), a SIGTERM to vigil itself goes to
/// the container and does not end the session: it ends when the container
/// exits (a container ignoring the signal keeps the session going).
const PROXIED: [libc::c_int; 6] = [SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2];

/// Our terminal in raw mode until dropped.
struct RawMode(Option<Termios>);

impl RawMode {
    fn enable() -> RawMode {
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            return RawMode(None);
        }
        let Ok(saved) = termios::tcgetattr(&stdin) else {
            return RawMode(None);
        };
        // Like Podman: no output processing either, so the container's
        // terminal output ("\r\n" from its ONLCR) reaches ours byte-exact.
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        let _ = termios::tcsetattr(&stdin, SetArg::TCSANOW, &raw);
        RawMode(Some(saved))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(saved) = &self.0 {
            let _ = termios::tcsetattr(std::io::stdin(), SetArg::TCSANOW, saved);
        }
    }
}

fn window_size() -> Option<(u16, u16)> {
    crate::spec::terminal_size().map(|(h, w)| (h.min(1000), w.min(1000)))
}

/// Relay until the monitor hangs up or the user detaches.
pub fn relay(
    attach: Attach,
    ctl: Option<Ctl>,
    opts: SessionOptions,
) -> Result<SessionEnd, RunnerError> {
    let err = |e: client::Error| RunnerError::Engine(e.to_string());
    let (mut attach, writer) = attach.split().map_err(err)?;
    let detached = Arc::new(AtomicBool::new(false));
    let _raw = if opts.tty {
        RawMode::enable()
    } else {
        RawMode(None)
    };
    // signal-hook's handlers note the signals; the loop below takes them
    // (`pending`) between reads, at most 100 ms later. Dropping `signals`
    // unregisters them; signal-hook's handler stays installed, so one of
    // these signals after the session is ignored, not fatal (as the session's
    // own handlers were before).
    let mut wanted = Vec::new();
    if ctl.is_some() {
        wanted.push(SIGWINCH);
    }
    if opts.sig_proxy.is_some() {
        wanted.extend(PROXIED);
    }
    let mut signals =
        Signals::new(&wanted).map_err(|e| RunnerError::io("installing signal handlers", e))?;
    if let (Some(ctl), Some((h, w))) = (&ctl, window_size()) {
        let _ = ctl.resize(h, w);
    }
    if opts.stdin {
        spawn_stdin(writer, opts.detach_keys.clone(), Arc::clone(&detached));
    } else {
        drop(writer);
    }
    let (mut out, mut errout) = (std::io::stdout(), std::io::stderr());
    loop {
        if detached.load(Ordering::SeqCst) {
            return Ok(SessionEnd::Detached);
        }
        // Each kind once, whatever number arrived (as signals coalesce).
        let mut pending: Vec<libc::c_int> = signals.pending().collect();
        pending.sort_unstable();
        pending.dedup();
        for sig in pending {
            if sig == SIGWINCH {
                if let (Some(ctl), Some((h, w))) = (&ctl, window_size()) {
                    let _ = ctl.resize(h, w);
                }
            } else if let Some((rt, id)) = &opts.sig_proxy {
                let _ = rt.kill(id, sig, false);
            }
        }
        match attach.recv_until(Some(Instant::now() + Duration::from_millis(100))) {
            Ok(Some((stream, bytes))) => {
                let written = match stream {
                    Stream::Stderr => errout.write_all(bytes),
                    _ => out.write_all(bytes).and_then(|_| out.flush()),
                };
                if written.is_err_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) {
                    return Ok(SessionEnd::OutputClosed);
                }
            }
            Ok(None) => return Ok(SessionEnd::Exited),
            Err(client::Error::Timeout(_)) => {}
            Err(e) => return Err(err(e)),
        }
    }
}

/// Finds the detach keys in what is typed, across reads. Bytes that may
/// start the sequence are held back until it is complete (detach: they are
/// never sent) or broken (they are sent, in order, with what follows).
#[derive(Debug, Default)]
pub struct DetachFilter {
    keys: Vec<u8>,
    held: usize,
}

impl DetachFilter {
    pub fn new(keys: Vec<u8>) -> DetachFilter {
        DetachFilter { keys, held: 0 }
    }

    /// What of `data` to forward, and whether the keys were completed (then
    /// nothing after them is forwarded).
    pub fn feed(&mut self, data: &[u8]) -> (Vec<u8>, bool) {
        if self.keys.is_empty() {
            return (data.to_vec(), false);
        }
        let mut out = Vec::with_capacity(data.len() + self.held);
        for &b in data {
            if b == self.keys[self.held] {
                self.held += 1;
                if self.held == self.keys.len() {
                    self.held = 0;
                    return (out, true);
                }
                continue;
            }
            out.extend_from_slice(&self.keys[..self.held]);
            self.held = 0;
            if b == self.keys[0] {
                self.held = 1;
            } else {
                out.push(b);
            }
        }
        (out, false)
    }

    /// At end of input: the held-back prefix, which is not a detach.
    pub fn flush(&mut self) -> Vec<u8> {
        let held = self.keys[..self.held].to_vec();
        self.held = 0;
        held
    }
}

fn spawn_stdin(writer: AttachWriter, keys: Vec<u8>, detached: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        let mut filter = DetachFilter::new(keys);
        loop {
            // Straight from fd 0: std's Stdin would buffer what is typed.
            let n = match unistd::read(std::io::stdin(), &mut buf) {
                Err(Errno::EINTR) => continue,
                Err(_) => 0,
                Ok(n) => n,
            };
            if n == 0 {
                let rest = filter.flush();
                if rest.is_empty() || writer.write_stdin(&rest).is_ok() {
                    let _ = writer.close_stdin();
                }
                return;
            }
            let (data, detach) = filter.feed(&buf[..n]);
            if !data.is_empty() && writer.write_stdin(&data).is_err() {
                return;
            }
            if detach {
                detached.store(true, Ordering::SeqCst);
                return;
            }
        }
    });
}

/// Start with the session attached, like Podman: attach first, then start,
/// so no output is missed.
pub fn start_attached(
    engine: &Engine<'_>,
    rec: &mut Record,
    stdin: bool,
    sig_proxy: bool,
    detach_keys: Vec<u8>,
) -> Result<i32, RunnerError> {
    let dir = engine.store.dir(&rec.id);
    let lock = engine.store.lock(&rec.id)?;
    engine.init(rec, false)?;
    let attach = if rec.log.driver == "passthrough" {
        None
    } else {
        Some(Attach::connect(&dir).map_err(|e| RunnerError::Engine(e.to_string()))?)
    };
    let ctl = if rec.config.tty {
        Ctl::open(&dir).ok()
    } else {
        None
    };
    engine.start(rec)?;
    drop(lock);
    if let Some(attach) = attach {
        let opts = SessionOptions {
            stdin: stdin && rec.config.stdin,
            tty: rec.config.tty,
            detach_keys,
            sig_proxy: if sig_proxy {
                Some((engine.runtime()?, rec.id.clone()))
            } else {
                None
            },
        };
        if relay(attach, ctl, opts)? != SessionEnd::Exited {
            return Ok(0);
        }
    }
    *rec = engine.wait_exit(&rec.id, None)?;
    Ok(rec.exit_code.unwrap_or(crate::error::exit_code::ENGINE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys_parse() {
        assert_eq!(parse_detach_keys(None).unwrap(), DEFAULT_DETACH_KEYS);
        assert_eq!(parse_detach_keys(Some("ctrl-a,x")).unwrap(), [1, b'x']);
        assert!(parse_detach_keys(Some("")).unwrap().is_empty());
        assert!(parse_detach_keys(Some("ctrl-")).is_err());
        assert!(parse_detach_keys(Some("abc")).is_err());
    }

    #[test]
    fn detach_keys_found_across_reads_and_partial_prefixes_forwarded() {
        let mut f = DetachFilter::new(vec![0x10, 0x11]);
        assert_eq!(f.feed(b"ab\x10"), (b"ab".to_vec(), false));
        assert_eq!(f.feed(b"c\x10"), (b"\x10c".to_vec(), false));
        assert_eq!(f.feed(b"\x10"), (b"\x10".to_vec(), false));
        assert_eq!(f.feed(b"\x11after"), (Vec::new(), true));
        assert_eq!(f.feed(b"\x10"), (Vec::new(), false));
        assert_eq!(f.flush(), b"\x10");
        let mut f = DetachFilter::new(vec![b'x']);
        assert_eq!(f.feed(b"abxc"), (b"ab".to_vec(), true));
        let mut f = DetachFilter::new(Vec::new());
        assert_eq!(f.feed(b"\x10\x11"), (b"\x10\x11".to_vec(), false));
        assert!(f.flush().is_empty());
    }
}
