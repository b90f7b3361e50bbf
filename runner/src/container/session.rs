//! An attached session: container output to our stdout/stderr, our stdin to
//! the container, terminal raw mode and resizes, detach keys, signal proxying.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

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

static SIGNALS: AtomicU64 = AtomicU64::new(0);
static WINCH: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(sig: libc::c_int) {
    if sig == libc::SIGWINCH {
        WINCH.store(true, Ordering::SeqCst);
    } else if (1..64).contains(&sig) {
        SIGNALS.fetch_or(1 << sig, Ordering::SeqCst);
    }
}

fn install(sig: libc::c_int) {
    crate::signals::set_handler(sig, on_signal);
}

/// Signals forwarded with sig-proxy. As with Podman 4.3.1's `--sig-proxy`
/// (checked: `timeout 3 podman attach C`), a SIGTERM to vigil itself goes to
/// the container and does not end the session: it ends when the container
/// exits (a container ignoring the signal keeps the session going).
const PROXIED: [libc::c_int; 6] = [
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
];

/// Our terminal in raw mode until dropped.
struct RawMode(Option<libc::termios>);

impl RawMode {
    fn enable() -> RawMode {
        // SAFETY: termios calls on fd 0 with valid out-pointers.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            if libc::isatty(0) != 1 || libc::tcgetattr(0, &mut t) != 0 {
                return RawMode(None);
            }
            let saved = t;
            // Like Podman: no output processing either, so the container's
            // terminal output ("\r\n" from its ONLCR) reaches ours byte-exact.
            libc::cfmakeraw(&mut t);
            libc::tcsetattr(0, libc::TCSANOW, &t);
            RawMode(Some(saved))
        }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(t) = self.0 {
            // SAFETY: restoring saved attributes on fd 0.
            unsafe { libc::tcsetattr(0, libc::TCSANOW, &t) };
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
    if let Some(ctl) = &ctl {
        install(libc::SIGWINCH);
        if let Some((h, w)) = window_size() {
            let _ = ctl.resize(h, w);
        }
    }
    if opts.sig_proxy.is_some() {
        PROXIED.iter().copied().for_each(install);
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
        if WINCH.swap(false, Ordering::SeqCst) {
            if let (Some(ctl), Some((h, w))) = (&ctl, window_size()) {
                let _ = ctl.resize(h, w);
            }
        }
        let pending = SIGNALS.swap(0, Ordering::SeqCst);
        if pending != 0 {
            if let Some((rt, id)) = &opts.sig_proxy {
                for sig in (1..64).filter(|s| pending & (1 << s) != 0) {
                    let _ = rt.kill(id, sig, false);
                }
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
            // SAFETY: reading into a valid buffer from fd 0.
            let n = unsafe { libc::read(0, buf.as_mut_ptr().cast(), buf.len()) };
            if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            if n <= 0 {
                let rest = filter.flush();
                if rest.is_empty() || writer.write_stdin(&rest).is_ok() {
                    let _ = writer.close_stdin();
                }
                return;
            }
            let (data, detach) = filter.feed(&buf[..n as usize]);
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
