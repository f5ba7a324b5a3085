//! Who can read a business chat.

use super::attestation::VerifiedAttestation;
use super::hosting::HostingMode;

/// Someone who can read a business chat's plaintext.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Reader {
    /// The user.
    User,
    /// The business, its staff, and whoever the business involves after delivery (its
    /// own privacy practices apply from there).
    BusinessAndStaff,
    /// The messaging operator, as the business's processor.
    OperatorAsProcessor {
        /// The operator's cloud service.
        name: String,
        /// Days it keeps messages.
        retention_days: u32,
    },
    /// A named vendor that runs the business's endpoint.
    Vendor {
        /// The vendor.
        name: String,
        /// Days it keeps messages, if it said.
        retention_days: Option<u32>,
    },
}

/// Who can read this chat and whether it is end-to-end encrypted to the business: what
/// the user is entitled to know, derived only from a verified attestation.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ChatPrivacy {
    readers: Vec<Reader>,
    end_to_end_to_business: bool,
}

impl ChatPrivacy {
    /// The privacy of a chat whose business attested `attestation`.
    pub fn from_attestation(attestation: &VerifiedAttestation) -> Self {
        Self::from_mode(attestation.mode())
    }

    pub(crate) fn from_mode(mode: &HostingMode) -> Self {
        let mut readers = vec![Reader::User, Reader::BusinessAndStaff];
        match mode {
            HostingMode::SelfManaged(_) => {}
            HostingMode::OperatorCloud {
                operator,
                retention_days,
            } => readers.push(Reader::OperatorAsProcessor {
                name: operator.name().to_owned(),
                retention_days: *retention_days,
            }),
            HostingMode::VendorManaged {
                vendor,
                retention_days,
            } => readers.push(Reader::Vendor {
                name: vendor.name().to_owned(),
                retention_days: *retention_days,
            }),
        }
        Self {
            readers,
            end_to_end_to_business: mode.is_end_to_end_to_business(),
        }
    }

    /// Everyone who can read the plaintext.
    pub fn readers(&self) -> &[Reader] {
        &self.readers
    }

    /// Whether only the user and the business (with its staff) can read it.
    pub fn is_end_to_end_to_business(&self) -> bool {
        self.end_to_end_to_business
    }
}
