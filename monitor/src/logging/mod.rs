//! Log drivers. `-l DRIVER:PATH` specs are parsed here (conmon-interface §7.1);
//! every chunk read from the container goes to each enabled sink in turn.

pub mod journald;
pub mod k8s_file;
mod k8s_records;
pub mod lines;
pub mod rate_limit;
pub mod syslog;

use crate::cli::Options;
use crate::diag::Fatal;
use k8s_file::K8sFileLog;
use vigil::proto::attach::Stream;

/// The drivers requested on the command line.
#[derive(Debug, Default)]
pub struct LogSpecs {
    /// The k8s-file log, opened at start-up (only one; the last path wins).
    pub k8s: Option<K8sFileLog>,
    pub journald: bool,
    pub passthrough: bool,
    /// vigil extension: `-l syslog:[unix:PATH|udp:HOST:PORT|tcp:HOST:PORT]`.
    pub syslog: Option<syslog::SyslogTarget>,
    /// vigil extension: `--log-rate-limit`.
    pub rate_limit: Option<rate_limit::RateLimit>,
    /// vigil extension: `--log-coalesce-ms` (None: the default).
    pub coalesce: Option<std::time::Duration>,
}

/// The largest `--log-coalesce-ms`: a minute.
const MAX_COALESCE_MS: i32 = 60_000;

/// Parse every `-l` value, open the k8s file and run the tag/label checks.
pub fn parse_specs(opts: &Options, cid: &str) -> Result<LogSpecs, Fatal> {
    if opts.log_paths.is_empty() {
        return Err(Fatal::new("Log driver not provided. Use --log-path"));
    }
    let mut specs = LogSpecs::default();
    let mut k8s_path: Option<String> = None;
    for value in &opts.log_paths {
        // Our own driver; its destination may contain ':', so it is not tokenised.
        if let Some(rest) = value
            .strip_prefix("syslog:")
            .or((value == "syslog").then_some(""))
        {
            specs.syslog = Some(syslog::SyslogTarget::parse(rest)?);
            continue;
        }
        // strtok(":"): empty tokens are skipped, only the first two are used.
        let mut tokens = value.split(':').filter(|t| !t.is_empty());
        let driver = tokens.next();
        let path = tokens.next();
        match (driver, path) {
            (None, _) => return Err(Fatal::new("log-path must not be empty")),
            (Some(p), None) if value.starts_with(':') => k8s_path = Some(p.to_string()),
            (Some("off" | "null" | "none"), _) => {}
            (Some("passthrough"), _) => specs.passthrough = true,
            (Some("journald"), _) => specs.journald = true,
            (Some("k8s-file"), None) => return Err(Fatal::new("k8s-file requires a filename")),
            (Some("k8s-file"), Some(p)) => k8s_path = Some(p.to_string()),
            (Some(_), _) if !value.contains(':') => k8s_path = Some(value.clone()),
            (Some(d), _) => return Err(Fatal::new(format!("No such log driver {d}"))),
        }
    }
    if let Some(v) = &opts.log_rate_limit {
        specs.rate_limit = Some(rate_limit::RateLimit::parse(v).ok_or_else(|| {
            Fatal::new(format!(
                "Invalid --log-rate-limit '{v}': expected BYTES_PER_SEC[:BURST_BYTES], both > 0"
            ))
        })?);
    }
    if let Some(ms) = opts.log_coalesce_ms {
        if !(0..=MAX_COALESCE_MS).contains(&ms) {
            return Err(Fatal::new(format!(
                "Invalid --log-coalesce-ms {ms}: expected milliseconds from 0 to {MAX_COALESCE_MS}"
            )));
        }
        specs.coalesce = Some(std::time::Duration::from_millis(ms as u64));
    }
    if let Some(path) = k8s_path {
        specs.k8s = Some(K8sFileLog::open(path, opts)?);
    }
    if specs.k8s.is_some() && !specs.journald {
        if opts.log_tag.is_some() {
            return Err(Fatal::new("k8s-file doesn't support --log-tag"));
        }
        if !opts.log_labels.is_empty() {
            return Err(Fatal::new("k8s-file doesn't support --log-label"));
        }
    }
    if specs.journald {
        if cid.len() <= 12 {
            return Err(Fatal::new("Container ID must be longer than 12 characters"));
        }
        for label in &opts.log_labels {
            check_label(label)?;
        }
    }
    Ok(specs)
}

fn check_label(label: &str) -> Result<(), Fatal> {
    if label.starts_with('=') {
        return Err(Fatal::new(format!(
            "Container labels must be in format LABEL=VALUE (no LABEL present in '{label}')"
        )));
    }
    if label.matches('=').count() != 1 {
        return Err(Fatal::new(format!(
            "Container labels must be in format LABEL=VALUE (none or more than one '=' present in '{label}')"
        )));
    }
    let name = label.split('=').next().unwrap_or_default();
    if !name
        .bytes()
        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(Fatal::new(format!(
            "Container label names must contain only uppercase letters, numbers and underscore (in '{label}')"
        )));
    }
    Ok(())
}

/// The enabled sinks, in conmon's order (k8s-file, then journald).
pub struct LogSinks {
    pub k8s: Option<K8sFileLog>,
    pub journald: Option<journald::JournaldLog>,
    pub syslog: Option<syslog::SyslogLog>,
    limiter: Option<rate_limit::RateLimiter>,
    marker: Vec<u8>,
}

impl LogSinks {
    pub fn new(specs: &mut LogSpecs, opts: &Options, cid: &str) -> LogSinks {
        let journald = if specs.journald {
            match journald::JournaldLog::new(opts, cid) {
                Ok(j) => Some(j),
                Err(e) => {
                    crate::warn!("Failed to create journald socket: {e}");
                    None
                }
            }
        } else {
            None
        };
        let syslog = specs.syslog.as_ref().and_then(|t| {
            let short: String = cid.chars().take(12).collect();
            let app = opts.name.clone().unwrap_or(short);
            syslog::SyslogLog::new(t, &app)
                .map_err(|f| crate::warn!("{}", f.text))
                .ok()
        });
        let limiter = specs.rate_limit.map(rate_limit::RateLimiter::new);
        LogSinks {
            k8s: specs.k8s.take(),
            journald,
            syslog,
            limiter,
            marker: Vec::with_capacity(128),
        }
    }

    /// Log one chunk read from `stream` (within the rate limit, if any).
    pub fn write(&mut self, stream: Stream, chunk: &[u8]) {
        let Some(limiter) = &mut self.limiter else {
            return self.write_all(stream, chunk);
        };
        let allowed = limiter.admit(chunk.len());
        let mut marker = std::mem::take(&mut self.marker);
        let report = limiter.marker(false, &mut marker);
        self.write_all(stream, &chunk[..allowed]);
        if report {
            self.write_all(Stream::Stderr, &marker);
        }
        self.marker = marker;
    }

    fn write_all(&mut self, stream: Stream, chunk: &[u8]) {
        if chunk.is_empty() {
            return;
        }
        if let Some(k8s) = &mut self.k8s {
            k8s.write_chunk(stream, chunk);
        }
        if let Some(j) = &mut self.journald {
            j.write_chunk(stream, chunk);
        }
        if let Some(s) = &mut self.syslog {
            s.write_chunk(stream, chunk);
        }
    }

    /// ctl type 2: reopen (truncate or rotate) the k8s file.
    pub fn reopen(&mut self) {
        if let Some(k8s) = &mut self.k8s {
            k8s.reopen();
        }
    }

    /// Idle: return buffer pages to the kernel.
    pub fn release_memory(&mut self) {
        if let Some(k8s) = &mut self.k8s {
            k8s.release_memory();
        }
    }

    /// Flush buffered records and, unless `--no-sync-log`, fsync.
    pub fn finish(&mut self, sync: bool) {
        if let Some(limiter) = &mut self.limiter {
            let mut marker = std::mem::take(&mut self.marker);
            if limiter.marker(true, &mut marker) {
                self.write_all(Stream::Stderr, &marker);
            }
        }
        if let Some(j) = &mut self.journald {
            j.flush();
        }
        if let Some(s) = &mut self.syslog {
            s.flush();
        }
        if let Some(k8s) = &mut self.k8s {
            k8s.flush();
            if sync {
                k8s.sync();
            }
        }
    }
}
