//! Sender keys: group messages as one ciphertext that the server fans out.
//!
//! Each member that sends to a group makes a sending chain (random chain key and signing
//! key) and hands a [`SenderKeyDistributionMessage`] to every other member over the
//! pairwise sessions. Each group message then derives a message key from the chain
//! (HMAC `0x01`/`0x02`, HKDF info `"WhisperGroup"`: 48 bytes, IV then AES-256 key),
//! encrypts with AES-256-CBC, and is signed with XEdDSA (64 bytes appended).
//!
//! Two layouts, chosen per group ([`Layout`]): the current libsignal one (distribution
//! id and chain id in every message) and the older one WhatsApp-style clients use (a
//! key id only). Both use version byte `0x33`.
//!
//! Limits ([`limits`]): a receiver keeps at most [`limits::MAX_SENDER_KEY_STATES`]
//! chains per sender and distribution, at most [`limits::MAX_MESSAGE_KEYS`] keys of
//! skipped iterations per chain (older skipped messages are then refused as
//! [`GroupDecryptError::DuplicateMessage`]), and accepts a message at most
//! [`limits::MAX_FORWARD_JUMP`] iterations ahead. A decrypt that fails changes nothing.
//! Iteration `u32::MAX` is never used: a sender stops before it
//! ([`GroupEncryptError::ChainExhausted`]), a receiver refuses a message there or a
//! distribution starting there. A distribution whose signing key is of small order is
//! refused ([`GroupProcessError::WeakSigningKey`]): anyone could sign under such a key.
//!
//! When a member leaves, every remaining sender calls [`GroupSessions::rotate`] and sends
//! the new distribution message to the remaining members only: the old chain and its
//! signing key are gone, so nothing new is encrypted under the old key.
//!
//! [`GroupSessions`] keeps the records in memory; [`cipher`] runs the same operations
//! against a [`crate::store::SenderKeyStore`] (load, change a copy, save on success; one
//! atomic commit with a stored, redeliverable message on a transactional store).
//!
//! ```
//! use confide::group::{DistributionId, GroupSessions, Layout};
//! use confide::{Address, SystemRng};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut rng = SystemRng::new();
//! let group = DistributionId::random(&mut rng);
//! let (alice, bob) = (Address::new("alice", 1), Address::new("bob", 1));
//! let mut alice_keys = GroupSessions::new();
//! let mut bob_keys = GroupSessions::new();
//!
//! let skdm = alice_keys.distribution(&alice, group, Layout::Current, &mut rng);
//! bob_keys.process(&alice, group, &skdm)?; // delivered over the pairwise session
//! let msg = alice_keys.encrypt(&alice, group, b"hello group", &mut rng)?;
//! assert_eq!(bob_keys.decrypt(&alice, group, &msg)?.as_slice(), b"hello group");
//! # Ok(()) }
//! ```

mod chain;
pub mod cipher;
mod error;
mod message;
mod record;

use std::collections::HashMap;

use rand_core::{CryptoRng, RngCore};
use zeroize::Zeroizing;

pub use cipher::{GroupDistributionError, GroupKeyProcessError, GroupReceiveError, GroupSendError};
pub use error::{
    GroupDecryptError, GroupEncryptError, GroupProcessError, GroupRecordError, GroupWireError,
};
pub use message::{
    SENDER_KEY_MESSAGE_TYPE, SenderKeyDistributionMessage, SenderKeyMessage, VERSION_BYTE,
};
pub use record::{RECORD_FORMAT_VERSION, SenderKeyRecord};

use crate::Address;

/// The bounds a receiver keeps to, the same as libsignal's.
pub mod limits {
    /// Chains kept per sender and distribution; the oldest is dropped beyond this.
    pub const MAX_SENDER_KEY_STATES: usize = 5;
    /// Keys of skipped iterations kept per chain; the oldest is dropped beyond this.
    pub const MAX_MESSAGE_KEYS: usize = 2000;
    /// How far ahead of the chain a message may be.
    pub const MAX_FORWARD_JUMP: u32 = 25_000;
}

/// Which group wire layout a group uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Layout {
    /// libsignal's current layout: distribution uuid, chain id, iteration.
    Current,
    /// The older layout of WhatsApp-style clients: key id and iteration.
    Legacy,
}

/// A distribution id: the 16-byte UUID naming one sender's key for one group.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DistributionId([u8; 16]);

impl DistributionId {
    /// From the UUID's 16 bytes.
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    /// A random (version 4) UUID.
    pub fn random<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        let mut b = [0u8; 16];
        rng.fill_bytes(&mut b);
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        Self(b)
    }

    /// The UUID's 16 bytes.
    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl std::fmt::Display for DistributionId {
    /// The hyphenated lowercase UUID form.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for DistributionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DistributionId({self})")
    }
}

/// A string that is not a hyphenated UUID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a hyphenated UUID")]
#[non_exhaustive]
pub struct UuidParseError;

impl std::str::FromStr for DistributionId {
    type Err = UuidParseError;

    /// Parses the hyphenated form (`8-4-4-4-12` hex digits, either case).
    fn from_str(s: &str) -> Result<Self, UuidParseError> {
        let bytes = s.as_bytes();
        if bytes.len() != 36 {
            return Err(UuidParseError);
        }
        let mut out = [0u8; 16];
        let mut n = 0;
        let mut i = 0;
        while i < 36 {
            if matches!(i, 8 | 13 | 18 | 23) {
                if bytes[i] != b'-' {
                    return Err(UuidParseError);
                }
                i += 1;
                continue;
            }
            let hi = hex_digit(bytes[i])?;
            let lo = hex_digit(bytes[i + 1])?;
            out[n] = (hi << 4) | lo;
            n += 1;
            i += 2;
        }
        Ok(Self(out))
    }
}

fn hex_digit(c: u8) -> Result<u8, UuidParseError> {
    match c {
        b'0'..=b'9' => Ok(c - b'0'),
        b'a'..=b'f' => Ok(c - b'a' + 10),
        b'A'..=b'F' => Ok(c - b'A' + 10),
        _ => Err(UuidParseError),
    }
}

/// Sender-key records of one device, keyed by (sender address, distribution id): the
/// device's own sending chains and the chains learned from other members. A small
/// owned container; apps with their own storage use [`SenderKeyRecord`] directly.
#[derive(Default)]
pub struct GroupSessions {
    records: HashMap<(Address, DistributionId), SenderKeyRecord>,
}

impl GroupSessions {
    /// No records.
    pub fn new() -> Self {
        Self::default()
    }

    /// The record for `sender` and `distribution_id`, if any.
    pub fn record(
        &self,
        sender: &Address,
        distribution_id: DistributionId,
    ) -> Option<&SenderKeyRecord> {
        self.records.get(&(sender.clone(), distribution_id))
    }

    /// Stores (or replaces) a record, e.g. one loaded with [`SenderKeyRecord::from_bytes`].
    pub fn insert_record(&mut self, sender: Address, record: SenderKeyRecord) {
        if let Some(id) = record.distribution_id() {
            self.records.insert((sender, id), record);
        }
    }

    /// The distribution message for the own chain of `me` in this group, creating the
    /// chain (in `layout`) on first use. An existing own record of the other layout is
    /// replaced by a fresh chain.
    pub fn distribution<R: RngCore + CryptoRng>(
        &mut self,
        me: &Address,
        distribution_id: DistributionId,
        layout: Layout,
        rng: &mut R,
    ) -> SenderKeyDistributionMessage {
        let record = self
            .records
            .entry((me.clone(), distribution_id))
            .or_insert_with(|| SenderKeyRecord::new(distribution_id, layout));
        if record.layout() != layout {
            *record = SenderKeyRecord::new(distribution_id, layout);
        }
        record.distribution(rng)
    }

    /// Starts a fresh own chain (after a member left); see [`SenderKeyRecord::rotate`].
    /// Keeps the record's layout (current layout when there was none).
    pub fn rotate<R: RngCore + CryptoRng>(
        &mut self,
        me: &Address,
        distribution_id: DistributionId,
        rng: &mut R,
    ) -> SenderKeyDistributionMessage {
        self.records
            .entry((me.clone(), distribution_id))
            .or_insert_with(|| SenderKeyRecord::new(distribution_id, Layout::Current))
            .rotate(rng)
    }

    /// Processes a distribution message from `sender` for the group `distribution_id`
    /// (a current-layout message must name it; a legacy one names none).
    pub fn process(
        &mut self,
        sender: &Address,
        distribution_id: DistributionId,
        message: &SenderKeyDistributionMessage,
    ) -> Result<(), GroupProcessError> {
        let key = (sender.clone(), distribution_id);
        let mut record = match self.records.get(&key) {
            Some(r) if r.layout() == message.layout() => r.clone(),
            _ => SenderKeyRecord::new(distribution_id, message.layout()),
        };
        record.process(message)?;
        self.records.insert(key, record);
        Ok(())
    }

    /// Encrypts a group message with the own chain of `me`.
    pub fn encrypt<R: RngCore + CryptoRng>(
        &mut self,
        me: &Address,
        distribution_id: DistributionId,
        plaintext: &[u8],
        rng: &mut R,
    ) -> Result<SenderKeyMessage, GroupEncryptError> {
        self.records
            .get_mut(&(me.clone(), distribution_id))
            .ok_or(GroupEncryptError::NoSenderKey)?
            .encrypt(plaintext, rng)
    }

    /// Decrypts a group message from `sender` in the group `distribution_id` (a
    /// current-layout message must name it; a legacy one names none).
    pub fn decrypt(
        &mut self,
        sender: &Address,
        distribution_id: DistributionId,
        message: &SenderKeyMessage,
    ) -> Result<Zeroizing<Vec<u8>>, GroupDecryptError> {
        self.records
            .get_mut(&(sender.clone(), distribution_id))
            .ok_or(GroupDecryptError::NoSenderKey {
                chain_id: message.chain_id(),
            })?
            .decrypt(message)
    }
}

impl std::fmt::Debug for GroupSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupSessions")
            .field("records", &self.records.len())
            .finish()
    }
}
