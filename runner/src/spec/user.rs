//! The process user: `USER[:GROUP]` resolved against the container's own
//! /etc/passwd and /etc/group.

use crate::error::RunnerError;

/// A resolved process user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    /// From the passwd entry, else `/`.
    pub home: String,
}

/// Resolve `USER[:GROUP]` (names or numbers) against the container's
/// `/etc/passwd` and `/etc/group` contents. An empty spec is root.
pub fn resolve_user(spec: &str, passwd: &str, group: &str) -> Result<User, RunnerError> {
    let (user_part, group_part) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let user_part = if user_part.is_empty() { "0" } else { user_part };
    let entry = passwd.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() < 7 {
            return None;
        }
        let matches = f[0] == user_part || f[2] == user_part;
        matches.then(|| {
            (
                f[0].to_string(),
                f[2].parse::<u32>().ok(),
                f[3].parse::<u32>().ok(),
                f[5].to_string(),
            )
        })
    });
    let (name, uid, mut gid, home) = match (entry, user_part.parse::<u32>()) {
        (Some((name, Some(uid), gid, home)), _) => (Some(name), uid, gid.unwrap_or(0), home),
        (_, Ok(uid)) => (None, uid, uid, "/".to_string()),
        _ => {
            return Err(RunnerError::Engine(format!(
                "unable to find user {user_part}: no matching entries in passwd file"
            )))
        }
    };
    if let Some(g) = group_part.filter(|g| !g.is_empty()) {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => group
                .lines()
                .find_map(|line| {
                    let f: Vec<&str> = line.split(':').collect();
                    (f.len() >= 3 && f[0] == g)
                        .then(|| f[2].parse::<u32>().ok())
                        .flatten()
                })
                .ok_or_else(|| {
                    RunnerError::Engine(format!(
                        "unable to find group {g}: no matching entries in group file"
                    ))
                })?,
        };
    }
    let mut additional_gids = vec![gid];
    if let Some(name) = name {
        for line in group.lines() {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() >= 4 && f[3].split(',').any(|m| m == name) {
                if let Ok(g) = f[2].parse::<u32>() {
                    if !additional_gids.contains(&g) {
                        additional_gids.push(g);
                    }
                }
            }
        }
    }
    let home = if home.is_empty() { "/".into() } else { home };
    Ok(User {
        uid,
        gid,
        additional_gids,
        home,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_resolve_from_the_container_files() {
        let passwd = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n";
        let group = "root:x:0:\napp:x:1001:\nwheel:x:10:app,other\n";
        assert_eq!(
            resolve_user("", passwd, group).unwrap(),
            User {
                uid: 0,
                gid: 0,
                additional_gids: vec![0],
                home: "/root".into()
            }
        );
        assert_eq!(
            resolve_user("app", passwd, group).unwrap(),
            User {
                uid: 1000,
                gid: 1001,
                additional_gids: vec![1001, 10],
                home: "/home/app".into()
            }
        );
        assert_eq!(resolve_user("1000:wheel", passwd, group).unwrap().gid, 10);
        assert_eq!(
            resolve_user("4242:7", passwd, group).unwrap(),
            User {
                uid: 4242,
                gid: 7,
                additional_gids: vec![7],
                home: "/".into()
            }
        );
        assert!(resolve_user("nobody", passwd, group).is_err());
        assert!(resolve_user("app:nogroup", passwd, group).is_err());
    }
}
