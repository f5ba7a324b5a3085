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

    /// The message keys for `self.index()` (derived with `salt`, see
    /// [`MessageKeys::derive`]) and the next chain key, keying HMAC once. The next key
    /// is `None` once the u32 counter is used up.
    pub(crate) fn step(&self, salt: Option<&[u8]>) -> (MessageKeys, Option<ChainKey>) {
        let (mut seed, next) = self.seed_and_next();
        let keys = MessageKeys::derive(&seed, salt);
        seed.zeroize();
        (keys, next)
    }

    /// The message-key seed for `self.index()` and the next chain key, keying HMAC once.
    pub(crate) fn seed_and_next(&self) -> ([u8; 32], Option<ChainKey>) {
        #[cfg(test)]
        super::work::chain_step();
        let (seed, mut next_key) =
            crypto::hmac_sha256_two(&self.key, &MESSAGE_KEY_SEED, &CHAIN_KEY_SEED);
        let next = self.index.checked_add(1).map(|index| ChainKey {
            key: next_key,
            index,
        });
        next_key.zeroize();
        (seed, next)
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
