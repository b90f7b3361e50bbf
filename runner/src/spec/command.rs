//! What the process runs and with which environment, by Podman's rules.

use crate::error::RunnerError;

/// `PATH` every container starts with.
pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The command: `--entrypoint` (a JSON array or one word) replaces the image's
/// entrypoint and drops its Cmd; a command given on the line replaces Cmd.
pub fn command(
    entrypoint_flag: Option<&str>,
    image_entrypoint: &[String],
    image_cmd: &[String],
    user_cmd: &[String],
) -> Result<Vec<String>, RunnerError> {
    let (entrypoint, cmd): (Vec<String>, &[String]) = match entrypoint_flag {
        Some(flag) => {
            // A JSON array, else (like Podman, even if it starts with `[`)
            // one word.
            let ep = if let Ok(words) = serde_json::from_str::<Vec<String>>(flag) {
                words
            } else if flag.is_empty() {
                Vec::new()
            } else {
                vec![flag.to_string()]
            };
            (ep, user_cmd)
        }
        None => (
            image_entrypoint.to_vec(),
            if user_cmd.is_empty() {
                image_cmd
            } else {
                user_cmd
            },
        ),
    };
    let mut args = entrypoint;
    args.extend(cmd.iter().cloned());
    if args.is_empty() {
        return Err(RunnerError::Engine(
            "no command or entrypoint specified".into(),
        ));
    }
    Ok(args)
}

/// The environment, by Podman's precedence: defaults < image < `-e` (a bare
/// `NAME` takes vigil's value, or is dropped if unset); then `TERM` (terminal),
/// `HOSTNAME` and `HOME` if still unset. Order: first definition wins the slot.
pub fn environment(
    image_env: &[String],
    flags: &[String],
    lookup: impl Fn(&str) -> Option<String>,
    terminal: bool,
    hostname: &str,
    home: &str,
) -> Vec<String> {
    let mut env: Vec<(String, String)> = Vec::new();
    let mut set = |k: &str, v: &str| match env.iter_mut().find(|(name, _)| name == k) {
        Some(slot) => slot.1 = v.to_string(),
        None => env.push((k.to_string(), v.to_string())),
    };
    set("PATH", &DEFAULT_PATH[5..]);
    set("container", "vigil");
    for e in image_env {
        let (k, v) = e.split_once('=').unwrap_or((e, ""));
        set(k, v);
    }
    for e in flags {
        match e.split_once('=') {
            Some((k, v)) => set(k, v),
            None => {
                if let Some(v) = lookup(e) {
                    set(e, &v);
                }
            }
        }
    }
    let mut add_default = |k: &str, v: &str| {
        if !env.iter().any(|(name, _)| name == k) {
            env.push((k.to_string(), v.to_string()));
        }
    };
    if terminal {
        add_default("TERM", "xterm");
    }
    add_default("HOSTNAME", hostname);
    add_default("HOME", home);
    env.into_iter().map(|(k, v)| format!("{k}={v}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_follow_podman() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            command(None, &s(&["/ep"]), &s(&["a"]), &[]).unwrap(),
            s(&["/ep", "a"])
        );
        assert_eq!(
            command(None, &s(&["/ep"]), &s(&["a"]), &s(&["b"])).unwrap(),
            s(&["/ep", "b"])
        );
        assert_eq!(
            command(Some("/x"), &s(&["/ep"]), &s(&["a"]), &[]).unwrap(),
            s(&["/x"])
        );
        assert_eq!(
            command(Some("[\"/x\",\"-c\"]"), &[], &s(&["a"]), &s(&["y"])).unwrap(),
            s(&["/x", "-c", "y"])
        );
        assert_eq!(command(None, &[], &[], &[]).unwrap_err().exit_code(), 125);
        assert_eq!(command(Some("[bad"), &[], &[], &[]).unwrap(), s(&["[bad"]));
    }

    #[test]
    fn environment_precedence() {
        let env = environment(
            &["PATH=/img".into(), "A=1".into()],
            &["A=2".into(), "B".into(), "C".into()],
            |k| (k == "B").then(|| "host".to_string()),
            true,
            "h",
            "/root",
        );
        assert_eq!(
            env,
            [
                "PATH=/img",
                "container=vigil",
                "A=2",
                "B=host",
                "TERM=xterm",
                "HOSTNAME=h",
                "HOME=/root"
            ]
        );
    }
}
