//! The flags Podman 4.3.1 has on the commands vigil implements (from
//! `podman COMMAND --help`), so that a Podman flag vigil does not implement
//! yet is refused by name ("not supported yet: FLAG", exit 125) instead of
//! with a parse error: a script written for Podman learns what to change.
//! A flag vigil implements is parsed by clap before this table is consulted,
//! so implementing one needs no change here.

/// Global flags (`podman --help`).
#[rustfmt::skip]
const GLOBAL: &[&str] = &[
    "--cgroup-manager", "--conmon", "-c", "--connection", "--events-backend", "--help",
    "--hooks-dir", "--identity", "--log-level", "--namespace", "--network-cmd-path",
    "--network-config-dir", "--noout", "-r", "--remote", "--root", "--runroot", "--runtime",
    "--runtime-flag", "--ssh", "--storage-driver", "--storage-opt", "--syslog", "--tmpdir",
    "--url", "-v", "--version", "--volumepath",
];

/// Per command, as typed (`image inspect` with its space).
#[rustfmt::skip]
const COMMANDS: &[(&str, &[&str])] = &[
    (
        "run",
        &[
            "--add-host", "--annotation", "--arch", "-a", "--attach", "--authfile",
            "--blkio-weight", "--blkio-weight-device", "--cap-add", "--cap-drop", "--cgroup-conf",
            "--cgroup-parent", "--cgroupns", "--cgroups", "--chrootdirs", "--cidfile",
            "--conmon-pidfile", "--cpu-period", "--cpu-quota", "--cpu-rt-period",
            "--cpu-rt-runtime", "-c", "--cpu-shares", "--cpus", "--cpuset-cpus", "--cpuset-mems",
            "-d", "--detach", "--detach-keys", "--device", "--device-cgroup-rule",
            "--device-read-bps", "--device-read-iops", "--device-write-bps",
            "--device-write-iops", "--disable-content-trust", "--dns", "--dns-option",
            "--dns-search", "--entrypoint", "-e", "--env", "--env-file", "--env-host",
            "--env-merge", "--expose", "--gidmap", "--group-add", "--health-cmd",
            "--health-interval", "--health-on-failure", "--health-retries",
            "--health-start-period", "--health-timeout", "--help", "-h", "--hostname",
            "--hostuser", "--http-proxy", "--image-volume", "--init", "--init-path", "-i",
            "--interactive", "--ip", "--ip6", "--ipc", "-l", "--label", "--label-file",
            "--log-driver", "--log-opt", "--mac-address", "-m", "--memory",
            "--memory-reservation", "--memory-swap", "--memory-swappiness", "--mount", "--name",
            "--network", "--network-alias", "--no-healthcheck", "--no-hosts",
            "--oom-kill-disable", "--oom-score-adj", "--os", "--passwd", "--passwd-entry",
            "--personality", "--pid", "--pidfile", "--pids-limit", "--platform", "--pod",
            "--pod-id-file", "--preserve-fds", "--privileged", "-p", "--publish", "-P",
            "--publish-all", "--pull", "-q", "--quiet", "--read-only", "--read-only-tmpfs",
            "--replace", "--requires", "--restart", "--rm", "--rmi", "--rootfs", "--sdnotify",
            "--seccomp-policy", "--secret", "--security-opt", "--shm-size", "--sig-proxy",
            "--stop-signal", "--stop-timeout", "--subgidname", "--subuidname", "--sysctl",
            "--systemd", "--timeout", "--tls-verify", "--tmpfs", "-t", "--tty", "--tz",
            "--uidmap", "--ulimit", "--umask", "--unsetenv", "--unsetenv-all", "-u", "--user",
            "--userns", "--uts", "--variant", "-v", "--volume", "--volumes-from", "-w",
            "--workdir",
        ],
    ),
    (
        "create",
        &[
            "--add-host", "--annotation", "--arch", "-a", "--attach", "--authfile",
            "--blkio-weight", "--blkio-weight-device", "--cap-add", "--cap-drop", "--cgroup-conf",
            "--cgroup-parent", "--cgroupns", "--cgroups", "--chrootdirs", "--cidfile",
            "--conmon-pidfile", "--cpu-period", "--cpu-quota", "--cpu-rt-period",
            "--cpu-rt-runtime", "-c", "--cpu-shares", "--cpus", "--cpuset-cpus", "--cpuset-mems",
            "--device", "--device-cgroup-rule", "--device-read-bps", "--device-read-iops",
            "--device-write-bps", "--device-write-iops", "--disable-content-trust", "--dns",
            "--dns-option", "--dns-search", "--entrypoint", "-e", "--env", "--env-file",
            "--env-host", "--env-merge", "--expose", "--gidmap", "--group-add", "--health-cmd",
            "--health-interval", "--health-on-failure", "--health-retries",
            "--health-start-period", "--health-timeout", "--help", "-h", "--hostname",
            "--hostuser", "--http-proxy", "--image-volume", "--init", "--init-ctr", "--init-path",
            "-i", "--interactive", "--ip", "--ip6", "--ipc", "-l", "--label", "--label-file",
            "--log-driver", "--log-opt", "--mac-address", "-m", "--memory",
            "--memory-reservation", "--memory-swap", "--memory-swappiness", "--mount", "--name",
            "--network", "--network-alias", "--no-healthcheck", "--no-hosts",
            "--oom-kill-disable", "--oom-score-adj", "--os", "--passwd-entry", "--personality",
            "--pid", "--pidfile", "--pids-limit", "--platform", "--pod", "--pod-id-file",
            "--privileged", "-p", "--publish", "-P", "--publish-all", "--pull", "-q", "--quiet",
            "--read-only", "--read-only-tmpfs", "--replace", "--requires", "--restart", "--rm",
            "--rootfs", "--sdnotify", "--seccomp-policy", "--secret", "--security-opt",
            "--shm-size", "--stop-signal", "--stop-timeout", "--subgidname", "--subuidname",
            "--sysctl", "--systemd", "--timeout", "--tls-verify", "--tmpfs", "-t", "--tty",
            "--tz", "--uidmap", "--ulimit", "--umask", "--unsetenv", "--unsetenv-all", "-u",
            "--user", "--userns", "--uts", "--variant", "-v", "--volume", "--volumes-from", "-w",
            "--workdir",
        ],
    ),
    (
        "start",
        &[
            "--all", "-a", "--attach", "--detach-keys", "-f", "--filter", "-i", "--interactive",
            "-l", "--latest", "--sig-proxy",
        ],
    ),
    (
        "ps",
        &[
            "-a", "--all", "--external", "-f", "--filter", "--format", "-n", "--last", "-l",
            "--latest", "--no-trunc", "--noheading", "--ns", "-p", "--pod", "-q", "--quiet", "-s",
            "--size", "--sort", "--sync", "-w", "--watch",
        ],
    ),
    (
        "logs",
        &[
            "--color", "-f", "--follow", "-l", "--latest", "-n", "--names", "--since", "--tail",
            "-t", "--timestamps", "--until",
        ],
    ),
    (
        "attach",
        &[
            "--detach-keys", "-l", "--latest", "--no-stdin", "--sig-proxy",
        ],
    ),
    (
        "exec",
        &[
            "-d", "--detach", "--detach-keys", "-e", "--env", "--env-file", "-i", "--interactive",
            "-l", "--latest", "--preserve-fds", "--privileged", "-t", "--tty", "-u", "--user",
            "-w", "--workdir",
        ],
    ),
    (
        "stop",
        &[
            "-a", "--all", "--cidfile", "-f", "--filter", "-i", "--ignore", "-l", "--latest",
            "-t", "--time",
        ],
    ),
    (
        "kill",
        &[
            "-a", "--all", "--cidfile", "-l", "--latest", "-s", "--signal",
        ],
    ),
    (
        "wait",
        &[
            "--condition", "-i", "--interval", "-l", "--latest",
        ],
    ),
    (
        "rm",
        &[
            "-a", "--all", "--cidfile", "--depend", "--filter", "-f", "--force", "-i", "--ignore",
            "-l", "--latest", "-t", "--time", "-v", "--volumes",
        ],
    ),
    (
        "inspect",
        &[
            "-f", "--format", "-l", "--latest", "-s", "--size", "-t", "--type",
        ],
    ),
    (
        "load",
        &[
            "-i", "--input", "-q", "--quiet",
        ],
    ),
    (
        "images",
        &[
            "-a", "--all", "--digests", "-f", "--filter", "--format", "--history", "--no-trunc",
            "-n", "--noheading", "-q", "--quiet", "--sort",
        ],
    ),
    (
        "rmi",
        &[
            "-a", "--all", "-f", "--force", "-i", "--ignore", "--no-prune",
        ],
    ),
    (
        "tag",
        &[

        ],
    ),
    (
        "image inspect",
        &[
            "-f", "--format",
        ],
    ),
    (
        "pull",
        &[
            "-a", "--all-tags", "--arch", "--authfile", "--cert-dir", "--creds",
            "--disable-content-trust", "--os", "--platform", "-q", "--quiet", "--tls-verify",
            "--variant",
        ],
    ),
    (
        "push",
        &[
            "--authfile", "--cert-dir", "--compress", "--compression-format", "--creds",
            "--digestfile", "--disable-content-trust", "-f", "--format", "-q", "--quiet",
            "--remove-signatures", "--sign-by", "--sign-by-sigstore-private-key",
            "--sign-passphrase-file", "--tls-verify",
        ],
    ),
    (
        "login",
        &[
            "--authfile", "--cert-dir", "--get-login", "-p", "--password", "--password-stdin",
            "--tls-verify", "-u", "--username", "-v", "--verbose",
        ],
    ),
    (
        "logout",
        &[
            "-a", "--all", "--authfile",
        ],
    ),
    (
        "search",
        &[
            "--authfile", "--compatible", "-f", "--filter", "--format", "--limit", "--list-tags",
            "--no-trunc", "--tls-verify",
        ],
    ),
];

/// Whether `flag` (`--name`, `--name=value` or `-x`) is one Podman has on
/// `command` (or globally).
pub fn is_podman_flag(command: &str, flag: &str) -> bool {
    let flag = flag.split_once('=').map_or(flag, |(name, _)| name);
    GLOBAL.contains(&flag)
        || COMMANDS
            .iter()
            .any(|(name, flags)| *name == command && flags.contains(&flag))
}

/// The command a command line names (`run`, `image inspect`...), skipping
/// vigil's global options and their values.
pub fn command_of(argv: &[String]) -> Option<String> {
    // Podman's global flags that take a value (vigil's are among them).
    const WITH_VALUE: [&str; 21] = [
        "--cgroup-manager",
        "--conmon",
        "-c",
        "--connection",
        "--events-backend",
        "--hooks-dir",
        "--identity",
        "--log-level",
        "--namespace",
        "--network-cmd-path",
        "--network-config-dir",
        "--root",
        "--runroot",
        "--runtime",
        "--runtime-flag",
        "--ssh",
        "--storage-driver",
        "--storage-opt",
        "--tmpdir",
        "--url",
        "--volumepath",
    ];
    let mut words = argv.iter().skip(1);
    while let Some(word) = words.next() {
        if WITH_VALUE.contains(&word.as_str()) {
            words.next();
        } else if !word.starts_with('-') {
            if word == "image" {
                return Some(match words.find(|w| !w.starts_with('-')) {
                    Some(sub) => format!("image {sub}"),
                    None => "image".into(),
                });
            }
            return Some(word.clone());
        }
    }
    None
}

/// For a command line clap refused with an unknown argument: the command and
/// "not supported yet: FLAG" when FLAG is one of Podman's.
pub fn unsupported(argv: &[String], err: &clap::Error) -> Option<(String, String)> {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if err.kind() != ErrorKind::UnknownArgument {
        return None;
    }
    let flag = match err.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(flag)) => flag.clone(),
        // Raised by our own parsing (cli/argv.rs): "unexpected argument 'X' found".
        _ => {
            let text = err.to_string();
            let start = text.find('\'')? + 1;
            let len = text[start..].find('\'')?;
            text[start..start + len].to_string()
        }
    };
    let command = command_of(argv)?;
    let flag = flag.split_once('=').map_or(flag.as_str(), |(name, _)| name);
    is_podman_flag(&command, flag).then(|| (command, format!("not supported yet: {flag}")))
}

/// Every flag Podman has on `command` (the global ones not included).
pub fn podman_flags(command: &str) -> &'static [&'static str] {
    COMMANDS
        .iter()
        .find(|(name, _)| *name == command)
        .map_or(&[], |(_, flags)| flags)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_are_looked_up_per_command() {
        assert!(is_podman_flag("run", "--publish"));
        assert!(is_podman_flag("run", "-p"));
        assert!(is_podman_flag("run", "--publish=8080:80"));
        assert!(is_podman_flag("rm", "--depend"));
        assert!(is_podman_flag("image inspect", "--format"));
        assert!(is_podman_flag("ps", "--storage-driver"), "a global flag");
        assert!(!is_podman_flag("rm", "--publish"));
        assert!(!is_podman_flag("run", "--bogus-flag"));
        assert!(podman_flags("exec").contains(&"--privileged"));
        assert!(podman_flags("nosuch").is_empty());
    }

    #[test]
    fn unsupported_podman_flags_are_named() {
        use clap::Parser;
        let refused = |args: &[&str]| {
            let argv: Vec<String> = std::iter::once("vigil")
                .chain(args.iter().copied())
                .map(String::from)
                .collect();
            let err = crate::cli::Cli::try_parse_from(&argv).unwrap_err();
            unsupported(&argv, &err)
        };
        let expect = |command: &str, flag: &str| {
            Some((command.to_string(), format!("not supported yet: {flag}")))
        };
        assert_eq!(
            refused(&["run", "--blkio-weight", "300", "img"]),
            expect("run", "--blkio-weight")
        );
        assert_eq!(
            refused(&["run", "--rm", "--blkio-weight=300", "img"]),
            expect("run", "--blkio-weight")
        );
        assert_eq!(
            refused(&["--root", "/r", "rm", "--depend", "c"]),
            expect("rm", "--depend")
        );
        assert_eq!(refused(&["ps", "--sort", "x"]), expect("ps", "--sort"));
        assert_eq!(
            refused(&["--storage-driver", "vfs", "ps"]),
            expect("ps", "--storage-driver")
        );
        assert_eq!(refused(&["ps", "--bogus"]), None, "not a Podman flag");
        assert_eq!(
            command_of(&[
                "vigil".into(),
                "--log-level".into(),
                "debug".into(),
                "ps".into()
            ]),
            Some("ps".into())
        );
    }
}
