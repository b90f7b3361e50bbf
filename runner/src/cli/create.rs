//! `vigil create`: create a container from an image without starting it. Its
//! options are shared with `vigil run`.

use clap::{Args, ValueEnum};

use super::argv::ImageAndCommand;
use crate::container::{image, CreateRequest, Engine};
use crate::context::Context;
use crate::error::RunnerError;

/// Everything that defines a container: shared by `create` and `run`.
#[derive(Debug, Clone, Args)]
pub struct CreateArgs {
    /// Remove the container (and its state) when it exits
    #[arg(long)]
    pub rm: bool,

    /// Set metadata on the container
    #[arg(short, long, value_name = "KEY[=VALUE]")]
    pub label: Vec<String>,

    /// Restart policy: no, on-failure[:MAX_RETRIES], always, unless-stopped
    #[arg(long, value_name = "POLICY")]
    pub restart: Option<String>,

    /// Keep stdin open even if not attached
    #[arg(short, long)]
    pub interactive: bool,

    /// Allocate a pseudo-TTY for the container
    #[arg(short, long)]
    pub tty: bool,

    /// Assign a name to the container
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,

    /// Set an environment variable; a bare NAME takes the value from vigil's environment
    #[arg(short, long, value_name = "NAME[=VALUE]")]
    pub env: Vec<String>,

    /// Read environment variables from a file (NAME=VALUE lines; a bare NAME
    /// takes vigil's value; # comments and blank lines are skipped)
    #[arg(long, value_name = "FILE")]
    pub env_file: Vec<std::path::PathBuf>,

    /// Mount a tmpfs (default options rw,rprivate,nosuid,nodev,tmpcopyup, as Podman)
    #[arg(long, value_name = "DEST[:OPTIONS]")]
    pub tmpfs: Vec<String>,

    /// Set the container's host name (also in /etc/hostname and /etc/hosts)
    #[arg(long, value_name = "NAME")]
    pub hostname: Option<String>,

    /// Mount the container's root file system read-only
    #[arg(long)]
    pub read_only: bool,

    /// With --read-only, mount tmpfs on /run, /tmp and /var/tmp
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set,
          num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub read_only_tmpfs: bool,

    /// Add capabilities (repeatable or comma-separated; ALL for every one)
    #[arg(long, value_name = "CAP")]
    pub cap_add: Vec<String>,

    /// Drop capabilities (repeatable or comma-separated; ALL for every one)
    #[arg(long, value_name = "CAP")]
    pub cap_drop: Vec<String>,

    /// Limit the number of processes (0 or -1: unlimited; default 2048)
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub pids_limit: Option<i64>,

    /// Bind mount a volume into the container
    #[arg(short, long, value_name = "SRC:DEST[:OPTIONS]")]
    pub volume: Vec<String>,

    /// Working directory inside the container
    #[arg(short, long, value_name = "DIR")]
    pub workdir: Option<String>,

    /// User (and group) to run the container process as
    #[arg(short, long, value_name = "USER[:GROUP]")]
    pub user: Option<String>,

    /// Override the image's entrypoint (a command or a JSON array)
    #[arg(long, value_name = "COMMAND")]
    pub entrypoint: Option<String>,

    /// Where the monitor writes container output
    #[arg(long, value_name = "DRIVER", value_enum, default_value_t = LogDriver::K8sFile)]
    pub log_driver: LogDriver,

    /// Logging driver option (path=, max-size=, tag=; max-file=N rotates at max-size keeping N old files)
    #[arg(long, value_name = "NAME=VALUE")]
    pub log_opt: Vec<String>,

    /// Memory limit, in bytes or with a unit suffix (b, k, m, g)
    #[arg(short, long, value_name = "SIZE")]
    pub memory: Option<String>,

    /// Network: bridge (the default network), a network's name (or several,
    /// comma-separated), none, host, slirp4netns (rootless default), ns:PATH
    #[arg(long = "network", alias = "net", value_name = "MODE")]
    pub network: Vec<String>,

    /// Publish a container's port to the host: [[IP:][HOSTPORT]:]CONTAINERPORT[/PROTOCOL], ranges as N-M
    #[arg(short, long, value_name = "PORT")]
    pub publish: Vec<String>,

    /// Publish every exposed port (image EXPOSE and --expose) to a random host port
    #[arg(short = 'P', long)]
    pub publish_all: bool,

    /// Expose a port or range (published by -P)
    #[arg(long, value_name = "PORT[/PROTOCOL]")]
    pub expose: Vec<String>,

    /// DNS server for the container's /etc/resolv.conf (replaces the others)
    #[arg(long, value_name = "IP")]
    pub dns: Vec<String>,

    /// DNS search domain for /etc/resolv.conf ('.' for none)
    #[arg(long, value_name = "DOMAIN")]
    pub dns_search: Vec<String>,

    /// Add a line to /etc/hosts
    #[arg(long, value_name = "HOST:IP")]
    pub add_host: Vec<String>,

    /// Another DNS name of the container on its networks
    #[arg(long, value_name = "ALIAS")]
    pub network_alias: Vec<String>,

    /// The container's IPv4 address on its (single) bridge network
    #[arg(long, value_name = "IP")]
    pub ip: Option<String>,

    /// The container's IPv6 address on its (single) bridge network
    #[arg(long, value_name = "IPV6")]
    pub ip6: Option<String>,

    /// The container's MAC address on its (single) bridge network
    #[arg(long, value_name = "MAC")]
    pub mac_address: Option<String>,

    /// User namespace mode: host, auto, keep-id, nomap, ns:PATH
    #[arg(long, value_name = "MODE")]
    pub userns: Option<String>,

    /// UID mapping for the container's user namespace
    #[arg(long, value_name = "CONTAINER_UID:HOST_UID:AMOUNT")]
    pub uidmap: Vec<String>,

    /// GID mapping for the container's user namespace
    #[arg(long, value_name = "CONTAINER_GID:HOST_GID:AMOUNT")]
    pub gidmap: Vec<String>,

    /// Run an init process inside the container that forwards signals and reaps processes
    #[arg(long)]
    pub init: bool,

    /// Limit the rate at which the monitor logs container output (vigil extension)
    #[arg(long, value_name = "RATE")]
    pub log_rate_limit: Option<String>,

    /// Healthcheck command: a shell command, a JSON array (exec form), or none
    #[arg(long, value_name = "COMMAND")]
    pub health_cmd: Option<String>,

    /// Time between healthchecks (Go duration; disable: none scheduled) [default: 30s]
    #[arg(long, value_name = "INTERVAL", allow_hyphen_values = true)]
    pub health_interval: Option<String>,

    /// Failed healthchecks in a row before the container is unhealthy [default: 3]
    #[arg(long, value_name = "RETRIES", allow_hyphen_values = true)]
    pub health_retries: Option<String>,

    /// Time after the start in which failed healthchecks do not count [default: 0s]
    #[arg(long, value_name = "PERIOD", allow_hyphen_values = true)]
    pub health_start_period: Option<String>,

    /// Time a healthcheck may take before it is killed and counts as failed [default: 30s]
    #[arg(long, value_name = "TIMEOUT", allow_hyphen_values = true)]
    pub health_timeout: Option<String>,

    /// What to do when the container becomes unhealthy: none, kill, restart, stop
    #[arg(long, value_name = "ACTION")]
    pub health_on_failure: Option<String>,

    /// Disable any healthcheck, also the image's
    #[arg(long)]
    pub no_healthcheck: bool,

    /// The first argument is not an image but a root file system directory
    /// (kept read-only: an overlay gives the container its own upper layer)
    #[arg(long)]
    pub rootfs: bool,

    /// Pull the image: missing (default), always, never, newer
    #[arg(long, value_name = "POLICY", default_value = "missing", num_args = 0..=1,
          require_equals = true, default_missing_value = "always")]
    pub pull: crate::registry::PullPolicy,

    /// Suppress output information when pulling images
    #[arg(short = 'q', long)]
    pub quiet: bool,

    #[command(flatten)]
    pub registry: super::registry_flags::RegistryFlags,

    #[command(flatten)]
    pub platform: super::registry_flags::PlatformFlags,

    #[command(flatten)]
    pub target: ImageAndCommand,
}

/// Log drivers supported by the monitor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogDriver {
    /// Kubernetes CRI log file (podman's default)
    K8sFile,
    /// The systemd journal
    Journald,
    /// Hand the container's stdio straight through to vigil's
    Passthrough,
    /// No logging
    None,
}

impl LogDriver {
    /// The driver's name as the monitor and `inspect` spell it.
    pub fn name(self) -> &'static str {
        match self {
            LogDriver::K8sFile => "k8s-file",
            LogDriver::Journald => "journald",
            LogDriver::Passthrough => "passthrough",
            LogDriver::None => "none",
        }
    }
}

impl CreateArgs {
    /// [`request`](Self::request) with containers.conf's defaults.
    pub fn request_with(&self, ctx: &Context) -> CreateRequest {
        CreateRequest {
            default_env: ctx.containers_conf.containers.env.clone(),
            ..self.request()
        }
    }

    /// The container definition these flags ask for.
    pub fn request(&self) -> CreateRequest {
        CreateRequest {
            name: self.name.clone(),
            command: self.target.command.clone(),
            entrypoint: self.entrypoint.clone(),
            env: self.env.clone(),
            volumes: self.volume.clone(),
            workdir: self.workdir.clone(),
            user: self.user.clone(),
            tty: self.tty,
            stdin: self.interactive,
            net: crate::network::Request {
                network: self.network.clone(),
                publish: self.publish.clone(),
                publish_all: self.publish_all,
                expose: self.expose.clone(),
                dns: self.dns.clone(),
                dns_search: self.dns_search.clone(),
                add_host: self.add_host.clone(),
                aliases: self.network_alias.clone(),
                ip: self.ip.clone(),
                ip6: self.ip6.clone(),
                mac_address: self.mac_address.clone(),
            },
            log_driver: self.log_driver.name().to_string(),
            log_opts: self.log_opt.clone(),
            log_rate_limit: self.log_rate_limit.clone(),
            memory: self.memory.clone(),
            auto_remove: self.rm,
            userns: self.userns.clone(),
            uidmap: self.uidmap.clone(),
            gidmap: self.gidmap.clone(),
            env_files: self.env_file.clone(),
            hostname: self.hostname.clone(),
            flags: crate::spec::SpecFlags {
                cap_add: self.cap_add.clone(),
                cap_drop: self.cap_drop.clone(),
                tmpfs: self.tmpfs.clone(),
                read_only: self.read_only,
                read_only_tmpfs: self.read_only_tmpfs,
                pids_limit: self.pids_limit,
                init: self.init,
            },
            default_env: Vec::new(),
            restart: self.restart.clone(),
            labels: self.label.clone(),
            health: crate::container::health::HealthFlags {
                cmd: self.health_cmd.clone(),
                interval: self.health_interval.clone(),
                timeout: self.health_timeout.clone(),
                retries: self.health_retries.clone(),
                start_period: self.health_start_period.clone(),
                no_healthcheck: self.no_healthcheck,
                on_failure: self.health_on_failure.clone(),
            },
        }
    }
}

/// Create the container and print its id.
pub fn handle(ctx: &Context, args: &CreateArgs) -> Result<i32, RunnerError> {
    let engine = Engine::new(ctx);
    let name = super::pull::ensure_image(ctx, args)?;
    let image = image::resolve(ctx, &name, args.rootfs)?;
    let net = crate::container::net::env(ctx);
    let record =
        crate::container::create::create(&engine.store, &net, &image, &args.request_with(ctx))?;
    println!("{}", record.id);
    Ok(0)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::cli::{Cli, Command};

    #[test]
    fn new_flags_parse() {
        let args = [
            "vigil",
            "create",
            "--env-file",
            "/e",
            "--tmpfs",
            "/t:size=1m",
            "--hostname",
            "h",
            "--read-only",
            "--read-only-tmpfs=false",
            "--cap-add",
            "sys_admin,net_raw",
            "--cap-drop",
            "ALL",
            "--pids-limit",
            "-1",
            "img",
            "sh",
        ];
        let Command::Create(c) = Cli::try_parse_from(args).unwrap().command else {
            panic!("not create");
        };
        let req = c.request();
        assert_eq!(req.env_files, [std::path::PathBuf::from("/e")]);
        assert_eq!(req.hostname.as_deref(), Some("h"));
        assert_eq!(req.flags.tmpfs, ["/t:size=1m"]);
        assert!(req.flags.read_only && !req.flags.read_only_tmpfs);
        assert_eq!(req.flags.cap_add, ["sys_admin,net_raw"]);
        assert_eq!(req.flags.cap_drop, ["ALL"]);
        assert_eq!(req.flags.pids_limit, Some(-1));
        assert_eq!(c.target.command, ["sh"]);

        let Command::Create(c) = Cli::try_parse_from(["vigil", "create", "img"])
            .unwrap()
            .command
        else {
            panic!("not create");
        };
        let req = c.request();
        assert!(!req.flags.read_only && req.flags.read_only_tmpfs);
        assert_eq!(req.flags.pids_limit, None);
        // --read-only-tmpfs alone means true and does not eat the image.
        let parsed = Cli::try_parse_from(["vigil", "create", "--read-only-tmpfs", "img"]);
        let Command::Create(c) = parsed.unwrap().command else {
            panic!("not create");
        };
        assert!(c.read_only_tmpfs);
        assert_eq!(c.target.image, "img");
        assert!(Cli::try_parse_from(["vigil", "run", "--pids-limit", "abc", "img"]).is_err());
    }
}
