//! `exec`: a process in a running container, through a monitor in exec mode
//! with `--exec-attach` (Podman's flow: attach pipe -> connect -> release).

use std::fs;
use std::path::PathBuf;

use oci_spec::runtime::{Process, Spec, UserBuilder};
use vigil::client::{Attach, Ctl, ExecOptions, LogDriver, Monitor, MonitorOptions};

use super::create::resolve_user;
use super::lifecycle::{client_error, Engine, PID_TIMEOUT};
use super::record::{Record, Status};
use super::session::{relay, SessionEnd, SessionOptions};
use super::store::new_id;
use crate::error::RunnerError;

/// What `exec` asks for.
#[derive(Clone, Debug, Default)]
pub struct ExecRequest {
    pub command: Vec<String>,
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub tty: bool,
    pub stdin: bool,
    pub detach: bool,
    pub detach_keys: Vec<u8>,
}

/// The process spec: the container's process with the command, env, cwd,
/// user and terminal replaced.
fn process_spec(base: &Process, rec: &Record, req: &ExecRequest) -> Result<Process, RunnerError> {
    let mut p = base.clone();
    p.set_args(Some(req.command.clone()));
    p.set_terminal(Some(req.tty));
    p.set_console_size(crate::spec::console_box(
        req.tty,
        crate::spec::terminal_size(),
    )?);
    let mut env = p.env().clone().unwrap_or_default();
    for e in &req.env {
        let (k, v) = match e.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => match std::env::var(e) {
                Ok(v) => (e.clone(), v),
                Err(_) => continue,
            },
        };
        env.retain(|x| x.split_once('=').map_or(x.as_str(), |(n, _)| n) != k);
        env.push(format!("{k}={v}"));
    }
    if req.tty && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".into());
    }
    p.set_env(Some(env));
    if let Some(w) = req.workdir.as_ref().filter(|w| !w.is_empty()) {
        p.set_cwd(w.into());
    }
    if let Some(u) = &req.user {
        let user = resolve_user(&rec.rootfs_source, u)?;
        let spec_user = UserBuilder::default()
            .uid(user.uid)
            .gid(user.gid)
            .additional_gids(user.additional_gids)
            .build()
            .map_err(|e| RunnerError::Engine(format!("exec user: {e}")))?;
        p.set_user(spec_user);
    }
    Ok(p)
}

/// Run `req` in container `id`; returns the process's exit code (attached),
/// or prints the session id and returns 0 (detached).
pub fn exec(engine: &Engine<'_>, id: &str, req: &ExecRequest) -> Result<i32, RunnerError> {
    let rec = {
        let _lock = engine.store.lock(id)?;
        engine.refresh(id)?
    };
    if rec.status != Status::Running {
        return Err(RunnerError::Engine(format!(
            "can only create exec sessions on running containers: container state improper (container {} is {})",
            rec.short_id(),
            rec.status.as_str()
        )));
    }
    let f = engine.files(id);
    let spec = Spec::load(f.dir.join("config.json"))
        .map_err(|e| RunnerError::Engine(format!("reading the container spec: {e}")))?;
    let base = spec.process().clone().unwrap_or_default();
    let process = process_spec(&base, &rec, req)?;
    let exec_id = new_id()?;
    let session: PathBuf = f.dir.join("exec").join(&exec_id[..12]);
    fs::create_dir_all(session.join("exits"))
        .map_err(|e| RunnerError::io(format!("creating {}", session.display()), e))?;
    let spec_path = session.join("process.json");
    let json = serde_json::to_vec(&process)
        .map_err(|e| RunnerError::Engine(format!("encoding process: {e}")))?;
    fs::write(&spec_path, json)
        .map_err(|e| RunnerError::io(format!("writing {}", spec_path.display()), e))?;

    let result = run_session(engine, &rec, req, &session, &spec_path, &exec_id);
    if !req.detach {
        let _ = fs::remove_dir_all(&session);
    }
    result
}

fn run_session(
    engine: &Engine<'_>,
    rec: &Record,
    req: &ExecRequest,
    session: &std::path::Path,
    spec_path: &std::path::Path,
    exec_id: &str,
) -> Result<i32, RunnerError> {
    let rt = engine.runtime()?;
    let oci_log = session.join("oci-log");
    let mut o = MonitorOptions::new(rec.id.clone(), rt.path.clone());
    o.cuuid = Some(exec_id.to_string());
    o.name = Some(rec.name.clone());
    o.bundle = Some(session.to_path_buf());
    o.container_pidfile = Some(session.join("pidfile"));
    o.conmon_pidfile = Some(session.join("conmon.pid"));
    o.exit_dir = Some(session.join("exits"));
    o.runtime_args = rt.global_args(Some(&oci_log));
    o.log_drivers = vec![LogDriver::None];
    o.terminal = req.tty;
    o.stdin = req.stdin;
    o.exec = Some(ExecOptions {
        process_spec: spec_path.to_path_buf(),
        attach: !req.detach,
    });
    let monitor = engine.ctx.monitor_path()?;
    let mut m = Monitor::spawn(&monitor, &o, &[]).map_err(|e| client_error(e, None))?;
    if req.detach {
        m.await_pid(Some(PID_TIMEOUT))
            .map_err(|e| client_error(e, Some(&oci_log)))?;
        println!("{exec_id}");
        return Ok(0);
    }
    m.await_attach_ready(Some(PID_TIMEOUT))
        .map_err(|e| client_error(e, Some(&oci_log)))?;
    let attach = Attach::connect(session).map_err(|e| client_error(e, None))?;
    m.release_exec().map_err(|e| client_error(e, None))?;
    m.await_pid(Some(PID_TIMEOUT))
        .map_err(|e| client_error(e, Some(&oci_log)))?;
    let ctl = if req.tty {
        Ctl::open(session).ok()
    } else {
        None
    };
    let opts = SessionOptions {
        stdin: req.stdin,
        tty: req.tty,
        detach_keys: req.detach_keys.clone(),
        sig_proxy: None,
    };
    if relay(attach, ctl, opts)? != SessionEnd::Exited {
        return Ok(0);
    }
    let code = m
        .await_exit_code(None)
        .map_err(|e| client_error(e, Some(&oci_log)))?;
    Ok(code)
}
