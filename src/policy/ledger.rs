//! The append-only, hash-chained consent ledger.
//!
//! Each entry's hash covers its sequence number, the previous entry's hash and the event,
//! so editing, dropping or reordering any entry breaks every later hash. Anchor
//! [`ConsentLedger::head`] somewhere the ledger's keeper cannot rewrite (a signed
//! receipt, another party) to make a rewrite of the whole chain detectable too.

use super::days;
use super::version::{PolicyId, PolicySchedule};
use crate::Timestamp;

/// Domain label for entry hashes.
const ENTRY_HASH_LABEL: &[u8] = b"confide.policy.consent-entry.v1";

/// The user's answer to a policy version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Decision {
    /// Agreed.
    Accepted,
    /// Refused. Never deletes the account.
    Declined,
    /// Deferred ("Not now").
    NotNow,
    /// Took back an earlier acceptance (GDPR Art. 7(3)); earlier processing is unaffected.
    Withdrawn,
    /// The one-time legacy opt-out from ads and product experiences. Nothing clears it.
    LegacyOptOut,
}

impl Decision {
    /// Stable code, as in `proto/policy.proto`.
    pub fn code(self) -> u8 {
        match self {
            Self::Accepted => 1,
            Self::Declined => 2,
            Self::NotNow => 3,
            Self::Withdrawn => 4,
            Self::LegacyOptOut => 5,
        }
    }

    pub(crate) fn from_code(code: i32) -> Option<Self> {
        Some(match code {
            1 => Self::Accepted,
            2 => Self::Declined,
            3 => Self::NotNow,
            4 => Self::Withdrawn,
            5 => Self::LegacyOptOut,
            _ => return None,
        })
    }

    /// Stable name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Declined => "declined",
            Self::NotNow => "not_now",
            Self::Withdrawn => "withdrawn",
            Self::LegacyOptOut => "legacy_opt_out",
        }
    }

    /// The W3C DPV consent status this answer leaves the consent in.
    pub fn dpv_consent_status(self) -> &'static str {
        match self {
            Self::Accepted => "dpv:ConsentGiven",
            Self::Declined | Self::LegacyOptOut => "dpv:ConsentRefused",
            Self::NotNow => "dpv:ConsentRequestDeferred",
            Self::Withdrawn => "dpv:ConsentWithdrawn",
        }
    }
}

/// How an answer was collected (Kantara `collectionMethod`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CollectionMethod {
    /// During registration.
    Registration,
    /// The full-screen notice.
    InAppNotice,
    /// A banner or reminder.
    InAppBanner,
    /// The account settings.
    Settings,
}

impl CollectionMethod {
    /// Stable code, as in `proto/policy.proto`.
    pub fn code(self) -> u8 {
        match self {
            Self::Registration => 1,
            Self::InAppNotice => 2,
            Self::InAppBanner => 3,
            Self::Settings => 4,
        }
    }

    pub(crate) fn from_code(code: i32) -> Option<Self> {
        Some(match code {
            1 => Self::Registration,
            2 => Self::InAppNotice,
            3 => Self::InAppBanner,
            4 => Self::Settings,
            _ => return None,
        })
    }

    /// Plain-words name used in receipts and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Registration => "in-app registration screen",
            Self::InAppNotice => "in-app policy notice",
            Self::InAppBanner => "in-app reminder banner",
            Self::Settings => "account settings",
        }
    }
}

/// One answer, before it is recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsentEvent {
    /// The version answered.
    pub version: PolicyId,
    /// The answer.
    pub decision: Decision,
    /// When.
    pub at: Timestamp,
    /// How it was collected.
    pub method: CollectionMethod,
}

impl ConsentEvent {
    /// An answer to `version`.
    pub fn new(
        version: PolicyId,
        decision: Decision,
        at: Timestamp,
        method: CollectionMethod,
    ) -> Self {
        Self {
            version,
            decision,
            at,
            method,
        }
    }
}

/// A recorded answer with its place in the chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerEntry {
    pub(crate) seq: u64,
    pub(crate) event: ConsentEvent,
    pub(crate) prev_hash: [u8; 32],
    pub(crate) hash: [u8; 32],
}

impl LedgerEntry {
    /// Position in the ledger, from 0.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The answer.
    pub fn event(&self) -> &ConsentEvent {
        &self.event
    }

    /// The previous entry's hash (zeros for the first).
    pub fn prev_hash(&self) -> &[u8; 32] {
        &self.prev_hash
    }

    /// This entry's hash.
    pub fn hash(&self) -> &[u8; 32] {
        &self.hash
    }

    pub(crate) fn compute_hash(seq: u64, prev: &[u8; 32], e: &ConsentEvent) -> [u8; 32] {
        let mut ctx = crate::crypto::Sha256::new();
        ctx.update(ENTRY_HASH_LABEL);
        ctx.update(&seq.to_be_bytes());
        ctx.update(prev);
        let id = e.version.as_str().as_bytes();
        ctx.update(&(id.len() as u64).to_be_bytes());
        ctx.update(id);
        ctx.update(&[e.decision.code(), e.method.code()]);
        ctx.update(&e.at.as_millis().to_be_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.finish().as_ref());
        out
    }
}

/// Where the user stands on one version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum VersionConsent {
    /// Never answered.
    NoAnswer,
    /// Accepted and not withdrawn.
    Accepted {
        /// When.
        at: Timestamp,
    },
    /// Last answer was a refusal.
    Declined {
        /// When.
        at: Timestamp,
    },
    /// Last answer was "not now".
    Deferred {
        /// When.
        at: Timestamp,
    },
    /// Accepted, then withdrew.
    Withdrawn {
        /// When.
        at: Timestamp,
    },
}

/// A recorded legacy opt-out.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LegacyOptOut {
    /// The legacy version it was recorded under.
    pub version: PolicyId,
    /// When.
    pub at: Timestamp,
}

/// An answer could not be recorded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordConsentError {
    /// Earlier than the newest entry: the ledger only grows forward in time.
    #[error("consent event is older than the newest ledger entry")]
    OutOfOrder {
        /// Time of the newest entry.
        newest: Timestamp,
    },
    /// The schedule has no such version.
    #[error("consent event names an unknown policy version")]
    UnknownVersion,
    /// Answered before the version was published.
    #[error("consent event predates the version's publication")]
    NotYetPublished {
        /// Publication time.
        published: Timestamp,
    },
    /// Declining or deferring a version already accepted: that is a withdrawal.
    #[error("version is already accepted; record a withdrawal instead")]
    AlreadyAccepted,
    /// Withdrawing, or opting out under, a version not accepted.
    #[error("version is not currently accepted")]
    NotAccepted,
    /// The version never offered the legacy opt-out.
    #[error("this version offers no legacy opt-out")]
    NoOptOutOffered,
    /// The opt-out window closed.
    #[error("the legacy opt-out window has closed")]
    WindowClosed {
        /// When it closed.
        closed_at: Timestamp,
    },
    /// Already opted out.
    #[error("the legacy opt-out is already recorded")]
    AlreadyOptedOut,
}

/// The append-only consent ledger.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConsentLedger {
    pub(crate) entries: Vec<LedgerEntry>,
}

impl ConsentLedger {
    /// An empty ledger.
    pub fn new() -> Self {
        Self::default()
    }

    /// All entries, oldest first.
    pub fn entries(&self) -> &[LedgerEntry] {
        &self.entries
    }

    /// The newest entry's hash (zeros when empty): anchor this to detect a rewrite.
    pub fn head(&self) -> [u8; 32] {
        self.entries.last().map_or([0u8; 32], |e| e.hash)
    }

    /// Appends an answer after checking it against the schedule and the earlier answers.
    pub fn record(
        &mut self,
        event: ConsentEvent,
        schedule: &PolicySchedule,
    ) -> Result<&LedgerEntry, RecordConsentError> {
        if let Some(last) = self.entries.last() {
            if event.at < last.event.at {
                return Err(RecordConsentError::OutOfOrder {
                    newest: last.event.at,
                });
            }
        }
        let version = schedule
            .version(&event.version)
            .ok_or(RecordConsentError::UnknownVersion)?;
        if event.at < version.published {
            return Err(RecordConsentError::NotYetPublished {
                published: version.published,
            });
        }
        let now = event.at;
        let accepted = matches!(
            self.consent(&event.version, now),
            VersionConsent::Accepted { .. }
        );
        match event.decision {
            Decision::Accepted => {}
            Decision::Declined | Decision::NotNow if accepted => {
                return Err(RecordConsentError::AlreadyAccepted);
            }
            Decision::Declined | Decision::NotNow => {}
            Decision::Withdrawn if !accepted => return Err(RecordConsentError::NotAccepted),
            Decision::Withdrawn => {}
            Decision::LegacyOptOut => {
                if !version.offers_legacy_opt_out {
                    return Err(RecordConsentError::NoOptOutOffered);
                }
                if self.legacy_opt_out(now).is_some() {
                    return Err(RecordConsentError::AlreadyOptedOut);
                }
                let first = self
                    .first_acceptance(&event.version)
                    .ok_or(RecordConsentError::NotAccepted)?;
                let closed_at = Timestamp::from_millis(
                    first
                        .as_millis()
                        .saturating_add(days(schedule.durations.legacy_opt_out_window_days)),
                );
                if now > closed_at {
                    return Err(RecordConsentError::WindowClosed { closed_at });
                }
            }
        }
        let seq = self.entries.len() as u64;
        let prev_hash = self.head();
        let hash = LedgerEntry::compute_hash(seq, &prev_hash, &event);
        self.entries.push(LedgerEntry {
            seq,
            event,
            prev_hash,
            hash,
        });
        let pushed = self.entries.len() - 1;
        Ok(&self.entries[pushed])
    }

    /// Recomputes the chain; `Err(index)` names the first entry that does not match.
    pub fn verify(&self) -> Result<(), usize> {
        let mut prev = [0u8; 32];
        for (i, e) in self.entries.iter().enumerate() {
            let ok = e.seq == i as u64
                && e.prev_hash == prev
                && e.hash == LedgerEntry::compute_hash(e.seq, &e.prev_hash, &e.event);
            if !ok {
                return Err(i);
            }
            prev = e.hash;
        }
        Ok(())
    }

    /// Entries up to and including `now`.
    pub(crate) fn until(&self, now: Timestamp) -> impl Iterator<Item = &LedgerEntry> {
        self.entries.iter().take_while(move |e| e.event.at <= now)
    }

    /// Where the user stands on `version` at `now`.
    pub fn consent(&self, version: &PolicyId, now: Timestamp) -> VersionConsent {
        let mut state = VersionConsent::NoAnswer;
        for e in self.until(now).filter(|e| &e.event.version == version) {
            let at = e.event.at;
            state = match e.event.decision {
                Decision::Accepted => VersionConsent::Accepted { at },
                Decision::Declined => VersionConsent::Declined { at },
                Decision::NotNow => VersionConsent::Deferred { at },
                Decision::Withdrawn => VersionConsent::Withdrawn { at },
                Decision::LegacyOptOut => state,
            };
        }
        state
    }

    /// Whether `version` is accepted (and not withdrawn) at `now`.
    pub fn is_accepted(&self, version: &PolicyId, now: Timestamp) -> bool {
        matches!(self.consent(version, now), VersionConsent::Accepted { .. })
    }

    /// The legacy opt-out, if recorded by `now`. No later answer clears it.
    pub fn legacy_opt_out(&self, now: Timestamp) -> Option<LegacyOptOut> {
        self.until(now)
            .find(|e| e.event.decision == Decision::LegacyOptOut)
            .map(|e| LegacyOptOut {
                version: e.event.version.clone(),
                at: e.event.at,
            })
    }

    fn first_acceptance(&self, version: &PolicyId) -> Option<Timestamp> {
        self.entries
            .iter()
            .find(|e| &e.event.version == version && e.event.decision == Decision::Accepted)
            .map(|e| e.event.at)
    }
}
