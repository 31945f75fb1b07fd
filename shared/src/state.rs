//! The per-user state directory on this machine, shared by the CLI and the
//! proxy: waiter locks and cursors, wake state, pane mappings and session
//! keys live here. It must be private: it is created 0700, its files 0600,
//! and one that is a symbolic link, belongs to another user, or is writable
//! by others is refused (another user could otherwise plant what it holds).

use std::fs;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Moves the state directory (tests, unusual setups).
pub const ENV_STATE_DIR: &str = "AGENT_EVENT_BUS_STATE_DIR";

/// Why the state directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StateDirError {
    #[error("cannot create the state directory {path}: {source}")]
    Create { path: PathBuf, source: io::Error },
    #[error(
        "the state directory {path} is a symbolic link; remove it (or set {ENV_STATE_DIR} to a private directory)"
    )]
    Symlink { path: PathBuf },
    #[error(
        "the state directory {path} belongs to another user (uid {owner}); remove it (or set {ENV_STATE_DIR} to a private directory)"
    )]
    Owner { path: PathBuf, owner: u32 },
    #[error(
        "the state directory {path} is writable by other users (mode {mode:o}); run `chmod 700 {path}`"
    )]
    Mode { path: PathBuf, mode: u32 },
}

/// The default place: `$XDG_RUNTIME_DIR/agent-event-bus`, else
/// `<temp dir>/agent-event-bus-<uid>`.
pub fn default_dir() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(runtime) => PathBuf::from(runtime).join("agent-event-bus"),
        None => std::env::temp_dir().join(format!("agent-event-bus-{}", uid())),
    }
}

fn uid() -> u32 {
    rustix::process::getuid().as_raw()
}

/// The state directory (`given`, else [`ENV_STATE_DIR`], else
/// [`default_dir`]), created private if missing, and checked: a real
/// directory, this user's, closed to others.
pub fn dir(given: Option<&Path>) -> Result<PathBuf, StateDirError> {
    let dir = match given {
        Some(dir) => dir.to_owned(),
        None => std::env::var_os(ENV_STATE_DIR)
            .filter(|d| !d.is_empty())
            .map_or_else(default_dir, PathBuf::from),
    };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|source| StateDirError::Create {
            path: dir.clone(),
            source,
        })?;
    check(&dir)?;
    Ok(dir)
}

/// Checks an existing directory is a real directory of this user's that no
/// one else may write to.
fn check(dir: &Path) -> Result<(), StateDirError> {
    let meta = fs::symlink_metadata(dir).map_err(|source| StateDirError::Create {
        path: dir.to_owned(),
        source,
    })?;
    if meta.file_type().is_symlink() {
        return Err(StateDirError::Symlink {
            path: dir.to_owned(),
        });
    }
    if meta.uid() != uid() {
        return Err(StateDirError::Owner {
            path: dir.to_owned(),
            owner: meta.uid(),
        });
    }
    let mode = meta.mode() & 0o777;
    // Others may not write here (they could plant a file or a link); its
    // files are written 0600 themselves, so a listing reveals no contents.
    if mode & 0o022 != 0 {
        return Err(StateDirError::Mode {
            path: dir.to_owned(),
            mode,
        });
    }
    Ok(())
}

/// A file-name-safe form of a session id: the id itself when it is made of
/// letters, digits, `-` and `_` (and short), else a cleaned prefix and a hash,
/// so two ids never share a file.
pub fn file_key(session_id: &str) -> String {
    let safe: String = session_id
        .chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if safe == session_id {
        return safe;
    }
    let mut hasher = DefaultHasher::new();
    session_id.hash(&mut hasher);
    format!("{safe}-{:016x}", hasher.finish())
}

/// The files of session `session_id`'s waiter (`agent-event-bus-cli wait`,
/// the wake-up hook) in state directory `dir`.
#[derive(Debug, Clone)]
pub struct WaiterFiles {
    /// Which waiter is the newest (an older one gives way).
    pub owner: PathBuf,
    /// Held locked (`flock`, exclusive) while a waiter waits.
    pub lock: PathBuf,
    /// Where the last waiter left off.
    pub cursor: PathBuf,
}

impl WaiterFiles {
    pub fn new(dir: &Path, session_id: &str) -> Self {
        let key = file_key(session_id);
        Self {
            owner: dir.join(format!("wait-{key}.owner")),
            lock: dir.join(format!("wait-{key}.lock")),
            cursor: dir.join(format!("wait-{key}.cursor")),
        }
    }

    /// Where the last waiter left off, if one saved it.
    pub fn cursor(&self) -> Option<u64> {
        fs::read_to_string(&self.cursor).ok()?.trim().parse().ok()
    }

    /// Best effort: a lost cursor only means starting at the newest event.
    pub fn save_cursor(&self, cursor: u64) {
        let _ = write_private(&self.cursor, &cursor.to_string());
    }

    /// The newest waiter's token.
    pub fn owner(&self) -> Option<String> {
        fs::read_to_string(&self.owner).ok()
    }

    /// Whether a waiter holds the lock now: a wake-up hook is connected for
    /// the session and will hand it its next direct message. Takes a shared
    /// lock for a moment when none is held (a waiter starting then retries
    /// its exclusive one).
    pub fn waiting(&self) -> bool {
        let Ok(file) = fs::File::open(&self.lock) else {
            return false;
        };
        matches!(
            rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockShared),
            Err(rustix::io::Errno::WOULDBLOCK)
        )
    }
}

/// Writes `text` to `path` whole or not at all (a temporary file beside it,
/// then a rename), readable by this user only.
pub fn write_private(path: &Path, text: &str) -> io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(text.as_bytes())?;
    drop(file);
    fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_keys_are_safe_and_distinct() {
        assert_eq!(file_key("abc-123_X"), "abc-123_X");
        let odd = file_key("a/b c");
        assert!(odd.starts_with("a_b_c-"), "{odd}");
        assert_ne!(file_key("a/b"), file_key("a_b"));
        assert!(file_key(&"x".repeat(300)).len() < 100);
    }

    #[test]
    fn a_private_directory_is_made_and_an_open_one_refused() {
        use std::os::unix::fs::PermissionsExt;
        let base = tempfile::tempdir().expect("a temp dir");
        let made = dir(Some(&base.path().join("state"))).expect("created");
        assert_eq!(fs::metadata(&made).expect("exists").mode() & 0o777, 0o700);
        let open = base.path().join("open");
        fs::create_dir(&open).expect("created");
        fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).expect("chmod");
        assert!(matches!(dir(Some(&open)), Err(StateDirError::Mode { .. })));
        let link = base.path().join("link");
        std::os::unix::fs::symlink(&made, &link).expect("symlink");
        assert!(matches!(
            dir(Some(&link)),
            Err(StateDirError::Symlink { .. })
        ));
        let file = made.join("f");
        write_private(&file, "x").expect("written");
        assert_eq!(fs::metadata(&file).expect("exists").mode() & 0o777, 0o600);
    }
}
