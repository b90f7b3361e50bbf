//! `vigil rename OLD NEW`: give a container another name.

use clap::Args;

use crate::container::Engine;
use crate::context::Context;
use crate::error::RunnerError;

#[derive(Debug, Clone, Args)]
pub struct RenameArgs {
    /// The container, then its new name
    #[arg(value_name = "CONTAINER NEW_NAME")]
    pub names: Vec<String>,
}

/// Podman's name rule: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

/// Renames under the store lock (names are unique); no output, like Podman.
pub fn handle(ctx: &Context, args: &RenameArgs) -> Result<i32, RunnerError> {
    let [old, new] = args.names.as_slice() else {
        return Err(RunnerError::Engine(format!(
            "accepts 2 arg(s), received {}",
            args.names.len()
        )));
    };
    let engine = Engine::new(ctx);
    let id = engine.store.resolve(old)?;
    if !valid_name(new) {
        return Err(RunnerError::Engine(
            "names must match [a-zA-Z0-9][a-zA-Z0-9_.-]*: invalid argument".into(),
        ));
    }
    let _all = engine.store.lock_all()?;
    if engine
        .store
        .records()?
        .iter()
        .any(|r| &r.name == new && r.id != id)
    {
        return Err(RunnerError::Engine(format!(
            "renaming container {id}: name {new} already in use, cannot rename container {id}: container already exists"
        )));
    }
    let _lock = engine.store.lock(&id)?;
    let mut rec = engine.refresh(&id)?;
    rec.name = new.clone();
    rec.save(&engine.store.dir(&id))?;
    Ok(0)
}
