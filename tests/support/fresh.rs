//! The harness refuses a binary older than a source it is built from, so a
//! test never passes or fails on yesterday's build. The sources are the
//! ones cargo itself lists for the binary (the dep-info file `<bin>.d` it
//! writes beside it), so a test-only module edited since is no reason.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Panics when `binary` is older than a source cargo built it from.
pub fn refuse_stale(binary: &Path) {
    let Some((newest, source)) = newest_source(binary) else {
        return;
    };
    let built = std::fs::metadata(binary)
        .and_then(|m| m.modified())
        .expect("the binary has a modification time");
    assert!(
        built >= newest,
        "{} is older than {}: rebuild with `cargo build --workspace --bins` (`make test` does)",
        binary.display(),
        source.display()
    );
}

/// The most recently modified source listed in `binary`'s dep-info file
/// (none when cargo wrote none).
fn newest_source(binary: &Path) -> Option<(SystemTime, PathBuf)> {
    let info = std::fs::read_to_string(binary.with_extension("d")).ok()?;
    let (_, deps) = info.lines().next()?.split_once(": ")?;
    dep_paths(deps)
        .into_iter()
        .filter_map(|path| {
            let modified = std::fs::metadata(&path).and_then(|m| m.modified()).ok()?;
            Some((modified, path))
        })
        .max_by_key(|(modified, _)| *modified)
}

/// The paths of a dep-info line: separated by spaces, a space inside a
/// path escaped with a backslash.
fn dep_paths(deps: &str) -> Vec<PathBuf> {
    let mut paths = Vec::new();
    let mut current = String::new();
    let mut chars = deps.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => current.extend(chars.next()),
            ' ' => {
                if !current.is_empty() {
                    paths.push(PathBuf::from(std::mem::take(&mut current)));
                }
            }
            c => current.push(c),
        }
    }
    if !current.is_empty() {
        paths.push(PathBuf::from(current));
    }
    paths
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dep_info_paths_keep_escaped_spaces() {
        assert_eq!(
            dep_paths("/a/b.rs /c\\ d/e.rs  /f.rs"),
            [
                PathBuf::from("/a/b.rs"),
                PathBuf::from("/c d/e.rs"),
                PathBuf::from("/f.rs")
            ]
        );
    }
}
