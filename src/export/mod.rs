//! The account-information report.
//!
//! - [`ReportRequest`]: requested → ready (about 3 days) → expired (a few weeks), or
//!   invalidated by a number change, re-registration, a device change or deletion; pure
//!   functions of time.
//! - [`AccountReport`]: registration, profile, privacy settings, devices, groups, business
//!   chats with their current disclosure, the consent history, the legacy opt-out in
//!   plain words, the account-state history and a data-sharing summary with the GDPR
//!   Art. 15 fields. It has no place for message content.
//! - [`AccountReport::to_zip`]: `account_info.json` (schema [`ACCOUNT_INFO_SCHEMA`],
//!   versioned by [`SCHEMA_VERSION`]), `account_info.html` (self-contained, every string
//!   escaped) and the schema itself.

mod assurance;
#[cfg(feature = "backup")]
mod backup;
mod html;
pub(crate) mod json;
mod report;
mod request;
mod zip;

pub use report::{
    ACCOUNT_INFO_SCHEMA, AccountDevice, AccountInfo, AccountReport, BusinessChat, Group,
    MessageTimer, PrivacySettings, Profile, ReportError, ReportSources, SCHEMA_ID, SCHEMA_VERSION,
    Visibility,
};
pub use request::{Invalidation, ReportDurations, ReportRequest, ReportStatus, RequestError};

/// File names inside the ZIP.
pub const ZIP_JSON_NAME: &str = "account_info.json";
/// See [`ZIP_JSON_NAME`].
pub const ZIP_HTML_NAME: &str = "account_info.html";
/// See [`ZIP_JSON_NAME`].
pub const ZIP_SCHEMA_NAME: &str = "account_info.schema.json";

impl AccountReport {
    /// The report as a ZIP archive (stored entries, UTF-8 names), time-stamped with the
    /// report's generation time.
    pub fn to_zip(&self) -> Result<Vec<u8>, ReportError> {
        let json = self.to_json();
        let html = self.to_html();
        zip::write_zip(
            &[
                (ZIP_JSON_NAME, json.as_bytes()),
                (ZIP_HTML_NAME, html.as_bytes()),
                (ZIP_SCHEMA_NAME, ACCOUNT_INFO_SCHEMA.as_bytes()),
            ],
            self.generated_at,
        )
    }
}
