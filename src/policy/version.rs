//! Policy versions and their (movable) schedules.

use super::purpose::Purpose;
use super::{calendar::utc_date, days};
use crate::Timestamp;

/// Longest policy id accepted.
const MAX_ID_LEN: usize = 64;

/// Names a policy version, e.g. `2021-01`. Limited to ASCII letters, digits, `.`, `_`
/// and `-` so it is safe in file names, receipts and reports.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PolicyId(String);

/// A policy id was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyIdError {
    /// Empty or longer than 64 bytes.
    #[error("policy id length {len} is outside 1..=64")]
    BadLength {
        /// Length given.
        len: usize,
    },
    /// A byte outside `[A-Za-z0-9._-]`.
    #[error("policy id has a disallowed character at byte {index}")]
    BadCharacter {
        /// Where it is.
        index: usize,
    },
}

impl PolicyId {
    /// Checks and wraps an id.
    pub fn new(id: impl Into<String>) -> Result<Self, PolicyIdError> {
        let id = id.into();
        if id.is_empty() || id.len() > MAX_ID_LEN {
            return Err(PolicyIdError::BadLength { len: id.len() });
        }
        if let Some(index) = id
            .bytes()
            .position(|b| !(b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')))
        {
            return Err(PolicyIdError::BadCharacter { index });
        }
        Ok(Self(id))
    }

    /// The id text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for PolicyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One published version of the terms and privacy policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyVersion {
    pub(crate) id: PolicyId,
    pub(crate) published: Timestamp,
    pub(crate) effective: Timestamp,
    pub(crate) accept_by: Option<Timestamp>,
    pub(crate) text_sha256: [u8; 32],
    pub(crate) introduces: Vec<Purpose>,
    pub(crate) offers_legacy_opt_out: bool,
}

impl PolicyVersion {
    /// A version published (the user is first asked) at `published`, in force from
    /// `effective`, whose text is `text`: only its SHA-256 is kept, which pins what the
    /// user was shown.
    pub fn new(id: PolicyId, published: Timestamp, effective: Timestamp, text: &[u8]) -> Self {
        let text_sha256 = crate::crypto::sha256(text);
        Self::with_text_hash(id, published, effective, text_sha256)
    }

    /// As [`PolicyVersion::new`] when only the text's SHA-256 is at hand.
    pub fn with_text_hash(
        id: PolicyId,
        published: Timestamp,
        effective: Timestamp,
        text_sha256: [u8; 32],
    ) -> Self {
        Self {
            id,
            published,
            effective,
            accept_by: None,
            text_sha256,
            introduces: Vec::new(),
            offers_legacy_opt_out: false,
        }
    }

    /// Sets the acceptance deadline. Without one, acceptance is asked for but never
    /// enforced by limits.
    #[must_use]
    pub fn accept_by(mut self, deadline: Timestamp) -> Self {
        self.accept_by = Some(deadline);
        self
    }

    /// Purposes this version introduces: they stay denied until it is accepted.
    #[must_use]
    pub fn introduces(mut self, purposes: &[Purpose]) -> Self {
        self.introduces.extend_from_slice(purposes);
        self.introduces.sort();
        self.introduces.dedup();
        self
    }

    /// Marks the version as offering the one-time legacy opt-out.
    #[must_use]
    pub fn with_legacy_opt_out(mut self) -> Self {
        self.offers_legacy_opt_out = true;
        self
    }

    /// The id.
    pub fn id(&self) -> &PolicyId {
        &self.id
    }

    /// When users were first asked to review it.
    pub fn published(&self) -> Timestamp {
        self.published
    }

    /// The effective date as first published (see [`PolicySchedule::terms`] for moves).
    pub fn effective(&self) -> Timestamp {
        self.effective
    }

    /// The deadline as first published (see [`PolicySchedule::terms`] for moves).
    pub fn initial_accept_by(&self) -> Option<Timestamp> {
        self.accept_by
    }

    /// SHA-256 of the policy text.
    pub fn text_sha256(&self) -> &[u8; 32] {
        &self.text_sha256
    }

    /// The purposes it introduces, sorted.
    pub fn introduced_purposes(&self) -> &[Purpose] {
        &self.introduces
    }

    /// Whether it offered the legacy opt-out.
    pub fn offers_legacy_opt_out(&self) -> bool {
        self.offers_legacy_opt_out
    }
}

/// What an announced change does to one version's schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChangeKind {
    /// The effective date and the deadline move.
    Postponed {
        /// New effective date.
        effective: Timestamp,
        /// New deadline.
        accept_by: Timestamp,
    },
    /// Persistent reminders and limits stop; users are still asked to review.
    EnforcementSuspended,
    /// Reminders and limits apply again; their clock restarts at the announcement so no
    /// one jumps straight into a limited phase.
    EnforcementResumed,
}

/// A change announced at `announced` to the schedule of `version`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScheduleChange {
    /// When it was announced (and took force).
    pub announced: Timestamp,
    /// The version it changes.
    pub version: PolicyId,
    /// What changes.
    pub kind: ChangeKind,
}

/// Durations that drive the account-state machine, in days. The defaults follow the
/// 2021 reports where they give numbers (120 days of inactivity, a 30-day activity check,
/// a 30-day opt-out window); "several weeks" and "a few weeks" are read as 21 days and
/// the step between reminders and limits as 14 days: choices, so they are values here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct EnforcementDurations {
    /// After the deadline, reminders become persistent.
    pub persistent_reminders_after_days: u32,
    /// After persistent reminders start, limited phase A (no chat list).
    pub limited_a_after_days: u32,
    /// After phase A starts, phase B (no calls or notifications).
    pub limited_b_after_days: u32,
    /// Without a connection for this long, the account counts as inactive.
    pub inactive_after_days: u32,
    /// Without a connection for this long, the account is deleted.
    pub deletion_after_inactive_days: u32,
    /// The legacy opt-out can be recorded this long after the legacy terms were accepted.
    pub legacy_opt_out_window_days: u32,
}

impl Default for EnforcementDurations {
    fn default() -> Self {
        Self {
            persistent_reminders_after_days: 21,
            limited_a_after_days: 14,
            limited_b_after_days: 21,
            inactive_after_days: 30,
            deletion_after_inactive_days: 120,
            legacy_opt_out_window_days: 30,
        }
    }
}

/// A version's schedule as known at some moment, after the changes announced by then.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Terms {
    /// In force from.
    pub effective: Timestamp,
    /// Deadline, if acceptance is enforced.
    pub accept_by: Option<Timestamp>,
    /// Since when enforcement is suspended, if it is.
    pub suspended_since: Option<Timestamp>,
    /// When enforcement last resumed after a suspension.
    pub resumed_at: Option<Timestamp>,
}

/// A schedule was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScheduleError {
    /// Two versions share an id.
    #[error("duplicate policy version id")]
    DuplicateVersion {
        /// The id.
        id: PolicyId,
    },
    /// Effective date or deadline before publication.
    #[error("a policy version takes effect or is due before it is published")]
    BeforePublication {
        /// The version.
        id: PolicyId,
    },
    /// A change names a version the schedule does not have.
    #[error("a schedule change names an unknown version")]
    UnknownVersion {
        /// The id.
        id: PolicyId,
    },
    /// A change is announced before its version was published, or postpones to a date
    /// before its announcement.
    #[error("a schedule change is inconsistent with its version's dates")]
    InconsistentChange {
        /// The version.
        id: PolicyId,
    },
    /// Durations that cannot hold together (e.g. deletion before inactivity).
    #[error("enforcement durations are inconsistent")]
    InconsistentDurations,
}

/// All policy versions, the changes announced to their schedules, and the durations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicySchedule {
    pub(crate) versions: Vec<PolicyVersion>,
    pub(crate) changes: Vec<ScheduleChange>,
    pub(crate) durations: EnforcementDurations,
}

impl PolicySchedule {
    /// Checks and builds a schedule. Versions are ordered by publication and changes by
    /// announcement.
    pub fn new(
        mut versions: Vec<PolicyVersion>,
        mut changes: Vec<ScheduleChange>,
        durations: EnforcementDurations,
    ) -> Result<Self, ScheduleError> {
        versions.sort_by(|a, b| (a.published, &a.id).cmp(&(b.published, &b.id)));
        for (i, v) in versions.iter().enumerate() {
            if versions[..i].iter().any(|w| w.id == v.id) {
                return Err(ScheduleError::DuplicateVersion { id: v.id.clone() });
            }
            if v.effective < v.published || v.accept_by.is_some_and(|d| d < v.published) {
                return Err(ScheduleError::BeforePublication { id: v.id.clone() });
            }
        }
        changes.sort_by_key(|c| c.announced);
        for c in &changes {
            let Some(v) = versions.iter().find(|v| v.id == c.version) else {
                return Err(ScheduleError::UnknownVersion {
                    id: c.version.clone(),
                });
            };
            let bad_postpone = matches!(c.kind, ChangeKind::Postponed { effective, accept_by }
                if effective < c.announced || accept_by < c.announced);
            if c.announced < v.published || bad_postpone {
                return Err(ScheduleError::InconsistentChange { id: v.id.clone() });
            }
        }
        let d = durations;
        if d.deletion_after_inactive_days == 0
            || d.inactive_after_days > d.deletion_after_inactive_days
        {
            return Err(ScheduleError::InconsistentDurations);
        }
        Ok(Self {
            versions,
            changes,
            durations,
        })
    }

    /// The versions, oldest first.
    pub fn versions(&self) -> &[PolicyVersion] {
        &self.versions
    }

    /// The announced changes, oldest first.
    pub fn changes(&self) -> &[ScheduleChange] {
        &self.changes
    }

    /// The durations.
    pub fn durations(&self) -> &EnforcementDurations {
        &self.durations
    }

    /// The version named `id`.
    pub fn version(&self, id: &PolicyId) -> Option<&PolicyVersion> {
        self.versions.iter().find(|v| &v.id == id)
    }

    /// The schedule of `id` as known at `now`: changes announced later are not applied.
    pub fn terms(&self, id: &PolicyId, now: Timestamp) -> Option<Terms> {
        let v = self.version(id)?;
        let mut t = Terms {
            effective: v.effective,
            accept_by: v.accept_by,
            suspended_since: None,
            resumed_at: None,
        };
        for c in self
            .changes
            .iter()
            .filter(|c| &c.version == id && c.announced <= now)
        {
            match c.kind {
                ChangeKind::Postponed {
                    effective,
                    accept_by,
                } => {
                    t.effective = effective;
                    t.accept_by = Some(accept_by);
                }
                ChangeKind::EnforcementSuspended => {
                    if t.suspended_since.is_none() {
                        t.suspended_since = Some(c.announced);
                    }
                }
                ChangeKind::EnforcementResumed => {
                    if t.suspended_since.take().is_some() {
                        t.resumed_at = Some(c.announced);
                    }
                }
            }
        }
        Some(t)
    }

    /// The newest version published by `now` whose acceptance is enforced: the one the
    /// account-state machine asks about.
    pub fn required(&self, now: Timestamp) -> Option<&PolicyVersion> {
        self.versions
            .iter()
            .rfind(|v| v.published <= now && v.accept_by.is_some())
    }

    /// Versions that introduce `purpose`.
    pub fn introducing(&self, purpose: Purpose) -> impl Iterator<Item = &PolicyVersion> {
        self.versions
            .iter()
            .filter(move |v| v.introduces.contains(&purpose))
    }

    /// Every moment at which some state derived from this schedule can change: used to
    /// build histories without sampling.
    pub(crate) fn boundaries(&self) -> Vec<Timestamp> {
        let mut out = Vec::new();
        for v in &self.versions {
            out.extend([v.published, v.effective]);
            out.extend(v.accept_by);
        }
        for c in &self.changes {
            out.push(c.announced);
            if let ChangeKind::Postponed {
                effective,
                accept_by,
            } = c.kind
            {
                out.extend([effective, accept_by]);
            }
        }
        out
    }

    /// Offsets from a phase clock start at which the phase changes.
    pub(crate) fn phase_offsets(&self) -> [u64; 3] {
        let d = &self.durations;
        let a = days(d.persistent_reminders_after_days);
        let b = a.saturating_add(days(d.limited_a_after_days));
        [a, b, b.saturating_add(days(d.limited_b_after_days))]
    }
}

/// The 2021 update as announced: the 2016 terms (which offered the opt-out and introduced
/// ads and product experiences with the parent-company family) and the 2021 terms
/// (notice 4 Jan, effective and due 8 Feb; moved on 15 Jan to 15 May; they introduce
/// business-messaging hosting). With `suspended`, the June 2021 suspension of persistent
/// reminders and limits (announced 3 Jun 2021) is included too.
///
/// The policy texts are not reproduced; `texts` gives the bytes whose hashes are pinned.
pub fn timeline_2021(texts: [&[u8]; 2], suspended: bool) -> PolicySchedule {
    let date = |y, m, d| utc_date(y, m, d).unwrap_or_default();
    let legacy = PolicyVersion::new(
        PolicyId("2016-08".into()),
        date(2016, 8, 25),
        date(2016, 8, 25),
        texts[0],
    )
    .introduces(&[Purpose::Ads, Purpose::ProductExperiences])
    .with_legacy_opt_out();
    let v2021 = PolicyId("2021-01".into());
    let update = PolicyVersion::new(v2021.clone(), date(2021, 1, 4), date(2021, 2, 8), texts[1])
        .accept_by(date(2021, 2, 8))
        .introduces(&[Purpose::BusinessMessagingHosting]);
    let mut changes = vec![ScheduleChange {
        announced: date(2021, 1, 15),
        version: v2021.clone(),
        kind: ChangeKind::Postponed {
            effective: date(2021, 5, 15),
            accept_by: date(2021, 5, 15),
        },
    }];
    if suspended {
        changes.push(ScheduleChange {
            announced: date(2021, 6, 3),
            version: v2021,
            kind: ChangeKind::EnforcementSuspended,
        });
    }
    PolicySchedule {
        versions: vec![legacy, update],
        changes,
        durations: EnforcementDurations::default(),
    }
}
