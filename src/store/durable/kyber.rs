//! The Kyber prekeys of protocol v4 in the persistent stores, with the semantics of
//! [`crate::store::InMemoryStore`]: a one-time key is deleted when a session uses it, a
//! last-resort key stays and the use (Kyber prekey, signed prekey, base key) is
//! recorded, and a use recorded before is refused. Marking a use is planned from
//! checked reads before its transaction and applied in it by compare-and-swap, so two
//! writers marking the same use (two threads, two hosts) cannot both succeed.

use zeroize::Zeroizing;

use super::{Abort, Backend, Core, Steps, Val};
use crate::error::StoreError;
use crate::store::integrity::Version;
use crate::store::rows::tampered;
use crate::store::schema::T;
use crate::store::seal::nonce_of;
use crate::store::{CommitOutcome, KyberPreKeyStore, KyberPreKeyUse, RowVersion};

/// The key of a Kyber prekey row.
fn id(id: u32) -> [Val<'static>; 1] {
    [Val::Int(i64::from(id))]
}

/// What marking one use changes, read (and sealed) before the transaction that applies
/// it with [`KyberMark::apply`].
pub(super) enum KyberMark {
    /// No such key: nothing changes.
    Absent,
    /// A one-time key, deleted while it is still at the version read.
    OneTime { id: u32, version: Version },
    /// A last-resort key, kept (while still at the version read) and the use recorded
    /// under `idx` unless a record is there already.
    LastResort {
        id: u32,
        version: Version,
        sealed_key: Vec<u8>,
        idx: [u8; 32],
        sealed_use: Vec<u8>,
    },
}

impl KyberMark {
    /// The steps of the mark, in the caller's transaction: a key changed or a use
    /// recorded since the plan was read conflicts.
    pub(super) fn apply(&self, s: &mut Steps<'_, '_>) -> Result<(), Abort> {
        match self {
            Self::Absent => Ok(()),
            Self::OneTime { id: k, version } => s.delete_at(T::KyberPreKey, &id(*k), *version),
            Self::LastResort {
                id: k,
                version,
                sealed_key,
                idx,
                sealed_use,
            } => {
                // The key rewritten as it was: a compare-and-swap that changes nothing,
                // so a save under the id since the plan conflicts.
                s.swap(
                    T::KyberPreKey,
                    &id(*k),
                    RowVersion::new(*version),
                    sealed_key,
                )?;
                let key = [Val::Int(i64::from(*k)), Val::Bytes(idx)];
                s.swap(T::KyberPreKeyUse, &key, RowVersion::ABSENT, sealed_use)
            }
        }
    }
}

impl<B: Backend> Core<B> {
    /// What marking `used` changes, or `None` when the use is already recorded.
    pub(super) fn kyber_mark(
        &self,
        used: &KyberPreKeyUse,
    ) -> Result<Option<KyberMark>, StoreError> {
        if self.kyber_pre_key_used(used)? {
            return Ok(None);
        }
        let k = used.kyber_pre_key_id;
        let Some(sealed_key) = self.value(T::KyberPreKey, &id(k))? else {
            return Ok(Some(KyberMark::Absent));
        };
        let version = nonce_of(&sealed_key).ok_or_else(|| tampered("kyber_pre_key"))?;
        if !self.rows.open_kyber_pre_key(k, &sealed_key)?.last_resort {
            return Ok(Some(KyberMark::OneTime { id: k, version }));
        }
        let idx = self.rows.kyber_use_index(used);
        let sealed_use = self.rows.seal_kyber_use(used, &idx)?;
        Ok(Some(KyberMark::LastResort {
            id: k,
            version,
            sealed_key,
            idx,
            sealed_use,
        }))
    }
}

/// How often a Kyber write is redone after losing a race to another writer.
const ATTEMPTS: usize = crate::delivery::MAX_COMMIT_ATTEMPTS;

impl<B: Backend> KyberPreKeyStore for Core<B> {
    fn kyber_pre_key(&self, k: u32) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
        self.value(T::KyberPreKey, &id(k))?
            .map(|v| Ok(self.rows.open_kyber_pre_key(k, &v)?.record))
            .transpose()
    }

    /// The record and the deletion of the id's recorded uses, in one transaction.
    fn save_kyber_pre_key(
        &self,
        k: u32,
        record: &[u8],
        last_resort: bool,
    ) -> Result<(), StoreError> {
        let sealed = self.rows.seal_kyber_pre_key(k, record, last_resort)?;
        for _ in 0..ATTEMPTS {
            let outcome = self.transact(|s| {
                s.put(T::KyberPreKey, &id(k), &sealed)?;
                s.forget_kyber_uses(i64::from(k))
            })?;
            if outcome == CommitOutcome::Committed {
                return Ok(());
            }
        }
        Err(StoreError::Contention { attempts: ATTEMPTS })
    }

    fn kyber_pre_key_used(&self, used: &KyberPreKeyUse) -> Result<bool, StoreError> {
        let idx = self.rows.kyber_use_index(used);
        let key = [Val::Int(i64::from(used.kyber_pre_key_id)), Val::Bytes(&idx)];
        match self.value(T::KyberPreKeyUse, &key)? {
            None => Ok(false),
            Some(sealed) => {
                self.rows.check_kyber_use(used, &idx, &sealed)?;
                Ok(true)
            }
        }
    }

    fn mark_kyber_pre_key_used(&self, used: &KyberPreKeyUse) -> Result<bool, StoreError> {
        for _ in 0..ATTEMPTS {
            let mark = match self.kyber_mark(used)? {
                None => return Ok(false),
                Some(KyberMark::Absent) => return Ok(true),
                Some(mark) => mark,
            };
            if self.transact(|s| mark.apply(s))? == CommitOutcome::Committed {
                return Ok(true);
            }
        }
        Err(StoreError::Contention { attempts: ATTEMPTS })
    }
}
