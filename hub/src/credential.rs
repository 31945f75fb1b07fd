//! The hub's credential, and the privacy of the files beside it. The token
//! is the one given (`--token`, `AGENT_EVENT_BUS_TOKEN`), else the one in
//! the token file beside the database, which the hub makes at its first
//! start: 32 random bytes in hex, mode 0600, never logged. The directory
//! the hub makes for its data is 0700 (the default one is made so when it
//! is open to others), and the database file is 0600.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

pub use shared::config::Credential;
use shared::config::TokenSource;

/// Random bytes in a made token.
const TOKEN_BYTES: usize = 32;

/// Why the hub cannot set up its credential or data directory.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("cannot create the data directory {path}: {source}")]
    Dir { path: PathBuf, source: io::Error },
    #[error(
        "the token file {path} is not a regular file (a link or a directory?); \
         remove it and start the hub again: it writes a new one"
    )]
    NotAFile { path: PathBuf },
    #[error(
        "the token file {path} belongs to another user (uid {owner}); remove it and start \
         the hub again: it writes a new one"
    )]
    Owner { path: PathBuf, owner: u32 },
    #[error(
        "the token file {path} does not hold a token (one line of printable characters); \
         remove it and start the hub again: it writes a new one"
    )]
    Invalid { path: PathBuf },
    #[error("cannot read or write the token file {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

/// A credential given on the command line or in the environment.
pub fn given_token(token: &str) -> Credential {
    Credential {
        token: token.to_owned(),
        source: TokenSource::Given,
    }
}

/// Creates the database's directory (0700, with its missing parents) when
/// it does not exist. The default data directory is made 0700 when it is
/// open to others (logged); another directory the user chose is left as it
/// is, with a warning, since the hub's files in it are 0600 anyway.
pub fn prepare_data_dir(db: &Path) -> Result<(), CredentialError> {
    let Some(dir) = db.parent().filter(|d| !d.as_os_str().is_empty()) else {
        return Ok(());
    };
    if !dir.exists() {
        return fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|source| CredentialError::Dir {
                path: dir.to_owned(),
                source,
            });
    }
    let Ok(meta) = fs::metadata(dir) else {
        return Ok(());
    };
    let mode = meta.mode() & 0o7777;
    if !open_to_others(mode) {
        return Ok(());
    }
    let mine = meta.uid() == rustix::process::geteuid().as_raw();
    let default = shared::config::data_dir().is_some_and(|d| d == dir);
    if mine && default {
        match fs::set_permissions(dir, fs::Permissions::from_mode(0o700)) {
            Ok(()) => tracing::info!(
                dir = %dir.display(),
                was = format!("{mode:04o}"),
                "made the data directory private (0700)"
            ),
            Err(e) => {
                tracing::warn!(dir = %dir.display(), "cannot make the data directory private: {e}");
            }
        }
    } else {
        tracing::warn!(
            dir = %dir.display(),
            mode = format!("{mode:04o}"),
            "the database's directory is open to other users; the hub's files in it are 0600, but a private directory (chmod 700) is safer"
        );
    }
    Ok(())
}

/// Makes the database file 0600. A store an older version made readable
/// by others (0644) is tightened with a log line (`existed`: it was there
/// before this start; a new one is made private silently).
pub fn make_store_private(db: &Path, existed: bool) {
    let Ok(meta) = fs::metadata(db) else {
        return;
    };
    let mode = meta.mode() & 0o7777;
    if !open_to_others(mode) {
        return;
    }
    match fs::set_permissions(db, fs::Permissions::from_mode(0o600)) {
        Ok(()) if existed => tracing::info!(
            db = %db.display(),
            was = format!("{mode:04o}"),
            "made the database file private (0600)"
        ),
        Ok(()) => {}
        Err(e) => tracing::warn!(db = %db.display(), "cannot make the database file private: {e}"),
    }
}

/// The hub's credential: `given` when there is one (no file is written),
/// else the token in the file beside `db`, made now when missing. A token
/// file others could read or write is replaced by a new one (logged): its
/// token may be known.
pub fn load_or_create(given: Option<&str>, db: &Path) -> Result<Credential, CredentialError> {
    let path = shared::config::token_file_beside(db);
    if let Some(token) = given.map(str::trim).filter(|t| !t.is_empty()) {
        if path.exists() {
            tracing::warn!(
                file = %path.display(),
                "a token file exists but the hub was given its token; clients that read the file are refused: remove it, or give them AGENT_EVENT_BUS_TOKEN"
            );
        }
        return Ok(given_token(token));
    }
    let io = |source| CredentialError::Io {
        path: path.clone(),
        source,
    };
    match fs::symlink_metadata(&path) {
        Ok(meta) => {
            if !meta.file_type().is_file() {
                return Err(CredentialError::NotAFile { path });
            }
            if meta.uid() != rustix::process::geteuid().as_raw() {
                return Err(CredentialError::Owner {
                    path,
                    owner: meta.uid(),
                });
            }
            let mode = meta.mode() & 0o777;
            if open_to_others(mode) {
                tracing::warn!(
                    file = %path.display(),
                    mode = format!("{mode:04o}"),
                    "the token file was open to other users, so its token may be known: it is replaced by a new one (restart this user's proxies)"
                );
                return create(&path);
            }
            let text = fs::read_to_string(&path).map_err(io)?;
            let token = text.trim();
            if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(CredentialError::Invalid { path });
            }
            Ok(Credential {
                token: token.to_owned(),
                source: TokenSource::File(path),
            })
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => create(&path),
        Err(e) => Err(io(e)),
    }
}

/// Writes a new random token to `path`, 0600, whole or not at all (a
/// temporary file beside it, flushed to disk, then renamed over it).
fn create(path: &Path) -> Result<Credential, CredentialError> {
    let io = |source| CredentialError::Io {
        path: path.to_owned(),
        source,
    };
    let token = new_token().map_err(io)?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let _ = fs::remove_file(&tmp);
    // create_new (O_EXCL) never follows a link planted at `tmp`, and the
    // rename replaces whatever is at `path` rather than writing through it.
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io)?;
    let written = file
        .write_all(format!("{token}\n").as_bytes())
        .and_then(|()| file.sync_all())
        .and_then(|()| fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(io(e));
    }
    tracing::info!(file = %path.display(), "made the hub's credential (a new token file, readable by this user only)");
    Ok(Credential {
        token,
        source: TokenSource::File(path.to_owned()),
    })
}

/// [`TOKEN_BYTES`] from the operating system's random source, in hex.
fn new_token() -> io::Result<String> {
    use rand::TryRngCore;
    let mut bytes = [0u8; TOKEN_BYTES];
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(io::Error::other)?;
    let mut hex = String::with_capacity(2 * TOKEN_BYTES);
    for b in bytes {
        hex.push_str(&format!("{b:02x}"));
    }
    Ok(hex)
}

/// Whether a file mode lets anyone but its owner in (group or other bits).
fn open_to_others(mode: u32) -> bool {
    mode & 0o077 != 0
}

/// The live view's address with the credential in its fragment, which a
/// browser keeps to itself (it is never sent to the server, so it reaches
/// no log); the page moves it into the tab's session storage.
pub fn live_view_url(base: &str, token: &str) -> String {
    format!("{}/#token={token}", base.trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().mode() & 0o777
    }

    #[test]
    fn a_token_is_made_once_kept_private_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("nested/data.redb");
        prepare_data_dir(&db).unwrap();
        assert_eq!(mode(&dir.path().join("nested")), 0o700);
        let made = load_or_create(None, &db).unwrap();
        assert_eq!(made.token.len(), 2 * TOKEN_BYTES);
        assert!(made.token.bytes().all(|b| b.is_ascii_hexdigit()));
        let file = made.file().unwrap().to_owned();
        assert_eq!(file, dir.path().join("nested/token"));
        assert_eq!(mode(&file), 0o600);
        let again = load_or_create(None, &db).unwrap();
        assert_eq!(again.token, made.token, "the same token at each start");
        assert!(!format!("{again:?}").contains(&made.token));

        // Open to others: its token may be known, so a new one is made.
        fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
        let replaced = load_or_create(None, &db).unwrap();
        assert_ne!(replaced.token, made.token);
        assert_eq!(mode(&file), 0o600);

        fs::write(&file, "two words\n").unwrap();
        assert!(matches!(
            load_or_create(None, &db),
            Err(CredentialError::Invalid { .. })
        ));
        fs::remove_file(&file).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", &file).unwrap();
        assert!(matches!(
            load_or_create(None, &db),
            Err(CredentialError::NotAFile { .. })
        ));
    }

    #[test]
    fn a_given_token_writes_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("data.redb");
        let given = load_or_create(Some(" s3cret "), &db).unwrap();
        assert_eq!(given.token, "s3cret");
        assert!(given.file().is_none());
        assert!(!dir.path().join("token").exists());
    }

    #[test]
    fn a_store_left_readable_is_made_private() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("data.redb");
        fs::write(&db, "x").unwrap();
        fs::set_permissions(&db, fs::Permissions::from_mode(0o644)).unwrap();
        make_store_private(&db, true);
        assert_eq!(mode(&db), 0o600);
    }

    #[test]
    fn the_live_view_url_carries_the_token_in_its_fragment() {
        assert_eq!(
            live_view_url("http://127.0.0.1:8080/", "abc"),
            "http://127.0.0.1:8080/#token=abc"
        );
    }
}
