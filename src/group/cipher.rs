//! Group (sender-key) operations against a [`SenderKeyStore`], the group counterpart of
//! [`crate::cipher`]: each loads the record of one (sender, distribution), works on a
//! copy, and saves only after it succeeded, so a failed decrypt writes nothing and a
//! sending chain is saved before its ciphertext is returned (no chain step is ever used
//! twice, even across a crash).
//!
//! With a store that offers [`TransactionalGroupStore`] (`SqliteStore`, `PostgresStore`) every
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
//! ```
//! use confide::group::{DistributionId, cipher as group};
//! use confide::store::InMemoryStore;
//! use confide::{Address, SystemRng, Timestamp};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut rng = SystemRng::new();
//! let (alice, bob) = (Address::new("alice", 1), Address::new("bob", 1));
//! let alice_store = InMemoryStore::generate(&mut rng);
//! let bob_store = InMemoryStore::generate(&mut rng);
//! let id = DistributionId::random(&mut rng);
//! let skdm = group::distribution(&alice_store, &alice, id, &mut rng)?;
//! group::process(&bob_store, &alice, &skdm)?; // over the pairwise session
//! let msg = group::encrypt(&alice_store, &alice, id, b"hello group", &mut rng)?;
//! let got = group::decrypt(&bob_store, &alice, &msg, Timestamp::from_millis(0))?;
//! assert_eq!(got.plaintext.as_slice(), b"hello group");
//! assert!(!got.redelivered);
//! # Ok(()) }
//! ```

use rand_core::{CryptoRng, RngCore};

use super::{
    DistributionId, GroupDecryptError, GroupEncryptError, GroupProcessError, Layout,
    SenderKeyDistributionMessage, SenderKeyMessage, SenderKeyRecord,
};
use crate::cipher::Decrypted;
use crate::error::StoreError;
use crate::store::{
    CommitOutcome, GroupCommit, MessageId, NewMessage, SenderKeyStore, TransactionalGroupStore,
};
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
    /// A stable name for the failure (the group error's code, or `"StoreError"`).
    pub fn code(&self) -> &'static str {
        match self {
            Self::Decrypt(e) => e.code(),
            Self::Store(_) => "StoreError",
        }
    }
}

/// How often a group operation is redone after a compare-and-swap conflict before
/// giving up.
const GROUP_COMMIT_ATTEMPTS: usize = 64;

fn contention() -> StoreError {
    StoreError::Contention {
        attempts: GROUP_COMMIT_ATTEMPTS,
    }
}

/// Runs `step` on the stored record of (`sender`, `distribution_id`) and saves the
/// record it returns (if any) before returning its output: through a compare-and-swap
/// commit when the store is transactional (redoing `step` from the winner's record on
/// a conflict), as a plain load and save otherwise (the caller serialises).
fn update<S: SenderKeyStore + ?Sized, T, E: From<StoreError>>(
    store: &S,
    sender: &Address,
    distribution_id: DistributionId,
    mut step: impl FnMut(Option<SenderKeyRecord>) -> Result<(Option<SenderKeyRecord>, T), E>,
) -> Result<T, E> {
    if let Some(txn) = store.transactional_group() {
        for _ in 0..GROUP_COMMIT_ATTEMPTS {
            let (record, version) = txn.load_sender_key(sender, distribution_id)?;
            let (changed, out) = step(record)?;
            let Some(changed) = changed else {
                return Ok(out);
            };
            let commit = GroupCommit::record(sender, distribution_id, version, &changed);
            // On a conflict `out` (a ciphertext, a distribution message) is dropped
            // unseen and the step redone from the winner's record.
            if txn.commit_group(&commit)? == CommitOutcome::Committed {
                return Ok(out);
            }
        }
        return Err(contention().into());
    }
    let (changed, out) = step(store.sender_key(sender, distribution_id)?)?;
    if let Some(changed) = changed {
        store.save_sender_key(sender, distribution_id, &changed)?;
    }
    Ok(out)
}

/// The distribution message of `own`'s sending chain in the group (current layout),
/// creating and saving the chain on first use. Send it to every member over the
/// pairwise sessions. `own` is this device's address (its chain is stored under it).
pub fn distribution<S: SenderKeyStore + ?Sized, R: RngCore + CryptoRng>(
    store: &S,
    own: &Address,
    distribution_id: DistributionId,
    rng: &mut R,
) -> Result<SenderKeyDistributionMessage, GroupDistributionError> {
    distribution_with(store, own, distribution_id, Layout::Current, rng)
}

/// As [`distribution`], in the given layout. An own chain of the other layout is
/// replaced by a fresh one. For [`Layout::Legacy`] the messages carry no distribution
/// id: `distribution_id` only names the group in this store.
pub fn distribution_with<S: SenderKeyStore + ?Sized, R: RngCore + CryptoRng>(
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
        let message = record.create_distribution(rng);
        Ok((if existing { None } else { Some(record) }, message))
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
        Ok((Some(record), message))
    })
}

/// Stores the chain a (current-layout) distribution message from `sender` describes.
pub fn process<S: SenderKeyStore + ?Sized>(
    store: &S,
    sender: &Address,
    message: &SenderKeyDistributionMessage,
) -> Result<(), GroupKeyProcessError> {
    let distribution_id = message
        .distribution_id()
        .ok_or(GroupProcessError::WrongLayout)?;
    process_in(store, sender, distribution_id, message)
}

/// Stores the chain a distribution message from `sender` describes, for the named
/// distribution (the legacy layout's messages carry none, so the app names it). A
/// stored record of the other layout is replaced.
pub fn process_in<S: SenderKeyStore + ?Sized>(
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
        Ok((Some(record), ()))
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
        Ok((Some(record), message))
    })
}

/// Decrypts a (current-layout) group message from `sender`, received at `now`. The
/// record is changed on a copy and saved only on success: a failed decrypt writes
/// nothing.
///
/// With a [`TransactionalGroupStore`] the advanced record and the message itself (under
/// [`MessageId::of_group`], stamped `now`) are committed in one transaction before this
/// returns, and the same bytes delivered again return the stored plaintext with
/// `redelivered: true`, touching nothing; once the app acknowledged the message to the
/// store, a redelivery is [`GroupDecryptError::DuplicateMessage`]. With a plain store a
/// redelivery is always that duplicate error and `redelivered` is always `false`.
pub fn decrypt<S: SenderKeyStore + ?Sized>(
    store: &S,
    sender: &Address,
    message: &SenderKeyMessage,
    now: Timestamp,
) -> Result<Decrypted, GroupReceiveError> {
    let distribution_id = message
        .distribution_id()
        .ok_or(GroupDecryptError::WrongLayout)?;
    decrypt_in(store, sender, distribution_id, message, now)
}

/// Decrypts a group message from `sender` in the named distribution (needed for the
/// legacy layout, whose messages name none); as [`decrypt`] otherwise.
pub fn decrypt_in<S: SenderKeyStore + ?Sized>(
    store: &S,
    sender: &Address,
    distribution_id: DistributionId,
    message: &SenderKeyMessage,
    now: Timestamp,
) -> Result<Decrypted, GroupReceiveError> {
    if let Some(txn) = store.transactional_group() {
        return decrypt_committed(txn, sender, distribution_id, message, now);
    }
    let mut record =
        store
            .sender_key(sender, distribution_id)?
            .ok_or(GroupDecryptError::NoSenderKey {
                chain_id: message.chain_id(),
            })?;
    let plaintext = zeroize::Zeroizing::new(record.decrypt(message)?);
    store.save_sender_key(sender, distribution_id, &record)?;
    Ok(Decrypted {
        plaintext,
        redelivered: false,
    })
}

/// The stored plaintext of an earlier delivery of `id`, or a duplicate error once the
/// app acknowledged it.
fn redelivery(
    txn: &dyn TransactionalGroupStore,
    sender: &Address,
    id: &MessageId,
    message: &SenderKeyMessage,
) -> Result<Option<Decrypted>, GroupReceiveError> {
    let Some(stored) = txn.group_delivered(sender, id)? else {
        return Ok(None);
    };
    match stored.plaintext {
        Some(plaintext) => Ok(Some(Decrypted {
            plaintext,
            redelivered: true,
        })),
        None => Err(GroupDecryptError::DuplicateMessage {
            iteration: message.iteration(),
        }
        .into()),
    }
}

fn decrypt_committed(
    txn: &dyn TransactionalGroupStore,
    sender: &Address,
    distribution_id: DistributionId,
    message: &SenderKeyMessage,
    now: Timestamp,
) -> Result<Decrypted, GroupReceiveError> {
    let id = MessageId::of_group(distribution_id, message);
    for _ in 0..GROUP_COMMIT_ATTEMPTS {
        if let Some(d) = redelivery(txn, sender, &id, message)? {
            return Ok(d);
        }
        let (record, version) = txn.load_sender_key(sender, distribution_id)?;
        let mut record = record.ok_or(GroupDecryptError::NoSenderKey {
            chain_id: message.chain_id(),
        })?;
        let plaintext = match record.decrypt(message) {
            Ok(p) => zeroize::Zeroizing::new(p),
            // Another thread or process may have committed this very message since the
            // check above: go round and return its stored plaintext.
            Err(GroupDecryptError::DuplicateMessage { .. })
                if txn.group_delivered(sender, &id)?.is_some() =>
            {
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let commit = GroupCommit::record(sender, distribution_id, version, &record)
            .with_message(NewMessage::new(id, &plaintext, now));
        if txn.commit_group(&commit)? == CommitOutcome::Committed {
            return Ok(Decrypted {
                plaintext,
                redelivered: false,
            });
        }
    }
    Err(contention().into())
}
