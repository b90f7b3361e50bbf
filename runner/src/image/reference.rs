//! Image names (`[domain/]path[:tag][@digest]`): validation, normalisation
//! and matching of what a user types against stored names.

use std::fmt;

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferenceError(pub String);

impl fmt::Display for ReferenceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid image name {:?}: invalid reference format",
            self.0
        )
    }
}

impl std::error::Error for ReferenceError {}

/// A parsed image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// The domain if the name has one (`localhost`, `docker.io`, `host:5000`).
    pub domain: Option<String>,
    /// The path below the domain (`library/busybox`).
    pub path: String,
    pub tag: Option<String>,
    /// `sha256:<hex>` if given.
    pub digest: Option<String>,
}

/// The longest repository name (`domain/path`), as containers/image's
/// `reference.NameTotalLengthMax`. Like `ParseNormalizedNamed`, the limit
/// applies to the name as given and again once normalised.
pub const NAME_TOTAL_LENGTH_MAX: usize = 255;

fn is_domain(first: &str) -> bool {
    first.contains('.') || first.contains(':') || first == "localhost"
}

fn valid_path_component(c: &str) -> bool {
    let bytes = c.as_bytes();
    !bytes.is_empty()
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
}

/// `host[:port]`, or a bracketed IPv6 address with an optional port.
fn valid_domain(d: &str) -> bool {
    let (host, port) = match d.rsplit_once(':') {
        Some((host, port)) if !d.ends_with(']') => (host, Some(port)),
        _ => (d, None),
    };
    let host_ok = if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        !inner.is_empty()
            && inner
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
    } else {
        !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    };
    let port_ok = match port {
        Some(p) => !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()),
        None => true,
    };
    host_ok && port_ok
}

fn valid_tag(t: &str) -> bool {
    let bytes = t.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 128
        && (bytes[0].is_ascii_alphanumeric() || bytes[0] == b'_')
        && bytes
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

impl Reference {
    /// Parses `name`; nothing is added (see [`Reference::normalized`]).
    pub fn parse(name: &str) -> Result<Reference, ReferenceError> {
        let err = || ReferenceError(name.to_string());
        let (rest, digest) = match name.split_once('@') {
            Some((rest, digest)) => {
                crate::image::digest::Digest::parse(digest).map_err(|_| err())?;
                (rest, Some(digest.to_string()))
            }
            None => (name, None),
        };
        let slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (repo, tag) = match rest[slash..].rfind(':') {
            Some(i) => (&rest[..slash + i], Some(rest[slash + i + 1..].to_string())),
            None => (rest, None),
        };
        if let Some(tag) = &tag {
            if !valid_tag(tag) {
                return Err(err());
            }
        }
        let mut parts: Vec<&str> = repo.split('/').collect();
        let domain = if parts.len() > 1 && is_domain(parts[0]) {
            let d = parts.remove(0);
            if !valid_domain(d) {
                return Err(err());
            }
            Some(d.to_string())
        } else {
            None
        };
        if parts.is_empty()
            || !parts.iter().all(|c| valid_path_component(c))
            || repo.len() > NAME_TOTAL_LENGTH_MAX
        {
            return Err(err());
        }
        Ok(Reference {
            domain,
            path: parts.join("/"),
            tag,
            digest,
        })
    }

    /// Podman's normalisation for names vigil is given (`tag`, OCI ref
    /// names): a name without a domain goes under `localhost/`, and a name
    /// without tag or digest gets `:latest`.
    pub fn normalized(mut self) -> Reference {
        if self.domain.is_none() {
            self.domain = Some("localhost".into());
        }
        self.with_default_tag()
    }

    /// Docker's normalisation, used for docker-archive `RepoTags`:
    /// `busybox` is `docker.io/library/busybox:latest`.
    pub fn docker_normalized(mut self) -> Reference {
        if self.domain.is_none() {
            self.domain = Some("docker.io".into());
            if !self.path.contains('/') {
                self.path = format!("library/{}", self.path);
            }
        }
        self.with_default_tag()
    }

    fn with_default_tag(mut self) -> Reference {
        if self.tag.is_none() && self.digest.is_none() {
            self.tag = Some("latest".into());
        }
        self
    }

    /// `domain/path` (or just `path`).
    pub fn repository(&self) -> String {
        match &self.domain {
            Some(d) => format!("{d}/{}", self.path),
            None => self.path.clone(),
        }
    }

    /// Does the stored (normalised, tagged) name `stored` answer to this
    /// reference as typed? Exact after normalisation, or a short name: the
    /// typed path (without domain) is a `/`-aligned suffix of the stored
    /// repository, and the tags agree (`latest` when none was typed).
    pub fn matches(&self, stored: &Reference) -> bool {
        let tag = self.tag.clone().unwrap_or_else(|| "latest".into());
        if stored.tag.as_deref() != Some(tag.as_str()) {
            return false;
        }
        let stored_repo = stored.repository();
        if let Some(domain) = &self.domain {
            return stored_repo == format!("{domain}/{}", self.path);
        }
        stored_repo == format!("localhost/{}", self.path)
            || stored_repo.ends_with(&format!("/{}", self.path))
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.repository())?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// Normalises a name the way `vigil tag` stores it. A name whose
/// normalised repository (with `localhost/` added) is longer than
/// [`NAME_TOTAL_LENGTH_MAX`] is refused, so every stored name parses again.
pub fn normalize(name: &str) -> Result<String, ReferenceError> {
    checked(name, Reference::parse(name)?.normalized())
}

/// Normalises a docker-archive `RepoTags` entry (`docker.io/library/`
/// added), with the same length rule as [`normalize`].
pub fn normalize_docker(name: &str) -> Result<String, ReferenceError> {
    checked(name, Reference::parse(name)?.docker_normalized())
}

fn checked(name: &str, r: Reference) -> Result<String, ReferenceError> {
    if r.repository().len() > NAME_TOTAL_LENGTH_MAX {
        return Err(ReferenceError(name.to_string()));
    }
    Ok(r.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation() {
        assert_eq!(normalize("busybox").unwrap(), "localhost/busybox:latest");
        assert_eq!(
            normalize("localhost/test:base").unwrap(),
            "localhost/test:base"
        );
        assert_eq!(normalize("quay.io/a/b:1.0").unwrap(), "quay.io/a/b:1.0");
        assert_eq!(normalize("host:5000/x").unwrap(), "host:5000/x:latest");
        assert_eq!(normalize("[::1]:5000/x:1").unwrap(), "[::1]:5000/x:1");
        assert_eq!(
            normalize_docker("busybox:1").unwrap(),
            "docker.io/library/busybox:1"
        );
        assert_eq!(
            normalize_docker("me/app").unwrap(),
            "docker.io/me/app:latest"
        );
        for bad in [
            "",
            "UPPER",
            "a//b",
            "a:",
            "a:b:c/d",
            "-a",
            "a@sha256:xyz",
            "a b",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn length_limit_applies_to_the_normalised_name() {
        // 255 bytes as typed: fine to parse, too long once normalised.
        let long = "a".repeat(NAME_TOTAL_LENGTH_MAX);
        assert!(Reference::parse(&long).is_ok());
        assert!(Reference::parse(&format!("{long}a")).is_err());
        assert!(normalize(&long).is_err());
        assert!(normalize_docker(&long).is_err());
        // `localhost/` is 10 bytes, `docker.io/library/` 18.
        let fits_local = "b".repeat(NAME_TOTAL_LENGTH_MAX - 10);
        let n = normalize(&fits_local).unwrap();
        assert_eq!(n, format!("localhost/{fits_local}:latest"));
        assert_eq!(
            normalize(&n).unwrap(),
            n,
            "a stored name normalises to itself"
        );
        assert!(normalize(&format!("{fits_local}b")).is_err());
        let fits_docker = "c".repeat(NAME_TOTAL_LENGTH_MAX - 18);
        let n = normalize_docker(&fits_docker).unwrap();
        assert_eq!(n, format!("docker.io/library/{fits_docker}:latest"));
        assert_eq!(normalize_docker(&n).unwrap(), n);
        assert!(normalize_docker(&format!("{fits_docker}c")).is_err());
        // Tags and digests do not count.
        let tagged = format!("{fits_local}:{}", "t".repeat(128));
        assert!(normalize(&tagged).is_ok());
    }

    #[test]
    fn short_names_match_stored_names() {
        let stored = Reference::parse("docker.io/library/busybox:latest").unwrap();
        let q = |s: &str| Reference::parse(s).unwrap();
        assert!(q("busybox").matches(&stored));
        assert!(q("busybox:latest").matches(&stored));
        assert!(q("library/busybox").matches(&stored));
        assert!(q("docker.io/library/busybox").matches(&stored));
        assert!(!q("busybox:1").matches(&stored));
        assert!(!q("box").matches(&stored));
        assert!(!q("quay.io/library/busybox").matches(&stored));
        let local = Reference::parse("localhost/test:base").unwrap();
        assert!(q("test:base").matches(&local));
    }
}
