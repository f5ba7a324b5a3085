//! The account-information report: what it holds and its JSON form.
//!
//! It holds account information and settings, never messages: there is no field a
//! message body could go into.

use super::json::{Json, hex};
use crate::Timestamp;
use crate::assurance::ContactAssurance;
use crate::business::{ChatPrivacy, DisclosureTracker, Notice, Reader};
use crate::policy::{
    AccountState, Activity, ConsentLedger, ConsentSnapshot, DataCategory, FamilyCategory,
    LegalBasis, PolicySchedule, Recipient, SharingDecision, StateError, account_state, evaluate,
    format_utc, state_history,
};

/// The JSON schema identifier written into every report.
pub const SCHEMA_ID: &str = "confide.account_info";

/// The JSON schema version written by this release.
pub const SCHEMA_VERSION: u64 = 1;

/// The JSON Schema (draft 2020-12) that `account_info.json` follows.
pub const ACCOUNT_INFO_SCHEMA: &str = include_str!("account_info.schema.json");

/// Who can see a profile field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Visibility {
    /// Everyone.
    Everyone,
    /// My contacts.
    Contacts,
    /// Nobody.
    Nobody,
}

impl Visibility {
    fn as_str(self) -> &'static str {
        match self {
            Self::Everyone => "everyone",
            Self::Contacts => "contacts",
            Self::Nobody => "nobody",
        }
    }
}

/// The default disappearing-message timer for new chats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MessageTimer {
    /// Off.
    Off,
    /// 24 hours.
    Hours24,
    /// 7 days.
    Days7,
    /// 90 days.
    Days90,
}

impl MessageTimer {
    fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Hours24 => "24_hours",
            Self::Days7 => "7_days",
            Self::Days90 => "90_days",
        }
    }
}

/// The user's profile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Profile {
    /// Display name.
    pub name: String,
    /// The "About" text.
    pub about: String,
    /// Whether a profile photo is set.
    pub has_photo: bool,
}

/// Privacy settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PrivacySettings {
    /// Who sees "last seen".
    pub last_seen: Visibility,
    /// Who sees the profile photo.
    pub profile_photo: Visibility,
    /// Who sees "About".
    pub about: Visibility,
    /// Who can add the user to groups.
    pub groups: Visibility,
    /// Whether read receipts are sent.
    pub read_receipts: bool,
    /// The default timer for new chats.
    pub default_message_timer: MessageTimer,
}

/// A device linked to the account, as the report lists it (not [`crate::Device`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountDevice {
    /// Its name.
    pub label: String,
    /// Its platform.
    pub platform: String,
    /// When it was linked.
    pub linked_at: Timestamp,
}

/// A group the user belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    /// The group's name, as its members chose it.
    pub name: String,
    /// Whether the user is an admin.
    pub admin: bool,
    /// How many members.
    pub member_count: u32,
}

/// A business chat and what the user was last told about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BusinessChat {
    /// The business's display name.
    pub name: String,
    /// Who can read the chat, if a hosting was verified.
    pub privacy: Option<ChatPrivacy>,
    /// The notice currently shown.
    pub notice: Option<Notice>,
}

impl BusinessChat {
    /// From a chat's tracker.
    pub fn from_tracker(name: impl Into<String>, tracker: &DisclosureTracker) -> Self {
        Self {
            name: name.into(),
            privacy: tracker.told_privacy(),
            notice: tracker.current_notice(),
        }
    }
}

/// The account facts the library does not keep itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountInfo {
    /// The registered phone number.
    pub phone_number: String,
    /// Profile.
    pub profile: Profile,
    /// Privacy settings.
    pub privacy: PrivacySettings,
    /// Linked devices.
    pub devices: Vec<AccountDevice>,
    /// Groups.
    pub groups: Vec<Group>,
    /// Business chats.
    pub business_chats: Vec<BusinessChat>,
}

/// Everything a report is built from.
#[derive(Clone, Copy, Debug)]
pub struct ReportSources<'a> {
    /// Account facts.
    pub info: &'a AccountInfo,
    /// The consent ledger.
    pub ledger: &'a ConsentLedger,
    /// The policy schedule.
    pub schedule: &'a PolicySchedule,
    /// Activity.
    pub activity: &'a Activity,
    /// Each contact's identity assurance
    /// ([`Device::identity_assurances`](crate::Device::identity_assurances)).
    pub identity_assurance: &'a [ContactAssurance],
}

/// A report could not be built or written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// The account state cannot be computed.
    #[error("account state unavailable: {0}")]
    State(#[source] StateError),
    /// The account is deleted: there is nothing to report on.
    #[error("the account is deleted")]
    AccountDeleted,
    /// A file would exceed the ZIP format's 4 GiB limit.
    #[error("report is too large for a ZIP file")]
    TooLarge,
}

/// A built report: render it with [`AccountReport::to_json`], [`AccountReport::to_html`]
/// or [`AccountReport::to_zip`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountReport {
    pub(crate) generated_at: Timestamp,
    pub(crate) json: Json,
    pub(crate) opt_out_statement: String,
    pub(crate) state_description: &'static str,
}

/// The sentence that states the legacy opt-out, in plain words.
fn opt_out_statement(ledger: &ConsentLedger, now: Timestamp) -> (bool, String, Json, Json) {
    match ledger.legacy_opt_out(now) {
        Some(o) => (
            true,
            format!(
                "You opted out on {} of sharing your account information with the parent company's other companies for ads and product experiences. This choice is permanent: it is still honoured, including after you accepted later policy versions.",
                &format_utc(o.at)[..10]
            ),
            Json::str(format_utc(o.at)),
            Json::str(o.version.as_str()),
        ),
        None => (
            false,
            "You have not opted out of sharing your account information with the parent company's other companies for ads and product experiences.".to_owned(),
            Json::Null,
            Json::Null,
        ),
    }
}

fn reader_text(r: &Reader) -> String {
    match r {
        Reader::User => "You".to_owned(),
        Reader::BusinessAndStaff => {
            "The business and its staff (and anyone it involves after delivery)".to_owned()
        }
        Reader::OperatorAsProcessor {
            name,
            retention_days,
        } => format!(
            "{name}, as the business's processor (keeps messages up to {retention_days} days)"
        ),
        Reader::Vendor {
            name,
            retention_days: Some(d),
        } => format!("{name}, a company the business works with (keeps messages up to {d} days)"),
        Reader::Vendor { name, .. } => format!("{name}, a company the business works with"),
    }
}

impl AccountReport {
    /// Builds the report as of `now`.
    pub fn build(src: &ReportSources<'_>, now: Timestamp) -> Result<Self, ReportError> {
        let state = account_state(src.ledger, src.schedule, src.activity, now)
            .map_err(ReportError::State)?;
        if matches!(state, AccountState::Deleted { .. }) {
            return Err(ReportError::AccountDeleted);
        }
        let history = state_history(src.ledger, src.schedule, src.activity, now)
            .map_err(ReportError::State)?;
        let info = src.info;
        let ts = |t: Timestamp| Json::str(format_utc(t));
        let (opted_out, statement, opt_at, opt_version) = opt_out_statement(src.ledger, now);
        let caps = state.capabilities();
        let capabilities = Json::Obj(vec![
            ("read_chat_list", Json::Bool(caps.read_chat_list)),
            ("send_messages", Json::Bool(caps.send_messages)),
            ("read_messages", Json::Bool(caps.read_messages)),
            (
                "reply_from_notifications",
                Json::Bool(caps.reply_from_notifications),
            ),
            ("receive_calls", Json::Bool(caps.receive_calls)),
            (
                "receive_notifications",
                Json::Bool(caps.receive_notifications),
            ),
            ("export_chats", Json::Bool(caps.export_chats)),
            ("request_report", Json::Bool(caps.request_report)),
            ("delete_account", Json::Bool(caps.delete_account)),
        ]);
        let json = Json::Obj(vec![
            ("schema", Json::str(SCHEMA_ID)),
            ("schema_version", Json::Num(SCHEMA_VERSION)),
            ("generated_at", ts(now)),
            (
                "registration",
                Json::Obj(vec![
                    ("phone_number", Json::str(&info.phone_number)),
                    ("registered_at", ts(src.activity.registered_at())),
                ]),
            ),
            (
                "profile",
                Json::Obj(vec![
                    ("name", Json::str(&info.profile.name)),
                    ("about", Json::str(&info.profile.about)),
                    ("has_photo", Json::Bool(info.profile.has_photo)),
                ]),
            ),
            (
                "privacy_settings",
                Json::Obj(vec![
                    ("last_seen", Json::str(info.privacy.last_seen.as_str())),
                    (
                        "profile_photo",
                        Json::str(info.privacy.profile_photo.as_str()),
                    ),
                    ("about", Json::str(info.privacy.about.as_str())),
                    ("groups", Json::str(info.privacy.groups.as_str())),
                    ("read_receipts", Json::Bool(info.privacy.read_receipts)),
                    (
                        "default_message_timer",
                        Json::str(info.privacy.default_message_timer.as_str()),
                    ),
                ]),
            ),
            (
                "devices",
                Json::Arr(
                    info.devices
                        .iter()
                        .map(|d| {
                            Json::Obj(vec![
                                ("label", Json::str(&d.label)),
                                ("platform", Json::str(&d.platform)),
                                ("linked_at", ts(d.linked_at)),
                            ])
                        })
                        .collect(),
                ),
            ),
            (
                "groups",
                Json::Arr(
                    info.groups
                        .iter()
                        .map(|g| {
                            Json::Obj(vec![
                                ("name", Json::str(&g.name)),
                                ("admin", Json::Bool(g.admin)),
                                ("member_count", Json::Num(u64::from(g.member_count))),
                            ])
                        })
                        .collect(),
                ),
            ),
            (
                "business_chats",
                Json::Arr(info.business_chats.iter().map(business_json).collect()),
            ),
            (
                "identity_assurance",
                super::assurance::section(src.identity_assurance),
            ),
            (
                "consent_history",
                Json::Arr(
                    src.ledger
                        .entries()
                        .iter()
                        .filter(|e| e.event().at <= now)
                        .map(|e| {
                            let ev = e.event();
                            Json::Obj(vec![
                                ("seq", Json::Num(e.seq())),
                                ("policy_version", Json::str(ev.version.as_str())),
                                ("decision", Json::str(ev.decision.as_str())),
                                (
                                    "dpv_consent_status",
                                    Json::str(ev.decision.dpv_consent_status()),
                                ),
                                ("at", ts(ev.at)),
                                ("method", Json::str(ev.method.as_str())),
                                ("entry_hash", Json::str(hex(e.hash()))),
                            ])
                        })
                        .collect(),
                ),
            ),
            ("consent_ledger_head", Json::str(hex(&src.ledger.head()))),
            (
                "legacy_opt_out",
                Json::Obj(vec![
                    ("opted_out", Json::Bool(opted_out)),
                    ("statement", Json::str(statement.clone())),
                    ("recorded_at", opt_at),
                    ("policy_version", opt_version),
                ]),
            ),
            (
                "account_state",
                Json::Obj(vec![
                    ("current", Json::str(state.as_str())),
                    ("description", Json::str(state.describe())),
                    ("capabilities", capabilities),
                ]),
            ),
            (
                "account_state_history",
                Json::Arr(
                    history
                        .iter()
                        .map(|(t, s)| {
                            Json::Obj(vec![
                                ("from", ts(*t)),
                                ("state", Json::str(s.as_str())),
                                ("description", Json::str(s.describe())),
                            ])
                        })
                        .collect(),
                ),
            ),
            (
                "data_sharing",
                sharing_json(&ConsentSnapshot::at(src.ledger, src.schedule, now)),
            ),
        ]);
        Ok(Self {
            generated_at: now,
            json,
            opt_out_statement: statement,
            state_description: state.describe(),
        })
    }

    /// Adds the `backup` section (after `identity_assurance`), for a device that has a
    /// backup setting or was restored.
    #[cfg(feature = "backup")]
    pub(crate) fn with_backup(
        mut self,
        status: &crate::backup::BackupStatus,
        ledger: &ConsentLedger,
    ) -> Self {
        if let Json::Obj(items) = &mut self.json {
            let at = items
                .iter()
                .position(|(k, _)| *k == "identity_assurance")
                .map_or(items.len(), |i| i + 1);
            items.insert(at, ("backup", super::backup::section(status, ledger)));
        }
        self
    }

    /// `account_info.json`: pretty-printed, following [`ACCOUNT_INFO_SCHEMA`].
    pub fn to_json(&self) -> String {
        self.json.to_pretty()
    }
}

fn business_json(b: &BusinessChat) -> Json {
    Json::Obj(vec![
        ("business", Json::str(&b.name)),
        (
            "end_to_end_encrypted_to_business",
            b.privacy
                .as_ref()
                .map_or(Json::Null, |p| Json::Bool(p.is_end_to_end_to_business())),
        ),
        (
            "readers",
            Json::Arr(
                b.privacy
                    .iter()
                    .flat_map(|p| p.readers().iter().map(|r| Json::str(reader_text(r))))
                    .collect(),
            ),
        ),
        ("notice_code", Json::opt_str(b.notice.map(|n| n.code()))),
        (
            "notice_text",
            Json::opt_str(b.notice.map(|n| n.default_text())),
        ),
    ])
}

fn sharing_json(snap: &ConsentSnapshot) -> Json {
    let mut flows = Vec::new();
    let mut purposes: Vec<&'static str> = Vec::new();
    let mut categories: Vec<&'static str> = Vec::new();
    let mut recipients: Vec<&'static str> = Vec::new();
    for flow in crate::policy::all_flows() {
        let SharingDecision::Allowed { basis, retention } = evaluate(&flow, snap) else {
            continue;
        };
        let (p, c, r) = (flow.purpose(), flow.category(), flow.recipient());
        for (list, v) in [
            (&mut purposes, p.as_str()),
            (&mut categories, c.as_str()),
            (&mut recipients, r.as_str()),
        ] {
            if !list.contains(&v) {
                list.push(v);
            }
        }
        let consent_version = match &basis {
            LegalBasis::Consent { version } => Json::str(version.as_str()),
            _ => Json::Null,
        };
        flows.push(Json::Obj(vec![
            ("recipient", Json::str(r.as_str())),
            ("recipient_label", Json::str(r.label())),
            ("category", Json::str(c.as_str())),
            ("category_label", Json::str(c.label())),
            ("purpose", Json::str(p.as_str())),
            ("purpose_label", Json::str(p.label())),
            ("dpv_purpose", Json::str(p.dpv())),
            ("legal_basis", Json::str(basis.as_str())),
            ("consent_version", consent_version),
            ("retention", Json::str(retention.as_str())),
            ("retention_label", Json::str(retention.label())),
        ]));
    }
    let never: Vec<Json> = DataCategory::ALL
        .into_iter()
        .filter(|c| FamilyCategory::try_from(*c).is_err())
        .map(|c| Json::str(c.as_str()))
        .collect();
    let strs = |v: Vec<&'static str>| Json::Arr(v.into_iter().map(Json::str).collect());
    Json::Obj(vec![
        ("purposes", strs(purposes)),
        ("categories", strs(categories)),
        ("recipients", strs(recipients)),
        ("allowed_flows", Json::Arr(flows)),
        ("never_shared_with_parent_company_family", Json::Arr(never)),
        (
            "parent_company_family_recipient",
            Json::str(Recipient::ParentFamily.as_str()),
        ),
        (
            "your_rights",
            Json::str(
                "You can ask for your data to be corrected or erased, for its processing to be restricted, and object to processing. You can withdraw consent at any time in the account settings; this does not affect processing before the withdrawal.",
            ),
        ),
        (
            "complaints",
            Json::str("You can complain to a data-protection supervisory authority."),
        ),
        (
            "source",
            Json::str("Data in this report comes from you and your use of the service."),
        ),
        (
            "automated_decisions",
            Json::str(
                "No decisions with legal or similar effects are made about you by automated means from this data.",
            ),
        ),
    ])
}
