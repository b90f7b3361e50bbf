//! Per-container `/etc/hosts`, `/etc/hostname`, `/etc/resolv.conf` and
//! `/run/.containerenv`, bind-mounted from the state directory (runner-notes §3.5).

use std::fs;
use std::path::Path;

use crate::error::RunnerError;
use crate::network::etc_files::{hosts_file, resolv_conf, EtcInfo};
use crate::spec::BindMount;

/// Write the files into `dir` and return their bind mounts.
pub fn write_files(
    dir: &Path,
    hostname: &str,
    name: &str,
    info: &EtcInfo,
    with_resolv_conf: bool,
) -> Result<Vec<BindMount>, RunnerError> {
    let write = |file: &str, text: &str| {
        let path = dir.join(file);
        fs::write(&path, text)
            .map_err(|e| RunnerError::io(format!("writing {}", path.display()), e))?;
        Ok::<_, RunnerError>(path)
    };
    let bind = |source, destination: &str| BindMount {
        source,
        destination: destination.into(),
        options: vec!["bind".into(), "rprivate".into()],
    };
    let host_hosts = fs::read_to_string("/etc/hosts").unwrap_or_default();
    let mut mounts = vec![
        bind(
            // Without a trailing newline, as Podman 4.3.1 writes it.
            write("hostname", hostname)?,
            "/etc/hostname",
        ),
        bind(
            write("hosts", &hosts_file(&host_hosts, info, hostname, name))?,
            "/etc/hosts",
        ),
    ];
    // Like Podman: no resolv.conf at all with --network none.
    if with_resolv_conf {
        let mut host = fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        if host.contains("127.0.0.53") {
            host = fs::read_to_string("/run/systemd/resolve/resolv.conf").unwrap_or(host);
        }
        mounts.push(bind(
            write("resolv.conf", &resolv_conf(&host, info))?,
            "/etc/resolv.conf",
        ));
    }
    mounts.push(bind(write(".containerenv", "")?, "/run/.containerenv"));
    Ok(mounts)
}
