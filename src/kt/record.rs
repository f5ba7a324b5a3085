//! What a device keeps about the directory, and the rules that compare a new proof with
//! it: pure functions, so every rule is unit-tested without a store.

use prost::Message;

use crate::Timestamp;
use crate::error::RecordError;
use crate::keys::IdentityKey;
use crate::kt::{SignedHead, Verified};
use crate::proto::kt as pb;

/// The format of the records' bytes.
const FORMAT_VERSION: u32 = 1;

fn check_format(found: u32) -> Result<(), RecordError> {
    if found == FORMAT_VERSION {
        Ok(())
    } else {
        Err(RecordError::UnsupportedVersion { found })
    }
}

fn root32(b: &[u8], field: &'static str) -> Result<[u8; 32], RecordError> {
    b.try_into()
        .map_err(|_| RecordError::Inconsistent { field })
}

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
        pb::ContactRecord {
            format_version: FORMAT_VERSION,
            epoch: self.epoch,
            root: self.root.to_vec(),
            version: self.version,
            key: self.key.serialize().to_vec(),
            at: self.at.as_millis(),
        }
        .encode_to_vec()
    }

    /// Parses [`ContactRecord::to_bytes`]'s output.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, RecordError> {
        let p = pb::ContactRecord::decode(bytes).map_err(|_| RecordError::Malformed)?;
        check_format(p.format_version)?;
        Ok(Self {
            epoch: p.epoch,
            root: root32(&p.root, "root")?,
            version: p.version,
            key: IdentityKey::try_from(p.key.as_slice()).map_err(RecordError::Key)?,
            at: Timestamp::from_millis(p.at),
        })
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
        self.heads
            .binary_search_by_key(&epoch, |&(e, _)| e)
            .ok()
            .and_then(|i| self.heads.get(i))
            .map(|&(_, r)| r)
    }

    /// The log with `(epoch, root)` in it (kept sorted by epoch; an epoch already there
    /// keeps its root, which the fork check compared first), the oldest epoch dropped
    /// beyond [`HeadLog::CAPACITY`].
    fn with(&self, epoch: u64, root: [u8; 32]) -> Self {
        let mut heads = self.heads.clone();
        if let Err(i) = heads.binary_search_by_key(&epoch, |&(e, _)| e) {
            heads.insert(i, (epoch, root));
        }
        while heads.len() > Self::CAPACITY {
            heads.remove(0);
        }
        Self { heads }
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
        pb::HeadLog {
            format_version: FORMAT_VERSION,
            heads: self
                .heads
                .iter()
                .map(|&(epoch, root)| pb::EpochRoot {
                    epoch,
                    root: root.to_vec(),
                })
                .collect(),
        }
        .encode_to_vec()
    }

    /// Parses [`HeadLog::to_bytes`]'s output: at most [`HeadLog::CAPACITY`] heads in
    /// strictly increasing epochs, each with a 32-byte root.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, RecordError> {
        let p = pb::HeadLog::decode(bytes).map_err(|_| RecordError::Malformed)?;
        check_format(p.format_version)?;
        if p.heads.len() > Self::CAPACITY {
            return Err(RecordError::Inconsistent { field: "heads" });
        }
        let mut heads: Vec<(u64, [u8; 32])> = Vec::with_capacity(p.heads.len());
        for h in &p.heads {
            if heads.last().is_some_and(|&(e, _)| e >= h.epoch) {
                return Err(RecordError::Inconsistent { field: "heads" });
            }
            heads.push((h.epoch, root32(&h.root, "heads.root")?));
        }
        Ok(Self { heads })
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

/// A rule a new proof broke against what the device kept (the device reports each as the
/// [`KtError`](crate::device::KtError) variant of the same name).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum RecordViolation {
    /// The head is older than the contact's last verified one.
    EpochRolledBack { last: u64, got: u64 },
    /// The contact's version is older than the last verified one.
    VersionRolledBack { last: u64, got: u64 },
    /// A second root for an epoch already seen.
    ForkedRoot { epoch: u64 },
    /// The directory moved on to another key while the device still holds the verified one.
    UnexplainedKeyChange {
        last_version: u64,
        version: u64,
        directory_key: IdentityKey,
    },
    /// The directory disagrees with a version verified before.
    HistoryConflict { version: u64 },
    /// A directory value is not an identity key.
    MalformedValue,
}

/// The checks on the head alone: no second root for an epoch already seen (in the log,
/// or as the contact's last head), and no epoch older than the contact's last.
fn check_head(
    prev: Option<&ContactRecord>,
    log: &HeadLog,
    head: &SignedHead,
) -> Result<(), RecordViolation> {
    let epoch = head.epoch();
    let seen = log
        .root(epoch)
        .or(prev.filter(|p| p.epoch == epoch).map(|p| p.root));
    if seen.is_some_and(|r| r != head.root()) {
        return Err(RecordViolation::ForkedRoot { epoch });
    }
    if let Some(p) = prev.filter(|p| p.epoch > epoch) {
        return Err(RecordViolation::EpochRolledBack {
            last: p.epoch,
            got: epoch,
        });
    }
    Ok(())
}

fn identity(value: &[u8]) -> Result<IdentityKey, RecordViolation> {
    IdentityKey::try_from(value).map_err(|_| RecordViolation::MalformedValue)
}

/// Compares a verified lookup (`verified`, under `head`) with the contact's last record
/// and the device's head log, for the key the device holds (`held`). In order:
/// [`ForkedRoot`](RecordViolation::ForkedRoot) for a second root of a known epoch,
/// [`EpochRolledBack`](RecordViolation::EpochRolledBack) and
/// [`VersionRolledBack`](RecordViolation::VersionRolledBack) below the last record,
/// [`MalformedValue`](RecordViolation::MalformedValue),
/// [`HistoryConflict`](RecordViolation::HistoryConflict) for another key at the last
/// verified version, and
/// [`UnexplainedKeyChange`](RecordViolation::UnexplainedKeyChange) when the directory
/// moved to a key other than `held` while `held` is still the last verified key.
///
/// Otherwise returns the new record, the log with the head in it, and
/// [`KeyCheck::Verified`] (the directory has `held`) or [`KeyCheck::Mismatch`]. On a
/// mismatch the record still takes the directory's `(epoch, version, key)`: it is what the
/// directory committed to, so a later rollback below it is still caught, and the next
/// check against an unchanged directory reports the same mismatch.
pub(crate) fn check_lookup(
    prev: Option<&ContactRecord>,
    log: &HeadLog,
    head: &SignedHead,
    verified: &Verified,
    held: &IdentityKey,
    now: Timestamp,
) -> Result<(ContactRecord, HeadLog, KeyCheck), RecordViolation> {
    check_head(prev, log, head)?;
    if let Some(p) = prev.filter(|p| p.version > verified.version) {
        return Err(RecordViolation::VersionRolledBack {
            last: p.version,
            got: verified.version,
        });
    }
    let directory_key = identity(&verified.value)?;
    if let Some(p) = prev {
        if p.version == verified.version && p.key != directory_key {
            return Err(RecordViolation::HistoryConflict { version: p.version });
        }
        if p.version < verified.version && directory_key != *held && *held == p.key {
            return Err(RecordViolation::UnexplainedKeyChange {
                last_version: p.version,
                version: verified.version,
                directory_key,
            });
        }
    }
    let (epoch, version) = (head.epoch(), verified.version);
    let check = if directory_key == *held {
        KeyCheck::Verified { epoch, version }
    } else {
        KeyCheck::Mismatch {
            epoch,
            version,
            directory_key,
        }
    };
    let record = ContactRecord {
        epoch,
        root: head.root(),
        version,
        key: directory_key,
        at: now,
    };
    Ok((record, log.with(epoch, head.root()), check))
}

/// Compares a verified complete history (`versions`, newest first, under `head`) with the
/// contact's last record and the head log: the head checks of [`check_lookup`], no newest
/// version below the last verified one
/// ([`VersionRolledBack`](RecordViolation::VersionRolledBack)), every value an identity
/// key, and the last verified version present with the last verified key
/// ([`HistoryConflict`](RecordViolation::HistoryConflict)).
///
/// Returns the history, with `new_since_last_check` the number of versions newer than the
/// last verified one (all of them for a contact never verified), and the log with the
/// head in it. The contact's record does not move: only a lookup verifies the held key.
pub(crate) fn check_history(
    prev: Option<&ContactRecord>,
    log: &HeadLog,
    head: &SignedHead,
    versions: &[Verified],
) -> Result<(KeyHistory, HeadLog), RecordViolation> {
    check_head(prev, log, head)?;
    let mut out = Vec::with_capacity(versions.len());
    for v in versions {
        out.push(KeyVersion {
            epoch: v.epoch,
            version: v.version,
            key: identity(&v.value)?,
        });
    }
    let newest = out.iter().map(|v| v.version).max().unwrap_or(0);
    let new_since_last_check = match prev {
        None => out.len(),
        Some(p) => {
            if p.version > newest {
                return Err(RecordViolation::VersionRolledBack {
                    last: p.version,
                    got: newest,
                });
            }
            if !out.iter().any(|v| v.version == p.version && v.key == p.key) {
                return Err(RecordViolation::HistoryConflict { version: p.version });
            }
            out.iter().filter(|v| v.version > p.version).count()
        }
    };
    let history = KeyHistory {
        versions: out,
        new_since_last_check,
    };
    Ok((history, log.with(head.epoch(), head.root())))
}
