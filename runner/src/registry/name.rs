//! Fully qualified image names as a registry sees them:
//! `registry[:port]/repository[:tag][@digest]`, with Docker Hub's
//! `docker.io/library/` normalisation.

use std::fmt;

use super::error::RegistryError;
use crate::image::digest::Digest;
use crate::image::reference::Reference;

/// Docker Hub as users name it.
pub const DOCKER_HUB: &str = "docker.io";
/// The host Docker Hub's API is served from.
pub const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// A qualified image name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageName {
    /// `docker.io`, `quay.io`, `127.0.0.1:5000`.
    pub registry: String,
    /// The repository below the registry (`library/busybox`).
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

impl ImageName {
    /// Parses a name that has a registry (`host.tld/...`, `host:port/...`,
    /// `localhost/...`). A short name is refused here: see
    /// [`crate::registry::resolve`].
    pub fn parse(name: &str) -> Result<ImageName, RegistryError> {
        let bad = || RegistryError::Reference(name.to_string());
        let parsed = Reference::parse(name).map_err(|_| bad())?;
        let Some(domain) = parsed.domain.clone() else {
            return Err(bad());
        };
        ImageName::from_parts(&domain, &parsed.path, parsed.tag, parsed.digest.as_deref())
            .ok_or_else(bad)
    }

    /// Builds a name, normalising Docker Hub (`index.docker.io` and
    /// `registry-1.docker.io` are `docker.io`; one-component repositories
    /// there get `library/`).
    pub fn from_parts(
        registry: &str,
        repository: &str,
        tag: Option<String>,
        digest: Option<&str>,
    ) -> Option<ImageName> {
        let digest = match digest {
            Some(d) => Some(Digest::parse(d).ok()?),
            None => None,
        };
        let registry = match registry {
            "index.docker.io" | DOCKER_HUB_API => DOCKER_HUB.to_string(),
            other => other.to_string(),
        };
        let repository = if registry == DOCKER_HUB && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository.to_string()
        };
        let tag = if tag.is_none() && digest.is_none() {
            Some("latest".to_string())
        } else {
            tag
        };
        Some(ImageName {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// What to ask the registry for: the digest when there is one.
    pub fn manifest_reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".into(),
        }
    }

    /// The host to connect to (Docker Hub's API host for `docker.io`).
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            DOCKER_HUB_API
        } else {
            &self.registry
        }
    }

    /// `registry/repository`.
    pub fn repository_name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The same repository with another tag (and no digest).
    pub fn with_tag(&self, tag: &str) -> ImageName {
        ImageName {
            tag: Some(tag.to_string()),
            digest: None,
            ..self.clone()
        }
    }
}

impl fmt::Display for ImageName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_hub_and_ports() {
        let n = ImageName::parse("docker.io/busybox").unwrap();
        assert_eq!(n.to_string(), "docker.io/library/busybox:latest");
        assert_eq!(n.api_host(), "registry-1.docker.io");
        let n = ImageName::parse("index.docker.io/me/app:1").unwrap();
        assert_eq!(n.to_string(), "docker.io/me/app:1");
        let n = ImageName::parse("127.0.0.1:5000/a/b:v1").unwrap();
        assert_eq!(
            (n.registry.as_str(), n.repository.as_str()),
            ("127.0.0.1:5000", "a/b")
        );
        assert_eq!(n.manifest_reference(), "v1");
        let d = format!("sha256:{}", "a".repeat(64));
        let n = ImageName::parse(&format!("localhost:5000/x@{d}")).unwrap();
        assert_eq!(n.tag, None);
        assert_eq!(n.manifest_reference(), d);
        assert!(ImageName::parse("busybox").is_err());
        assert!(ImageName::parse("127.0.0.1:5000/UP").is_err());
    }
}
