//! Command line: GLib GOption-compatible parsing into typed [`Options`].
//!
//! Rules reproduced from conmon 2.2.1 (see conmon-interface §1.1): `--opt value`
//! and `--opt=value`; short options take the *next* argv element as value, even
//! if it starts with `-`; flags accept `--flag=anything`; positionals are
//! ignored (Podman's `--api-version 1`); `--` ends option parsing; scalar options
//! given twice keep the last value, list options accumulate; integers are C
//! `strtol(base 0)` with the whole string consumed.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

/// Every option of conmon 2.2.1 (plus vigil extensions), as parsed.
#[derive(Debug, Default, Clone)]
pub struct Options {
    pub api_version: bool,
    pub bundle: Option<String>,
    pub cid: Option<String>,
    pub conmon_pidfile: Option<String>,
    pub container_pidfile: Option<String>,
    pub cuuid: Option<String>,
    pub exec: bool,
    pub exec_attach: bool,
    pub exec_process_spec: Option<String>,
    pub exit_command: Option<String>,
    pub exit_command_args: Vec<String>,
    pub exit_delay: i32,
    pub exit_dir: Option<String>,
    pub leave_stdin_open: bool,
    pub log_level: Option<String>,
    pub log_paths: Vec<String>,
    pub log_size_max: i64,
    pub log_global_size_max: i64,
    pub log_tag: Option<String>,
    pub log_labels: Vec<String>,
    pub no_container_partial_message: bool,
    pub name: Option<String>,
    pub no_new_keyring: bool,
    pub no_pivot: bool,
    pub no_sync_log: bool,
    pub persist_dir: Option<String>,
    pub replace_listen_pid: bool,
    pub restore: Option<String>,
    pub runtime: Option<String>,
    pub runtime_args: Vec<String>,
    /// `--runtime-opt` and `--restore-arg`, one list in command-line order.
    pub runtime_opts: Vec<String>,
    pub sdnotify_socket: Option<String>,
    pub socket_dir_path: Option<String>,
    pub stdin: bool,
    pub sync: bool,
    pub syslog: bool,
    pub systemd_cgroup: bool,
    pub terminal: bool,
    pub timeout: i32,
    pub version: bool,
    pub full_attach: bool,
    pub seccomp_notify_socket: Option<String>,
    pub seccomp_notify_plugins: Option<String>,
    pub log_rotate: bool,
    pub log_max_files: i32,
    pub log_allowlist_dirs: Vec<String>,
    /// vigil extension: `BYTES_PER_SEC[:BURST_BYTES]` for the log drivers.
    pub log_rate_limit: Option<String>,
    /// vigil extension: seconds the runtime may take (0 = no limit).
    pub runtime_timeout: Option<i32>,
    /// vigil extension: the longest a busy writer's byte waits to be read, in
    /// ms (batching of small writes; 0 = read every write at once).
    pub log_coalesce_ms: Option<i32>,
    /// vigil extension: healthchecks (`--health-cmd` once per argv element).
    pub health_cmd: Vec<String>,
    /// Milliseconds; `None`: the default.
    pub health_interval: Option<i32>,
    pub health_timeout: Option<i32>,
    pub health_start_period: Option<i32>,
    pub health_retries: Option<i32>,
    pub health_on_failure: Option<String>,
    pub health_stop_signal: Option<i32>,
    pub health_stop_timeout: Option<i32>,
    pub health_log: Option<String>,
}

impl Options {
    fn defaults() -> Options {
        Options {
            log_size_max: -1,
            log_global_size_max: -1,
            log_max_files: 1,
            ..Default::default()
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Arg {
    Flag,
    Str,
    Int32,
    Int64,
}

#[derive(Clone, Copy)]
enum Id {
    ApiVersion,
    Bundle,
    Cid,
    ConmonPidfile,
    ContainerPidfile,
    Cuuid,
    Exec,
    ExecAttach,
    ExecProcessSpec,
    ExitCommand,
    ExitCommandArg,
    ExitDelay,
    ExitDir,
    LeaveStdinOpen,
    LogLevel,
    LogPath,
    LogSizeMax,
    LogGlobalSizeMax,
    LogTag,
    LogLabel,
    NoContainerPartialMessage,
    Name,
    NoNewKeyring,
    NoPivot,
    NoSyncLog,
    PersistDir,
    ReplaceListenPid,
    Restore,
    RestoreArg,
    Runtime,
    RuntimeArg,
    RuntimeOpt,
    SdnotifySocket,
    SocketDirPath,
    Stdin,
    Sync,
    Syslog,
    SystemdCgroup,
    Terminal,
    Timeout,
    Version,
    FullAttach,
    SeccompNotifySocket,
    SeccompNotifyPlugins,
    LogRotate,
    LogMaxFiles,
    LogAllowlistDir,
    LogRateLimit,
    RuntimeTimeout,
    LogCoalesceMs,
    HealthCmd,
    HealthInterval,
    HealthTimeout,
    HealthStartPeriod,
    HealthRetries,
    HealthOnFailure,
    HealthStopSignal,
    HealthStopTimeout,
    HealthLog,
}

struct Spec {
    long: &'static str,
    short: Option<u8>,
    arg: Arg,
    id: Id,
}

const fn o(long: &'static str, short: Option<u8>, arg: Arg, id: Id) -> Spec {
    Spec {
        long,
        short,
        arg,
        id,
    }
}

#[rustfmt::skip]
static TABLE: &[Spec] = &[
    o("api-version", None, Arg::Flag, Id::ApiVersion),
    o("bundle", Some(b'b'), Arg::Str, Id::Bundle),
    o("cid", Some(b'c'), Arg::Str, Id::Cid),
    o("conmon-pidfile", Some(b'P'), Arg::Str, Id::ConmonPidfile),
    o("container-pidfile", Some(b'p'), Arg::Str, Id::ContainerPidfile),
    o("pidfile", None, Arg::Str, Id::ContainerPidfile),
    o("cuuid", Some(b'u'), Arg::Str, Id::Cuuid),
    o("exec", Some(b'e'), Arg::Flag, Id::Exec),
    o("exec-attach", None, Arg::Flag, Id::ExecAttach),
    o("exec-process-spec", None, Arg::Str, Id::ExecProcessSpec),
    o("exit-command", None, Arg::Str, Id::ExitCommand),
    o("exit-command-arg", None, Arg::Str, Id::ExitCommandArg),
    o("exit-delay", None, Arg::Int32, Id::ExitDelay),
    o("exit-dir", None, Arg::Str, Id::ExitDir),
    o("leave-stdin-open", None, Arg::Flag, Id::LeaveStdinOpen),
    o("log-level", None, Arg::Str, Id::LogLevel),
    o("log-path", Some(b'l'), Arg::Str, Id::LogPath),
    o("log-size-max", None, Arg::Int64, Id::LogSizeMax),
    o("log-global-size-max", None, Arg::Int64, Id::LogGlobalSizeMax),
    o("log-tag", None, Arg::Str, Id::LogTag),
    o("log-label", None, Arg::Str, Id::LogLabel),
    o("no-container-partial-message", None, Arg::Flag, Id::NoContainerPartialMessage),
    o("name", Some(b'n'), Arg::Str, Id::Name),
    o("no-new-keyring", None, Arg::Flag, Id::NoNewKeyring),
    o("no-pivot", None, Arg::Flag, Id::NoPivot),
    o("no-sync-log", None, Arg::Flag, Id::NoSyncLog),
    o("persist-dir", Some(b'0'), Arg::Str, Id::PersistDir),
    o("replace-listen-pid", None, Arg::Flag, Id::ReplaceListenPid),
    o("restore", None, Arg::Str, Id::Restore),
    o("restore-arg", None, Arg::Str, Id::RestoreArg),
    o("runtime", Some(b'r'), Arg::Str, Id::Runtime),
    o("runtime-arg", None, Arg::Str, Id::RuntimeArg),
    o("runtime-opt", None, Arg::Str, Id::RuntimeOpt),
    o("sdnotify-socket", None, Arg::Str, Id::SdnotifySocket),
    o("socket-dir-path", None, Arg::Str, Id::SocketDirPath),
    o("stdin", Some(b'i'), Arg::Flag, Id::Stdin),
    o("sync", None, Arg::Flag, Id::Sync),
    o("syslog", None, Arg::Flag, Id::Syslog),
    o("systemd-cgroup", Some(b's'), Arg::Flag, Id::SystemdCgroup),
    o("terminal", Some(b't'), Arg::Flag, Id::Terminal),
    o("timeout", Some(b'T'), Arg::Int32, Id::Timeout),
    o("version", None, Arg::Flag, Id::Version),
    o("full-attach", None, Arg::Flag, Id::FullAttach),
    o("seccomp-notify-socket", None, Arg::Str, Id::SeccompNotifySocket),
    o("seccomp-notify-plugins", None, Arg::Str, Id::SeccompNotifyPlugins),
    o("log-rotate", None, Arg::Flag, Id::LogRotate),
    o("log-max-files", None, Arg::Int32, Id::LogMaxFiles),
    o("log-allowlist-dir", None, Arg::Str, Id::LogAllowlistDir),
    o("log-rate-limit", None, Arg::Str, Id::LogRateLimit),
    o("runtime-timeout", None, Arg::Int32, Id::RuntimeTimeout),
    o("log-coalesce-ms", None, Arg::Int32, Id::LogCoalesceMs),
    o("health-cmd", None, Arg::Str, Id::HealthCmd),
    o("health-interval", None, Arg::Int32, Id::HealthInterval),
    o("health-timeout", None, Arg::Int32, Id::HealthTimeout),
    o("health-start-period", None, Arg::Int32, Id::HealthStartPeriod),
    o("health-retries", None, Arg::Int32, Id::HealthRetries),
    o("health-on-failure", None, Arg::Str, Id::HealthOnFailure),
    o("health-stop-signal", None, Arg::Int32, Id::HealthStopSignal),
    o("health-stop-timeout", None, Arg::Int32, Id::HealthStopTimeout),
    o("health-log", None, Arg::Str, Id::HealthLog),
];

/// Result of parsing argv.
#[derive(Debug)]
pub enum Parsed {
    Run(Box<Options>),
    Help,
}

/// A GLib-style parse error; `Display` is the text after `option parsing failed: `.
#[derive(Debug, PartialEq, Eq)]
pub struct ParseError(pub String);

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

enum Value {
    None,
    Str(String),
    Int(i64),
}

/// Parse argv (without argv[0]).
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Parsed, ParseError> {
    let args: Vec<String> = args
        .into_iter()
        .map(|a| String::from_utf8_lossy(&a.into_vec()).into_owned())
        .collect();
    let mut opts = Options::defaults();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        if arg == "--" {
            break;
        }
        if let Some(body) = arg.strip_prefix("--") {
            let (name, inline) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (body, None),
            };
            if name == "help" || name == "help-all" {
                return Ok(Parsed::Help);
            }
            let spec = TABLE
                .iter()
                .find(|s| s.long == name)
                .ok_or_else(|| ParseError(format!("Unknown option {arg}")))?;
            let label = format!("--{name}");
            let raw = match (spec.arg, inline) {
                (Arg::Flag, _) => None,
                (_, Some(v)) => Some(v.to_string()),
                (_, None) => {
                    i += 1;
                    Some(args.get(i).cloned().ok_or_else(|| missing(&label))?)
                }
            };
            apply(&mut opts, spec, convert(spec.arg, raw, &label)?);
        } else if arg.len() > 1 && arg.starts_with('-') {
            // A group of short options; those that take a value consume the
            // next argv element (only one per group may).
            let group = &arg.as_bytes()[1..];
            let mut consumed = false;
            let mut pending: Vec<(&Spec, Value)> = Vec::new();
            for &c in group {
                if c == b'h' || c == b'?' {
                    return Ok(Parsed::Help);
                }
                let Some(spec) = TABLE.iter().find(|s| s.short == Some(c)) else {
                    return Err(ParseError(format!("Unknown option {arg}")));
                };
                let label = format!("-{}", c as char);
                let raw = if spec.arg == Arg::Flag {
                    None
                } else if consumed {
                    return Err(ParseError(format!("Error parsing option {label}")));
                } else {
                    consumed = true;
                    Some(args.get(i + 1).cloned().ok_or_else(|| missing(&label))?)
                };
                pending.push((spec, convert(spec.arg, raw, &label)?));
            }
            for (spec, v) in pending {
                apply(&mut opts, spec, v);
            }
            if consumed {
                i += 1;
            }
        }
        // Anything else is a positional argument: ignored, as conmon does.
        i += 1;
    }
    Ok(Parsed::Run(Box::new(opts)))
}

fn missing(label: &str) -> ParseError {
    ParseError(format!("Missing argument for {label}"))
}

fn convert(arg: Arg, raw: Option<String>, label: &str) -> Result<Value, ParseError> {
    let Some(raw) = raw else {
        return Ok(Value::None);
    };
    let (lo, hi) = match arg {
        Arg::Flag => return Ok(Value::None),
        Arg::Str => return Ok(Value::Str(raw)),
        Arg::Int32 => (i64::from(i32::MIN), i64::from(i32::MAX)),
        Arg::Int64 => (i64::MIN, i64::MAX),
    };
    let (lq, rq) = quotes();
    match strtol(&raw) {
        Some(Ok(v)) if (lo..=hi).contains(&v) => Ok(Value::Int(v)),
        Some(_) => Err(ParseError(format!(
            "Integer value {lq}{raw}{rq} for {label} out of range"
        ))),
        None => Err(ParseError(format!(
            "Cannot parse integer value {lq}{raw}{rq} for {label}"
        ))),
    }
}

/// C `strtol(s, &end, 0)` requiring `*end == '\0'`: `None` if not a number,
/// `Some(Err)` on overflow.
fn strtol(s: &str) -> Option<Result<i64, ()>> {
    let t = s.trim_start_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r']);
    let (neg, t) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let (radix, digits) = if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        if h.is_empty() {
            // strtol parses "0x" as 0 followed by garbage "x".
            return None;
        }
        (16, h)
    } else if t.len() > 1 && t.starts_with('0') {
        (8, &t[1..])
    } else {
        (10, t)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let mag = match u128::from_str_radix(digits, radix) {
        Ok(m) if m <= u128::from(i64::MAX.unsigned_abs()) + 1 => m as i128,
        _ => return Some(Err(())),
    };
    let v = if neg { -mag } else { mag };
    Some(i64::try_from(v).map_err(|_| ()))
}

/// GLib quotes values with U+201C/U+201D, or `?` when the locale is not UTF-8.
pub fn quotes() -> (&'static str, &'static str) {
    if utf8_locale() {
        ("\u{201c}", "\u{201d}")
    } else {
        ("?", "?")
    }
}

/// Whether the caller's locale (LC_ALL, LC_CTYPE, LANG) is a UTF-8 one.
pub fn utf8_locale() -> bool {
    let val = ["LC_ALL", "LC_CTYPE", "LANG"]
        .iter()
        .filter_map(|k| std::env::var(k).ok())
        .find(|v| !v.is_empty())
        .unwrap_or_default()
        .to_ascii_lowercase();
    val.contains("utf-8") || val.contains("utf8")
}

fn apply(o: &mut Options, spec: &Spec, v: Value) {
    let s = || match &v {
        Value::Str(s) => Some(s.clone()),
        _ => None,
    };
    let n = match &v {
        Value::Int(n) => *n,
        _ => 0,
    };
    match spec.id {
        Id::ApiVersion => o.api_version = true,
        Id::Bundle => o.bundle = s(),
        Id::Cid => o.cid = s(),
        Id::ConmonPidfile => o.conmon_pidfile = s(),
        Id::ContainerPidfile => o.container_pidfile = s(),
        Id::Cuuid => o.cuuid = s(),
        Id::Exec => o.exec = true,
        Id::ExecAttach => o.exec_attach = true,
        Id::ExecProcessSpec => o.exec_process_spec = s(),
        Id::ExitCommand => o.exit_command = s(),
        Id::ExitCommandArg => o.exit_command_args.extend(s()),
        Id::ExitDelay => o.exit_delay = n as i32,
        Id::ExitDir => o.exit_dir = s(),
        Id::LeaveStdinOpen => o.leave_stdin_open = true,
        Id::LogLevel => o.log_level = s(),
        Id::LogPath => o.log_paths.extend(s()),
        Id::LogSizeMax => o.log_size_max = n,
        Id::LogGlobalSizeMax => o.log_global_size_max = n,
        Id::LogTag => o.log_tag = s(),
        Id::LogLabel => o.log_labels.extend(s()),
        Id::NoContainerPartialMessage => o.no_container_partial_message = true,
        Id::Name => o.name = s(),
        Id::NoNewKeyring => o.no_new_keyring = true,
        Id::NoPivot => o.no_pivot = true,
        Id::NoSyncLog => o.no_sync_log = true,
        Id::PersistDir => o.persist_dir = s(),
        Id::ReplaceListenPid => o.replace_listen_pid = true,
        Id::Restore => o.restore = s(),
        Id::RestoreArg | Id::RuntimeOpt => o.runtime_opts.extend(s()),
        Id::Runtime => o.runtime = s(),
        Id::RuntimeArg => o.runtime_args.extend(s()),
        Id::SdnotifySocket => o.sdnotify_socket = s(),
        Id::SocketDirPath => o.socket_dir_path = s(),
        Id::Stdin => o.stdin = true,
        Id::Sync => o.sync = true,
        Id::Syslog => o.syslog = true,
        Id::SystemdCgroup => o.systemd_cgroup = true,
        Id::Terminal => o.terminal = true,
        Id::Timeout => o.timeout = n as i32,
        Id::Version => o.version = true,
        Id::FullAttach => o.full_attach = true,
        Id::SeccompNotifySocket => o.seccomp_notify_socket = s(),
        Id::SeccompNotifyPlugins => o.seccomp_notify_plugins = s(),
        Id::LogRotate => o.log_rotate = true,
        Id::LogMaxFiles => o.log_max_files = n as i32,
        Id::LogAllowlistDir => o.log_allowlist_dirs.extend(s()),
        Id::LogRateLimit => o.log_rate_limit = s(),
        Id::RuntimeTimeout => o.runtime_timeout = Some(n as i32),
        Id::LogCoalesceMs => o.log_coalesce_ms = Some(n as i32),
        Id::HealthCmd => o.health_cmd.extend(s()),
        Id::HealthInterval => o.health_interval = Some(n as i32),
        Id::HealthTimeout => o.health_timeout = Some(n as i32),
        Id::HealthStartPeriod => o.health_start_period = Some(n as i32),
        Id::HealthRetries => o.health_retries = Some(n as i32),
        Id::HealthOnFailure => o.health_on_failure = s(),
        Id::HealthStopSignal => o.health_stop_signal = Some(n as i32),
        Id::HealthStopTimeout => o.health_stop_timeout = Some(n as i32),
        Id::HealthLog => o.health_log = s(),
    }
}

/// conmon's `--help` text (GLib layout), with `…` shown as `?` outside UTF-8 locales.
pub fn help_text() -> String {
    let text = include_str!("help.txt");
    if utf8_locale() {
        text.to_string()
    } else {
        text.replace('\u{2026}', "?")
    }
}

/// `--version` output: the emulated conmon version, then the implementation.
pub fn version_text() -> String {
    format!(
        "conmon version 2.2.1\ncommit: vigil-{}\n",
        env!("CARGO_PKG_VERSION")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Options, String> {
        match parse(args.iter().map(OsString::from)) {
            Ok(Parsed::Run(o)) => Ok(*o),
            Ok(Parsed::Help) => Err("help".into()),
            Err(e) => Err(e.0),
        }
    }

    #[test]
    fn long_and_short_forms() {
        let o = p(&[
            "--cid=a",
            "-u",
            "b",
            "--api-version",
            "1",
            "-r",
            "/bin/true",
            "-l",
            "k8s-file:/x",
            "--log-path",
            "journald:",
        ])
        .unwrap();
        assert_eq!(o.cid.as_deref(), Some("a"));
        assert_eq!(o.cuuid.as_deref(), Some("b"));
        assert!(o.api_version);
        assert_eq!(o.log_paths, vec!["k8s-file:/x", "journald:"]);
        let o = p(&[
            "--cid",
            "--cuuid",
            "--log-size-max",
            "-1",
            "-T",
            "0x10",
            "--exit-delay",
            "010",
        ])
        .unwrap();
        assert_eq!(o.cid.as_deref(), Some("--cuuid"));
        assert_eq!((o.log_size_max, o.timeout, o.exit_delay), (-1, 16, 8));
        let o = p(&["--api-version=1", "-ti", "--", "--bogus"]).unwrap();
        assert!(o.api_version && o.terminal && o.stdin);
    }

    #[test]
    fn shared_runtime_opt_list() {
        let o = p(&[
            "--runtime-opt",
            "a",
            "--restore-arg",
            "b",
            "--runtime-opt=c",
        ])
        .unwrap();
        assert_eq!(o.runtime_opts, vec!["a", "b", "c"]);
        let o = p(&["--cid", "a", "--cid", "b"]).unwrap();
        assert_eq!(o.cid.as_deref(), Some("b"));
    }

    #[test]
    fn errors_match_glib() {
        std::env::set_var("LC_ALL", "C.UTF-8");
        assert_eq!(p(&["--bogus"]).unwrap_err(), "Unknown option --bogus");
        assert_eq!(p(&["--bogus=1"]).unwrap_err(), "Unknown option --bogus=1");
        assert_eq!(p(&["-cfoo", "x"]).unwrap_err(), "Unknown option -cfoo");
        assert_eq!(p(&["-cfoo"]).unwrap_err(), "Missing argument for -c");
        assert_eq!(p(&["--cid"]).unwrap_err(), "Missing argument for --cid");
        assert_eq!(
            p(&["--log-max-files", "abc"]).unwrap_err(),
            "Cannot parse integer value \u{201c}abc\u{201d} for --log-max-files"
        );
        assert_eq!(
            p(&["--log-max-files", "2147483648"]).unwrap_err(),
            "Integer value \u{201c}2147483648\u{201d} for --log-max-files out of range"
        );
        assert_eq!(
            p(&["--log-max-files", ""]).unwrap_err(),
            "Cannot parse integer value \u{201c}\u{201d} for --log-max-files"
        );
        assert_eq!(
            p(&["--log-max-files", "0x"]).unwrap_err(),
            "Cannot parse integer value \u{201c}0x\u{201d} for --log-max-files"
        );
        assert_eq!(
            p(&["--log-size-max", "99999999999999999999"]).unwrap_err(),
            "Integer value \u{201c}99999999999999999999\u{201d} for --log-size-max out of range"
        );
        assert_eq!(p(&["--log-max-files", "-1"]).unwrap().log_max_files, -1);
        assert_eq!(p(&["--help", "--bogus"]).unwrap_err(), "help");
        assert_eq!(
            p(&["--bogus", "--help"]).unwrap_err(),
            "Unknown option --bogus"
        );
    }

    #[test]
    fn strtol_rules() {
        assert_eq!(strtol(" 12"), Some(Ok(12)));
        assert_eq!(strtol("-0x10"), Some(Ok(-16)));
        assert_eq!(strtol("08"), None);
        assert_eq!(strtol("0"), Some(Ok(0)));
        assert_eq!(strtol("12 "), None);
        assert_eq!(strtol("9223372036854775808"), Some(Err(())));
        assert_eq!(strtol("-9223372036854775808"), Some(Ok(i64::MIN)));
        // Found by fuzzing: huge magnitudes must not wrap or overflow.
        assert_eq!(strtol("0xffffffffffffffffffffffffffffffff"), Some(Err(())));
        assert_eq!(strtol("-0xffffffffffffffffffffffffffffffff"), Some(Err(())));
        assert_eq!(strtol("-0x80000000000000000000000000000000"), Some(Err(())));
    }
}
