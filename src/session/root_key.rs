//! The root key: advanced by one DH ratchet step per round trip.

use zeroize::{Zeroize, ZeroizeOnDrop};

use super::chain_key::ChainKey;
use crate::crypto;
use crate::keys::{PrivateKey, PublicKey};

const RATCHET_INFO: &[u8] = b"WhisperRatchet";

/// The 32-byte root key of a Double Ratchet.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct RootKey([u8; 32]);

impl RootKey {
    pub(crate) fn new(key: [u8; 32]) -> Self {
        Self(key)
    }

    pub(crate) fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// One DH ratchet step: HKDF(salt = root key, DH(ours, theirs), "WhisperRatchet")
    /// gives the next root key and a fresh chain key. `None` for a low-order key.
    pub(crate) fn create_chain(
        &self,
        theirs: &PublicKey,
        ours: &PrivateKey,
    ) -> Option<(RootKey, ChainKey)> {
        #[cfg(test)]
        super::work::agreement();
        let shared = ours.agree(theirs)?;
        let mut okm = [0u8; 64];
        crypto::hkdf_sha256(&self.0, shared.as_ref(), RATCHET_INFO, &mut okm);
        let (root, chain) = split_64(&okm);
        okm.zeroize();
        Some((RootKey(root), ChainKey::new(chain, 0)))
    }
}

/// Splits 64 bytes into two 32-byte halves.
pub(crate) fn split_64(okm: &[u8; 64]) -> ([u8; 32], [u8; 32]) {
    let mut a = [0u8; 32];
    let mut b = [0u8; 32];
    a.copy_from_slice(&okm[..32]);
    b.copy_from_slice(&okm[32..]);
    (a, b)
}

impl std::fmt::Debug for RootKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RootKey(***)")
    }
}
