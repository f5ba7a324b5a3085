//! Chain keys: the symmetric ratchet that gives one message key per message.

use zeroize::{Zeroize, ZeroizeOnDrop};

use super::message_keys::MessageKeys;
use crate::crypto;

const MESSAGE_KEY_SEED: [u8; 1] = [0x01];
const CHAIN_KEY_SEED: [u8; 1] = [0x02];

/// A chain key and the index of the next message it gives a key for.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct ChainKey {
    key: [u8; 32],
    index: u32,
}

impl ChainKey {
    pub(crate) fn new(key: [u8; 32], index: u32) -> Self {
        Self { key, index }
    }

    pub(crate) fn key(&self) -> &[u8; 32] {
        &self.key
    }

    pub(crate) fn index(&self) -> u32 {
        self.index
    }

    /// HMAC(chain key, 0x01): the seed the message keys are expanded from.
    pub(crate) fn message_key_seed(&self) -> [u8; 32] {
        crypto::hmac_sha256(&self.key, &[&MESSAGE_KEY_SEED])
    }

    /// The message keys for `self.index()`.
    pub(crate) fn message_keys(&self) -> MessageKeys {
        let mut seed = self.message_key_seed();
        let keys = MessageKeys::derive(&seed);
        seed.zeroize();
        keys
    }

    /// HMAC(chain key, 0x02), one index on; `None` once the u32 counter is used up,
    /// so a counter can never wrap and repeat a key.
    pub(crate) fn next(&self) -> Option<ChainKey> {
        Some(ChainKey {
            key: crypto::hmac_sha256(&self.key, &[&CHAIN_KEY_SEED]),
            index: self.index.checked_add(1)?,
        })
    }
}

impl std::fmt::Debug for ChainKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChainKey")
            .field("key", &"***")
            .field("index", &self.index)
            .finish()
    }
}
