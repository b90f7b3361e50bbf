//! `vigil history`: an image's history, newest first.

use clap::Args;
use serde_json::json;

use super::output::{engine_err, print_out, table};
use super::template::{default_header, Output};
use crate::context::Context;
use crate::error::RunnerError;
use crate::image::progress::human_size;
use crate::image::{Store, StoreError};

#[derive(Debug, Clone, Args)]
pub struct HistoryArgs {
    /// Show sizes and times in human-readable form
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set,
          num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub human: bool,

    /// Do not truncate the output
    #[arg(long)]
    pub no_trunc: bool,

    /// Print only the IDs
    #[arg(short, long)]
    pub quiet: bool,

    /// Output: `json` or a Go template
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,

    /// The image
    #[arg(value_name = "IMAGE")]
    pub image: String,
}

pub fn handle(ctx: &Context, args: &HistoryArgs) -> Result<i32, RunnerError> {
    let store = Store::open(&ctx.paths).map_err(engine_err)?;
    let record = store.resolve(&args.image).map_err(|e| match e {
        StoreError::NotFound(q) => RunnerError::Engine(format!("{q}: image not known")),
        other => engine_err(other),
    })?;
    let raw = record.raw_config().map_err(engine_err)?;
    let history = raw["history"].as_array().cloned().unwrap_or_default();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    // Layer sizes in order; empty layers take none.
    let mut sizes = record.layers.iter().map(|l| l.size);
    let mut rows = Vec::new();
    let count = history.len();
    for (i, h) in history.iter().enumerate() {
        let empty = h["empty_layer"].as_bool().unwrap_or(false);
        let size = if empty { 0 } else { sizes.next().unwrap_or(0) };
        // The newest entry is this image; older ones belong to base images
        // that may not be stored.
        let id = if i + 1 == count && !empty {
            record.id.hex().to_string()
        } else {
            "<missing>".to_string()
        };
        let created = h["created"].as_str().unwrap_or("").to_string();
        let created_secs = super::images::parse_rfc3339(&created);
        rows.push(json!({
            "id": id,
            "created": created,
            "CreatedBy": h["created_by"].as_str().unwrap_or(""),
            "size": size,
            "comment": h["comment"].as_str().unwrap_or(""),
            "Created": created_secs.unwrap_or(0),
            "CreatedSince": created_secs.map_or_else(|| "N/A".to_string(), |t| super::images::human_ago(now - t)),
        }));
    }
    rows.reverse();
    match Output::parse("history", args.format.as_deref())? {
        Output::Json => {
            print_out(&format!(
                "{}\n",
                serde_json::to_string_pretty(&rows).unwrap_or_default()
            ));
            return Ok(0);
        }
        Output::Template(f) => {
            let header = |f: &str| match f {
                "CreatedSince" => "CREATED".to_string(),
                "CreatedBy" => "CREATED BY".to_string(),
                other => default_header(other),
            };
            print_out(&f.render_all(&rows, &header)?);
            return Ok(0);
        }
        Output::Default => {}
    }
    let short = |id: &str| -> String {
        if args.no_trunc || id == "<missing>" {
            id.to_string()
        } else {
            id.chars().take(12).collect()
        }
    };
    if args.quiet {
        print_out(
            &rows
                .iter()
                .map(|r| format!("{}\n", short(r["id"].as_str().unwrap_or(""))))
                .collect::<String>(),
        );
        return Ok(0);
    }
    let mut table_rows = vec![["ID", "CREATED", "CREATED BY", "SIZE", "COMMENT"]
        .map(String::from)
        .to_vec()];
    for r in &rows {
        let mut by = r["CreatedBy"].as_str().unwrap_or("").to_string();
        if !args.no_trunc && by.chars().count() > 45 {
            by = by.chars().take(42).collect::<String>() + "...";
        }
        let created = if args.human {
            r["CreatedSince"].as_str().unwrap_or("").to_string()
        } else {
            r["created"].as_str().unwrap_or("").to_string()
        };
        table_rows.push(vec![
            short(r["id"].as_str().unwrap_or("")),
            created,
            by,
            human_size(r["size"].as_u64().unwrap_or(0)),
            r["comment"].as_str().unwrap_or("").to_string(),
        ]);
    }
    print_out(&table(&table_rows));
    Ok(0)
}
