//! `vigil search`: repositories of a registry's catalog whose name contains
//! the term, or (`--list-tags`) the tags of one repository.

use clap::Args;

use super::output::print_out;
use super::registry_flags::registry_err;
use crate::context::Context;
use crate::error::RunnerError;
use crate::registry::{self, RegistryOptions, SearchHit, SearchOptions};

#[derive(Debug, Clone, Args)]
pub struct SearchArgs {
    /// Show at most this many results (0: all)
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub limit: usize,

    /// List the tags of the repository given as TERM
    #[arg(long)]
    pub list_tags: bool,

    /// Output format: json, or a template of {{.Name}} {{.Index}} {{.Description}}
    /// {{.Stars}} {{.Official}} {{.Automated}} {{.Tag}}
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,

    /// Require HTTPS and verify certificates (default: per registries.conf)
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", action = clap::ArgAction::Set)]
    pub tls_verify: Option<bool>,

    /// Path of the authentication file
    #[arg(long, value_name = "FILE")]
    pub authfile: Option<std::path::PathBuf>,

    /// Directory with certificates for the registry
    #[arg(long, value_name = "DIR")]
    pub cert_dir: Option<std::path::PathBuf>,

    /// HOST/TERM, HOST/ (everything), or TERM (every unqualified-search registry)
    #[arg(value_name = "TERM")]
    pub term: String,
}

pub fn handle(_ctx: &Context, args: &SearchArgs) -> Result<i32, RunnerError> {
    let opts = SearchOptions {
        registry: RegistryOptions {
            tls_verify: args.tls_verify,
            creds: None,
            authfile: args.authfile.clone(),
            cert_dir: args.cert_dir.clone(),
            choose: None,
        },
        limit: args.limit,
        list_tags: args.list_tags,
    };
    let hits = registry::search(&args.term, &opts).map_err(registry_err)?;
    print_out(&render(&hits, args.list_tags, args.format.as_deref()));
    Ok(0)
}

/// Podman's table, JSON or template output.
pub fn render(hits: &[SearchHit], list_tags: bool, format: Option<&str>) -> String {
    match format {
        Some("json") if list_tags => {
            let mut groups: Vec<(String, Vec<String>)> = Vec::new();
            for hit in hits {
                let tag = hit.tag.clone().unwrap_or_default();
                match groups.iter_mut().find(|(n, _)| *n == hit.name) {
                    Some((_, tags)) => tags.push(tag),
                    None => groups.push((hit.name.clone(), vec![tag])),
                }
            }
            let list: Vec<serde_json::Value> = groups
                .into_iter()
                .map(|(name, tags)| serde_json::json!({"Name": name, "Tags": tags}))
                .collect();
            pretty(&serde_json::Value::Array(list))
        }
        Some("json") => {
            let list: Vec<serde_json::Value> = hits
                .iter()
                .map(|h| {
                    // Key order as Podman prints it.
                    let mut m = serde_json::Map::new();
                    m.insert("Index".into(), h.index.clone().into());
                    m.insert("Name".into(), h.name.clone().into());
                    m.insert("Description".into(), "".into());
                    m.insert("Stars".into(), 0.into());
                    m.insert("Official".into(), "".into());
                    m.insert("Automated".into(), "".into());
                    m.insert("Tag".into(), h.tag.clone().unwrap_or_default().into());
                    serde_json::Value::Object(m)
                })
                .collect();
            pretty(&serde_json::Value::Array(list))
        }
        Some(template) => {
            let mut out = String::new();
            for h in hits {
                let line = template
                    .replace("{{.Name}}", &h.name)
                    .replace("{{.Index}}", &h.index)
                    .replace("{{.Description}}", "")
                    .replace("{{.Stars}}", "0")
                    .replace("{{.Official}}", "")
                    .replace("{{.Automated}}", "")
                    .replace("{{.Tag}}", h.tag.as_deref().unwrap_or(""));
                out.push_str(&line);
                out.push('\n');
            }
            out
        }
        None => {
            let (second, cells): (&str, Vec<(String, String)>) = if list_tags {
                (
                    "TAG",
                    hits.iter()
                        .map(|h| (h.name.clone(), h.tag.clone().unwrap_or_default()))
                        .collect(),
                )
            } else {
                (
                    "DESCRIPTION",
                    hits.iter()
                        .map(|h| (h.name.clone(), String::new()))
                        .collect(),
                )
            };
            if cells.is_empty() {
                return String::new();
            }
            let width = cells.iter().map(|(n, _)| n.len()).max().unwrap_or(0).max(4) + 2;
            let mut out = format!("{:<width$}{second}\n", "NAME");
            for (name, other) in cells {
                out.push_str(&format!("{name:<width$}{other}\n"));
            }
            out
        }
    }
}

fn pretty(value: &serde_json::Value) -> String {
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
    let _ = serde::Serialize::serialize(value, &mut ser);
    let mut text = String::from_utf8(out).unwrap_or_default();
    text.push('\n');
    text
}
