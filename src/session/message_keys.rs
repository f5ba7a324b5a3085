//! The per-message keys: the 80-byte "WhisperMessageKeys" expansion of a seed.

use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::crypto;

const MESSAGE_KEYS_INFO: &[u8] = b"WhisperMessageKeys";

/// AES-256 key, HMAC-SHA256 key and CBC IV for one message.
#[derive(Zeroize, ZeroizeOnDrop)]
pub(crate) struct MessageKeys {
    cipher_key: [u8; 32],
    mac_key: [u8; 32],
    iv: [u8; 16],
}

impl MessageKeys {
    /// HKDF-SHA256(salt, seed, "WhisperMessageKeys") → cipher[0..32] ‖ mac[32..64] ‖
    /// iv[64..80]. v3 uses no salt (`None`, HKDF's all-zero default).
    pub(crate) fn derive(seed: &[u8; 32], salt: Option<&[u8]>) -> Self {
        let mut okm = [0u8; 80];
        crypto::hkdf_sha256(salt.unwrap_or(&[]), seed, MESSAGE_KEYS_INFO, &mut okm);
        let mut keys = Self {
            cipher_key: [0u8; 32],
            mac_key: [0u8; 32],
            iv: [0u8; 16],
        };
        keys.cipher_key.copy_from_slice(&okm[..32]);
        keys.mac_key.copy_from_slice(&okm[32..64]);
        keys.iv.copy_from_slice(&okm[64..]);
        okm.zeroize();
        keys
    }

    pub(crate) fn cipher_key(&self) -> &[u8; 32] {
        &self.cipher_key
    }

    pub(crate) fn mac_key(&self) -> &[u8; 32] {
        &self.mac_key
    }

    pub(crate) fn iv(&self) -> &[u8; 16] {
        &self.iv
    }
}

impl std::fmt::Debug for MessageKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MessageKeys(***)")
    }
}
