//! Which data may flow to whom, for what, on which legal basis.

use std::collections::BTreeMap;

use super::ledger::ConsentLedger;
use super::purpose::Purpose;
use super::version::{PolicyId, PolicySchedule};
use crate::Timestamp;

/// A kind of personal data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum DataCategory {
    /// Registration data such as the phone number.
    AccountRegistration,
    /// Payments and shop transactions.
    TransactionData,
    /// Service-related information.
    ServiceRelated,
    /// How the user interacts with others, including businesses.
    BusinessInteractions,
    /// Mobile device information.
    DeviceInfo,
    /// IP address.
    IpAddress,
    /// The address book.
    Contacts,
    /// What messages say, including media.
    MessageContent,
    /// Shared location.
    Location,
    /// Who messages or calls whom.
    WhoMessagesWhom,
}

impl DataCategory {
    /// Every category.
    pub const ALL: [Self; 10] = [
        Self::AccountRegistration,
        Self::TransactionData,
        Self::ServiceRelated,
        Self::BusinessInteractions,
        Self::DeviceInfo,
        Self::IpAddress,
        Self::Contacts,
        Self::MessageContent,
        Self::Location,
        Self::WhoMessagesWhom,
    ];

    /// Stable name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AccountRegistration => "account_registration",
            Self::TransactionData => "transaction_data",
            Self::ServiceRelated => "service_related",
            Self::BusinessInteractions => "business_interactions",
            Self::DeviceInfo => "device_info",
            Self::IpAddress => "ip_address",
            Self::Contacts => "contacts",
            Self::MessageContent => "message_content",
            Self::Location => "location",
            Self::WhoMessagesWhom => "who_messages_whom",
        }
    }

    /// Plain-words label for reports.
    pub fn label(self) -> &'static str {
        match self {
            Self::AccountRegistration => "Account registration information (e.g. phone number)",
            Self::TransactionData => "Transaction data",
            Self::ServiceRelated => "Service-related information",
            Self::BusinessInteractions => "How you interact with others, including businesses",
            Self::DeviceInfo => "Mobile device information",
            Self::IpAddress => "IP address",
            Self::Contacts => "Your contacts",
            Self::MessageContent => "Message content",
            Self::Location => "Shared location",
            Self::WhoMessagesWhom => "Who you message or call",
        }
    }

    /// Kantara consent-receipt PII category. Only the examples the specification shows
    /// are used; anything about communication maps to "4 - Communications/Social".
    pub fn kantara_category(self) -> &'static str {
        match self {
            Self::AccountRegistration | Self::Contacts => "2 - Contact",
            Self::TransactionData => "7 - Financial",
            _ => "4 - Communications/Social",
        }
    }
}

/// The categories that have any path to the parent-company family. Message content,
/// shared location, contacts and who-messages-whom are not here, so a flow of them to
/// the family cannot be written down.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum FamilyCategory {
    /// See [`DataCategory::AccountRegistration`].
    AccountRegistration,
    /// See [`DataCategory::TransactionData`].
    TransactionData,
    /// See [`DataCategory::ServiceRelated`].
    ServiceRelated,
    /// See [`DataCategory::BusinessInteractions`].
    BusinessInteractions,
    /// See [`DataCategory::DeviceInfo`].
    DeviceInfo,
    /// See [`DataCategory::IpAddress`].
    IpAddress,
}

impl FamilyCategory {
    /// Every family category.
    pub const ALL: [Self; 6] = [
        Self::AccountRegistration,
        Self::TransactionData,
        Self::ServiceRelated,
        Self::BusinessInteractions,
        Self::DeviceInfo,
        Self::IpAddress,
    ];
}

impl From<FamilyCategory> for DataCategory {
    fn from(c: FamilyCategory) -> Self {
        match c {
            FamilyCategory::AccountRegistration => Self::AccountRegistration,
            FamilyCategory::TransactionData => Self::TransactionData,
            FamilyCategory::ServiceRelated => Self::ServiceRelated,
            FamilyCategory::BusinessInteractions => Self::BusinessInteractions,
            FamilyCategory::DeviceInfo => Self::DeviceInfo,
            FamilyCategory::IpAddress => Self::IpAddress,
        }
    }
}

impl TryFrom<DataCategory> for FamilyCategory {
    type Error = FlowError;

    fn try_from(c: DataCategory) -> Result<Self, FlowError> {
        Ok(match c {
            DataCategory::AccountRegistration => Self::AccountRegistration,
            DataCategory::TransactionData => Self::TransactionData,
            DataCategory::ServiceRelated => Self::ServiceRelated,
            DataCategory::BusinessInteractions => Self::BusinessInteractions,
            DataCategory::DeviceInfo => Self::DeviceInfo,
            DataCategory::IpAddress => Self::IpAddress,
            DataCategory::Contacts
            | DataCategory::MessageContent
            | DataCategory::Location
            | DataCategory::WhoMessagesWhom => {
                return Err(FlowError::NoPathToParentFamily { category: c });
            }
        })
    }
}

/// Who receives data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Recipient {
    /// The messaging operator itself.
    Operator,
    /// The operator's parent company and its other companies.
    ParentFamily,
    /// The business the user chats with.
    Business,
    /// The business's hosting provider (the operator's cloud or a vendor).
    HostingProvider,
}

impl Recipient {
    /// Every recipient.
    pub const ALL: [Self; 4] = [
        Self::Operator,
        Self::ParentFamily,
        Self::Business,
        Self::HostingProvider,
    ];

    /// Stable name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Operator => "operator",
            Self::ParentFamily => "parent_company_family",
            Self::Business => "business",
            Self::HostingProvider => "business_hosting_provider",
        }
    }

    /// Plain-words label for reports.
    pub fn label(self) -> &'static str {
        match self {
            Self::Operator => "The messaging service",
            Self::ParentFamily => "Its parent company's other companies",
            Self::Business => "Businesses you chat with",
            Self::HostingProvider => "Those businesses' hosting providers",
        }
    }
}

/// A flow was refused at construction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FlowError {
    /// This category never goes to the parent-company family.
    #[error("this data category has no path to the parent-company family")]
    NoPathToParentFamily {
        /// The category.
        category: DataCategory,
    },
}

/// One proposed use of data: a category, to a recipient, for a purpose.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DataFlow {
    /// To the operator.
    ToOperator {
        /// What.
        category: DataCategory,
        /// Why.
        purpose: Purpose,
    },
    /// To the parent-company family: only [`FamilyCategory`] can go here.
    ToParentFamily {
        /// What.
        category: FamilyCategory,
        /// Why.
        purpose: Purpose,
    },
    /// To the business in a business chat.
    ToBusiness {
        /// What.
        category: DataCategory,
        /// Why.
        purpose: Purpose,
    },
    /// To the business's hosting provider.
    ToHostingProvider {
        /// What.
        category: DataCategory,
        /// Why.
        purpose: Purpose,
    },
}

impl DataFlow {
    /// Builds a flow from its parts; a protected category to the family is refused.
    pub fn new(
        recipient: Recipient,
        category: DataCategory,
        purpose: Purpose,
    ) -> Result<Self, FlowError> {
        Ok(match recipient {
            Recipient::Operator => Self::ToOperator { category, purpose },
            Recipient::ParentFamily => Self::ToParentFamily {
                category: FamilyCategory::try_from(category)?,
                purpose,
            },
            Recipient::Business => Self::ToBusiness { category, purpose },
            Recipient::HostingProvider => Self::ToHostingProvider { category, purpose },
        })
    }

    /// Who receives.
    pub fn recipient(&self) -> Recipient {
        match self {
            Self::ToOperator { .. } => Recipient::Operator,
            Self::ToParentFamily { .. } => Recipient::ParentFamily,
            Self::ToBusiness { .. } => Recipient::Business,
            Self::ToHostingProvider { .. } => Recipient::HostingProvider,
        }
    }

    /// What.
    pub fn category(&self) -> DataCategory {
        match *self {
            Self::ToParentFamily { category, .. } => category.into(),
            Self::ToOperator { category, .. }
            | Self::ToBusiness { category, .. }
            | Self::ToHostingProvider { category, .. } => category,
        }
    }

    /// Why.
    pub fn purpose(&self) -> Purpose {
        match *self {
            Self::ToOperator { purpose, .. }
            | Self::ToParentFamily { purpose, .. }
            | Self::ToBusiness { purpose, .. }
            | Self::ToHostingProvider { purpose, .. } => purpose,
        }
    }
}

/// The legal ground an allowed flow rests on. GDPR-style names; DPV's legal-basis IRIs
/// are not pinned down yet, so none are claimed.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LegalBasis {
    /// Needed to provide the service the user signed up for.
    Contract,
    /// The recipient's legitimate interests (security, infrastructure, analytics).
    LegitimateInterests,
    /// The user's acceptance of a policy version.
    Consent {
        /// The accepted version that introduced the purpose.
        version: PolicyId,
    },
    /// A device permission the user granted (e.g. address-book access).
    DevicePermission,
    /// The user chose to send it to the business.
    UserInitiated,
    /// Processing on the business's behalf, as its processor.
    ProcessorForBusiness,
}

impl LegalBasis {
    /// Stable name used in JSON.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Contract => "contract",
            Self::LegitimateInterests => "legitimate_interests",
            Self::Consent { .. } => "consent",
            Self::DevicePermission => "device_permission",
            Self::UserInitiated => "user_initiated",
            Self::ProcessorForBusiness => "processor_for_business",
        }
    }
}

/// How long the recipient keeps the data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Retention {
    /// Only until delivered; no record is kept.
    UntilDelivered,
    /// As long as the account exists.
    AccountLifetime,
    /// Under the recipient's own policy.
    RecipientPolicy,
    /// As stated in the business's hosting attestation.
    HostingAttestation,
}

impl Retention {
    /// Stable name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UntilDelivered => "until_delivered",
            Self::AccountLifetime => "account_lifetime",
            Self::RecipientPolicy => "recipient_policy",
            Self::HostingAttestation => "hosting_attestation",
        }
    }

    /// Plain words for reports.
    pub fn label(self) -> &'static str {
        match self {
            Self::UntilDelivered => "Not kept after delivery",
            Self::AccountLifetime => "While your account exists",
            Self::RecipientPolicy => "Under the recipient's own policy",
            Self::HostingAttestation => "As the business's hosting statement says",
        }
    }
}

/// Why a flow is denied.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DenialReason {
    /// End-to-end encrypted: the recipient cannot read it.
    EndToEndEncrypted,
    /// The user's legacy opt-out covers ads and product experiences, forever.
    LegacyOptOut,
    /// The purpose comes with a policy version the user has not accepted.
    NotAccepted {
        /// That version.
        version: PolicyId,
    },
    /// The operator keeps no such record.
    NotRetained,
    /// The recipient does not need this category for this purpose.
    NotNeeded,
}

impl DenialReason {
    /// Stable name used in JSON.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::EndToEndEncrypted => "end_to_end_encrypted",
            Self::LegacyOptOut => "legacy_opt_out",
            Self::NotAccepted { .. } => "policy_not_accepted",
            Self::NotRetained => "not_retained",
            Self::NotNeeded => "not_needed",
        }
    }
}

/// The outcome for one flow.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SharingDecision {
    /// The flow may happen.
    Allowed {
        /// On what ground.
        basis: LegalBasis,
        /// For how long.
        retention: Retention,
    },
    /// It may not.
    Denied {
        /// Why.
        reason: DenialReason,
    },
}

impl SharingDecision {
    /// Whether allowed.
    pub fn is_allowed(&self) -> bool {
        matches!(self, Self::Allowed { .. })
    }
}

/// What the ledger says at one moment, as far as sharing is concerned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsentSnapshot {
    legacy_opt_out: bool,
    /// For each purpose some version introduces: `Ok(accepted version)` or
    /// `Err(version to accept)`.
    gated: BTreeMap<Purpose, Result<PolicyId, PolicyId>>,
}

impl ConsentSnapshot {
    /// The snapshot at `now`.
    pub fn at(ledger: &ConsentLedger, schedule: &PolicySchedule, now: Timestamp) -> Self {
        let mut gated = BTreeMap::new();
        for p in Purpose::ALL {
            let mut outcome = None;
            for v in schedule.introducing(p) {
                if ledger.is_accepted(&v.id, now) {
                    outcome = Some(Ok(v.id.clone()));
                    break;
                }
                if outcome.is_none() {
                    outcome = Some(Err(v.id.clone()));
                }
            }
            if let Some(o) = outcome {
                gated.insert(p, o);
            }
        }
        Self {
            legacy_opt_out: ledger.legacy_opt_out(now).is_some(),
            gated,
        }
    }

    /// As if every version were accepted and nothing opted out: what a purpose can
    /// involve at most, for receipts.
    pub(crate) fn all_accepted(schedule: &PolicySchedule) -> Self {
        let mut gated = BTreeMap::new();
        for p in Purpose::ALL {
            if let Some(v) = schedule.introducing(p).next() {
                gated.insert(p, Ok(v.id.clone()));
            }
        }
        Self {
            legacy_opt_out: false,
            gated,
        }
    }

    /// Whether the legacy opt-out is recorded.
    pub fn legacy_opt_out(&self) -> bool {
        self.legacy_opt_out
    }
}

/// Decides one flow. The order is fixed: the legacy opt-out first (it can never be
/// overridden), then purposes waiting for a version's acceptance, then the recipient's
/// table.
pub fn evaluate(flow: &DataFlow, consent: &ConsentSnapshot) -> SharingDecision {
    use DataCategory as C;
    use Purpose as P;
    let deny = |reason| SharingDecision::Denied { reason };
    let allow = |basis, retention| SharingDecision::Allowed { basis, retention };
    let purpose = flow.purpose();
    if matches!(purpose, P::Ads | P::ProductExperiences) && consent.legacy_opt_out {
        return deny(DenialReason::LegacyOptOut);
    }
    let consent_basis = match consent.gated.get(&purpose) {
        Some(Err(version)) => {
            return deny(DenialReason::NotAccepted {
                version: version.clone(),
            });
        }
        Some(Ok(version)) => Some(version.clone()),
        None => None,
    };
    let category = flow.category();
    match flow {
        DataFlow::ToOperator { .. } => match (category, purpose) {
            (C::MessageContent | C::Location, _) => deny(DenialReason::EndToEndEncrypted),
            (C::WhoMessagesWhom, P::InfrastructureAndDelivery) => {
                allow(LegalBasis::Contract, Retention::UntilDelivered)
            }
            (C::WhoMessagesWhom, _) => deny(DenialReason::NotRetained),
            (C::Contacts, P::InfrastructureAndDelivery) => {
                allow(LegalBasis::DevicePermission, Retention::AccountLifetime)
            }
            (C::Contacts, _) | (_, P::Ads) => deny(DenialReason::NotNeeded),
            (C::AccountRegistration | C::BusinessInteractions, P::BusinessMessagingHosting) => {
                allow(LegalBasis::Contract, Retention::AccountLifetime)
            }
            (_, P::BusinessMessagingHosting) => deny(DenialReason::NotNeeded),
            (_, P::InfrastructureAndDelivery | P::ProductExperiences) => {
                allow(LegalBasis::Contract, Retention::AccountLifetime)
            }
            (_, _) => allow(LegalBasis::LegitimateInterests, Retention::AccountLifetime),
        },
        DataFlow::ToParentFamily { .. } => match purpose {
            P::InfrastructureAndDelivery | P::SecurityAndIntegrity | P::Analytics => {
                allow(LegalBasis::LegitimateInterests, Retention::RecipientPolicy)
            }
            P::Ads | P::ProductExperiences => match consent_basis {
                Some(version) => allow(LegalBasis::Consent { version }, Retention::RecipientPolicy),
                None => deny(DenialReason::NotNeeded),
            },
            P::BusinessMessagingHosting => deny(DenialReason::NotNeeded),
        },
        DataFlow::ToBusiness { .. } | DataFlow::ToHostingProvider { .. } => {
            let chat_data = matches!(
                category,
                C::AccountRegistration | C::BusinessInteractions | C::MessageContent | C::Location
            );
            if purpose != P::BusinessMessagingHosting || !chat_data {
                return deny(DenialReason::NotNeeded);
            }
            if flow.recipient() == Recipient::Business {
                allow(LegalBasis::UserInitiated, Retention::RecipientPolicy)
            } else {
                allow(
                    LegalBasis::ProcessorForBusiness,
                    Retention::HostingAttestation,
                )
            }
        }
    }
}

/// Every flow that can be written down, in a fixed order: each recipient, then each
/// category it can take, then each purpose.
pub(crate) fn all_flows() -> Vec<DataFlow> {
    let mut out = Vec::new();
    for r in Recipient::ALL {
        for c in DataCategory::ALL {
            for p in Purpose::ALL {
                if let Ok(f) = DataFlow::new(r, c, p) {
                    out.push(f);
                }
            }
        }
    }
    out
}
