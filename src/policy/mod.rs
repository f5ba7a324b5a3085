//! Policy versions, consent, the account-state machine and data sharing.
//!
//! The promises made around a privacy-policy update (who must accept what by when, what
//! happens to an account whose owner declines, that a legacy opt-out survives later
//! acceptances, which data may reach which company for which purpose) are modelled here
//! as plain values and pure functions. Time is always an argument, so every rule can be
//! replayed and tested:
//!
//! - [`PolicySchedule`] holds the [`PolicyVersion`]s and the announced changes to their
//!   schedules (a moved deadline, suspended enforcement) and the [`EnforcementDurations`];
//! - [`ConsentLedger`] is an append-only, hash-chained record of the user's answers,
//!   each exportable as a Kantara consent receipt ([`ConsentLedger::receipt`]);
//! - [`account_state`] derives the [`AccountState`] and its [`Capabilities`] from
//!   (ledger, schedule, activity, now);
//! - [`evaluate`] decides a [`DataFlow`]: allowed with its [`LegalBasis`], or denied with
//!   its [`DenialReason`]. Message content, shared location, contacts and
//!   who-messages-whom cannot even be written as a flow to the parent-company family:
//!   [`DataFlow::ToParentFamily`] takes a [`FamilyCategory`], which has no such variants.
//!
//! [`timeline_2021`] builds the schedule of the 2021 update as it was announced.

mod calendar;
mod ledger;
mod persist;
mod purpose;
mod receipt;
mod sharing;
mod state;
mod version;

pub(crate) use sharing::all_flows;

pub(crate) use calendar::civil as calendar_civil;
pub use calendar::{format_utc, utc_date};
pub use ledger::{
    CollectionMethod, ConsentEvent, ConsentLedger, Decision, LedgerEntry, LegacyOptOut,
    RecordConsentError, VersionConsent,
};
pub use persist::LoadError;
pub use purpose::Purpose;
pub use receipt::{RECEIPT_VERSION, ReceiptContext, ReceiptError};
pub use sharing::{
    ConsentSnapshot, DataCategory, DataFlow, DenialReason, FamilyCategory, FlowError, LegalBasis,
    Recipient, Retention, SharingDecision, evaluate,
};
pub use state::{
    AccountState, Activity, ActivityError, Capabilities, DeletionCause, StateError, account_state,
    state_history,
};
pub use version::{
    ChangeKind, EnforcementDurations, PolicyId, PolicyIdError, PolicySchedule, PolicyVersion,
    ScheduleChange, ScheduleError, Terms, timeline_2021,
};

/// Milliseconds in one day.
pub(crate) const DAY_MS: u64 = 86_400_000;

/// `days` as milliseconds.
pub(crate) const fn days(days: u32) -> u64 {
    days as u64 * DAY_MS
}
