//! An in-memory [`super::ProtocolStore`], for tests and for apps that persist elsewhere.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use rand_core::{CryptoRng, RngCore};

use super::{IdentityStore, PreKeyStore, SenderKeyStore, SessionStore, SignedPreKeyStore};
use crate::Address;
use crate::error::StoreError;
use crate::group::{DistributionId, SenderKeyRecord};
use crate::keys::{
    IdentityKey, IdentityKeyPair, PreKeyRecord, SignedPreKeyRecord, generate_registration_id,
};
use crate::session::SessionRecord;

#[derive(Default)]
struct Inner {
    identities: HashMap<Address, IdentityKey>,
    pre_keys: HashMap<u32, PreKeyRecord>,
    signed_pre_keys: HashMap<u32, SignedPreKeyRecord>,
    sessions: HashMap<Address, SessionRecord>,
    sender_keys: HashMap<(Address, DistributionId), SenderKeyRecord>,
}

/// Keeps everything in memory behind one mutex.
pub struct InMemoryStore {
    identity: IdentityKeyPair,
    registration_id: u32,
    inner: Mutex<Inner>,
}

impl InMemoryStore {
    /// A store for the device with this identity.
    pub fn new(identity: IdentityKeyPair, registration_id: u32) -> Self {
        Self {
            identity,
            registration_id,
            inner: Mutex::default(),
        }
    }

    /// A store for a new device with a fresh identity and registration id.
    pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        let identity = IdentityKeyPair::generate(rng);
        let registration_id = generate_registration_id(rng);
        Self::new(identity, registration_id)
    }

    fn lock(&self) -> Result<MutexGuard<'_, Inner>, StoreError> {
        self.inner
            .lock()
            .map_err(|_| StoreError::Backend("in-memory store lock poisoned".into()))
    }
}

impl std::fmt::Debug for InMemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InMemoryStore")
            .field("identity", self.identity.identity_key())
            .finish_non_exhaustive()
    }
}

impl IdentityStore for InMemoryStore {
    fn local_identity(&self) -> Result<IdentityKeyPair, StoreError> {
        Ok(self.identity.clone())
    }

    fn local_registration_id(&self) -> Result<u32, StoreError> {
        Ok(self.registration_id)
    }

    fn identity(&self, address: &Address) -> Result<Option<IdentityKey>, StoreError> {
        Ok(self.lock()?.identities.get(address).copied())
    }

    fn save_identity(&self, address: &Address, key: &IdentityKey) -> Result<(), StoreError> {
        self.lock()?.identities.insert(address.clone(), *key);
        Ok(())
    }
}

impl PreKeyStore for InMemoryStore {
    fn pre_key(&self, id: u32) -> Result<Option<PreKeyRecord>, StoreError> {
        Ok(self.lock()?.pre_keys.get(&id).cloned())
    }

    fn save_pre_key(&self, record: &PreKeyRecord) -> Result<(), StoreError> {
        self.lock()?.pre_keys.insert(record.id(), record.clone());
        Ok(())
    }

    fn remove_pre_key(&self, id: u32) -> Result<(), StoreError> {
        self.lock()?.pre_keys.remove(&id);
        Ok(())
    }
}

impl SignedPreKeyStore for InMemoryStore {
    fn signed_pre_key(&self, id: u32) -> Result<Option<SignedPreKeyRecord>, StoreError> {
        Ok(self.lock()?.signed_pre_keys.get(&id).cloned())
    }

    fn save_signed_pre_key(&self, record: &SignedPreKeyRecord) -> Result<(), StoreError> {
        self.lock()?
            .signed_pre_keys
            .insert(record.id(), record.clone());
        Ok(())
    }
}

impl SessionStore for InMemoryStore {
    fn session(&self, address: &Address) -> Result<Option<SessionRecord>, StoreError> {
        Ok(self.lock()?.sessions.get(address).cloned())
    }

    fn save_session(&self, address: &Address, record: &SessionRecord) -> Result<(), StoreError> {
        self.lock()?
            .sessions
            .insert(address.clone(), record.clone());
        Ok(())
    }
}

impl SenderKeyStore for InMemoryStore {
    fn sender_key(
        &self,
        sender: &Address,
        distribution_id: DistributionId,
    ) -> Result<Option<SenderKeyRecord>, StoreError> {
        Ok(self
            .lock()?
            .sender_keys
            .get(&(sender.clone(), distribution_id))
            .cloned())
    }

    fn save_sender_key(
        &self,
        sender: &Address,
        distribution_id: DistributionId,
        record: &SenderKeyRecord,
    ) -> Result<(), StoreError> {
        self.lock()?
            .sender_keys
            .insert((sender.clone(), distribution_id), record.clone());
        Ok(())
    }
}
