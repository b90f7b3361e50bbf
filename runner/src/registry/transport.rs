//! HTTP agents per registry host and TLS mode: the system's CA bundle plus
//! the host's certs.d CAs (`*.crt`) and client certificate (`*.cert` +
//! `*.key`), or no verification for insecure registries.
//!
//! certs.d lookup for `HOST[:PORT]` (containers-certs.d(5)): `--cert-dir`
//! alone when given; otherwise `$HOME/.config/containers/certs.d/HOST`
//! (rootless only), `/etc/containers/certs.d/HOST`, `/etc/docker/certs.d/HOST`.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use ureq::tls::{Certificate, ClientCert, PrivateKey, RootCerts, TlsConfig};
use ureq::Agent;

use super::error::RegistryError;

/// The system CA bundle (Debian's; `SSL_CERT_FILE` overrides).
const SYSTEM_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Builds and caches one agent per (host, verify).
pub struct Transport {
    cert_dir: Option<PathBuf>,
    user_dir: Option<PathBuf>,
    system_bundle: PathBuf,
    agents: Mutex<HashMap<(String, bool), Agent>>,
    system_roots: OnceLock<Vec<Certificate<'static>>>,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("cert_dir", &self.cert_dir)
            .finish()
    }
}

impl Transport {
    /// `cert_dir`: `--cert-dir`; `home`: the user's home for the rootless
    /// certs.d (pass `None` for root).
    pub fn new(cert_dir: Option<PathBuf>, rootless_home: Option<&Path>) -> Transport {
        Transport {
            cert_dir,
            user_dir: rootless_home.map(|h| h.join(".config/containers/certs.d")),
            system_bundle: std::env::var_os("SSL_CERT_FILE")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(SYSTEM_BUNDLE)),
            agents: Mutex::new(HashMap::new()),
            system_roots: OnceLock::new(),
        }
    }

    /// The certs.d directories that apply to `host`.
    fn cert_dirs(&self, host: &str) -> Vec<PathBuf> {
        if let Some(dir) = &self.cert_dir {
            return vec![dir.clone()];
        }
        let mut dirs = Vec::new();
        if let Some(user) = &self.user_dir {
            dirs.push(user.join(host));
        }
        dirs.push(Path::new("/etc/containers/certs.d").join(host));
        dirs.push(Path::new("/etc/docker/certs.d").join(host));
        dirs
    }

    /// The agent for `host` with or without certificate verification.
    pub fn agent(&self, host: &str, verify: bool) -> Result<Agent, RegistryError> {
        let key = (host.to_string(), verify);
        let mut agents = self.agents.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(agent) = agents.get(&key) {
            return Ok(agent.clone());
        }
        let (extra, client) = self.host_certs(host)?;
        let roots = if verify {
            let system = self
                .system_roots
                .get_or_init(|| load_bundle(&self.system_bundle));
            if system.is_empty() && extra.is_empty() {
                RootCerts::WebPki
            } else {
                RootCerts::Specific(Arc::new(system.iter().cloned().chain(extra).collect()))
            }
        } else {
            RootCerts::WebPki
        };
        let tls = TlsConfig::builder()
            .root_certs(roots)
            .client_cert(client)
            .disable_verification(!verify)
            .build();
        let mut config = Agent::config_builder()
            .tls_config(tls)
            .http_status_as_error(false)
            .max_redirects(0)
            .user_agent(format!("vigil/{}", env!("CARGO_PKG_VERSION")))
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_recv_response(Some(Duration::from_secs(120)))
            .timeout_per_read(Some(Duration::from_secs(120)))
            .max_idle_connections_per_host(16);
        if is_loopback(host) {
            // Loopback never goes through a proxy from the environment.
            config = config.proxy(None);
        }
        let agent: Agent = config.build().into();
        agents.insert(key, agent.clone());
        Ok(agent)
    }

    /// Closes every connection of every agent built so far, the ones in use
    /// included: a request blocked on a stalled registry fails at once
    /// instead of after its read timeout (^C during a pull). The agents are
    /// dropped from the cache, so a later request gets a fresh one.
    pub fn shutdown(&self) {
        let agents = std::mem::take(&mut *self.agents.lock().unwrap_or_else(|e| e.into_inner()));
        for agent in agents.into_values() {
            agent.shutdown();
        }
    }

    /// CA certificates and the client certificate for `host` from certs.d.
    fn host_certs(
        &self,
        host: &str,
    ) -> Result<(Vec<Certificate<'static>>, Option<ClientCert>), RegistryError> {
        let mut cas = Vec::new();
        let mut client = None;
        for dir in self.cert_dirs(host) {
            let Ok(entries) = fs::read_dir(&dir) else {
                continue;
            };
            let mut files: Vec<PathBuf> = entries.filter_map(|e| Some(e.ok()?.path())).collect();
            files.sort();
            for file in &files {
                match file.extension().and_then(|e| e.to_str()) {
                    Some("crt") => {
                        let found = load_bundle(file);
                        if found.is_empty() {
                            return Err(RegistryError::Config(format!(
                                "{}: no PEM certificate in it",
                                file.display()
                            )));
                        }
                        cas.extend(found);
                    }
                    Some("cert") if client.is_none() => {
                        let key = file.with_extension("key");
                        if !key.exists() {
                            return Err(RegistryError::Config(format!(
                                "missing key {} for client certificate {}",
                                key.display(),
                                file.display()
                            )));
                        }
                        let chain = load_bundle(file);
                        let key_pem = fs::read(&key)
                            .map_err(|e| RegistryError::io(key.display().to_string(), e))?;
                        let key = PrivateKey::from_pem(&key_pem).map_err(|e| {
                            RegistryError::Config(format!("{}: {e}", key.display()))
                        })?;
                        client = Some(ClientCert::new_with_certs(&chain, key));
                    }
                    Some("key") if !file.with_extension("cert").exists() => {
                        return Err(RegistryError::Config(format!(
                            "missing client certificate {} for key {}",
                            file.with_extension("cert").display(),
                            file.display()
                        )));
                    }
                    _ => {}
                }
            }
        }
        Ok((cas, client))
    }
}

/// Every PEM certificate in `file` (none if unreadable).
fn load_bundle(file: &Path) -> Vec<Certificate<'static>> {
    let Ok(bytes) = fs::read(file) else {
        return Vec::new();
    };
    CertificateDer::pem_slice_iter(&bytes)
        .filter_map(|c| c.ok())
        .map(|der| Certificate::from_der(der.as_ref()).to_owned())
        .collect()
}

/// `127.x.x.x`, `localhost`, `[::1]` with or without a port.
pub fn is_loopback(host: &str) -> bool {
    let name = if host.starts_with('[') {
        host.split(']').next().map(|h| &h[1..]).unwrap_or(host)
    } else {
        host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host)
    };
    name == "localhost"
        || name == "::1"
        || name
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        assert!(is_loopback("127.0.0.1:5000"));
        assert!(is_loopback("localhost"));
        assert!(is_loopback("[::1]:5000"));
        assert!(!is_loopback("docker.io"));
        assert!(!is_loopback("10.0.0.1:5000"));
    }

    #[test]
    fn a_key_without_its_certificate_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("client.key"), "x").unwrap();
        let t = Transport::new(Some(dir.path().to_path_buf()), None);
        let err = t.agent("127.0.0.1:1", true).unwrap_err().to_string();
        assert!(err.contains("missing client certificate"), "{err}");
    }
}
