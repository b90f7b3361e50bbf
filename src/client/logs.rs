//! [`LogReader`]: read a container's k8s-file log, including rotated files,
//! with `--tail`, `--since` and follow mode (shared/spec/conmon-interface.md §7.3-§7.4).

use std::collections::VecDeque;
use std::fs::{self, File};
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::error::{Error, Result};
use super::time::parse_rfc3339_nanos;
use crate::logfmt::k8s::{parse_record, LogLine, Reassembler};

/// What to read.
#[derive(Clone, Debug)]
pub struct LogReadOptions {
    /// Only the last N lines (of what exists when the reader opens).
    pub tail: Option<usize>,
    /// Only lines with a timestamp at or after this (Unix nanoseconds).
    pub since: Option<i128>,
    /// Keep reading as the log grows, is rotated or truncated, until the stop
    /// condition given to [`LogReader::set_stop`] holds.
    pub follow: bool,
    /// How often to look for growth in follow mode.
    pub poll_interval: Duration,
}

impl Default for LogReadOptions {
    fn default() -> Self {
        LogReadOptions {
            tail: None,
            since: None,
            follow: false,
            poll_interval: Duration::from_millis(100),
        }
    }
}

struct Current {
    reader: BufReader<File>,
    id: (u64, u64),
    /// This is the live log path (not a rotated backup).
    live: bool,
}

/// Reads lines (with `P` pieces joined) from `<path>.N` ... `<path>.1`, then `<path>`.
///
/// ```no_run
/// use vigil::client::{LogReadOptions, LogReader};
///
/// let opts = LogReadOptions { tail: Some(10), ..Default::default() };
/// for line in LogReader::open("/var/lib/ctr/ctr.log".as_ref(), opts)? {
///     let line = line?;
///     print!("{} {}", line.timestamp, String::from_utf8_lossy(&line.bytes));
/// }
/// # Ok::<(), vigil::client::Error>(())
/// ```
pub struct LogReader {
    path: PathBuf,
    opts: LogReadOptions,
    /// Files opened but not read yet, oldest first (the live one last).
    ready: VecDeque<Current>,
    /// The file read last: when the live file is looked for again, the
    /// rotated files newer than this one come first.
    last: Option<(u64, u64)>,
    cur: Option<Current>,
    carry: Vec<u8>,
    asm: Reassembler,
    last_ts: String,
    out: VecDeque<LogLine>,
    stop: Option<Box<dyn FnMut() -> bool + Send>>,
    done: bool,
}

impl LogReader {
    /// Open the log at `path` (a missing log reads as empty, or is waited for when following).
    pub fn open(path: &Path, opts: LogReadOptions) -> Result<LogReader> {
        // Opened now, not when first read: a rotation in between loses nothing.
        let ready: VecDeque<Current> = snapshot(path)?.into();
        let mut reader = LogReader {
            path: path.to_path_buf(),
            opts,
            ready,
            last: None,
            cur: None,
            carry: Vec::new(),
            asm: Reassembler::default(),
            last_ts: String::new(),
            out: VecDeque::new(),
            stop: None,
            done: false,
        };
        if let Some(n) = reader.opts.tail {
            while reader.fill()? {}
            if !reader.opts.follow {
                reader.flush_partials();
                reader.done = true;
            }
            while reader.out.len() > n {
                reader.out.pop_front();
            }
        }
        Ok(reader)
    }

    /// Follow mode ends once `stop` returns true and everything written so far was read.
    pub fn set_stop(&mut self, stop: impl FnMut() -> bool + Send + 'static) {
        self.stop = Some(Box::new(stop));
    }

    /// The next line; `None` at the end (or, following, once stopped).
    /// A partial last line is returned without its `\n` when reading ends.
    pub fn next_line(&mut self) -> Result<Option<LogLine>> {
        loop {
            if let Some(line) = self.out.pop_front() {
                return Ok(Some(line));
            }
            if self.done {
                return Ok(None);
            }
            if self.fill()? {
                continue;
            }
            if !self.opts.follow {
                self.finish();
                continue;
            }
            if self.switch_if_rotated()? {
                continue;
            }
            if self.stop.as_mut().is_some_and(|stop| stop()) {
                // One last pass: the writer may have finished just before.
                while self.fill()? || self.switch_if_rotated()? {}
                self.finish();
                continue;
            }
            std::thread::sleep(self.opts.poll_interval);
        }
    }

    fn finish(&mut self) {
        self.flush_partials();
        self.done = true;
    }

    fn flush_partials(&mut self) {
        let asm = std::mem::take(&mut self.asm);
        for (stream, bytes) in asm.finish() {
            if !bytes.is_empty() {
                let line = LogLine {
                    timestamp: self.last_ts.clone(),
                    stream,
                    bytes,
                };
                self.emit(line);
            }
        }
    }

    fn emit(&mut self, line: LogLine) {
        if let Some(since) = self.opts.since {
            if parse_rfc3339_nanos(&line.timestamp).is_some_and(|t| t < since) {
                return;
            }
        }
        self.out.push_back(line);
    }

    /// Read one record; `Ok(false)` at the end of the live file.
    fn fill(&mut self) -> Result<bool> {
        if self.cur.is_none() && !self.open_next()? {
            return Ok(false);
        }
        let Some(cur) = self.cur.as_mut() else {
            return Ok(false);
        };
        let mut line = std::mem::take(&mut self.carry);
        let n = cur
            .reader
            .read_until(b'\n', &mut line)
            .map_err(|e| Error::io(format!("reading {}", self.path.display()), e))?;
        if line.last() != Some(&b'\n') {
            // End of file, maybe in the middle of a record being written.
            self.carry = line;
            if n > 0 {
                return Ok(true);
            }
            if cur.live {
                self.check_truncation()?;
                return Ok(false);
            }
            self.carry.clear();
            self.cur = None;
            return Ok(true);
        }
        line.pop();
        if let Ok(rec) = parse_record(&line) {
            self.last_ts = String::from_utf8_lossy(rec.timestamp).into_owned();
            if let Some(done) = self.asm.push(&rec) {
                self.emit(done);
            }
        }
        Ok(true)
    }

    /// Open the next file: the next one already opened or, once those are
    /// read, the files rotated after the last one read and the live one.
    /// `Ok(false)` if there is none (the live file is missing).
    fn open_next(&mut self) -> Result<bool> {
        if self.ready.is_empty() {
            let mut files = snapshot(&self.path)?;
            let live = match files.last() {
                Some(c) if c.live => files.pop(),
                _ => None,
            };
            match self.last {
                None => self.ready.extend(files),
                Some(old) => {
                    if let Some(i) = files.iter().position(|c| c.id == old) {
                        self.ready.extend(files.split_off(i + 1));
                    }
                }
            }
            self.ready.extend(live);
        }
        let Some(cur) = self.ready.pop_front() else {
            return Ok(false);
        };
        self.last = Some(cur.id);
        self.cur = Some(cur);
        Ok(true)
    }

    /// Truncated in place (copytruncate): start over from the beginning.
    fn check_truncation(&mut self) -> Result<()> {
        let Some(cur) = self.cur.as_mut() else {
            return Ok(());
        };
        let file = cur.reader.get_mut();
        let pos = file
            .stream_position()
            .map_err(|e| Error::io("log position", e))?;
        let len = file.metadata().map(|m| m.len()).unwrap_or(pos);
        if len < pos {
            cur.reader
                .seek(SeekFrom::Start(0))
                .map_err(|e| Error::io("rewinding the log", e))?;
            self.carry.clear();
        }
        Ok(())
    }

    /// The live path now names another file (rotation or truncate-by-rename):
    /// read the old one to its end (the writer may have added to it after we
    /// last reached its end, just before renaming it), then continue with the
    /// files rotated after it (several rotations may have happened since we
    /// last looked) and the new live file.
    fn switch_if_rotated(&mut self) -> Result<bool> {
        let Ok(meta) = fs::metadata(&self.path) else {
            return Ok(false);
        };
        let id = (meta.dev(), meta.ino());
        match &mut self.cur {
            Some(cur) if cur.id == id => return Ok(false),
            Some(cur) => cur.live = false,
            None => {}
        }
        // Not live any more: fill() reads it to its end, then drops it.
        while self.cur.is_some() {
            self.fill()?;
        }
        self.open_next()
    }
}

/// `<path>.N` ... `<path>.1` and `<path>` that exist, opened, oldest first,
/// as one consistent snapshot: listed again (a bounded number of times) if a
/// name changed while they were being opened.
fn snapshot(path: &Path) -> Result<Vec<Current>> {
    let id_of = |p: &Path| fs::metadata(p).map(|m| (m.dev(), m.ino())).ok();
    let mut opened: Vec<(PathBuf, Current)> = Vec::new();
    for _ in 0..200 {
        opened.clear();
        let listed = rotated_files(path)?;
        let mut paths = listed.clone();
        paths.push(path.to_path_buf());
        for p in paths {
            let file = match File::open(&p) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io(format!("opening {}", p.display()), e)),
            };
            let meta = file
                .metadata()
                .map_err(|e| Error::io(format!("stat {}", p.display()), e))?;
            let cur = Current {
                reader: BufReader::new(file),
                id: (meta.dev(), meta.ino()),
                live: p == path,
            };
            opened.push((p, cur));
        }
        // (listed again: a directory listing taken during renames may miss
        // a name)
        if opened.iter().all(|(p, c)| id_of(p) == Some(c.id)) && rotated_files(path)? == listed {
            break;
        }
    }
    Ok(opened.into_iter().map(|(_, c)| c).collect())
}

impl Iterator for LogReader {
    type Item = Result<LogLine>;

    fn next(&mut self) -> Option<Result<LogLine>> {
        self.next_line().transpose()
    }
}

/// `<path>.N` ... `<path>.1` that exist, oldest (highest N) first.
pub fn rotated_files(path: &Path) -> Result<Vec<PathBuf>> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Ok(Vec::new());
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let prefix = format!("{}.", name.to_string_lossy());
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(format!("listing {}", dir.display()), e)),
    };
    let mut found: Vec<(u64, PathBuf)> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let n = e
                .file_name()
                .to_string_lossy()
                .strip_prefix(&prefix)?
                .parse::<u64>()
                .ok()?;
            Some((n, e.path()))
        })
        .collect();
    found.sort_by_key(|e| std::cmp::Reverse(e.0));
    Ok(found.into_iter().map(|(_, p)| p).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::attach::Stream;
    use std::io::Write;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("vigil-logs-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    fn text(lines: &[LogLine]) -> Vec<String> {
        lines
            .iter()
            .map(|l| format!("{}:{}", l.stream.name(), String::from_utf8_lossy(&l.bytes)))
            .collect()
    }

    const T1: &str = "2025-06-01T11:47:57.000000001+00:00";
    const T2: &str = "2025-06-01T11:47:58.000000000+00:00";

    #[test]
    fn reads_rotated_files_joins_partials_tail_since() {
        let d = dir("rot");
        let log = d.join("ctr.log");
        fs::write(d.join("ctr.log.2"), format!("{T1} stdout F one\n")).unwrap();
        fs::write(
            d.join("ctr.log.1"),
            format!("{T1} stdout P tw\n{T1} stdout F o\n"),
        )
        .unwrap();
        fs::write(&log, format!("{T2} stderr F three\n{T2} stdout P four")).unwrap();
        fs::write(d.join("ctr.log.tmp"), "junk").unwrap();
        let all: Vec<_> = LogReader::open(&log, Default::default())
            .unwrap()
            .map(|l| l.unwrap())
            .collect();
        assert_eq!(
            text(&all),
            ["stdout:one\n", "stdout:two\n", "stderr:three\n"]
        );
        // The trailing record has no newline yet: it is not complete.
        fs::write(&log, format!("{T2} stderr F three\n{T2} stdout P four\n")).unwrap();
        let all: Vec<_> = LogReader::open(&log, Default::default())
            .unwrap()
            .map(|l| l.unwrap())
            .collect();
        assert_eq!(
            text(&all),
            [
                "stdout:one\n",
                "stdout:two\n",
                "stderr:three\n",
                "stdout:four"
            ]
        );
        assert_eq!(all[2].stream, Stream::Stderr);
        let opts = LogReadOptions {
            tail: Some(2),
            ..Default::default()
        };
        let tail: Vec<_> = LogReader::open(&log, opts)
            .unwrap()
            .map(|l| l.unwrap())
            .collect();
        assert_eq!(text(&tail), ["stderr:three\n", "stdout:four"]);
        let opts = LogReadOptions {
            since: parse_rfc3339_nanos(T2),
            ..Default::default()
        };
        let since: Vec<_> = LogReader::open(&log, opts)
            .unwrap()
            .map(|l| l.unwrap())
            .collect();
        assert_eq!(text(&since), ["stderr:three\n", "stdout:four"]);
        let missing: Vec<_> = LogReader::open(&d.join("none.log"), Default::default())
            .unwrap()
            .collect();
        assert!(missing.is_empty());
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn follows_growth_and_rotation() {
        let d = dir("follow");
        let log = d.join("ctr.log");
        fs::write(&log, format!("{T1} stdout F a\n")).unwrap();
        let opts = LogReadOptions {
            follow: true,
            poll_interval: Duration::from_millis(5),
            ..Default::default()
        };
        let mut r = LogReader::open(&log, opts).unwrap();
        let stop_file = d.join("stop");
        let sf = stop_file.clone();
        r.set_stop(move || sf.exists());
        let writer = {
            let log = log.clone();
            let d = d.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(30));
                let mut f = fs::OpenOptions::new().append(true).open(&log).unwrap();
                f.write_all(format!("{T1} stdout P b").as_bytes()).unwrap();
                std::thread::sleep(Duration::from_millis(30));
                f.write_all(format!("1\n{T1} stdout F b2\n").as_bytes())
                    .unwrap();
                // Rotate: the old file becomes .1, a new file takes the name.
                fs::rename(&log, d.join("ctr.log.1")).unwrap();
                f.write_all(format!("{T1} stdout F c\n").as_bytes())
                    .unwrap();
                fs::write(&log, format!("{T2} stdout F d\n")).unwrap();
                std::thread::sleep(Duration::from_millis(30));
                fs::write(d.join("stop"), "").unwrap();
            })
        };
        let got: Vec<_> = r.map(|l| l.unwrap()).collect();
        writer.join().unwrap();
        assert_eq!(
            text(&got),
            ["stdout:a\n", "stdout:b1b2\n", "stdout:c\n", "stdout:d\n"]
        );
        fs::remove_dir_all(&d).unwrap();
    }

    /// Lines appended just before each rotation, rotations (conmon's
    /// scheme: `.1` -> `.2` ..., live -> `.1`, a new live file) several
    /// times between two polls: every line once, in order.
    #[test]
    fn follows_quick_rotations_without_losing_or_repeating_lines() {
        let d = dir("quick");
        let log = d.join("ctr.log");
        const ROTATIONS: usize = 60;
        const PER_FILE: usize = 7;
        fs::write(&log, "").unwrap();
        let opts = LogReadOptions {
            follow: true,
            poll_interval: Duration::from_millis(3),
            ..Default::default()
        };
        let mut r = LogReader::open(&log, opts).unwrap();
        let sf = d.join("stop");
        r.set_stop(move || sf.exists());
        let writer = {
            let (log, d) = (log.clone(), d.clone());
            std::thread::spawn(move || {
                let mut n = 0;
                let mut f = fs::OpenOptions::new().append(true).open(&log).unwrap();
                for rot in 0..=ROTATIONS {
                    for _ in 0..PER_FILE {
                        n += 1;
                        f.write_all(format!("{T1} stdout F l{n}\n").as_bytes())
                            .unwrap();
                    }
                    if rot == ROTATIONS {
                        break;
                    }
                    for i in (2..=rot + 1).rev() {
                        let _ = fs::rename(
                            d.join(format!("ctr.log.{}", i - 1)),
                            d.join(format!("ctr.log.{i}")),
                        );
                    }
                    fs::rename(&log, d.join("ctr.log.1")).unwrap();
                    f = fs::File::create(&log).unwrap();
                    std::thread::sleep(Duration::from_micros(700));
                }
                fs::write(d.join("stop"), "").unwrap();
            })
        };
        let got: Vec<_> = r.map(|l| l.unwrap()).collect();
        writer.join().unwrap();
        let want: Vec<String> = (1..=(ROTATIONS + 1) * PER_FILE)
            .map(|n| format!("stdout:l{n}\n"))
            .collect();
        let got = text(&got);
        if got != want {
            let nums: Vec<&str> = got
                .iter()
                .map(|l| l.trim_start_matches("stdout:l").trim_end())
                .collect();
            let missing: Vec<&String> = want.iter().filter(|w| !got.contains(w)).collect();
            panic!(
                "{} of {} lines, missing {missing:?}: {}",
                got.len(),
                want.len(),
                nums.join(" ")
            );
        }
        fs::remove_dir_all(&d).unwrap();
    }
}
