//! A client API for engines that drive the monitor: everything Podman does with
//! conmon, typed.
//!
//! * [`MonitorOptions`]: every monitor option, rendered to argv in Podman's order;
//! * [`Monitor`]: spawn with the sync/start (and attach) pipes, await the
//!   container pid or a classified [`RuntimeError`];
//! * [`Attach`]: the framed attach socket (output in, stdin out, half-close);
//! * [`Ctl`]: terminal resize and log reopen;
//! * [`ExitWatcher`]: wait for the exit file, read the OOM marker;
//! * [`LogReader`]: k8s-file logs with rotation, tail, since and follow.
//!
//! A complete engine in ~150 lines is `examples/engine.rs`. In short:
//!
//! ```no_run
//! use std::time::Duration;
//! use vigil::client::{Attach, ExitWatcher, LogDriver, Monitor, MonitorOptions};
//!
//! let bundle = std::path::Path::new("/tmp/bundle"); // holds config.json
//! let mut opts = MonitorOptions::new("c0ffee00c0ffee00", "/usr/sbin/runc");
//! opts.bundle = Some(bundle.into());
//! opts.container_pidfile = Some(bundle.join("pidfile"));
//! opts.conmon_pidfile = Some(bundle.join("conmon.pid"));
//! opts.exit_dir = Some(bundle.join("exits"));
//! opts.log_drivers = vec![LogDriver::K8sFile(bundle.join("ctr.log"))];
//! let mut monitor = Monitor::spawn("conmon".as_ref(), &opts, &[])?;
//! let _pid = monitor.await_pid(Some(Duration::from_secs(30)))?;
//! let mut attach = Attach::connect(bundle)?;
//! std::process::Command::new("runc").args(["start", &opts.cid]).status().ok();
//! while let Some((_stream, bytes)) = attach.recv()? {
//!     print!("{}", String::from_utf8_lossy(bytes));
//! }
//! let status = ExitWatcher::new(&bundle.join("exits"), &opts.cid).wait(None)?;
//! std::process::exit(status.code);
//! # Ok::<(), vigil::client::Error>(())
//! ```

mod attach;
mod ctl;
mod error;
mod exit;
mod logs;
mod monitor;
mod options;
mod sys;
mod time;

pub use attach::{Attach, AttachWriter, ATTACH_SOCKET};
pub use ctl::{Ctl, CTL_FIFO};
pub use error::{Error, Result, RuntimeError, EXIT_CANNOT_INVOKE, EXIT_ENGINE, EXIT_NOT_FOUND};
pub use exit::{oom_killed, ExitStatus, ExitWatcher};
pub use logs::{rotated_files, LogReadOptions, LogReader};
pub use monitor::{Monitor, ENV_ATTACH_PIPE, ENV_START_PIPE, ENV_SYNC_PIPE};
pub use options::{
    ExecOptions, ExitCommand, HealthOptions, LogDriver, LogLevel, MonitorOptions, OnFailure,
};
pub use time::parse_rfc3339_nanos;
