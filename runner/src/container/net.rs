//! The container side of networking: where the network files are for this
//! invocation, and setup/teardown around the monitor with the record kept
//! up to date (so a crash half-way leaves what `teardown` needs).

use std::ffi::OsString;
use std::path::PathBuf;

use super::record::Record;
use crate::context::Context;
use crate::error::RunnerError;
use crate::network::{self, Attached, Container, NetEnv, NetworkStore};

/// Overrides the helper directories (netavark, aardvark-dns), colon-separated
/// (containers.conf `helper_binaries_dir`).
pub const ENV_HELPER_DIRS: &str = "VIGIL_HELPER_BINARIES_DIR";

/// The network environment. Network files are per user, not per `--root`
/// (like Podman's /etc/containers/networks): every vigil of a user sees the
/// same networks and addresses, so concurrent stores never collide.
pub fn env(ctx: &Context) -> NetEnv {
    let var = |name: &str| std::env::var_os(name);
    let (uid, _) = crate::rootless::caller_ids(var);
    let rootless = crate::rootless::active().is_some();
    let data =
        crate::paths::default_store_dir(uid, &var).unwrap_or_else(|_| ctx.paths.store.clone());
    let state = crate::paths::default_state_dir(uid, &var);
    let (podman_dir, netns_dir) = if uid == 0 {
        (
            PathBuf::from("/etc/containers/networks"),
            PathBuf::from("/run/netns"),
        )
    } else {
        let home = var("HOME").map(PathBuf::from).unwrap_or_default();
        (
            home.join(".local/share/containers/storage/networks"),
            state.join("netns"),
        )
    };
    let helper_dirs = match var(ENV_HELPER_DIRS) {
        Some(v) if !v.is_empty() => std::env::split_paths(&v).collect(),
        _ => network::helpers::HELPER_DIRS
            .iter()
            .map(PathBuf::from)
            .collect(),
    };
    NetEnv {
        store: NetworkStore {
            dir: data.join("networks"),
            podman_dir,
        },
        run_dir: state.join("networks"),
        netns_dir,
        helper_dirs,
        search_path: ctx.search_path.clone(),
        rootless,
        debug: ctx.log_level <= crate::context::LogLevel::Debug,
        forwarder_command: vigil_command(ctx),
    }
}

/// This vigil (argv[0] first) with the global flags that select the same
/// store: for the monitor's exit commands and the port forwarder.
pub fn vigil_command(ctx: &Context) -> Vec<OsString> {
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("vigil"));
    let mut args: Vec<OsString> = vec![exe.into()];
    args.extend(ctx.vigil_global_args());
    args
}

/// Set up `rec`'s network, saving the record as each piece is made.
pub fn setup(
    ctx: &Context,
    rec: &mut Record,
    dir: &std::path::Path,
) -> Result<Attached, RunnerError> {
    let env = env(ctx);
    let mut state = std::mem::take(&mut rec.net_state);
    let mut snapshot = rec.clone();
    let save_dir = dir.to_path_buf();
    let mut persist = |s: &network::NetworkState| {
        snapshot.net_state = s.clone();
        snapshot
            .save(&save_dir)
            .map_err(|e| network::NetworkError::Config(e.to_string()))
    };
    let ctr = Container {
        id: &rec.id,
        name: &rec.name,
        dir,
    };
    let result = network::setup(&env, &ctr, &rec.config.net, &mut state, &mut persist);
    rec.net_state = state;
    Ok(result?)
}

/// Wait for a setup still running (netavark) and save what it reported.
pub fn finish(
    rec: &mut Record,
    pending: Option<network::PendingSetup>,
    dir: &std::path::Path,
) -> Result<(), RunnerError> {
    let Some(pending) = pending else {
        return Ok(());
    };
    let result = network::finish(pending, &mut rec.net_state);
    rec.save(dir)?;
    Ok(result?)
}

/// Undo whatever is set up (idempotent).
pub fn teardown(ctx: &Context, rec: &mut Record) {
    teardown_state(ctx, &rec.id, &mut rec.net_state);
}

/// [`teardown`] of a state taken out of its record.
pub fn teardown_state(ctx: &Context, id: &str, state: &mut network::NetworkState) {
    if state.is_empty() {
        return;
    }
    let env = env(ctx);
    network::teardown(&env, id, state);
}
