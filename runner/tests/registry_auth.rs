//! TLS (a test CA in a --cert-dir) and Basic auth (htpasswd) against a real
//! docker-registry on 127.0.0.1: login/logout and the auth file, bad
//! credentials (nothing written), pulls and pushes with stored credentials,
//! an unknown CA. Credentials never show in output.

mod registry_support;

use std::fs;
use std::os::unix::fs::PermissionsExt;

use registry_support::{
    oci_layout, seed, text, unavailable, Fixture, Registry, RegistryConfig, TokenServer, Vigil,
};

const PASSWORD: &str = "s3cret-pw";

#[test]
fn login_pull_push_and_logout_over_tls_with_basic_auth() {
    if let Some(why) = unavailable() {
        eprintln!("skipped: {why}");
        return;
    }
    let fx = Fixture::new();
    fx.write_registries_conf("");
    fx.make_tls();
    fx.add_user("alice", PASSWORD);
    let reg = Registry::start(
        &fx,
        "tls",
        &RegistryConfig {
            tls: true,
            htpasswd: true,
            ..Default::default()
        },
    );
    let a = reg.addr.clone();
    // skopeo seeds with its own auth file.
    let basic = base64_of(&format!("alice:{PASSWORD}"));
    fs::write(
        fx.path("seed-auth.json"),
        format!("{{\"auths\":{{\"{a}\":{{\"auth\":\"{basic}\"}}}}}}"),
    )
    .unwrap();
    let image = format!("{a}/tests/busybox:1");
    seed(
        &fx,
        &format!("oci:{}:multi", oci_layout().display()),
        &image,
        true,
        false,
    );
    let certs = fx.path("certs");
    let certs = certs.to_str().unwrap();
    let auth = fx.path("auth.json");
    let v = Vigil::new().unwrap();

    // Unknown CA (no --cert-dir): refused at the ping, nothing stored.
    let out = fx.run_input(
        &v,
        &["login", "-u", "alice", "--password-stdin", &a],
        PASSWORD.as_bytes(),
    );
    assert_eq!(out.status.code(), Some(125));
    assert!(text(&out.stderr).contains(&format!(
        "authenticating creds for \"{a}\": pinging container registry {a}: Get \"https://{a}/v2/\": "
    )), "{}", text(&out.stderr));
    assert!(!auth.exists());

    // Wrong password: Podman's message, nothing written.
    let out = fx.run_input(
        &v,
        &[
            "login",
            "--cert-dir",
            certs,
            "-u",
            "alice",
            "--password-stdin",
            &a,
        ],
        b"wrong\n",
    );
    assert_eq!(out.status.code(), Some(125));
    assert!(
        text(&out.stderr).contains(&format!("logging into \"{a}\": invalid username/password")),
        "{}",
        text(&out.stderr)
    );
    assert!(!auth.exists());

    // Without credentials: unauthorized.
    let out = fx.run(&v, &["pull", "--cert-dir", certs, &image]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        text(&out.stderr).contains("unauthorized: authentication required"),
        "{}",
        text(&out.stderr)
    );
    let out = fx.run(
        &v,
        &["pull", "--cert-dir", certs, "--creds", "alice:bad", &image],
    );
    assert_eq!(out.status.code(), Some(125));
    assert_eq!(fx.ok(&v, &["images", "-q"]), "");

    // Good login: the auth file as Podman writes it, mode 0600.
    let out = fx.run_input(
        &v,
        &[
            "login",
            "--cert-dir",
            certs,
            "-u",
            "alice",
            "--password-stdin",
            &a,
        ],
        format!("{PASSWORD}\n").as_bytes(),
    );
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
    assert_eq!(out.status.code(), Some(125));
    assert!(text(&out.stderr).contains(&format!("not logged into {a}")));
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
    assert_eq!(out.status.code(), Some(125));
    assert!(
        text(&out.stderr).contains("inappropriate ioctl for device"),
        "{}",
        text(&out.stderr)
    );
}

fn base64_of(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[test]
fn bearer_tokens_with_scopes_anonymous_and_logged_in() {
    if let Some(why) = unavailable() {
        eprintln!("skipped: {why}");
        return;
    }
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
    fs::write(
        fx.path("seed-auth.json"),
        format!(
            "{{\"auths\":{{\"{a}\":{{\"auth\":\"{}\"}}}}}}",
            base64_of(&format!("alice:{PASSWORD}"))
        ),
    )
    .unwrap();
    let src = format!("oci:{}:multi", oci_layout().display());
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
    assert_eq!(out.status.code(), Some(125));
    assert!(
        text(&out.stderr).contains("unauthorized: authentication required"),
        "{}",
        text(&out.stderr)
    );

    // Login: wrong then right; then team/bb pulls and pushes with her token.
    let out = fx.run_input(
        &v,
        &[
            "login",
            "--cert-dir",
            certs,
            "-u",
            "alice",
            "--password-stdin",
            &a,
        ],
        b"nope",
    );
    assert_eq!(out.status.code(), Some(125));
    assert!(
        text(&out.stderr).contains(&format!("logging into \"{a}\": invalid username/password")),
        "{}",
        text(&out.stderr)
    );
    assert!(!fx.path("auth.json").exists());
    let out = fx.run_input(
        &v,
        &[
            "login",
            "--cert-dir",
            certs,
            "-u",
            "alice",
            "--password-stdin",
            &a,
        ],
        PASSWORD.as_bytes(),
    );
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
