//! End-to-end encrypted backups of a [`Device`]: [`Device::export_backup`] and
//! [`Device::restore_backup`].
//!
//! A backup holds the privacy-model state (consent ledger with the legacy opt-out,
//! account activity, attestation serials, business-chat disclosure trackers),
//! contacts' identity keys with their verification records, the groups and the message
//! history the app hands over. It never holds the device's identity key, ratchet
//! state, prekeys or sender-key chains: restoring an old chain would encrypt again
//! under message keys already used, and a copied identity key would let whoever holds
//! the backup impersonate the device. So a restored device has a new identity and starts
//! new sessions, and its contacts are shown that its key changed, as WhatsApp does.

use std::io::{Read, Write};

use rand_core::{CryptoRng, RngCore};
use zeroize::Zeroizing;

use super::assurance::load_index;
use super::privacy::disclosure_index;
use super::state::{self, RowKey};
use super::{Clock, Device, PrivacyStateError};
use crate::assurance::{ASSURANCE_INDEX_KIND, ASSURANCE_KIND, address_key};
use crate::backup::payload::{Item, Meta, PayloadReader, PayloadWriter, ReadFailure};
use crate::backup::{
    BackupGroup, BackupKey, BackupMessage, BackupReader, BackupSetting, BackupStamp, BackupStatus,
    BackupWriter, KeyKind, PayloadError, ReadError, RestoreRecord, WriteError,
};
use crate::error::StoreError;
use crate::policy::ConsentLedger;
use crate::store::{CommitOutcome, ProtocolStore, RowVersion, StateWrite};
use crate::{Address, Timestamp};

use super::state_kind::{
    ACTIVITY, ATTESTATION_VERIFIER, BACKUP_STATUS, CONSENT_LEDGER, DISCLOSURE_INDEX,
    DISCLOSURE_TRACKER,
};

/// The state kinds a backup carries and a restore writes. Anything else in a backup
/// (prekey ids, key-transparency heads, a future kind) is refused.
const CARRIED: [&str; 7] = [
    CONSENT_LEDGER,
    ACTIVITY,
    ATTESTATION_VERIFIER,
    DISCLOSURE_INDEX,
    DISCLOSURE_TRACKER,
    ASSURANCE_INDEX_KIND,
    ASSURANCE_KIND,
];

/// What an app hands to [`Device::export_backup`] beside the device's own state.
#[derive(Clone, Debug, Default)]
pub struct BackupExtras<'a> {
    /// Contacts whose identity keys to carry, beyond those with a verification record
    /// (which are always carried).
    pub contacts: &'a [Address],
    /// The groups the app keeps, with their members.
    pub groups: &'a [BackupGroup],
}

/// [`Device::export_backup`] failed. The device's state is unchanged, except that a
/// backup counter may have moved on (a later backup is still newer).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackupExportError {
    /// The user's setting is [`BackupSetting::Off`].
    #[error("backups are off")]
    Off,
    /// The device's state did not load.
    #[error("device state: {0}")]
    State(#[from] PrivacyStateError),
    /// The store failed.
    #[error("store failed: {0}")]
    Store(#[from] StoreError),
    /// Writing the file failed.
    #[error("writing the backup failed: {0}")]
    Write(#[from] WriteError),
    /// An item too large for a backup record (over 16 MiB).
    #[error("a backup item is too large")]
    TooLarge,
}

/// [`Device::restore_backup`] failed; the device's store is exactly as it was.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackupRestoreError {
    /// The file is not a backup this key opens, or it was changed or cut.
    #[error("the backup did not open: {0}")]
    Read(#[from] ReadError),
    /// The backup opened but its contents are not what confide writes.
    #[error("the backup's contents are malformed: {0}")]
    Payload(#[from] PayloadError),
    /// The backup belongs to another account.
    #[error("the backup belongs to another account")]
    OtherAccount,
    /// The backup is older than the latest one the caller knows of: an old file served
    /// again (a rollback).
    #[error("the backup is generation {found}, older than the expected {expected}")]
    RolledBack {
        /// The file's generation.
        found: u64,
        /// The generation expected.
        expected: u64,
    },
    /// The backup has the expected generation but is another file.
    #[error("the backup is not the one expected")]
    NotTheExpected,
    /// A backup carries a kind of state a restore never writes.
    #[error("the backup carries state it must not: {kind}")]
    Forbidden {
        /// The kind found (cut to 64 characters).
        kind: String,
    },
    /// The device already holds state a restore would overwrite: restore onto a new
    /// device, before it records anything.
    #[error("the device already holds state; restore onto a new device")]
    NotEmpty,
    /// The device's state did not load.
    #[error("device state: {0}")]
    State(#[from] PrivacyStateError),
    /// The store failed.
    #[error("store failed: {0}")]
    Store(#[from] StoreError),
}

/// What a restore brought back for the app.
#[derive(Debug)]
#[non_exhaustive]
pub struct Restored {
    /// Which backup it was.
    pub stamp: BackupStamp,
    /// When the backup was written.
    pub created_at: Timestamp,
    /// The contacts whose identity keys came back.
    pub contacts: Vec<Address>,
    /// The groups.
    pub groups: Vec<BackupGroup>,
    /// The history, without what expired before the restore.
    pub messages: Vec<BackupMessage>,
    /// Messages in the backup that had expired by the time of the restore.
    pub expired: usize,
}

/// The setting, the new generation and the carried rows (kind, key, value).
type Snapshot = (
    BackupSetting,
    u64,
    Vec<(&'static str, String, Zeroizing<Vec<u8>>)>,
);

fn status(b: Option<&Zeroizing<Vec<u8>>>) -> Result<BackupStatus, PrivacyStateError> {
    b.map_or(Ok(BackupStatus::default()), |b| {
        BackupStatus::from_bytes(b).ok_or(PrivacyStateError::Corrupt {
            kind: BACKUP_STATUS,
        })
    })
}

fn io_write(e: std::io::Error) -> BackupExportError {
    if e.kind() == std::io::ErrorKind::InvalidInput {
        BackupExportError::TooLarge
    } else {
        BackupExportError::Write(WriteError::Io(e))
    }
}

/// The reader's own error back out of the `io::Error` its `Read` returns.
fn read_failure(e: ReadFailure) -> BackupRestoreError {
    match e {
        ReadFailure::Payload(p) => BackupRestoreError::Payload(p),
        ReadFailure::Io(e) => BackupRestoreError::Read(
            if e.get_ref().is_some_and(|inner| inner.is::<ReadError>()) {
                e.into_inner()
                    .and_then(|inner| inner.downcast::<ReadError>().ok())
                    .map_or(ReadError::Tampered, |r| *r)
            } else {
                ReadError::Io(e)
            },
        ),
    }
}

impl<S: ProtocolStore, R: RngCore + CryptoRng, C: Clock> Device<S, R, C> {
    /// The user's backup setting and the device's backup record.
    pub fn backup_status(&self) -> Result<BackupStatus, PrivacyStateError> {
        status(state::read(self.state_store(), BACKUP_STATUS, "")?.as_ref())
    }

    /// Records the user's backup setting; on failure nothing changed.
    pub fn set_backup_setting(&self, setting: BackupSetting) -> Result<(), PrivacyStateError> {
        state::update(self.state_store(), &[(BACKUP_STATUS, "")], |v| {
            let mut s = status(v[0].as_ref())?;
            s.setting = setting;
            Ok(((), vec![s.to_bytes()]))
        })
    }

    /// Writes an end-to-end encrypted backup of this device to `out` under `key`, with
    /// `history` (the messages the app keeps; those already expired are left out) and
    /// `extras`. Returns the backup's stamp, which the device also keeps: hand it to the
    /// password vault, or keep it wherever the app can find it after losing the device,
    /// so that [`Device::restore_backup`] can refuse an older file.
    ///
    /// The device's state is read as one consistent snapshot: the rows are committed
    /// unchanged together with the new backup counter, so a concurrent change either
    /// lands before the snapshot or after it.
    pub fn export_backup<'h, W: Write>(
        &self,
        key: &BackupKey,
        extras: &BackupExtras<'_>,
        history: impl IntoIterator<Item = &'h BackupMessage>,
        out: W,
    ) -> Result<(W, BackupStamp), BackupExportError> {
        let now = self.clock.now();
        let st = self.state_store();
        let Some((setting, generation, rows)) = self.snapshot()? else {
            return Err(BackupExportError::Off);
        };
        let kind = match setting {
            BackupSetting::Off => return Err(BackupExportError::Off),
            BackupSetting::DigitKey => KeyKind::DigitKey,
            BackupSetting::PasswordVault => KeyKind::Vault,
        };
        let writer = {
            let mut rng = self.rng()?;
            BackupWriter::new(out, key, kind, generation, &mut *rng)?
        };
        let meta = Meta {
            account: self.address.name().to_owned(),
            device_id: self.address.device_id(),
            created_at: now,
            generation,
        };
        let mut p = PayloadWriter::start(writer, &meta).map_err(io_write)?;
        let mut contacts: Vec<Address> = Vec::new();
        for (kind, row_key, value) in &rows {
            p.state(kind, row_key, value).map_err(io_write)?;
            if *kind == ASSURANCE_INDEX_KIND {
                let index = load_index(Some(value))?;
                contacts.extend(index.contacts().cloned());
            }
        }
        contacts.extend(extras.contacts.iter().cloned());
        contacts.sort_by(|a, b| (a.name(), a.device_id()).cmp(&(b.name(), b.device_id())));
        contacts.dedup();
        for c in &contacts {
            if let Some(identity) = self.store.identity(c)? {
                p.contact(c, &identity).map_err(io_write)?;
            }
        }
        for g in extras.groups {
            p.group(g).map_err(io_write)?;
        }
        for m in history {
            if !m.lifecycle.is_expired(now) {
                p.message(m).map_err(io_write)?;
            }
        }
        let writer = p.end().map_err(io_write)?;
        let (out, stamp) = writer.finish()?;
        state::update::<_, PrivacyStateError>(st, &[(BACKUP_STATUS, "")], |v| {
            let mut s = status(v[0].as_ref())?;
            if s.last_backup
                .is_none_or(|(_, last)| last.generation < stamp.generation)
            {
                s.last_backup = Some((now, stamp));
            }
            Ok(((), vec![s.to_bytes()]))
        })?;
        Ok((out, stamp))
    }

    /// The carried rows, read consistently, and the next backup counter, committed
    /// together (the rows unchanged) so nothing moved in between. `None`, with nothing
    /// written, when backups are off.
    fn snapshot(&self) -> Result<Option<Snapshot>, PrivacyStateError> {
        let st = self.state_store();
        for _ in 0..crate::delivery::MAX_COMMIT_ATTEMPTS {
            // The indexes name the per-business and per-contact rows.
            let businesses = disclosure_index(state::read(st, DISCLOSURE_INDEX, "")?.as_ref())?;
            let contacts = load_index(state::read(st, ASSURANCE_INDEX_KIND, "")?.as_ref())?;
            let mut keys: Vec<(&'static str, String)> = vec![
                (BACKUP_STATUS, String::new()),
                (CONSENT_LEDGER, String::new()),
                (ACTIVITY, String::new()),
                (ATTESTATION_VERIFIER, String::new()),
                (DISCLOSURE_INDEX, String::new()),
                (ASSURANCE_INDEX_KIND, String::new()),
            ];
            keys.extend(businesses.into_iter().map(|b| (DISCLOSURE_TRACKER, b)));
            keys.extend(
                contacts
                    .contacts()
                    .map(|c| (ASSURANCE_KIND, address_key(c))),
            );
            let rows: Vec<RowKey<'_>> = keys.iter().map(|(k, key)| (*k, key.as_str())).collect();
            let mut values = Vec::with_capacity(rows.len());
            let mut versions = Vec::with_capacity(rows.len());
            for &(kind, key) in &rows {
                let (value, version) = st.load_state(kind, key)?;
                values.push(value);
                versions.push(version);
            }
            let mut s = status(values.first().and_then(|v| v.as_ref()))?;
            if s.setting == BackupSetting::Off {
                return Ok(None);
            }
            s.generation = s.generation.saturating_add(1);
            let new_status = s.to_bytes();
            // Every row as loaded (absent rows stay absent: they are not written) plus
            // the new counter, under one compare-and-swap.
            let mut writes = Vec::with_capacity(rows.len());
            writes.push(StateWrite::new(BACKUP_STATUS, "", versions[0], &new_status));
            for ((&(kind, key), value), &version) in rows.iter().zip(&values).zip(&versions).skip(1)
            {
                if let Some(value) = value {
                    writes.push(StateWrite::new(kind, key, version, value));
                }
            }
            if let CommitOutcome::Committed = st.commit_state(&writes)? {
                let carried = keys
                    .into_iter()
                    .zip(values)
                    .skip(1)
                    .filter_map(|((kind, key), value)| value.map(|v| (kind, key, v)))
                    .collect();
                return Ok(Some((s.setting, s.generation, carried)));
            }
        }
        Err(PrivacyStateError::Store(StoreError::Contention {
            attempts: crate::delivery::MAX_COMMIT_ATTEMPTS,
        }))
    }

    /// Restores a backup onto this device, which must be new (no privacy state yet).
    ///
    /// Nothing is written until the whole file has authenticated: the contents are held
    /// in memory, checked (owner, rollback, kinds), then written. `expected` is the
    /// latest stamp the caller knows of (from the password vault, or kept by the app):
    /// an older generation is refused as [`BackupRestoreError::RolledBack`]. Without
    /// it, an attacker who holds an old backup file and the key could hand it over; the
    /// device cannot tell by itself.
    ///
    /// The device keeps its own (new) identity and has no sessions: it starts new ones,
    /// and contacts see that its key changed.
    pub fn restore_backup(
        &self,
        key: &BackupKey,
        input: impl Read,
        expected: Option<BackupStamp>,
    ) -> Result<Restored, BackupRestoreError> {
        let now = self.clock.now();
        let reader = BackupReader::open(input, key)?;
        let kind = reader.kind();
        let mut p = PayloadReader::new(reader);
        let mut meta = None;
        let mut rows: Vec<(String, String, Zeroizing<Vec<u8>>)> = Vec::new();
        let mut contacts = Vec::new();
        let mut groups = Vec::new();
        let mut messages = Vec::new();
        let mut expired = 0usize;
        while let Some(item) = p.next().map_err(read_failure)? {
            match item {
                Item::Meta(m) => meta = Some(m),
                Item::State { kind, key, value } => {
                    if !CARRIED.contains(&kind.as_str()) {
                        return Err(BackupRestoreError::Forbidden {
                            kind: kind.chars().take(64).collect(),
                        });
                    }
                    rows.push((kind, key, value));
                }
                Item::Contact { address, identity } => contacts.push((address, identity)),
                Item::Group(g) => groups.push(g),
                Item::Message(m) => {
                    if m.lifecycle.is_expired(now) {
                        expired += 1;
                    } else {
                        messages.push(m);
                    }
                }
                Item::End => {}
            }
        }
        let stamp = p.into_inner().finish()?;
        let meta = meta.ok_or(PayloadError::OutOfOrder)?;
        if meta.generation != stamp.generation {
            return Err(PayloadError::Malformed { what: "generation" }.into());
        }
        if meta.account != self.address.name() {
            return Err(BackupRestoreError::OtherAccount);
        }
        if let Some(expected) = expected {
            if stamp.generation < expected.generation {
                return Err(BackupRestoreError::RolledBack {
                    found: stamp.generation,
                    expected: expected.generation,
                });
            }
            if stamp.generation == expected.generation && stamp.digest != expected.digest {
                return Err(BackupRestoreError::NotTheExpected);
            }
        }
        let ledger_row = rows.iter().find(|(k, _, _)| k == CONSENT_LEDGER);
        let ledger = match ledger_row {
            Some((_, _, v)) => {
                ConsentLedger::from_bytes(v).map_err(|_| PayloadError::Malformed {
                    what: "consent ledger",
                })?
            }
            None => ConsentLedger::default(),
        };

        // The device must not hold anything the restore writes.
        let st = self.state_store();
        for (kind, key, _) in &rows {
            if st.load_state(kind, key)?.0.is_some() {
                return Err(BackupRestoreError::NotEmpty);
            }
        }
        for (address, identity) in &contacts {
            match self.store.identity(address)? {
                Some(held) if held != *identity => return Err(BackupRestoreError::NotEmpty),
                _ => {}
            }
        }
        let (old_status, status_version) = st.load_state(BACKUP_STATUS, "")?;
        let mut s = status(old_status.as_ref())?;
        s.generation = s.generation.max(stamp.generation);
        s.last_backup = Some((meta.created_at, stamp));
        s.restored = Some(RestoreRecord {
            restored_at: now,
            backup_created_at: meta.created_at,
            stamp,
            consent_ledger_head: ledger.head(),
            legacy_opt_out: ledger.legacy_opt_out(now).is_some(),
        });
        // A device restored from a backup keeps backing up the same way, unless the app
        // already chose.
        if s.setting == BackupSetting::Off {
            s.setting = match kind {
                KeyKind::DigitKey => BackupSetting::DigitKey,
                KeyKind::Vault => BackupSetting::PasswordVault,
            };
        }
        let new_status = s.to_bytes();

        // Identity keys first: they are only the contacts' public keys, and the state
        // commit below, which can still conflict, is what makes the restore visible.
        for (address, identity) in &contacts {
            self.store.save_identity(address, identity)?;
        }
        let mut writes: Vec<StateWrite<'_>> = rows
            .iter()
            .map(|(kind, key, value)| StateWrite::new(kind, key, RowVersion::ABSENT, value))
            .collect();
        writes.push(StateWrite::new(
            BACKUP_STATUS,
            "",
            status_version,
            &new_status,
        ));
        match st.commit_state(&writes)? {
            CommitOutcome::Committed => {}
            CommitOutcome::Conflict => return Err(BackupRestoreError::NotEmpty),
        }
        Ok(Restored {
            stamp,
            created_at: meta.created_at,
            contacts: contacts.into_iter().map(|(a, _)| a).collect(),
            groups,
            messages,
            expired,
        })
    }
}
