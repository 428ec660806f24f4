//! Subscriber tokens for unsubscribe and preferences links, and signed
//! values (`sign`) for confirmation links, CSRF tokens and admin sessions.
//!
//! A token is `{subscriber id}.{HMAC-SHA256(key, id, nonce)}`: the nonce is
//! random and stored, the key is `TIDINGS_SECRET` or a random key generated
//! once and stored in the database. With `TIDINGS_SECRET` set, a copy of the
//! database alone does not yield working links. `serve` records which key it
//! uses, and a command that would sign with another refuses to send. Checked in constant time.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::MailError;
use crate::store::Store;

/// Hex digits of the MAC kept in a token (128 bits).
const MAC_HEX: usize = 32;
/// The `settings` row holding a generated key.
const KEY_SETTING: &str = "token_signing_key";
/// The `settings` row saying which key `tidings serve` signs with.
const DAEMON_KEY_SETTING: &str = "daemon_signing_key";
/// Its value when `serve` uses the stored key.
const STORED_MARKER: &str = "stored";

/// The key tokens are signed with. `Debug` does not show it.
#[derive(Clone)]
pub struct SigningKey(Vec<u8>);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(***)")
    }
}

impl SigningKey {
    /// A key from bytes (for tests and `TIDINGS_SECRET`).
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self(bytes.into())
    }

    /// The key of `tidings serve`: `secret` (from `TIDINGS_SECRET`) if given,
    /// else the stored key. Records which (for a secret, its fingerprint) so
    /// that a command run with another key refuses to send (see `load`).
    pub(crate) async fn for_daemon(
        store: &Store,
        secret: Option<String>,
    ) -> Result<Self, MailError> {
        let with_secret = secret.is_some();
        let key = Self::resolve(store, secret).await?;
        store
            .set_setting(DAEMON_KEY_SETTING, &key.marker(with_secret))
            .await?;
        Ok(key)
    }

    /// The key of a command: `secret` if given, else the stored key (created
    /// once, whichever process comes first). Refused when `tidings serve`
    /// signs with another key: links in what this command sends would not work there.
    pub async fn load(store: &Store, secret: Option<String>) -> Result<Self, MailError> {
        let with_secret = secret.is_some();
        let key = Self::resolve(store, secret).await?;
        let Some(daemon) = store.setting(DAEMON_KEY_SETTING).await? else {
            return Ok(key);
        };
        if daemon == key.marker(with_secret) {
            return Ok(key);
        }
        Err(MailError::KeyMismatch(
            match (daemon == STORED_MARKER, with_secret) {
                (true, _) => {
                    "TIDINGS_SECRET is set here, but `tidings serve` runs without it \
                    (it signs links with the key stored in the database): unset TIDINGS_SECRET \
                    for this command, or the unsubscribe and preferences links in what it sends \
                    would not work"
                }
                (false, false) => {
                    "TIDINGS_SECRET is not set, but `tidings serve` was started with \
                    it: set the same TIDINGS_SECRET for this command, or the unsubscribe and \
                    preferences links in what it sends would not work"
                }
                (false, true) => {
                    "TIDINGS_SECRET differs from the one `tidings serve` was started \
                    with: use the same value, or the unsubscribe and preferences links in what \
                    this command sends would not work"
                }
            }
            .to_owned(),
        ))
    }

    async fn resolve(store: &Store, secret: Option<String>) -> Result<Self, MailError> {
        if let Some(secret) = secret {
            return Ok(Self(secret.into_bytes()));
        }
        let fresh = random_hex(32)?;
        let stored = store.setting_or_insert(KEY_SETTING, &fresh).await?;
        Ok(Self(stored.into_bytes()))
    }

    /// How `serve` records its key: `stored`, or `secret:` and a MAC that
    /// tells two secrets apart without revealing them.
    fn marker(&self, with_secret: bool) -> String {
        if with_secret {
            format!("secret:{}", self.sign("secret-fingerprint", &[]))
        } else {
            STORED_MARKER.to_owned()
        }
    }

    /// The token for subscriber `id` with stored `nonce`.
    pub fn token(&self, id: i64, nonce: &str) -> String {
        format!("{id}.{}", self.mac(id, nonce))
    }

    /// True when `mac` is the MAC of (`id`, `nonce`); compares in constant time.
    pub fn verify(&self, id: i64, nonce: &str, mac: &str) -> bool {
        let expected = self.mac(id, nonce);
        expected.as_bytes().ct_eq(mac.as_bytes()).into()
    }

    /// A MAC over `purpose` and `fields` (hex, 128 bits): for confirmation
    /// links, CSRF tokens and admin sessions. The purpose keeps them apart.
    pub fn sign(&self, purpose: &str, fields: &[&str]) -> String {
        let mut message = format!("tidings-{purpose}");
        for field in fields {
            message.push('\0');
            message.push_str(field);
        }
        let mut mac = hex::encode(hmac_sha256(&self.0, message.as_bytes()));
        mac.truncate(MAC_HEX);
        mac
    }

    /// True when `mac` is `sign(purpose, fields)`; compares in constant time.
    pub(crate) fn verify_signed(&self, purpose: &str, fields: &[&str], mac: &str) -> bool {
        let expected = self.sign(purpose, fields);
        expected.as_bytes().ct_eq(mac.as_bytes()).into()
    }

    fn mac(&self, id: i64, nonce: &str) -> String {
        let message = format!("tidings-subscriber\0{id}\0{nonce}");
        let mut mac = hex::encode(hmac_sha256(&self.0, message.as_bytes()));
        mac.truncate(MAC_HEX);
        mac
    }
}

/// Split a token into the subscriber id and the MAC, if it has that shape.
pub fn split(token: &str) -> Option<(i64, &str)> {
    let (id, mac) = token.split_once('.')?;
    let ok = mac.len() == MAC_HEX && mac.bytes().all(|b| b.is_ascii_hexdigit());
    ok.then_some(())?;
    id.parse().ok().map(|id| (id, mac))
}

/// `bytes` random bytes as hex, from the operating system.
pub(crate) fn random_hex(bytes: usize) -> Result<String, MailError> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| MailError::Random(e.to_string()))?;
    Ok(hex::encode(buf))
}

/// HMAC-SHA256 (RFC 2104) over the `sha2` crate already used for fingerprints.
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.map(|b| b ^ byte);
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_test_cases() {
        // Test case 2: key "Jefe".
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Test case 6: a key longer than the block is hashed first.
        let mac = hmac_sha256(
            &[0xaa; 131],
            b"Test Using Larger Than Block-Size Key - Hash Key First",
        );
        assert_eq!(
            hex::encode(mac),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn tokens_verify_only_for_their_subscriber_nonce_and_key() {
        let key = SigningKey::new("k1");
        let token = key.token(7, "nonce");
        let (id, mac) = split(&token).unwrap();
        assert_eq!(id, 7);
        assert!(key.verify(7, "nonce", mac));
        assert!(!key.verify(8, "nonce", mac));
        assert!(!key.verify(7, "other", mac));
        assert!(!SigningKey::new("k2").verify(7, "nonce", mac));
        assert_eq!(split("7.xyz"), None);
        assert_eq!(split("x.00000000000000000000000000000000"), None);
    }
}
