//! `search`: a registry's catalog filtered by a term (Distribution has no
//! search API), or the tags of one repository.

use super::client::Session;
use super::error::RegistryError;
use super::{Environment, RegistryOptions};

/// What to search.
#[derive(Debug, Clone, Default)]
pub struct SearchOptions {
    pub registry: RegistryOptions,
    /// Rows at most (`--limit`; 0: no limit).
    pub limit: usize,
    /// `--list-tags`: `term` is a repository; list its tags.
    pub list_tags: bool,
}

/// One row of the result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchHit {
    /// `127.0.0.1:5000`.
    pub index: String,
    /// `127.0.0.1:5000/mono`.
    pub name: String,
    /// For `--list-tags`.
    pub tag: Option<String>,
}

/// Searches `term` (`HOST/TERM`, `HOST/`, or a bare term for every
/// unqualified-search registry).
pub fn search(term: &str, opts: &SearchOptions) -> Result<Vec<SearchHit>, RegistryError> {
    let env = Environment::load(&opts.registry)?;
    let limit = if opts.limit == 0 {
        usize::MAX
    } else {
        opts.limit
    };
    let (registries, needle): (Vec<String>, String) = match term.split_once('/') {
        Some((host, rest)) if host.contains('.') || host.contains(':') || host == "localhost" => {
            (vec![host.to_string()], rest.to_string())
        }
        _ => (env.registries.unqualified_search.clone(), term.to_string()),
    };
    let mut hits = Vec::new();
    for registry in registries {
        let session = Session::connect(
            &env.transport,
            &registry,
            env.insecure(&registry, false),
            env.credentials(&registry)?,
        )
        .map_err(|e| e.context(format!("couldn't search registry {registry:?}")))?;
        if opts.list_tags {
            if needle.is_empty() {
                return Err(RegistryError::Reference(term.into()));
            }
            for tag in session.tags(&needle, limit)? {
                hits.push(SearchHit {
                    index: registry.clone(),
                    name: format!("{registry}/{needle}"),
                    tag: Some(tag),
                });
            }
        } else {
            for repo in session.catalog(usize::MAX)? {
                if repo.contains(&needle) && hits.len() < limit {
                    hits.push(SearchHit {
                        index: registry.clone(),
                        name: format!("{registry}/{repo}"),
                        tag: None,
                    });
                }
            }
        }
    }
    Ok(hits)
}
