//! How a rootless container's spec differs (runner-notes §3.6): no cgroup
//! settings, Podman's `/sys` rules, devpts without an unmapped tty group.

use super::mounts::MountRules;
use super::namespaces::Network;
use super::SpecOptions;
use crate::error::RunnerError;

/// What a rootless container cannot have, refused before anything is built.
/// A rootless container joins only network namespaces vigil made for it
/// (slirp4netns); `--network ns:PATH` is refused at create
/// (`network::configure`).
pub fn check(_opts: &SpecOptions) -> Result<(), RunnerError> {
    Ok(())
}

/// With the host's network in a user namespace, `/sys` cannot be a fresh
/// sysfs: it becomes a read-only bind of the host's, and `/sys/kernel` is
/// masked too. The same for a container with a user namespace of its own in
/// a network namespace made outside it (vigil's bridge or slirp4netns
/// namespace): sysfs is mounted only for a network namespace the mounting
/// user namespace owns (Podman's `canMountSys`).
pub fn binds_sys(opts: &SpecOptions) -> bool {
    (opts.rootless && opts.network == Network::Host)
        || (opts.userns.is_some() && matches!(opts.network, Network::Path(_)))
}

/// The default mounts' rootless differences for `opts`.
pub fn mount_rules(opts: &SpecOptions) -> MountRules {
    let no_tty_gid = match &opts.userns {
        Some((_, gids)) => gids.to_host(5).is_none(),
        None => {
            opts.rootless
                && crate::rootless::userns::current_map("gid")
                    .is_some_and(|m| m.to_host(5).is_none())
        }
    };
    MountRules {
        bind_sys: binds_sys(opts),
        no_tty_gid,
    }
}
