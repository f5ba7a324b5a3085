//! What the user is told about a business chat, and in which order.
//!
//! "The encryption status of an end-to-end encrypted chat cannot change without the
//! change being visible to the user": the [`DisclosureTracker`] hands out a message only
//! after every notice about the hosting it was handled under.

use std::collections::{BTreeMap, VecDeque};

use prost::Message;

use super::attestation::{
    FORMAT_VERSION, LoadError, VerifiedAttestation, check_version, mode_from_proto, mode_to_proto,
};
use super::hosting::{BusinessId, HostingMode};
use super::privacy::ChatPrivacy;
use crate::proto::business as pb;

/// Most messages a tracker holds while waiting for an attestation.
pub const MAX_HELD_MESSAGES: usize = 1024;

/// Most attestation serials a tracker remembers; the oldest are forgotten first.
const MAX_KNOWN: usize = 256;

/// The label the operator shows on a business profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BusinessLabel {
    /// A business account.
    BusinessAccount,
    /// A verified, official business account.
    OfficialBusinessAccount,
}

impl BusinessLabel {
    /// The profile label text.
    pub fn text(self) -> &'static str {
        match self {
            Self::BusinessAccount => "Business account",
            Self::OfficialBusinessAccount => "Official business account",
        }
    }
}

/// A system message shown in a business chat.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Notice {
    /// The business manages the chat itself: end-to-end encrypted to it.
    EndToEndEncrypted,
    /// The operator's cloud manages the chat for the business.
    OperatorHosted,
    /// Other companies manage the chat for the business.
    VendorManaged,
    /// The hosting changed; the notice for the new hosting follows.
    HostingChanged {
        /// The serial of the attestation that changed it.
        serial: u64,
    },
    /// The business's profile label changed.
    VerificationChanged {
        /// The new label.
        label: BusinessLabel,
    },
}

impl Notice {
    /// The notice that describes `mode`.
    pub fn for_mode(mode: &HostingMode) -> Self {
        match mode {
            HostingMode::SelfManaged(_) => Self::EndToEndEncrypted,
            HostingMode::OperatorCloud { .. } => Self::OperatorHosted,
            HostingMode::VendorManaged { .. } => Self::VendorManaged,
        }
    }

    /// Stable code, for apps that ship their own texts.
    pub fn code(&self) -> &'static str {
        match self {
            Self::EndToEndEncrypted => "business.e2ee",
            Self::OperatorHosted => "business.operator_hosted",
            Self::VendorManaged => "business.vendor_managed",
            Self::HostingChanged { .. } => "business.hosting_changed",
            Self::VerificationChanged { .. } => "business.verification_changed",
        }
    }

    /// Default English text. The first three are the in-chat texts of the deployed
    /// service this model follows, quoted as they appear there.
    pub fn default_text(&self) -> &'static str {
        match self {
            Self::EndToEndEncrypted => {
                "Messages and calls are end-to-end encrypted. No one outside of this chat, not even WhatsApp, can read or listen to them."
            }
            Self::OperatorHosted => {
                "This business uses a secure service from Meta to manage this chat."
            }
            Self::VendorManaged => "This business works with other companies to manage this chat.",
            Self::HostingChanged { .. } => {
                "This business changed how it manages this chat. Tap to learn who can read it now."
            }
            Self::VerificationChanged {
                label: BusinessLabel::OfficialBusinessAccount,
            } => "This business is now an Official business account.",
            Self::VerificationChanged {
                label: BusinessLabel::BusinessAccount,
            } => "This business is no longer an Official business account.",
        }
    }
}

/// One item to show in the chat, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ChatItem {
    /// A system notice.
    Notice(Notice),
    /// The message the app registered under `id`, now safe to show.
    Message {
        /// The app's id for it.
        id: u64,
        /// The attestation serial it was handled under.
        hosting_serial: u64,
    },
}

/// The tracker refused an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TrackError {
    /// The attestation is about another business.
    #[error("attestation is about another business than this chat's")]
    WrongBusiness,
    /// The message names an old serial this tracker never verified, so its hosting
    /// cannot be told.
    #[error("message names an unknown old attestation serial")]
    UnknownSerial {
        /// The serial named.
        serial: u64,
    },
    /// Too many messages are waiting for an attestation; fetch it first.
    #[error("too many messages are waiting for an attestation")]
    TooManyHeld,
}

/// One business chat's disclosure state: which hostings were verified, what the user was
/// last told, and the messages waiting for their hosting to be known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DisclosureTracker {
    business: BusinessId,
    known: BTreeMap<u64, HostingMode>,
    current: Option<u64>,
    told: Option<u64>,
    held: VecDeque<(u64, Option<u64>)>,
    label: Option<BusinessLabel>,
}

impl DisclosureTracker {
    /// A new chat with `business`; nothing told yet.
    pub fn new(business: BusinessId) -> Self {
        Self {
            business,
            known: BTreeMap::new(),
            current: None,
            told: None,
            held: VecDeque::new(),
            label: None,
        }
    }

    /// The business.
    pub fn business_id(&self) -> &BusinessId {
        &self.business
    }

    /// What the user was last told, if anything.
    pub fn told_privacy(&self) -> Option<ChatPrivacy> {
        self.told
            .and_then(|s| self.known.get(&s))
            .map(ChatPrivacy::from_mode)
    }

    /// The newest verified hosting.
    pub fn current_mode(&self) -> Option<&HostingMode> {
        self.current.and_then(|s| self.known.get(&s))
    }

    /// The notice describing what the user was last told (for a report or a chat header).
    pub fn current_notice(&self) -> Option<Notice> {
        self.told
            .and_then(|s| self.known.get(&s))
            .map(Notice::for_mode)
    }

    /// How many messages wait for an attestation.
    pub fn held_count(&self) -> usize {
        self.held.len()
    }

    /// Feeds a verified attestation; returns the notices it causes and any messages it
    /// releases, in display order.
    pub fn on_attestation(
        &mut self,
        attestation: &VerifiedAttestation,
    ) -> Result<Vec<ChatItem>, TrackError> {
        if attestation.business_id() != &self.business {
            return Err(TrackError::WrongBusiness);
        }
        let serial = attestation.serial();
        self.known.insert(serial, attestation.mode().clone());
        let newer = self.current.is_none_or(|c| serial > c);
        if newer {
            self.current = Some(serial);
        }
        let mut out = Vec::new();
        // Waiting messages first: they were sent before this statement was fetched.
        self.release(&mut out);
        if newer {
            self.tell(serial, &mut out);
        }
        self.forget_old();
        Ok(out)
    }

    /// Feeds a message the app registered as `id`, with the serial from its
    /// [`super::HostingTag`] if it carried one. Returns what can be shown now, in order;
    /// the message itself may wait for its attestation (see [`Self::held_count`]).
    pub fn on_message(
        &mut self,
        id: u64,
        serial: Option<u64>,
    ) -> Result<Vec<ChatItem>, TrackError> {
        if let (Some(s), Some(c)) = (serial, self.current) {
            if s < c && !self.known.contains_key(&s) {
                return Err(TrackError::UnknownSerial { serial: s });
            }
        }
        if self.held.len() >= MAX_HELD_MESSAGES {
            return Err(TrackError::TooManyHeld);
        }
        self.held.push_back((id, serial));
        let mut out = Vec::new();
        self.release(&mut out);
        Ok(out)
    }

    /// Feeds the profile label the operator shows now.
    pub fn on_label(&mut self, label: BusinessLabel) -> Vec<ChatItem> {
        let previous = self.label.replace(label);
        match previous {
            Some(p) if p != label => vec![ChatItem::Notice(Notice::VerificationChanged { label })],
            _ => Vec::new(),
        }
    }

    /// Hands out waiting messages in arrival order, each after its notices; stops at the
    /// first whose hosting is not known yet, so order is kept.
    fn release(&mut self, out: &mut Vec<ChatItem>) {
        while let Some(&(id, serial)) = self.held.front() {
            let s = match serial {
                Some(s) if self.known.contains_key(&s) => s,
                None if self.current.is_some() => self.current.unwrap_or_default(),
                _ => break,
            };
            self.held.pop_front();
            self.tell(s, out);
            out.push(ChatItem::Message {
                id,
                hosting_serial: s,
            });
        }
    }

    /// Makes sure the user has been told about hosting `serial`.
    fn tell(&mut self, serial: u64, out: &mut Vec<ChatItem>) {
        let Some(mode) = self.known.get(&serial) else {
            return;
        };
        let new = ChatPrivacy::from_mode(mode);
        if self.told_privacy().as_ref() != Some(&new) {
            if self.told.is_some() {
                out.push(ChatItem::Notice(Notice::HostingChanged { serial }));
            }
            out.push(ChatItem::Notice(Notice::for_mode(mode)));
        }
        self.told = Some(serial);
    }

    fn forget_old(&mut self) {
        while self.known.len() > MAX_KNOWN {
            let Some((&oldest, _)) = self.known.iter().next() else {
                break;
            };
            if Some(oldest) == self.told || Some(oldest) == self.current {
                break;
            }
            self.known.remove(&oldest);
        }
    }

    /// The `business.proto` `TrackerState` encoding, format 1.
    pub fn to_bytes(&self) -> Vec<u8> {
        pb::TrackerState {
            format_version: FORMAT_VERSION,
            business_id: self.business.as_str().to_owned(),
            known: self
                .known
                .iter()
                .map(|(serial, mode)| {
                    let (mode, provider, retention_days) = mode_to_proto(mode);
                    pb::KnownHosting {
                        serial: *serial,
                        mode,
                        provider,
                        retention_days,
                    }
                })
                .collect(),
            told_serial: self.told,
            current_serial: self.current,
            held: self
                .held
                .iter()
                .map(|(id, serial)| pb::HeldMessage {
                    message_id: *id,
                    serial: *serial,
                })
                .collect(),
            label: match self.label {
                None => pb::Label::Unspecified,
                Some(BusinessLabel::BusinessAccount) => pb::Label::BusinessAccount,
                Some(BusinessLabel::OfficialBusinessAccount) => pb::Label::OfficialBusinessAccount,
            } as i32,
        }
        .encode_to_vec()
    }

    /// Loads what [`DisclosureTracker::to_bytes`] wrote.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, LoadError> {
        let p = pb::TrackerState::decode(bytes).map_err(|_| LoadError::Malformed)?;
        check_version(p.format_version)?;
        let business = BusinessId::new(p.business_id).map_err(|_| LoadError::InvalidField {
            field: "business_id",
        })?;
        let mut known = BTreeMap::new();
        for k in p.known {
            known.insert(
                k.serial,
                mode_from_proto(k.mode, k.provider, k.retention_days)?,
            );
        }
        let present = |s: Option<u64>, field| match s {
            Some(s) if !known.contains_key(&s) => Err(LoadError::InvalidField { field }),
            _ => Ok(s),
        };
        let told = present(p.told_serial, "told_serial")?;
        let current = present(p.current_serial, "current_serial")?;
        if p.held.len() > MAX_HELD_MESSAGES {
            return Err(LoadError::InvalidField { field: "held" });
        }
        let label = match pb::Label::try_from(p.label) {
            Ok(pb::Label::Unspecified) => None,
            Ok(pb::Label::BusinessAccount) => Some(BusinessLabel::BusinessAccount),
            Ok(pb::Label::OfficialBusinessAccount) => Some(BusinessLabel::OfficialBusinessAccount),
            Err(_) => return Err(LoadError::InvalidField { field: "label" }),
        };
        Ok(Self {
            business,
            known,
            current,
            told,
            held: p
                .held
                .into_iter()
                .map(|h| (h.message_id, h.serial))
                .collect(),
            label,
        })
    }
}
