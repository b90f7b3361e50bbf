//! The evaluator: splits the Containerfile into stages, runs each
//! instruction (runner-build.md §2), commits an intermediate image per step
//! with buildah's history entries (§3), reuses cached steps (§4) and prints
//! `podman build`'s output (§5.3).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::{json, Value};

use super::cache::Cache;
use super::config::{Format, HistoryEntry, StageConfig};
use super::copy::{self, CopyRequest, SourceRoot};
use super::error::BuildError;
use super::ignore::Ignore;
use super::mount::{Changes, WorkMount};
use super::parse::{self, Instruction};
use super::run::{self, RunRequest};
use super::words::{self, blank_split, process_word, process_words};
use super::{BuildOptions, Built, PullPolicy};
use crate::container::record::{format_rfc3339, now_nanos};
use crate::context::Context;
use crate::image::compose::{add_image, LayerFile, NewImage};
use crate::image::oci::Platform;
use crate::image::{reference, ImageRecord, Store};
use crate::interrupt::Interrupt;
use crate::registry;

/// Build args usable without an ARG line, never reported as unused.
const PREDEFINED_ARGS: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
];

/// One stage: its FROM and its instructions.
struct Stage {
    from: Instruction,
    base: String,
    name: Option<String>,
    /// `AS` as written, for the STEP line.
    as_word: Option<String>,
    steps: Vec<Instruction>,
}

/// What the evaluator prints (nothing but the final ID with `-q`).
struct Out {
    quiet: bool,
    prefix: String,
}

impl Out {
    fn line(&self, text: &str) {
        if !self.quiet {
            println!("{}{text}", self.prefix);
        }
    }
}

/// The platform built-in ARGs.
fn platform_args() -> BTreeMap<String, String> {
    let host = Platform::host();
    let platform = host.display();
    let variant = host.variant.clone().unwrap_or_default();
    let mut m = BTreeMap::new();
    for (prefix, _) in [("TARGET", 0), ("BUILD", 1)] {
        m.insert(format!("{prefix}PLATFORM"), platform.clone());
        m.insert(format!("{prefix}OS"), host.os.clone());
        m.insert(format!("{prefix}ARCH"), host.architecture.clone());
        m.insert(format!("{prefix}VARIANT"), variant.clone());
    }
    m
}

fn split_stages(
    instructions: Vec<Instruction>,
) -> Result<(Vec<Instruction>, Vec<Stage>), BuildError> {
    let mut heading = Vec::new();
    let mut stages: Vec<Stage> = Vec::new();
    for ins in instructions {
        if ins.keyword == "from" {
            let words = blank_split(&ins.args);
            let (base, name, as_word) =
                match words.as_slice() {
                    [base] => (base.clone(), None, None),
                    [base, as_kw, name] if as_kw.eq_ignore_ascii_case("as") => {
                        (base.clone(), Some(name.clone()), Some(as_kw.clone()))
                    }
                    _ => return Err(BuildError::step(
                        &ins.text(),
                        "FROM requires either one argument, or three: FROM <source> [as <name>]",
                    )),
                };
            if ins.flags.iter().any(|f| !f.starts_with("--platform=")) {
                return Err(BuildError::step(
                    &ins.text(),
                    "FROM only supports the --platform flag",
                ));
            }
            stages.push(Stage {
                from: ins,
                base,
                name,
                as_word,
                steps: Vec::new(),
            });
        } else if let Some(stage) = stages.last_mut() {
            stage.steps.push(ins);
        } else if ins.keyword == "arg" {
            heading.push(ins);
        } else {
            return Err(BuildError::Other("no FROM statement found".into()));
        }
    }
    if stages.is_empty() {
        return Err(BuildError::Other("no FROM statement found".into()));
    }
    Ok((heading, stages))
}

/// A finished stage.
struct StageResult {
    name: Option<String>,
    image: Option<ImageRecord>,
}

/// The evaluator's state for one build.
struct Builder<'a> {
    ctx: &'a Context,
    opts: &'a BuildOptions,
    store: Store,
    cache: Cache,
    ignore: Ignore,
    escape: char,
    heading_args: BTreeMap<String, String>,
    /// Every ARG name declared anywhere (for the unused warning).
    declared: BTreeSet<String>,
    results: Vec<StageResult>,
    platform: String,
    /// `--squash` or `--layers=false`: the final stage becomes one layer,
    /// no step is cached, intermediate images are removed at the end.
    squash: bool,
    intermediates: Vec<String>,
    /// SIGINT/SIGTERM arrived: stop between and during steps.
    interrupt: Interrupt,
}

/// The state of the stage being built.
struct Current {
    image: Option<ImageRecord>,
    config: StageConfig,
    /// ARGs in scope: name -> value (None: declared without a value).
    args: BTreeMap<String, Option<String>>,
    cmd_set: bool,
    comment: Option<String>,
    committed: bool,
}

impl Current {
    fn lookup(&self) -> impl Fn(&str) -> Option<String> + '_ {
        move |name: &str| {
            self.config
                .env_value(name)
                .or_else(|| self.args.get(name).cloned().flatten())
        }
    }

    /// ARGs with values, sorted: `K=v` pairs.
    fn arg_pairs(&self) -> Vec<String> {
        self.args
            .iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}")))
            .collect()
    }
}

/// Runs the build described by `opts`.
pub fn build(ctx: &Context, opts: &BuildOptions) -> Result<Built, BuildError> {
    if opts.text.len() as u64 > parse::MAX_CONTAINERFILE {
        return Err(BuildError::Other(format!(
            "{}: Containerfile larger than {} bytes",
            opts.containerfile.display(),
            parse::MAX_CONTAINERFILE
        )));
    }
    let file = parse::parse(&opts.text, &opts.containerfile.display().to_string())?;
    // A JSON array with a non-string element fails the whole file (§1.5).
    for ins in &file.instructions {
        if matches!(
            ins.keyword.as_str(),
            "run" | "cmd" | "entrypoint" | "shell" | "copy" | "add" | "volume"
        ) {
            if let Err(reason) = ins.json() {
                return Err(BuildError::Parse {
                    path: opts.containerfile.display().to_string(),
                    line: ins.line,
                    reason,
                });
            }
        }
    }
    let (heading, mut stages) = split_stages(file.instructions)?;
    if let Some(target) = &opts.target {
        let at = stages
            .iter()
            .position(|s| {
                s.name
                    .as_deref()
                    .is_some_and(|n| n.eq_ignore_ascii_case(target))
            })
            .ok_or_else(|| {
                BuildError::Other(format!(
                    "The target {target:?} was not found in the provided Dockerfile"
                ))
            })?;
        stages.truncate(at + 1);
    }
    let store = Store::open(&ctx.paths)?;
    let ignore = Ignore::load(&opts.context, opts.ignore_file.as_deref())
        .map_err(|e| BuildError::Other(format!("reading the ignore file: {e}")))?;
    let mut b = Builder {
        ctx,
        opts,
        cache: Cache::new(&store),
        store,
        ignore,
        escape: file.escape,
        heading_args: BTreeMap::new(),
        declared: BTreeSet::new(),
        results: Vec::new(),
        platform: Platform::host().display(),
        squash: opts.squash || opts.squash_all || !opts.layers,
        intermediates: Vec::new(),
        interrupt: Interrupt::install(),
    };
    b.heading(&heading)?;
    b.warn_missing_args(&stages);
    let count = stages.len();
    let mut final_id = String::new();
    for (k, stage) in stages.iter().enumerate() {
        let out = Out {
            quiet: opts.quiet,
            prefix: if count > 1 {
                format!("[{}/{count}] ", k + 1)
            } else {
                String::new()
            },
        };
        let last = k + 1 == count;
        let image = b.stage(stage, &out, last)?;
        final_id = image.id.hex().to_string();
        b.results.push(StageResult {
            name: stage.name.clone(),
            image: Some(image),
        });
    }
    let mut names = Vec::new();
    for tag in &opts.tags {
        let name = reference::normalize(tag).map_err(|e| BuildError::Other(e.to_string()))?;
        names.push(name);
    }
    if !names.is_empty() {
        b.store.tag(&final_id, &names)?;
    }
    let unused: Vec<&String> = opts
        .build_args
        .keys()
        .filter(|k| !b.declared.contains(*k) && !PREDEFINED_ARGS.contains(&k.as_str()))
        .collect();
    if !opts.quiet {
        if !unused.is_empty() {
            let list: Vec<&str> = unused.iter().map(|s| s.as_str()).collect();
            println!(
                "[Warning] one or more build args were not consumed: [{}]",
                list.join(" ")
            );
        }
        for n in &names {
            println!("Successfully tagged {n}");
        }
    }
    println!("{final_id}");
    Ok(Built {
        id: final_id,
        names,
    })
}

impl Builder<'_> {
    fn heading(&mut self, heading: &[Instruction]) -> Result<(), BuildError> {
        for ins in heading {
            for w in blank_split(&ins.args) {
                let (name, default) = match w.split_once('=') {
                    Some((n, d)) => {
                        let lookup = |k: &str| self.heading_args.get(k).cloned();
                        let d = process_word(d, &lookup)
                            .map_err(|e| BuildError::step(&ins.text(), e))?;
                        (n.to_string(), Some(d))
                    }
                    None => (w.clone(), None),
                };
                self.declared.insert(name.clone());
                if let Some(v) = self.opts.build_args.get(&name).cloned().or(default) {
                    self.heading_args.insert(name, v);
                }
            }
        }
        Ok(())
    }

    /// `missing "X" build argument` for ARGs that get no value anywhere.
    fn warn_missing_args(&mut self, stages: &[Stage]) {
        let mut warned = BTreeSet::new();
        let all = stages.iter().flat_map(|s| s.steps.iter());
        for ins in all.filter(|i| i.keyword == "arg") {
            for w in blank_split(&ins.args) {
                let name = w.split('=').next().unwrap_or_default().to_string();
                self.declared.insert(name.clone());
                if !w.contains('=')
                    && !self.opts.build_args.contains_key(&name)
                    && !self.heading_args.contains_key(&name)
                    && !platform_args().contains_key(&name)
                    && warned.insert(name.clone())
                {
                    log::warn!(
                        "missing {name:?} build argument. Try adding \"--build-arg {name}=<VALUE>\" to the command line"
                    );
                }
            }
        }
    }

    fn base_image(&self, name: &str) -> Result<Option<ImageRecord>, BuildError> {
        if name == "scratch" {
            return Ok(None);
        }
        if let Some(r) = self.results.iter().find(|r| {
            r.name
                .as_deref()
                .is_some_and(|n| n.eq_ignore_ascii_case(name))
        }) {
            return Ok(r.image.clone());
        }
        self.image(name)
            .map(Some)
            .map_err(|e| BuildError::Other(format!("creating build container: {e}")))
    }

    /// An image by reference: from the store, pulled first as `--pull`
    /// says (`crate::registry`, the same pull as `vigil pull`).
    fn image(&self, name: &str) -> Result<ImageRecord, String> {
        let policy = match self.opts.pull {
            PullPolicy::Missing => registry::PullPolicy::Missing,
            PullPolicy::Always => registry::PullPolicy::Always,
            PullPolicy::Never => registry::PullPolicy::Never,
        };
        let opts = registry::PullOptions {
            registry: self.opts.registry.clone(),
            platform: None,
            quiet: self.opts.quiet,
            interrupt: Some(self.interrupt.clone()),
        };
        let pulled = registry::ensure(self.ctx, name, policy, &opts).map_err(|e| e.to_string())?;
        let query = pulled.map(|id| id.hex().to_string());
        match self.store.resolve(query.as_deref().unwrap_or(name)) {
            Ok(r) => Ok(r),
            Err(crate::image::StoreError::NotFound(_)) => {
                let shown = reference::normalize(name).unwrap_or_else(|_| name.to_string());
                Err(format!("{shown}: image not known"))
            }
            Err(e) => Err(e.to_string()),
        }
    }

    fn stage(&mut self, stage: &Stage, out: &Out, last: bool) -> Result<ImageRecord, BuildError> {
        let heading = self.heading_args.clone();
        let builtins = platform_args();
        let lookup = |k: &str| heading.get(k).cloned().or_else(|| builtins.get(k).cloned());
        let base_name = process_word(&stage.base, &lookup)
            .map_err(|e| BuildError::step(&stage.from.text(), e))?;
        let mut total = stage.steps.len() + 1;
        if last && !self.opts.labels.is_empty() {
            total += 1;
        }
        let mut from_line = format!("FROM {base_name}");
        if let (Some(w), Some(n)) = (&stage.as_word, &stage.name) {
            from_line.push_str(&format!(" {w} {n}"));
        }
        out.line(&format!("STEP 1/{total}: {from_line}"));
        let image = self.base_image(&base_name)?;
        let base = image.clone();
        let mut config = match &image {
            Some(img) => StageConfig::from_image(&img.raw_config()?),
            None => {
                let host = Platform::host();
                StageConfig::scratch(&host.os, &host.architecture, host.variant.as_deref())
            }
        };
        config.ensure_path();
        let mut cur = Current {
            comment: image.as_ref().map(|_| format!("FROM {base_name}")),
            image,
            config,
            args: BTreeMap::new(),
            cmd_set: false,
            committed: false,
        };
        let mut steps: Vec<Instruction> = stage.steps.clone();
        if last && !self.opts.labels.is_empty() {
            let text: Vec<String> = self
                .opts
                .labels
                .iter()
                .map(|(k, v)| format!("{k:?}={v:?}"))
                .collect();
            let text = text.join(" ");
            steps.push(Instruction {
                line: 0,
                word: "LABEL".into(),
                keyword: "label".into(),
                flags: Vec::new(),
                args: text.clone(),
                rest: text,
            });
        }
        // The base image's ONBUILD triggers run first (Docker's rule); the
        // new image does not inherit them.
        let triggers = std::mem::take(&mut cur.config.onbuild);
        for trigger in &triggers {
            let parsed = parse::parse(trigger, "ONBUILD trigger")?;
            for ins in &parsed.instructions {
                if self.interrupt.requested() {
                    return Err(BuildError::Interrupted);
                }
                if matches!(ins.keyword.as_str(), "onbuild" | "from" | "maintainer") {
                    return Err(BuildError::step(
                        &ins.text(),
                        format!(
                            "{} isn't allowed as an ONBUILD trigger",
                            ins.word.to_ascii_uppercase()
                        ),
                    ));
                }
                self.step(&mut cur, ins, out, false)?;
            }
        }
        let n = steps.len();
        for (i, ins) in steps.iter().enumerate() {
            if self.interrupt.requested() {
                return Err(BuildError::Interrupted);
            }
            out.line(&format!("STEP {}/{total}: {}", i + 2, ins.text()));
            let final_step = last && i + 1 == n;
            self.step(&mut cur, ins, out, final_step)?;
        }
        if !cur.committed || cur.image.is_none() {
            // A stage of only FROM: its image is the base (PATH added).
            let record = self.commit(&mut cur, None, None, "", out, last)?;
            if self.squash && last {
                let base = self.squash_base(base);
                return self.squash_stage(base, &base_name, record, out);
            }
            return Ok(record);
        }
        let result = cur
            .image
            .ok_or_else(|| BuildError::Other("stage produced no image".into()))?;
        if self.squash && last {
            let base = self.squash_base(base);
            return self.squash_stage(base, &base_name, result, out);
        }
        Ok(result)
    }

    /// What a squashed stage keeps below its one layer: the base image, or
    /// with `--squash-all` nothing (every layer, the base's too, in one).
    fn squash_base(&self, base: Option<ImageRecord>) -> Option<ImageRecord> {
        if self.opts.squash_all {
            None
        } else {
            base
        }
    }

    /// `--squash`/`--layers=false`: the stage's new layers as one layer on
    /// top of the base's; the stage's history entries all `empty_layer`
    /// but the last, which carries the layer and `FROM <base>` (§3.1).
    fn squash_stage(
        &mut self,
        base: Option<ImageRecord>,
        base_name: &str,
        result: ImageRecord,
        out: &Out,
    ) -> Result<ImageRecord, BuildError> {
        use crate::image::unpack::{self, Mode, Options};
        let fail = |e: String| BuildError::Other(format!("squashing the image: {e}"));
        let base_layers = base.as_ref().map(|b| b.layers.clone()).unwrap_or_default();
        let base_history = base.as_ref().map_or(0, |b| b.config.history.len());
        let tmp = self.store.tmp_dir();
        let work = WorkMount::new(base.as_ref(), &tmp).map_err(fail)?;
        let merged = work.merged();
        let opts = Options::new(Mode::Flat);
        for dir in result.layer_dirs().iter().skip(base_layers.len()) {
            unpack::apply_layer_dir(dir, &merged, &opts).map_err(|e| fail(e.to_string()))?;
        }
        work.unmount();
        let changes = work.changes().map_err(fail)?;
        let mut config = StageConfig::from_image(&result.raw_config()?);
        config.diff_ids = base_layers.iter().map(|l| l.diff_id.to_string()).collect();
        let count = config.base_history.len();
        for (i, h) in config
            .base_history
            .iter_mut()
            .enumerate()
            .skip(base_history)
        {
            if let Some(h) = h.as_object_mut() {
                h.remove("comment");
                if i + 1 == count {
                    h.remove("empty_layer");
                    if base.is_some() {
                        h.insert("comment".into(), json!(format!("FROM {base_name}")));
                    }
                } else {
                    h.insert("empty_layer".into(), json!(true));
                }
            }
        }
        let (_temp, layer) = self.write_layer(&changes).map_err(fail)?;
        config.diff_ids.push(layer.diff_id.to_string());
        let created = self.created();
        let doc = config.document(self.opts.format, &created, None);
        let record = add_image(
            &self.store,
            NewImage {
                parent_layers: &base_layers,
                layers: std::slice::from_ref(&layer),
                config: doc,
                names: &[],
                docker: self.opts.format == Format::Docker,
            },
        )?;
        drop(work);
        for id in std::mem::take(&mut self.intermediates) {
            if id != record.id.hex() {
                let _ = self.store.remove(&id);
            }
        }
        out.line(&self.commit_line());
        out.line(&format!("--> {}", &record.id.hex()[..11]));
        Ok(record)
    }

    fn flags_of(
        ins: &Instruction,
        allowed: &[&str],
        message: &str,
    ) -> Result<BTreeMap<String, Vec<String>>, BuildError> {
        let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for f in &ins.flags {
            let body = &f[2..];
            let (k, v) = body.split_once('=').unwrap_or((body, ""));
            if !allowed.contains(&k) {
                return Err(BuildError::step(&ins.text(), message));
            }
            m.entry(k.to_string()).or_default().push(v.to_string());
        }
        Ok(m)
    }

    fn step(
        &mut self,
        cur: &mut Current,
        ins: &Instruction,
        out: &Out,
        final_step: bool,
    ) -> Result<(), BuildError> {
        let text = ins.text();
        let fail = |reason: String| BuildError::step(&text, reason);
        let nop = format!("/bin/sh -c #(nop) {text}");
        let docker = self.opts.format == Format::Docker;
        // Variable values that change the result of a step embedding `$`.
        let arg_state = if ins.rest.contains('$') {
            cur.arg_pairs().join("\n")
        } else {
            String::new()
        };
        match ins.keyword.as_str() {
            "run" => return self.run_step(cur, ins, out, final_step),
            "copy" | "add" => return self.copy_step(cur, ins, out, final_step),
            _ => {}
        }
        let mut config = cur.config.clone();
        let mut created_by = nop.clone();
        match ins.keyword.as_str() {
            "arg" => {
                for w in blank_split(&ins.args) {
                    let (name, default) = match w.split_once('=') {
                        Some((n, d)) => (
                            n.to_string(),
                            Some(process_word(d, &cur.lookup()).map_err(fail)?),
                        ),
                        None => (w.clone(), None),
                    };
                    let builtin = platform_args().get(&name).cloned();
                    let value = self
                        .opts
                        .build_args
                        .get(&name)
                        .cloned()
                        .or(default)
                        .or_else(|| self.heading_args.get(&name).cloned())
                        .or(builtin);
                    cur.args.insert(name, value);
                }
                let names: Vec<&String> = cur
                    .args
                    .iter()
                    .filter(|(_, v)| v.is_some())
                    .map(|(k, _)| k)
                    .collect();
                let names: Vec<&str> = names.iter().map(|s| s.as_str()).collect();
                created_by = format!("/bin/sh -c #(nop) ARG {}", names.join(" "));
            }
            "env" | "label" => {
                let upper = ins.keyword.to_ascii_uppercase();
                let pairs = words::name_values(&ins.args, self.escape, &upper).map_err(fail)?;
                let lookup = cur.lookup();
                let mut expanded = Vec::new();
                for (k, v) in pairs {
                    expanded.push((
                        process_word(&k, &lookup).map_err(fail)?,
                        process_word(&v, &lookup).map_err(fail)?,
                    ));
                }
                for (k, v) in expanded {
                    if ins.keyword == "env" {
                        config.set_env(&k, &v);
                    } else {
                        config.labels.insert(k, v);
                    }
                }
            }
            "cmd" => {
                config.cmd = Some(match ins.json().map_err(fail)? {
                    Some(v) => v,
                    None => vec!["/bin/sh".into(), "-c".into(), ins.args.clone()],
                });
                cur.cmd_set = true;
            }
            "entrypoint" => {
                config.entrypoint = match ins.json().map_err(fail)? {
                    Some(v) if v.is_empty() => None,
                    Some(v) => Some(v),
                    None if ins.args.trim().is_empty() => None,
                    None => Some(vec!["/bin/sh".into(), "-c".into(), ins.args.clone()]),
                };
                if !cur.cmd_set {
                    config.cmd = None;
                }
            }
            "shell" => match ins.json().map_err(fail)? {
                Some(v) if !v.is_empty() => config.shell = Some(v),
                _ => {
                    return Err(fail(
                        "SHELL requires the arguments to be in JSON form".into(),
                    ))
                }
            },
            "workdir" => {
                let dir = process_word(&ins.args, &cur.lookup()).map_err(fail)?;
                let joined = if dir.starts_with('/') {
                    dir
                } else {
                    let base = if config.working_dir.is_empty() {
                        "/"
                    } else {
                        &config.working_dir
                    };
                    format!("{}/{dir}", base.trim_end_matches('/'))
                };
                config.working_dir =
                    crate::fsroot::display(&crate::fsroot::clean(joined.as_bytes()));
            }
            "user" => config.user = process_word(&ins.args, &cur.lookup()).map_err(fail)?,
            "expose" => {
                for port in process_words(&ins.args, &cur.lookup()).map_err(fail)? {
                    let (num, proto) = port.split_once('/').unwrap_or((&port, "tcp"));
                    let present = config
                        .exposed_ports
                        .keys()
                        .any(|k| k.split('/').next() == Some(num));
                    if !present {
                        config
                            .exposed_ports
                            .insert(format!("{num}/{}", proto.to_ascii_lowercase()), json!({}));
                    }
                }
            }
            "volume" => {
                let list = match ins.json().map_err(fail)? {
                    Some(v) => v,
                    None => blank_split(&ins.args),
                };
                if list.is_empty() {
                    return Err(fail("Volume specified can not be an empty string".into()));
                }
                for v in list {
                    let v = process_word(&v, &cur.lookup()).map_err(fail)?;
                    if v.trim().is_empty() {
                        return Err(fail("Volume specified can not be an empty string".into()));
                    }
                    config.volumes.insert(v, json!({}));
                }
            }
            "stopsignal" => {
                let sig = process_word(&ins.args, &cur.lookup()).map_err(fail)?;
                crate::container::runtime::parse_signal(&sig)
                    .map_err(|_| fail(format!("Invalid signal: {sig}")))?;
                config.stop_signal = sig;
            }
            "maintainer" => config.author = Some(ins.args.clone()),
            "healthcheck" => {
                let flags = Self::flags_of(
                    ins,
                    &["interval", "timeout", "start-period", "retries"],
                    "HEALTHCHECK only supports the --interval, --timeout, --start-period and --retries flags",
                )?;
                if !docker {
                    log::warn!("HEALTHCHECK is not supported for OCI image format and will be ignored. Must use `docker` format");
                }
                let args = ins.args.trim();
                let (word, rest) = args.split_once([' ', '\t']).unwrap_or((args, ""));
                let mut h = serde_json::Map::new();
                if word.eq_ignore_ascii_case("none") {
                    h.insert("Test".into(), json!(["NONE"]));
                } else if word.eq_ignore_ascii_case("cmd") {
                    let test = match parse::json_form(rest).map_err(fail)? {
                        Some(v) => std::iter::once("CMD".to_string())
                            .chain(v)
                            .collect::<Vec<_>>(),
                        None => vec!["CMD-SHELL".into(), rest.trim_start().to_string()],
                    };
                    h.insert("Test".into(), json!(test));
                    for (flag, key) in [
                        ("interval", "Interval"),
                        ("timeout", "Timeout"),
                        ("start-period", "StartPeriod"),
                    ] {
                        if let Some(v) = flags.get(flag).and_then(|v| v.last()) {
                            let nanos = parse_duration(v)
                                .ok_or_else(|| fail(format!("invalid --{flag} {v:?}")))?;
                            h.insert(key.into(), json!(nanos));
                        }
                    }
                    if let Some(v) = flags.get("retries").and_then(|v| v.last()) {
                        let n: i64 = v
                            .parse()
                            .map_err(|_| fail(format!("invalid --retries {v:?}")))?;
                        h.insert("Retries".into(), json!(n));
                    }
                } else {
                    return Err(fail(
                        "Unknown type in HEALTHCHECK: must be CMD or NONE".into(),
                    ));
                }
                config.healthcheck = Some(Value::Object(h));
            }
            "onbuild" => {
                let inner = ins
                    .args
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .to_ascii_lowercase();
                if matches!(inner.as_str(), "onbuild" | "from" | "maintainer") {
                    return Err(fail(format!(
                        "{} isn't allowed as an ONBUILD trigger",
                        inner.to_ascii_uppercase()
                    )));
                }
                if !docker {
                    log::warn!("ONBUILD is not supported for OCI image format, {} will be ignored. Must use `docker` format", ins.args);
                }
                config.onbuild.push(ins.args.clone());
            }
            _ => {
                return Err(fail(format!(
                    "Build error: Unknown instruction: {:?}",
                    ins.word.to_ascii_uppercase()
                )))
            }
        }
        let key = self.key(cur, &created_by, &arg_state);
        if let Some(hit) = self.cached(&key) {
            return self.use_cache(cur, hit, out, final_step);
        }
        cur.config = config;
        self.commit(cur, None, Some(key), &created_by, out, final_step)?;
        Ok(())
    }

    fn key(&self, cur: &Current, created_by: &str, extra: &str) -> String {
        let parent = cur
            .image
            .as_ref()
            .map(|i| i.id.hex().to_string())
            .unwrap_or_else(|| "scratch".into());
        let format = match self.opts.format {
            Format::Oci => "oci",
            Format::Docker => "docker",
        };
        // `--timestamp` changes every step's config and layer.
        let timestamp = self
            .opts
            .timestamp
            .map(|t| t.to_string())
            .unwrap_or_default();
        Cache::key(&[
            &parent,
            &self.platform,
            format,
            &timestamp,
            created_by,
            extra,
        ])
    }

    fn cached(&self, key: &str) -> Option<ImageRecord> {
        if self.opts.no_cache || !self.opts.layers || self.opts.squash || self.opts.squash_all {
            return None;
        }
        self.cache.lookup(&self.store, key)
    }

    fn use_cache(
        &mut self,
        cur: &mut Current,
        hit: ImageRecord,
        out: &Out,
        final_step: bool,
    ) -> Result<(), BuildError> {
        out.line(&format!("--> Using cache {}", hit.id.hex()));
        if final_step {
            out.line(&self.commit_line());
        }
        out.line(&format!("--> {}", &hit.id.hex()[..11]));
        cur.config = StageConfig::from_image(&hit.raw_config()?);
        cur.comment = Some(format!("FROM {}", hit.id.short()));
        cur.image = Some(hit);
        cur.committed = true;
        Ok(())
    }

    fn commit_line(&self) -> String {
        match self.opts.tags.first() {
            Some(t) => format!("COMMIT {t}"),
            None => "COMMIT".into(),
        }
    }

    /// Commits the current config (plus `layer`) as the step's image.
    fn commit(
        &mut self,
        cur: &mut Current,
        layer: Option<&LayerFile>,
        key: Option<String>,
        created_by: &str,
        out: &Out,
        final_step: bool,
    ) -> Result<ImageRecord, BuildError> {
        let created = self.created();
        if !created_by.is_empty() {
            cur.config.history.push(HistoryEntry {
                created: created.clone(),
                created_by: created_by.to_string(),
                author: cur.config.author.clone(),
                comment: cur.comment.clone(),
                empty_layer: layer.is_none(),
            });
        }
        if let Some(layer) = layer {
            cur.config.diff_ids.push(layer.diff_id.to_string());
        }
        let parent = cur.image.as_ref().map(|i| i.id.to_string());
        let doc = cur
            .config
            .document(self.opts.format, &created, parent.as_deref());
        let parent_layers = cur
            .image
            .as_ref()
            .map(|i| i.layers.clone())
            .unwrap_or_default();
        let record = add_image(
            &self.store,
            NewImage {
                parent_layers: &parent_layers,
                layers: layer.map(std::slice::from_ref).unwrap_or_default(),
                config: doc,
                names: &[],
                docker: self.opts.format == Format::Docker,
            },
        )?;
        if self.squash {
            // Not a cache entry, and gone once the stage is squashed.
            self.intermediates.push(record.id.hex().to_string());
        } else {
            if let Some(key) = key {
                self.cache.remember(&key, record.id.hex());
            }
            if final_step {
                out.line(&self.commit_line());
            }
            out.line(&format!("--> {}", &record.id.hex()[..11]));
        }
        cur.config = StageConfig::from_image(&record.raw_config()?);
        cur.comment = Some(format!("FROM {}", record.id.short()));
        cur.image = Some(record.clone());
        cur.committed = true;
        Ok(record)
    }

    /// The `created` time of the images and history entries: now, or
    /// `--timestamp`.
    fn created(&self) -> String {
        match self.opts.timestamp {
            Some(secs) => crate::clock::rfc3339_seconds(secs),
            None => format_rfc3339(now_nanos()),
        }
    }

    /// The layer tar of `changes`, in a file of the store's `tmp/` (removed
    /// with the returned path unless the store moved it into its blob cache).
    fn write_layer(&self, changes: &Changes) -> Result<(tempfile::TempPath, LayerFile), String> {
        let temp = tempfile::Builder::new()
            .prefix("layer-")
            .tempfile_in(self.store.tmp_dir())
            .map_err(|e| format!("creating a layer file: {e}"))?
            .into_temp_path();
        let mtime = self.opts.timestamp.map(|t| t.max(0) as u64);
        let layer = changes
            .write(&temp, mtime)
            .map_err(|e| format!("writing the layer: {e}"))?;
        Ok((temp, layer))
    }

    /// Diffs `changes` into a layer tar and commits it.
    // The step's state, its cache key and history text, and where it prints.
    #[allow(clippy::too_many_arguments)]
    fn commit_layer(
        &mut self,
        cur: &mut Current,
        changes: &Changes,
        key: String,
        created_by: &str,
        out: &Out,
        final_step: bool,
        step: &str,
    ) -> Result<(), BuildError> {
        let (_temp, layer) = self
            .write_layer(changes)
            .map_err(|e| BuildError::step(step, e))?;
        self.commit(cur, Some(&layer), Some(key), created_by, out, final_step)?;
        Ok(())
    }

    fn run_step(
        &mut self,
        cur: &mut Current,
        ins: &Instruction,
        out: &Out,
        final_step: bool,
    ) -> Result<(), BuildError> {
        let text = ins.text();
        let fail = |reason: String| BuildError::step(&text, reason);
        let flags = Self::flags_of(ins, &["mount"], "RUN only supports the --mount flag")?;
        let json = ins.json().map_err(fail)?;
        let docker = self.opts.format == Format::Docker;
        if !docker && cur.config.shell.is_some() {
            log::warn!(
                "SHELL is not supported for OCI image format, [{}] will be ignored. Must use `docker` format",
                cur.config.shell.clone().unwrap_or_default().join(" ")
            );
        }
        let argv = match &json {
            Some(v) => v.clone(),
            None => {
                let mut shell = match (&cur.config.shell, docker) {
                    (Some(s), true) => s.clone(),
                    _ => vec!["/bin/sh".into(), "-c".into()],
                };
                shell.push(ins.args.clone());
                shell
            }
        };
        let pairs = cur.arg_pairs();
        let prefix = if pairs.is_empty() {
            String::new()
        } else {
            format!("|{} {} ", pairs.len(), pairs.join(" "))
        };
        let created_by = if json.is_some() {
            format!("{prefix}/bin/sh -c {} ", ins.args)
        } else {
            format!("{prefix}/bin/sh -c {}", ins.args)
        };
        // Mounts (bind sources from the context, tmpfs).
        let mut volumes = Vec::new();
        let mut tmpfs = Vec::new();
        let mut mount_targets = Vec::new();
        for m in flags.get("mount").into_iter().flatten() {
            let mut kind = "bind";
            let (mut source, mut target, mut rw) = (String::new(), String::new(), false);
            for part in m.split(',') {
                let (k, v) = part.split_once('=').unwrap_or((part, ""));
                match k {
                    "type" => {
                        kind = if v == "tmpfs" {
                            "tmpfs"
                        } else if v == "bind" {
                            "bind"
                        } else {
                            return Err(fail(format!("unsupported mount type {v:?}")));
                        }
                    }
                    "source" | "src" => source = v.to_string(),
                    "target" | "dst" | "destination" => target = v.to_string(),
                    "rw" | "readwrite" => rw = v != "false",
                    _ => {}
                }
            }
            if target.is_empty() {
                return Err(fail("mount: target is required".into()));
            }
            mount_targets.push(target.clone());
            if kind == "tmpfs" {
                tmpfs.push(target);
            } else {
                let (host, _) = copy::resolve_in_root(&self.opts.context, &source)
                    .map_err(|e| fail(format!("mount source {source:?}: {e}")))?;
                volumes.push(format!(
                    "{}:{target}{}",
                    host.display(),
                    if rw { "" } else { ":ro" }
                ));
            }
        }
        let key = self.key(
            cur,
            &created_by,
            &format!(
                "{}\n{}\n{:?}",
                self.opts.network,
                flags.get("mount").map(|v| v.join(";")).unwrap_or_default(),
                volumes
            ),
        );
        if let Some(hit) = self.cached(&key) {
            return self.use_cache(cur, hit, out, final_step);
        }
        // The image to run in: the current one (commit the config first
        // when the stage has only metadata so far or starts from scratch).
        if cur.image.is_none() {
            return Err(fail(
                "RUN in a stage FROM scratch: there is no shell to run".into(),
            ));
        }
        let mut env = cur.config.env.clone();
        for p in &pairs {
            let name = p.split('=').next().unwrap_or_default();
            if cur.config.env_value(name).is_none() {
                env.push(p.clone());
            }
        }
        let image = cur.image.clone().ok_or_else(|| fail("no image".into()))?;
        let req = RunRequest {
            image: &image,
            argv,
            env,
            user: cur.config.user.clone(),
            workdir: cur.config.working_dir.clone(),
            network: self.opts.network.clone(),
            quiet: self.opts.quiet,
            volumes,
            tmpfs,
            step: text.clone(),
            interrupt: self.interrupt.clone(),
        };
        let (code, container) = run::run(self.ctx, &req)?;
        if code != 0 {
            return Err(BuildError::RunExit { step: text, code });
        }
        let changes = if container.mounted == Some(crate::container::record::MountKind::Copy) {
            // No upper directory: compare with a flat copy of the image.
            let lower =
                super::mount::flattened(Some(&image), &self.store.tmp_dir()).map_err(fail)?;
            Changes::Tree {
                lower,
                full: container.rootfs_dir(),
            }
        } else {
            let upper = container.upper_dir();
            // Mount targets runc had to create are not part of the image.
            for target in &mount_targets {
                drop_mount_target(&upper, target);
            }
            Changes::Upper(upper)
        };
        self.commit_layer(cur, &changes, key, &created_by, out, final_step, &text)?;
        drop(container);
        Ok(())
    }

    fn copy_step(
        &mut self,
        cur: &mut Current,
        ins: &Instruction,
        out: &Out,
        final_step: bool,
    ) -> Result<(), BuildError> {
        let text = ins.text();
        let fail = |reason: String| BuildError::step(&text, reason);
        let add = ins.keyword == "add";
        let flags = if add {
            Self::flags_of(
                ins,
                &["chown", "chmod"],
                "ADD only supports the --chmod=<permissions> and the --chown=<uid:gid> flag",
            )?
        } else {
            Self::flags_of(ins, &["from", "chown", "chmod"], "COPY only supports the --chmod=<permissions> --chown=<uid:gid> and the --from=<image|stage> flags")?
        };
        let lookup = cur.lookup();
        let flag = |name: &str| -> Result<Option<String>, BuildError> {
            flags
                .get(name)
                .and_then(|v| v.last())
                .map(|v| process_word(v, &lookup).map_err(|e| BuildError::step(&text, e)))
                .transpose()
        };
        let (from, chown, chmod) = (flag("from")?, flag("chown")?, flag("chmod")?);
        let raw = match ins.json().map_err(fail)? {
            Some(v) => v,
            None => blank_split(&ins.args),
        };
        if raw.len() < 2 {
            return Err(fail(format!(
                "{} requires at least two arguments",
                ins.keyword.to_ascii_uppercase()
            )));
        }
        let mut args = Vec::new();
        for a in &raw {
            args.push(process_word(a, &lookup).map_err(fail)?);
        }
        drop(lookup);
        let dest = args.pop().unwrap_or_default();
        let dest_written = raw.last().cloned().unwrap_or_default();
        if let Some(url) = args.iter().find(|a| a.contains("://")) {
            return Err(fail(format!(
                "reading {url:?}: vigil build does not download ADD sources (no network access here)"
            )));
        }
        let chmod = chmod
            .map(|m| {
                u32::from_str_radix(&m, 8).map_err(|_| fail(format!("Error parsing chmod {m}")))
            })
            .transpose()?;
        let tmp = self.store.tmp_dir();
        let work = WorkMount::new(cur.image.as_ref(), &tmp).map_err(fail)?;
        let merged = work.merged();
        // WORKDIR is created by the next step that touches the file system.
        if !cur.config.working_dir.is_empty() {
            crate::image::rootfs::make_dir_all(&merged, &cur.config.working_dir)
                .map_err(|e| fail(e.to_string()))?;
        }
        let owner = match &chown {
            None => (0, 0),
            Some(spec) => {
                let passwd = crate::image::rootfs::read_file(&merged, "/etc/passwd", 1 << 20)
                    .ok()
                    .flatten()
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default();
                let group = crate::image::rootfs::read_file(&merged, "/etc/group", 1 << 20)
                    .ok()
                    .flatten()
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default();
                let user = crate::spec::resolve_user(spec, &passwd, &group).map_err(|_| {
                    let name = spec.split(':').next().unwrap_or(spec);
                    fail(format!(
                        "looking up UID/GID for {spec:?}: determining run uid: user: unknown user error looking up user {name:?}"
                    ))
                })?;
                (user.uid, user.gid)
            }
        };
        // --from: a stage (name or index) or an image.
        let from_mount;
        let from_path;
        let from_root = match &from {
            None => SourceRoot::Context {
                dir: &self.opts.context,
                ignore: &self.ignore,
            },
            Some(f) => {
                let by_index = f.parse::<usize>().ok().and_then(|i| self.results.get(i));
                let by_name = self
                    .results
                    .iter()
                    .find(|r| r.name.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(f)));
                let image = match by_index.or(by_name) {
                    Some(r) => r.image.clone(),
                    None => Some(self.image(f).map_err(|e| {
                        fail(format!(
                            "COPY --from={f}: no stage or image with that name: {e}"
                        ))
                    })?),
                };
                from_mount = WorkMount::new(image.as_ref(), &tmp).map_err(fail)?;
                from_path = from_mount.merged();
                SourceRoot::Rootfs(&from_path)
            }
        };
        let now = (now_nanos() / 1_000_000_000) as i64;
        let req = CopyRequest {
            sources: args,
            dest,
            workdir: &cur.config.working_dir,
            owner,
            chmod,
            extract: add,
            now,
        };
        let prepared = copy::prepare(&from_root, &req, &merged, &tmp).map_err(fail)?;
        let created_by = format!(
            "/bin/sh -c #(nop) {} {}:{} in {} ",
            if add { "ADD" } else { "COPY" },
            prepared.copied.kind,
            prepared.copied.digest,
            dest_written
        );
        let key = self.key(cur, &created_by, &format!("{owner:?}{chmod:?}"));
        if let Some(hit) = self.cached(&key) {
            return self.use_cache(cur, hit, out, final_step);
        }
        prepared.apply(&merged).map_err(fail)?;
        work.unmount();
        let changes = work.changes().map_err(fail)?;
        self.commit_layer(cur, &changes, key, &created_by, out, final_step, &text)?;
        Ok(())
    }
}

/// Removes what runc created in `upper` for the mount target `target`
/// when it is an empty file or directory (Podman keeps the parents it
/// created: `--mount …,target=/mnt/f.txt` leaves `/mnt`).
fn drop_mount_target(upper: &Path, target: &str) {
    let comps: Vec<String> = crate::fsroot::clean(target.as_bytes())
        .into_iter()
        .map(|c| String::from_utf8_lossy(&c).into_owned())
        .collect();
    if comps.is_empty() {
        return;
    }
    let path = upper.join(comps.join("/"));
    let Ok(meta) = std::fs::symlink_metadata(&path) else {
        return;
    };
    if meta.is_dir() {
        let opaque = ["trusted.overlay.opaque", "user.overlay.opaque"]
            .iter()
            .any(|x| xattr_is_set(&path, x));
        if !opaque {
            let _ = std::fs::remove_dir(&path);
        }
    } else if meta.is_file() && meta.len() == 0 {
        let _ = std::fs::remove_file(&path);
    }
}

fn xattr_is_set(path: &Path, name: &str) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let (Ok(p), Ok(n)) = (
        std::ffi::CString::new(path.as_os_str().as_bytes()),
        std::ffi::CString::new(name),
    ) else {
        return false;
    };
    // A zero-length query only returns the size.
    crate::fsroot::sys::lgetxattr(&p, &n, &mut []).is_ok()
}

/// Go durations as HEALTHCHECK takes them (`5s`, `1m30s`, `500ms`), in ns.
fn parse_duration(s: &str) -> Option<i64> {
    let mut total: f64 = 0.0;
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let num_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let num: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..unit_end] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total += num * mult;
        rest = &rest[unit_end..];
    }
    Some(total as i64)
}
