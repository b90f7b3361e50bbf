//! TLS (a test CA in a --cert-dir) and Basic auth (htpasswd) against a real
//! docker-registry on 127.0.0.1: login/logout and the auth file, bad
//! credentials (nothing written), pulls and pushes with stored credentials,
//! an unknown CA. Credentials never show in output.

mod registry_support;

use std::fs;
use std::os::unix::fs::PermissionsExt;

use registry_support::{
    oci_layout, seed, text, unavailable, Fixture, Registry, RegistryConfig, Vigil,
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
    let reg = Registry::start(&fx, "tls", &RegistryConfig { tls: true, htpasswd: true });
    let a = reg.addr.clone();
    // skopeo seeds with its own auth file.
    let basic = base64_of(&format!("alice:{PASSWORD}"));
    fs::write(
        fx.path("seed-auth.json"),
        format!("{{\"auths\":{{\"{a}\":{{\"auth\":\"{basic}\"}}}}}}"),
    )
    .unwrap();
    let image = format!("{a}/tests/busybox:1");
    seed(&fx, &format!("oci:{}:multi", oci_layout().display()), &image, true, false);
    let certs = fx.path("certs");
    let certs = certs.to_str().unwrap();
    let auth = fx.path("auth.json");
    let v = Vigil::new().unwrap();

    // Unknown CA (no --cert-dir): refused at the ping, nothing stored.
    let out = fx.run_input(&v, &["login", "-u", "alice", "--password-stdin", &a], PASSWORD.as_bytes());
    assert_eq!(out.status.code(), Some(125));
    assert!(text(&out.stderr).contains(&format!(
        "authenticating creds for \"{a}\": pinging container registry {a}: Get \"https://{a}/v2/\": "
    )), "{}", text(&out.stderr));
    assert!(!auth.exists());

    // Wrong password: Podman's message, nothing written.
    let out = fx.run_input(&v, &["login", "--cert-dir", certs, "-u", "alice", "--password-stdin", &a], b"wrong\n");
    assert_eq!(out.status.code(), Some(125));
    assert!(text(&out.stderr).contains(&format!("logging into \"{a}\": invalid username/password")), "{}", text(&out.stderr));
    assert!(!auth.exists());

    // Without credentials: unauthorized.
    let out = fx.run(&v, &["pull", "--cert-dir", certs, &image]);
    assert_eq!(out.status.code(), Some(125));
    assert!(text(&out.stderr).contains("unauthorized: authentication required"), "{}", text(&out.stderr));
    let out = fx.run(&v, &["pull", "--cert-dir", certs, "--creds", "alice:bad", &image]);
    assert_eq!(out.status.code(), Some(125));
    assert_eq!(fx.ok(&v, &["images", "-q"]), "");

    // Good login: the auth file as Podman writes it, mode 0600.
    let out = fx.run_input(&v, &["login", "--cert-dir", certs, "-u", "alice", "--password-stdin", &a], format!("{PASSWORD}\n").as_bytes());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "Login Succeeded!\n");
    assert!(!text(&out.stdout).contains(PASSWORD) && !text(&out.stderr).contains(PASSWORD));
    assert_eq!(
        fs::read_to_string(&auth).unwrap(),
        format!("{{\n\t\"auths\": {{\n\t\t\"{a}\": {{\n\t\t\t\"auth\": \"{basic}\"\n\t\t}}\n\t}}\n}}")
    );
    assert_eq!(fs::metadata(&auth).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(fx.ok(&v, &["login", "--get-login", &a]), "alice\n");

    // Stored credentials: pull and push work.
    let id = fx.ok(&v, &["pull", "-q", "--cert-dir", certs, &image]);
    assert_eq!(id.trim().len(), 64);
    let dest = format!("{a}/tests/copy:2");
    let out = fx.run(&v, &["push", "-q", "--cert-dir", certs, &image, &dest]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v2 = Vigil::new().unwrap();
    assert_eq!(fx.ok(&v2, &["pull", "-q", "--cert-dir", certs, &dest]), id);

    // Logout, twice, then -a.
    assert_eq!(fx.ok(&v, &["logout", &a]), format!("Removed login credentials for {a}\n"));
    let out = fx.run(&v, &["logout", &a]);
    assert_eq!(out.status.code(), Some(125));
    assert!(text(&out.stderr).contains(&format!("not logged into {a}")));
    let out = fx.run(&v, &["login", "--get-login", &a]);
    assert_eq!(out.status.code(), Some(125));
    assert_eq!(fx.ok(&v, &["logout", "-a"]), "Removed login credentials for all registries\n");
    assert_eq!(fs::read_to_string(&auth).unwrap(), "{\n\t\"auths\": {}\n}");

    // No terminal and no password: Podman's error, nothing written.
    let out = fx.run_input(&v, &["login", "--cert-dir", certs, "-u", "alice", &a], b"");
    assert_eq!(out.status.code(), Some(125));
    assert!(text(&out.stderr).contains("inappropriate ioctl for device"), "{}", text(&out.stderr));
}

fn base64_of(s: &str) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = s.as_bytes();
    let mut out = String::new();
    for chunk in b.chunks(3) {
        let n = (chunk[0] as u32) << 16
            | (*chunk.get(1).unwrap_or(&0) as u32) << 8
            | *chunk.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
