//! `vigil port`: a container's published ports.

use clap::Args;

use crate::container::Engine;
use crate::context::Context;
use crate::error::RunnerError;
use crate::network::ports;

#[derive(Debug, Clone, Args)]
pub struct PortArgs {
    /// Every container
    #[arg(short, long)]
    pub all: bool,

    /// The container (not with --all)
    #[arg(value_name = "CONTAINER")]
    pub container: Option<String>,

    /// Only this container port: PORT[/PROTOCOL]
    #[arg(value_name = "PORT")]
    pub port: Option<String>,
}

pub fn handle(ctx: &Context, args: &PortArgs) -> Result<i32, RunnerError> {
    let engine = Engine::new(ctx);
    if args.all {
        for rec in engine.store.records()? {
            if !rec.config.net.ports.is_empty() {
                println!("{}", rec.short_id());
                for line in ports::port_lines(&rec.config.net.ports) {
                    println!("{line}");
                }
            }
        }
        return Ok(0);
    }
    let Some(name) = &args.container else {
        return Err(RunnerError::Engine(
            "you must supply a running container name or ID".into(),
        ));
    };
    let Some(id) = engine.store.lookup(name)? else {
        return Err(crate::container::store::no_such_container(name));
    };
    let rec = {
        let _lock = engine.store.lock(&id)?;
        engine.refresh(&id)?
    };
    let mappings = &rec.config.net.ports;
    match &args.port {
        None => {
            for line in ports::port_lines(mappings) {
                println!("{line}");
            }
        }
        Some(p) => {
            let found = ports::port_lookup(mappings, p)?;
            if found.is_empty() {
                return Err(RunnerError::Engine(format!(
                    "failed to find published port {p:?}"
                )));
            }
            for line in found {
                println!("{line}");
            }
        }
    }
    Ok(0)
}
