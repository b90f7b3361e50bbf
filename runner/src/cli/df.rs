//! `vigil system df`: disk used by images, containers and volumes.

use std::collections::BTreeSet;

use clap::Args;

use super::output::{engine_err, print_out};
use super::template::{tabwrite, Output};
use super::units::human_size4;
use crate::container::{usage, Engine, Status};
use crate::context::Context;
use crate::error::RunnerError;
use crate::image::Store;

#[derive(Debug, Clone, Args)]
pub struct DfArgs {
    /// Show each image and container
    #[arg(short, long)]
    pub verbose: bool,

    /// Output: `json` or a Go template
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
}

fn pct(part: u64, whole: u64) -> u64 {
    (part * 100).checked_div(whole).unwrap_or(0)
}

pub fn handle(ctx: &Context, args: &DfArgs) -> Result<i32, RunnerError> {
    let engine = Engine::new(ctx);
    let records = engine.store.records()?;
    let store = Store::open(&ctx.paths).map_err(engine_err)?;
    let images = store.list().map_err(engine_err)?;
    let mut seen = BTreeSet::new();
    let images: Vec<_> = images
        .into_iter()
        .filter(|i| seen.insert(i.id.clone()))
        .collect();
    let used: BTreeSet<&str> = records.iter().map(|r| r.image_id.as_str()).collect();
    let image_size: u64 = images.iter().map(|i| i.size).sum();
    let active_images: Vec<_> = images
        .iter()
        .filter(|i| used.contains(i.id.hex()))
        .collect();
    let reclaim_images = image_size - active_images.iter().map(|i| i.size).sum::<u64>();
    let sizes: Vec<(bool, u64)> = records
        .iter()
        .map(|r| {
            let running = matches!(r.status, Status::Running | Status::Paused);
            (running, usage::rw_size(r, &engine.store.data_dir(&r.id)))
        })
        .collect();
    let container_size: u64 = sizes.iter().map(|(_, s)| s).sum();
    let active_containers = sizes.iter().filter(|(r, _)| *r).count();
    let reclaim_containers: u64 = sizes.iter().filter(|(r, _)| !r).map(|(_, s)| s).sum();
    let rows = [
        serde_json::json!({"Type": "Images", "Total": images.len(), "Active": active_images.len(),
            "Size": human_size4(image_size),
            "Reclaimable": format!("{} ({}%)", human_size4(reclaim_images), pct(reclaim_images, image_size))}),
        serde_json::json!({"Type": "Containers", "Total": records.len(), "Active": active_containers,
            "Size": human_size4(container_size),
            "Reclaimable": format!("{} ({}%)", human_size4(reclaim_containers), pct(reclaim_containers, container_size))}),
        serde_json::json!({"Type": "Local Volumes", "Total": 0, "Active": 0, "Size": "0B",
            "Reclaimable": "0B (0%)"}),
    ];
    match Output::parse("df", args.format.as_deref())? {
        Output::Json => {
            print_out(&format!(
                "{}\n",
                serde_json::to_string_pretty(&rows.to_vec()).unwrap_or_default()
            ));
        }
        Output::Template(f) => print_out(&f.render_all(&rows, &|f| f.to_uppercase())?),
        Output::Default => {
            let mut lines = vec!["TYPE\tTOTAL\tACTIVE\tSIZE\tRECLAIMABLE".to_string()];
            for r in &rows {
                lines.push(format!(
                    "{}\t{}\t{}\t{}\t{}",
                    r["Type"].as_str().unwrap_or(""),
                    r["Total"],
                    r["Active"],
                    r["Size"].as_str().unwrap_or(""),
                    r["Reclaimable"].as_str().unwrap_or("")
                ));
            }
            print_out(&tabwrite(&lines, 12));
            if args.verbose {
                let mut c = vec!["CONTAINER ID\tIMAGE\tCOMMAND\tSIZE\tSTATUS\tNAMES".to_string()];
                for (r, (_, size)) in records.iter().zip(&sizes) {
                    c.push(format!(
                        "{}\t{}\t{}\t{}\t{}\t{}",
                        r.short_id(),
                        r.image,
                        r.config.args.join(" "),
                        human_size4(*size),
                        r.status.as_str(),
                        r.name
                    ));
                }
                print_out(&format!(
                    "\nContainers space usage:\n\n{}",
                    tabwrite(&c, 12)
                ));
            }
        }
    }
    Ok(0)
}
