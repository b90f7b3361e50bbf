//! Exit, oom and pid files: decimal digits without a newline, written atomically
//! (temp file `<name>.XXXXXX` in the same directory, then `rename`), mode
//! `0666 & ~umask`, exactly like conmon's `g_file_set_contents`.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Name of the exit file in `--persist-dir`.
pub const PERSIST_EXIT_FILE: &str = "exit";
/// Name of the OOM marker in `--persist-dir` and the bundle.
pub const OOM_FILE: &str = "oom";

/// Write `contents` to `path` atomically.
pub fn write_atomic(path: &Path, contents: &[u8]) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let mut seed = unique_seed();
    for _ in 0..100 {
        let mut tmp_name = name.to_os_string();
        tmp_name.push(".");
        tmp_name.push(suffix(&mut seed));
        let tmp: PathBuf = dir.join(tmp_name);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o666)
            .custom_flags(libc::O_CLOEXEC)
            .open(&tmp);
        let mut file = match file {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        };
        let res = file
            .write_all(contents)
            .and_then(|_| fs::rename(&tmp, path));
        if res.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        return res;
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        "no free temporary file name",
    ))
}

/// Write an exit status (`0`, `137`, `-1`, ...) as conmon does.
pub fn write_status(path: &Path, status: i32) -> io::Result<()> {
    write_atomic(path, status.to_string().as_bytes())
}

/// Parse an exit or pid file: optional surrounding whitespace, decimal integer.
pub fn parse_status(contents: &[u8]) -> Option<i32> {
    std::str::from_utf8(contents).ok()?.trim().parse().ok()
}

/// Read an exit file; `Ok(None)` if it does not exist yet.
pub fn read_status(path: &Path) -> io::Result<Option<i32>> {
    match fs::read(path) {
        Ok(c) => parse_status(&c)
            .map(Some)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "exit file is not a number")),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Poll for an exit file until `timeout`; `Ok(None)` on timeout.
pub fn wait_status(path: &Path, timeout: Duration) -> io::Result<Option<i32>> {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(s) = read_status(path)? {
            return Ok(Some(s));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

fn unique_seed() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    t ^ (u64::from(std::process::id()) << 32) ^ 0x9e37_79b9_7f4a_7c15
}

fn suffix(seed: &mut u64) -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    (0..6)
        .map(|_| {
            // xorshift64: enough to avoid collisions between concurrent writers.
            *seed ^= *seed << 13;
            *seed ^= *seed >> 7;
            *seed ^= *seed << 17;
            CHARS[(*seed % CHARS.len() as u64) as usize] as char
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn atomic_write_and_read() {
        let dir = std::env::temp_dir().join(format!("vigil-exit-test-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let p = dir.join("ctr");
        assert_eq!(read_status(&p).unwrap(), None);
        write_status(&p, 137).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"137");
        assert_eq!(read_status(&p).unwrap(), Some(137));
        write_status(&p, -1).unwrap();
        assert_eq!(
            wait_status(&p, Duration::from_millis(10)).unwrap(),
            Some(-1)
        );
        let mode = fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & 0o600, 0o600);
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1, "no temp file left");
        fs::remove_dir_all(&dir).unwrap();
        assert_eq!(parse_status(b" 42\n"), Some(42));
        assert_eq!(parse_status(b"x"), None);
    }
}
