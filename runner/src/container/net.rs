//! The container side of networking: where the network files are for this
//! invocation, and setup/teardown around the monitor with the record kept
//! up to date (so a crash half-way leaves what `teardown` needs).

use std::ffi::OsString;
use std::path::PathBuf;

use super::record::Record;
use crate::context::Context;
use crate::error::RunnerError;
use crate::network::{self, Attached, Container, NetEnv, NetworkStore};

/// Overrides the helper directories (netavark, aardvark-dns), colon-separated;
/// before containers.conf `helper_binaries_dir`, as tests need a private one.
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
        _ if !ctx.containers_conf.engine.helper_binaries_dir.is_empty() => {
            ctx.containers_conf.engine.helper_binaries_dir.clone()
        }
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

/// For a rootless user: remove the shared namespace of bridge networks if
/// no container uses it any more (what a killed vigil left behind), after
/// releasing the addresses of containers that are gone.
pub fn sweep_rootless(ctx: &Context) {
    if crate::rootless::active().is_some() {
        let store = super::store::Store::new(&ctx.paths);
        network::rootless_netns::sweep_leftovers(&env(ctx), || {
            store.ids().map_err(|e| e.to_string())
        });
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

/// Edit a bind-mounted /etc file of a running container in place (the same
/// inode, so the container sees the change).
fn edit_etc_file(
    dir: &std::path::Path,
    file: &str,
    edit: impl FnOnce(&str) -> String,
) -> Result<(), RunnerError> {
    let path = dir.join(file);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(());
    };
    std::fs::write(&path, edit(&text))
        .map_err(|e| RunnerError::io(format!("writing {}", path.display()), e))
}

/// What persists a network state as it changes.
type PersistNetState<'a> =
    dyn FnMut(&network::NetworkState) -> Result<(), network::NetworkError> + 'a;

/// Run `change` on a copy of the record's network state, saving the record
/// with each state it reports (so an interrupted connect or disconnect
/// leaves a record that says what is set up), then keep the final state in
/// `rec` whether or not the change succeeded.
fn change_net_state<T>(
    rec: &mut Record,
    dir: &std::path::Path,
    change: impl FnOnce(
        &mut network::NetworkState,
        &mut PersistNetState<'_>,
    ) -> Result<T, network::NetworkError>,
) -> Result<T, RunnerError> {
    let mut state = rec.net_state.clone();
    let mut snapshot = rec.clone();
    let mut persist = |s: &network::NetworkState| {
        snapshot.net_state = s.clone();
        snapshot
            .save(dir)
            .map_err(|e| network::NetworkError::Config(e.to_string()))
    };
    let result = change(&mut state, &mut persist);
    rec.net_state = state;
    Ok(result?)
}

/// `network connect`: `rec` joins a network; if it runs, the network is set
/// up in its namespace and its hosts and resolv.conf say so. Call under the
/// container's lock with a refreshed record.
pub fn connect(
    ctx: &Context,
    rec: &mut Record,
    dir: &std::path::Path,
    running: bool,
    req: &network::connect::ConnectRequest,
) -> Result<(), RunnerError> {
    use network::etc_files;
    let env = env(ctx);
    let mut cfg = rec.config.net.clone();
    // Owned: `rec` is changed while the container is named.
    let (id, name) = (rec.id.clone(), rec.name.clone());
    let ctr = Container {
        id: &id,
        name: &name,
        dir,
    };
    let def = network::connect::connect_config(&env, &mut cfg, &ctr, req)?;
    if running {
        let attachment = change_net_state(rec, dir, |state, persist| {
            network::connect::connect_running(&env, &ctr, &cfg, &def, state, persist)
        })?;
        let hostname = rec.config.hostname.clone();
        edit_etc_file(dir, "hosts", |t| {
            etc_files::hosts_add_address(t, attachment.main_ip(), &hostname, &rec.name)
        })?;
        if let (Some(server), Some(search)) = (
            attachment.dns_servers.first(),
            attachment.dns_search.first(),
        ) {
            let info = network::EtcInfo {
                dns: cfg.dns.clone(),
                dns_search: cfg.dns_search.clone(),
                ..Default::default()
            };
            edit_etc_file(dir, "resolv.conf", |t| {
                etc_files::resolv_add_network(t, &info, server, search)
            })?;
        }
    }
    rec.config.net = cfg;
    rec.save(dir)?;
    Ok(())
}

/// `network disconnect`: `rec` leaves a network (torn down now if it runs).
pub fn disconnect(
    ctx: &Context,
    rec: &mut Record,
    dir: &std::path::Path,
    running: bool,
    network_name: &str,
) -> Result<(), RunnerError> {
    use network::etc_files;
    let env = env(ctx);
    let mut cfg = rec.config.net.clone();
    // Owned: `rec` is changed while the container is named.
    let (id, name) = (rec.id.clone(), rec.name.clone());
    let ctr = Container {
        id: &id,
        name: &name,
        dir,
    };
    let def = network::connect::disconnect_config(&env, &mut cfg, &ctr, network_name)?;
    if running {
        let detached = change_net_state(rec, dir, |state, persist| {
            network::connect::disconnect_running(&env, &ctr, &def, state, persist)
        })?;
        if let Some(attachment) = detached {
            let hostname = rec.config.hostname.clone();
            edit_etc_file(dir, "hosts", |t| {
                etc_files::hosts_remove_address(t, attachment.main_ip(), &hostname, &rec.name)
            })?;
            let still_used = rec
                .net_state
                .attachments
                .values()
                .any(|a| a.dns_servers.first() == attachment.dns_servers.first());
            if let (Some(server), false) = (attachment.dns_servers.first(), still_used) {
                edit_etc_file(dir, "resolv.conf", |t| {
                    etc_files::resolv_remove_server(t, server)
                })?;
            }
        }
    }
    rec.config.net = cfg;
    rec.save(dir)?;
    Ok(())
}
