//! The store traits, implemented once for both persistent stores.

use zeroize::Zeroizing;

use super::{Abort, Backend, Core, Val, address};
use crate::Address;
use crate::error::StoreError;
use crate::group::{DistributionId, SenderKeyRecord};
use crate::keys::{IdentityKey, IdentityKeyPair, PreKeyRecord, SignedPreKeyRecord};
use crate::session::SessionRecord;
use crate::store::rows;
use crate::store::schema::T;
use crate::store::{
    Commit, CommitOutcome, DeliveredMessage, GroupCommit, IdentityStore, KyberPreKeyStore,
    MessageId, PreKeyStore, RowVersion, SenderKeyStore, SessionStore, SignedPreKeyStore,
    StateStore, StateWrite, TransactionalGroupStore, TransactionalStore, VersionedState,
};

/// The key of a prekey row.
fn id(id: u32) -> [Val<'static>; 1] {
    [Val::Int(i64::from(id))]
}

/// The key of a sender-key row.
fn sender_key<'a>(sender: &'a Address, distribution: &'a DistributionId) -> [Val<'a>; 3] {
    let [name, device] = address(sender);
    [name, device, Val::Bytes(distribution.as_bytes())]
}

impl<B: Backend> IdentityStore for Core<B> {
    fn local_identity(&self) -> Result<IdentityKeyPair, StoreError> {
        rows::local_identity(self.local()?.as_ref())
    }

    fn local_registration_id(&self) -> Result<u32, StoreError> {
        rows::local_registration_id(self.local()?.as_ref())
    }

    fn identity(&self, address: &Address) -> Result<Option<IdentityKey>, StoreError> {
        let sealed = self.value(T::Identity, &super::address(address))?;
        self.rows.open_identity(address, sealed)
    }

    fn save_identity(&self, address: &Address, key: &IdentityKey) -> Result<(), StoreError> {
        let sealed = self.rows.seal_identity(address, key)?;
        self.put(T::Identity, &super::address(address), &sealed)
    }

    fn state_store(&self) -> Option<&dyn StateStore> {
        Some(self)
    }
}

impl<B: Backend> PreKeyStore for Core<B> {
    fn pre_key(&self, pre_key: u32) -> Result<Option<PreKeyRecord>, StoreError> {
        let sealed = self.value(T::PreKey, &id(pre_key))?;
        self.rows.open_pre_key(pre_key, sealed)
    }

    fn save_pre_key(&self, record: &PreKeyRecord) -> Result<(), StoreError> {
        let sealed = self.rows.seal_pre_key(record)?;
        self.put(T::PreKey, &id(record.id()), &sealed)
    }

    fn remove_pre_key(&self, pre_key: u32) -> Result<(), StoreError> {
        self.delete(T::PreKey, &id(pre_key))
    }

    fn kyber_pre_keys(&self) -> Option<&dyn KyberPreKeyStore> {
        Some(self)
    }
}

impl<B: Backend> SignedPreKeyStore for Core<B> {
    fn signed_pre_key(&self, signed: u32) -> Result<Option<SignedPreKeyRecord>, StoreError> {
        let sealed = self.value(T::SignedPreKey, &id(signed))?;
        self.rows.open_signed_pre_key(signed, sealed)
    }

    fn save_signed_pre_key(&self, record: &SignedPreKeyRecord) -> Result<(), StoreError> {
        let sealed = self.rows.seal_signed_pre_key(record)?;
        self.put(T::SignedPreKey, &id(record.id()), &sealed)
    }
}

impl<B: Backend> SessionStore for Core<B> {
    fn session(&self, address: &Address) -> Result<Option<SessionRecord>, StoreError> {
        Ok(self.load_session(address)?.0)
    }

    fn save_session(&self, address: &Address, record: &SessionRecord) -> Result<(), StoreError> {
        let sealed = self.rows.seal_session(address, record)?;
        self.put(T::Session, &super::address(address), &sealed)
    }

    fn transactional(&self) -> Option<&dyn TransactionalStore> {
        Some(self)
    }
}

impl<B: Backend> TransactionalStore for Core<B> {
    fn load_session(
        &self,
        address: &Address,
    ) -> Result<(Option<SessionRecord>, RowVersion), StoreError> {
        let sealed = self.value(T::Session, &super::address(address))?;
        self.rows.open_session(address, sealed)
    }

    fn delivered(
        &self,
        address: &Address,
        id: &MessageId,
    ) -> Result<Option<DeliveredMessage>, StoreError> {
        self.stored_message(address, id)
    }

    /// The decrypted message is inserted (a stored id conflicts), the session row is
    /// replaced only while it is at the version the operation loaded, and the trusted
    /// identity, the consumed prekey and the Kyber prekey's use change with it (a
    /// use recorded before, or since the Kyber prekey was read, conflicts).
    fn commit(&self, commit: &Commit<'_>) -> Result<CommitOutcome, StoreError> {
        // Read and seal outside the transaction: it holds only SQL.
        let kyber = match &commit.kyber_pre_key_use {
            None => None,
            Some(used) => match self.kyber_mark(used)? {
                None => return Ok(CommitOutcome::Conflict),
                mark => mark,
            },
        };
        let sealed = self.rows.seal_commit(commit)?;
        let key = super::address(commit.address);
        self.transact(|s| {
            if let Some(m) = &sealed.message {
                s.new_message(commit.address, m)?;
            }
            s.swap(T::Session, &key, commit.expected, &sealed.session)?;
            if let Some(identity) = &sealed.identity {
                s.put(T::Identity, &key, identity)?;
            }
            if let Some(pre_key) = commit.remove_pre_key {
                s.delete(T::PreKey, &id(pre_key))?;
            }
            if let Some(mark) = &kyber {
                mark.apply(s)?;
            }
            Ok(())
        })
    }

    fn acknowledge(&self, address: &Address, id: &MessageId) -> Result<bool, StoreError> {
        self.update_message(
            &self.sql.acknowledge,
            address,
            id,
            Val::OptBytes(None),
            |m| m.acknowledged = true,
        )
    }
}

impl<B: Backend> SenderKeyStore for Core<B> {
    fn sender_key(
        &self,
        sender: &Address,
        distribution_id: DistributionId,
    ) -> Result<Option<SenderKeyRecord>, StoreError> {
        Ok(self.load_sender_key(sender, distribution_id)?.0)
    }

    fn save_sender_key(
        &self,
        sender: &Address,
        distribution_id: DistributionId,
        record: &SenderKeyRecord,
    ) -> Result<(), StoreError> {
        let sealed = self.rows.seal_sender_key(sender, distribution_id, record)?;
        self.put(T::SenderKey, &sender_key(sender, &distribution_id), &sealed)
    }

    fn transactional_group(&self) -> Option<&dyn TransactionalGroupStore> {
        Some(self)
    }
}

impl<B: Backend> TransactionalGroupStore for Core<B> {
    fn load_sender_key(
        &self,
        sender: &Address,
        distribution_id: DistributionId,
    ) -> Result<(Option<SenderKeyRecord>, RowVersion), StoreError> {
        let sealed = self.value(T::SenderKey, &sender_key(sender, &distribution_id))?;
        self.rows.open_sender_key(sender, distribution_id, sealed)
    }

    fn group_delivered(
        &self,
        sender: &Address,
        id: &MessageId,
    ) -> Result<Option<DeliveredMessage>, StoreError> {
        self.stored_message(sender, id)
    }

    fn commit_group(&self, commit: &GroupCommit<'_>) -> Result<CommitOutcome, StoreError> {
        // Seal outside the transaction: it holds only SQL.
        let sealed = self.rows.seal_group_commit(commit)?;
        let key = sender_key(commit.sender, &commit.distribution_id);
        self.transact(|s| {
            if let Some(m) = &sealed.message {
                s.new_message(commit.sender, m)?;
            }
            s.swap(T::SenderKey, &key, commit.expected, &sealed.record)
        })
    }
}

impl<B: Backend> StateStore for Core<B> {
    fn state(&self, kind: &str, key: &str) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
        Ok(self.load_state(kind, key)?.0)
    }

    fn save_state(&self, kind: &str, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let sealed = self.rows.seal_state(kind, key, value)?;
        self.put(T::State, &[Val::Text(kind), Val::Text(key)], &sealed)
    }

    fn remove_state(&self, kind: &str, key: &str) -> Result<(), StoreError> {
        self.delete(T::State, &[Val::Text(kind), Val::Text(key)])
    }

    fn load_state(&self, kind: &str, key: &str) -> Result<VersionedState, StoreError> {
        let sealed = self.value(T::State, &[Val::Text(kind), Val::Text(key)])?;
        self.rows.open_state_versioned(kind, key, sealed)
    }

    /// A compare-and-swap per entry, in order, all in one transaction.
    fn commit_state(&self, writes: &[StateWrite<'_>]) -> Result<CommitOutcome, StoreError> {
        // Seal outside the transaction: it holds only SQL.
        let sealed = self.rows.seal_states(writes)?;
        self.transact(|s| {
            for (w, v) in writes.iter().zip(&sealed) {
                let key = [Val::Text(w.kind), Val::Text(w.key)];
                s.swap(T::State, &key, w.expected, v)?;
            }
            Ok::<(), Abort>(())
        })
    }
}
