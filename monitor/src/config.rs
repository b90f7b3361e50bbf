//! Validation of parsed options into the monitor's typed [`Config`], in
//! conmon 2.2.1's order and with its exact messages (conmon-interface §1.4).

use crate::cli::Options;
use crate::diag::{Fatal, Level};
use crate::logging::LogSpecs;
use std::ffi::CString;
use std::path::PathBuf;

/// Default directory for `<cuuid>` attach-socket symlinks.
pub const DEFAULT_SOCKET_DIR: &str = "/var/run/crio";

/// What the runtime is asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    Create,
    Restore { image_path: String },
    Exec { process_spec: String },
}

/// Fully validated configuration.
#[derive(Debug)]
pub struct Config {
    pub opts: Options,
    pub cid: String,
    pub mode: Mode,
    pub runtime: String,
    /// None only for exec without `--bundle` (no attach socket or FIFOs then).
    pub bundle: Option<PathBuf>,
    pub container_pidfile: PathBuf,
    pub logs: LogSpecs,
    /// vigil extension: healthchecks kept by the monitor.
    pub health: Option<crate::health::HealthConfig>,
}

/// How validation failed.
#[derive(Debug)]
pub enum Invalid {
    /// Printed as is (`conmon: ...`), exit 1.
    Plain(String),
    /// Printed as `[conmon:e]: ...`, exit 1.
    Fatal(Fatal),
}

impl From<Fatal> for Invalid {
    fn from(f: Fatal) -> Invalid {
        Invalid::Fatal(f)
    }
}

impl Config {
    pub fn is_exec(&self) -> bool {
        matches!(self.mode, Mode::Exec { .. })
    }
}

/// Steps 3-6 of §1.4 (parse errors and `--version` are handled before).
/// Opens the k8s log file, as conmon does before forking.
pub fn validate(opts: Options) -> Result<Config, Invalid> {
    if opts.log_max_files < 0 {
        return Err(Invalid::Plain(format!(
            "conmon: log-max-files must be non-negative, got {}\n",
            opts.log_max_files
        )));
    }
    if opts.log_rotate && opts.log_max_files == 0 {
        return Err(Invalid::Plain(
            "conmon: log-max-files must be at least 1 when log-rotate is enabled, got 0\n".into(),
        ));
    }
    let Some(cid) = opts.cid.clone() else {
        return Err(Invalid::Plain(
            "conmon: Container ID not provided. Use --cid\n".into(),
        ));
    };
    let level = match &opts.log_level {
        None => Level::Warn,
        Some(l) => Level::parse(l).ok_or_else(|| Fatal::new(format!("No such log level {l}")))?,
    };
    crate::diag::init(level, opts.syslog, &cid, opts.log_tag.as_deref());

    if opts.exec && opts.restore.is_some() {
        return Err(Fatal::new("Cannot use 'exec' and 'restore' at the same time").into());
    }
    if opts.exec_attach && !opts.exec {
        return Err(Fatal::new("Attach can only be specified with exec").into());
    }
    if opts.exec_attach && !opts.api_version {
        return Err(
            Fatal::new("Attach can only be specified for a non-legacy exec session").into(),
        );
    }
    if opts.cuuid.is_none() && (!opts.exec || opts.api_version) {
        return Err(Fatal::new("Container UUID not provided. Use --cuuid").into());
    }
    let Some(runtime) = opts.runtime.clone() else {
        return Err(Fatal::new("Runtime path not provided. Use --runtime").into());
    };
    let c_runtime = CString::new(runtime.as_bytes()).map_err(|_| Fatal {
        text: format!("Runtime path {runtime} is not valid"),
        errno: Some(libc::EINVAL),
    })?;
    if let Err(e) = nix::unistd::access(c_runtime.as_c_str(), nix::unistd::AccessFlags::X_OK) {
        return Err(Fatal::from_nix(format!("Runtime path {runtime} is not valid"), e).into());
    }
    let mode = if opts.exec {
        let Some(spec) = opts.exec_process_spec.clone() else {
            return Err(
                Fatal::new("Exec process spec path not provided. Use --exec-process-spec").into(),
            );
        };
        Mode::Exec { process_spec: spec }
    } else if let Some(r) = &opts.restore {
        Mode::Restore {
            image_path: r.clone(),
        }
    } else {
        Mode::Create
    };
    let cwd = std::env::current_dir().map_err(|_| Fatal::new("Failed to get working directory"))?;
    let bundle = match &opts.bundle {
        Some(b) => Some(PathBuf::from(b)),
        None if !opts.exec => Some(cwd.clone()),
        None => None,
    };
    if opts.exit_delay < 0 {
        return Err(Fatal::new(
            "Delay before invoking exit command must be greater than or equal to 0",
        )
        .into());
    }
    let container_pidfile = match &opts.container_pidfile {
        Some(p) => PathBuf::from(p),
        None => cwd.join(format!("pidfile-{cid}")),
    };
    let logs = crate::logging::parse_specs(&opts, &cid)?;
    if opts.no_container_partial_message && !logs.journald {
        crate::warn!("--no-container-partial-message has no effect without journald log driver");
    }
    let health = health_config(&opts, &cid, &runtime, &mode, bundle.as_deref())?;
    Ok(Config {
        cid,
        mode,
        runtime,
        bundle,
        container_pidfile,
        logs,
        health,
        opts,
    })
}

/// The `--health-*` extension options, checked; `None` without `--health-cmd`.
fn health_config(
    opts: &Options,
    cid: &str,
    runtime: &str,
    mode: &Mode,
    bundle: Option<&std::path::Path>,
) -> Result<Option<crate::health::HealthConfig>, Invalid> {
    if opts.health_cmd.is_empty() {
        return Ok(None);
    }
    let plain = |msg: String| Invalid::Plain(format!("conmon: {msg}\n"));
    let (Mode::Create, Some(bundle)) = (mode, bundle) else {
        return Err(plain(
            "--health-cmd needs a container (not --exec or --restore)".into(),
        ));
    };
    let millis = |name: &str, v: Option<i32>, default: i32| match v.unwrap_or(default) {
        n if n < 0 => Err(plain(format!("--{name} must be non-negative, got {n}"))),
        n => Ok(std::time::Duration::from_millis(n as u64)),
    };
    let interval = millis("health-interval", opts.health_interval, 30_000)?;
    let timeout = millis("health-timeout", opts.health_timeout, 30_000)?;
    if timeout.is_zero() {
        return Err(plain(
            "--health-timeout must be at least 1 millisecond".into(),
        ));
    }
    let start_period = millis("health-start-period", opts.health_start_period, 0)?;
    let retries = match opts.health_retries.unwrap_or(3) {
        n if n < 1 => {
            return Err(plain(format!(
                "--health-retries must be at least 1, got {n}"
            )))
        }
        n => n as u32,
    };
    let on_failure = match opts.health_on_failure.as_deref() {
        None => vigil::proto::health::OnFailure::None,
        Some(v) => vigil::proto::health::OnFailure::parse(v).ok_or_else(|| {
            plain(format!(
                "--health-on-failure must be none, kill, stop or restart, got {v}"
            ))
        })?,
    };
    let stop_signal = opts.health_stop_signal.unwrap_or(libc::SIGTERM);
    if !(1..=64).contains(&stop_signal) {
        return Err(plain(format!(
            "--health-stop-signal must be a signal number, got {stop_signal}"
        )));
    }
    let stop_timeout = match opts.health_stop_timeout.unwrap_or(10) {
        n if n < 0 => {
            return Err(plain(format!(
                "--health-stop-timeout must be non-negative, got {n}"
            )))
        }
        n => std::time::Duration::from_secs(n as u64),
    };
    let pidfile = bundle.join("healthcheck.pid");
    let log_path = opts
        .health_log
        .as_ref()
        .map(PathBuf::from)
        .unwrap_or_else(|| bundle.join(vigil::proto::health::LOG_FILE));
    let mut argv: Vec<String> = vec![runtime.to_string()];
    argv.extend(opts.runtime_args.iter().cloned());
    argv.extend([
        "exec".into(),
        "--detach".into(),
        "--pid-file".into(),
        pidfile.to_string_lossy().into_owned(),
        cid.to_string(),
    ]);
    argv.extend(opts.health_cmd.iter().cloned());
    let argv = argv
        .into_iter()
        .map(|a| CString::new(a).map_err(|_| plain("--health-cmd contains a NUL byte".into())))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(crate::health::HealthConfig {
        argv,
        interval: (!interval.is_zero()).then_some(interval),
        timeout,
        start_period,
        retries,
        on_failure,
        stop_signal,
        stop_timeout,
        log_path,
        pidfile,
    }))
}
