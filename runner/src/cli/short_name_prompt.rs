//! The short-name selector Podman shows on a terminal when a short name
//! could come from several search registries:
//!
//! ```text
//! ? Please select an image:
//!   ▸ 127.0.0.1:5000/shortie:1
//!     127.0.0.1:5443/shortie:1
//! ```
//!
//! Up/down arrows (or `k`/`j`) move, Enter picks (`✔ NAME` replaces the
//! list), Ctrl-C or Ctrl-D cancels. Keys are read from stdin one byte at a
//! time (nothing is buffered that a container session would miss after),
//! with canonical mode, echo and signals off, restored on every way out.

use std::io::{self, IsTerminal, Write};
use std::os::fd::AsRawFd;

/// What a key press does.
enum Key {
    Up,
    Down,
    Pick,
    Cancel,
    Other,
}

/// The terminal's settings while the selector runs; restored on drop.
struct KeyMode {
    fd: i32,
    saved: libc::termios,
}

impl KeyMode {
    fn enter(fd: i32) -> Option<KeyMode> {
        // SAFETY: termios is plain data; tcgetattr fills it for a terminal.
        let mut saved: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: fd is the caller's stdin, checked to be a terminal.
        if unsafe { libc::tcgetattr(fd, &mut saved) } != 0 {
            return None;
        }
        let mut keys = saved;
        keys.c_lflag &= !(libc::ICANON | libc::ECHO | libc::ISIG);
        keys.c_cc[libc::VMIN] = 1;
        keys.c_cc[libc::VTIME] = 0;
        // SAFETY: a copy of the terminal's own settings, changed above.
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &keys) };
        Some(KeyMode { fd, saved })
    }
}

impl Drop for KeyMode {
    fn drop(&mut self) {
        // SAFETY: restoring the settings read in `enter`.
        unsafe { libc::tcsetattr(self.fd, libc::TCSANOW, &self.saved) };
    }
}

/// One byte from `fd`, unbuffered; `None` at end of input or on error.
fn read_byte(fd: i32) -> Option<u8> {
    let mut b = 0u8;
    loop {
        // SAFETY: reads at most one byte into a live local.
        let n = unsafe { libc::read(fd, (&mut b as *mut u8).cast(), 1) };
        match n {
            1 => return Some(b),
            -1 if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted => continue,
            _ => return None,
        }
    }
}

fn read_key(fd: i32) -> Key {
    match read_byte(fd) {
        None | Some(3) | Some(4) => Key::Cancel,
        Some(b'\r') | Some(b'\n') => Key::Pick,
        Some(b'k') => Key::Up,
        Some(b'j') => Key::Down,
        // ESC [ A / ESC O A (application cursor keys), B for down.
        Some(0x1b) => match read_byte(fd) {
            Some(b'[') | Some(b'O') => match read_byte(fd) {
                Some(b'A') => Key::Up,
                Some(b'B') => Key::Down,
                _ => Key::Other,
            },
            _ => Key::Other,
        },
        Some(_) => Key::Other,
    }
}

/// The question and the rows, with promptui's colours as Podman shows them
/// (blue `?`, bold `▸`, the current row underlined).
fn draw(out: &mut impl Write, names: &[String], at: usize) -> io::Result<()> {
    write!(
        out,
        "\x1b[2K\r\x1b[34m?\x1b[0m Please select an image: \r\n"
    )?;
    for (i, name) in names.iter().enumerate() {
        if i == at {
            write!(out, "\x1b[2K\r  \x1b[1m▸\x1b[0m \x1b[4m{name}\x1b[0m\r\n")?;
        } else {
            write!(out, "\x1b[2K\r    {name}\r\n")?;
        }
    }
    out.flush()
}

/// Asks which of `names` to pull (the index), as Podman's selector.
pub fn choose(names: &[String]) -> Result<usize, String> {
    let stdin = io::stdin();
    if names.is_empty() || !stdin.is_terminal() {
        return Err("short-name resolution enforced but cannot prompt without a TTY".into());
    }
    let fd = stdin.as_raw_fd();
    let mut out = io::stdout().lock();
    let _mode = KeyMode::enter(fd);
    let fail = |e: io::Error| format!("short-name selector: {e}");
    // The cursor hides while the list shows.
    write!(out, "\x1b[?25l").map_err(fail)?;
    let mut at = 0;
    draw(&mut out, names, at).map_err(fail)?;
    let lines = names.len() + 1;
    let outcome = loop {
        match read_key(fd) {
            Key::Up => at = at.checked_sub(1).unwrap_or(names.len() - 1),
            Key::Down => at = (at + 1) % names.len(),
            Key::Pick => break Ok(at),
            Key::Cancel => break Err("^C".to_string()),
            Key::Other => continue,
        }
        write!(out, "\x1b[{lines}A").map_err(fail)?;
        draw(&mut out, names, at).map_err(fail)?;
    };
    // The answer replaces the list; a cancel leaves the list as it was.
    if let Ok(i) = outcome {
        write!(out, "\x1b[{lines}A").map_err(fail)?;
        for _ in 0..lines {
            write!(out, "\x1b[2K\r\n").map_err(fail)?;
        }
        write!(out, "\x1b[{lines}A\r").map_err(fail)?;
        write!(out, "\x1b[32m✔\x1b[0m \x1b[2m{}\x1b[0m\r\n\x1b[J", names[i]).map_err(fail)?;
    }
    write!(out, "\x1b[?25h").map_err(fail)?;
    out.flush().map_err(fail)?;
    outcome
}
