//! `vigil push [SOURCE] DESTINATION`: push a local image to a registry.

use clap::{Args, ValueEnum};

use super::registry_flags::{registry_err, RegistryFlags};
use crate::context::Context;
use crate::error::RunnerError;
use crate::image::compress::Compression;
use crate::registry::push::ManifestFormat;
use crate::registry::{self, PushOptions};

/// `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    Oci,
    V2s2,
}

/// `--compression-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompressionArg {
    Gzip,
    Zstd,
}

#[derive(Debug, Clone, Args)]
pub struct PushArgs {
    /// Manifest type: oci or v2s2 (Docker schema 2)
    #[arg(short, long, value_enum, default_value = "oci")]
    pub format: FormatArg,

    /// Compression of the layers sent (default: as stored)
    #[arg(long, value_enum)]
    pub compression_format: Option<CompressionArg>,

    /// Write the digest of the pushed manifest to FILE
    #[arg(long, value_name = "FILE")]
    pub digestfile: Option<std::path::PathBuf>,

    /// Suppress output information when pushing images
    #[arg(short, long)]
    pub quiet: bool,

    #[command(flatten)]
    pub registry: RegistryFlags,

    /// The local image
    #[arg(value_name = "SOURCE")]
    pub source: String,

    /// Where to push: [docker://]HOST[:PORT]/REPOSITORY[:TAG] (default: SOURCE)
    #[arg(value_name = "DESTINATION")]
    pub destination: Option<String>,
}

pub fn handle(ctx: &Context, args: &PushArgs) -> Result<i32, RunnerError> {
    let opts = PushOptions {
        registry: args.registry.options()?,
        quiet: args.quiet,
        format: match args.format {
            FormatArg::Oci => ManifestFormat::Oci,
            FormatArg::V2s2 => ManifestFormat::V2s2,
        },
        compression: args.compression_format.map(|c| match c {
            CompressionArg::Gzip => Compression::Gzip,
            CompressionArg::Zstd => Compression::Zstd,
        }),
    };
    let dest = args.destination.as_deref().unwrap_or(&args.source);
    let digest = registry::push(ctx, &args.source, dest, &opts).map_err(registry_err)?;
    if let Some(file) = &args.digestfile {
        std::fs::write(file, digest.to_string())
            .map_err(|e| RunnerError::io(format!("writing {}", file.display()), e))?;
    }
    Ok(0)
}
