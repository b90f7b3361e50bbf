//! `vigil build [CONTEXT]`: build an image from a Containerfile, with
//! `podman build`'s flags, output and exit codes (`crate::build` does the
//! work). Errors are printed as Podman prints them (`Error: …`).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use clap::Args;

use super::registry_flags::RegistryFlags;
use crate::build::{self, BuildOptions, Format, PullPolicy};
use crate::context::Context;
use crate::error::RunnerError;
use crate::image::oci::Platform;

#[derive(Debug, Clone, Args)]
pub struct BuildArgs {
    /// Name of the resulting image (repeatable)
    #[arg(short, long = "tag", value_name = "NAME")]
    pub tag: Vec<String>,

    /// Containerfile to use (default: CONTEXT/Containerfile, else CONTEXT/Dockerfile; - reads stdin)
    #[arg(short, long = "file", value_name = "PATH")]
    pub file: Vec<PathBuf>,

    /// Build-time variable ARG=VALUE (ARG alone takes vigil's environment)
    #[arg(long = "build-arg", value_name = "ARG=VALUE")]
    pub build_arg: Vec<String>,

    /// Build up to this stage and make it the result
    #[arg(long, value_name = "STAGE")]
    pub target: Option<String>,

    /// Do not use cached steps
    #[arg(long)]
    pub no_cache: bool,

    /// Cache intermediate images (default true)
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_value = "true", default_missing_value = "true", action = clap::ArgAction::Set)]
    pub layers: bool,

    /// Pull policy: missing (true), always, never (false)
    #[arg(long, value_name = "POLICY", num_args = 0..=1, default_value = "missing", default_missing_value = "true")]
    pub pull: String,

    /// Print only the image ID
    #[arg(short, long)]
    pub quiet: bool,

    /// Write the image ID to this file (sha256:<id>, no newline)
    #[arg(long, value_name = "FILE")]
    pub iidfile: Option<PathBuf>,

    /// Add a label KEY=VALUE to the image (repeatable)
    #[arg(long, value_name = "KEY=VALUE")]
    pub label: Vec<String>,

    /// Image format: oci or docker
    #[arg(long, value_name = "FORMAT", default_value = "oci")]
    pub format: String,

    /// Squash the stage's new layers into one
    #[arg(long)]
    pub squash: bool,

    /// Squash all of the image's layers, the base's too, into one
    #[arg(long)]
    pub squash_all: bool,

    /// Build for this platform (OS/ARCH[/VARIANT], or a comma-separated
    /// list); only this machine's is possible, as RUN steps run natively
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<String>,

    /// Set the created time of the image and of every file in its new
    /// layers to this many seconds since the epoch (reproducible builds)
    #[arg(long, value_name = "SECONDS", allow_negative_numbers = true)]
    pub timestamp: Option<i64>,

    /// Network for RUN: private (a namespace of its own on the default
    /// network; slirp4netns rootless), host, none, or a network's name
    #[arg(long, value_name = "MODE", default_value = "private")]
    pub network: String,

    /// Ignore file instead of CONTEXT/.containerignore
    #[arg(long, value_name = "FILE")]
    pub ignorefile: Option<PathBuf>,

    #[command(flatten)]
    pub registry: RegistryFlags,

    /// Remove intermediate containers (always done)
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_value = "true", default_missing_value = "true", action = clap::ArgAction::Set)]
    pub rm: bool,

    /// Build context directory
    #[arg(value_name = "CONTEXT", default_value = ".")]
    pub context: PathBuf,
}

fn options(args: &BuildArgs) -> Result<BuildOptions, String> {
    let context = std::fs::canonicalize(&args.context)
        .map_err(|e| format!("stat {}: {e}", args.context.display()))?;
    if !context.is_dir() {
        return Err(format!(
            "context {} is not a directory",
            args.context.display()
        ));
    }
    let (containerfile, text) = match args.file.first() {
        Some(p) if p == Path::new("-") => {
            let mut text = String::new();
            std::io::stdin()
                .take(build::parse::MAX_CONTAINERFILE + 1)
                .read_to_string(&mut text)
                .map_err(|e| format!("reading the Containerfile from stdin: {e}"))?;
            (PathBuf::from("-"), text)
        }
        Some(p) => (p.clone(), read_containerfile(p)?),
        None => {
            let c = context.join("Containerfile");
            let d = context.join("Dockerfile");
            let p = if c.exists() { c } else { d };
            if !p.exists() {
                return Err(format!("stat {}: no such file or directory", p.display()));
            }
            let text = read_containerfile(&p)?;
            (p, text)
        }
    };
    let mut build_args = BTreeMap::new();
    for a in &args.build_arg {
        match a.split_once('=') {
            Some((k, v)) => {
                build_args.insert(k.to_string(), v.to_string());
            }
            None => {
                if let Ok(v) = std::env::var(a) {
                    build_args.insert(a.clone(), v);
                }
            }
        }
    }
    let labels = args
        .label
        .iter()
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap_or((l, ""));
            (k.to_string(), v.to_string())
        })
        .collect();
    let format = match args.format.as_str() {
        "oci" => Format::Oci,
        "docker" => Format::Docker,
        other => return Err(format!("unrecognized image type {other:?}")),
    };
    let pull = match args.pull.as_str() {
        "missing" | "true" | "ifmissing" | "ifnewer" | "newer" => PullPolicy::Missing,
        "always" => PullPolicy::Always,
        "never" | "false" => PullPolicy::Never,
        other => return Err(format!("invalid pull policy {other:?}")),
    };
    if let Some(wanted) = &args.platform {
        check_platform(wanted)?;
    }
    if args.network.is_empty() || args.network.contains(',') {
        return Err(format!(
            "unsupported --network {:?} for build: one of private, host, none, slirp4netns or a network name",
            args.network
        ));
    }
    Ok(BuildOptions {
        context,
        containerfile,
        text,
        tags: args.tag.clone(),
        build_args,
        target: args.target.clone(),
        no_cache: args.no_cache,
        layers: args.layers,
        pull,
        quiet: args.quiet,
        labels,
        format,
        squash: args.squash,
        squash_all: args.squash_all,
        timestamp: args.timestamp,
        network: args.network.clone(),
        ignore_file: args.ignorefile.clone(),
        registry: args.registry.options().map_err(|e| e.to_string())?,
    })
}

/// `--platform`: this machine's platform (a missing variant matches), else
/// an error naming both: RUN steps run natively, there is no emulation.
/// A comma-separated list (Podman builds one image per platform and a
/// manifest list of them) passes when every entry is this machine's, so
/// one image is built; another platform in it is refused by name.
fn check_platform(wanted: &str) -> Result<(), String> {
    let list: Vec<&str> = wanted.split(',').map(str::trim).collect();
    if list.len() == 1 {
        return check_one_platform(wanted);
    }
    for one in &list {
        check_one_platform(one).map_err(|why| {
            format!(
                "{why}; --platform {wanted}: a list asks for one image per platform and a \
                 manifest list of them, which vigil build cannot make"
            )
        })?;
    }
    Ok(())
}

fn check_one_platform(wanted: &str) -> Result<(), String> {
    let host = Platform::host();
    let parts: Vec<&str> = wanted.split('/').collect();
    let platform = match parts.as_slice() {
        [os, arch] if !os.is_empty() && !arch.is_empty() => Platform {
            os: (*os).into(),
            architecture: (*arch).into(),
            variant: None,
        },
        [os, arch, variant] if !os.is_empty() && !arch.is_empty() => Platform {
            os: (*os).into(),
            architecture: (*arch).into(),
            variant: Some((*variant).into()),
        },
        _ => {
            return Err(format!(
                "invalid platform {wanted:?}: expected OS/ARCH[/VARIANT] (this machine: {})",
                host.display()
            ))
        }
    };
    if platform.matches(&host) {
        Ok(())
    } else {
        Err(format!(
            "--platform {wanted}: vigil build runs RUN steps natively, without emulation, so it \
             builds only for this machine's platform {}",
            host.display()
        ))
    }
}

fn read_containerfile(p: &Path) -> Result<String, String> {
    let meta = std::fs::metadata(p).map_err(|e| format!("stat {}: {e}", p.display()))?;
    if meta.len() > build::parse::MAX_CONTAINERFILE {
        return Err(format!(
            "{}: Containerfile larger than {} bytes",
            p.display(),
            build::parse::MAX_CONTAINERFILE
        ));
    }
    std::fs::read_to_string(p).map_err(|e| format!("reading {}: {e}", p.display()))
}

/// Builds; errors are printed here (`Error: …`) and become the exit code.
pub fn handle(ctx: &Context, args: &BuildArgs) -> Result<i32, RunnerError> {
    let opts = match options(args) {
        Ok(o) => o,
        Err(msg) => {
            eprintln!("Error: {msg}");
            return Ok(125);
        }
    };
    match build::build(ctx, &opts) {
        Ok(built) => {
            if let Some(path) = &args.iidfile {
                std::fs::write(path, format!("sha256:{}", built.id))
                    .map_err(|e| RunnerError::io(format!("writing {}", path.display()), e))?;
            }
            Ok(0)
        }
        Err(e) => {
            eprintln!("Error: {e}");
            Ok(e.exit_code())
        }
    }
}
