//! Subscriber tokens for unsubscribe and preferences links, and signed
//! values (`sign`) for confirmation links, CSRF tokens and admin sessions.
//!
//! A token is `{subscriber id}.{HMAC-SHA256(key, id, nonce)}`: the nonce is
//! random and stored, the key is `TIDINGS_SECRET` or a random key generated
//! once and stored in the database. With `TIDINGS_SECRET` set, a copy of the
//! database alone does not yield working links. `serve` records which key it
//! uses, and a command that would sign with another refuses to send. MACs
//! are computed and checked (in constant time) by the `hmac` crate.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::MailError;
use crate::store::Store;

/// Hex digits of the MAC kept in a token (128 bits).
const MAC_HEX: usize = 32;
/// Bytes of the MAC kept: the left half of HMAC-SHA256 (RFC 2104 §5 allows
/// truncation to the left-most bits; at least half, 80 bits or more).
const MAC_BYTES: usize = MAC_HEX / 2;
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
        verify_hex(self.hmac(&subscriber_message(id, nonce)), mac)
    }

    /// A MAC over `purpose` and `fields` (hex, 128 bits): for confirmation
    /// links, CSRF tokens and admin sessions. The purpose keeps them apart.
    pub fn sign(&self, purpose: &str, fields: &[&str]) -> String {
        truncated_hex(self.hmac(&signed_message(purpose, fields)))
    }

    /// True when `mac` is `sign(purpose, fields)`; compares in constant time.
    pub(crate) fn verify_signed(&self, purpose: &str, fields: &[&str], mac: &str) -> bool {
        verify_hex(self.hmac(&signed_message(purpose, fields)), mac)
    }

    fn mac(&self, id: i64, nonce: &str) -> String {
        truncated_hex(self.hmac(&subscriber_message(id, nonce)))
    }

    /// HMAC-SHA256 keyed with this key, fed `message`.
    fn hmac(&self, message: &str) -> Hmac<Sha256> {
        // HMAC takes a key of any length (RFC 2104 §2), so this cannot fail.
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(message.as_bytes());
        mac
    }
}

/// What a subscriber token's MAC covers.
fn subscriber_message(id: i64, nonce: &str) -> String {
    format!("tidings-subscriber\0{id}\0{nonce}")
}

/// What `sign` covers: the purpose, then each field after a NUL.
fn signed_message(purpose: &str, fields: &[&str]) -> String {
    let mut message = format!("tidings-{purpose}");
    for field in fields {
        message.push('\0');
        message.push_str(field);
    }
    message
}

/// The MAC's left-most [`MAC_BYTES`] as lower-case hex.
fn truncated_hex(mac: Hmac<Sha256>) -> String {
    hex::encode(&mac.finalize().into_bytes()[..MAC_BYTES])
}

/// True when `given` is the lower-case hex of `mac`'s left-most
/// [`MAC_BYTES`]. The comparison is the crate's constant-time
/// `verify_truncated_left` (`verify_slice` wants all 32 bytes; the tokens in
/// links already sent carry 16).
fn verify_hex(mac: Hmac<Sha256>, given: &str) -> bool {
    let lower_hex = given.len() == MAC_HEX
        && given
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    let Some(tag) = lower_hex.then(|| hex::decode(given).ok()).flatten() else {
        return false;
    };
    mac.verify_truncated_left(&tag).is_ok()
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

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4231 test cases through the key type's own MAC: the full tag,
    /// and the 128-bit truncation Tidings signs with (as test case 5 truncates).
    #[test]
    fn hmac_matches_rfc_4231_test_cases() {
        // Test case 2: key "Jefe".
        let jefe = SigningKey::new("Jefe").hmac("what do ya want for nothing?");
        let full = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
        assert_eq!(hex::encode(jefe.clone().finalize().into_bytes()), full);
        assert_eq!(truncated_hex(jefe.clone()), full[..MAC_HEX]);
        assert!(verify_hex(jefe.clone(), &full[..MAC_HEX]));
        // Test case 6: a key longer than the block is hashed first.
        let long = SigningKey::new([0xaa; 131])
            .hmac("Test Using Larger Than Block-Size Key - Hash Key First");
        assert_eq!(
            hex::encode(long.finalize().into_bytes()),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
        // Any other tag, of any length or case, is refused.
        let mut flipped = full[..MAC_HEX].to_owned();
        flipped.replace_range(31.., "4");
        assert!(!verify_hex(jefe.clone(), &flipped));
        assert!(!verify_hex(jefe.clone(), ""));
        assert!(!verify_hex(jefe.clone(), &full[..30]));
        assert!(!verify_hex(jefe, &full[..MAC_HEX].to_uppercase()));
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
