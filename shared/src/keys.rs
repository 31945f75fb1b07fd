//! Session keys on this machine. The proxy and the CLI ask for a key when
//! they register, send it with every call acting as the session, and keep
//! it in a private file of the state directory (`key-<file_key(session)>`,
//! 0600) where hooks run by the same agent find it once they know the
//! session (through their ancestors, or `--session-id`). The hub keeps only
//! the key's hash.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::client::{ClientError, HubClient};
use crate::state;
use crate::tools::sessions::{RegisterParams, RegisterSession, Registered};
use crate::tools::{Answer, Refusal, Tool};

/// The key file of `session_id` in the state directory `dir`.
pub fn file(dir: &Path, session_id: &str) -> PathBuf {
    dir.join(format!("key-{}", state::file_key(session_id)))
}

/// The key saved on this machine for `session_id`, if any. A state
/// directory that cannot be used (see [`state::dir`]) holds none.
pub fn load(session_id: &str) -> Option<String> {
    let dir = state::dir(None)
        .inspect_err(|e| tracing::debug!("no session keys: {e}"))
        .ok()?;
    let text = std::fs::read_to_string(file(&dir, session_id)).ok()?;
    Some(text.trim().to_owned()).filter(|k| !k.is_empty())
}

/// How long [`load_soon`] waits for a key file its session's proxy is
/// about to write.
pub const SAVE_GRACE: Duration = Duration::from_secs(2);

/// [`load`], waiting up to [`SAVE_GRACE`] for the file to appear: for a
/// keyed session whose proxy is this process's ancestor, which saves the
/// key once the hub's reply reaches it, a moment after the hub lists the
/// session (a hook run as the agent starts can come in between).
pub async fn load_soon(session_id: &str) -> Option<String> {
    let deadline = tokio::time::Instant::now() + SAVE_GRACE;
    loop {
        if let Some(key) = load(session_id) {
            return Some(key);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Saves `key` as `session_id`'s key file, readable by this user only.
pub fn save(session_id: &str, key: &str) -> std::io::Result<()> {
    let dir = state::dir(None).map_err(std::io::Error::other)?;
    state::write_private(&file(&dir, session_id), key)
}

/// Removes `session_id`'s key file (the session was unregistered).
pub fn remove(session_id: &str) {
    if let Ok(dir) = state::dir(None) {
        let path = file(&dir, session_id);
        if let Err(e) = std::fs::remove_file(&path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!("cannot remove the session key file {}: {e}", path.display());
        }
    }
}

/// Calls `T`; when the hub refuses because the session is keyed and this
/// machine has that session's key file (holding a key `hub` is not sending
/// already), calls once more with that key. `hub` keeps sending the key
/// that was answered; a saved key the hub refused too is dropped again.
pub async fn with_saved_key<T: Tool>(
    hub: &HubClient,
    params: &T::Params,
    timeout: Duration,
) -> Result<Answer<T::Reply>, ClientError> {
    let answer = hub.call_within::<T>(params, timeout).await?;
    let Err(Refusal::SessionKeyed { session_id, .. }) = &answer else {
        return Ok(answer);
    };
    let before = hub.session_key();
    let Some(saved) = load(session_id).filter(|k| Some(k) != before.as_ref()) else {
        return Ok(answer);
    };
    hub.set_session_key(Some(saved));
    let again = hub.call_within::<T>(params, timeout).await;
    if !matches!(again, Ok(Ok(_))) {
        hub.set_session_key(before);
    }
    again
}

/// `register_session` asking for a key (`key: true`), with
/// [`with_saved_key`]'s second try. On success `hub` sends the session's
/// key from then on, and the key file holds it (written when the key is
/// new to `hub`, so renewals write nothing).
pub async fn register(
    hub: &HubClient,
    params: &RegisterParams,
    timeout: Duration,
) -> Result<Answer<Registered>, ClientError> {
    let params = RegisterParams {
        key: Some(true),
        ..params.clone()
    };
    let answer = with_saved_key::<RegisterSession>(hub, &params, timeout).await?;
    if let Ok(registered) = &answer
        && let Some(key) = &registered.session_key
        && hub.session_key().as_ref() != Some(key)
    {
        hub.set_session_key(Some(key.clone()));
        if let Err(e) = save(&registered.session_id, key) {
            tracing::warn!(
                "cannot save the session key for hooks: {e}; calls from this process still carry it"
            );
        }
    }
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_files_are_named_by_the_session() {
        let dir = Path::new("/state");
        assert_eq!(file(dir, "abc-1"), Path::new("/state/key-abc-1"));
        assert_ne!(file(dir, "a/b"), file(dir, "a_b"));
        assert!(
            file(dir, "../x")
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("key-"))
        );
    }
}
