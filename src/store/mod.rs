//! A small synchronous store for apps that want confide to keep their state.
//!
//! Four narrow traits, one per kind of state, combined as [`ProtocolStore`]. All take
//! `&self` and are `Send + Sync`, so one store can be shared across threads; an
//! implementation guards its own state (see [`InMemoryStore`]). The functions in
//! [`crate::cipher`] load, change a copy, and save only on success.

mod memory;

pub use memory::InMemoryStore;

use crate::Address;
use crate::error::StoreError;
use crate::keys::{IdentityKey, IdentityKeyPair, PreKeyRecord, SignedPreKeyRecord};
use crate::session::SessionRecord;

/// Our identity and what we know of others'.
pub trait IdentityStore: Send + Sync {
    /// Our identity key pair.
    fn local_identity(&self) -> Result<IdentityKeyPair, StoreError>;
    /// Our registration id.
    fn local_registration_id(&self) -> Result<u32, StoreError>;
    /// The identity key we trust for `address`, if any.
    fn identity(&self, address: &Address) -> Result<Option<IdentityKey>, StoreError>;
    /// Records `key` as the trusted identity for `address`, replacing any other.
    fn save_identity(&self, address: &Address, key: &IdentityKey) -> Result<(), StoreError>;
}

/// One-time prekeys.
pub trait PreKeyStore: Send + Sync {
    /// The prekey with this id.
    fn pre_key(&self, id: u32) -> Result<Option<PreKeyRecord>, StoreError>;
    /// Stores a prekey.
    fn save_pre_key(&self, record: &PreKeyRecord) -> Result<(), StoreError>;
    /// Deletes a prekey once a session used it.
    fn remove_pre_key(&self, id: u32) -> Result<(), StoreError>;
}

/// Signed prekeys.
pub trait SignedPreKeyStore: Send + Sync {
    /// The signed prekey with this id.
    fn signed_pre_key(&self, id: u32) -> Result<Option<SignedPreKeyRecord>, StoreError>;
    /// Stores a signed prekey.
    fn save_signed_pre_key(&self, record: &SignedPreKeyRecord) -> Result<(), StoreError>;
}

/// Session records, one per remote device.
pub trait SessionStore: Send + Sync {
    /// The record for `address`, if any.
    fn session(&self, address: &Address) -> Result<Option<SessionRecord>, StoreError>;
    /// Replaces the record for `address`.
    fn save_session(&self, address: &Address, record: &SessionRecord) -> Result<(), StoreError>;
}

/// Everything [`crate::cipher`] needs.
pub trait ProtocolStore: IdentityStore + PreKeyStore + SignedPreKeyStore + SessionStore {}

impl<T: IdentityStore + PreKeyStore + SignedPreKeyStore + SessionStore> ProtocolStore for T {}
