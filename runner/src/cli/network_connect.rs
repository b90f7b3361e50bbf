//! `vigil network connect [--alias A] [--ip IP] [--ip6 IP6] [--mac-address MAC] NETWORK
//! CONTAINER`: a container joins another bridge network (set up at once if
//! it runs). No output, like Podman.

use clap::Args;

use crate::container::{Engine, Status};
use crate::context::Context;
use crate::error::RunnerError;
use crate::network::connect::ConnectRequest;

#[derive(Debug, Clone, Args)]
pub struct NetworkConnectArgs {
    /// Network-scoped alias for the container
    #[arg(long, value_name = "NAME")]
    pub alias: Vec<String>,

    /// A static IPv4 address on this network
    #[arg(long, value_name = "IP")]
    pub ip: Option<String>,

    /// A static IPv6 address on this network
    #[arg(long, value_name = "IPV6")]
    pub ip6: Option<String>,

    /// A static MAC address on this network
    #[arg(long, value_name = "MAC")]
    pub mac_address: Option<String>,

    /// The network, then the container
    #[arg(value_name = "NETWORK CONTAINER")]
    pub names: Vec<String>,
}

pub fn handle(ctx: &Context, args: &NetworkConnectArgs) -> Result<i32, RunnerError> {
    let [network, container] = args.names.as_slice() else {
        return Err(RunnerError::Engine(format!(
            "accepts 2 arg(s), received {}",
            args.names.len()
        )));
    };
    let req = ConnectRequest {
        network: network.clone(),
        aliases: args.alias.clone(),
        ip: args
            .ip
            .as_deref()
            .map(crate::network::parse_static_ip)
            .transpose()?,
        ip6: args
            .ip6
            .as_deref()
            .map(crate::network::parse_static_ip6)
            .transpose()?,
        mac: args
            .mac_address
            .as_deref()
            .map(crate::network::parse_mac)
            .transpose()?,
    };
    let engine = Engine::new(ctx);
    let id = engine.store.resolve(container)?;
    let _lock = engine.store.lock(&id)?;
    let mut rec = engine.refresh(&id)?;
    let running = matches!(rec.status, Status::Running | Status::Paused);
    crate::container::net::connect(ctx, &mut rec, &engine.store.dir(&id), running, &req)?;
    Ok(0)
}
