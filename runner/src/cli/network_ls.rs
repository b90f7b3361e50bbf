//! `vigil network ls`: the networks, as Podman lists them.

use clap::Args;

use crate::context::Context;
use crate::error::RunnerError;

#[derive(Debug, Clone, Args)]
pub struct NetworkLsArgs {
    /// Print only the names
    #[arg(short, long)]
    pub quiet: bool,

    /// Output format: table or json
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
}

pub fn handle(ctx: &Context, args: &NetworkLsArgs) -> Result<i32, RunnerError> {
    let env = crate::container::net::env(ctx);
    let all = env.store.list()?;
    if args.quiet {
        for n in &all {
            println!("{}", n.name);
        }
        return Ok(0);
    }
    match args.format.as_deref() {
        None | Some("table") => {}
        Some("json") => {
            println!("{}", crate::network::config::to_json_5(&all));
            return Ok(0);
        }
        Some(f) => {
            return Err(RunnerError::Engine(format!(
                "unsupported --format {f:?}: table or json"
            )))
        }
    }
    let mut rows = vec![vec![
        "NETWORK ID".to_string(),
        "NAME".into(),
        "DRIVER".into(),
    ]];
    for n in &all {
        rows.push(vec![
            n.id.chars().take(12).collect(),
            n.name.clone(),
            n.driver.clone(),
        ]);
    }
    print!("{}", super::output::table(&rows));
    Ok(0)
}
