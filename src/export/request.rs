//! The report request lifecycle: requested → ready → expired, or invalidated.

use crate::Timestamp;
use crate::policy::days;

/// Report lifecycle durations in days. The defaults follow the facts: ready about three
/// days after the request, then kept "a few weeks" (read as 28 days).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReportDurations {
    /// Days from request to ready.
    pub ready_after_days: u32,
    /// Days the ready report stays downloadable.
    pub kept_for_days: u32,
}

impl Default for ReportDurations {
    fn default() -> Self {
        Self {
            ready_after_days: 3,
            kept_for_days: 28,
        }
    }
}

/// What voids a request; a new one is then needed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Invalidation {
    /// The phone number changed.
    NumberChanged,
    /// The account was registered again.
    ReRegistered,
    /// The account moved to another device.
    DeviceChanged,
    /// The account was deleted.
    AccountDeleted,
}

/// Where a request stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReportStatus {
    /// Being prepared ("Request sent").
    Pending {
        /// The "Ready by" date.
        ready_by: Timestamp,
    },
    /// Downloadable.
    Ready {
        /// When it is deleted from the servers.
        expires_at: Timestamp,
    },
    /// Deleted from the servers; request again.
    Expired {
        /// Since when.
        since: Timestamp,
    },
    /// Voided; request again.
    Invalidated {
        /// When.
        at: Timestamp,
        /// Why.
        cause: Invalidation,
    },
}

/// A request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// A request is still pending; it cannot be cancelled or repeated.
    #[error("a report request is already pending")]
    AlreadyPending {
        /// When that one is ready.
        ready_by: Timestamp,
    },
    /// The event predates the request.
    #[error("event predates the report request")]
    BeforeRequest,
    /// Already invalidated.
    #[error("the report request is already invalidated")]
    AlreadyInvalidated,
}

/// One request for the account-information report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReportRequest {
    requested_at: Timestamp,
    durations: ReportDurations,
    invalidated: Option<(Timestamp, Invalidation)>,
}

fn add(t: Timestamp, ms: u64) -> Timestamp {
    Timestamp::from_millis(t.as_millis().saturating_add(ms))
}

impl ReportRequest {
    /// Requests a report at `now`. A previous request that is still pending blocks a
    /// new one: pending requests cannot be cancelled.
    pub fn new(
        now: Timestamp,
        previous: Option<&ReportRequest>,
        durations: ReportDurations,
    ) -> Result<Self, RequestError> {
        if let Some(p) = previous {
            if let ReportStatus::Pending { ready_by } = p.status(now) {
                return Err(RequestError::AlreadyPending { ready_by });
            }
        }
        Ok(Self {
            requested_at: now,
            durations,
            invalidated: None,
        })
    }

    /// When it was requested.
    pub fn requested_at(&self) -> Timestamp {
        self.requested_at
    }

    /// The "Ready by" date.
    pub fn ready_by(&self) -> Timestamp {
        add(self.requested_at, days(self.durations.ready_after_days))
    }

    /// When a ready report is deleted from the servers.
    pub fn expires_at(&self) -> Timestamp {
        add(self.ready_by(), days(self.durations.kept_for_days))
    }

    /// Voids the request at `at`.
    pub fn invalidate(&mut self, at: Timestamp, cause: Invalidation) -> Result<(), RequestError> {
        if at < self.requested_at {
            return Err(RequestError::BeforeRequest);
        }
        if self.invalidated.is_some() {
            return Err(RequestError::AlreadyInvalidated);
        }
        self.invalidated = Some((at, cause));
        Ok(())
    }

    /// Where it stands at `now`. An invalidation counts once it has happened, and only
    /// while the report was still pending or downloadable.
    pub fn status(&self, now: Timestamp) -> ReportStatus {
        let expires_at = self.expires_at();
        if let Some((at, cause)) = self.invalidated {
            if at <= now && at < expires_at {
                return ReportStatus::Invalidated { at, cause };
            }
        }
        if now < self.ready_by() {
            ReportStatus::Pending {
                ready_by: self.ready_by(),
            }
        } else if now < expires_at {
            ReportStatus::Ready { expires_at }
        } else {
            ReportStatus::Expired { since: expires_at }
        }
    }
}
