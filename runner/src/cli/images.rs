//! `vigil images`: list images in the store, as `podman images` does.

use std::time::{SystemTime, UNIX_EPOCH};

use clap::Args;

use crate::cli::output::{engine_err, print_out, table};
use crate::cli::template::{default_header, Output};
use crate::context::Context;
use crate::error::RunnerError;
use crate::image::progress::human_size;
use crate::image::reference::Reference;
use crate::image::Store;

#[derive(Debug, Clone, Args)]
pub struct ImagesArgs {
    /// Show all images, including untagged ones
    #[arg(short, long)]
    pub all: bool,

    /// Print only image IDs
    #[arg(short, long)]
    pub quiet: bool,

    /// Do not truncate IDs
    #[arg(long)]
    pub no_trunc: bool,

    /// Output: `json` or a Go template (`{{.Repository}}:{{.Tag}}`, `table {{.ID}}`)
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
}

/// Is `parent` an image `child` was built on: its layers and history a
/// strict prefix of the child's?
fn is_parent(parent: &crate::image::ImageRecord, child: &crate::image::ImageRecord) -> bool {
    let (ph, ch) = (&parent.config.history, &child.config.history);
    parent.id != child.id
        && ch.len() > ph.len()
        && child.layers.starts_with(&parent.layers)
        && ph
            .iter()
            .zip(ch.iter())
            .all(|(a, b)| a.created_by == b.created_by && a.created == b.created)
}

pub fn handle(ctx: &Context, args: &ImagesArgs) -> Result<i32, RunnerError> {
    let store = Store::open(&ctx.paths).map_err(engine_err)?;
    let mut records = store.list().map_err(engine_err)?;
    if !args.all {
        // Like Podman: untagged parents of other images (a build's
        // intermediate images) only with --all.
        let all = records.clone();
        records.retain(|r| !r.names.is_empty() || !all.iter().any(|child| is_parent(r, child)));
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let id_of = |id: &crate::image::digest::Digest| {
        if args.no_trunc {
            id.to_string()
        } else {
            id.short().to_string()
        }
    };
    if args.quiet {
        let mut seen = std::collections::BTreeSet::new();
        let ids: String = records
            .iter()
            .filter(|r| seen.insert(r.id.clone()))
            .map(|r| format!("{}\n", id_of(&r.id)))
            .collect();
        print_out(&ids);
        return Ok(0);
    }
    let output = Output::parse("images", args.format.as_deref())?;
    if !matches!(output, Output::Default) {
        let mut rows = Vec::new();
        for record in &records {
            let mut names: Vec<(String, String)> = record
                .names
                .iter()
                .map(|n| match Reference::parse(n) {
                    Ok(r) => (r.repository(), r.tag.unwrap_or_else(|| "<none>".into())),
                    Err(_) => (n.clone(), "<none>".into()),
                })
                .collect();
            if names.is_empty() {
                names.push(("<none>".into(), "<none>".into()));
            }
            let created = record.config.created.as_deref().and_then(parse_rfc3339);
            for (repo, tag) in names {
                rows.push(serde_json::json!({
                    "Repository": repo,
                    "Tag": tag,
                    "ID": id_of(&record.id),
                    "Id": record.id.hex(),
                    "Digest": record.digest.as_ref().map(|d| d.to_string()).unwrap_or_default(),
                    "CreatedSince": created.map_or_else(|| "N/A".to_string(), |t| human_ago(now - t)),
                    "CreatedAt": record.config.created.clone().unwrap_or_default(),
                    "Created": created.unwrap_or(0),
                    "Size": human_size(record.size),
                    "VirtualSize": record.size,
                    "Names": record.names,
                    "Labels": record.config.config.labels,
                }));
            }
        }
        match output {
            Output::Template(format) => {
                let header = |f: &str| match f {
                    "ID" => "IMAGE ID".to_string(),
                    "CreatedSince" | "CreatedAt" => "CREATED".to_string(),
                    other => default_header(other),
                };
                print_out(&format.render_all(&rows, &header)?);
            }
            _ => print_out(&format!(
                "{}\n",
                serde_json::to_string_pretty(&rows).unwrap_or_default()
            )),
        }
        return Ok(0);
    }
    let mut rows = vec![["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"].map(String::from)];
    for record in &records {
        let created = record
            .config
            .created
            .as_deref()
            .and_then(parse_rfc3339)
            .map_or_else(|| "N/A".to_string(), |t| human_ago(now - t));
        let size = human_size(record.size);
        let mut names: Vec<(String, String)> = record
            .names
            .iter()
            .map(|n| match Reference::parse(n) {
                Ok(r) => (r.repository(), r.tag.unwrap_or_else(|| "<none>".into())),
                Err(_) => (n.clone(), "<none>".into()),
            })
            .collect();
        if names.is_empty() {
            names.push(("<none>".into(), "<none>".into()));
        }
        for (repo, tag) in names {
            rows.push([repo, tag, id_of(&record.id), created.clone(), size.clone()]);
        }
    }
    print_out(&table(&rows));
    Ok(0)
}

/// Seconds since the epoch of an RFC 3339 time (`2024-01-02T03:04:05.123Z`,
/// `...+02:00`).
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, min, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        tz if tz.len() == 6 && (tz.starts_with('+') || tz.starts_with('-')) && &tz[3..4] == ":" => {
            let h: i64 = tz[1..3].parse().ok()?;
            let m: i64 = tz[4..6].parse().ok()?;
            let off = h * 3600 + m * 60;
            if tz.starts_with('+') {
                off
            } else {
                -off
            }
        }
        _ => return None,
    };
    // Days from civil (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hour * 3600 + min * 60 + sec - offset)
}

/// `3 weeks ago`, as go-units' HumanDuration that podman uses.
pub fn human_ago(seconds: i64) -> String {
    let s = seconds.max(0);
    let text = if s < 1 {
        "Less than a second".to_string()
    } else if s == 1 {
        "1 second".to_string()
    } else if s < 60 {
        format!("{s} seconds")
    } else if s / 60 == 1 {
        "About a minute".to_string()
    } else if s / 60 < 60 {
        format!("{} minutes", s / 60)
    } else {
        let hours = (s + 1800) / 3600;
        if hours == 1 {
            "About an hour".to_string()
        } else if hours < 48 {
            format!("{hours} hours")
        } else if hours < 24 * 7 * 2 {
            format!("{} days", hours / 24)
        } else if hours < 24 * 30 * 2 {
            format!("{} weeks", hours / 24 / 7)
        } else if hours < 24 * 365 * 2 {
            format!("{} months", hours / 24 / 30)
        } else {
            format!("{} years", s / 3600 / 24 / 365)
        }
    };
    format!("{text} ago")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339("2024-02-29T12:00:00.123456789Z"),
            Some(1_709_208_000)
        );
        assert_eq!(
            parse_rfc3339("2024-02-29T14:00:00+02:00"),
            Some(1_709_208_000)
        );
        assert_eq!(parse_rfc3339("garbage"), None);
        assert_eq!(parse_rfc3339("2024-13-01T00:00:00Z"), None);
    }

    #[test]
    fn durations() {
        assert_eq!(human_ago(0), "Less than a second ago");
        assert_eq!(human_ago(30), "30 seconds ago");
        assert_eq!(human_ago(90), "About a minute ago");
        assert_eq!(human_ago(3600), "About an hour ago");
        assert_eq!(human_ago(5 * 3600), "5 hours ago");
        assert_eq!(human_ago(3 * 86400), "3 days ago");
        assert_eq!(human_ago(21 * 86400), "3 weeks ago");
        assert_eq!(human_ago(400 * 86400), "13 months ago");
        assert_eq!(human_ago(3 * 365 * 86400), "3 years ago");
    }
}
