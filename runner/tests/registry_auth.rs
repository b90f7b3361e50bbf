//! TLS (a test CA in a --cert-dir) and Basic auth (htpasswd) against a real
//! docker-registry on 127.0.0.1: login/logout and the auth file, bad
//! credentials (nothing written), pulls and pushes with stored credentials,
//! an unknown CA. Credentials never show in output.

mod registry_support;

use std::fs;
use std::os::unix::fs::PermissionsExt;

use registry_support::{
    assert_failed, base64_of, oci_src, seed, text, Fixture, Registry, RegistryConfig,
    TlsBasicRegistry, TokenServer, Vigil,
};

const PASSWORD: &str = "s3cret-pw";

#[test]
fn login_pull_push_and_logout_over_tls_with_basic_auth() {
    crate::require_registry!();
    let fx = Fixture::new();
    fx.write_registries_conf("");
    let reg = TlsBasicRegistry::start(&fx, "alice", PASSWORD);
    let (a, image) = (reg.addr.clone(), reg.image.clone());
    let basic = base64_of(&format!("alice:{PASSWORD}"));
    let certs = reg.certs.as_str();
    let auth = fx.path("auth.json");
    let v = Vigil::new().unwrap();

    // Unknown CA (no --cert-dir): refused at the ping, nothing stored.
    let out = fx.run_input(
        &v,
        &["login", "-u", "alice", "--password-stdin", &a],
        PASSWORD.as_bytes(),
    );
    assert_failed(&out, &format!(
        "authenticating creds for \"{a}\": pinging container registry {a}: Get \"https://{a}/v2/\": "
    ));
    assert!(!auth.exists());

    // Wrong password: Podman's message, nothing written.
    let out = fx.login(&v, certs, "alice", &a, b"wrong\n");
    assert_failed(
        &out,
        &format!("logging into \"{a}\": invalid username/password"),
    );
    assert!(!auth.exists());

    // Without credentials: unauthorized.
    let out = fx.run(&v, &["pull", "--cert-dir", certs, &image]);
    assert_failed(&out, "unauthorized: authentication required");
    let out = fx.run(
        &v,
        &["pull", "--cert-dir", certs, "--creds", "alice:bad", &image],
    );
    assert_eq!(out.status.code(), Some(125));
    assert_eq!(fx.ok(&v, &["images", "-q"]), "");

    // Good login: the auth file as Podman writes it, mode 0600.
    let out = fx.login(&v, certs, "alice", &a, format!("{PASSWORD}\n").as_bytes());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "Login Succeeded!\n");
    assert!(!text(&out.stdout).contains(PASSWORD) && !text(&out.stderr).contains(PASSWORD));
    assert_eq!(
        fs::read_to_string(&auth).unwrap(),
        format!(
            "{{\n\t\"auths\": {{\n\t\t\"{a}\": {{\n\t\t\t\"auth\": \"{basic}\"\n\t\t}}\n\t}}\n}}"
        )
    );
    assert_eq!(
        fs::metadata(&auth).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(fx.ok(&v, &["login", "--get-login", &a]), "alice\n");
    // Logging in again without -u: the stored credentials are checked.
    let out = fx.run(&v, &["login", "--cert-dir", certs, &a]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        format!("Existing credentials are valid. Already logged in to {a}\n")
    );
    assert_eq!(
        text(&out.stderr),
        format!("Authenticating with existing credentials for {a}\n")
    );

    // Stored credentials: pull and push work.
    let id = fx.ok(&v, &["pull", "-q", "--cert-dir", certs, &image]);
    assert_eq!(id.trim().len(), 64);
    let dest = format!("{a}/tests/copy:2");
    let out = fx.run(&v, &["push", "-q", "--cert-dir", certs, &image, &dest]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v2 = Vigil::new().unwrap();
    assert_eq!(fx.ok(&v2, &["pull", "-q", "--cert-dir", certs, &dest]), id);

    // Logout, twice, then -a.
    assert_eq!(
        fx.ok(&v, &["logout", &a]),
        format!("Removed login credentials for {a}\n")
    );
    let out = fx.run(&v, &["logout", &a]);
    assert_failed(&out, &format!("not logged into {a}"));
    let out = fx.run(&v, &["login", "--get-login", &a]);
    assert_eq!(out.status.code(), Some(125));
    assert_eq!(
        fx.ok(&v, &["logout", "-a"]),
        "Removed login credentials for all registries\n"
    );
    assert_eq!(fs::read_to_string(&auth).unwrap(), "{\n\t\"auths\": {}\n}");

    // On a terminal: `Username: ` (echoed) and `Password: ` (not echoed).
    let pty = registry_support::e2e_support::Pty::open(24, 80);
    let child = pty.spawn(fx.vigil(&v, &["login", "--cert-dir", certs, &a]));
    let at = pty.expect(b"Username: ", 0, std::time::Duration::from_secs(60));
    pty.write(b"alice\n");
    let at = pty.expect(b"Password: ", at, std::time::Duration::from_secs(60));
    // (vigil turns echo off before it prints the prompt.)
    pty.write(format!("{PASSWORD}\n").as_bytes());
    pty.expect(b"Login Succeeded!", at, std::time::Duration::from_secs(60));
    let status = registry_support::e2e_support::wait_bounded(
        child,
        std::time::Duration::from_secs(60),
        "login",
    )
    .status;
    assert_eq!(status.code(), Some(0));
    let shown = text(&pty.output());
    assert!(
        !shown.contains(PASSWORD),
        "the password was echoed: {shown:?}"
    );
    assert_eq!(fx.ok(&v, &["login", "--get-login", &a]), "alice\n");
    fx.ok(&v, &["logout", &a]);

    // No terminal and no password: Podman's error, nothing written.
    let out = fx.run_input(&v, &["login", "--cert-dir", certs, "-u", "alice", &a], b"");
    assert_failed(&out, "inappropriate ioctl for device");
}

#[test]
fn bearer_tokens_with_scopes_anonymous_and_logged_in() {
    crate::require_registry!();
    let fx = Fixture::new();
    fx.write_registries_conf("");
    fx.make_tls();
    let tokens = TokenServer::start(&fx, PASSWORD);
    let realm = format!("http://{}/token", tokens.addr);
    let reg = Registry::start(
        &fx,
        "token",
        &RegistryConfig {
            tls: true,
            token_realm: Some(realm),
            ..Default::default()
        },
    );
    let a = reg.addr.clone();
    fx.write_seed_auth(&a, "alice", PASSWORD);
    let src = oci_src("multi");
    seed(&fx, &src, &format!("{a}/public/bb:1"), true, false);
    seed(&fx, &src, &format!("{a}/team/bb:1"), true, false);
    let certs = fx.path("certs");
    let certs = certs.to_str().unwrap();
    let v = Vigil::new().unwrap();

    // Anonymous: public/* can be pulled, team/* not.
    let id = fx.ok(
        &v,
        &[
            "pull",
            "-q",
            "--cert-dir",
            certs,
            &format!("{a}/public/bb:1"),
        ],
    );
    assert_eq!(id.trim().len(), 64);
    assert!(tokens
        .queries()
        .iter()
        .any(|q| q.contains("scope=repository%3Apublic%2Fbb%3Apull") && !q.contains("account=")));
    let out = fx.run(
        &v,
        &["pull", "--cert-dir", certs, &format!("{a}/team/bb:1")],
    );
    assert_failed(&out, "unauthorized: authentication required");

    // Login: wrong then right; then team/bb pulls and pushes with her token.
    let out = fx.login(&v, certs, "alice", &a, b"nope");
    assert_failed(
        &out,
        &format!("logging into \"{a}\": invalid username/password"),
    );
    assert!(!fx.path("auth.json").exists());
    let out = fx.login(&v, certs, "alice", &a, PASSWORD.as_bytes());
    assert_eq!(
        text(&out.stdout),
        "Login Succeeded!\n",
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        fx.ok(
            &v,
            &["pull", "-q", "--cert-dir", certs, &format!("{a}/team/bb:1")]
        ),
        id
    );
    assert!(
        tokens.queries().iter().any(|q| q.starts_with(
            "account=alice&scope=repository%3Ateam%2Fbb%3Apull&service=vigil-test-registry"
        )),
        "{:?}",
        tokens.queries()
    );
    fx.ok(
        &v,
        &[
            "push",
            "-q",
            "--cert-dir",
            certs,
            &format!("{a}/team/bb:1"),
            &format!("{a}/team/copy:1"),
        ],
    );
    assert!(
        tokens
            .queries()
            .iter()
            .any(|q| q.contains("scope=repository%3Ateam%2Fcopy%3Apull%2Cpush")),
        "{:?}",
        tokens.queries()
    );
    let v2 = Vigil::new().unwrap();
    assert_eq!(
        fx.ok(
            &v2,
            &[
                "pull",
                "-q",
                "--cert-dir",
                certs,
                &format!("{a}/team/copy:1")
            ]
        ),
        id
    );
    for out in [fx.run(&v2, &["images"])] {
        assert!(!text(&out.stdout).contains(PASSWORD) && !text(&out.stderr).contains(PASSWORD));
    }
}

/// A Docker credential helper the test writes: keeps one JSON answer per
/// server under `DIR/store/`, logs its argv to `DIR/argv.log`.
fn write_credential_helper(fx: &Fixture) -> std::path::PathBuf {
    let dir = fx.path("helper");
    fs::create_dir_all(dir.join("store")).unwrap();
    let bin = fx.path("bin");
    fs::create_dir_all(&bin).unwrap();
    let script = bin.join("docker-credential-vigiltest");
    fs::write(
        &script,
        format!(
            r#"#!/bin/sh
d='{}'
echo "$*" >> "$d/argv.log"
read -r server || true
case "$1" in
get) [ -f "$d/store/$server" ] || {{ echo "credentials not found in native keychain"; exit 1; }}
     cat "$d/store/$server" ;;
store) printf '%s' "$server" > "$d/stored.json"
     s=$(sed -n 's/.*"ServerURL":"\([^"]*\)".*/\1/p' "$d/stored.json")
     mv "$d/stored.json" "$d/store/$s" ;;
erase) [ -f "$d/store/$server" ] || {{ echo "credentials not found in native keychain"; exit 1; }}
     rm "$d/store/$server" ;;
list) sep=; printf '{{'
     for f in "$d"/store/*; do [ -f "$f" ] || continue; printf '%s"%s":"alice"' "$sep" "${{f##*/}}"; sep=,; done
     printf '}}' ;;
*) exit 2 ;;
esac
"#,
            dir.display()
        ),
    )
    .unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// PATH with the test's helper directory first.
fn path_with(bin: &std::path::Path) -> String {
    format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// `credHelpers` and `credsStore` in the auth file: pulls get the
/// credentials from a real helper program (Podman reads the same file),
/// login stores and logout erases through it, a missing helper or a wrong
/// secret is a clear error, and the password never reaches argv or output.
#[test]
fn credential_helpers_serve_pull_login_and_logout() {
    crate::require_registry!();
    let fx = Fixture::new();
    fx.write_registries_conf("");
    let reg = TlsBasicRegistry::start(&fx, "alice", PASSWORD);
    let (a, image, certs) = (reg.addr.clone(), reg.image.clone(), reg.certs.clone());
    let helper = write_credential_helper(&fx);
    let path = path_with(&fx.path("bin"));
    let auth = fx.path("auth.json");
    let answer = |secret: &str| {
        format!("{{\"ServerURL\":\"{a}\",\"Username\":\"alice\",\"Secret\":\"{secret}\"}}")
    };
    let v = Vigil::new().unwrap();
    let run = |args: &[&str], stdin: &[u8]| {
        let mut c = fx.vigil(&v, args);
        c.env("PATH", &path);
        let out = registry_support::run_bounded(&mut c, stdin, std::time::Duration::from_secs(180));
        for stream in [&out.stdout, &out.stderr] {
            assert!(
                !text(stream).contains(PASSWORD),
                "{args:?} showed the password"
            );
        }
        out
    };

    let login_alice = || {
        run(
            &[
                "login",
                "--cert-dir",
                &certs,
                "-u",
                "alice",
                "--password-stdin",
                &a,
            ],
            format!("{PASSWORD}\n").as_bytes(),
        )
    };

    // credHelpers names the helper for this registry; its auths entry (a
    // wrong one) is not used.
    let with_helper = format!(
        "{{\"auths\":{{\"{a}\":{{\"auth\":\"{}\"}}}},\"credHelpers\":{{\"{a}\":\"vigiltest\"}}}}",
        base64_of("alice:wrong")
    );
    fs::write(&auth, &with_helper).unwrap();
    fs::write(helper.join("store").join(&a), answer(PASSWORD)).unwrap();
    let out = run(&["pull", "-q", "--cert-dir", &certs, &image], b"");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let id = text(&out.stdout).trim().to_string();
    assert_eq!(id.len(), 64);

    // Podman reads the same file and helper, and pulls the same image id.
    if let Ok(podman) = registry_support::e2e_support::Podman::new("vfs") {
        let mut c = podman.command(&["pull", "-q", "--cert-dir", &certs, &image]);
        c.env("REGISTRY_AUTH_FILE", &auth).env("PATH", &path);
        let out = registry_support::run_bounded(&mut c, b"", std::time::Duration::from_secs(300));
        assert_eq!(out.status.code(), Some(0), "podman: {}", text(&out.stderr));
        assert_eq!(text(&out.stdout).trim(), id);
    }

    // A wrong secret from the helper: the registry's refusal.
    fs::write(helper.join("store").join(&a), answer("not-it")).unwrap();
    let out = run(
        &[
            "pull",
            "--cert-dir",
            &certs,
            &format!("{a}/tests/busybox@sha256:{}", "0".repeat(64)),
        ],
        b"",
    );
    assert_failed(&out, "unauthorized");

    // Login stores through the helper (the auth file is left as it was),
    // --get-login reads it back, logout erases it.
    fs::remove_file(helper.join("store").join(&a)).unwrap();
    let out = login_alice();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "Login Succeeded!\n");
    assert_eq!(fs::read_to_string(&auth).unwrap(), with_helper);
    let stored = fs::read_to_string(helper.join("store").join(&a)).unwrap();
    let stored: serde_json::Value = serde_json::from_str(&stored).unwrap();
    assert_eq!(
        (
            stored["ServerURL"].as_str(),
            stored["Username"].as_str(),
            stored["Secret"].as_str()
        ),
        (Some(a.as_str()), Some("alice"), Some(PASSWORD))
    );
    assert_eq!(
        text(&run(&["login", "--get-login", &a], b"").stdout),
        "alice\n"
    );
    let out = run(&["logout", &a], b"");
    assert_eq!(
        text(&out.stdout),
        format!("Removed login credentials for {a}\n")
    );
    assert!(!helper.join("store").join(&a).exists());
    let out = run(&["logout", &a], b"");
    assert_failed(&out, &format!("not logged into {a}"));
    // logout -a asks the helpers of credHelpers to forget their registries
    // and empties `auths` and `credHelpers`, leaving the file Podman 4.3.1
    // leaves (compared as JSON when Podman is here).
    let out = login_alice();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(helper.join("store").join(&a).exists());
    assert_eq!(
        text(&run(&["logout", "-a"], b"").stdout),
        "Removed login credentials for all registries\n"
    );
    assert!(!helper.join("store").join(&a).exists());
    let file_json = || -> serde_json::Value {
        serde_json::from_str(&fs::read_to_string(&auth).unwrap()).unwrap()
    };
    assert_eq!(file_json(), serde_json::json!({"auths": {}}));
    if let Ok(podman) = registry_support::e2e_support::Podman::new("vfs") {
        fs::write(&auth, &with_helper).unwrap();
        fs::write(helper.join("store").join(&a), answer(PASSWORD)).unwrap();
        let mut c = podman.command(&["logout", "-a"]);
        c.env("REGISTRY_AUTH_FILE", &auth).env("PATH", &path);
        let out = registry_support::run_bounded(&mut c, b"", std::time::Duration::from_secs(60));
        assert_eq!(out.status.code(), Some(0), "podman: {}", text(&out.stderr));
        assert_eq!(
            text(&out.stdout),
            "Removed login credentials for all registries\n"
        );
        assert!(!helper.join("store").join(&a).exists());
        assert_eq!(
            file_json(),
            serde_json::json!({"auths": {}}),
            "podman's file"
        );
    }

    // With a credsStore (Docker's key; Podman ignores it), logout -a also
    // has that helper forget every server it lists; the key stays.
    let with_store = "{\"auths\":{},\"credsStore\":\"vigiltest\"}";
    fs::write(&auth, with_store).unwrap();
    let out = login_alice();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(fs::read_to_string(&auth).unwrap(), with_store);
    let other = helper.join("store").join("other.example:5000");
    fs::write(&other, answer(PASSWORD).replace(&a, "other.example:5000")).unwrap();
    assert!(helper.join("store").join(&a).exists());
    assert_eq!(
        text(&run(&["logout", "-a"], b"").stdout),
        "Removed login credentials for all registries\n"
    );
    assert!(!helper.join("store").join(&a).exists());
    assert!(!other.exists(), "a listed server stayed in the credsStore");
    assert_eq!(
        file_json(),
        serde_json::json!({"auths": {}, "credsStore": "vigiltest"})
    );

    // credsStore serves every registry the file does not name otherwise.
    fs::write(&auth, "{\"auths\":{},\"credsStore\":\"vigiltest\"}").unwrap();
    fs::write(helper.join("store").join(&a), answer(PASSWORD)).unwrap();
    let v2 = Vigil::new().unwrap();
    let mut c = fx.vigil(&v2, &["pull", "-q", "--cert-dir", &certs, &image]);
    c.env("PATH", &path);
    let out = registry_support::run_bounded(&mut c, b"", std::time::Duration::from_secs(180));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    // A helper that is not installed: the error names it.
    fs::write(
        &auth,
        format!("{{\"credHelpers\":{{\"{a}\":\"vigil-missing\"}}}}"),
    )
    .unwrap();
    let out = run(&["pull", "--cert-dir", &certs, &image], b"");
    assert_failed(&out, "docker-credential-vigil-missing get");

    // The helper only ever saw its action in argv.
    let argv = fs::read_to_string(helper.join("argv.log")).unwrap();
    assert!(!argv.contains(PASSWORD));
    assert!(
        argv.lines()
            .all(|l| ["get", "store", "erase", "list"].contains(&l)),
        "{argv}"
    );
    assert!(argv.lines().any(|l| l == "store") && argv.lines().any(|l| l == "erase"));
}
