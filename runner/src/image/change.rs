//! `--change` instructions (`import -c`, `commit -c`): the Dockerfile
//! instructions that only touch the image config, as Podman accepts them.

use serde_json::{json, Map, Value};

/// Words of a JSON array (`["a","b"]`) or, in shell form, `/bin/sh -c TEXT`.
fn command_words(text: &str) -> Vec<String> {
    if text.trim_start().starts_with('[') {
        if let Ok(words) = serde_json::from_str::<Vec<String>>(text.trim()) {
            return words;
        }
    }
    vec!["/bin/sh".into(), "-c".into(), text.to_string()]
}

/// `KEY=VALUE KEY2="V 2"` or `KEY VALUE` pairs.
fn pairs(text: &str) -> Vec<(String, String)> {
    let text = text.trim();
    if !text.contains('=') {
        return match text.split_once(char::is_whitespace) {
            Some((k, v)) => vec![(k.to_string(), v.trim().to_string())],
            None => vec![(text.to_string(), String::new())],
        };
    }
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (k, after) = rest.split_once('=').unwrap_or((rest, ""));
        let (v, next) = if let Some(q) = after.strip_prefix('"') {
            let end = q.find('"').unwrap_or(q.len());
            (q[..end].to_string(), q.get(end + 1..).unwrap_or(""))
        } else {
            match after.split_once(char::is_whitespace) {
                Some((v, n)) => (v.to_string(), n),
                None => (after.to_string(), ""),
            }
        };
        out.push((k.trim().to_string(), v));
        rest = next.trim_start();
    }
    out
}

fn object<'a>(config: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let slot = config.entry(key).or_insert_with(|| json!({}));
    if !slot.is_object() {
        *slot = json!({});
    }
    slot.as_object_mut().expect("just made an object")
}

/// Applies each change to `config` (the image config's `config` object).
pub fn apply(config: &mut Map<String, Value>, changes: &[String]) -> Result<(), String> {
    for change in changes {
        let (instruction, arg) = change
            .trim()
            .split_once(char::is_whitespace)
            .unwrap_or((change.trim(), ""));
        let arg = arg.trim();
        let invalid = || format!("invalid change {change:?} - invalid instruction {instruction}");
        match instruction.to_ascii_uppercase().as_str() {
            "CMD" => {
                config.insert("Cmd".into(), json!(command_words(arg)));
            }
            "ENTRYPOINT" => {
                config.insert("Entrypoint".into(), json!(command_words(arg)));
            }
            "ENV" => {
                let env = config.entry("Env").or_insert_with(|| json!([]));
                let list = env.as_array_mut().ok_or_else(invalid)?;
                for (k, v) in pairs(arg) {
                    let entry = format!("{k}={v}");
                    let prefix = format!("{k}=");
                    list.retain(|e| !e.as_str().is_some_and(|s| s.starts_with(&prefix)));
                    list.push(json!(entry));
                }
            }
            "LABEL" => {
                let labels = object(config, "Labels");
                for (k, v) in pairs(arg) {
                    labels.insert(k, json!(v));
                }
            }
            "EXPOSE" => {
                let ports = object(config, "ExposedPorts");
                for p in arg.split_whitespace() {
                    let p = if p.contains('/') {
                        p.to_string()
                    } else {
                        format!("{p}/tcp")
                    };
                    ports.insert(p, json!({}));
                }
            }
            "VOLUME" => {
                let volumes = object(config, "Volumes");
                let list = if arg.starts_with('[') {
                    serde_json::from_str::<Vec<String>>(arg).map_err(|_| invalid())?
                } else {
                    arg.split_whitespace().map(String::from).collect()
                };
                for v in list {
                    volumes.insert(v, json!({}));
                }
            }
            "USER" => {
                config.insert("User".into(), json!(arg));
            }
            "WORKDIR" => {
                config.insert("WorkingDir".into(), json!(arg));
            }
            "STOPSIGNAL" => {
                config.insert("StopSignal".into(), json!(arg));
            }
            "ONBUILD" => {
                let list = config.entry("OnBuild").or_insert_with(|| json!([]));
                list.as_array_mut().ok_or_else(invalid)?.push(json!(arg));
            }
            _ => return Err(invalid()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn podmans_observed_config() {
        let mut c = Map::new();
        let changes: Vec<String> = [
            r#"CMD ["/bin/sh","-c","echo hi"]"#,
            "ENV A=1",
            "WORKDIR /root",
            "USER 1000",
            "LABEL k=v",
            "EXPOSE 8080",
            "VOLUME /data",
            r#"ENTRYPOINT ["/bin/env"]"#,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        apply(&mut c, &changes).unwrap();
        assert_eq!(
            Value::Object(c),
            json!({"User":"1000","ExposedPorts":{"8080/tcp":{}},"Env":["A=1"],
                   "Entrypoint":["/bin/env"],"Cmd":["/bin/sh","-c","echo hi"],
                   "Volumes":{"/data":{}},"WorkingDir":"/root","Labels":{"k":"v"}})
        );
        let err = apply(&mut Map::new(), &["RUN x".to_string()]).unwrap_err();
        assert_eq!(err, "invalid change \"RUN x\" - invalid instruction RUN");
        let mut c = Map::new();
        apply(
            &mut c,
            &["CMD sleep 5".to_string(), "ENV A=1 B=\"x y\"".to_string()],
        )
        .unwrap();
        assert_eq!(c["Cmd"], json!(["/bin/sh", "-c", "sleep 5"]));
        assert_eq!(c["Env"], json!(["A=1", "B=x y"]));
    }
}
