//! Opening a persistent device, and what it knows of identities: the safety number to
//! compare with a peer, the identity key trusted for a peer, and acknowledging
//! received messages to the store.

use rand_core::{CryptoRng, RngCore};

use super::{Clock, Device};
use crate::Address;
use crate::error::StoreError;
use crate::fingerprint::{Fingerprint, FingerprintError, Party};
use crate::keys::IdentityKey;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
use crate::store::DurableStore;
use crate::store::{MessageId, ProtocolStore};

/// [`Device::open`] failed; the store is unchanged.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeviceOpenError {
    /// The store failed (reading or saving the identity).
    #[error("store failed: {0}")]
    Store(#[from] StoreError),
}

/// [`Device::safety_number`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SafetyNumberError {
    /// No identity key is known for the peer yet (no session, no bundle seen).
    #[error("no identity key known for the peer")]
    UnknownIdentity,
    /// The fingerprint could not be computed.
    #[error("fingerprint failed: {0}")]
    Fingerprint(#[from] FingerprintError),
    /// The store failed.
    #[error("store failed: {0}")]
    Store(#[from] StoreError),
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
impl<S: DurableStore, R: RngCore + CryptoRng, C: Clock> Device<S, R, C> {
    /// Opens the device kept in a persistent `store` (`SqliteStore`, `PostgresStore`),
    /// creating it on first use: when the store holds no identity yet, a new identity
    /// key pair and registration id are drawn from `rng` and saved (two hosts opening
    /// one new device at once agree on one), and the device is ready to
    /// [`Device::publish_bundle`].
    pub fn open(store: S, address: Address, mut rng: R, clock: C) -> Result<Self, DeviceOpenError> {
        store.bootstrap_identity(&mut rng)?;
        Ok(Self::new(store, address, rng, clock))
    }
}

impl<S: ProtocolStore, R: RngCore + CryptoRng, C: Clock> Device<S, R, C> {
    /// The app has saved a received message ([`Received::id`](super::Received::id),
    /// from `sender`): a transactional store drops its plaintext and keeps only the
    /// dedupe record, so a redelivery is refused as a duplicate. Returns whether it was
    /// stored; a store without a transactional interface keeps no messages, so `false`.
    pub fn acknowledge(&self, sender: &Address, id: &MessageId) -> Result<bool, StoreError> {
        match self.store.transactional() {
            Some(txn) => txn.acknowledge(sender, id),
            None => Ok(false),
        }
    }

    /// The identity key this device trusts for `remote`, if any (learned from its
    /// bundle or first message, or set by [`Device::accept_identity`]).
    pub fn remote_identity(&self, remote: &Address) -> Result<Option<IdentityKey>, StoreError> {
        self.store.identity(remote)
    }

    /// The safety number the user compares with `remote`'s user (in person or by
    /// scanning its QR code): both sides' identity keys, each with its address name as
    /// the stable identifier (name peers by a stable id such as their UUID).
    pub fn safety_number(&self, remote: &Address) -> Result<Fingerprint, SafetyNumberError> {
        let ours = self.store.local_identity()?;
        let theirs = self
            .store
            .identity(remote)?
            .ok_or(SafetyNumberError::UnknownIdentity)?;
        let local = Party::new(self.address.name().as_bytes(), ours.identity_key());
        let remote = Party::new(remote.name().as_bytes(), &theirs);
        Ok(Fingerprint::with_defaults(local, remote)?)
    }
}
