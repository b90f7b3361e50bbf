//! `vigil network`: the network command group (create, ls, inspect, rm,
//! prune, connect, disconnect).

use clap::Subcommand;

use super::{
    network_connect, network_create, network_disconnect, network_inspect, network_ls,
    network_prune, network_rm,
};
use crate::container::{Engine, Record};
use crate::context::Context;
use crate::error::RunnerError;

#[derive(Debug, Clone, Subcommand)]
pub enum NetworkCommand {
    /// Create a network
    Create(network_create::NetworkCreateArgs),
    /// List networks
    #[command(alias = "list")]
    Ls(network_ls::NetworkLsArgs),
    /// Display the configuration of networks
    Inspect(network_inspect::NetworkInspectArgs),
    /// Remove networks
    #[command(alias = "remove")]
    Rm(network_rm::NetworkRmArgs),
    /// Remove every network no container uses
    Prune(network_prune::NetworkPruneArgs),
    /// Add a container to a network
    Connect(network_connect::NetworkConnectArgs),
    /// Remove a container from a network
    Disconnect(network_disconnect::NetworkDisconnectArgs),
}

impl NetworkCommand {
    pub fn name(&self) -> &'static str {
        match self {
            NetworkCommand::Create(_) => "network create",
            NetworkCommand::Ls(_) => "network ls",
            NetworkCommand::Inspect(_) => "network inspect",
            NetworkCommand::Rm(_) => "network rm",
            NetworkCommand::Prune(_) => "network prune",
            NetworkCommand::Connect(_) => "network connect",
            NetworkCommand::Disconnect(_) => "network disconnect",
        }
    }
}

pub fn handle(ctx: &Context, command: &NetworkCommand) -> Result<i32, RunnerError> {
    match command {
        NetworkCommand::Create(a) => network_create::handle(ctx, a),
        NetworkCommand::Ls(a) => network_ls::handle(ctx, a),
        NetworkCommand::Inspect(a) => network_inspect::handle(ctx, a),
        NetworkCommand::Rm(a) => network_rm::handle(ctx, a),
        NetworkCommand::Prune(a) => network_prune::handle(ctx, a),
        NetworkCommand::Connect(a) => network_connect::handle(ctx, a),
        NetworkCommand::Disconnect(a) => network_disconnect::handle(ctx, a),
    }
}

/// Containers of this store on network `name`, and whether a container of
/// another store holds an address there.
pub fn users(ctx: &Context, name: &str) -> Result<(Vec<Record>, bool), RunnerError> {
    let engine = Engine::new(ctx);
    let ours: Vec<Record> = engine
        .store
        .records()?
        .into_iter()
        .filter(|r| r.config.net.networks.iter().any(|n| n == name))
        .collect();
    let env = crate::container::net::env(ctx);
    let holders = crate::network::network_users(&env, name)?;
    let elsewhere = holders.iter().any(|h| !ours.iter().any(|r| &r.id == h));
    Ok((ours, elsewhere))
}
