//! An attached session: container output to our stdout/stderr, our stdin to
//! the container, terminal raw mode and resizes, detach keys, signal proxying.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use vigil::client::{self, Attach, AttachWriter, Ctl};
use vigil::proto::attach::Stream;

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
}

/// What the session relays.
pub struct SessionOptions {
    /// Forward our stdin.
    pub stdin: bool,
    /// The process has a terminal: raw mode, resizes, detach keys.
    pub tty: bool,
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
    // SAFETY: the handler only touches atomics (async-signal-safe).
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_signal as *const () as usize;
        sa.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(sig, &sa, std::ptr::null_mut());
    }
}

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
            libc::cfmakeraw(&mut t);
            t.c_oflag |= libc::OPOST | libc::ONLCR;
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
    // SAFETY: TIOCGWINSZ with a valid out-pointer.
    unsafe {
        let mut ws: libc::winsize = std::mem::zeroed();
        for fd in [0, 1] {
            if libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) == 0 && ws.ws_row > 0 {
                return Some((ws.ws_row.min(1000), ws.ws_col.min(1000)));
            }
        }
    }
    None
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
        let keys = if opts.tty {
            opts.detach_keys.clone()
        } else {
            Vec::new()
        };
        spawn_stdin(writer, keys, Arc::clone(&detached));
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
            Ok(Some((Stream::Stdout, bytes))) => {
                let _ = out.write_all(bytes).and_then(|_| out.flush());
            }
            Ok(Some((Stream::Stderr, bytes))) => {
                let _ = errout.write_all(bytes);
            }
            Ok(None) => return Ok(SessionEnd::Exited),
            Err(client::Error::Timeout(_)) => {}
            Err(e) => return Err(err(e)),
        }
    }
}

fn spawn_stdin(writer: AttachWriter, keys: Vec<u8>, detached: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        let mut matched = 0usize;
        loop {
            // SAFETY: reading into a valid buffer from fd 0.
            let n = unsafe { libc::read(0, buf.as_mut_ptr().cast(), buf.len()) };
            if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            if n <= 0 {
                let _ = writer.close_stdin();
                return;
            }
            let data = &buf[..n as usize];
            if !keys.is_empty() {
                for &b in data {
                    matched = if b == keys[matched] {
                        matched + 1
                    } else {
                        usize::from(b == keys[0])
                    };
                    if matched == keys.len() {
                        detached.store(true, Ordering::SeqCst);
                        return;
                    }
                }
            }
            if writer.write_stdin(data).is_err() {
                return;
            }
        }
    });
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
}
