//! `vigil build` with a registry (real docker-registry on 127.0.0.1): a
//! `FROM` image not in the store is pulled as `vigil pull` does, the built
//! image is pushed, and Podman pulls it back and runs it.

mod registry_support;

use registry_support::{
    e2e_support, oci_layout, seed, text, unavailable, Fixture, Registry, RegistryConfig, Vigil,
};

#[test]
fn build_pulls_from_pushes_and_podman_runs_the_result() {
    if let Some(why) = unavailable() {
        eprintln!("skipped: {why}");
        return;
    }
    let fx = Fixture::new();
    fx.write_registries_conf("");
    let reg = Registry::start(&fx, "build", &RegistryConfig::default());
    let base = format!("{}/test/base:1", reg.addr);
    seed(
        &fx,
        &format!("oci:{}:base", oci_layout().display()),
        &base,
        false,
        false,
    );
    let v = Vigil::new().unwrap();
    let ctx = fx.path("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Containerfile"),
        format!("FROM {base}\nUSER root\nRUN echo built > /built\nENTRYPOINT []\nCMD [\"cat\", \"/built\"]\n"),
    )
    .unwrap();
    let c = ctx.to_str().unwrap();
    // --pull=never: not in the store, nothing pulled.
    let out = fx.run(&v, &["build", "--pull=never", c]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        text(&out.stderr).contains(&format!(
            "Error: creating build container: {base}: image not known"
        )),
        "{}",
        text(&out.stderr)
    );
    // Default (missing): pulled, then built on.
    let out = fx.run(&v, &["build", "--tls-verify=false", "-t", "built", c]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with(&format!("STEP 1/5: FROM {base}\n")),
        "{stdout}"
    );
    assert!(text(&v.run(&["images"]).stdout).contains("test/base"));
    assert_eq!(fx.ok(&v, &["run", "--rm", "built"]), "built\n");

    // Pushed, then pulled and run by Podman.
    let dest = format!("{}/test/built:1", reg.addr);
    fx.ok(&v, &["push", "-q", "--tls-verify=false", "built", &dest]);
    let Ok(p) = e2e_support::Podman::new("overlay") else {
        eprintln!("podman part skipped: podman does not work here");
        return;
    };
    p.ok(&["pull", "-q", "--tls-verify=false", &dest]);
    assert_eq!(p.ok(&["run", "--rm", &dest]), "built\n");
}
