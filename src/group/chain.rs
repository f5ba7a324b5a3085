//! The sender-key chain: `HMAC(chain, 0x01)` is a message-key seed, `HMAC(chain, 0x02)`
//! the next chain key, and each seed expands with HKDF info `"WhisperGroup"` into
//! 48 bytes: the CBC IV, then the AES-256 key.

use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::crypto;

const MESSAGE_KEY_SEED: [u8; 1] = [0x01];
const CHAIN_KEY_SEED: [u8; 1] = [0x02];
const INFO: &[u8] = b"WhisperGroup";

/// One position of a sender-key chain. Zeroized on drop; `Debug` shows only the iteration.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct SenderChainKey {
    iteration: u32,
    key: [u8; 32],
}

impl SenderChainKey {
    /// Takes the key by reference and copies it straight into the zeroized struct, so
    /// callers never hand over (and leave behind) an unwiped copy.
    pub(crate) fn new(iteration: u32, key: &[u8; 32]) -> Self {
        Self {
            iteration,
            key: *key,
        }
    }

    pub(crate) fn iteration(&self) -> u32 {
        self.iteration
    }

    pub(crate) fn key(&self) -> &[u8; 32] {
        &self.key
    }

    /// The message-key seed for this iteration and the chain key of the next one
    /// (`None` when the iteration counter is exhausted).
    pub(crate) fn step(&self) -> (MessageKeySeed, Option<SenderChainKey>) {
        let (mut seed, mut next) =
            crypto::hmac_sha256_two(&self.key, &MESSAGE_KEY_SEED, &CHAIN_KEY_SEED);
        let message_seed = MessageKeySeed {
            iteration: self.iteration,
            seed,
        };
        let next_chain = self
            .iteration
            .checked_add(1)
            .map(|iteration| SenderChainKey::new(iteration, &next));
        // The HMAC outputs are plain arrays: wipe them once copied into zeroizing owners.
        seed.zeroize();
        next.zeroize();
        (message_seed, next_chain)
    }
}

impl std::fmt::Debug for SenderChainKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SenderChainKey {{ iteration: {}, key: *** }}",
            self.iteration
        )
    }
}

/// The 32-byte seed of one message key, as kept for skipped iterations.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct MessageKeySeed {
    pub(crate) iteration: u32,
    pub(crate) seed: [u8; 32],
}

impl MessageKeySeed {
    /// Expands the seed into the CBC IV and the AES-256 key.
    pub(crate) fn keys(&self) -> MessageKeys {
        let mut okm = [0u8; 48];
        crypto::hkdf_sha256(&[], &self.seed, INFO, &mut okm);
        let mut keys = MessageKeys {
            iv: [0u8; 16],
            cipher_key: [0u8; 32],
        };
        keys.iv.copy_from_slice(&okm[..16]);
        keys.cipher_key.copy_from_slice(&okm[16..]);
        okm.zeroize();
        keys
    }
}

impl std::fmt::Debug for MessageKeySeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "MessageKeySeed {{ iteration: {}, seed: *** }}",
            self.iteration
        )
    }
}

/// The IV and AES-256 key of one group message.
#[derive(Zeroize, ZeroizeOnDrop)]
pub(crate) struct MessageKeys {
    pub(crate) iv: [u8; 16],
    pub(crate) cipher_key: [u8; 32],
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_steps_and_debug_is_redacted() {
        let ck = SenderChainKey::new(7, &[1u8; 32]);
        let (seed, next) = ck.step();
        assert_eq!(seed.iteration, 7);
        let next = next.unwrap();
        assert_eq!(next.iteration(), 8);
        assert_ne!(next.key(), ck.key());
        assert_eq!(
            format!("{ck:?}"),
            "SenderChainKey { iteration: 7, key: *** }"
        );
        assert_eq!(
            format!("{seed:?}"),
            "MessageKeySeed { iteration: 7, seed: *** }"
        );
        assert!(SenderChainKey::new(u32::MAX, &[0u8; 32]).step().1.is_none());
    }
}
