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
pub mod commit;
pub mod container;
pub mod cp;
pub mod create;
pub mod df;
pub mod diff;
pub mod docker;
pub mod exec;
pub mod export;
pub mod filter;
pub mod healthcheck;
pub mod history;
pub mod image;
pub mod images;
pub mod import;
pub mod info;
pub mod inspect;
pub mod inspect_network;
pub mod kill;
pub mod latest;
pub mod load;
pub mod login;
pub mod logout;
pub mod logs;
pub mod network;
pub mod network_connect;
pub mod network_create;
pub mod network_disconnect;
pub mod network_filter;
pub mod network_inspect;
pub mod network_ls;
pub mod network_prune;
pub mod network_rm;
pub mod output;
pub mod pause;
pub mod podman_flags;
pub mod port;
pub mod port_forward;
pub mod prune;
pub mod ps;
pub mod pull;
pub mod push;
pub mod registry_flags;
pub mod rename;
pub mod restart;
pub mod rm;
pub mod rmi;
pub mod run;
pub mod save;
pub mod search;
pub mod short_name_prompt;
pub mod start;
pub mod stats;
pub mod stop;
pub mod system;
pub mod tag;
pub mod template;
pub mod timespec;
pub mod top;
pub mod units;
pub mod unpause;
pub mod version;
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
    /// Store directory: images and container file systems [default:
    /// storage.conf's graphroot, else /var/lib/vigil as root, else $XDG_DATA_HOME/vigil]
    #[arg(long, global = true, value_name = "DIR")]
    pub root: Option<PathBuf>,

    /// State directory: container state, sockets, exit files [default:
    /// storage.conf's runroot, else /run/vigil as root, else $XDG_RUNTIME_DIR/vigil]
    #[arg(long, global = true, value_name = "DIR")]
    pub runroot: Option<PathBuf>,

    /// OCI runtime: a name from containers.conf's [engine.runtimes], a name
    /// looked up on PATH, or a path [default: containers.conf's runtime, else runc]
    #[arg(long, global = true, value_name = "RUNTIME")]
    pub runtime: Option<PathBuf>,

    /// Monitor (conmon) binary [default: containers.conf's conmon_path, else
    /// conmon next to vigil, else on PATH]
    #[arg(long, global = true, value_name = "PATH")]
    pub conmon: Option<PathBuf>,

    /// Log messages at this level and above
    #[arg(long, global = true, value_name = "LEVEL", value_enum, default_value_t = LogLevel::Warn)]
    pub log_level: LogLevel,

    /// Output logging information to syslog as well as the console
    #[arg(long, global = true)]
    pub syslog: bool,
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
            syslog: self.syslog,
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
    /// Restart one or more containers
    Restart(restart::RestartArgs),
    /// Pause all the processes in containers
    Pause(pause::PauseArgs),
    /// Unpause the processes in paused containers
    Unpause(unpause::UnpauseArgs),
    /// Rename a container
    Rename(rename::RenameArgs),
    /// Manage containers
    #[command(subcommand)]
    Container(container::ContainerCommand),
    /// Display the vigil version information
    Version(version::VersionArgs),
    /// Display vigil's system information
    Info(info::InfoArgs),
    /// Export a container's file system as a tar archive
    Export(export::ExportArgs),
    /// Import a tarball as a file system image
    Import(import::ImportArgs),
    /// Inspect changes to a container's or image's file system
    Diff(diff::DiffArgs),
    /// Create a new image from a container's changes
    Commit(commit::CommitArgs),
    /// Save images to an archive or a directory
    Save(save::SaveArgs),
    /// Show the history of an image
    History(history::HistoryArgs),
    /// Display the running processes of a container
    Top(top::TopArgs),
    /// Copy files between a container and the host
    Cp(cp::CpArgs),
    /// Display a live stream of container resource usage
    Stats(stats::StatsArgs),
    /// Manage vigil itself
    #[command(subcommand)]
    System(system::SystemCommand),
    /// Manage networks
    #[command(subcommand)]
    Network(network::NetworkCommand),
    /// List a container's published ports
    Port(port::PortArgs),
    /// Forward published ports into a rootless container (started by vigil)
    #[command(hide = true, name = "internal-port-forward")]
    InternalPortForward(port_forward::PortForwardArgs),
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
            Command::Restart(_) => "restart",
            Command::Pause(_) => "pause",
            Command::Unpause(_) => "unpause",
            Command::Rename(_) => "rename",
            Command::Container(sub) => sub.name(),
            Command::Version(_) => "version",
            Command::Info(_) => "info",
            Command::Export(_) => "export",
            Command::Import(_) => "import",
            Command::Diff(_) => "diff",
            Command::Commit(_) => "commit",
            Command::Save(_) => "save",
            Command::History(_) => "history",
            Command::Top(_) => "top",
            Command::Cp(_) => "cp",
            Command::Stats(_) => "stats",
            Command::System(sub) => sub.name(),
            Command::Network(sub) => sub.name(),
            Command::Port(_) => "port",
            Command::InternalPortForward(_) => "internal-port-forward",
            Command::Healthcheck(sub) => sub.name(),
        }
    }
}

#[cfg(test)]
mod tests;
