use std::path::Path;

use clap::error::ErrorKind;
use clap::{CommandFactory, Parser};

use super::create::LogDriver;
use super::image::ImageCommand;
use super::inspect::InspectType;
use super::*;

fn parse(args: &[&str]) -> Cli {
    Cli::try_parse_from(std::iter::once("vigil").chain(args.iter().copied()))
        .unwrap_or_else(|err| panic!("{args:?}: {err}"))
}

fn parse_err(args: &[&str]) -> clap::Error {
    Cli::try_parse_from(std::iter::once("vigil").chain(args.iter().copied()))
        .expect_err("parse should fail")
}

fn run_args(args: &[&str]) -> run::RunArgs {
    match parse(args).command {
        Command::Run(run) => run,
        other => panic!("expected run, got {other:?}"),
    }
}

#[test]
fn command_definition_is_consistent() {
    Cli::command().debug_assert();
}

#[test]
fn version_is_podman_style() {
    assert_eq!(Cli::command().render_version(), "vigil version 0.1.0\n");
    for flag in ["--version", "-v"] {
        let err = parse_err(&[flag]);
        assert_eq!(err.kind(), ErrorKind::DisplayVersion);
    }
}

#[test]
fn run_with_many_flags() {
    let run = run_args(&[
        "run",
        "-d",
        "--rm",
        "-i",
        "-t",
        "--name",
        "web",
        "-e",
        "A=1",
        "--env=B",
        "-v",
        "/src:/dst:ro",
        "--volume",
        "/a:/b",
        "-w",
        "/srv",
        "-u",
        "1000:1000",
        "--entrypoint",
        "/bin/sh",
        "--log-driver",
        "journald",
        "--log-opt",
        "tag=web",
        "--memory",
        "512m",
        "--network",
        "none",
        "--userns",
        "keep-id",
        "--uidmap",
        "0:100000:65536",
        "--gidmap",
        "0:100000:65536",
        "--init",
        "--sig-proxy=false",
        "--detach-keys",
        "ctrl-x",
        "--log-rate-limit",
        "1MiB/s",
        "docker.io/library/alpine:3.19",
        "echo",
        "hi",
    ]);
    assert!(run.detach);
    assert_eq!(run.attach.detach_keys.as_deref(), Some("ctrl-x"));
    assert!(!run.attach.sig_proxy);
    let c = &run.create;
    assert!(c.rm && c.interactive && c.tty && c.init);
    assert_eq!(c.name.as_deref(), Some("web"));
    assert_eq!(c.env, ["A=1", "B"]);
    assert_eq!(c.volume, ["/src:/dst:ro", "/a:/b"]);
    assert_eq!(c.workdir.as_deref(), Some("/srv"));
    assert_eq!(c.user.as_deref(), Some("1000:1000"));
    assert_eq!(c.entrypoint.as_deref(), Some("/bin/sh"));
    assert_eq!(c.log_driver, LogDriver::Journald);
    assert_eq!(c.log_opt, ["tag=web"]);
    assert_eq!(c.memory.as_deref(), Some("512m"));
    assert_eq!(c.network.as_deref(), Some("none"));
    assert_eq!(c.userns.as_deref(), Some("keep-id"));
    assert_eq!(c.uidmap, ["0:100000:65536"]);
    assert_eq!(c.gidmap, ["0:100000:65536"]);
    assert_eq!(c.log_rate_limit.as_deref(), Some("1MiB/s"));
    assert_eq!(c.target.image, "docker.io/library/alpine:3.19");
    assert_eq!(c.target.command, ["echo", "hi"]);
}

#[test]
fn run_defaults() {
    let run = run_args(&["run", "alpine"]);
    assert!(!run.detach);
    assert!(run.attach.sig_proxy);
    assert_eq!(run.attach.detach_keys, None);
    assert_eq!(run.create.log_driver, LogDriver::K8sFile);
    assert!(run.create.target.command.is_empty());
    assert!(!run.create.rm && !run.create.interactive && !run.create.tty);
}

#[test]
fn sig_proxy_takes_an_optional_value() {
    assert!(run_args(&["run", "--sig-proxy", "alpine"]).attach.sig_proxy);
    assert!(
        run_args(&["run", "--sig-proxy=true", "alpine"])
            .attach
            .sig_proxy
    );
    assert!(
        !run_args(&["run", "--sig-proxy=false", "alpine"])
            .attach
            .sig_proxy
    );
}

#[test]
fn flags_after_the_image_belong_to_the_container_command() {
    let run = run_args(&["run", "--rm", "alpine", "sh", "-c", "echo $0", "-d", "--rm"]);
    assert!(run.create.rm);
    assert!(!run.detach);
    assert_eq!(
        run.create.target.command,
        ["sh", "-c", "echo $0", "-d", "--rm"]
    );

    // Even when the first word of the command looks like a vigil flag.
    let run = run_args(&["run", "alpine", "--rm", "-d"]);
    assert!(!run.create.rm && !run.detach);
    assert_eq!(run.create.target.command, ["--rm", "-d"]);
}

#[test]
fn double_dash_separates_the_container_command() {
    // `--` ends vigil's options before the image...
    let run = run_args(&["run", "-t", "--", "alpine", "ls", "-l"]);
    assert!(run.create.tty);
    assert_eq!(run.create.target.image, "alpine");
    assert_eq!(run.create.target.command, ["ls", "-l"]);

    // ...or right after it, even before a command that looks like options...
    let run = run_args(&["run", "alpine", "--", "ls", "-l"]);
    assert_eq!(run.create.target.image, "alpine");
    assert_eq!(run.create.target.command, ["ls", "-l"]);
    let run = run_args(&["run", "--", "alpine", "--", "--rm"]);
    assert!(!run.create.rm);
    assert_eq!(run.create.target.command, ["--rm"]);

    // ...and any other `--` is the command's own.
    let run = run_args(&["run", "alpine", "sh", "-c", "--", "echo"]);
    assert_eq!(run.create.target.command, ["sh", "-c", "--", "echo"]);
    let run = run_args(&["run", "alpine", "--", "--", "x"]);
    assert_eq!(run.create.target.command, ["--", "x"]);
}

#[test]
fn unknown_options_before_the_image_are_errors() {
    for args in [
        &["run", "--bogus", "alpine"][..],
        &["run", "-z"],
        &["run", "--", "-x"],
    ] {
        let err = parse_err(args);
        assert_eq!(err.kind(), ErrorKind::UnknownArgument, "{args:?}");
    }
    // After the image they are the command's.
    let run = run_args(&["run", "alpine", "--bogus"]);
    assert_eq!(run.create.target.command, ["--bogus"]);
}

#[test]
fn run_needs_an_image() {
    let err = parse_err(&["run", "--rm"]);
    assert_eq!(err.kind(), ErrorKind::MissingRequiredArgument);
}

#[test]
fn exec_takes_container_and_command() {
    let cmd = parse(&[
        "exec",
        "-it",
        "-e",
        "X=1",
        "-w",
        "/tmp",
        "-u",
        "root",
        "--preserve-fds",
        "2",
        "web",
        "ls",
        "-la",
    ])
    .command;
    let Command::Exec(exec) = cmd else {
        panic!("expected exec, got {cmd:?}")
    };
    assert!(exec.interactive && exec.tty && !exec.detach);
    assert_eq!(exec.env, ["X=1"]);
    assert_eq!(exec.workdir.as_deref(), Some("/tmp"));
    assert_eq!(exec.user.as_deref(), Some("root"));
    assert_eq!(exec.preserve_fds, 2);
    assert_eq!(exec.target.container, "web");
    assert_eq!(exec.target.command, ["ls", "-la"]);

    let Command::Exec(exec) = parse(&["exec", "web", "--", "sh", "-c", "true"]).command else {
        panic!("expected exec")
    };
    assert_eq!(exec.target.command, ["sh", "-c", "true"]);
    let Command::Exec(exec) = parse(&["exec", "web", "-i"]).command else {
        panic!("expected exec")
    };
    assert!(!exec.interactive);
    assert_eq!(exec.target.command, ["-i"]);
    // No command parses: `exec` itself refuses it with Podman's exit code 255.
    let Command::Exec(exec) = parse(&["exec", "web", "--"]).command else {
        panic!("expected exec")
    };
    assert!(exec.target.command.is_empty());

    for (args, kind) in [(&["exec"][..], ErrorKind::MissingRequiredArgument)] {
        assert_eq!(parse_err(args).kind(), kind, "{args:?}");
    }
}

#[test]
fn global_options_go_before_or_after_the_command() {
    let cli = parse(&[
        "--root",
        "/s",
        "ps",
        "-a",
        "--runroot=/r",
        "--runtime",
        "crun",
        "--conmon",
        "/usr/libexec/conmon",
        "--log-level",
        "debug",
    ]);
    assert_eq!(cli.global.root.as_deref(), Some(Path::new("/s")));
    assert_eq!(cli.global.runroot.as_deref(), Some(Path::new("/r")));
    assert_eq!(cli.global.runtime.as_deref(), Some(Path::new("crun")));
    assert_eq!(
        cli.global.conmon.as_deref(),
        Some(Path::new("/usr/libexec/conmon"))
    );
    assert_eq!(cli.global.log_level, LogLevel::Debug);
    assert!(matches!(
        cli.command,
        Command::Ps(ps::PsArgs { all: true, .. })
    ));
}

#[test]
fn global_defaults() {
    let cli = parse(&["ps"]);
    assert_eq!(cli.global.root, None);
    assert_eq!(cli.global.runroot, None);
    assert_eq!(cli.global.runtime, None);
    assert_eq!(cli.global.conmon, None);
    assert_eq!(cli.global.log_level, LogLevel::Warn);
    assert_eq!(
        parse(&["--log-level=warning", "ps"]).global.log_level,
        LogLevel::Warn
    );
}

#[test]
fn logs_flags() {
    let Command::Logs(logs) = parse(&["logs", "-f", "-t", "--since", "10m", "web"]).command else {
        panic!("expected logs")
    };
    assert!(logs.follow && logs.timestamps);
    assert_eq!(logs.since.as_deref(), Some("10m"));
    assert_eq!(logs.tail_lines(), None);

    let Command::Logs(logs) = parse(&["logs", "--tail", "5", "web"]).command else {
        panic!("expected logs")
    };
    assert_eq!(logs.tail_lines(), Some(5));
    let Command::Logs(logs) = parse(&["logs", "--tail=-1", "web"]).command else {
        panic!("expected logs")
    };
    assert_eq!(logs.tail_lines(), None);
}

#[test]
fn lifecycle_command_flags() {
    let Command::Stop(stop) = parse(&["stop", "-t", "3", "a", "b"]).command else {
        panic!("expected stop")
    };
    assert_eq!(stop.time, Some(3));
    assert_eq!(stop.containers, ["a", "b"]);

    let Command::Kill(kill) = parse(&["kill", "web"]).command else {
        panic!("expected kill")
    };
    assert_eq!(kill.signal, "KILL");
    let Command::Kill(kill) = parse(&["kill", "-s", "TERM", "web"]).command else {
        panic!("expected kill")
    };
    assert_eq!(kill.signal, "TERM");

    let Command::Rm(rm) = parse(&["rm", "-f", "web"]).command else {
        panic!("expected rm")
    };
    assert!(rm.force);

    let Command::Start(start) = parse(&["start", "-ai", "web"]).command else {
        panic!("expected start")
    };
    assert!(start.attach && start.interactive && start.options.sig_proxy);

    // Container commands take -l/--latest instead of names: "you must
    // provide at least one name or id" is their run-time error (Podman's).
    for command in ["rmi"] {
        let err = parse_err(&[command]);
        assert_eq!(err.kind(), ErrorKind::MissingRequiredArgument, "{command}");
    }
    for command in ["start", "stop", "kill", "wait", "rm", "logs", "restart"] {
        parse(&[command, "-l"]);
    }
}

#[test]
fn image_commands() {
    let Command::Load(load) = parse(&["load", "-i", "img.tar"]).command else {
        panic!("expected load")
    };
    assert_eq!(load.input.as_deref(), Some(Path::new("img.tar")));
    let Command::Load(load) = parse(&["load", "--layout", "oci-dir"]).command else {
        panic!("expected load")
    };
    assert_eq!(load.layout.as_deref(), Some(Path::new("oci-dir")));
    assert_eq!(
        parse_err(&["load", "-i", "a.tar", "--layout", "dir"]).kind(),
        ErrorKind::ArgumentConflict
    );

    let Command::Tag(tag) = parse(&["tag", "alpine", "mine:1", "mine:latest"]).command else {
        panic!("expected tag")
    };
    assert_eq!(tag.image, "alpine");
    assert_eq!(tag.names, ["mine:1", "mine:latest"]);

    let cli = parse(&["image", "inspect", "alpine"]);
    assert_eq!(cli.command.name(), "image inspect");
    let Command::Image(ImageCommand::Inspect(inspect)) = cli.command else {
        panic!("expected image inspect")
    };
    assert_eq!(inspect.images, ["alpine"]);

    let Command::Inspect(inspect) = parse(&["inspect", "--type", "image", "alpine"]).command else {
        panic!("expected inspect")
    };
    assert_eq!(inspect.kind, InspectType::Image);
}

#[test]
fn every_command_has_its_podman_name() {
    let names: Vec<String> = Cli::command()
        .get_subcommands()
        .map(|sub| sub.get_name().to_owned())
        .collect();
    for expected in [
        "run", "create", "start", "ps", "logs", "attach", "exec", "stop", "kill", "wait", "rm",
        "inspect", "load", "images", "rmi", "tag", "image",
    ] {
        assert!(names.iter().any(|name| name == expected), "{expected}");
    }
}

#[test]
fn global_options_become_the_context_settings() {
    let settings = parse(&["--runroot", "/r", "--runtime", "crun", "ps"])
        .global
        .settings();
    assert_eq!(
        settings,
        crate::context::Settings {
            runroot: Some("/r".into()),
            runtime: Some("crun".into()),
            ..Default::default()
        }
    );
    let env = |name: &str| (name == "HOME").then(|| "/home/ann".into());
    let ctx = crate::Context::new(&settings, 1000, env).unwrap();
    assert_eq!(ctx.paths.state, Path::new("/r"));
    assert_eq!(ctx.paths.store, Path::new("/home/ann/.local/share/vigil"));
    assert_eq!(ctx.log_level, LogLevel::Warn);
}
