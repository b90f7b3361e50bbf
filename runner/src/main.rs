//! `vigil`: parse the command line, run the command, exit with Podman's codes.

use std::process::ExitCode;

use clap::Parser;
use vigil_runner::cli::{self, Cli, Command};
use vigil_runner::error::exit_code;
use vigil_runner::{Context, RunnerError};

fn main() -> ExitCode {
    if let Some(argv0) = std::env::args().next() {
        if let Some(banner) = cli::docker::banner(&argv0, cli::docker::NODOCKER.as_ref()) {
            eprintln!("{banner}");
        }
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            // A Podman flag vigil lacks is named, not a parse error.
            let argv: Vec<String> = std::env::args_os()
                .map(|a| a.to_string_lossy().into_owned())
                .collect();
            if let Some((command, message)) = cli::podman_flags::unsupported(&argv, &err) {
                eprintln!("vigil {command}: {message}");
                return to_exit_code(exit_code::ENGINE);
            }
            // Help and version go to stdout and succeed; usage errors are
            // engine errors for Podman, not clap's exit code 2.
            let _ = err.print();
            return if err.use_stderr() {
                to_exit_code(exit_code::ENGINE)
            } else {
                ExitCode::SUCCESS
            };
        }
    };

    vigil_runner::logging::init(cli.global.log_level, cli.global.syslog);
    // The command only, not its arguments: they can hold credentials
    // (`login -p`, `--creds`), which never reach a log.
    log::debug!("Called vigil {}", cli.command.name());

    // The user vigil acts for; a non-root one moves into the rootless user
    // namespace now, while the process is still single-threaded.
    let env = |name: &str| std::env::var_os(name);
    let (uid, gid) = vigil_runner::rootless::caller_ids(env);
    let result = Context::new(&cli.global.settings(), uid, env)
        .and_then(|ctx| vigil_runner::rootless::enter(&ctx, uid, gid, env).map(|()| ctx))
        .inspect(|ctx| {
            // Not for the port forwarder, which a setup starts with the
            // network lock held.
            if !matches!(cli.command, Command::InternalPortForward(_)) {
                vigil_runner::container::net::sweep_rootless(ctx);
            }
        })
        .and_then(|ctx| dispatch(&ctx, &cli.command));
    match result {
        Ok(code) => to_exit_code(code),
        Err(err) => {
            eprintln!("vigil {}: {err}", cli.command.name());
            to_exit_code(err.exit_code())
        }
    }
}

fn dispatch(ctx: &Context, command: &Command) -> Result<i32, RunnerError> {
    match command {
        Command::Run(args) => cli::run::handle(ctx, args),
        Command::Build(args) => cli::build::handle(ctx, args),
        Command::Create(args) => cli::create::handle(ctx, args),
        Command::Start(args) => cli::start::handle(ctx, args),
        Command::Ps(args) => cli::ps::handle(ctx, args),
        Command::Logs(args) => cli::logs::handle(ctx, args),
        Command::Attach(args) => cli::attach::handle(ctx, args),
        Command::Exec(args) => cli::exec::handle(ctx, args),
        Command::Stop(args) => cli::stop::handle(ctx, args),
        Command::Kill(args) => cli::kill::handle(ctx, args),
        Command::Wait(args) => cli::wait::handle(ctx, args),
        Command::Rm(args) => cli::rm::handle(ctx, args),
        Command::Inspect(args) => cli::inspect::handle(ctx, args),
        Command::Load(args) => cli::load::handle(ctx, args),
        Command::Images(args) => cli::images::handle(ctx, args),
        Command::Rmi(args) => cli::rmi::handle(ctx, args),
        Command::Tag(args) => cli::tag::handle(ctx, args),
        Command::Pull(args) => cli::pull::handle(ctx, args),
        Command::Push(args) => cli::push::handle(ctx, args),
        Command::Login(args) => cli::login::handle(ctx, args),
        Command::Logout(args) => cli::logout::handle(ctx, args),
        Command::Search(args) => cli::search::handle(ctx, args),
        Command::Image(sub) => cli::image::handle(ctx, sub),
        Command::Restart(args) => cli::restart::handle(ctx, args),
        Command::Pause(args) => cli::pause::handle(ctx, args),
        Command::Unpause(args) => cli::unpause::handle(ctx, args),
        Command::Rename(args) => cli::rename::handle(ctx, args),
        Command::Container(sub) => cli::container::handle(ctx, sub),
        Command::Version(args) => cli::version::handle(ctx, args),
        Command::Info(args) => cli::info::handle(ctx, args),
        Command::Export(args) => cli::export::handle(ctx, args),
        Command::Import(args) => cli::import::handle(ctx, args),
        Command::Diff(args) => cli::diff::handle(ctx, args),
        Command::Commit(args) => cli::commit::handle(ctx, args),
        Command::Save(args) => cli::save::handle(ctx, args),
        Command::History(args) => cli::history::handle(ctx, args),
        Command::Top(args) => cli::top::handle(ctx, args),
        Command::Cp(args) => cli::cp::handle(ctx, args),
        Command::Stats(args) => cli::stats::handle(ctx, args),
        Command::System(sub) => cli::system::handle(ctx, sub),
        Command::Network(sub) => cli::network::handle(ctx, sub),
        Command::Port(args) => cli::port::handle(ctx, args),
        Command::InternalPortForward(args) => cli::port_forward::handle(ctx, args),
        Command::Healthcheck(sub) => cli::healthcheck::handle(ctx, sub),
    }
}

/// A process exit code from a command's status; out-of-range values (which a
/// container cannot produce) become the engine error code.
fn to_exit_code(code: i32) -> ExitCode {
    u8::try_from(code).map_or(ExitCode::from(exit_code::ENGINE as u8), ExitCode::from)
}
