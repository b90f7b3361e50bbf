//! Docker credential helpers: the programs `docker-credential-NAME` (found
//! on PATH) that an auth file names in `credHelpers` (per registry host, as
//! containers-auth.json(5) and Podman read it) or `credsStore` (every
//! registry: Docker's key, which Podman 4.3 ignores; see docs/registry.md).
//!
//! The protocol is Docker's: `get` reads the server on stdin and prints
//! `{"ServerURL","Username","Secret"}`; `store` reads that JSON; `erase`
//! reads the server; `list` prints `{server: username}`. Secrets only ever travel through the helper's stdin
//! and stdout, never its argv or environment, and no error repeats them.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::auth::Credentials;

/// How long a helper may take (it may ask a keyring, never a person).
const HELPER_TIME_LIMIT: Duration = Duration::from_secs(60);

/// The most a helper may print.
const MAX_HELPER_OUTPUT: u64 = 1 << 20;

/// What a helper prints when it has nothing for the server.
const NOT_FOUND: &str = "credentials not found in native keychain";

/// Why a helper could not be used (never holds a secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelperError(pub String);

/// A helper's name as configured; one with a `/` (or empty) is refused: it
/// would name a program outside PATH.
fn program(helper: &str) -> Result<String, HelperError> {
    if helper.is_empty() || helper.contains('/') || helper.contains('\0') {
        return Err(HelperError(format!(
            "invalid credential helper name {helper:?}"
        )));
    }
    Ok(format!("docker-credential-{helper}"))
}

/// Runs `docker-credential-HELPER ACTION` with `input` on stdin; its exit
/// success and stdout (stderr is dropped: helpers may echo input there).
fn run(helper: &str, action: &str, input: &[u8]) -> Result<(bool, Vec<u8>), HelperError> {
    let program = program(helper)?;
    let fail = |what: String| HelperError(format!("{program} {action}: {what}"));
    let mut child = Command::new(&program)
        .arg(action)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| fail(e.to_string()))?;
    // Small inputs: the pipe buffer holds them, so writing before reading
    // cannot deadlock.
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input);
    }
    let Some(stdout) = child.stdout.take() else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(fail("no stdout".into()));
    };
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = stdout.take(MAX_HELPER_OUTPUT).read_to_end(&mut out);
        out
    });
    let deadline = Instant::now() + HELPER_TIME_LIMIT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(fail(format!(
                    "did not finish within {} s",
                    HELPER_TIME_LIMIT.as_secs()
                )));
            }
            Err(e) => return Err(fail(e.to_string())),
        }
    };
    let out = reader.join().unwrap_or_default();
    Ok((status.success(), out))
}

/// A failing helper's message: the first line of its stdout (where the
/// protocol puts errors), short, or its exit status.
fn message(out: &[u8]) -> String {
    let text = String::from_utf8_lossy(out);
    let line = text.lines().next().unwrap_or("").trim();
    if line.is_empty() {
        "failed".into()
    } else {
        line.chars().take(200).collect()
    }
}

/// The credentials `helper` keeps for `server` (a registry host), or `None`
/// when it has none.
pub fn get(helper: &str, server: &str) -> Result<Option<Credentials>, HelperError> {
    let (ok, out) = run(helper, "get", server.as_bytes())?;
    if !ok {
        let msg = message(&out);
        if msg.contains(NOT_FOUND) {
            return Ok(None);
        }
        return Err(HelperError(format!(
            "docker-credential-{helper} get: {msg}"
        )));
    }
    let doc: Value = serde_json::from_slice(&out).map_err(|_| {
        HelperError(format!(
            "docker-credential-{helper} get: the answer is not the JSON of the credential helper protocol"
        ))
    })?;
    let field = |k: &str| doc.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let (username, password) = (field("Username"), field("Secret"));
    if username.is_empty() && password.is_empty() {
        return Ok(None);
    }
    Ok(Some(Credentials { username, password }))
}

/// Gives `helper` the credentials for `server`.
pub fn store(helper: &str, server: &str, creds: &Credentials) -> Result<(), HelperError> {
    let input = serde_json::json!({
        "ServerURL": server,
        "Username": creds.username,
        "Secret": creds.password,
    })
    .to_string();
    match run(helper, "store", input.as_bytes())? {
        (true, _) => Ok(()),
        (false, out) => Err(HelperError(format!(
            "docker-credential-{helper} store: {}",
            message(&out)
        ))),
    }
}

/// Asks `helper` to forget `server`; false when it had nothing.
pub fn erase(helper: &str, server: &str) -> Result<bool, HelperError> {
    match run(helper, "erase", server.as_bytes())? {
        (true, _) => Ok(true),
        (false, out) if message(&out).contains(NOT_FOUND) => Ok(false),
        (false, out) => Err(HelperError(format!(
            "docker-credential-{helper} erase: {}",
            message(&out)
        ))),
    }
}

/// The servers `helper` keeps credentials for (`list` prints a JSON object
/// of server -> user name).
pub fn list(helper: &str) -> Result<Vec<String>, HelperError> {
    let fail = |what: String| HelperError(format!("docker-credential-{helper} list: {what}"));
    let (ok, out) = run(helper, "list", b"")?;
    if !ok {
        return Err(fail(message(&out)));
    }
    let doc: Value = serde_json::from_slice(&out).map_err(|_| {
        fail("the answer is not the JSON object of the credential helper protocol".into())
    })?;
    let servers = doc.as_object().ok_or_else(|| {
        fail("the answer is not the JSON object of the credential helper protocol".into())
    })?;
    Ok(servers.keys().cloned().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_with_a_slash_are_refused() {
        assert!(program("../../bin/sh").is_err());
        assert!(program("").is_err());
        assert_eq!(program("pass").unwrap(), "docker-credential-pass");
        let err = get("vigil-no-such-helper-xyz", "127.0.0.1:1").unwrap_err();
        assert!(
            err.0
                .contains("docker-credential-vigil-no-such-helper-xyz get"),
            "{err:?}"
        );
    }
}
