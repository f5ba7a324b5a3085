//! Room for the post-quantum (Kyber / ML-KEM) prekeys of protocol v4, without a breaking
//! change to the store contract when they arrive.

use zeroize::Zeroizing;

use crate::error::StoreError;

/// Kyber (ML-KEM) prekeys, for protocol v4. Nothing in this release uses it: it is the
/// place v4's handshake will load its KEM prekeys from, reached through
/// [`super::PreKeyStore::kyber_pre_keys`] (default `None`), so a store written today
/// keeps compiling and working when v4 lands, and offers v4 only once it implements this.
///
/// Records are opaque bytes in the record type's own versioned encoding: the store
/// keeps them as given and never interprets them. Unlike a one-time prekey, a Kyber
/// prekey may be a last-resort key that stays after use, so the handshake marks a key
/// used instead of deleting it, and the store deletes it then only if it was saved as a
/// one-time key.
pub trait KyberPreKeyStore: Send + Sync {
    /// The record of the Kyber prekey with this id.
    fn kyber_pre_key(&self, id: u32) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError>;
    /// Stores the record of a Kyber prekey, replacing any other with its id;
    /// `last_resort` keys stay after use.
    fn save_kyber_pre_key(
        &self,
        id: u32,
        record: &[u8],
        last_resort: bool,
    ) -> Result<(), StoreError>;
    /// A session used this Kyber prekey: a one-time key is deleted, a last-resort key
    /// stays.
    fn mark_kyber_pre_key_used(&self, id: u32) -> Result<(), StoreError>;
}
