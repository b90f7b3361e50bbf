"""Refuse to benchmark a binary older than the sources it is built from.

Shared by scripts/bench-monitor and scripts/bench-runner. `cargo build
--release` at the workspace root builds only the root package (the library),
so target/release/conmon and target/release/vigil can silently stay at an
old tree while the bench header names the new commit: one full bench run was
lost that way. Only binaries under this workspace's target/ are checked; a
binary given from elsewhere (--ours, CONMON_BINARY) is the caller's business.
"""

import os

# What each binary is built from, relative to the workspace root.
SOURCES = {
    "conmon": ["monitor", "src", "Cargo.lock"],
    "vigil": ["runner", "src", "Cargo.lock"],
}


def newest_source(workspace, parts):
    """(mtime, path) of the newest .rs/.toml/.txt/.lock file under `parts`."""
    newest = (0.0, None)
    for part in parts:
        top = os.path.join(workspace, part)
        if os.path.isfile(top):
            candidates = [top]
        else:
            candidates = []
            for d, subdirs, files in os.walk(top):
                # Tests and examples are not part of the binary.
                subdirs[:] = [s for s in subdirs if s not in ("target", "tests", "examples")]
                candidates.extend(os.path.join(d, f) for f in files
                                  if f.endswith((".rs", ".toml", ".txt", ".lock")))
        for path in candidates:
            try:
                mtime = os.stat(path).st_mtime
            except OSError:
                continue
            if mtime > newest[0]:
                newest = (mtime, path)
    return newest


def stale_reason(workspace, binary):
    """Why `binary` is older than its sources, or None when it is fresh (or not ours to judge)."""
    binary = os.path.abspath(binary)
    target = os.path.join(os.path.abspath(workspace), "target") + os.sep
    name = os.path.basename(binary)
    if not binary.startswith(target) or name not in SOURCES:
        return None
    try:
        built = os.stat(binary).st_mtime
    except OSError:
        return None
    mtime, path = newest_source(workspace, SOURCES[name])
    if path is None or mtime <= built:
        return None
    return (f"{binary} is older than {os.path.relpath(path, workspace)}: rebuild with "
            f"`cargo build --workspace --release` (a plain `cargo build --release` builds "
            f"only the library)")
