//! How far the device trusts a contact's identity key: the identity-assurance state of
//! the privacy model.
//!
//! A key the device holds for a contact was either never checked ([`Unverified`]),
//! matched a key directory's proof ([`Directory`]), was compared by the user with the
//! contact's own screen ([`VerifiedByHand`]), or contradicts the directory
//! ([`Mismatch`]: the warning). An [`AssuranceRecord`] remembers each check with the key
//! it was made for, so when the contact's key changes every earlier check lapses and
//! the contact is unverified again.
//!
//! [`Unverified`]: IdentityAssurance::Unverified
//! [`Directory`]: IdentityAssurance::Directory
//! [`VerifiedByHand`]: IdentityAssurance::VerifiedByHand
//! [`Mismatch`]: IdentityAssurance::Mismatch

use std::collections::BTreeSet;

use prost::Message;

use crate::keys::IdentityKey;
use crate::proto::assurance as pb;
use crate::{Address, Timestamp};

/// The [`StateStore`](crate::store::StateStore) kind of a contact's [`AssuranceRecord`]
/// (key: the contact's address, `name.device_id`).
pub const ASSURANCE_KIND: &str = "identity.assurance";

/// The kind of the row listing every contact with an [`AssuranceRecord`] (key `""`).
pub const ASSURANCE_INDEX_KIND: &str = "identity.assurance_index";

/// The format written by this release.
const FORMAT_VERSION: u32 = 1;

/// The row key of `contact`'s record: `name.device_id`. Unambiguous, since the device id
/// after the last `.` holds no `.`.
pub(crate) fn address_key(contact: &Address) -> String {
    format!("{}.{}", contact.name(), contact.device_id())
}

/// How far the device trusts the identity key it holds for a contact.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IdentityAssurance {
    /// No check was made for the key held now (or none is held).
    Unverified,
    /// A key directory's proof, checked at `epoch`, lists the key held now.
    Directory {
        /// The directory epoch the proof was checked at.
        epoch: u64,
    },
    /// The user compared the security code for the key held now with the contact.
    VerifiedByHand,
    /// A key directory's proof, checked at `epoch`, lists another key than the one held
    /// now: someone may be between the user and the contact.
    Mismatch {
        /// The directory epoch the proof was checked at.
        epoch: u64,
    },
}

impl IdentityAssurance {
    /// Stable code, for apps that ship their own texts.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unverified => "identity_unverified",
            Self::Directory { .. } => "identity_verified_by_directory",
            Self::VerifiedByHand => "identity_verified_by_hand",
            Self::Mismatch { .. } => "identity_mismatch",
        }
    }

    /// Default English notice text: what was checked, and what to do about it.
    pub fn default_text(&self) -> String {
        match self {
            Self::Unverified => "The security code for this chat has not been verified. To make sure your messages go only to this contact, compare the security code with them in person.".to_owned(),
            Self::Directory { epoch } => format!(
                "The security code for this chat was verified automatically: it matches the key this contact published in the public key directory (directory epoch {epoch}). To be certain, you can also compare the security code with them in person."
            ),
            Self::VerifiedByHand => "You verified the security code for this chat by comparing it with this contact. If their security code changes, it is no longer verified.".to_owned(),
            Self::Mismatch { epoch } => format!(
                "Warning: the security code for this chat does not match the key this contact published in the public key directory (directory epoch {epoch}). Someone may be able to read your messages. Compare the security code with them in person before you send anything sensitive."
            ),
        }
    }
}

/// "Bob's security code changed twice since you last checked.", or `None` when it did
/// not change. Counts up to nine are words, larger ones digits.
pub fn key_changes_text(contact_name: &str, changes: usize) -> Option<String> {
    let times = match changes {
        0 => return None,
        1 => "once".to_owned(),
        2 => "twice".to_owned(),
        n @ 3..=9 => {
            const WORDS: [&str; 7] = ["three", "four", "five", "six", "seven", "eight", "nine"];
            let word = WORDS.get(n - 3).copied().unwrap_or("several");
            format!("{word} times")
        }
        n => format!("{n} times"),
    };
    let whose = if contact_name.trim().is_empty() {
        "This contact's".to_owned()
    } else {
        format!("{contact_name}'s")
    };
    Some(format!(
        "{whose} security code changed {times} since you last checked."
    ))
}

/// A stored assurance record or index that cannot be loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AssuranceLoadError {
    /// The protobuf does not decode.
    #[error("persisted identity assurance is malformed")]
    Malformed,
    /// Written in a format this release does not know.
    #[error("persisted identity assurance format {found} is not supported")]
    UnsupportedVersion {
        /// The format found.
        found: u32,
    },
    /// A field holds a value outside its domain.
    #[error("persisted identity assurance has an invalid {field}")]
    InvalidField {
        /// The field's name in `assurance.proto`.
        field: &'static str,
    },
}

fn check_version(found: u32) -> Result<(), AssuranceLoadError> {
    if found == FORMAT_VERSION {
        Ok(())
    } else {
        Err(AssuranceLoadError::UnsupportedVersion { found })
    }
}

fn key(bytes: &[u8], field: &'static str) -> Result<IdentityKey, AssuranceLoadError> {
    IdentityKey::try_from(bytes).map_err(|_| AssuranceLoadError::InvalidField { field })
}

/// A check made for one key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Check {
    key: IdentityKey,
    epoch: u64,
    at: Timestamp,
}

/// What the device learned about one contact's identity key, each check with the key it
/// was made for. Precedence, for the key held now: a directory mismatch (the warning)
/// wins over a comparison by hand, which wins over a directory match; a check made for
/// another key has lapsed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AssuranceRecord {
    hand: Option<(IdentityKey, Timestamp)>,
    directory: Option<Check>,
    mismatch: Option<Check>,
}

impl AssuranceRecord {
    /// A record with no checks.
    pub fn new() -> Self {
        Self::default()
    }

    /// A directory proof at `epoch` lists `key`. It replaces the last directory match,
    /// and clears a mismatch recorded for `key` at this epoch or an earlier one: the
    /// directory now agrees with the key held.
    pub fn directory_verified(&mut self, key: &IdentityKey, epoch: u64, at: Timestamp) {
        self.directory = Some(Check {
            key: *key,
            epoch,
            at,
        });
        if self
            .mismatch
            .is_some_and(|m| m.key == *key && m.epoch <= epoch)
        {
            self.mismatch = None;
        }
    }

    /// A directory proof at `epoch` lists another key than `held`, the key the device
    /// holds. It stays the state for `held` until a directory proof lists `held` again.
    pub fn directory_mismatch(&mut self, held: &IdentityKey, epoch: u64, at: Timestamp) {
        self.mismatch = Some(Check {
            key: *held,
            epoch,
            at,
        });
    }

    /// The user compared the security code for `key` with the contact.
    pub fn verified_by_hand(&mut self, key: &IdentityKey, at: Timestamp) {
        self.hand = Some((*key, at));
    }

    /// The assurance of `held`, the key the device holds now (`None`: no key held, so
    /// [`IdentityAssurance::Unverified`]).
    pub fn state(&self, held: Option<&IdentityKey>) -> IdentityAssurance {
        self.assess(held).0
    }

    /// When the check behind [`AssuranceRecord::state`] was made (`None` when
    /// unverified).
    pub fn since(&self, held: Option<&IdentityKey>) -> Option<Timestamp> {
        self.assess(held).1
    }

    fn assess(&self, held: Option<&IdentityKey>) -> (IdentityAssurance, Option<Timestamp>) {
        let Some(held) = held else {
            return (IdentityAssurance::Unverified, None);
        };
        if let Some(m) = self.mismatch.filter(|m| m.key == *held) {
            return (IdentityAssurance::Mismatch { epoch: m.epoch }, Some(m.at));
        }
        if let Some((_, at)) = self.hand.filter(|(k, _)| k == held) {
            return (IdentityAssurance::VerifiedByHand, Some(at));
        }
        if let Some(d) = self.directory.filter(|d| d.key == *held) {
            return (IdentityAssurance::Directory { epoch: d.epoch }, Some(d.at));
        }
        (IdentityAssurance::Unverified, None)
    }

    /// Serializes to `assurance.proto` `AssuranceRecord`, format 1.
    pub fn to_bytes(&self) -> Vec<u8> {
        pb::AssuranceRecord {
            format_version: FORMAT_VERSION,
            hand: self.hand.map(|(k, at)| pb::HandVerified {
                identity_key: k.serialize().to_vec(),
                at_ms: at.as_millis(),
            }),
            directory: self.directory.map(|d| pb::DirectoryVerified {
                identity_key: d.key.serialize().to_vec(),
                epoch: d.epoch,
                at_ms: d.at.as_millis(),
            }),
            mismatch: self.mismatch.map(|m| pb::DirectoryMismatch {
                held_key: m.key.serialize().to_vec(),
                epoch: m.epoch,
                at_ms: m.at.as_millis(),
            }),
        }
        .encode_to_vec()
    }

    /// Loads what [`AssuranceRecord::to_bytes`] wrote; refuses another format and any
    /// key that is not a valid identity key.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, AssuranceLoadError> {
        let p = pb::AssuranceRecord::decode(bytes).map_err(|_| AssuranceLoadError::Malformed)?;
        check_version(p.format_version)?;
        let hand = p
            .hand
            .map(|h| {
                Ok::<_, AssuranceLoadError>((
                    key(&h.identity_key, "hand.identity_key")?,
                    Timestamp::from_millis(h.at_ms),
                ))
            })
            .transpose()?;
        let directory = p
            .directory
            .map(|d| {
                Ok::<_, AssuranceLoadError>(Check {
                    key: key(&d.identity_key, "directory.identity_key")?,
                    epoch: d.epoch,
                    at: Timestamp::from_millis(d.at_ms),
                })
            })
            .transpose()?;
        let mismatch = p
            .mismatch
            .map(|m| {
                Ok::<_, AssuranceLoadError>(Check {
                    key: key(&m.held_key, "mismatch.held_key")?,
                    epoch: m.epoch,
                    at: Timestamp::from_millis(m.at_ms),
                })
            })
            .transpose()?;
        Ok(Self {
            hand,
            directory,
            mismatch,
        })
    }
}

/// One contact's assurance, as the account report lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContactAssurance {
    /// The contact.
    pub contact: Address,
    /// The assurance of the key held for it now.
    pub state: IdentityAssurance,
    /// When the check behind `state` was made (`None` when unverified).
    pub since: Option<Timestamp>,
}

/// The contacts that have an [`AssuranceRecord`], kept in the index row so the report
/// can list them without scanning the store.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct AssuranceIndex {
    contacts: BTreeSet<Address>,
}

impl AssuranceIndex {
    /// Adds `contact`; returns whether it was new.
    pub(crate) fn insert(&mut self, contact: &Address) -> bool {
        self.contacts.insert(contact.clone())
    }

    /// The contacts, sorted by address.
    pub(crate) fn contacts(&self) -> impl Iterator<Item = &Address> {
        self.contacts.iter()
    }

    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        pb::AssuranceIndex {
            format_version: FORMAT_VERSION,
            contacts: self
                .contacts
                .iter()
                .map(|a| pb::Contact {
                    name: a.name().to_owned(),
                    device_id: a.device_id(),
                })
                .collect(),
        }
        .encode_to_vec()
    }

    /// Loads what [`AssuranceIndex::to_bytes`] wrote; refuses duplicates and an order
    /// `to_bytes` never writes.
    pub(crate) fn from_bytes(bytes: &[u8]) -> Result<Self, AssuranceLoadError> {
        let p = pb::AssuranceIndex::decode(bytes).map_err(|_| AssuranceLoadError::Malformed)?;
        check_version(p.format_version)?;
        let mut contacts = BTreeSet::new();
        for c in p.contacts {
            let a = Address::new(c.name, c.device_id);
            if contacts.last().is_some_and(|last| *last >= a) {
                return Err(AssuranceLoadError::InvalidField { field: "contacts" });
            }
            contacts.insert(a);
        }
        Ok(Self { contacts })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_index_round_trips_sorted_and_refuses_what_it_never_writes() {
        let mut index = AssuranceIndex::default();
        assert!(index.insert(&Address::new("carol", 1)));
        assert!(index.insert(&Address::new("bob", 2)));
        assert!(index.insert(&Address::new("bob", 1)));
        assert!(!index.insert(&Address::new("bob", 1)));
        let loaded = AssuranceIndex::from_bytes(&index.to_bytes()).unwrap();
        assert_eq!(loaded, index);
        let order: Vec<String> = loaded.contacts().map(address_key).collect();
        assert_eq!(order, ["bob.1", "bob.2", "carol.1"]);
        let written = |contacts: &[(&str, u32)]| {
            pb::AssuranceIndex {
                format_version: FORMAT_VERSION,
                contacts: contacts
                    .iter()
                    .map(|(n, d)| pb::Contact {
                        name: (*n).to_owned(),
                        device_id: *d,
                    })
                    .collect(),
            }
            .encode_to_vec()
        };
        let bad = AssuranceLoadError::InvalidField { field: "contacts" };
        assert_eq!(
            AssuranceIndex::from_bytes(&written(&[("bob", 1), ("bob", 1)])),
            Err(bad)
        );
        assert_eq!(
            AssuranceIndex::from_bytes(&written(&[("carol", 1), ("bob", 1)])),
            Err(bad)
        );
        assert_eq!(
            AssuranceIndex::from_bytes(&[0x08, 0x02]),
            Err(AssuranceLoadError::UnsupportedVersion { found: 2 })
        );
        assert_eq!(
            AssuranceIndex::from_bytes(&[0x12]),
            Err(AssuranceLoadError::Malformed)
        );
    }

    #[test]
    fn a_name_with_dots_keeps_its_row_key_unambiguous() {
        assert_eq!(address_key(&Address::new("a.b", 7)), "a.b.7");
        assert_ne!(
            address_key(&Address::new("a.1", 2)),
            address_key(&Address::new("a", 12))
        );
    }
}
