//! Manifests and indexes as a registry serves them: media type checks,
//! limits, and choosing the image for a platform from an index.
//!
//! Everything here is pure (bytes in, verdict out), so it is fuzzed
//! (`tests/fuzz`, target `registry_manifest`).

use crate::image::digest::Digest;
use crate::image::oci::{media, Descriptor, Index, Manifest};

use super::error::RegistryError;

/// Largest manifest or index accepted (as containers/image).
pub const MAX_MANIFEST: u64 = 4 << 20;
/// Largest image config accepted.
pub const MAX_CONFIG: u64 = 8 << 20;
/// Most layers an image may have.
pub const MAX_LAYERS: usize = 1000;

/// The `Accept` list sent for manifests (Podman's order, schema1 left out:
/// vigil refuses it, and without it Distribution would convert schema2).
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.v2+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.index.v1+json";

const SCHEMA1: [&str; 2] = [
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
    "application/vnd.docker.distribution.manifest.v1+json",
];

/// A parsed manifest document.
#[derive(Debug, Clone)]
pub enum Document {
    Index {
        media_type: String,
        index: Index,
    },
    Manifest {
        media_type: String,
        manifest: Manifest,
    },
}

/// The media type a response claims: the `Content-Type` header unless it is
/// generic (then the body's `mediaType` decides).
fn header_type(content_type: Option<&str>) -> Option<String> {
    let ct = content_type?.split(';').next()?.trim().to_ascii_lowercase();
    match ct.as_str() {
        "" | "application/json" | "text/plain" | "application/octet-stream" => None,
        _ => Some(ct),
    }
}

/// Parses a manifest or index. `content_type` is the response header;
/// `expected` the media type of the descriptor that pointed here (an index
/// entry), if any. Refuses schema1, documents that are both index and
/// manifest, a `mediaType` field that contradicts the header or the
/// descriptor, more than [`MAX_LAYERS`] layers, non-image configs and
/// unknown layer types.
pub fn parse(
    bytes: &[u8],
    content_type: Option<&str>,
    expected: Option<&str>,
) -> Result<Document, RegistryError> {
    let bad = |msg: String| RegistryError::Content(msg);
    if bytes.len() as u64 > MAX_MANIFEST {
        return Err(bad(format!("manifest is larger than {MAX_MANIFEST} bytes")));
    }
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| bad(format!("parsing manifest: {e}")))?;
    let Some(object) = value.as_object() else {
        return Err(bad("parsing manifest: not a JSON object".into()));
    };
    let body_type = object
        .get("mediaType")
        .and_then(|v| v.as_str())
        .map(str::to_string);
    let header = header_type(content_type);
    if let (Some(h), Some(b)) = (&header, &body_type) {
        if h != b {
            return Err(bad(format!(
                "manifest media type mismatch: served as {h}, document says {b}"
            )));
        }
    }
    let has_manifests = object.contains_key("manifests");
    let has_image_parts = object.contains_key("layers") || object.contains_key("config");
    if has_manifests && has_image_parts {
        return Err(bad(
            "manifest is both an index (manifests) and an image manifest (config/layers)".into(),
        ));
    }
    let media_type = match header.or(body_type) {
        Some(mt) => mt,
        None if has_manifests => media::OCI_INDEX.to_string(),
        None if object.contains_key("config") => media::OCI_MANIFEST.to_string(),
        None => return Err(bad("manifest has no media type and no known shape".into())),
    };
    if let Some(expected) = expected {
        let same_kind = (media::is_index(expected) && media::is_index(&media_type))
            || (media::is_manifest(expected) && media::is_manifest(&media_type));
        if !expected.is_empty() && expected != media_type && !same_kind {
            return Err(bad(format!(
                "manifest media type mismatch: index entry says {expected}, document is {media_type}"
            )));
        }
    }
    if SCHEMA1.contains(&media_type.as_str()) {
        return Err(bad(format!("unsupported manifest type {media_type}")));
    }
    let schema_version = object.get("schemaVersion").and_then(|v| v.as_i64());
    if schema_version != Some(2) {
        return Err(bad(format!(
            "unsupported manifest schemaVersion {}",
            object
                .get("schemaVersion")
                .map(|v| v.to_string())
                .unwrap_or_else(|| "(none)".into())
        )));
    }
    if media::is_index(&media_type) {
        let index: Index =
            serde_json::from_value(value).map_err(|e| bad(format!("parsing image index: {e}")))?;
        if index.manifests.len() > MAX_LAYERS {
            return Err(bad(format!(
                "image index has more than {MAX_LAYERS} entries"
            )));
        }
        for entry in &index.manifests {
            checked(entry, "index entry")?;
        }
        return Ok(Document::Index { media_type, index });
    }
    if !media::is_manifest(&media_type) {
        return Err(bad(format!("unsupported manifest type {media_type}")));
    }
    let manifest: Manifest =
        serde_json::from_value(value).map_err(|e| bad(format!("parsing image manifest: {e}")))?;
    if manifest.layers.len() > MAX_LAYERS {
        return Err(bad(format!(
            "image has {} layers, more than the {MAX_LAYERS} allowed",
            manifest.layers.len()
        )));
    }
    let (_, config_size) = checked(&manifest.config, "config")?;
    if !media::is_image_config(&manifest.config.media_type) {
        return Err(bad(format!(
            "not a container image: config media type {:?} (an artifact?)",
            manifest.config.media_type
        )));
    }
    if config_size > MAX_CONFIG {
        return Err(bad(format!(
            "image config is larger than {MAX_CONFIG} bytes"
        )));
    }
    for layer in &manifest.layers {
        checked(layer, "layer")?;
        if !media::is_layer(&layer.media_type) {
            return Err(bad(format!(
                "unsupported layer media type {:?}",
                layer.media_type
            )));
        }
    }
    Ok(Document::Manifest {
        media_type,
        manifest,
    })
}

/// A descriptor's digest and size, validated.
pub fn checked(desc: &Descriptor, what: &str) -> Result<(Digest, u64), RegistryError> {
    let digest =
        Digest::parse(&desc.digest).map_err(|e| RegistryError::Content(format!("{what}: {e}")))?;
    let size = u64::try_from(desc.size)
        .map_err(|_| RegistryError::Content(format!("{what}: negative size {}", desc.size)))?;
    Ok((digest, size))
}

/// The platform a pull wants (`--platform`, `--os`, `--arch`, `--variant`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WantedPlatform {
    pub os: String,
    pub architecture: String,
    /// `None`: whatever the architecture's default accepts.
    pub variant: Option<String>,
}

impl WantedPlatform {
    /// This machine's platform.
    pub fn host() -> WantedPlatform {
        let host = crate::image::oci::Platform::host();
        WantedPlatform {
            os: host.os,
            architecture: host.architecture,
            variant: None,
        }
    }

    /// From `--platform OS/ARCH[/VARIANT]` and the single flags (which win),
    /// defaulting to the host.
    pub fn from_flags(
        platform: Option<&str>,
        os: Option<&str>,
        arch: Option<&str>,
        variant: Option<&str>,
    ) -> Result<WantedPlatform, RegistryError> {
        let mut wanted = WantedPlatform::host();
        if let Some(p) = platform {
            let parts: Vec<&str> = p.split('/').collect();
            if parts.len() < 2 || parts.len() > 3 || parts.iter().any(|s| s.is_empty()) {
                return Err(RegistryError::Config(format!(
                    "invalid platform {p:?}: expected OS/ARCH[/VARIANT]"
                )));
            }
            wanted.os = parts[0].to_string();
            wanted.architecture = parts[1].to_string();
            wanted.variant = parts.get(2).map(|s| s.to_string());
        }
        if let Some(os) = os {
            wanted.os = os.to_string();
        }
        if let Some(arch) = arch {
            wanted.architecture = arch.to_string();
        }
        if let Some(v) = variant {
            wanted.variant = Some(v.to_string());
        }
        Ok(wanted)
    }

    /// Preference rank of an entry's variant (lower is better), `None` when
    /// it does not fit.
    fn rank(&self, variant: Option<&str>) -> Option<usize> {
        let entry = variant.unwrap_or("");
        let prefs: Vec<&str> = match (self.architecture.as_str(), self.variant.as_deref()) {
            ("arm64", None) | ("arm64", Some("v8")) => vec!["v8", ""],
            ("arm", Some("v7")) | ("arm", None) => vec!["v7", "v6", "v5", ""],
            ("arm", Some("v6")) => vec!["v6", "v5", ""],
            ("arm", Some("v5")) => vec!["v5", ""],
            // amd64 variants are ignored (containers/image 5.23).
            ("amd64", None) => return Some(0),
            (_, Some(v)) => vec![v],
            (_, None) => return Some(if entry.is_empty() { 0 } else { 1 }),
        };
        prefs.iter().position(|p| *p == entry)
    }

    /// `os/arch[/variant]`.
    pub fn display(&self) -> String {
        match &self.variant {
            Some(v) => format!("{}/{}/{v}", self.os, self.architecture),
            None => format!("{}/{}", self.os, self.architecture),
        }
    }
}

/// Picks the index entry for `wanted`: os and architecture exact, the best
/// variant rank, the first entry among equals. `what` names the index in the
/// error (Podman's text).
pub fn select<'a>(
    index: &'a Index,
    wanted: &WantedPlatform,
    what: &str,
) -> Result<&'a Descriptor, RegistryError> {
    let mut best: Option<(usize, &Descriptor)> = None;
    for entry in &index.manifests {
        let Some(p) = &entry.platform else { continue };
        if p.os != wanted.os || p.architecture != wanted.architecture {
            continue;
        }
        if let Some(rank) = wanted.rank(p.variant.as_deref()) {
            if best.is_none_or(|(r, _)| rank < r) {
                best = Some((rank, entry));
            }
        }
    }
    best.map(|(_, d)| d).ok_or_else(|| {
        RegistryError::Platform(format!(
            "choosing an image from manifest list {what}: no image found in image index for \
             architecture {}, variant {:?}, OS {}",
            wanted.architecture,
            wanted.variant.as_deref().unwrap_or(""),
            wanted.os
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desc(mt: &str, n: u8) -> String {
        format!(
            r#"{{"mediaType":"{mt}","digest":"sha256:{}","size":10}}"#,
            format!("{n:02x}").repeat(32)
        )
    }

    fn manifest(layers: usize) -> String {
        let layers: Vec<String> = (0..layers)
            .map(|i| {
                desc(
                    "application/vnd.oci.image.layer.v1.tar+gzip",
                    (i % 250) as u8,
                )
            })
            .collect();
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","config":{},"layers":[{}]}}"#,
            media::OCI_MANIFEST,
            desc(media::OCI_CONFIG, 255),
            layers.join(",")
        )
    }

    fn index(entries: &[(&str, &str, Option<&str>)]) -> Index {
        let list: Vec<String> = entries
            .iter()
            .enumerate()
            .map(|(i, (os, arch, v))| {
                let variant = v.map(|v| format!(r#","variant":"{v}""#)).unwrap_or_default();
                format!(
                    r#"{{"mediaType":"{}","digest":"sha256:{}","size":1,"platform":{{"os":"{os}","architecture":"{arch}"{variant}}}}}"#,
                    media::OCI_MANIFEST,
                    format!("{i:02x}").repeat(32)
                )
            })
            .collect();
        let doc = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","manifests":[{}]}}"#,
            media::OCI_INDEX,
            list.join(",")
        );
        match parse(doc.as_bytes(), None, None).unwrap() {
            Document::Index { index, .. } => index,
            _ => panic!("not an index"),
        }
    }

    #[test]
    fn manifests_parse_and_limits_hold() {
        let m = manifest(3);
        assert!(matches!(
            parse(m.as_bytes(), Some(media::OCI_MANIFEST), None),
            Ok(Document::Manifest { .. })
        ));
        let too_many = manifest(MAX_LAYERS + 1);
        let err = parse(too_many.as_bytes(), None, None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("more than the 1000"), "{err}");
        let err = parse(m.as_bytes(), Some(media::DOCKER_MANIFEST), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("media type mismatch"), "{err}");
        let err = parse(m.as_bytes(), None, Some(media::OCI_INDEX))
            .unwrap_err()
            .to_string();
        assert!(err.contains("media type mismatch"), "{err}");
        let both = m.replace(r#""layers""#, r#""manifests":[],"layers""#);
        assert!(parse(both.as_bytes(), None, None).is_err());
        let big = vec![b' '; MAX_MANIFEST as usize + 1];
        assert!(parse(&big, None, None)
            .unwrap_err()
            .to_string()
            .contains("larger"));
        let schema1 = r#"{"schemaVersion":1,"name":"x"}"#;
        let err = parse(schema1.as_bytes(), Some(SCHEMA1[0]), None).unwrap_err();
        assert!(
            err.to_string().contains("unsupported manifest type"),
            "{err}"
        );
        let artifact = m.replace(media::OCI_CONFIG, "application/vnd.example+json");
        assert!(parse(artifact.as_bytes(), None, None)
            .unwrap_err()
            .to_string()
            .contains("artifact"));
        for junk in ["", "[]", "{}", "null", r#"{"schemaVersion":2,"config":{}}"#] {
            assert!(parse(junk.as_bytes(), None, None).is_err(), "{junk}");
        }
    }

    #[test]
    fn platform_choice_follows_containers_image() {
        let idx = index(&[
            ("linux", "amd64", None),
            ("linux", "arm64", Some("v8")),
            ("linux", "arm", Some("v6")),
            ("linux", "arm", Some("v7")),
        ]);
        let pick = |os: &str, arch: &str, v: Option<&str>| {
            let w = WantedPlatform {
                os: os.into(),
                architecture: arch.into(),
                variant: v.map(String::from),
            };
            select(&idx, &w, "x").map(|d| d.digest.clone())
        };
        let d = |i: u8| format!("sha256:{}", format!("{i:02x}").repeat(32));
        assert_eq!(pick("linux", "amd64", None).unwrap(), d(0));
        assert_eq!(pick("linux", "arm64", None).unwrap(), d(1));
        assert_eq!(pick("linux", "arm", None).unwrap(), d(3));
        assert_eq!(pick("linux", "arm", Some("v6")).unwrap(), d(2));
        let err = pick("linux", "s390x", None).unwrap_err().to_string();
        assert_eq!(
            err,
            "choosing an image from manifest list x: no image found in image index for \
             architecture s390x, variant \"\", OS linux"
        );
        assert!(pick("linux", "arm64", Some("v7")).is_err());
        let w = WantedPlatform::from_flags(Some("linux/arm64/v8"), None, None, None).unwrap();
        assert_eq!(w.display(), "linux/arm64/v8");
        assert!(WantedPlatform::from_flags(Some("linux"), None, None, None).is_err());
    }
}
