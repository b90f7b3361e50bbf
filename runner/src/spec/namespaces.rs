//! The namespaces of a container: `--network`, and the user namespace's
//! ID mappings.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    LinuxIdMapping, LinuxIdMappingBuilder, LinuxNamespace, LinuxNamespaceBuilder,
    LinuxNamespaceType,
};

use super::{err, SpecOptions};
use crate::error::RunnerError;
use crate::rootless::idmap::IdMap;

/// The network namespace mode (`--network`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Network {
    /// A private namespace with only loopback (also `private`: vigil has no bridge).
    None,
    /// The host's namespace.
    Host,
    /// Join the namespace at this path (`ns:PATH`).
    Path(PathBuf),
}

impl Network {
    /// Parse a `--network` value; `None` for the default.
    pub fn parse(value: Option<&str>) -> Result<Network, RunnerError> {
        match value {
            None | Some("none") | Some("private") | Some("bridge") => Ok(Network::None),
            Some("host") => Ok(Network::Host),
            Some(v) => match v.strip_prefix("ns:") {
                Some(p) if p.starts_with('/') => Ok(Network::Path(p.into())),
                _ => Err(RunnerError::Engine(format!(
                    "unsupported network mode {v:?} (none, host, ns:PATH)"
                ))),
            },
        }
    }

    /// The name shown by `inspect`.
    pub fn name(&self) -> String {
        match self {
            Network::None => "none".into(),
            Network::Host => "host".into(),
            Network::Path(p) => format!("ns:{}", p.display()),
        }
    }
}

fn namespace(typ: LinuxNamespaceType, path: Option<&Path>) -> Result<LinuxNamespace, RunnerError> {
    let b = LinuxNamespaceBuilder::default().typ(typ);
    match path {
        Some(p) => b.path(p).build(),
        None => b.build(),
    }
    .map_err(err)
}

/// Podman's namespaces: a private pid, ipc, uts and mount namespace, the
/// network one `--network` asks for, cgroup on cgroup v2 hosts, and a user
/// namespace when the container has mappings of its own.
pub fn namespaces(opts: &SpecOptions) -> Result<Vec<LinuxNamespace>, RunnerError> {
    let mut namespaces = vec![namespace(LinuxNamespaceType::Pid, None)?];
    match &opts.network {
        Network::None => namespaces.push(namespace(LinuxNamespaceType::Network, None)?),
        Network::Host => {}
        Network::Path(p) => namespaces.push(namespace(LinuxNamespaceType::Network, Some(p))?),
    }
    namespaces.push(namespace(LinuxNamespaceType::Ipc, None)?);
    namespaces.push(namespace(LinuxNamespaceType::Uts, None)?);
    namespaces.push(namespace(LinuxNamespaceType::Mount, None)?);
    if opts.cgroup_ns {
        namespaces.push(namespace(LinuxNamespaceType::Cgroup, None)?);
    }
    if opts.userns.is_some() {
        namespaces.push(namespace(LinuxNamespaceType::User, None)?);
    }
    Ok(namespaces)
}

pub(super) fn id_mappings(map: &IdMap) -> Result<Vec<LinuxIdMapping>, RunnerError> {
    map.0
        .iter()
        .map(|m| {
            LinuxIdMappingBuilder::default()
                .container_id(m.container)
                .host_id(m.host)
                .size(m.size)
                .build()
                .map_err(err)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_parse() {
        assert_eq!(Network::parse(Some("host")).unwrap(), Network::Host);
        assert_eq!(Network::parse(None).unwrap(), Network::None);
        assert_eq!(
            Network::parse(Some("ns:/proc/1/ns/net")).unwrap(),
            Network::Path("/proc/1/ns/net".into())
        );
        assert!(Network::parse(Some("slirp4netns")).is_err());
    }
}
