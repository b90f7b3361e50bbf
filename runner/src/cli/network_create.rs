//! `vigil network create`: a bridge network with its own subnet and bridge.

use clap::Args;

use crate::context::Context;
use crate::error::RunnerError;
use crate::network::config::CreateOptions;

#[derive(Debug, Clone, Args)]
pub struct NetworkCreateArgs {
    /// Driver (only bridge)
    #[arg(short, long, value_name = "DRIVER", default_value = "bridge")]
    pub driver: String,

    /// Subnet in CIDR notation: IPv4 (default: the next free /24 of
    /// 10.78.0.0/15) and/or IPv6 (unique local, fc00::/7)
    #[arg(long, value_name = "CIDR")]
    pub subnet: Vec<String>,

    /// Gateway of the subnet of its family (default: its first address)
    #[arg(long, value_name = "IP")]
    pub gateway: Option<String>,

    /// An IPv6 subnet too: a random unique local /64 unless --subnet gives one
    #[arg(long)]
    pub ipv6: bool,

    /// No route out of the network (no NAT, no published ports)
    #[arg(long)]
    pub internal: bool,

    /// No DNS server (aardvark-dns) on the network
    #[arg(long)]
    pub disable_dns: bool,

    /// Set metadata on the network: KEY[=VALUE]
    #[arg(long, value_name = "KEY=VALUE")]
    pub label: Vec<String>,

    /// Name (default: vigilN)
    #[arg(value_name = "NAME")]
    pub name: Option<String>,
}

pub fn handle(ctx: &Context, args: &NetworkCreateArgs) -> Result<i32, RunnerError> {
    if args.driver != "bridge" {
        return Err(RunnerError::Engine(format!(
            "unsupported driver {}: only bridge networks",
            args.driver
        )));
    }
    if args.gateway.is_some() && args.subnet.is_empty() {
        return Err(RunnerError::Engine("--gateway needs --subnet".into()));
    }
    if let Some(bad) = args
        .label
        .iter()
        .find(|l| l.is_empty() || l.starts_with('='))
    {
        return Err(RunnerError::Engine(format!(
            "invalid --label {bad:?}: want KEY or KEY=VALUE"
        )));
    }
    let env = crate::container::net::env(ctx);
    let def = env.store.create(&CreateOptions {
        name: args.name.clone(),
        subnets: args.subnet.clone(),
        gateway: args.gateway.clone(),
        ipv6: args.ipv6,
        internal: args.internal,
        disable_dns: args.disable_dns,
        labels: args
            .label
            .iter()
            .map(|l| match l.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (l.clone(), String::new()),
            })
            .collect(),
    })?;
    println!("{}", def.name);
    Ok(0)
}
