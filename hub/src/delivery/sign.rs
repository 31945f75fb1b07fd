//! The two signature headers a receiver can check: the original's
//! `X-Event-Bus-Signature` and Standard Webhooks' `webhook-signature`.

use std::fmt::Write as _;

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// `sha256=<hex HMAC-SHA256 of body>`: the original's signature header value.
pub fn legacy_signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut hex = String::with_capacity(2 * digest.len());
    for b in digest {
        // Writing into a String cannot fail.
        let _ = write!(hex, "{b:02x}");
    }
    format!("sha256={hex}")
}

/// Standard Webhooks: `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`,
/// keyed with the secret's bytes (a Standard Webhooks library takes the
/// same key as `whsec_` + base64 of the secret).
pub fn standard_signature(key: &[u8], id: &str, timestamp: u64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_match_known_vectors() {
        // RFC 4231 test case 2.
        let sig = legacy_signature("Jefe", b"what do ya want for nothing?");
        assert_eq!(
            sig,
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // The Standard Webhooks / Svix published vector: secret
        // whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw (the key is its base64 part).
        let key = base64::engine::general_purpose::STANDARD
            .decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
            .unwrap();
        assert_eq!(
            standard_signature(
                &key,
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1_614_265_330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }
}
