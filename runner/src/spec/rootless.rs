//! How a rootless container's spec differs (runner-notes §3.6): no cgroup
//! settings, Podman's `/sys` rules, devpts without an unmapped tty group.

use super::mounts::MountRules;
use super::namespaces::Network;
use super::SpecOptions;
use crate::error::RunnerError;

/// What a rootless container cannot have, refused before anything is built.
pub fn check(opts: &SpecOptions) -> Result<(), RunnerError> {
    if opts.rootless {
        if let Network::Path(p) = &opts.network {
            return Err(RunnerError::Engine(format!(
                "--network ns:{}: a rootless container cannot join a network namespace \
                 it does not own; use --network none or host",
                p.display()
            )));
        }
    }
    Ok(())
}

/// With the host's network in a user namespace, `/sys` cannot be a fresh
/// sysfs: it becomes a read-only bind of the host's, and `/sys/kernel` is
/// masked too.
pub fn binds_sys(opts: &SpecOptions) -> bool {
    opts.rootless && opts.network == Network::Host
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
