//! The post-quantum (Kyber) prekeys of protocol v4.

use zeroize::Zeroizing;

use crate::error::StoreError;
use crate::keys::PublicKey;

/// One session begun from a Kyber prekey: the Kyber prekey, the signed prekey and the
/// initiator's base key, which together name one handshake. A last-resort Kyber prekey
/// stays after use, so a second handshake with the same triple is a replay, and the
/// store refuses to record it twice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct KyberPreKeyUse {
    /// The Kyber prekey's id.
    pub kyber_pre_key_id: u32,
    /// The signed (EC) prekey's id.
    pub signed_pre_key_id: u32,
    /// The initiator's base key.
    pub base_key: PublicKey,
}

impl KyberPreKeyUse {
    /// The use of Kyber prekey `kyber_pre_key_id` with signed prekey `signed_pre_key_id`
    /// by the handshake whose base key is `base_key`.
    pub const fn new(kyber_pre_key_id: u32, signed_pre_key_id: u32, base_key: PublicKey) -> Self {
        Self {
            kyber_pre_key_id,
            signed_pre_key_id,
            base_key,
        }
    }
}

/// Kyber prekeys, for protocol v4, reached through
/// [`super::PreKeyStore::kyber_pre_keys`] (default `None`: such a store offers v3 only).
///
/// Records are opaque bytes in the record type's own versioned encoding
/// (`keys::KyberPreKeyRecord`): the store keeps them as given and never
/// interprets them. Unlike a one-time prekey, a Kyber prekey may be a last-resort key
/// that stays after use, so the handshake marks a key used instead of deleting it, and
/// the store deletes it then only if it was saved as a one-time key.
pub trait KyberPreKeyStore: Send + Sync {
    /// The record of the Kyber prekey with this id.
    fn kyber_pre_key(&self, id: u32) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError>;
    /// Stores the record of a Kyber prekey, replacing any other with its id (and
    /// forgetting the uses recorded for that id); `last_resort` keys stay after use.
    fn save_kyber_pre_key(
        &self,
        id: u32,
        record: &[u8],
        last_resort: bool,
    ) -> Result<(), StoreError>;
    /// Whether `used` is already recorded: a last-resort key's handshake seen before.
    fn kyber_pre_key_used(&self, used: &KyberPreKeyUse) -> Result<bool, StoreError>;
    /// A session began from this Kyber prekey: a one-time key is deleted, a last-resort
    /// key stays and the use is recorded. `false` (and nothing changed) when the use
    /// was already recorded.
    fn mark_kyber_pre_key_used(&self, used: &KyberPreKeyUse) -> Result<bool, StoreError>;
}
