//! The 32-byte media key and its 112-byte expansion.

use rand_core::{CryptoRng, RngCore};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::MediaKind;
use super::error::MediaKeyError;

/// Length of a [`MediaKey`].
pub const MEDIA_KEY_LEN: usize = 32;

/// Length of the HKDF expansion: IV, cipher key, MAC key and ref key.
const EXPANDED_LEN: usize = 112;

/// The random 32-byte secret a sender picks for one file and sends inside the E2EE
/// message. Zeroized on drop; `Debug` prints `MediaKey(***)`.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct MediaKey([u8; MEDIA_KEY_LEN]);

impl MediaKey {
    /// A fresh key from `rng`.
    pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        let mut key = Self([0u8; MEDIA_KEY_LEN]);
        rng.fill_bytes(&mut key.0);
        key
    }

    /// Wraps key bytes received in a message. The caller's copy is not zeroized.
    pub fn from_bytes(bytes: [u8; MEDIA_KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// The key bytes, to send inside the encrypted message.
    pub fn as_bytes(&self) -> &[u8; MEDIA_KEY_LEN] {
        &self.0
    }

    /// HKDF-SHA256 (32 zero bytes of salt, `kind`'s info string) to the four keys the
    /// file is encrypted, authenticated and referenced with.
    pub fn expand(&self, kind: MediaKind) -> ExpandedMediaKey {
        let mut okm = Zeroizing::new([0u8; EXPANDED_LEN]);
        crate::crypto::hkdf_sha256(&[], &self.0, kind.info().as_bytes(), &mut okm);
        let mut out = ExpandedMediaKey {
            iv: [0u8; 16],
            cipher_key: [0u8; 32],
            mac_key: [0u8; 32],
            ref_key: [0u8; 32],
        };
        out.iv.copy_from_slice(&okm[0..16]);
        out.cipher_key.copy_from_slice(&okm[16..48]);
        out.mac_key.copy_from_slice(&okm[48..80]);
        out.ref_key.copy_from_slice(&okm[80..112]);
        out
    }
}

impl TryFrom<&[u8]> for MediaKey {
    type Error = MediaKeyError;

    fn try_from(bytes: &[u8]) -> Result<Self, MediaKeyError> {
        let mut key = Self([0u8; MEDIA_KEY_LEN]);
        if bytes.len() != MEDIA_KEY_LEN {
            return Err(MediaKeyError::WrongLength {
                expected: MEDIA_KEY_LEN,
                found: bytes.len(),
            });
        }
        key.0.copy_from_slice(bytes);
        Ok(key)
    }
}

impl PartialEq for MediaKey {
    /// Constant-time.
    fn eq(&self, other: &Self) -> bool {
        crate::crypto::ct_eq(&self.0, &other.0)
    }
}

impl Eq for MediaKey {}

impl std::fmt::Debug for MediaKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MediaKey(***)")
    }
}

/// The 112 bytes a [`MediaKey`] expands to for one [`MediaKind`]: IV `[0:16]`, AES-256 key
/// `[16:48]`, HMAC-SHA256 key `[48:80]` and ref key `[80:112]`. Zeroized on drop; `Debug`
/// shows nothing secret.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct ExpandedMediaKey {
    iv: [u8; 16],
    cipher_key: [u8; 32],
    mac_key: [u8; 32],
    ref_key: [u8; 32],
}

impl ExpandedMediaKey {
    /// The AES-CBC initialisation vector.
    pub fn iv(&self) -> &[u8; 16] {
        &self.iv
    }

    /// The AES-256 key.
    pub fn cipher_key(&self) -> &[u8; 32] {
        &self.cipher_key
    }

    /// The HMAC-SHA256 key.
    pub fn mac_key(&self) -> &[u8; 32] {
        &self.mac_key
    }

    /// The ref key, which the scheme reserves for media references and retries; confide's
    /// encryption does not use it.
    pub fn ref_key(&self) -> &[u8; 32] {
        &self.ref_key
    }
}

impl std::fmt::Debug for ExpandedMediaKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ExpandedMediaKey(***)")
    }
}
