//! The account-state machine: a pure function of (ledger, schedule, activity, now).

use super::days;
use super::ledger::{ConsentLedger, Decision};
use super::version::{PolicyId, PolicySchedule};
use crate::Timestamp;

/// Most connection times an [`Activity`] keeps; older ones are folded away, which is
/// safe because only gaps matter and a folded gap was already shorter than the limit.
const MAX_CONNECTIONS: usize = 4096;

/// When the account was registered, when it connected, and whether the user deleted it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Activity {
    pub(crate) registered_at: Timestamp,
    pub(crate) connections: Vec<Timestamp>,
    pub(crate) deleted_by_user: Option<Timestamp>,
}

/// An activity record was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ActivityError {
    /// Before registration.
    #[error("activity predates registration")]
    BeforeRegistration,
    /// Earlier than the newest recorded activity.
    #[error("activity is older than the newest recorded one")]
    OutOfOrder,
    /// The user already deleted the account.
    #[error("the account was already deleted")]
    AlreadyDeleted,
}

impl Activity {
    /// A fresh account, registered (and connected) at `registered_at`.
    pub fn new(registered_at: Timestamp) -> Self {
        Self {
            registered_at,
            connections: Vec::new(),
            deleted_by_user: None,
        }
    }

    /// Registration time.
    pub fn registered_at(&self) -> Timestamp {
        self.registered_at
    }

    /// The connection times kept, oldest first.
    pub fn connections(&self) -> &[Timestamp] {
        &self.connections
    }

    /// When the user deleted the account.
    pub fn deleted_by_user(&self) -> Option<Timestamp> {
        self.deleted_by_user
    }

    fn newest(&self) -> Timestamp {
        self.connections
            .last()
            .copied()
            .unwrap_or(self.registered_at)
    }

    fn check(&self, at: Timestamp) -> Result<(), ActivityError> {
        if self.deleted_by_user.is_some() {
            return Err(ActivityError::AlreadyDeleted);
        }
        if at < self.registered_at {
            return Err(ActivityError::BeforeRegistration);
        }
        if at < self.newest() {
            return Err(ActivityError::OutOfOrder);
        }
        Ok(())
    }

    /// Records that the app connected at `at`. An app that is open but offline does not
    /// count.
    pub fn connected(&mut self, at: Timestamp) -> Result<(), ActivityError> {
        self.check(at)?;
        if self.connections.len() >= MAX_CONNECTIONS {
            self.connections.remove(0);
        }
        self.connections.push(at);
        Ok(())
    }

    /// Records that the user deleted the account at `at` (always possible, in any phase).
    pub fn delete_account(&mut self, at: Timestamp) -> Result<(), ActivityError> {
        self.check(at)?;
        self.deleted_by_user = Some(at);
        Ok(())
    }

    /// The newest connection at or before `now` (registration counts as one).
    fn last_connection(&self, now: Timestamp) -> Timestamp {
        self.connections
            .iter()
            .rev()
            .find(|c| **c <= now)
            .copied()
            .unwrap_or(self.registered_at)
    }

    /// When inactivity deleted the account, if it did by `now`: the first gap between
    /// connections that reached the limit.
    fn inactivity_deletion(&self, limit_ms: u64, now: Timestamp) -> Option<Timestamp> {
        let mut prev = self.registered_at;
        let due = |p: Timestamp| Timestamp::from_millis(p.as_millis().saturating_add(limit_ms));
        for c in self.connections.iter().copied().filter(|c| *c <= now) {
            if c >= due(prev) {
                return Some(due(prev));
            }
            prev = c;
        }
        (now >= due(prev)).then(|| due(prev))
    }
}

/// Why an account was deleted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DeletionCause {
    /// The user deleted it.
    UserRequest,
    /// It did not connect for the inactivity limit (120 days by default).
    Inactivity,
}

/// Where an account stands.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AccountState {
    /// Full use; nothing to review.
    Active,
    /// Asked to review a version; full use.
    ReviewRequested {
        /// The version.
        version: PolicyId,
        /// Its deadline as known now (possibly past, e.g. while enforcement is suspended).
        deadline: Timestamp,
    },
    /// Reminders no longer go away; full use.
    PersistentReminders {
        /// The version.
        version: PolicyId,
        /// Since when.
        since: Timestamp,
    },
    /// No chat list; calls and notifications still arrive and can be answered.
    LimitedA {
        /// The version.
        version: PolicyId,
        /// Since when.
        since: Timestamp,
    },
    /// No incoming calls or notifications either.
    LimitedB {
        /// The version.
        version: PolicyId,
        /// Since when.
        since: Timestamp,
    },
    /// Not connected for a while; deletion is due unless it connects.
    Inactive {
        /// Last connection.
        last_connected: Timestamp,
        /// When it will be deleted.
        deletion_due: Timestamp,
    },
    /// Gone.
    Deleted {
        /// When.
        at: Timestamp,
        /// Why.
        cause: DeletionCause,
    },
}

impl AccountState {
    /// Stable name used in JSON.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::ReviewRequested { .. } => "review_requested",
            Self::PersistentReminders { .. } => "persistent_reminders",
            Self::LimitedA { .. } => "limited_a",
            Self::LimitedB { .. } => "limited_b",
            Self::Inactive { .. } => "inactive",
            Self::Deleted { .. } => "deleted",
        }
    }

    /// Plain words for reports.
    pub fn describe(&self) -> &'static str {
        match self {
            Self::Active => "Active: full use.",
            Self::ReviewRequested { .. } => "Asked to review a policy update; full use.",
            Self::PersistentReminders { .. } => {
                "Persistent reminders to review a policy update; full use."
            }
            Self::LimitedA { .. } => {
                "Limited: no chat list; incoming calls and notifications still arrive and can be answered."
            }
            Self::LimitedB { .. } => "Limited: no incoming calls or notifications.",
            Self::Inactive { .. } => {
                "Inactive: not connected; the account will be deleted unless it connects."
            }
            Self::Deleted { .. } => "Deleted.",
        }
    }

    /// What the user can do in this state. Exporting chats, requesting the report and
    /// deleting the account stay available in every state but deletion.
    pub fn capabilities(&self) -> Capabilities {
        let full = Capabilities {
            read_chat_list: true,
            send_messages: true,
            read_messages: true,
            reply_from_notifications: true,
            receive_calls: true,
            receive_notifications: true,
            export_chats: true,
            request_report: true,
            delete_account: true,
        };
        let minimal = Capabilities {
            read_chat_list: false,
            send_messages: false,
            read_messages: false,
            reply_from_notifications: false,
            receive_calls: false,
            receive_notifications: false,
            ..full
        };
        match self {
            Self::Active | Self::ReviewRequested { .. } | Self::PersistentReminders { .. } => full,
            Self::LimitedA { .. } => Capabilities {
                reply_from_notifications: true,
                receive_calls: true,
                receive_notifications: true,
                ..minimal
            },
            Self::LimitedB { .. } | Self::Inactive { .. } => minimal,
            Self::Deleted { .. } => Capabilities {
                export_chats: false,
                request_report: false,
                delete_account: false,
                ..minimal
            },
        }
    }
}

/// What the app lets the user do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Capabilities {
    /// See the chat list.
    pub read_chat_list: bool,
    /// Send messages from the app.
    pub send_messages: bool,
    /// Read messages in the app.
    pub read_messages: bool,
    /// Read or reply to a message by tapping its notification.
    pub reply_from_notifications: bool,
    /// Receive (and answer) voice and video calls.
    pub receive_calls: bool,
    /// Receive notifications.
    pub receive_notifications: bool,
    /// Export chats.
    pub export_chats: bool,
    /// Request the account-information report.
    pub request_report: bool,
    /// Delete the account.
    pub delete_account: bool,
}

/// The state cannot be computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// `now` is before registration.
    #[error("the account is not registered yet at that time")]
    BeforeRegistration,
    /// The ledger's hash chain is broken.
    #[error("the consent ledger's hash chain is broken at entry {index}")]
    LedgerTampered {
        /// First bad entry.
        index: usize,
    },
}

fn add(t: Timestamp, ms: u64) -> Timestamp {
    Timestamp::from_millis(t.as_millis().saturating_add(ms))
}

/// Where the account stands at `now`. Only events at or before `now` count.
///
/// Precedence: deleted, then inactive, then the policy phase. Declining never deletes:
/// only the user or the inactivity limit does, so a decliner who keeps connecting stays.
pub fn account_state(
    ledger: &ConsentLedger,
    schedule: &PolicySchedule,
    activity: &Activity,
    now: Timestamp,
) -> Result<AccountState, StateError> {
    ledger
        .verify()
        .map_err(|index| StateError::LedgerTampered { index })?;
    if now < activity.registered_at {
        return Err(StateError::BeforeRegistration);
    }
    let d = &schedule.durations;
    let limit = days(d.deletion_after_inactive_days);
    let by_user = activity
        .deleted_by_user
        .filter(|t| *t <= now)
        .map(|at| (at, DeletionCause::UserRequest));
    let idle = activity
        .inactivity_deletion(limit, now)
        .map(|at| (at, DeletionCause::Inactivity));
    if let Some((at, cause)) = [by_user, idle].into_iter().flatten().min_by_key(|x| x.0) {
        return Ok(AccountState::Deleted { at, cause });
    }
    let last = activity.last_connection(now);
    if now >= add(last, days(d.inactive_after_days)) {
        return Ok(AccountState::Inactive {
            last_connected: last,
            deletion_due: add(last, limit),
        });
    }
    Ok(policy_phase(ledger, schedule, now))
}

fn policy_phase(ledger: &ConsentLedger, schedule: &PolicySchedule, now: Timestamp) -> AccountState {
    let Some(required) = schedule.required(now) else {
        return AccountState::Active;
    };
    if ledger.is_accepted(&required.id, now) {
        return AccountState::Active;
    }
    let Some(terms) = schedule.terms(&required.id, now) else {
        return AccountState::Active;
    };
    let Some(deadline) = terms.accept_by else {
        return AccountState::Active;
    };
    let version = required.id.clone();
    if now < deadline || terms.suspended_since.is_some() {
        return AccountState::ReviewRequested { version, deadline };
    }
    let withdrawn = ledger
        .until(now)
        .filter(|e| e.event.version == version && e.event.decision == Decision::Withdrawn)
        .map(|e| e.event.at)
        .last();
    let start = [Some(deadline), terms.resumed_at, withdrawn]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(deadline);
    let [reminders, limited_a, limited_b] = schedule.phase_offsets();
    let elapsed = now.as_millis().saturating_sub(start.as_millis());
    if elapsed < reminders {
        AccountState::ReviewRequested { version, deadline }
    } else if elapsed < limited_a {
        AccountState::PersistentReminders {
            version,
            since: add(start, reminders),
        }
    } else if elapsed < limited_b {
        AccountState::LimitedA {
            version,
            since: add(start, limited_a),
        }
    } else {
        AccountState::LimitedB {
            version,
            since: add(start, limited_b),
        }
    }
}

/// Every state change from registration to `now`, as (from, state), oldest first. The
/// state is piecewise constant, so it is evaluated only where it can change.
pub fn state_history(
    ledger: &ConsentLedger,
    schedule: &PolicySchedule,
    activity: &Activity,
    now: Timestamp,
) -> Result<Vec<(Timestamp, AccountState)>, StateError> {
    let d = &schedule.durations;
    let mut points = schedule.boundaries();
    let mut starts = points.clone();
    starts.extend(ledger.entries.iter().map(|e| e.event.at));
    points.extend(ledger.entries.iter().map(|e| e.event.at));
    let offsets = schedule.phase_offsets();
    for s in &starts {
        points.extend(offsets.iter().map(|o| add(*s, *o)));
    }
    let mut conns = vec![activity.registered_at];
    conns.extend(activity.connections.iter().copied());
    for c in conns {
        points.extend([
            c,
            add(c, days(d.inactive_after_days)),
            add(c, days(d.deletion_after_inactive_days)),
        ]);
    }
    points.extend(activity.deleted_by_user);
    points.push(activity.registered_at);
    points.retain(|p| *p >= activity.registered_at && *p <= now);
    points.sort();
    points.dedup();
    let mut out: Vec<(Timestamp, AccountState)> = Vec::new();
    for p in points {
        let s = account_state(ledger, schedule, activity, p)?;
        if out.last().is_none_or(|(_, last)| *last != s) {
            out.push((p, s));
        }
    }
    Ok(out)
}
