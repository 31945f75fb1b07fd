//! Session keys: the one place that decides whether a call may act as a
//! session. A session registered with `key: true` gets a random key; the
//! hub stores only its SHA-256 and compares digests in constant time.
//! Every call that acts as a keyed session — publishing as it, consuming
//! or acking its events, reads naming it, claims, receipt reports,
//! renewals, unregistering or re-registering it — must present the key in
//! the session-key header; without it the call is refused and nothing
//! changes. A keyless session (a client of the original) is open to any
//! caller, as before.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use shared::tools::Refusal;

use crate::caller::Caller;
use crate::store::{SessionRecord, StoreError, Tx};

/// The session key a call presented, hashed once per call.
#[derive(Debug, Clone, Default)]
pub struct Presented(Option<[u8; 32]>);

impl Presented {
    /// What `caller` presented (its session-key header).
    pub fn of(caller: &Caller) -> Self {
        Self(caller.session_key.as_deref().map(digest))
    }

    /// Whether a call presenting this may act as `session`: always for a
    /// keyless session, else only with its key.
    pub fn may_act_as(&self, session: &SessionRecord) -> Result<(), Refusal> {
        let Some(stored) = &session.key_hash else {
            return Ok(());
        };
        match &self.0 {
            Some(given) if constant_time_eq(encode(given).as_bytes(), stored.as_bytes()) => Ok(()),
            given => Err(Refusal::keyed(&session.id, given.is_some())),
        }
    }

    /// [`Presented::may_act_as`] for session `id` as `tx` has it; a
    /// session the hub does not know is no one to act as, so it passes.
    pub fn may_act_as_id(&self, tx: &Tx<'_>, id: &str) -> Result<Result<(), Refusal>, StoreError> {
        Ok(match tx.session(id)? {
            Some(session) => self.may_act_as(&session),
            None => Ok(()),
        })
    }
}

/// A new session key and its stored form (the hash).
pub fn mint() -> (String, String) {
    let key = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    let stored = encode(&digest(&key));
    (key, stored)
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// A digest as stored in a session row.
fn encode(digest: &[u8; 32]) -> String {
    URL_SAFE_NO_PAD.encode(digest)
}

/// Compares without an early exit, so timing does not reveal the digest.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(key: Option<&str>) -> Caller {
        Caller {
            session_key: key.map(str::to_owned),
            ..Caller::internal()
        }
    }

    fn session(key_hash: Option<String>) -> SessionRecord {
        SessionRecord {
            key_hash,
            ..crate::store::testing::session("s")
        }
    }

    #[test]
    fn only_the_key_acts_as_a_keyed_session() {
        let (key, stored) = mint();
        let (other, _) = mint();
        assert_ne!(key, other, "keys are random");
        assert!(!stored.contains(&key), "only the hash is stored");
        let keyed = session(Some(stored));
        assert_eq!(
            Presented::of(&caller(Some(&key))).may_act_as(&keyed),
            Ok(())
        );
        assert_eq!(
            Presented::of(&caller(None)).may_act_as(&keyed),
            Err(Refusal::keyed("s", false))
        );
        assert_eq!(
            Presented::of(&caller(Some(&other))).may_act_as(&keyed),
            Err(Refusal::keyed("s", true))
        );
        // A keyless session is open to every caller, key or not.
        let open = session(None);
        for c in [caller(None), caller(Some(&key))] {
            assert_eq!(Presented::of(&c).may_act_as(&open), Ok(()));
        }
    }
}
