//! Who runs the business's end of a chat.

use crate::keys::IdentityKey;

/// Longest business id or provider name accepted, in bytes.
const MAX_NAME_LEN: usize = 128;

/// A name or id was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// Empty or longer than 128 bytes.
    #[error("name length {len} is outside 1..=128 bytes")]
    BadLength {
        /// Length given.
        len: usize,
    },
    /// Contains a control character.
    #[error("name contains a control character")]
    ControlCharacter,
}

fn check_name(s: &str) -> Result<(), NameError> {
    if s.is_empty() || s.len() > MAX_NAME_LEN {
        return Err(NameError::BadLength { len: s.len() });
    }
    if s.chars().any(char::is_control) {
        return Err(NameError::ControlCharacter);
    }
    Ok(())
}

/// A business's account id (e.g. its phone number or handle).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BusinessId(String);

impl BusinessId {
    /// Checks and wraps an id.
    pub fn new(id: impl Into<String>) -> Result<Self, NameError> {
        let id = id.into();
        check_name(&id)?;
        Ok(Self(id))
    }

    /// The id text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A company that runs a hosted endpoint, with the SHA-256 fingerprint of the key its
/// endpoint uses, so a user or auditor can tell which endpoint the statement is about.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Provider {
    name: String,
    key_fingerprint: [u8; 32],
}

impl Provider {
    /// A provider whose endpoint uses `endpoint_key`.
    pub fn new(name: impl Into<String>, endpoint_key: &IdentityKey) -> Result<Self, NameError> {
        Self::with_fingerprint(name, crate::crypto::sha256(&endpoint_key.serialize()))
    }

    /// A provider from a fingerprint computed elsewhere.
    pub fn with_fingerprint(
        name: impl Into<String>,
        key_fingerprint: [u8; 32],
    ) -> Result<Self, NameError> {
        let name = name.into();
        check_name(&name)?;
        Ok(Self {
            name,
            key_fingerprint,
        })
    }

    /// The company's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// SHA-256 of the endpoint key's 33-byte encoding.
    pub fn key_fingerprint(&self) -> &[u8; 32] {
        &self.key_fingerprint
    }
}

/// Where a self-managed business runs its end.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SelfManagedEndpoint {
    /// The business app on the business's own device.
    BusinessApp,
    /// API servers the business itself controls.
    OwnApiServers,
}

/// Who runs the business's end of the chat, and so who can read it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HostingMode {
    /// The business runs it: end-to-end encrypted to the business.
    SelfManaged(SelfManagedEndpoint),
    /// The operator's cloud is the business's endpoint and processor.
    OperatorCloud {
        /// The operator's cloud service.
        operator: Provider,
        /// How many days it keeps messages (30 for the cloud API in the facts).
        retention_days: u32,
    },
    /// A named third party runs the endpoint or stores, reads or answers messages.
    VendorManaged {
        /// The vendor.
        vendor: Provider,
        /// How many days it keeps messages, if it said.
        retention_days: Option<u32>,
    },
}

impl HostingMode {
    /// Whether the chat is end-to-end encrypted to the business itself.
    pub fn is_end_to_end_to_business(&self) -> bool {
        matches!(self, Self::SelfManaged(_))
    }

    /// Stable name used in JSON.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::SelfManaged(SelfManagedEndpoint::BusinessApp) => "self_managed_app",
            Self::SelfManaged(SelfManagedEndpoint::OwnApiServers) => "self_managed_servers",
            Self::OperatorCloud { .. } => "operator_cloud",
            Self::VendorManaged { .. } => "vendor_managed",
        }
    }
}
