//! Flags shared by the commands that talk to registries (pull, push, login,
//! search, run/create --pull), and the password prompt.

use std::io::{self, BufRead, IsTerminal, Write};
use std::path::PathBuf;

use clap::Args;
use nix::sys::termios::{self, LocalFlags, SetArg};

use crate::config::auth::Credentials;
use crate::error::RunnerError;
use crate::registry::{RegistryOptions, WantedPlatform};

/// `--tls-verify`, `--creds`, `--authfile`, `--cert-dir`.
#[derive(Debug, Clone, Default, Args)]
pub struct RegistryFlags {
    /// Require HTTPS and verify certificates (default: per registries.conf)
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", action = clap::ArgAction::Set)]
    pub tls_verify: Option<bool>,

    /// Credentials (USERNAME[:PASSWORD]) for the registry
    #[arg(long, value_name = "USERNAME[:PASSWORD]")]
    pub creds: Option<String>,

    /// Path of the authentication file (default: ${XDG_RUNTIME_DIR}/containers/auth.json)
    #[arg(long, value_name = "FILE")]
    pub authfile: Option<PathBuf>,

    /// Directory with certificates (*.crt, *.cert, *.key) for the registry
    #[arg(long, value_name = "DIR")]
    pub cert_dir: Option<PathBuf>,
}

impl RegistryFlags {
    /// The options, prompting for a `--creds` password on a terminal.
    pub fn options(&self) -> Result<RegistryOptions, RunnerError> {
        let creds = match &self.creds {
            None => None,
            Some(text) => Some(parse_creds(text)?),
        };
        Ok(RegistryOptions {
            tls_verify: self.tls_verify,
            creds,
            authfile: self.authfile.clone(),
            cert_dir: self.cert_dir.clone(),
            choose: Some(super::short_name_prompt::choose),
        })
    }
}

/// `USER:PASS`, or `USER` with the password asked on the terminal.
fn parse_creds(text: &str) -> Result<Credentials, RunnerError> {
    if let Some(creds) = Credentials::parse_creds(text) {
        return Ok(creds);
    }
    if text.is_empty() || text.starts_with(':') {
        return Err(RunnerError::Engine(
            "--creds: the username must not be empty".into(),
        ));
    }
    let password = prompt_password("Password: ")?;
    Ok(Credentials {
        username: text.to_string(),
        password,
    })
}

/// `--platform`, `--os`, `--arch`, `--variant`.
#[derive(Debug, Clone, Default, Args)]
pub struct PlatformFlags {
    /// Image platform OS/ARCH[/VARIANT] (default: this machine's)
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<String>,
    /// Override the OS of the image to pull
    #[arg(long, value_name = "OS")]
    pub os: Option<String>,
    /// Override the architecture of the image to pull
    #[arg(long, value_name = "ARCH")]
    pub arch: Option<String>,
    /// Use VARIANT instead of the default architecture variant
    #[arg(long, value_name = "VARIANT")]
    pub variant: Option<String>,
}

impl PlatformFlags {
    pub fn wanted(&self) -> Result<Option<WantedPlatform>, RunnerError> {
        if self.platform.is_none()
            && self.os.is_none()
            && self.arch.is_none()
            && self.variant.is_none()
        {
            return Ok(None);
        }
        WantedPlatform::from_flags(
            self.platform.as_deref(),
            self.os.as_deref(),
            self.arch.as_deref(),
            self.variant.as_deref(),
        )
        .map(Some)
        .map_err(|e| RunnerError::Engine(e.to_string()))
    }
}

/// Reads a line from the terminal with echo off (`prompt` on stderr). Not
/// a terminal: Podman's error.
pub fn prompt_password(prompt: &str) -> Result<String, RunnerError> {
    let stdin = io::stdin();
    let mut err = io::stderr();
    if !stdin.is_terminal() {
        let _ = write!(err, "{prompt}");
        return Err(RunnerError::Engine(
            "getting username and password: reading password: inappropriate ioctl for device"
                .into(),
        ));
    }
    let saved = termios::tcgetattr(&stdin).ok();
    if let Some(saved) = &saved {
        let mut quiet = saved.clone();
        quiet.local_flags.remove(LocalFlags::ECHO);
        let _ = termios::tcsetattr(&stdin, SetArg::TCSANOW, &quiet);
    }
    // The prompt only once echo is off: nothing typed after it shows.
    let _ = write!(err, "{prompt}");
    let _ = err.flush();
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    if let Some(saved) = &saved {
        let _ = termios::tcsetattr(&stdin, SetArg::TCSANOW, saved);
    }
    let _ = writeln!(err);
    read.map_err(|e| RunnerError::io("reading password", e))?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

/// Reads a line from stdin, echoed (`Username: `).
pub fn prompt_line(prompt: &str) -> Result<String, RunnerError> {
    let mut err = io::stderr();
    let _ = write!(err, "{prompt}");
    let _ = err.flush();
    let mut line = String::new();
    io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| RunnerError::io("reading username", e))?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

/// A registry error as the runner reports it (exit 125).
pub fn registry_err(err: crate::registry::RegistryError) -> RunnerError {
    RunnerError::Engine(err.to_string())
}
