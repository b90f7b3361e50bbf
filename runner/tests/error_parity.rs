//! Error parity with Podman 4.3.1 (issue #19): a table of bad invocations,
//! each run under a private Podman (own configuration and vfs store, runc)
//! and a private vigil, with the same image and the same three containers
//! (`c1` created, `r1` running, `e1` exited). For every case both exit with
//! the same code, and the first line vigil prints on stderr names the
//! culprit (for most cases Podman's message names the same one).
//!
//! The differences kept on purpose are a table of their own, each with its
//! reason; they are run too, so that a change on either side shows.
//!
//! A second test asks the installed Podman for the flags of every command
//! vigil implements and checks that vigil never fails on one of them with a
//! parse error: each is accepted or refused as "not supported yet".
//!
//! Skipped with a message when not root, without podman, or without the
//! test images (scripts/make-test-images).

mod e2e_support;

use std::process::Output;

use e2e_support::{test_images, text, Podman, Vigil};

/// Replaced by the image's name in every case.
const IMG: &str = "IMG";
/// The image both sides load (scripts/make-test-images: `podman import` of
/// the busybox base, so no entrypoint or command of its own).
const IMAGE: &str = "localhost/imp:1";

/// A bad invocation and what both engines do with it.
struct Case {
    args: &'static [&'static str],
    /// The exit code of both.
    code: i32,
    /// In vigil's first stderr line (and Podman's stderr when `podman_names_it`).
    culprit: &'static str,
    podman_names_it: bool,
}

/// Both exit `code`, and both messages name `culprit`.
const fn same(args: &'static [&'static str], code: i32, culprit: &'static str) -> Case {
    Case {
        args,
        code,
        culprit,
        podman_names_it: true,
    }
}

/// Both exit `code`; vigil's message names `culprit`, Podman's says it another way.
const fn vigil_names(args: &'static [&'static str], code: i32, culprit: &'static str) -> Case {
    Case {
        args,
        code,
        culprit,
        podman_names_it: false,
    }
}

/// The cases, in order (some create containers later ones use).
#[rustfmt::skip]
const CASES: &[Case] = &[
    // create-time checks: the engine refuses (125) before any runtime runs
    same(&["run", "--rm", "-v", "/nonexistent:/x", IMG, "true"], 125, "statfs /nonexistent: no such file or directory"),
    same(&["run", "-d", "--rm", "-v", "/nonexistent:/x", IMG, "true"], 125, "statfs /nonexistent"),
    same(&["run", "--rm", "-v", "/tmp:relative", IMG, "true"], 125, "relative"),
    same(&["run", "--rm", "-v", "/tmp:/x:bogus", IMG, "true"], 125, "bogus"),
    same(&["run", "--rm", "-v", "/tmp:/x:ro,rw", IMG, "true"], 125, "can only specify 1 'rw' or 'ro' option"),
    same(&["run", "--rm", "-v", "/tmp:/x:Z,z", IMG, "true"], 125, "can only specify 1 'z', 'Z', or 'O' option"),
    same(&["run", "--rm", "-v", "/tmp:/x", "-v", "/var:/x", IMG, "true"], 125, "/x: duplicate mount destination"),
    same(&["run", "--rm", "-v", "/tmp:/x:/y:ro", IMG, "true"], 125, "/tmp:/x:/y:ro"),
    vigil_names(&["run", "--rm", "-v", ":/x", IMG, "true"], 125, ":/x"),
    same(&["run", "--rm", "--name", "bad name!", IMG, "true"], 125, "names must match [a-zA-Z0-9][a-zA-Z0-9_.-]*"),
    same(&["run", "--rm", "--name", "-bad", IMG, "true"], 125, "names must match"),
    same(&["create", "--name", "c1", IMG, "true"], 125, "the container name \"c1\" is already in use"),
    same(&["run", "--rm", "--memory", "abc", IMG, "true"], 125, "abc"),
    same(&["run", "--rm", "--pids-limit", "abc", IMG, "true"], 125, "abc"),
    same(&["run", "--rm", "--cap-add", "BOGUS", IMG, "true"], 125, "BOGUS"),
    same(&["run", "--rm", "--cap-drop", "BOGUS", IMG, "true"], 125, "BOGUS"),
    same(&["run", "--rm", "--tmpfs", "relative", IMG, "true"], 125, "relative"),
    same(&["run", "--rm", "--tmpfs", "/x:bogus", IMG, "true"], 125, "bogus"),
    same(&["run", "--rm", "--env-file", "/nonexistent", IMG, "true"], 125, "/nonexistent"),
    same(&["run", "--rm", "--env-file", "/etc", IMG, "true"], 125, "/etc"),
    same(&["run", "--rm", "-e", "=x", IMG, "true"], 125, "invalid environment variable: \"=x\""),
    vigil_names(&["run", "--rm", "--log-driver", "bogus", IMG, "true"], 125, "bogus"),
    same(&["run", "--rm", "--log-opt", "bogus", IMG, "true"], 125, "invalid log option \"bogus\""),
    same(&["run", "--rm", "--log-opt", "max-size=abc", IMG, "true"], 125, "abc"),
    same(&["run", "--rm", "--network", "bogus", IMG, "true"], 125, "bogus"),
    same(&["run", "--rm", "--userns", "bogus", IMG, "true"], 125, "bogus"),
    vigil_names(&["run", "--rm", "--uidmap", "bogus", IMG, "true"], 125, "--uidmap"),
    same(&["run", "--rm", "--read-only-tmpfs=maybe", IMG, "true"], 125, "maybe"),
    same(&["run", "--rm", "--bogus-flag", IMG, "true"], 125, "--bogus-flag"),
    same(&["run"], 125, "require"),
    same(&["create"], 125, "require"),
    same(&["run", "--rm", "--entrypoint", "", IMG], 125, "no command or entrypoint"),
    same(&["run", "--rm", "nosuchimage:1", "true"], 125, "nosuchimage:1"),
    vigil_names(&["run", "--rm", "--init-path", "/nonexistent", "--init", IMG, "true"], 125, "not supported yet: --init-path"),
    vigil_names(&["run", "--rm", "--ulimit", "bogus", IMG, "true"], 125, "not supported yet: --ulimit"),
    vigil_names(&["run", "--rm", "--stop-signal", "BOGUS", IMG, "true"], 125, "not supported yet: --stop-signal"),
    // created, then failed to start: 126, or 127 when no command was found
    same(&["run", "--rm", "--user", "nosuchuser", IMG, "true"], 126, "unable to find user nosuchuser"),
    same(&["run", "-d", "--rm", "--user", "nosuchuser", IMG, "true"], 126, "nosuchuser"),
    same(&["run", "--rm", "--user", "0:nosuchgroup", IMG, "true"], 126, "unable to find group nosuchgroup"),
    same(&["run", "--rm", "--workdir", "/etc/passwd", IMG, "true"], 126, "workdir \"/etc/passwd\" exists on container"),
    same(&["run", "--rm", "-w", "relative", IMG, "true"], 126, "workdir \"relative\" does not exist on container"),
    same(&["run", "--rm", IMG, "nosuchcmd"], 127, "\"nosuchcmd\": executable file not found in $PATH"),
    same(&["run", "-d", "--rm", IMG, "nosuchcmd"], 127, "nosuchcmd"),
    same(&["run", "--rm", IMG, ""], 127, "executable file not found"),
    same(&["run", "--rm", IMG, "/etc/passwd"], 126, "\"/etc/passwd\": permission denied"),
    same(&["run", "--rm", IMG, "/etc"], 126, "\"/etc\": permission denied"),
    same(&["run", "--rm", "--entrypoint", "/nonexistent", IMG], 127, "/nonexistent"),
    same(&["run", "--rm", "--entrypoint", "[bad", IMG], 127, "[bad"),
    same(&["run", "--rm", "-v", "/etc/passwd:/etc", IMG, "true"], 126, "error mounting \"/etc/passwd\""),
    same(&["run", "--rm", "--memory", "1k", IMG, "true"], 126, "cgroup"),
    same(&["run", "--rm", "--detach-keys", "bogus", IMG, "true"], 126, "bogus"),
    // what Podman accepts, vigil too
    same(&["run", "--rm", "--pids-limit", "-5", IMG, "true"], 0, ""),
    same(&["run", "--rm", "--name", "", IMG, "true"], 0, ""),
    same(&["create", "--name", "s5", "--user", "nosuchuser", IMG, "true"], 0, ""),
    same(&["create", "--name", "s6", IMG, "nosuchcmd"], 0, ""),
    // start: whatever fails is 125
    same(&["start", "s5"], 125, "nosuchuser"),
    same(&["start", "s6"], 125, "nosuchcmd"),
    same(&["start", "nosuch"], 125, "no container with name or ID \"nosuch\" found"),
    same(&["start"], 125, "require"),
    same(&["start", "r1"], 0, ""),
    // stop, kill, wait, rm
    same(&["stop", "nosuch"], 125, "\"nosuch\""),
    same(&["stop", "-t", "abc", "r1"], 125, "abc"),
    same(&["stop", "--time=-1", "e1"], 125, "-1"),
    same(&["stop", "--ignore", "nosuch"], 0, ""),
    same(&["stop", "e1"], 0, ""),
    same(&["kill", "nosuch"], 125, "\"nosuch\""),
    same(&["kill", "-s", "BOGUS", "r1"], 125, "invalid signal: BOGUS"),
    same(&["kill", "-s", "0", "e1"], 125, "invalid signal: 0"),
    same(&["kill", "e1"], 125, "can only kill running containers"),
    same(&["wait", "nosuch"], 125, "\"nosuch\""),
    same(&["wait", "c1"], 0, ""),
    vigil_names(&["wait", "--condition", "bogus", "e1"], 125, "not supported yet: --condition"),
    same(&["rm", "nosuch"], 1, "no container with name or ID \"nosuch\" found"),
    same(&["rm", "r1"], 2, "as it is running"),
    same(&["rm", "-f", "-t", "0", "nosuch"], 0, ""),
    same(&["rm", "--ignore", "nosuch"], 0, ""),
    same(&["rm", "-t", "bogus", "e1"], 125, "bogus"),
    // inspect, logs, attach
    same(&["inspect", "nosuch"], 125, "no such object: \"nosuch\""),
    same(&["inspect", "--type", "bogus", "e1"], 125, "bogus"),
    same(&["inspect", "--type", "image", "r1"], 125, "r1"),
    same(&["inspect", "--format", "{{.Bogus}}", "e1"], 125, "Bogus"),
    same(&["logs", "nosuch"], 125, "\"nosuch\""),
    same(&["logs", "--tail", "abc", "e1"], 125, "abc"),
    same(&["logs", "--since", "bogus", "e1"], 125, "bogus"),
    vigil_names(&["logs", "--until", "bogus", "e1"], 125, "not supported yet: --until"),
    same(&["logs"], 125, "specify at least one container name or ID to log"),
    same(&["attach", "nosuch"], 125, "\"nosuch\""),
    same(&["attach", "e1"], 125, "you can only attach to running containers"),
    // exec: 125 until the container is found, then 255 (127/126 from the runtime)
    same(&["exec", "nosuch", "true"], 125, "\"nosuch\""),
    same(&["exec", "-e", "=x", "r1", "true"], 125, "=x"),
    same(&["exec", "e1", "true"], 255, "can only create exec sessions on running containers: container state improper"),
    same(&["exec", "c1", "true"], 255, "can only create exec sessions on running containers"),
    same(&["exec", "r1"], 255, "must provide a non-empty command to start an exec session"),
    same(&["exec", "-u", "nosuchuser", "r1", "true"], 255, "unable to find user nosuchuser"),
    same(&["exec", "-w", "relative", "r1", "true"], 255, "Cwd must be an absolute path"),
    vigil_names(&["exec", "--detach-keys", "bogus", "r1", "true"], 255, "bogus"),
    same(&["exec", "r1", "nosuchcmd"], 127, "nosuchcmd"),
    same(&["exec", "-w", "/nonexistent", "r1", "true"], 127, "/nonexistent"),
    same(&["exec", "r1", "/etc"], 126, "permission denied"),
    same(&["exec", "r1", "/etc/passwd"], 126, "\"/etc/passwd\": permission denied"),
    // images
    same(&["load", "-i", "/etc/passwd"], 125, "payload does not match any of the supported image formats"),
    same(&["load", "-i", "/dev/null"], 125, "payload does not match any of the supported image formats"),
    same(&["load", "-i", "/nonexistent"], 125, "/nonexistent"),
    same(&["load", "--bogus"], 125, "--bogus"),
    same(&["rmi", "nosuch"], 1, "nosuch: image not known"),
    same(&["rmi", IMG], 2, "image is in use by a container"),
    vigil_names(&["rmi"], 125, "required"),
    same(&["tag", "nosuch", "x"], 125, "nosuch: image not known"),
    same(&["tag", IMG, "bad::tag"], 125, "bad::tag"),
    same(&["tag", IMG], 125, "require"),
    same(&["image", "inspect", "nosuch"], 125, "nosuch"),
    same(&["images", "--format", "{{.Bogus}}"], 125, "Bogus"),
    vigil_names(&["images", "--filter", "bogus=1"], 125, "not supported yet: --filter"),
    same(&["images", "--bogus"], 125, "--bogus"),
    // registries: only 127.0.0.1, on a port nothing listens on
    same(&["pull", "127.0.0.1:1/nosuch:1"], 125, "127.0.0.1:1/nosuch:1"),
    same(&["pull", "bad::ref"], 125, "invalid reference format"),
    same(&["push", IMG, "127.0.0.1:1/x:1"], 125, "pinging container registry 127.0.0.1:1"),
    same(&["push", "nosuchimage:1", "127.0.0.1:1/x:1"], 125, "nosuchimage:1: image not known"),
    same(&["logout", "127.0.0.1:1"], 125, "not logged into 127.0.0.1:1"),
    same(&["ps", "--bogus"], 125, "--bogus"),
    same(&["ps", "--filter", "status=bogus"], 125, "unknown container state: bogus: invalid argument"),
    same(&["ps", "--filter", "bogus=1"], 125, "bogus is an invalid filter"),
    // Podman fails on the template's field (with a container listed), and so does vigil
    same(&["ps", "--format", "{{.Bogus}}"], 125, "Bogus"),
];

/// A difference kept on purpose.
struct Difference {
    args: &'static [&'static str],
    podman: i32,
    vigil: i32,
    /// In vigil's first stderr line.
    culprit: &'static str,
    #[allow(dead_code)]
    reason: &'static str,
}

const DIFFERENCES: &[Difference] = &[
    Difference {
        args: &["run", "--rm", "-p", "8080:80", IMG, "true"],
        podman: 0,
        vigil: 125,
        culprit: "not supported yet: -p",
        reason: "publishing ports belongs to the network area (issue of its own)",
    },
    Difference {
        args: &["exec", "--privileged", "r1", "true"],
        podman: 0,
        vigil: 125,
        culprit: "not supported yet: --privileged",
        reason: "privileged exec sessions are not implemented",
    },
    Difference {
        args: &["create", "--replace", "--name", "c1", IMG, "true"],
        podman: 0,
        vigil: 125,
        culprit: "not supported yet: --replace",
        reason: "--replace is not implemented",
    },
    Difference {
        args: &["run", "--rm", "-v", "/tmp", IMG, "true"],
        podman: 0,
        vigil: 125,
        culprit: "/tmp",
        reason: "named and anonymous volumes are not supported, only host paths",
    },
    Difference {
        args: &["run", "--rm", "--hostname", "a b", IMG, "true"],
        podman: 0,
        vigil: 125,
        culprit: "invalid --hostname \"a b\"",
        reason: "a host name with a blank would be two names in the container's /etc/hosts",
    },
    Difference {
        args: &["run", "--rm", "--tmpfs", "/x", "--tmpfs", "/x", IMG, "true"],
        podman: 0,
        vigil: 125,
        culprit: "duplicate mount destination",
        reason: "Podman silently keeps one of two mounts on one destination; vigil names it",
    },
    Difference {
        args: &["run", "--rm", "--log-opt", "max-file=x", IMG, "true"],
        podman: 0,
        vigil: 125,
        culprit: "max-file",
        reason: "vigil implements max-file rotation (Podman ignores it for k8s-file) and checks it",
    },
];

/// Private vigil and Podman with the image and the containers c1, r1, e1.
fn setup(test: &str) -> Option<(Vigil, Podman)> {
    let why = |e: String| eprintln!("skipping {test}: {e}");
    let images = test_images().map_err(why).ok()?;
    let vigil = Vigil::new().map_err(why).ok()?;
    let podman = Podman::new("vfs").map_err(why).ok()?;
    let archive = images.join("podman-docker.tar");
    let Some(archive) = archive.to_str().filter(|_| archive.is_file()) else {
        eprintln!("skipping {test}: no podman-docker.tar (make-test-images needs podman)");
        return None;
    };
    podman.ok(&["load", "-q", "-i", archive]);
    vigil.ok(&["load", "-q", "-i", archive]);
    let fixtures: [&[&str]; 3] = [
        &["create", "--name", "c1", IMAGE, "sleep", "100"],
        &["run", "-d", "--name", "r1", IMAGE, "sleep", "1000"],
        &["run", "--name", "e1", IMAGE, "true"],
    ];
    for args in fixtures {
        podman.ok(args);
        vigil.ok(args);
    }
    Some((vigil, podman))
}

fn with_image(args: &[&str]) -> Vec<String> {
    args.iter()
        .map(|a| if *a == IMG { IMAGE } else { a }.to_string())
        .collect()
}

fn run_both(vigil: &Vigil, podman: &Podman, args: &[&str]) -> (Output, Output) {
    let args = with_image(args);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    (podman.run(&args), vigil.run(&args))
}

fn first_line(out: &Output) -> String {
    text(&out.stderr).lines().next().unwrap_or("").to_string()
}

#[test]
fn bad_invocations_exit_and_explain_like_podman() {
    let Some((vigil, podman)) = setup("bad_invocations_exit_and_explain_like_podman") else {
        return;
    };
    let mut failures = Vec::new();
    for case in CASES {
        let (p, v) = run_both(&vigil, &podman, case.args);
        let (pc, vc) = (p.status.code(), v.status.code());
        let vline = first_line(&v);
        let mut wrong = Vec::new();
        if pc != Some(case.code) {
            wrong.push(format!(
                "podman exited {pc:?}, the table says {}",
                case.code
            ));
        }
        if vc != Some(case.code) {
            wrong.push(format!("vigil exited {vc:?}, podman {pc:?}"));
        }
        if !vline.contains(case.culprit) {
            wrong.push(format!(
                "vigil's first line does not name {:?}",
                case.culprit
            ));
        }
        if case.podman_names_it && !text(&p.stderr).contains(case.culprit) {
            wrong.push(format!("podman's message does not name {:?}", case.culprit));
        }
        if text(&v.stderr).contains("panicked") {
            wrong.push("vigil panicked".into());
        }
        if !wrong.is_empty() {
            failures.push(format!(
                "{:?}: {}\n    podman: {}\n    vigil:  {vline}",
                case.args,
                wrong.join("; "),
                text(&p.stderr).trim().replace('\n', " | ")
            ));
        }
    }
    for d in DIFFERENCES {
        let (p, v) = run_both(&vigil, &podman, d.args);
        let vline = first_line(&v);
        if p.status.code() != Some(d.podman)
            || v.status.code() != Some(d.vigil)
            || !vline.contains(d.culprit)
        {
            failures.push(format!(
                "difference {:?} changed: podman {:?} (listed {}), vigil {:?} (listed {}): {vline}",
                d.args,
                p.status.code(),
                d.podman,
                v.status.code(),
                d.vigil
            ));
        }
    }
    // Never the bytes of a file that is not an archive.
    let (_, v) = run_both(&vigil, &podman, &["load", "-i", "/etc/passwd"]);
    if text(&v.stderr).contains("root:") {
        failures.push(format!("load echoes /etc/passwd: {}", text(&v.stderr)));
    }
    eprintln!(
        "{} cases and {} differences on purpose compared with podman",
        CASES.len(),
        DIFFERENCES.len()
    );
    assert!(CASES.len() >= 60);
    assert!(
        failures.is_empty(),
        "{} of {} cases differ from podman:\n{}",
        failures.len(),
        CASES.len() + DIFFERENCES.len(),
        failures.join("\n")
    );
}

/// The long and short flags `podman COMMAND --help` lists.
fn podman_flags(podman: &Podman, command: &[&str]) -> Vec<String> {
    let mut args = command.to_vec();
    args.push("--help");
    let help = podman.ok(&args);
    let mut flags = Vec::new();
    for line in help.lines() {
        let line = line.trim_start();
        if !line.starts_with('-') {
            continue;
        }
        for word in line.split_whitespace().take(2) {
            let word = word.trim_end_matches(',');
            if word.starts_with('-') {
                flags.push(word.to_string());
            }
        }
    }
    flags
}

#[test]
fn every_podman_flag_is_accepted_or_refused_by_name() {
    let test = "every_podman_flag_is_accepted_or_refused_by_name";
    let (vigil, podman) = match (Vigil::new(), Podman::new("vfs")) {
        (Ok(v), Ok(p)) => (v, p),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("skipping {test}: {e}");
            return;
        }
    };
    let commands: [&[&str]; 22] = [
        &["run"],
        &["create"],
        &["start"],
        &["ps"],
        &["logs"],
        &["attach"],
        &["exec"],
        &["stop"],
        &["kill"],
        &["wait"],
        &["rm"],
        &["inspect"],
        &["load"],
        &["images"],
        &["rmi"],
        &["tag"],
        &["image", "inspect"],
        &["pull"],
        &["push"],
        &["login"],
        &["logout"],
        &["search"],
    ];
    let mut failures = Vec::new();
    let mut checked = 0;
    for command in commands {
        for flag in podman_flags(&podman, command) {
            if flag == "-h" || flag == "--help" {
                continue;
            }
            let mut args = command.to_vec();
            args.push(&flag);
            // An empty private store: an accepted flag finds nothing to act on.
            let out = vigil.run(&args);
            let line = first_line(&out);
            checked += 1;
            if line.contains("unexpected argument") || line.contains("unrecognized subcommand") {
                failures.push(format!("vigil {}: {line}", args.join(" ")));
            }
        }
    }
    assert!(checked > 300, "only {checked} podman flags found");
    assert!(
        failures.is_empty(),
        "podman flags vigil does not know:\n{}",
        failures.join("\n")
    );
}
