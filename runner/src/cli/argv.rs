//! `IMAGE [COMMAND [ARG...]]` and `CONTAINER COMMAND [ARG...]`, parsed as Podman
//! does: option parsing stops at the first positional, so everything after the
//! image (or container) belongs to the container command, even words that look
//! like vigil options (`vigil run alpine ls -d` runs `ls -d`).
//!
//! clap cannot express "stop at the first positional" with two positional
//! arguments, so each pair is one trailing positional, split here. A `--` is
//! accepted where options end: before the image (`vigil run -- alpine ls`) or
//! right after it (`vigil run alpine -- ls`); further ones are the command's own.

use clap::error::ErrorKind;
use clap::{Arg, ArgMatches, Args, Command, FromArgMatches};

const ARGV: &str = "argv";

/// What `create` and `run` take after their options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageAndCommand {
    pub image: String,
    /// Replaces the image's command (Cmd); empty means the image's default.
    pub command: Vec<String>,
}

/// What `exec` takes after its options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerAndCommand {
    pub container: String,
    pub command: Vec<String>,
}

impl FromArgMatches for ImageAndCommand {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let (image, command) = split(matches)?;
        Ok(ImageAndCommand { image, command })
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        if matches.contains_id(ARGV) {
            *self = Self::from_arg_matches(matches)?;
        }
        Ok(())
    }
}

impl Args for ImageAndCommand {
    fn augment_args(cmd: Command) -> Command {
        cmd.arg(argv_arg("IMAGE", 1).help(
            "Image to create the container from, then the command and arguments \
             replacing the image's default command",
        ))
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        Self::augment_args(cmd)
    }
}

impl FromArgMatches for ContainerAndCommand {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        // An empty command is refused by `exec` itself, with Podman's code.
        let (container, command) = split(matches)?;
        Ok(ContainerAndCommand { container, command })
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        if matches.contains_id(ARGV) {
            *self = Self::from_arg_matches(matches)?;
        }
        Ok(())
    }
}

impl Args for ContainerAndCommand {
    fn augment_args(cmd: Command) -> Command {
        cmd.arg(
            argv_arg("CONTAINER", 1).help("Container to run in, then the command and arguments"),
        )
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        Self::augment_args(cmd)
    }
}

/// The positional: `target`, then the command words; `min_values` counts both.
fn argv_arg(target: &'static str, min_values: usize) -> Arg {
    Arg::new(ARGV)
        .value_names([target, "COMMAND"])
        .required(true)
        .num_args(min_values..)
        .trailing_var_arg(true)
        .allow_hyphen_values(true)
}

/// The target and the command. The positional accepts hyphens (so the command
/// keeps its options), so an unknown option before the target lands here and
/// is rejected as clap would have.
fn split(matches: &ArgMatches) -> Result<(String, Vec<String>), clap::Error> {
    let mut argv = matches
        .get_many::<String>(ARGV)
        .into_iter()
        .flatten()
        .cloned();
    let target = argv
        .next()
        .ok_or_else(|| clap::Error::raw(ErrorKind::MissingRequiredArgument, "missing arguments"))?;
    if target.starts_with('-') {
        return Err(clap::Error::raw(
            ErrorKind::UnknownArgument,
            format!("unexpected argument '{target}' found"),
        ));
    }
    let mut command: Vec<String> = argv.collect();
    if command.first().is_some_and(|word| word == "--") {
        command.remove(0);
    }
    Ok((target, command))
}
