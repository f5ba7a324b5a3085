//! Business chats: where end-to-end encryption ends, and how the user is told.
//!
//! A business's end of a chat can run on its own device or servers (end-to-end to the
//! business), in the messaging operator's cloud (the operator decrypts as the business's
//! processor), or at a vendor (a named third party holds the keys). The business states
//! which in a [`HostingAttestation`] signed with its identity key; an
//! [`AttestationVerifier`] checks the signature, the validity window and that the serial
//! never goes backwards. From a [`VerifiedAttestation`] follow the chat's
//! [`ChatPrivacy`] (who can read it) and the [`Notice`]s the user sees; a per-chat
//! [`DisclosureTracker`] makes sure a message handled under a hosting the user has not
//! been told about is handed out only after the notice that says so.

mod attestation;
mod disclosure;
mod hosting;
mod privacy;

pub use attestation::{
    AttestationError, AttestationVerifier, BuildError, HostingAttestation, HostingTag, LoadError,
    SignedAttestation, VerifiedAttestation,
};
pub use disclosure::{
    BusinessLabel, ChatItem, DisclosureTracker, MAX_HELD_MESSAGES, Notice, TrackError,
};
pub use hosting::{BusinessId, HostingMode, NameError, Provider, SelfManagedEndpoint};
pub use privacy::{ChatPrivacy, Reader};
