//! Group (sender-key) operations against a [`SenderKeyStore`], the group counterpart of
//! [`crate::session::cipher`]: each loads the record of one (sender, distribution), works on a
//! copy, and saves only after it succeeded, so a failed decrypt writes nothing and a
//! sending chain is saved before its ciphertext is returned (no chain step is ever used
//! twice, even across a crash).
//!
//! With a store that offers [`TransactionalGroupStore`](crate::store::TransactionalGroupStore) (`SqliteStore`, `PostgresStore`) every
//! operation is one commit with a compare-and-swap on the record, redone from the
//! winner's record on a conflict, so any mix of concurrent operations — across threads,
//! devices sharing the store, or processes — is safe; and [`decrypt`] keeps the
//! decrypted message in the same commit: the same bytes delivered again (say after a
//! crash before the app saved the plaintext) yield the stored plaintext with
//! `redelivered: true` and never step the chain twice.
//!
//! With a plain store each operation is load, change, save. **The caller must then
//! serialise the operations on one (sender, distribution)**: two at once could reuse a
//! chain step or lose one's progress. [`crate::device::Device`] does this with one lock
//! per device around every group call on a plain store; a single-threaded caller needs
//! nothing.
//!
//! Every operation names the group by its [`DistributionId`], whatever the layout: the
//! legacy layout's messages carry none, and a current-layout message must name the one
//! the caller expects, so a message for one group is never taken for another's.
//!
//! ```
//! use confide::group::{DistributionId, Layout, cipher as group};
//! use confide::store::InMemoryStore;
//! use confide::{Address, SystemRng, Timestamp};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut rng = SystemRng::new();
//! let (alice, bob) = (Address::new("alice", 1), Address::new("bob", 1));
//! let alice_store = InMemoryStore::generate(&mut rng);
//! let bob_store = InMemoryStore::generate(&mut rng);
//! let id = DistributionId::random(&mut rng);
//! let skdm = group::distribution(&alice_store, &alice, id, Layout::Current, &mut rng)?;
//! group::process(&bob_store, &alice, id, &skdm)?; // over the pairwise session
//! let msg = group::encrypt(&alice_store, &alice, id, b"hello group", &mut rng)?;
//! let got = group::decrypt(&bob_store, &alice, id, &msg, Timestamp::from_millis(0))?;
//! assert_eq!(got.plaintext.as_slice(), b"hello group");
//! assert!(!got.redelivered);
//! # Ok(()) }
//! ```

use rand_core::{CryptoRng, RngCore};
use zeroize::Zeroizing;

use super::{
    DistributionId, GroupDecryptError, GroupEncryptError, GroupProcessError, Layout,
    SenderKeyDistributionMessage, SenderKeyMessage, SenderKeyRecord,
};
use crate::delivery::{Decrypted, retry};
use crate::error::StoreError;
use crate::store::{CommitOutcome, GroupCommit, MessageId, NewMessage, SenderKeyStore};
use crate::{Address, Timestamp};

/// [`distribution`] or [`rotate`] failed; nothing changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GroupDistributionError {
    /// The store failed.
    #[error("store failed: {0}")]
    Store(#[from] StoreError),
}

/// [`process`] failed; nothing changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GroupKeyProcessError {
    /// The distribution message does not fit the stored record (see [`GroupProcessError`]).
    #[error("distribution message refused: {0}")]
    Process(#[from] GroupProcessError),
    /// The store failed.
    #[error("store failed: {0}")]
    Store(#[from] StoreError),
}

/// [`encrypt`] failed; nothing changed and nothing was sent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GroupSendError {
    /// No own sending chain, or it is exhausted (see [`GroupEncryptError`]).
    #[error("group encrypt failed: {0}")]
    Encrypt(#[from] GroupEncryptError),
    /// The store failed; the advanced chain was not saved, so the ciphertext is withheld.
    #[error("store failed: {0}")]
    Store(#[from] StoreError),
}

/// [`decrypt`] failed; the store is unchanged.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GroupReceiveError {
    /// The message did not decrypt (see [`GroupDecryptError`]).
    #[error("group decrypt failed: {0}")]
    Decrypt(#[from] GroupDecryptError),
    /// The store failed.
    #[error("store failed: {0}")]
    Store(#[from] StoreError),
}

impl GroupReceiveError {
    /// A stable name for the failure (the group error's code, or the store's, `"Store"`).
    pub fn code(&self) -> &'static str {
        match self {
            Self::Decrypt(e) => e.code(),
            Self::Store(e) => e.code(),
        }
    }
}

/// What one attempt of a group operation decided.
enum Attempt<T> {
    /// Save this record (with the decrypted message to keep, if any), then return `T`.
    Save(
        SenderKeyRecord,
        Option<(MessageId, Zeroizing<Vec<u8>>, Timestamp)>,
        T,
    ),
    /// Return `T` without saving anything.
    Return(T),
    /// A concurrent operation got in between: load again and redo.
    Redo,
}

/// Runs `step` on the stored record of (`sender`, `distribution_id`) and saves what it
/// returns before returning its output: through a compare-and-swap commit when the
/// store is transactional (redoing `step` from the winner's record on a conflict), as a
/// plain load and save otherwise (the caller serialises).
fn update<S: SenderKeyStore + ?Sized, T, E: From<StoreError>>(
    store: &S,
    sender: &Address,
    distribution_id: DistributionId,
    mut step: impl FnMut(Option<SenderKeyRecord>) -> Result<Attempt<T>, E>,
) -> Result<T, E> {
    let txn = store.transactional_group();
    retry(|| {
        let (stored, version) = match txn {
            Some(txn) => {
                let (record, version) = txn.load_sender_key(sender, distribution_id)?;
                (record, Some(version))
            }
            None => (store.sender_key(sender, distribution_id)?, None),
        };
        let (record, message, out) = match step(stored)? {
            Attempt::Save(record, message, out) => (record, message, out),
            Attempt::Return(out) => return Ok(Some(out)),
            Attempt::Redo => return Ok(None),
        };
        if let (Some(txn), Some(version)) = (txn, version) {
            let mut commit = GroupCommit::record(sender, distribution_id, version, &record);
            if let Some((id, plaintext, now)) = message.as_ref() {
                commit = commit.with_message(NewMessage::new(*id, plaintext, *now));
            }
            // On a conflict `out` (a ciphertext, a distribution message, a plaintext) is
            // dropped unseen and the step redone from the winner's record.
            return Ok((txn.commit_group(&commit)? == CommitOutcome::Committed).then_some(out));
        }
        store.save_sender_key(sender, distribution_id, &record)?;
        Ok(Some(out))
    })
}

/// The distribution message of `own`'s sending chain in the group, creating and saving
/// the chain (in `layout`) on first use. Send it to every member over the pairwise
/// sessions. `own` is this device's address (its chain is stored under it). An own
/// chain of the other layout is replaced by a fresh one. For [`Layout::Legacy`] the
/// messages carry no distribution id: `distribution_id` only names the group in this
/// store.
pub fn distribution<S: SenderKeyStore + ?Sized, R: RngCore + CryptoRng>(
    store: &S,
    own: &Address,
    distribution_id: DistributionId,
    layout: Layout,
    rng: &mut R,
) -> Result<SenderKeyDistributionMessage, GroupDistributionError> {
    update(store, own, distribution_id, |stored| {
        let (mut record, existing) = match stored {
            Some(r) if r.layout() == layout && r.can_send() => (r, true),
            _ => (SenderKeyRecord::new(distribution_id, layout), false),
        };
        let message = record.distribution(rng);
        Ok(if existing {
            Attempt::Return(message)
        } else {
            Attempt::Save(record, None, message)
        })
    })
}

/// Starts a fresh sending chain for `own` in the group (after a member left) and
/// returns its distribution message, for the remaining members only. The old chain and
/// its signing key are gone from the store before this returns. Keeps the group's
/// layout (current for a group without a chain yet).
pub fn rotate<S: SenderKeyStore + ?Sized, R: RngCore + CryptoRng>(
    store: &S,
    own: &Address,
    distribution_id: DistributionId,
    rng: &mut R,
) -> Result<SenderKeyDistributionMessage, GroupDistributionError> {
    update(store, own, distribution_id, |stored| {
        let mut record =
            stored.unwrap_or_else(|| SenderKeyRecord::new(distribution_id, Layout::Current));
        let message = record.rotate(rng);
        Ok(Attempt::Save(record, None, message))
    })
}

/// Stores the chain a distribution message from `sender` describes, for the group
/// `distribution_id`. The caller always names the group (see the module docs): a
/// current-layout message that names another distribution is refused as
/// [`GroupProcessError::WrongDistribution`]; a legacy one names none. A stored record
/// of the other layout is replaced.
pub fn process<S: SenderKeyStore + ?Sized>(
    store: &S,
    sender: &Address,
    distribution_id: DistributionId,
    message: &SenderKeyDistributionMessage,
) -> Result<(), GroupKeyProcessError> {
    update(store, sender, distribution_id, |stored| {
        let mut record = match stored {
            Some(r) if r.layout() == message.layout() => r,
            _ => SenderKeyRecord::new(distribution_id, message.layout()),
        };
        record.process(message)?;
        Ok(Attempt::Save(record, None, ()))
    })
}

/// Encrypts a group message with `own`'s sending chain. The advanced chain is saved
/// before the ciphertext is returned (with a transactional store, by a compare-and-swap
/// commit), so no chain step is ever used twice.
pub fn encrypt<S: SenderKeyStore + ?Sized, R: RngCore + CryptoRng>(
    store: &S,
    own: &Address,
    distribution_id: DistributionId,
    plaintext: &[u8],
    rng: &mut R,
) -> Result<SenderKeyMessage, GroupSendError> {
    update(store, own, distribution_id, |stored| {
        let mut record = stored.ok_or(GroupEncryptError::NoSenderKey)?;
        let message = record.encrypt(plaintext, rng)?;
        Ok(Attempt::Save(record, None, message))
    })
}

/// Decrypts a group message from `sender` in the group `distribution_id`, received at
/// `now`. A current-layout message that names another distribution is refused as
/// [`GroupDecryptError::WrongDistribution`]. The record is changed on a copy and saved
/// only on success: a failed decrypt writes nothing.
///
/// With a [`TransactionalGroupStore`](crate::store::TransactionalGroupStore) the
/// advanced record and the message itself (under [`MessageId::of_group`], stamped
/// `now`) are committed in one transaction before this returns, and the same bytes
/// delivered again return the stored plaintext with `redelivered: true`, touching
/// nothing; once the app acknowledged the message to the store, a redelivery is
/// [`GroupDecryptError::DuplicateMessage`]. With a plain store a redelivery is always
/// that duplicate error and `redelivered` is always `false`.
pub fn decrypt<S: SenderKeyStore + ?Sized>(
    store: &S,
    sender: &Address,
    distribution_id: DistributionId,
    message: &SenderKeyMessage,
    now: Timestamp,
) -> Result<Decrypted, GroupReceiveError> {
    let id = MessageId::of_group(distribution_id, message);
    let txn = store.transactional_group();
    update(store, sender, distribution_id, |stored| {
        if let Some(txn) = txn {
            if let Some(stored) = txn.group_delivered(sender, &id)? {
                // The plaintext is gone once the app acknowledged the message.
                let plaintext = stored
                    .plaintext
                    .ok_or(GroupDecryptError::DuplicateMessage {
                        iteration: message.iteration(),
                    })?;
                return Ok(Attempt::Return(Decrypted::redelivery(plaintext, id)));
            }
        }
        let mut record = stored.ok_or(GroupDecryptError::NoSenderKey {
            chain_id: message.chain_id(),
        })?;
        let plaintext = match (record.decrypt(message), txn) {
            (Ok(p), _) => p,
            // Another thread or process may have committed this very message since the
            // check above: go round and return its stored plaintext.
            (Err(GroupDecryptError::DuplicateMessage { .. }), Some(txn))
                if txn.group_delivered(sender, &id)?.is_some() =>
            {
                return Ok(Attempt::Redo);
            }
            (Err(e), _) => return Err(e.into()),
        };
        let kept = txn.is_some().then(|| (id, plaintext.clone(), now));
        Ok(Attempt::Save(record, kept, Decrypted::fresh(plaintext, id)))
    })
}
