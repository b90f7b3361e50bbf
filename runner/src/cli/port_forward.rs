//! `vigil internal-port-forward NETNS CHILD_IP PORT/PROTO...` (hidden): the
//! rootless port forwarder started by `network::slirp`. fd 3 is the exit
//! pipe, fds 4, 5, ... the host sockets for the container ports given.

use std::os::fd::{FromRawFd, OwnedFd};
use std::path::PathBuf;

use clap::Args;

use crate::context::Context;
use crate::error::RunnerError;
use crate::network::forwarder::Proto;

#[derive(Debug, Clone, Args)]
pub struct PortForwardArgs {
    pub netns: PathBuf,
    pub child_ip: String,
    /// `PORT/tcp` or `PORT/udp` (a bare PORT is tcp).
    pub ports: Vec<String>,
}

pub fn handle(_ctx: &Context, args: &PortForwardArgs) -> Result<i32, RunnerError> {
    let valid = |fd: i32| std::fs::symlink_metadata(format!("/proc/self/fd/{fd}")).is_ok();
    let mut ports = Vec::new();
    for p in &args.ports {
        let (port, proto) = p.split_once('/').unwrap_or((p.as_str(), "tcp"));
        match (port.parse::<u16>(), Proto::parse(proto)) {
            (Ok(port), Some(proto)) => ports.push((port, proto)),
            _ => {
                return Err(RunnerError::Engine(format!(
                    "internal-port-forward: invalid port {p:?} (PORT/tcp or PORT/udp)"
                )))
            }
        }
    }
    let count = ports.len() as i32;
    if !(3..4 + count).all(valid) {
        return Err(RunnerError::Engine(
            "internal-port-forward is started by vigil with its sockets as fds 3, 4, ...".into(),
        ));
    }
    // SAFETY: fds 3, 4, ... were checked open above and were passed to this
    // process to own (one per port from 4 on); nothing else here uses them.
    let (exit_fd, listeners) = unsafe {
        let listeners = ports
            .iter()
            .enumerate()
            .map(|(i, (port, proto))| (OwnedFd::from_raw_fd(4 + i as i32), *port, *proto))
            .collect();
        (OwnedFd::from_raw_fd(3), listeners)
    };
    crate::network::forwarder::run(&args.netns, &args.child_ip, exit_fd, listeners)
        .map_err(|e| RunnerError::io("port forwarder", e))?;
    Ok(0)
}
