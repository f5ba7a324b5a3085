//! Pairwise sessions: X3DH and the Double Ratchet in the Signal Protocol v3 format.
//!
//! The version is a value ([`ProtocolVersion`]) carried by each session state, not a
//! constant: the handshake derivation takes its label and an optional KEM secret, the
//! message-key derivation an optional salt, and a [`SessionRecord`] may hold states of
//! different versions.

mod chain_key;
pub mod cipher;
mod message_keys;
// The bare session is public only as `hazmat::Session`.
pub(crate) mod ratchet;
mod record;
mod root_key;
mod version;
mod x3dh;

pub use record::{LocalKeys, PreKeyDecrypted, SessionRecord};
pub use version::ProtocolVersion;

/// The bounds that keep a session's memory finite whatever a peer sends. Past each one
/// the operation fails with a typed error or drops the oldest item, never grows.
pub mod limits {
    /// Keys kept per receiving chain for messages skipped over (out-of-order delivery).
    /// When more are skipped the oldest are dropped, and those messages then fail with
    /// [`crate::DecryptError::MessageKeyEvicted`]. Same bound as libsignal.
    pub const MAX_SKIPPED_KEYS_PER_CHAIN: usize = 2000;

    /// Receiving chains kept per session state (one per remote ratchet key); the oldest,
    /// with its skipped keys, is dropped when a sixth arrives.
    pub const MAX_RECEIVER_CHAINS: usize = 5;

    /// The largest forward jump within one chain: a message more than this many
    /// counters ahead fails with [`crate::DecryptError::TooFarAhead`] before any key is
    /// derived. Same bound as libsignal.
    pub const MAX_FORWARD_JUMP: u32 = 25_000;

    /// Previous session states kept per remote device after re-initiation, tried in
    /// turn when the current state cannot decrypt. Same bound as libsignal.
    pub const MAX_PREVIOUS_STATES: usize = 40;

    /// So at most `(1 + MAX_PREVIOUS_STATES) * MAX_RECEIVER_CHAINS *
    /// MAX_SKIPPED_KEYS_PER_CHAIN` skipped keys (36 bytes each in memory) per device.
    pub const MAX_SKIPPED_KEYS_PER_DEVICE: usize =
        (1 + MAX_PREVIOUS_STATES) * MAX_RECEIVER_CHAINS * MAX_SKIPPED_KEYS_PER_CHAIN;
}
