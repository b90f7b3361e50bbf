//! The k8s-file driver: CRI log records appended to one file, with conmon's
//! size accounting, truncation and rotation (conmon-interface §7.2-7.5).
//!
//! Data path: a chunk is cut into pieces at `\n`; each record is assembled
//! into one fixed output buffer (timestamp formatted once per chunk) and the
//! buffer goes to the file in one `write` per chunk. Full lines take a
//! one-pass formatter (`k8s_records`) when no size limit can be reached within
//! the chunk; the rest goes record by record. Long pieces skip the copy and go
//! out with `writev`. Nothing is allocated per chunk or per line.

use super::k8s_records::{self, Prefix, Stop};
use crate::cli::Options;
use crate::diag::Fatal;
use crate::pagebuf::PageBuf;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use vigil::logfmt::k8s::{pieces, record_tag, Piece, RECORD_OVERHEAD};
use vigil::logfmt::timestamp::{TimestampCache, MAX_LEN};
use vigil::proto::attach::Stream;

/// Output buffer size; one chunk's records usually fit in one write (a
/// 256 KiB read of 100-byte lines makes ~370 KiB of records).
const OUT_CAP: usize = 448 * 1024;
/// The longest record content: a longer line is cut into `P` records of this
/// size (vigil's documented 64 KiB, conmon's is its 8 KiB read size),
/// independent of how much is read at once.
pub const MAX_RECORD: usize = 64 * 1024;
/// Pieces this long are written with writev instead of copied.
const DIRECT_MIN: usize = MAX_RECORD;
/// Room for a record's prefix and added newline.
const RECORD_SLACK: usize = MAX_LEN + 16;
/// conmon's read size: the largest record it writes.
const CONMON_READ_SIZE: usize = 8192;
/// The most a record is accounted per content byte: a one-byte partial
/// record is accounted 1 + 45 + 1 bytes.
const ACCOUNTED_PER_BYTE_MAX: u64 = RECORD_OVERHEAD + 2;

pub struct K8sFileLog {
    path: PathBuf,
    file: File,
    size_max: i64,
    global_size_max: i64,
    /// Accounted bytes in the current file (starts at its size).
    bytes: u64,
    /// Accounted bytes over the monitor's life (never reset).
    global_bytes: u64,
    rotate: bool,
    max_files: i32,
    out: PageBuf,
    ts: TimestampCache,
    /// Bytes of records lost since writing last failed (0: writing works).
    lost: u64,
    /// The last failed write stopped inside a record: terminate it first.
    torn: bool,
    /// The error that made writing fail.
    last_errno: i32,
}

impl std::fmt::Debug for K8sFileLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("K8sFileLog")
            .field("path", &self.path)
            .finish()
    }
}

fn open_options(append: bool) -> OpenOptions {
    let mut o = OpenOptions::new();
    o.write(true)
        .create(true)
        .mode(0o640)
        .custom_flags(libc::O_CLOEXEC);
    if append {
        o.append(true);
    }
    o
}

impl K8sFileLog {
    /// Open (create, append) the log at start-up.
    pub fn open(path: String, opts: &Options) -> Result<K8sFileLog, Fatal> {
        let path = PathBuf::from(path);
        let path = if path.is_absolute() {
            path
        } else {
            std::env::current_dir()
                .map(|d| d.join(&path))
                .unwrap_or(path)
        };
        let file = open_options(true)
            .open(&path)
            .map_err(|e| Fatal::from_io("Failed to open log file", &e))?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(K8sFileLog {
            path,
            file,
            size_max: opts.log_size_max,
            global_size_max: opts.log_global_size_max,
            bytes: size,
            global_bytes: size,
            rotate: opts.log_rotate,
            max_files: opts.log_max_files,
            out: PageBuf::new(OUT_CAP)
                .map_err(|e| Fatal::from_io("Failed to allocate the log buffer", &e))?,
            ts: TimestampCache::new(),
            lost: 0,
            torn: false,
            last_errno: 0,
        })
    }

    /// Write the records of one chunk.
    pub fn write_chunk(&mut self, stream: Stream, chunk: &[u8]) {
        self.write_chunk_with(stream, chunk, true);
    }

    /// `fast`: full lines may take the one-pass formatter (tests compare
    /// the two paths).
    fn write_chunk_with(&mut self, stream: Stream, chunk: &[u8], fast: bool) {
        let mut tsbuf = [0u8; MAX_LEN];
        let tslen = self.ts.format_now(&mut tsbuf);
        let ts = &tsbuf[..tslen];
        // With a global cap, records are at most conmon's 8 KiB read size, so
        // the cap is exceeded by at most one such record, as with conmon.
        let max_record = if self.global_size_max > 0 {
            CONMON_READ_SIZE
        } else {
            MAX_RECORD
        };
        // The one-pass formatter does no per-record limit checks: only when
        // no global cap applies and even a chunk of one-byte records (each
        // accounted at most 47 bytes) stays under the file's size limit.
        let unlimited = self.global_size_max <= 0
            && (self.size_max <= 0
                || self.bytes + ACCOUNTED_PER_BYTE_MAX * chunk.len() as u64
                    <= self.size_max as u64);
        let prefix = Prefix::new(ts, record_tag(stream, false)).filter(|_| fast && unlimited);
        let mut rest = chunk;
        while !rest.is_empty() {
            if let Some(prefix) = &prefix {
                let done = self.format_full_lines(rest, prefix, max_record);
                rest = &rest[done..];
                if rest.is_empty() {
                    break;
                }
            }
            // The general path, one piece: a line without its newline, one
            // to cut into several records, or everything without the fast path.
            let Some(whole) = pieces(rest).next() else {
                break;
            };
            rest = &rest[whole.bytes.len()..];
            if !self.write_piece(ts, stream, whole, max_record) {
                return self.flush();
            }
            if prefix.is_none() {
                // Stay on the general path: its loop, without re-checking.
                for whole in pieces(rest) {
                    if !self.write_piece(ts, stream, whole, max_record) {
                        return self.flush();
                    }
                }
                break;
            }
        }
        self.flush();
    }

    /// Records for the full lines at the start of `input` (one pass, see
    /// `k8s_records`); returns the input bytes done.
    fn format_full_lines(&mut self, input: &[u8], prefix: &Prefix, max_record: usize) -> usize {
        let mut done = 0;
        loop {
            let f = k8s_records::format_full_lines(
                &input[done..],
                self.out.spare(),
                prefix,
                max_record,
            );
            self.out.advance(f.written);
            let accounted = f.consumed as u64 + RECORD_OVERHEAD * f.records as u64;
            self.bytes += accounted;
            self.global_bytes += accounted;
            done += f.consumed;
            match f.stop {
                Stop::OutOfRoom if f.records > 0 || !self.out.is_empty() => self.flush(),
                // An empty buffer always has room for a record; if not, the
                // general path takes over.
                Stop::OutOfRoom | Stop::End | Stop::Slow => return done,
            }
        }
    }

    /// Cut one piece into records of at most `max_record` bytes and buffer
    /// them; false once the global cap is reached.
    fn write_piece(
        &mut self,
        ts: &[u8],
        stream: Stream,
        whole: Piece<'_>,
        max_record: usize,
    ) -> bool {
        let mut rest = whole.bytes;
        while !rest.is_empty() {
            let (bytes, tail) = rest.split_at(rest.len().min(max_record));
            rest = tail;
            let piece = Piece {
                bytes,
                partial: whole.partial || !rest.is_empty(),
            };
            if !self.write_record(ts, stream, piece) {
                return false;
            }
        }
        true
    }

    /// Account for and buffer one record; false once the global cap is reached.
    fn write_record(&mut self, ts: &[u8], stream: Stream, piece: Piece<'_>) -> bool {
        let rec = piece.accounted_len();
        if self.global_size_max > 0 && self.global_bytes >= self.global_size_max as u64 {
            return false;
        }
        if self.size_max > 0 && self.bytes + rec > self.size_max as u64 {
            self.flush();
            self.reopen();
        }
        if piece.bytes.len() >= DIRECT_MIN {
            self.flush();
            self.write_direct(ts, stream, piece);
        } else {
            if self.out.len() + piece.bytes.len() + RECORD_SLACK > self.out.capacity() {
                self.flush();
            }
            self.out.extend_from_slice(ts);
            self.out
                .extend_from_slice(record_tag(stream, piece.partial));
            self.out.extend_from_slice(piece.bytes);
            if piece.partial {
                self.out.push(b'\n');
            }
        }
        self.bytes += rec;
        self.global_bytes += rec;
        true
    }

    fn write_direct(&mut self, ts: &[u8], stream: Stream, piece: Piece<'_>) {
        let tag = record_tag(stream, piece.partial);
        let nl: &[u8] = if piece.partial { b"\n" } else { b"" };
        let parts = [ts, tag, piece.bytes, nl];
        let total: usize = parts.iter().map(|p| p.len()).sum();
        let res = writev_all(&self.file, &parts);
        self.note_result(res, total);
    }

    /// Write out buffered records.
    pub fn flush(&mut self) {
        if self.out.is_empty() {
            return;
        }
        let total = self.out.len();
        let res = write_counted(self.file.as_raw_fd(), self.out.filled());
        self.out.clear();
        self.note_result(res, total);
    }

    /// Track write failures (disk full, I/O errors): the first one is
    /// reported in the monitor's log; when writing works again, a marker
    /// record in the container log says how much was lost.
    fn note_result(&mut self, res: Result<(), (usize, io::Error)>, total: usize) {
        match res {
            Ok(()) => {
                if self.lost > 0 {
                    self.write_loss_marker();
                }
            }
            Err((written, e)) => {
                let errno = e.raw_os_error().unwrap_or(libc::EIO);
                if self.lost == 0 {
                    crate::warn_errno!(
                        errno,
                        "Failed to write to log file {}; log output is being lost",
                        self.path.display()
                    );
                }
                self.last_errno = errno;
                self.lost += (total - written.min(total)) as u64;
                self.torn |= written > 0;
                if self.lost == 0 {
                    self.lost = 1;
                }
            }
        }
    }

    fn write_loss_marker(&mut self) {
        let mut tsbuf = [0u8; MAX_LEN];
        let n = self.ts.format_now(&mut tsbuf);
        let text = format!(
            "{}{} stderr F vigil: log write failed ({}); {} bytes of log records lost\n",
            if self.torn { "\n" } else { "" },
            String::from_utf8_lossy(&tsbuf[..n]),
            crate::diag::strerror(self.last_errno),
            self.lost
        );
        if write_counted(self.file.as_raw_fd(), text.as_bytes()).is_ok() {
            crate::warn!(
                "Writing to log file {} works again; {} bytes were lost",
                self.path.display(),
                self.lost
            );
            self.lost = 0;
            self.torn = false;
        }
    }

    /// Idle: return the output buffer's pages.
    pub fn release_memory(&mut self) {
        self.out.release();
    }

    pub fn sync(&mut self) {
        if let Err(e) = self.file.sync_all() {
            crate::warn!(
                "Failed to sync log file before exit: {}",
                crate::diag::strerror(e.raw_os_error().unwrap_or(0))
            );
        }
    }

    /// Truncate or rotate, as configured (size limit reached or ctl type 2).
    pub fn reopen(&mut self) {
        self.flush();
        let res = if self.rotate {
            self.rotate_files()
        } else {
            self.truncate()
        };
        match res {
            Ok(file) => {
                self.file = file;
                self.bytes = 0;
            }
            Err(msg) => crate::warn!("{msg}"),
        }
    }

    /// Replace the log with an empty file (`<path>.tmp` renamed over it).
    fn truncate(&self) -> Result<File, String> {
        let mut tmp = self.path.clone().into_os_string();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let file = open_options(false).truncate(true).open(&tmp).map_err(|e| {
            format!(
                "Failed to open log file {}: {}",
                self.path.display(),
                errtext(&e)
            )
        })?;
        std::fs::rename(&tmp, &self.path)
            .map_err(|e| format!("Failed to rename log file: {}", errtext(&e)))?;
        Ok(file)
    }

    /// Rotate: `<path>` becomes `<path>.1`, older backups shift up, at most
    /// `--log-max-files` backups are kept.
    fn rotate_files(&self) -> Result<File, String> {
        let p = self.path.as_os_str().as_bytes();
        if p.windows(3).any(|w| w == b"../") || p.windows(3).any(|w| w == b"/..") {
            return Err("Cannot rotate: invalid log path".into());
        }
        match std::fs::symlink_metadata(&self.path) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err("Cannot rotate: invalid log path".into())
            }
            Ok(m) => {
                let cur = self.file.metadata().map_err(|e| {
                    format!(
                        "File descriptor security validation failed: {}",
                        errtext(&e)
                    )
                })?;
                if cur.dev() != m.dev() || cur.ino() != m.ino() {
                    return Err("File descriptor security validation failed".into());
                }
            }
            Err(e) => return Err(format!("Cannot rotate: invalid log path: {}", errtext(&e))),
        }
        let _lock = FileLock::try_new(&self.file)
            .ok_or("Log file locked by another process, skipping rotation")?;
        let new_path = with_suffix(&self.path, "new");
        let file = open_options(false)
            .create_new(true)
            .open(&new_path)
            .map_err(|e| format!("Failed to create new log file: {}", errtext(&e)))?;
        let n = self.max_files.max(1);
        for i in (2..=n).rev() {
            let from = with_suffix(&self.path, &(i - 1).to_string());
            let to = with_suffix(&self.path, &i.to_string());
            if let Err(e) = std::fs::rename(&from, &to) {
                if e.kind() != io::ErrorKind::NotFound {
                    crate::warn!("Failed to rename {}: {}", from.display(), errtext(&e));
                }
            }
        }
        let first = with_suffix(&self.path, "1");
        std::fs::rename(&self.path, &first).map_err(|e| {
            let _ = std::fs::remove_file(&new_path);
            format!("Failed to rename log file: {}", errtext(&e))
        })?;
        std::fs::rename(&new_path, &self.path)
            .map_err(|e| format!("Failed to rename new log file: {}", errtext(&e)))?;
        Ok(file)
    }
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(".");
    s.push(suffix);
    PathBuf::from(s)
}

fn errtext(e: &io::Error) -> String {
    crate::diag::strerror(e.raw_os_error().unwrap_or(libc::EIO))
}

/// A POSIX write lock on the current log file, released on drop.
struct FileLock<'a>(&'a File);

impl<'a> FileLock<'a> {
    fn try_new(file: &'a File) -> Option<FileLock<'a>> {
        set_lock(file, libc::F_WRLCK as libc::c_short).then_some(FileLock(file))
    }
}

impl Drop for FileLock<'_> {
    fn drop(&mut self) {
        set_lock(self.0, libc::F_UNLCK as libc::c_short);
    }
}

fn set_lock(file: &File, ty: libc::c_short) -> bool {
    // SAFETY: an all-zero flock is valid; we set the fields we need.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = ty;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    // SAFETY: valid fd and flock pointer.
    unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETLK, &fl) == 0 }
}

/// Write all of `buf`; on failure also say how many bytes did get written.
fn write_counted(fd: i32, buf: &[u8]) -> Result<(), (usize, io::Error)> {
    let mut done = 0;
    while done < buf.len() {
        // SAFETY: the range is inside buf.
        let n = unsafe { libc::write(fd, buf[done..].as_ptr().cast(), buf.len() - done) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err((done, e));
        }
        if n == 0 {
            return Err((done, io::Error::from_raw_os_error(libc::ENOSPC)));
        }
        done += n as usize;
    }
    Ok(())
}

/// `writev` until every part is written; on failure, how many bytes were.
fn writev_all(file: &File, parts: &[&[u8]; 4]) -> Result<(), (usize, io::Error)> {
    let mut iov: [libc::iovec; 4] = parts.map(|p| libc::iovec {
        iov_base: p.as_ptr() as *mut libc::c_void,
        iov_len: p.len(),
    });
    let mut first = 0;
    let mut done = 0;
    while first < iov.len() {
        // SAFETY: iov[first..] describes live slices borrowed for this call.
        let n = unsafe {
            libc::writev(
                file.as_raw_fd(),
                iov[first..].as_ptr(),
                (iov.len() - first) as libc::c_int,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err((done, e));
        }
        done += n as usize;
        let mut n = n as usize;
        while first < iov.len() && n >= iov[first].iov_len {
            n -= iov[first].iov_len;
            first += 1;
        }
        if first < iov.len() && n > 0 {
            // SAFETY: advancing within the same slice.
            iov[first].iov_base = unsafe { (iov[first].iov_base as *mut u8).add(n) }.cast();
            iov[first].iov_len -= n;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_path(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("vigil-k8s-{}-{name}", std::process::id()))
    }

    /// The records of a log file with their timestamps cut off (the two
    /// paths run at different times).
    fn records(path: &Path) -> Vec<Vec<u8>> {
        let data = std::fs::read(path).unwrap();
        data.split_inclusive(|&b| b == b'\n')
            .map(|r| {
                let sp = r.iter().position(|&b| b == b' ').unwrap();
                r[sp..].to_vec()
            })
            .collect()
    }

    /// Chunks of lines of many lengths (empty, around 16 and 64 KiB), some
    /// without their newline, on both streams.
    fn chunks() -> Vec<(Stream, Vec<u8>)> {
        let mut out = Vec::new();
        let mut seed = 7u32;
        let mut next = |m: u32| {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (seed >> 8) % m
        };
        for c in 0..200 {
            let mut chunk = Vec::new();
            for _ in 0..next(40) {
                let len = match next(10) {
                    0 => 0,
                    1 => 64 * 1024 - 2 + next(4) as usize,
                    2 => 140_000,
                    _ => next(300) as usize,
                };
                chunk.extend((0..len).map(|k| b'a' + (k % 26) as u8));
                chunk.push(b'\n');
            }
            if next(3) == 0 {
                chunk.extend(std::iter::repeat_n(b'p', next(100) as usize));
            }
            let stream = if c % 5 == 0 {
                Stream::Stderr
            } else {
                Stream::Stdout
            };
            out.push((stream, chunk));
        }
        out
    }

    fn write_all(name: &str, opts: &Options, fast: bool) -> (PathBuf, u64, u64) {
        let path = temp_path(name);
        let _ = std::fs::remove_file(&path);
        let mut log = K8sFileLog::open(path.to_string_lossy().into_owned(), opts).unwrap();
        for (stream, chunk) in chunks() {
            log.write_chunk_with(stream, &chunk, fast);
        }
        log.flush();
        (path, log.bytes, log.global_bytes)
    }

    fn compare(opts: &Options, name: &str) {
        let (fast, fb, fg) = write_all(&format!("{name}-fast"), opts, true);
        let (slow, sb, sg) = write_all(&format!("{name}-slow"), opts, false);
        let (f, s) = (records(&fast), records(&slow));
        assert!(!f.is_empty());
        assert_eq!(f.len(), s.len());
        assert!(f == s, "the two paths wrote different records");
        assert_eq!((fb, fg), (sb, sg), "size accounting differs");
        let _ = std::fs::remove_file(fast);
        let _ = std::fs::remove_file(slow);
    }

    #[test]
    fn one_pass_formatter_writes_what_the_general_path_writes() {
        compare(&Options::default(), "plain");
    }

    #[test]
    fn same_records_with_a_size_limit_that_truncates() {
        let opts = Options {
            log_size_max: 300_000,
            ..Options::default()
        };
        compare(&opts, "limit");
    }
}
