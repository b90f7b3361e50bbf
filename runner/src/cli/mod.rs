//! The `vigil` command line: global options and one module per command, with
//! Podman's command and flag names.

use std::path::PathBuf;

use clap::builder::PossibleValue;
use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

pub use crate::context::LogLevel;
use crate::context::Settings;

pub mod argv;
pub mod attach;
pub mod build;
pub mod create;
pub mod exec;
pub mod filter;
pub mod healthcheck;
pub mod image;
pub mod images;
pub mod inspect;
pub mod kill;
pub mod load;
pub mod login;
pub mod logout;
pub mod logs;
pub mod output;
pub mod podman_flags;
pub mod ps;
pub mod pull;
pub mod push;
pub mod registry_flags;
pub mod rm;
pub mod rmi;
pub mod run;
pub mod search;
pub mod start;
pub mod stop;
pub mod tag;
pub mod wait;

/// vigil: a daemonless container runner.
#[derive(Debug, Parser)]
#[command(
    name = "vigil",
    version = concat!("version ", env!("CARGO_PKG_VERSION")),
    disable_version_flag = true
)]
pub struct Cli {
    /// Print version
    #[arg(short, long, action = ArgAction::Version)]
    pub version: (),

    #[command(flatten)]
    pub global: GlobalOptions,

    #[command(subcommand)]
    pub command: Command,
}

/// Options accepted before or after any command.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Global options")]
pub struct GlobalOptions {
    /// Store directory: images and container file systems
    /// [default: /var/lib/vigil as root, else $XDG_DATA_HOME/vigil]
    #[arg(long, global = true, value_name = "DIR")]
    pub root: Option<PathBuf>,

    /// State directory: container state, sockets, exit files
    /// [default: /run/vigil as root, else $XDG_RUNTIME_DIR/vigil]
    #[arg(long, global = true, value_name = "DIR")]
    pub runroot: Option<PathBuf>,

    /// OCI runtime: a name looked up on PATH, or a path
    #[arg(long, global = true, value_name = "RUNTIME", default_value = "runc")]
    pub runtime: PathBuf,

    /// Monitor (conmon) binary [default: conmon next to vigil, else on PATH]
    #[arg(long, global = true, value_name = "PATH")]
    pub conmon: Option<PathBuf>,

    /// Log messages at this level and above
    #[arg(long, global = true, value_name = "LEVEL", value_enum, default_value_t = LogLevel::Warn)]
    pub log_level: LogLevel,
}

impl GlobalOptions {
    /// The settings the layers below the CLI run with.
    pub fn settings(&self) -> Settings {
        Settings {
            root: self.root.clone(),
            runroot: self.runroot.clone(),
            runtime: self.runtime.clone(),
            conmon: self.conmon.clone(),
            log_level: self.log_level,
        }
    }
}

/// `--log-level` takes Podman's level names (and `warning`).
impl ValueEnum for LogLevel {
    fn value_variants<'a>() -> &'a [Self] {
        &[
            LogLevel::Trace,
            LogLevel::Debug,
            LogLevel::Info,
            LogLevel::Warn,
            LogLevel::Error,
            LogLevel::Fatal,
            LogLevel::Panic,
        ]
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(match self {
            LogLevel::Trace => PossibleValue::new("trace"),
            LogLevel::Debug => PossibleValue::new("debug"),
            LogLevel::Info => PossibleValue::new("info"),
            LogLevel::Warn => PossibleValue::new("warn").alias("warning"),
            LogLevel::Error => PossibleValue::new("error"),
            LogLevel::Fatal => PossibleValue::new("fatal"),
            LogLevel::Panic => PossibleValue::new("panic"),
        })
    }
}

/// The commands, named as in Podman.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a command in a new container
    Run(run::RunArgs),
    /// Build an image from a Containerfile
    Build(build::BuildArgs),
    /// Create but do not start a container
    Create(create::CreateArgs),
    /// Start one or more containers
    Start(start::StartArgs),
    /// List containers
    Ps(ps::PsArgs),
    /// Fetch the logs of one or more containers
    Logs(logs::LogsArgs),
    /// Attach to a running container
    Attach(attach::AttachArgs),
    /// Run a process in a running container
    Exec(exec::ExecArgs),
    /// Stop one or more containers
    Stop(stop::StopArgs),
    /// Kill one or more running containers with a signal
    Kill(kill::KillArgs),
    /// Block on one or more containers and print their exit codes
    Wait(wait::WaitArgs),
    /// Remove one or more containers
    Rm(rm::RmArgs),
    /// Display the configuration of containers or images
    Inspect(inspect::InspectArgs),
    /// Load images from an archive or an OCI layout
    Load(load::LoadArgs),
    /// List images in local storage
    Images(images::ImagesArgs),
    /// Remove one or more images from local storage
    Rmi(rmi::RmiArgs),
    /// Add an additional name to a local image
    Tag(tag::TagArgs),
    /// Pull an image from a registry
    Pull(pull::PullArgs),
    /// Push an image to a registry
    Push(push::PushArgs),
    /// Log in to a registry
    Login(login::LoginArgs),
    /// Log out of a registry
    Logout(logout::LogoutArgs),
    /// Search a registry for images
    Search(search::SearchArgs),
    /// Manage images
    #[command(subcommand)]
    Image(image::ImageCommand),
    /// Manage healthchecks of containers
    #[command(subcommand)]
    Healthcheck(healthcheck::HealthcheckCommand),
}

impl Command {
    /// The command as typed, for messages: `run`, `image inspect`...
    pub fn name(&self) -> &'static str {
        match self {
            Command::Run(_) => "run",
            Command::Build(_) => "build",
            Command::Create(_) => "create",
            Command::Start(_) => "start",
            Command::Ps(_) => "ps",
            Command::Logs(_) => "logs",
            Command::Attach(_) => "attach",
            Command::Exec(_) => "exec",
            Command::Stop(_) => "stop",
            Command::Kill(_) => "kill",
            Command::Wait(_) => "wait",
            Command::Rm(_) => "rm",
            Command::Inspect(_) => "inspect",
            Command::Load(_) => "load",
            Command::Images(_) => "images",
            Command::Rmi(_) => "rmi",
            Command::Tag(_) => "tag",
            Command::Pull(_) => "pull",
            Command::Push(_) => "push",
            Command::Login(_) => "login",
            Command::Logout(_) => "logout",
            Command::Search(_) => "search",
            Command::Image(sub) => sub.name(),
            Command::Healthcheck(sub) => sub.name(),
        }
    }
}

#[cfg(test)]
mod tests;
