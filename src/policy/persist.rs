//! Versioned protobuf persistence of schedules, ledgers and activity
//! (`proto/policy.proto`, format 1).

use prost::Message;

use super::ledger::{CollectionMethod, ConsentEvent, ConsentLedger, Decision, LedgerEntry};
use super::purpose::Purpose;
use super::state::Activity;
use super::version::{
    ChangeKind, EnforcementDurations, PolicyId, PolicySchedule, PolicyVersion, ScheduleChange,
    ScheduleError,
};
use crate::Timestamp;
use crate::proto::policy as pb;

/// The format written by this release.
pub(crate) const FORMAT_VERSION: u32 = 1;

/// Persisted policy state that cannot be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The protobuf does not decode.
    #[error("persisted policy state is malformed")]
    Malformed,
    /// Written in a format this release does not know.
    #[error("persisted policy state format {found} is not supported")]
    UnsupportedVersion {
        /// The format found.
        found: u32,
    },
    /// A field holds a value outside its domain.
    #[error("persisted policy state has an invalid {field}")]
    InvalidField {
        /// The field's name in `policy.proto`.
        field: &'static str,
    },
    /// The ledger's hash chain is broken: it was edited.
    #[error("the consent ledger's hash chain is broken at entry {index}")]
    LedgerTampered {
        /// First bad entry.
        index: usize,
    },
    /// The schedule decodes but is inconsistent.
    #[error("persisted schedule is inconsistent: {0}")]
    Schedule(#[source] ScheduleError),
}

fn check_version(found: u32) -> Result<(), LoadError> {
    if found == FORMAT_VERSION {
        Ok(())
    } else {
        Err(LoadError::UnsupportedVersion { found })
    }
}

fn id(s: String, field: &'static str) -> Result<PolicyId, LoadError> {
    PolicyId::new(s).map_err(|_| LoadError::InvalidField { field })
}

fn ts(ms: u64) -> Timestamp {
    Timestamp::from_millis(ms)
}

impl PolicySchedule {
    /// Serializes to `policy.proto` `PolicySchedule`, format 1.
    pub fn to_bytes(&self) -> Vec<u8> {
        let d = &self.durations;
        pb::PolicySchedule {
            format_version: FORMAT_VERSION,
            versions: self
                .versions
                .iter()
                .map(|v| pb::PolicyVersion {
                    id: v.id.as_str().to_owned(),
                    published_ms: v.published.as_millis(),
                    effective_ms: v.effective.as_millis(),
                    accept_by_ms: v.accept_by.map(Timestamp::as_millis),
                    text_sha256: v.text_sha256.to_vec(),
                    introduces: v.introduces.iter().map(|p| p.code()).collect(),
                    offers_legacy_opt_out: v.offers_legacy_opt_out,
                })
                .collect(),
            changes: self
                .changes
                .iter()
                .map(|c| pb::ScheduleChange {
                    announced_ms: c.announced.as_millis(),
                    version: c.version.as_str().to_owned(),
                    kind: Some(match c.kind {
                        ChangeKind::Postponed {
                            effective,
                            accept_by,
                        } => pb::schedule_change::Kind::Postponed(pb::Postponed {
                            effective_ms: effective.as_millis(),
                            accept_by_ms: accept_by.as_millis(),
                        }),
                        ChangeKind::EnforcementSuspended => {
                            pb::schedule_change::Kind::Suspended(pb::EnforcementSuspended {})
                        }
                        ChangeKind::EnforcementResumed => {
                            pb::schedule_change::Kind::Resumed(pb::EnforcementResumed {})
                        }
                    }),
                })
                .collect(),
            durations: Some(pb::Durations {
                persistent_reminders_after_days: d.persistent_reminders_after_days,
                limited_a_after_days: d.limited_a_after_days,
                limited_b_after_days: d.limited_b_after_days,
                inactive_after_days: d.inactive_after_days,
                deletion_after_inactive_days: d.deletion_after_inactive_days,
                legacy_opt_out_window_days: d.legacy_opt_out_window_days,
            }),
        }
        .encode_to_vec()
    }

    /// Loads what [`PolicySchedule::to_bytes`] wrote, re-checking every rule.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, LoadError> {
        let p = pb::PolicySchedule::decode(bytes).map_err(|_| LoadError::Malformed)?;
        check_version(p.format_version)?;
        let mut versions = Vec::with_capacity(p.versions.len());
        for v in p.versions {
            let text_sha256 = <[u8; 32]>::try_from(v.text_sha256.as_slice()).map_err(|_| {
                LoadError::InvalidField {
                    field: "text_sha256",
                }
            })?;
            let introduces = v
                .introduces
                .iter()
                .map(|c| {
                    Purpose::from_code(*c).ok_or(LoadError::InvalidField {
                        field: "introduces",
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let mut version = PolicyVersion::with_text_hash(
                id(v.id, "id")?,
                ts(v.published_ms),
                ts(v.effective_ms),
                text_sha256,
            )
            .introduces(&introduces);
            if let Some(d) = v.accept_by_ms {
                version = version.accept_by(ts(d));
            }
            if v.offers_legacy_opt_out {
                version = version.with_legacy_opt_out();
            }
            versions.push(version);
        }
        let mut changes = Vec::with_capacity(p.changes.len());
        for c in p.changes {
            let kind = match c.kind.ok_or(LoadError::InvalidField { field: "kind" })? {
                pb::schedule_change::Kind::Postponed(x) => ChangeKind::Postponed {
                    effective: ts(x.effective_ms),
                    accept_by: ts(x.accept_by_ms),
                },
                pb::schedule_change::Kind::Suspended(_) => ChangeKind::EnforcementSuspended,
                pb::schedule_change::Kind::Resumed(_) => ChangeKind::EnforcementResumed,
            };
            changes.push(ScheduleChange {
                announced: ts(c.announced_ms),
                version: id(c.version, "version")?,
                kind,
            });
        }
        let d = p
            .durations
            .ok_or(LoadError::InvalidField { field: "durations" })?;
        let durations = EnforcementDurations {
            persistent_reminders_after_days: d.persistent_reminders_after_days,
            limited_a_after_days: d.limited_a_after_days,
            limited_b_after_days: d.limited_b_after_days,
            inactive_after_days: d.inactive_after_days,
            deletion_after_inactive_days: d.deletion_after_inactive_days,
            legacy_opt_out_window_days: d.legacy_opt_out_window_days,
        };
        Self::new(versions, changes, durations).map_err(LoadError::Schedule)
    }
}

impl ConsentLedger {
    /// Serializes to `policy.proto` `ConsentLedger`, format 1.
    pub fn to_bytes(&self) -> Vec<u8> {
        pb::ConsentLedger {
            format_version: FORMAT_VERSION,
            entries: self
                .entries
                .iter()
                .map(|e| pb::ConsentEntry {
                    seq: e.seq,
                    version: e.event.version.as_str().to_owned(),
                    decision: i32::from(e.event.decision.code()),
                    at_ms: e.event.at.as_millis(),
                    method: i32::from(e.event.method.code()),
                    prev_hash: e.prev_hash.to_vec(),
                    hash: e.hash.to_vec(),
                })
                .collect(),
        }
        .encode_to_vec()
    }

    /// Loads what [`ConsentLedger::to_bytes`] wrote; any edit shows up as
    /// [`LoadError::LedgerTampered`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, LoadError> {
        let p = pb::ConsentLedger::decode(bytes).map_err(|_| LoadError::Malformed)?;
        check_version(p.format_version)?;
        let hash = |b: Vec<u8>, field| {
            <[u8; 32]>::try_from(b.as_slice()).map_err(|_| LoadError::InvalidField { field })
        };
        let mut entries = Vec::with_capacity(p.entries.len());
        for e in p.entries {
            entries.push(LedgerEntry {
                seq: e.seq,
                event: ConsentEvent {
                    version: id(e.version, "version")?,
                    decision: Decision::from_code(e.decision)
                        .ok_or(LoadError::InvalidField { field: "decision" })?,
                    at: ts(e.at_ms),
                    method: CollectionMethod::from_code(e.method)
                        .ok_or(LoadError::InvalidField { field: "method" })?,
                },
                prev_hash: hash(e.prev_hash, "prev_hash")?,
                hash: hash(e.hash, "hash")?,
            });
        }
        let ledger = Self { entries };
        ledger
            .verify()
            .map_err(|index| LoadError::LedgerTampered { index })?;
        if ledger
            .entries
            .windows(2)
            .any(|w| w[1].event.at < w[0].event.at)
        {
            return Err(LoadError::InvalidField { field: "at_ms" });
        }
        Ok(ledger)
    }
}

impl Activity {
    /// Serializes to `policy.proto` `Activity`, format 1.
    pub fn to_bytes(&self) -> Vec<u8> {
        pb::Activity {
            format_version: FORMAT_VERSION,
            registered_ms: self.registered_at.as_millis(),
            connections_ms: self.connections.iter().map(|t| t.as_millis()).collect(),
            deleted_by_user_ms: self.deleted_by_user.map(Timestamp::as_millis),
        }
        .encode_to_vec()
    }

    /// Loads what [`Activity::to_bytes`] wrote, re-checking the order of events.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, LoadError> {
        let p = pb::Activity::decode(bytes).map_err(|_| LoadError::Malformed)?;
        check_version(p.format_version)?;
        let mut a = Self::new(ts(p.registered_ms));
        for c in p.connections_ms {
            a.connected(ts(c)).map_err(|_| LoadError::InvalidField {
                field: "connections_ms",
            })?;
        }
        if let Some(d) = p.deleted_by_user_ms {
            a.delete_account(ts(d))
                .map_err(|_| LoadError::InvalidField {
                    field: "deleted_by_user_ms",
                })?;
        }
        Ok(a)
    }
}
