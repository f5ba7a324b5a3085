//! An in-memory [`super::ProtocolStore`], for tests and for apps that persist elsewhere.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use rand_core::{CryptoRng, RngCore};
use zeroize::Zeroizing;

use super::{
    CommitOutcome, IdentityStore, KyberPreKeyStore, KyberPreKeyUse, PreKeyStore, RowVersion,
    SenderKeyStore, SessionStore, SignedPreKeyStore, StateStore, StateWrite, VersionedState,
};
use crate::Address;
use crate::error::StoreError;
use crate::group::{DistributionId, SenderKeyRecord};
use crate::keys::{
    IdentityKey, IdentityKeyPair, PreKeyRecord, SignedPreKeyRecord, generate_registration_id,
};
use crate::session::SessionRecord;

/// A state value with its version.
type StateRow = (Zeroizing<Vec<u8>>, RowVersion);

#[derive(Default)]
struct Inner {
    identities: HashMap<Address, IdentityKey>,
    pre_keys: HashMap<u32, PreKeyRecord>,
    signed_pre_keys: HashMap<u32, SignedPreKeyRecord>,
    sessions: HashMap<Address, SessionRecord>,
    sender_keys: HashMap<(Address, DistributionId), SenderKeyRecord>,
    /// Privacy-model state by (kind, key), each value with its version.
    states: HashMap<(String, String), StateRow>,
    /// Writes of state values so far: the next value's version.
    state_writes: u64,
    /// Kyber prekey records by id, each with whether it is a last-resort key.
    kyber_pre_keys: HashMap<u32, (Zeroizing<Vec<u8>>, bool)>,
    /// Uses of last-resort Kyber prekeys recorded so far.
    kyber_uses: Vec<KyberPreKeyUse>,
}

impl Inner {
    /// Stores a state value under a fresh version (a write counter, so no two writes
    /// share one).
    fn put_state(&mut self, kind: &str, key: &str, value: &[u8]) {
        self.state_writes = self.state_writes.wrapping_add(1);
        let mut token = [0u8; 12];
        token[4..].copy_from_slice(&self.state_writes.to_be_bytes());
        self.states.insert(
            (kind.to_owned(), key.to_owned()),
            (Zeroizing::new(value.to_vec()), RowVersion::new(token)),
        );
    }

    fn state_version(&self, kind: &str, key: &str) -> RowVersion {
        self.states
            .get(&(kind.to_owned(), key.to_owned()))
            .map_or(RowVersion::ABSENT, |(_, v)| *v)
    }
}

/// Keeps everything in memory behind one mutex, privacy-model state included (it is its
/// own [`StateStore`], so a `Device` on it keeps that state for as long as the store
/// lives).
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
        self.inner.lock().map_err(|_| StoreError::Poisoned {
            what: "in-memory store",
        })
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

    fn state_store(&self) -> Option<&dyn StateStore> {
        Some(self)
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

    fn kyber_pre_keys(&self) -> Option<&dyn KyberPreKeyStore> {
        Some(self)
    }
}

impl KyberPreKeyStore for InMemoryStore {
    fn kyber_pre_key(&self, id: u32) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
        Ok(self.lock()?.kyber_pre_keys.get(&id).map(|(r, _)| r.clone()))
    }

    fn save_kyber_pre_key(
        &self,
        id: u32,
        record: &[u8],
        last_resort: bool,
    ) -> Result<(), StoreError> {
        let mut inner = self.lock()?;
        inner.kyber_uses.retain(|u| u.kyber_pre_key_id != id);
        inner
            .kyber_pre_keys
            .insert(id, (Zeroizing::new(record.to_vec()), last_resort));
        Ok(())
    }

    fn kyber_pre_key_used(&self, used: &KyberPreKeyUse) -> Result<bool, StoreError> {
        Ok(self.lock()?.kyber_uses.contains(used))
    }

    fn mark_kyber_pre_key_used(&self, used: &KyberPreKeyUse) -> Result<bool, StoreError> {
        let mut inner = self.lock()?;
        if inner.kyber_uses.contains(used) {
            return Ok(false);
        }
        match inner.kyber_pre_keys.get(&used.kyber_pre_key_id) {
            Some((_, false)) => {
                inner.kyber_pre_keys.remove(&used.kyber_pre_key_id);
            }
            Some((_, true)) => inner.kyber_uses.push(*used),
            None => {}
        }
        Ok(true)
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

impl StateStore for InMemoryStore {
    fn state(&self, kind: &str, key: &str) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
        Ok(self.load_state(kind, key)?.0)
    }

    fn save_state(&self, kind: &str, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.lock()?.put_state(kind, key, value);
        Ok(())
    }

    fn remove_state(&self, kind: &str, key: &str) -> Result<(), StoreError> {
        self.lock()?
            .states
            .remove(&(kind.to_owned(), key.to_owned()));
        Ok(())
    }

    fn load_state(&self, kind: &str, key: &str) -> Result<VersionedState, StoreError> {
        let inner = self.lock()?;
        Ok(inner
            .states
            .get(&(kind.to_owned(), key.to_owned()))
            .map_or((None, RowVersion::ABSENT), |(v, version)| {
                (Some(v.clone()), *version)
            }))
    }

    fn commit_state(&self, writes: &[StateWrite<'_>]) -> Result<CommitOutcome, StoreError> {
        let mut inner = self.lock()?;
        // Check every entry before writing any. A second entry for one row conflicts:
        // the first one's write gives the row a version no caller holds yet.
        let mut planned: Vec<(&str, &str)> = Vec::with_capacity(writes.len());
        for w in writes {
            if planned.contains(&(w.kind, w.key))
                || inner.state_version(w.kind, w.key) != w.expected
            {
                return Ok(CommitOutcome::Conflict);
            }
            planned.push((w.kind, w.key));
        }
        for w in writes {
            inner.put_state(w.kind, w.key, w.value);
        }
        Ok(CommitOutcome::Committed)
    }
}
