//! Which extended attributes from a layer are applied.

/// What to do with one xattr found in a layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XattrPolicy {
    /// Apply it.
    Keep,
    /// Silently ignore it (host-specific labels).
    Ignore,
    /// Drop it with a warning: it would forge metadata vigil or overlayfs interprets.
    Refuse,
}

/// Classifies an xattr name from a layer.
///
/// - `security.selinux`: ignored (labels are the host's business).
/// - `trusted.overlay.*`, `user.overlay.*`: refused, a layer must not forge
///   overlayfs whiteouts, opaque markers or redirects.
/// - `user.rootlesscontainers`, `user.containers.override_stat`: refused,
///   ownership-override metadata of rootless storage.
/// - `system.nfs4_acl`: refused (cannot be applied on other filesystems).
/// - everything else (`security.capability`, `user.*`, `trusted.*`,
///   POSIX ACLs): kept, as raw bytes.
pub fn classify(name: &[u8]) -> XattrPolicy {
    if name == b"security.selinux" {
        XattrPolicy::Ignore
    } else if name.starts_with(b"trusted.overlay.")
        || name.starts_with(b"user.overlay.")
        || name == b"user.rootlesscontainers"
        || name == b"user.containers.override_stat"
        || name == b"system.nfs4_acl"
    {
        XattrPolicy::Refuse
    } else {
        XattrPolicy::Keep
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy() {
        assert_eq!(classify(b"security.capability"), XattrPolicy::Keep);
        assert_eq!(classify(b"user.testattr"), XattrPolicy::Keep);
        assert_eq!(classify(b"trusted.other"), XattrPolicy::Keep);
        assert_eq!(classify(b"security.selinux"), XattrPolicy::Ignore);
        assert_eq!(classify(b"trusted.overlay.opaque"), XattrPolicy::Refuse);
        assert_eq!(classify(b"user.overlay.whiteout"), XattrPolicy::Refuse);
        assert_eq!(classify(b"user.rootlesscontainers"), XattrPolicy::Refuse);
        assert_eq!(
            classify(b"user.containers.override_stat"),
            XattrPolicy::Refuse
        );
    }
}
