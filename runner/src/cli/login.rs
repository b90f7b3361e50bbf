//! `vigil login`: verify credentials with a registry and store them in the
//! auth file. The password is taken from `-p`, `--password-stdin` or a
//! no-echo prompt; it never appears in output, errors or child argv.

use std::io::{self, Read};
use std::path::PathBuf;

use clap::Args;

use super::output::print_out;
use super::registry_flags::{prompt_line, prompt_password, registry_err};
use crate::config::auth::{normalize_key, Credentials};
use crate::context::Context;
use crate::error::RunnerError;
use crate::registry::{self, RegistryOptions};

#[derive(Debug, Clone, Args)]
pub struct LoginArgs {
    /// Username for the registry
    #[arg(short, long, value_name = "USERNAME")]
    pub username: Option<String>,

    /// Password for the registry (prefer --password-stdin)
    #[arg(short, long, value_name = "PASSWORD")]
    pub password: Option<String>,

    /// Take the password from stdin
    #[arg(long, conflicts_with = "password")]
    pub password_stdin: bool,

    /// Print the username stored for the registry
    #[arg(long)]
    pub get_login: bool,

    /// Path of the authentication file
    #[arg(long, value_name = "FILE")]
    pub authfile: Option<PathBuf>,

    /// Require HTTPS and verify certificates (default: per registries.conf)
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", action = clap::ArgAction::Set)]
    pub tls_verify: Option<bool>,

    /// Directory with certificates (*.crt, *.cert, *.key) for the registry
    #[arg(long, value_name = "DIR")]
    pub cert_dir: Option<PathBuf>,

    /// Registry: HOST[:PORT][/NAMESPACE] or a URL
    #[arg(value_name = "REGISTRY")]
    pub registry: String,
}

pub fn handle(_ctx: &Context, args: &LoginArgs) -> Result<i32, RunnerError> {
    let key = normalize_key(&args.registry);
    let files = registry::auth_files(args.authfile.as_deref());
    let stored = files
        .lookup(&key)
        .map_err(|e| RunnerError::Engine(e.to_string()))?;
    if args.get_login {
        return match stored {
            Some(creds) => {
                print_out(&format!("{}\n", creds.username));
                Ok(0)
            }
            None => Err(RunnerError::Engine(format!("not logged into {key}"))),
        };
    }
    let opts = RegistryOptions {
        tls_verify: args.tls_verify,
        creds: None,
        authfile: args.authfile.clone(),
        cert_dir: args.cert_dir.clone(),
        choose: None,
    };
    if let (Some(creds), None, None, false) =
        (&stored, &args.username, &args.password, args.password_stdin)
    {
        eprintln!("Authenticating with existing credentials for {key}");
        if registry::login(&args.registry, creds, &opts).is_ok() {
            print_out(&format!(
                "Existing credentials are valid. Already logged in to {key}\n"
            ));
            return Ok(0);
        }
    }
    let username = match &args.username {
        Some(u) => u.clone(),
        None => prompt_line("Username: ")?,
    };
    if username.is_empty() {
        return Err(RunnerError::Engine(
            "getting username and password: username is empty".into(),
        ));
    }
    let password = if let Some(p) = &args.password {
        p.clone()
    } else if args.password_stdin {
        let mut text = String::new();
        io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| RunnerError::io("reading the password from stdin", e))?;
        text.trim_end_matches(['\n', '\r']).to_string()
    } else {
        prompt_password("Password: ")?
    };
    let creds = Credentials { username, password };
    registry::login(&args.registry, &creds, &opts).map_err(registry_err)?;
    print_out("Login Succeeded!\n");
    Ok(0)
}
