//! The refusals of a file in use, so the import reads a file nobody writes:
//! anything but a SQLite 3 file, a `-wal` or `-journal` holding writes not
//! yet merged, a process holding a lock on the file or its `-shm` (asked with
//! `F_GETLK`, without taking one), and a file whose size or time changed
//! while it was read. Once these pass, [`immutable_uri`] opens it without
//! locks or side files.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::ImportError;

/// SQLite's lock bytes on the database file (`os_unix.c`): PENDING, then
/// RESERVED, then the 510 SHARED bytes. A write transaction holds RESERVED or
/// more; in WAL mode every open connection holds a SHARED lock.
#[cfg(unix)]
const LOCK_BYTES: (u64, u64) = (0x4000_0000, 512);
/// The `-shm` lock bytes: the WAL write, checkpoint, recover and read-mark
/// locks (120..128) and the dead-man switch (128) every open connection holds.
#[cfg(unix)]
const SHM_LOCK_BYTES: (u64, u64) = (120, 9);

/// What identifies the file's contents cheaply: checked again after the
/// import, so a writer that started meanwhile fails the import.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
}

/// The file's [`Stamp`]; refuses a path that is missing or not a regular file.
pub(super) fn stamp_of(path: &Path) -> Result<Stamp, ImportError> {
    let meta = std::fs::metadata(path).map_err(|e| ImportError::Missing {
        path: path.display().to_string(),
        detail: e.to_string(),
    })?;
    if !meta.is_file() {
        return Err(ImportError::Missing {
            path: path.display().to_string(),
            detail: "not a regular file".into(),
        });
    }
    Ok(Stamp {
        len: meta.len(),
        modified: meta.modified().ok(),
    })
}

/// Refuses anything but a SQLite 3 database file.
pub(super) fn check_header(path: &Path) -> Result<(), ImportError> {
    use std::io::Read;
    let mut head = [0u8; 16];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .map_err(|e| ImportError::Missing {
            path: path.display().to_string(),
            detail: e.to_string(),
        })?;
    if n == 16 && &head == b"SQLite format 3\0" {
        return Ok(());
    }
    let what = if n == 0 {
        "it is empty".to_owned()
    } else if head.starts_with(b"redb") {
        "it is already an agent-event-bus (redb) store".to_owned()
    } else {
        "it does not start with the SQLite header".to_owned()
    };
    Err(ImportError::NotSqlite {
        path: path.display().to_string(),
        what,
    })
}

/// Refuses a database another process has open (a lock on it or on its
/// `-shm`), or whose `-wal` or `-journal` holds writes not yet in the file.
pub(super) fn check_not_in_use(path: &Path) -> Result<(), ImportError> {
    let in_use = |detail: String| ImportError::InUse {
        path: path.display().to_string(),
        detail,
    };
    let side = |suffix: &str| {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        PathBuf::from(p)
    };
    for suffix in ["-wal", "-journal"] {
        let file = side(suffix);
        if let Ok(meta) = std::fs::metadata(&file)
            && meta.len() > 0
        {
            let age = meta
                .modified()
                .ok()
                .and_then(|m| m.elapsed().ok())
                .map_or_else(String::new, |d| {
                    format!(", last written {}s ago", d.as_secs())
                });
            return Err(in_use(format!(
                "{} holds {} bytes of writes not yet merged into the database{age} (if no \
                 process has it open, the last one did not close cleanly: \
                 `sqlite3 {} 'PRAGMA wal_checkpoint(TRUNCATE);'` merges them)",
                file.display(),
                meta.len(),
                path.display()
            )));
        }
    }
    #[cfg(unix)]
    {
        if let Some(pid) = lock_holder(path, LOCK_BYTES)? {
            return Err(in_use(format!("process {pid} has it open")));
        }
        if let Some(pid) = lock_holder(&side("-shm"), SHM_LOCK_BYTES)? {
            return Err(in_use(format!("process {pid} has it open (WAL)")));
        }
    }
    Ok(())
}

/// The process holding any POSIX lock on `bytes` (start, length) of `file`,
/// asked without taking one; `None` when there is none or no such file.
#[cfg(unix)]
fn lock_holder(file: &Path, (start, length): (u64, u64)) -> Result<Option<String>, ImportError> {
    use rustix::process::{Flock, FlockOffsetType, FlockType, fcntl_getlk};
    let handle = match std::fs::File::open(file) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(ImportError::Missing {
                path: file.display().to_string(),
                detail: e.to_string(),
            });
        }
    };
    let probe = Flock {
        start,
        length,
        pid: None,
        typ: FlockType::WriteLock,
        offset_type: FlockOffsetType::Set,
    };
    match fcntl_getlk(&handle, &probe) {
        Ok(Some(held)) => Ok(Some(held.pid.map_or_else(
            || "(unknown)".to_owned(),
            |p| p.as_raw_nonzero().to_string(),
        ))),
        // No lock held; or a file system without POSIX locks cannot tell, and
        // the after-import check still catches a writer.
        Ok(None) | Err(_) => Ok(None),
    }
}

/// `file:` URI for `path`, read-only and immutable: SQLite takes no locks and
/// creates no `-wal`/`-shm` files (safe once [`check_not_in_use`] passed).
pub(super) fn immutable_uri(path: &Path) -> String {
    let mut uri = String::from("file:");
    for b in path.as_os_str().as_encoded_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'-' | b'_' | b'.' | b'~' => {
                uri.push(char::from(*b));
            }
            _ => uri.push_str(&format!("%{b:02X}")),
        }
    }
    uri.push_str("?mode=ro&immutable=1");
    uri
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_escape_what_sqlite_would_read() {
        assert_eq!(
            immutable_uri(Path::new("/a b/data?.db")),
            "file:/a%20b/data%3F.db?mode=ro&immutable=1"
        );
    }
}
