//! What a device keeps about the directory, and the rules that compare a new proof with
//! it: pure functions, so every rule is unit-tested without a store.

use crate::Timestamp;
use crate::keys::IdentityKey;
use crate::kt::{SignedHead, Verified};

/// The last lookup a device verified for one contact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContactRecord {
    epoch: u64,
    root: [u8; 32],
    version: u64,
    key: IdentityKey,
    at: Timestamp,
}

impl ContactRecord {
    /// The head's epoch of the last verified lookup.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// That head's root.
    pub fn root(&self) -> [u8; 32] {
        self.root
    }

    /// The contact's version in the directory.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The key the directory had at that version.
    pub fn key(&self) -> &IdentityKey {
        &self.key
    }

    /// When the device verified it.
    pub fn at(&self) -> Timestamp {
        self.at
    }

    /// Serialized (`proto/kt.proto` `ContactRecord`).
    pub fn to_bytes(&self) -> Vec<u8> {
        todo!()
    }

    /// Parses [`ContactRecord::to_bytes`]'s output.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, crate::error::RecordError> {
        todo!("{bytes:?}")
    }
}

/// The heads a device saw lately, across all contacts, so a second root for a known epoch
/// (a fork shown to this device) is caught whichever contact it comes with.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HeadLog {
    heads: Vec<(u64, [u8; 32])>,
}

impl HeadLog {
    /// The most heads kept; the oldest epochs go first.
    pub const CAPACITY: usize = 1024;

    /// The root seen for `epoch`, if it is still in the log.
    pub fn root(&self, epoch: u64) -> Option<[u8; 32]> {
        todo!("{epoch}")
    }

    /// How many heads the log holds.
    pub fn len(&self) -> usize {
        self.heads.len()
    }

    /// Whether the log is empty.
    pub fn is_empty(&self) -> bool {
        self.heads.is_empty()
    }

    /// Serialized (`proto/kt.proto` `HeadLog`).
    pub fn to_bytes(&self) -> Vec<u8> {
        todo!()
    }

    /// Parses [`HeadLog::to_bytes`]'s output.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, crate::error::RecordError> {
        todo!("{bytes:?}")
    }
}

/// What the directory says about the key the device holds for a contact.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyCheck {
    /// The directory has the held key.
    Verified {
        /// The head's epoch.
        epoch: u64,
        /// The contact's version.
        version: u64,
    },
    /// The directory has another key than the one held.
    Mismatch {
        /// The head's epoch.
        epoch: u64,
        /// The contact's version.
        version: u64,
        /// The directory's key.
        directory_key: IdentityKey,
    },
}

/// One version of a contact's key in the directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyVersion {
    /// The epoch it was published in.
    pub epoch: u64,
    /// Its version.
    pub version: u64,
    /// The key.
    pub key: IdentityKey,
}

/// A contact's key history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyHistory {
    /// Every version, newest first.
    pub versions: Vec<KeyVersion>,
    /// How many versions are newer than the last one this device checked.
    pub new_since_last_check: usize,
}

/// A rule a new proof broke against what the device kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum RecordViolation {
    EpochRolledBack {
        last: u64,
        got: u64,
    },
    VersionRolledBack {
        last: u64,
        got: u64,
    },
    ForkedRoot {
        epoch: u64,
    },
    UnexplainedKeyChange {
        last_version: u64,
        version: u64,
        directory_key: IdentityKey,
    },
    HistoryConflict {
        version: u64,
    },
    MalformedValue,
}

/// Compares a verified lookup with the contact's last record and the head log.
pub(crate) fn check_lookup(
    prev: Option<&ContactRecord>,
    log: &HeadLog,
    head: &SignedHead,
    verified: &Verified,
    held: &IdentityKey,
    now: Timestamp,
) -> Result<(ContactRecord, HeadLog, KeyCheck), RecordViolation> {
    todo!("{prev:?}{log:?}{head:?}{verified:?}{held:?}{now:?}")
}

/// Compares a verified history with the contact's last record and the head log.
pub(crate) fn check_history(
    prev: Option<&ContactRecord>,
    log: &HeadLog,
    head: &SignedHead,
    versions: &[Verified],
) -> Result<(KeyHistory, HeadLog), RecordViolation> {
    todo!("{prev:?}{log:?}{head:?}{versions:?}")
}
