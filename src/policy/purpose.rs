//! What data is used for: the purposes a policy version introduces and a data flow names.

/// What data is used for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Purpose {
    /// Running and delivering the service.
    InfrastructureAndDelivery,
    /// Securing systems, fighting spam and abuse.
    SecurityAndIntegrity,
    /// Understanding how the services are used.
    Analytics,
    /// Advertising.
    Ads,
    /// Product experiences such as friend suggestions.
    ProductExperiences,
    /// Hosting and managing business chats.
    BusinessMessagingHosting,
}

impl Purpose {
    /// Every purpose.
    pub const ALL: [Self; 6] = [
        Self::InfrastructureAndDelivery,
        Self::SecurityAndIntegrity,
        Self::Analytics,
        Self::Ads,
        Self::ProductExperiences,
        Self::BusinessMessagingHosting,
    ];

    /// Stable code, as in `proto/policy.proto`.
    pub fn code(self) -> i32 {
        match self {
            Self::InfrastructureAndDelivery => 1,
            Self::SecurityAndIntegrity => 2,
            Self::Analytics => 3,
            Self::Ads => 4,
            Self::ProductExperiences => 5,
            Self::BusinessMessagingHosting => 6,
        }
    }

    pub(crate) fn from_code(code: i32) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.code() == code)
    }

    /// Stable name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InfrastructureAndDelivery => "infrastructure_and_delivery",
            Self::SecurityAndIntegrity => "security_and_integrity",
            Self::Analytics => "analytics",
            Self::Ads => "ads",
            Self::ProductExperiences => "product_experiences",
            Self::BusinessMessagingHosting => "business_messaging_hosting",
        }
    }

    /// Plain-words label for reports.
    pub fn label(self) -> &'static str {
        match self {
            Self::InfrastructureAndDelivery => "Improving infrastructure and delivery",
            Self::SecurityAndIntegrity => "Security, spam and abuse prevention",
            Self::Analytics => "Understanding how the services are used",
            Self::Ads => "Ads",
            Self::ProductExperiences => "Product experiences (e.g. friend suggestions)",
            Self::BusinessMessagingHosting => "Hosting and managing business chats",
        }
    }

    /// The W3C Data Privacy Vocabulary purpose (prefix `dpv:` = `https://w3id.org/dpv#`).
    pub fn dpv(self) -> &'static str {
        match self {
            Self::InfrastructureAndDelivery => "dpv:ServiceProvision",
            Self::SecurityAndIntegrity => "dpv:EnforceSecurity",
            Self::Analytics => "dpv:ResearchAndDevelopment",
            Self::Ads => "dpv:PersonalisedAdvertising",
            Self::ProductExperiences => "dpv:ServicePersonalisation",
            Self::BusinessMessagingHosting => "dpv:CommunicationForCustomerCare",
        }
    }

    /// Kantara consent-receipt purpose category.
    pub fn kantara_category(self) -> &'static str {
        match self {
            Self::Ads => "6 - Marketing",
            Self::ProductExperiences => "5 - Personalize Experience",
            _ => "2 - Contracted Service",
        }
    }
}
