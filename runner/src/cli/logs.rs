//! `vigil logs`: print a container's log (k8s-file driver).

use clap::Args;

use crate::context::Context;
use crate::error::RunnerError;

#[derive(Debug, Clone, Args)]
pub struct LogsArgs {
    /// Keep printing new output as it is logged
    #[arg(short, long)]
    pub follow: bool,

    /// Print only the last N lines; -1 prints all
    #[arg(long, value_name = "N", default_value_t = -1, allow_negative_numbers = true)]
    pub tail: i64,

    /// Print only lines logged since this time (RFC 3339, Unix time or a duration such as 10m)
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,

    /// Prefix each line with its timestamp
    #[arg(short, long)]
    pub timestamps: bool,

    /// Containers whose logs to print
    #[arg(value_name = "CONTAINER", required = true)]
    pub containers: Vec<String>,
}

impl LogsArgs {
    /// How many trailing lines to print; `None` means all (any negative `--tail`).
    pub fn tail_lines(&self) -> Option<u64> {
        u64::try_from(self.tail).ok()
    }
}

pub fn handle(_ctx: &Context, _args: &LogsArgs) -> Result<i32, RunnerError> {
    Err(RunnerError::NotImplemented)
}
