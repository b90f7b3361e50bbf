//! `vigil version`: the version, in Podman's layout and keys.

use clap::Args;
use serde_json::json;

use super::output::print_out;
use super::template::Output;
use crate::context::Context;
use crate::error::RunnerError;

/// The API version vigil's command line follows.
pub const API_VERSION: &str = "4.3.1";

#[derive(Debug, Clone, Args)]
pub struct VersionArgs {
    /// Output: `json` or a Go template (`{{.Client.Version}}`)
    #[arg(short, long, value_name = "FORMAT")]
    pub format: Option<String>,
}

/// `{"Client": {...}}` with Podman's keys.
pub fn version_json() -> serde_json::Value {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    json!({
        "Client": {
            "APIVersion": API_VERSION,
            "Version": env!("CARGO_PKG_VERSION"),
            "GoVersion": "",
            "GitCommit": "",
            "BuiltTime": "Thu Jan  1 00:00:00 1970",
            "Built": 0,
            "OsArch": format!("linux/{arch}"),
            "Os": "linux",
        }
    })
}

pub fn handle(_ctx: &Context, args: &VersionArgs) -> Result<i32, RunnerError> {
    let v = version_json();
    match Output::parse("version", args.format.as_deref())? {
        Output::Json => print_out(&format!(
            "{}\n",
            serde_json::to_string_pretty(&v).unwrap_or_default()
        )),
        Output::Template(f) => print_out(&format!("{}\n", f.render(&v)?)),
        Output::Default => {
            let c = &v["Client"];
            let s = |k: &str| c[k].as_str().unwrap_or("").to_string();
            print_out(&format!(
                "Client:       vigil\nVersion:      {}\nAPI Version:  {}\nBuilt:        {}\nOS/Arch:      {}\n",
                s("Version"),
                s("APIVersion"),
                s("BuiltTime"),
                s("OsArch")
            ));
        }
    }
    Ok(0)
}
