//! `conmon`: a container monitor, drop-in compatible with conmon 2.2.1.
//!
//! One process per container or exec session: it starts the OCI runtime, owns
//! the container's stdio, writes its logs and its exit status. The start-up
//! sequence below follows conmon-interface §2.1 step by step.
//!
//! The entry point is the C `main`: Rust's own start-up (`lang_start`) reads
//! /proc/self/maps to place a stack guard and installs SIGSEGV/SIGBUS handlers
//! on an alternate signal stack, ~15 system calls on the way to spawning the
//! runtime that buy only a nicer message on stack overflow. What it does that
//! matters (fds 0-2 kept open, SIGPIPE ignored) is done here.

#![cfg_attr(not(test), no_main)]

mod attach;
mod cli;
mod coalesce;
mod config;
mod ctl;
mod daemon;
mod diag;
mod event_loop;
mod exit;
mod fds;
mod health;
mod logging;
mod notify;
mod oom;
mod pagebuf;
mod residency;
mod runtime;
mod signals;
mod stdio;
mod sync_pipe;
mod terminal;

use config::{Config, Invalid, Mode};
use diag::Fatal;
use event_loop::{Children, EventLoop, LoopEnd};
use std::ffi::CString;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};
use stdio::{OutputStream, StdioPipes};
use sync_pipe::SyncPipe;
use vigil::proto::attach::Stream;
use vigil::proto::sync::{SyncKey, TIMED_OUT_MESSAGE};

#[cfg(not(test))]
#[no_mangle]
pub extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    fds::sanitize_standard_fds();
    // SAFETY: ignoring a signal; what Rust's runtime does before `main`.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    conmon_main();
    0
}

/// The monitor; `std::env::args_os` works without Rust's start-up (glibc
/// passes argv to initializers, which std uses).
#[cfg_attr(test, allow(dead_code))]
fn conmon_main() {
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
    let inherited = fds::inherited_fds();
    let opts = match cli::parse(std::env::args_os().skip(1)) {
        Ok(cli::Parsed::Help) => {
            print_and_exit(&cli::help_text(), 0);
        }
        Ok(cli::Parsed::Run(o)) => *o,
        Err(e) => {
            let _ = std::io::stderr()
                .write_all(format!("conmon: option parsing failed: {e}\n").as_bytes());
            std::process::exit(1);
        }
    };
    if opts.version {
        print_and_exit(&cli::version_text(), 0);
    }
    let cfg = match config::validate(opts) {
        Ok(c) => c,
        Err(Invalid::Plain(msg)) => {
            let _ = std::io::stderr().write_all(msg.as_bytes());
            std::process::exit(1);
        }
        Err(Invalid::Fatal(f)) => {
            f.report();
            std::process::exit(1);
        }
    };
    let code = run(cfg, inherited);
    std::process::exit(code);
}

fn print_and_exit(text: &str, code: i32) -> ! {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
    std::process::exit(code)
}

/// Everything after validation; returns the monitor's exit status.
fn run(mut cfg: Config, mut inherited: Vec<RawFd>) -> i32 {
    let saved_oom = daemon::protect_from_oom();
    signals::install_startup_handlers();

    // Start pipe, read before daemonizing so the engine can move us into a cgroup first.
    let start_fd = match fds::fd_from_env("_OCI_STARTPIPE") {
        Ok(fd) => fd,
        Err(f) => return fail(f),
    };
    let mut start_pipe: Option<OwnedFd> = None;
    if let Some(fd) = start_fd {
        // fd 0 ("" in the variable) is neither read nor closed, as conmon.
        let owned = (fd > 0 || cfg.opts.exec_attach).then(|| fds::own_inherited(fd));
        if let Some(pipe) = owned.as_ref().filter(|_| fd > 0) {
            if let Err(f) = daemon::read_start_pipe(pipe) {
                return fail(f);
            }
        }
        if cfg.opts.exec_attach {
            start_pipe = owned;
        }
        inherited.retain(|&i| i != fd);
    }

    let dev_null = match daemon::DevNull::open() {
        Ok(d) => d,
        Err(f) => return fail(f),
    };
    if !cfg.opts.sync {
        if let Err(f) = daemon::daemonize(cfg.opts.conmon_pidfile.as_deref()) {
            return fail(f);
        }
    }

    let notify = match (&cfg.opts.sdnotify_socket, &cfg.bundle) {
        (Some(host), Some(bundle)) => match notify::NotifyRelay::new(host, bundle) {
            Ok(n) => Some(n),
            Err(f) => return fail(f),
        },
        _ => None,
    };

    let key = SyncKey::for_mode(cfg.opts.api_version, cfg.is_exec());
    let mut sync = match fds::fd_from_env("_OCI_SYNCPIPE") {
        Ok(fd) => {
            if let Some(fd) = fd {
                inherited.retain(|&i| i != fd);
            }
            SyncPipe::new(fd.map(fds::own_inherited), key)
        }
        Err(f) => return fail(f),
    };
    let mut attach_pipe = None;
    if cfg.opts.exec_attach {
        match fds::fd_from_env("_OCI_ATTACHPIPE") {
            Ok(Some(fd)) => {
                inherited.retain(|&i| i != fd);
                attach_pipe = Some(SyncPipe::new(Some(fds::own_inherited(fd)), key));
            }
            Ok(None) => {
                return fail(Fatal {
                    text: "--attach specified but _OCI_ATTACHPIPE was not".into(),
                    errno: Some(libc::ENOENT),
                })
            }
            Err(f) => return fail(f),
        }
    }

    let passthrough = cfg.logs.passthrough;
    if !passthrough {
        if let Err(f) = dev_null.redirect_stdio() {
            return fail(f);
        }
    }
    if let Err(f) = daemon::become_session_and_subreaper() {
        return fail(f);
    }

    let console = if cfg.opts.terminal {
        match terminal::ConsoleSocket::create() {
            Ok(c) => Some(c),
            Err(f) => return fail(f),
        }
    } else {
        None
    };
    if cfg.opts.seccomp_notify_socket.is_some() {
        // conmon 2.2.1 built with libseccomp fails exactly like this.
        return fail(Fatal {
            text: "seccomp support not present".into(),
            errno: Some(libc::EOPNOTSUPP),
        });
    }
    let pipes = match StdioPipes::create(
        cfg.opts.stdin && !passthrough && !cfg.opts.terminal,
        !passthrough && !cfg.opts.terminal,
    ) {
        Ok(p) => p,
        Err(f) => return fail(f),
    };

    let argv = runtime::build_argv(
        &cfg,
        console
            .as_ref()
            .map(|c| c.path.to_string_lossy().into_owned())
            .as_deref(),
    );
    diag::enabled(diag::Level::Trace).then(|| {
        let joined: String = argv.iter().map(|a| format!("{a} ")).collect();
        trace!("calling runtime args: {joined}");
    });
    let mut attach = None;
    let mut ctl = None;
    if let (Some(bundle), false) = (&cfg.bundle, passthrough) {
        let socket_dir = cfg
            .opts
            .socket_dir_path
            .clone()
            .unwrap_or_else(|| config::DEFAULT_SOCKET_DIR.into());
        let cuuid = cfg.opts.cuuid.clone().unwrap_or_default();
        match attach::AttachServer::bind(
            bundle,
            std::path::Path::new(&socket_dir),
            &cuuid,
            cfg.opts.full_attach,
        ) {
            Ok(a) => attach = Some(a),
            Err(f) => return fail(f),
        }
        match ctl::CtlFifos::create(bundle) {
            Ok(c) => ctl = Some(c),
            Err(f) => return fail(f),
        }
    }
    // Exec attach: the engine may now connect, then send the second start byte.
    if let Some(ap) = attach_pipe.as_mut() {
        ap.send(0, None);
    }

    let old_mask = signals::block();
    let stdio_targets = if passthrough {
        [None, None, None]
    } else {
        [
            Some(
                pipes
                    .child_stdin
                    .as_ref()
                    .map_or(dev_null.read.as_raw_fd(), |f| f.as_raw_fd()),
            ),
            Some(
                pipes
                    .child_stdout
                    .as_ref()
                    .map_or(dev_null.write.as_raw_fd(), |f| f.as_raw_fd()),
            ),
            Some(pipes.child_stderr.as_raw_fd()),
        ]
    };
    let setup = runtime::ChildSetup {
        argv: argv
            .iter()
            .map(|a| CString::new(a.as_bytes()).unwrap_or_default())
            .collect(),
        stdio: stdio_targets,
        chmod_stdio: [
            !passthrough && pipes.child_stdin.is_some(),
            !passthrough && pipes.child_stdout.is_some(),
            !passthrough,
        ],
        replace_listen_pid: cfg.opts.replace_listen_pid,
        start_pipe: start_pipe.as_ref().map(|f| f.as_raw_fd()),
        saved_oom_score_adj: saved_oom.clone(),
        sigmask: old_mask,
    };
    let runtime_pid = match runtime::spawn(&setup) {
        Ok(p) => p,
        Err(f) => return fail(f),
    };
    if passthrough {
        let _ = dev_null.redirect_stdio();
    }
    let signal_fd = match signals::SignalFd::new() {
        Ok(s) => s,
        Err(e) => return fail(Fatal::from_io("Failed to create signalfd", &e)),
    };
    // From here on every exit path runs the exit command.
    let health_setup = (old_mask, saved_oom.clone());
    let exit_command = exit::ExitCommand::new(&cfg, saved_oom);
    let symlink = attach.as_ref().and_then(|a| a.paths.symlink.clone());
    let io = Io {
        pipes,
        console,
        attach,
        ctl,
        signal_fd,
        start_pipe,
        notify,
    };
    let status = monitor(
        &mut cfg,
        io,
        runtime_pid,
        &mut sync,
        inherited,
        health_setup,
    );
    if let Some(link) = symlink {
        let _ = std::fs::remove_file(link);
    }
    drop(sync);
    drop(attach_pipe);
    if let Some(ec) = exit_command {
        ec.run();
    }
    status
}

/// Report a fatal error before the runtime was started; exit status 1.
fn fail(f: Fatal) -> i32 {
    f.report();
    1
}

/// The monitor's channels, set up before the runtime runs.
struct Io {
    pipes: StdioPipes,
    console: Option<terminal::ConsoleSocket>,
    attach: Option<attach::AttachServer>,
    ctl: Option<ctl::CtlFifos>,
    signal_fd: signals::SignalFd,
    start_pipe: Option<OwnedFd>,
    notify: Option<notify::NotifyRelay>,
}

/// From the runtime's start to the exit files; returns the exit status.
fn monitor(
    cfg: &mut Config,
    io: Io,
    runtime_pid: libc::pid_t,
    sync: &mut SyncPipe,
    inherited: Vec<RawFd>,
    health_setup: (nix::sys::signal::SigSet, Vec<u8>),
) -> i32 {
    let Io {
        pipes,
        console,
        attach,
        ctl,
        signal_fd,
        start_pipe,
        notify,
    } = io;
    let StdioPipes {
        stdin_write,
        child_stdin,
        stdout_read,
        child_stdout,
        stderr_read,
        child_stderr,
    } = pipes;
    drop((child_stdin, child_stdout, child_stderr));

    let stderr_stream = match OutputStream::new(stderr_read, Stream::Stderr) {
        Ok(s) => s,
        Err(f) => return fail(f),
    };
    let timeout = runtime_timeout(cfg);
    let runtime_status = match runtime::wait(runtime_pid, timeout) {
        Ok(runtime::RuntimeWait::Exited(s)) => s,
        Ok(runtime::RuntimeWait::TimedOut) => {
            let secs = timeout.map_or(0, |t| t.as_secs());
            let text = read_runtime_stderr(&stderr_stream);
            let mut msg =
                format!("runtime did not finish within {secs} seconds and was killed").into_bytes();
            if !text.is_empty() {
                msg.extend_from_slice(b": ");
                msg.extend_from_slice(&text);
            }
            sync.send(-1, Some(&msg));
            return fail(Fatal::new(String::from_utf8_lossy(&msg).into_owned()));
        }
        Err(f) => return fail(f),
    };
    let mut children = Children {
        runtime_pid,
        container_pid: 0,
        container_status: None,
        others: Vec::new(),
    };

    if !cfg.is_exec() && runtime_status != 0 {
        let text = read_runtime_stderr(&stderr_stream);
        if !text.is_empty() {
            warn!("runtime stderr: {}", String::from_utf8_lossy(&text));
        }
        sync.send(-1, Some(&text));
        return fail(Fatal::new(format!(
            "Failed to create container: exit status {}",
            exit::status_of(runtime_status)
        )));
    }

    // Terminal: the runtime sent the pty master over the console socket.
    let mut master = None;
    if let Some(console) = console {
        match console.receive() {
            Ok(Some(m)) => master = Some(m),
            Ok(None) => {
                sync.send(-1, Some(b"Runtime did not set up terminal"));
                return fail(Fatal::new("Runtime did not set up terminal"));
            }
            Err(f) => return fail(f),
        }
    }

    let pid = match runtime::read_pidfile(&cfg.container_pidfile) {
        Ok(pid) => pid,
        Err(msg) => {
            // Report it (the post-2.2.1 behaviour): engines otherwise only see EOF.
            let text = read_runtime_stderr(&stderr_stream);
            if !text.is_empty() {
                warn!("runtime stderr: {}", String::from_utf8_lossy(&text));
            }
            let report = if text.is_empty() {
                msg.clone().into_bytes()
            } else {
                text
            };
            sync.send(-1, Some(&report));
            return fail(Fatal::new(format!("Failed to read pidfile: {msg}")));
        }
    };
    debug!("container PID: {pid}");
    children.container_pid = pid;
    if !(cfg.is_exec() && !cfg.opts.api_version) {
        sync.send(i64::from(pid), None);
    }

    // With a terminal, output is read from a dup of the master and input
    // written to the master itself.
    let (output_fd, stdin_fd, pty) = match master {
        Some(m) => {
            let out = match m.try_clone() {
                Ok(o) => o,
                Err(e) => return fail(Fatal::from_io("Failed to dup console file descriptor", &e)),
            };
            let raw = m.as_raw_fd();
            (Some(out), Some(m), Some(raw))
        }
        None => (stdout_read, stdin_write, None),
    };
    let stdout_stream = match output_fd
        .map(|fd| OutputStream::new(fd, Stream::Stdout))
        .transpose()
    {
        Ok(s) => s,
        Err(f) => return fail(f),
    };
    let coalesce = cfg.logs.coalesce;
    let logs = logging::LogSinks::new(&mut cfg.logs, &cfg.opts, &cfg.cid);
    let stdin = event_loop::StdinTarget {
        fd: stdin_fd,
        close_on_client_eof: cfg.opts.stdin && !cfg.opts.leave_stdin_open,
    };
    let mut ev = match EventLoop::new(
        signal_fd,
        stdout_stream,
        Some(stderr_stream),
        logs,
        attach,
        ctl,
        stdin,
        pty,
    ) {
        Ok(e) => e,
        Err(e) => return fail(Fatal::from_io("Failed to set up the event loop", &e)),
    };
    if let Some(delay) = coalesce {
        ev.set_coalescing(delay);
    }
    let oom_targets: Vec<std::path::PathBuf> = cfg
        .bundle
        .iter()
        .cloned()
        .chain(
            cfg.opts
                .persist_dir
                .iter()
                .filter(|d| !d.is_empty())
                .map(std::path::PathBuf::from),
        )
        .collect();
    ev.set_oom(oom::OomMonitor::new(pid, oom_targets));
    if let Some(n) = notify {
        ev.set_notify(n);
    }
    if let Some(h) = cfg.health.take() {
        ev.set_health(health::Health::new(h, health_setup.0, health_setup.1));
    }
    let deadline = (cfg.opts.timeout > 0)
        .then(|| Instant::now() + Duration::from_secs(cfg.opts.timeout as u64));
    let end = ev.run(&mut children, deadline);
    let timed_out = end == LoopEnd::TimedOut;
    if let Some(h) = &mut ev.health {
        h.abandon();
    }
    if let Some(o) = &mut ev.oom {
        o.final_check();
    }

    if !timed_out {
        ev.drain();
    }
    ev.logs.finish(!cfg.opts.no_sync_log);

    let status = if timed_out {
        kill_timed_out(children.container_pid);
        -1
    } else {
        children.container_status.map_or(-1, exit::status_of)
    };
    let mut attach = ev.attach.take();
    drop(ev);
    drop(start_pipe);
    for fd in inherited {
        if Some(fd) != sync.raw_fd() {
            fds::close_raw(fd);
        }
    }
    if let Some(a) = &mut attach {
        a.close_all();
    }
    exit::write_exit_files(cfg, status);
    if matches!(cfg.mode, Mode::Exec { .. }) {
        if timed_out {
            sync.send(-1, Some(TIMED_OUT_MESSAGE.as_bytes()));
        } else {
            sync.send(i64::from(status), None);
        }
    }
    if let Some(a) = attach {
        attach::AttachServer::remove_paths(&a.paths);
    }
    status & 0xff
}

/// How long the runtime may take: `--runtime-timeout` (0 = forever), by
/// default 120 s for create and exec and no limit for restore (CRIU can be slow).
fn runtime_timeout(cfg: &Config) -> Option<Duration> {
    match cfg.opts.runtime_timeout {
        Some(0) => None,
        Some(s) if s > 0 => Some(Duration::from_secs(s as u64)),
        _ if matches!(cfg.mode, Mode::Restore { .. }) => None,
        _ => Some(Duration::from_secs(120)),
    }
}

/// One bounded read of what the runtime wrote to its stderr.
fn read_runtime_stderr(s: &OutputStream) -> Vec<u8> {
    // Bounded wait in case a stray process holds the pipe.
    fds::wait_readable(s.fd.as_fd(), 1000);
    let mut buf = vec![0u8; 8191];
    match s.read(&mut buf) {
        stdio::ReadOutcome::Data(n) => {
            buf.truncate(n);
            buf
        }
        _ => Vec::new(),
    }
}

/// `-T` expired: kill the process group of the container process.
fn kill_timed_out(pid: libc::pid_t) {
    if pid <= 0 {
        return;
    }
    use nix::sys::signal::{kill, killpg, Signal};
    use nix::unistd::{getpgid, Pid};
    let pid = Pid::from_raw(pid);
    match getpgid(Some(pid)) {
        Ok(pgid) if pgid.as_raw() > 1 => {
            let _ = killpg(pgid, Signal::SIGKILL);
        }
        _ => {
            let _ = kill(pid, Signal::SIGKILL);
        }
    }
}
