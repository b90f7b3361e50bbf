//! Tests of the whole spec: how the parts come together.

use super::*;

/// The `destination` of every mount in a serialised spec, in order.
fn mount_destinations(json: &serde_json::Value) -> Vec<&str> {
    json["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["destination"].as_str().unwrap())
        .collect()
}

fn opts() -> SpecOptions {
    SpecOptions {
        rootfs: "/r".into(),
        args: vec!["sh".into()],
        env: vec![DEFAULT_PATH.into()],
        cwd: "/".into(),
        user: User {
            uid: 0,
            gid: 0,
            additional_gids: vec![0],
            home: "/root".into(),
        },
        terminal: false,
        console_size: None,
        hostname: "abc".into(),
        network: Network::None,
        cgroups_path: "/vigil/x".into(),
        binds: vec![BindMount {
            source: "/h".into(),
            destination: "/etc/hosts".into(),
            options: vec!["rbind".into()],
        }],
        memory_limit: Some(1 << 20),
        rlimit_nofile: 1024,
        rlimit_nproc: 2048,
        cgroup_ns: false,
        rootless: false,
        userns: None,
        tmpfs: Vec::new(),
        pids_limit: PIDS_LIMIT,
        flags: SpecFlags::default(),
    }
}

fn mount_of<'a>(json: &'a serde_json::Value, dest: &str) -> &'a serde_json::Value {
    json["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["destination"] == dest)
        .unwrap_or_else(|| panic!("no mount {dest}"))
}

#[test]
fn rootless_specs_have_no_cgroup_settings_and_podmans_sys_rules() {
    let mut o = opts();
    o.rootless = true;
    let json = serde_json::to_value(build(&o).unwrap()).unwrap();
    assert!(
        json["linux"].get("resources").is_none(),
        "{}",
        json["linux"]
    );
    assert!(
        json["linux"].get("cgroupsPath").is_none(),
        "{}",
        json["linux"]
    );
    assert!(json["linux"].get("uidMappings").is_none());
    // A private network namespace: a fresh sysfs and a cgroup mount.
    assert_eq!(mount_of(&json, "/sys")["type"], "sysfs");
    assert_eq!(mount_of(&json, "/sys/fs/cgroup")["type"], "cgroup");

    o.network = Network::Host;
    let json = serde_json::to_value(build(&o).unwrap()).unwrap();
    let sys = mount_of(&json, "/sys");
    assert_eq!(
        (sys["type"].as_str(), sys["source"].as_str()),
        (Some("bind"), Some("/sys"))
    );
    assert!(sys["options"].as_array().unwrap().iter().any(|o| o == "ro"));
    assert!(sys["options"]
        .as_array()
        .unwrap()
        .iter()
        .any(|o| o == "rbind"));
    let cg = mount_of(&json, "/sys/fs/cgroup");
    assert_eq!(
        (cg["type"].as_str(), cg["source"].as_str()),
        (Some("bind"), Some("/sys/fs/cgroup"))
    );
    assert!(json["linux"]["maskedPaths"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p == "/sys/kernel"));
    let ns: Vec<&str> = json["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap())
        .collect();
    assert_eq!(ns, ["pid", "ipc", "uts", "mount"]);

    o.network = Network::Path("/proc/1/ns/net".into());
    let err = build(&o).unwrap_err().to_string();
    assert!(err.contains("use --network none or host"), "{err}");
}

#[test]
fn a_container_user_namespace_has_its_mappings() {
    use crate::rootless::idmap::{keep_id_mapping, IdMapping};
    let mut o = opts();
    o.rootless = true;
    let uids = keep_id_mapping(1000, 65537).unwrap();
    o.userns = Some((uids.clone(), uids));
    let json = serde_json::to_value(build(&o).unwrap()).unwrap();
    assert_eq!(
        json["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()["type"],
        "user"
    );
    assert_eq!(
        json["linux"]["uidMappings"][1],
        serde_json::json!({"containerID": 1000, "hostID": 0, "size": 1})
    );
    assert_eq!(json["linux"]["gidMappings"].as_array().unwrap().len(), 3);
    let pts = mount_of(&json, "/dev/pts");
    assert!(pts["options"]
        .as_array()
        .unwrap()
        .iter()
        .any(|o| o == "gid=5"));
    // gid 5 unmapped: devpts without gid=5 (runner-notes §3.2).
    let small = crate::rootless::idmap::IdMap(vec![IdMapping {
        container: 0,
        host: 0,
        size: 1,
    }]);
    o.userns = Some((small.clone(), small));
    let json = serde_json::to_value(build(&o).unwrap()).unwrap();
    let pts = mount_of(&json, "/dev/pts");
    assert!(
        !pts["options"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o == "gid=5"),
        "{pts}"
    );
}

#[test]
fn spec_has_podman_defaults() {
    let spec = build(&opts()).unwrap();
    let json = serde_json::to_value(&spec).unwrap();
    let ns: Vec<&str> = json["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap())
        .collect();
    assert_eq!(ns, ["pid", "network", "ipc", "uts", "mount"]);
    let dests = mount_destinations(&json);
    assert_eq!(
        dests,
        [
            "/proc",
            "/dev",
            "/sys",
            "/dev/pts",
            "/dev/mqueue",
            "/dev/shm",
            "/sys/fs/cgroup",
            "/etc/hosts"
        ]
    );
    assert_eq!(
        json["process"]["capabilities"]["effective"]
            .as_array()
            .unwrap()
            .len(),
        11
    );
    assert_eq!(
        json["process"]["rlimits"][0],
        serde_json::json!({"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024})
    );
    assert_eq!(json["linux"]["resources"]["pids"]["limit"], 2048);
    assert_eq!(json["linux"]["resources"]["memory"]["limit"], 1 << 20);
    assert_eq!(json["linux"]["maskedPaths"].as_array().unwrap().len(), 12);
    assert_eq!(json["root"]["path"], "/r");
    assert_eq!(json["hostname"], "abc");

    let mut o = opts();
    o.network = Network::Host;
    o.user.uid = 1000;
    let json = serde_json::to_value(build(&o).unwrap()).unwrap();
    assert_eq!(json["linux"]["namespaces"].as_array().unwrap().len(), 4);
    assert!(json["process"]["capabilities"]["effective"]
        .as_array()
        .unwrap()
        .is_empty());
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

#[test]
fn the_pids_limit_reaches_the_spec() {
    let mut o = opts();
    o.pids_limit = 20;
    let json = serde_json::to_value(build(&o).unwrap()).unwrap();
    assert_eq!(json["linux"]["resources"]["pids"]["limit"], 20);
}

#[test]
fn flags_shape_the_spec() {
    let mut o = opts();
    o.binds.insert(
        0,
        BindMount {
            source: "/v".into(),
            destination: "/tmp/a/b".into(),
            options: strings(&["rbind", "rprivate"]),
        },
    );
    o.binds.push(BindMount {
        source: "/s/hostname".into(),
        destination: "/etc/hostname".into(),
        options: strings(&["bind", "rprivate"]),
    });
    o.flags = SpecFlags {
        cap_add: strings(&["SYS_ADMIN"]),
        cap_drop: strings(&["CHOWN"]),
        tmpfs: strings(&["/scratch:size=1m", "/dev/shm:size=2m", "/tmp"]),
        read_only: true,
        read_only_tmpfs: true,
        pids_limit: None,
        init: false,
    };
    o.tmpfs = o.flags.parse(&[]).unwrap().tmpfs;
    let json = serde_json::to_value(build(&o).unwrap()).unwrap();
    assert_eq!(json["root"]["readonly"], true);
    let dests = mount_destinations(&json);
    assert_eq!(
        dests,
        [
            "/proc",
            "/dev",
            "/sys",
            "/dev/pts",
            "/dev/mqueue",
            "/sys/fs/cgroup",
            "/run",
            "/scratch",
            "/tmp",
            "/var/tmp",
            "/dev/shm",
            "/etc/hosts",
            "/etc/hostname",
            "/tmp/a/b"
        ]
    );
    assert_eq!(
        mount_of(&json, "/run")["options"],
        serde_json::json!(["rw", "rprivate", "nosuid", "nodev", "tmpcopyup"])
    );
    assert_eq!(mount_of(&json, "/dev/shm")["options"][0], "size=2m");
    // Generated /etc files turn read-only, volumes (rbind) keep theirs.
    assert_eq!(
        mount_of(&json, "/etc/hostname")["options"],
        serde_json::json!(["bind", "rprivate", "ro", "nosuid", "noexec", "nodev"])
    );
    assert_eq!(
        mount_of(&json, "/etc/hosts")["options"],
        serde_json::json!(["rbind"])
    );
    let caps = &json["process"]["capabilities"];
    let has = |set: &str, c: &str| caps[set].as_array().unwrap().iter().any(|x| x == c);
    assert!(has("bounding", "CAP_SYS_ADMIN") && has("effective", "CAP_SYS_ADMIN"));
    assert!(!has("bounding", "CAP_CHOWN") && !has("effective", "CAP_CHOWN"));
    assert!(caps["ambient"].as_array().unwrap().is_empty());

    // A non-root user gets only the added capabilities, in every set.
    o.user.uid = 1000;
    o.flags.read_only_tmpfs = false;
    let json = serde_json::to_value(build(&o).unwrap()).unwrap();
    let caps = &json["process"]["capabilities"];
    for set in ["effective", "permitted", "inheritable", "ambient"] {
        assert_eq!(caps[set], serde_json::json!(["CAP_SYS_ADMIN"]), "{set}");
    }
    assert_eq!(caps["bounding"].as_array().unwrap().len(), 11);
    assert!(json["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["destination"] != "/run"));
}

#[test]
fn console_size_only_for_a_sized_terminal() {
    let json = |terminal, console_size| {
        let mut o = opts();
        o.terminal = terminal;
        o.console_size = console_size;
        serde_json::to_value(build(&o).unwrap()).unwrap()["process"].clone()
    };
    assert_eq!(
        json(true, Some((37, 111)))["consoleSize"],
        serde_json::json!({"height": 37, "width": 111})
    );
    assert!(json(true, None).get("consoleSize").is_none());
    assert!(json(true, Some((0, 0))).get("consoleSize").is_none());
    assert!(json(false, Some((37, 111))).get("consoleSize").is_none());
}
