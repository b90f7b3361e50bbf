//! The image config a stage builds up, and its JSON in the two formats
//! buildah writes (runner-build.md §3.3, §3.4): OCI (default) and Docker
//! (`--format docker`: also `container_config`, `Shell`, `Healthcheck`,
//! `OnBuild`). History entries are appended per instruction.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

/// `PATH` buildah adds when the base has none.
pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Image format of the result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Oci,
    Docker,
}

/// One history entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    pub created: String,
    pub created_by: String,
    pub author: Option<String>,
    pub comment: Option<String>,
    pub empty_layer: bool,
}

/// The working config of a stage.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StageConfig {
    pub architecture: String,
    pub os: String,
    pub variant: Option<String>,
    pub author: Option<String>,
    pub env: Vec<String>,
    pub cmd: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub working_dir: String,
    pub user: String,
    pub exposed_ports: BTreeMap<String, Value>,
    pub labels: BTreeMap<String, String>,
    pub volumes: BTreeMap<String, Value>,
    pub stop_signal: String,
    pub shell: Option<Vec<String>>,
    pub healthcheck: Option<Value>,
    pub onbuild: Vec<String>,
    pub diff_ids: Vec<String>,
    pub history: Vec<HistoryEntry>,
    /// Raw history entries of the base image, kept as they were.
    pub base_history: Vec<Value>,
}

fn strings(v: &Value) -> Option<Vec<String>> {
    v.as_array().map(|a| {
        a.iter()
            .filter_map(|s| s.as_str().map(String::from))
            .collect()
    })
}

impl StageConfig {
    /// The config of a base image (its config document as stored).
    pub fn from_image(raw: &Value) -> StageConfig {
        let c = &raw["config"];
        let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
        let object = |v: &Value| -> BTreeMap<String, Value> {
            v.as_object()
                .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default()
        };
        StageConfig {
            architecture: text(&raw["architecture"]),
            os: text(&raw["os"]),
            variant: raw["variant"].as_str().map(String::from),
            author: raw["author"].as_str().map(String::from),
            env: strings(&c["Env"]).unwrap_or_default(),
            cmd: strings(&c["Cmd"]),
            entrypoint: strings(&c["Entrypoint"]).filter(|e| !e.is_empty()),
            working_dir: text(&c["WorkingDir"]),
            user: text(&c["User"]),
            exposed_ports: object(&c["ExposedPorts"]),
            labels: c["Labels"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                        .collect()
                })
                .unwrap_or_default(),
            volumes: object(&c["Volumes"]),
            stop_signal: text(&c["StopSignal"]),
            shell: strings(&c["Shell"]).filter(|s| !s.is_empty()),
            healthcheck: Some(c["Healthcheck"].clone()).filter(|h| !h.is_null()),
            onbuild: strings(&c["OnBuild"]).unwrap_or_default(),
            diff_ids: strings(&raw["rootfs"]["diff_ids"]).unwrap_or_default(),
            history: Vec::new(),
            base_history: raw["history"].as_array().cloned().unwrap_or_default(),
        }
    }

    /// `FROM scratch` on `platform` (`os/arch[/variant]`).
    pub fn scratch(os: &str, arch: &str, variant: Option<&str>) -> StageConfig {
        StageConfig {
            os: os.into(),
            architecture: arch.into(),
            variant: variant.map(String::from),
            ..Default::default()
        }
    }

    /// The value of `name` in Env.
    pub fn env_value(&self, name: &str) -> Option<String> {
        self.env.iter().find_map(|e| {
            let (k, v) = e.split_once('=').unwrap_or((e, ""));
            (k == name).then(|| v.to_string())
        })
    }

    /// Sets `name` in Env: replaced in place, else appended.
    pub fn set_env(&mut self, name: &str, value: &str) {
        let entry = format!("{name}={value}");
        match self
            .env
            .iter_mut()
            .find(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) == name)
        {
            Some(slot) => *slot = entry,
            None => self.env.push(entry),
        }
    }

    /// buildah puts a default PATH first when the image has none.
    pub fn ensure_path(&mut self) {
        if self.env_value("PATH").is_none() {
            self.env.insert(0, DEFAULT_PATH.to_string());
        }
    }

    fn container_config(&self, format: Format) -> Value {
        let mut c = Map::new();
        let docker = format == Format::Docker;
        if docker {
            c.insert("Hostname".into(), json!(""));
            c.insert("Domainname".into(), json!(""));
        }
        if !self.user.is_empty() || docker {
            c.insert("User".into(), json!(self.user));
        }
        if docker {
            for k in ["AttachStdin", "AttachStdout", "AttachStderr"] {
                c.insert(k.into(), json!(false));
            }
        }
        if !self.exposed_ports.is_empty() {
            c.insert("ExposedPorts".into(), json!(self.exposed_ports));
        }
        if docker {
            for k in ["Tty", "OpenStdin", "StdinOnce"] {
                c.insert(k.into(), json!(false));
            }
        }
        if !self.env.is_empty() {
            c.insert("Env".into(), json!(self.env));
        }
        if let Some(cmd) = &self.cmd {
            c.insert("Cmd".into(), json!(cmd));
        }
        if let Some(h) = self.healthcheck.as_ref().filter(|_| docker) {
            c.insert("Healthcheck".into(), h.clone());
        }
        if docker {
            c.insert("Image".into(), json!(""));
        }
        if !self.volumes.is_empty() || docker {
            c.insert("Volumes".into(), json!(self.volumes));
        }
        if !self.working_dir.is_empty() || docker {
            c.insert("WorkingDir".into(), json!(self.working_dir));
        }
        match &self.entrypoint {
            Some(e) => {
                c.insert("Entrypoint".into(), json!(e));
            }
            None if docker => {
                c.insert("Entrypoint".into(), json!([]));
            }
            None => {}
        }
        if docker && !self.onbuild.is_empty() {
            c.insert("OnBuild".into(), json!(self.onbuild));
        }
        if !self.labels.is_empty() {
            c.insert("Labels".into(), json!(self.labels));
        }
        if !self.stop_signal.is_empty() {
            c.insert("StopSignal".into(), json!(self.stop_signal));
        }
        if let Some(shell) = self.shell.as_ref().filter(|_| docker) {
            c.insert("Shell".into(), json!(shell));
        }
        Value::Object(c)
    }

    /// The config document, created at `created` (RFC 3339).
    pub fn document(&self, format: Format, created: &str, parent: Option<&str>) -> Vec<u8> {
        let mut doc = Map::new();
        doc.insert("created".into(), json!(created));
        if let Some(a) = &self.author {
            doc.insert("author".into(), json!(a));
        }
        doc.insert("architecture".into(), json!(self.architecture));
        doc.insert("os".into(), json!(self.os));
        if let Some(v) = self.variant.as_ref().filter(|v| !v.is_empty()) {
            doc.insert("variant".into(), json!(v));
        }
        let config = self.container_config(format);
        if format == Format::Docker {
            doc.insert("container".into(), json!(""));
            doc.insert("container_config".into(), config.clone());
            if let Some(p) = parent {
                doc.insert("parent".into(), json!(p));
            }
        }
        doc.insert("config".into(), config);
        doc.insert(
            "rootfs".into(),
            json!({"type": "layers", "diff_ids": self.diff_ids}),
        );
        let mut history = self.base_history.clone();
        for h in &self.history {
            let mut e = Map::new();
            e.insert("created".into(), json!(h.created));
            e.insert("created_by".into(), json!(h.created_by));
            if let Some(a) = &h.author {
                e.insert("author".into(), json!(a));
            }
            if let Some(c) = &h.comment {
                e.insert("comment".into(), json!(c));
            }
            if h.empty_layer {
                e.insert("empty_layer".into(), json!(true));
            }
            history.push(Value::Object(e));
        }
        doc.insert("history".into(), Value::Array(history));
        serde_json::to_vec(&Value::Object(doc)).unwrap_or_default()
    }

    /// Reads back a config this module wrote (a cache hit): the base history
    /// is everything, the stage's own entries start empty again.
    pub fn from_built(raw: &Value) -> StageConfig {
        StageConfig::from_image(raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_in_place_and_round_trip() {
        let mut c = StageConfig::scratch("linux", "amd64", None);
        c.ensure_path();
        c.set_env("A", "1");
        c.set_env("PATH", "/x");
        assert_eq!(c.env, ["PATH=/x", "A=1"]);
        c.cmd = Some(vec!["sh".into()]);
        c.labels.insert("k".into(), "v".into());
        let doc = c.document(Format::Docker, "2026-01-01T00:00:00Z", Some("sha256:x"));
        let v: Value = serde_json::from_slice(&doc).unwrap();
        assert_eq!(v["container_config"]["Entrypoint"], json!([]));
        assert_eq!(v["parent"], "sha256:x");
        let back = StageConfig::from_image(&v);
        assert_eq!(back.env, c.env);
        assert_eq!(back.cmd, c.cmd);
        let oci: Value = serde_json::from_slice(&c.document(Format::Oci, "t", None)).unwrap();
        assert!(oci["config"].get("Volumes").is_none());
        assert!(oci.get("container_config").is_none());
    }
}
