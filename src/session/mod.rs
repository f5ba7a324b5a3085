//! Pairwise sessions: X3DH (v3) or PQXDH (v4) and the Double Ratchet, in v4 with SPQR's
//! post-quantum salt on every message key.
//!
//! The version is a value ([`ProtocolVersion`]) carried by each session state, not a
//! constant: the handshake derivation takes its label and an optional KEM secret, the
//! message-key derivation an optional salt, and a [`SessionRecord`] may hold states of
//! different versions. Which versions a device starts and accepts is its [`Versions`].

mod addresses;
mod chain_key;
pub mod cipher;
#[cfg(test)]
mod known_answers;
mod message_keys;
// The bare session is public only as `hazmat::Session`.
pub(crate) mod ratchet;
mod record;
mod root_key;
mod version;
pub(crate) mod x3dh;

/// Counts the costly steps of decryption per thread, so unit tests can check that the
/// work one message causes is bounded (performance itself is measured by the benches).
#[cfg(test)]
pub(crate) mod work {
    use std::cell::Cell;

    thread_local! {
        static CHAIN_STEPS: Cell<u64> = const { Cell::new(0) };
        static AGREEMENTS: Cell<u64> = const { Cell::new(0) };
        static KEY_GENERATIONS: Cell<u64> = const { Cell::new(0) };
    }

    pub(crate) fn chain_step() {
        CHAIN_STEPS.with(|c| c.set(c.get() + 1));
    }

    pub(crate) fn agreement() {
        AGREEMENTS.with(|c| c.set(c.get() + 1));
    }

    pub(crate) fn key_generation() {
        KEY_GENERATIONS.with(|c| c.set(c.get() + 1));
    }

    /// `(chain steps, agreements, key generations)` since the last call, resetting them.
    pub(crate) fn take() -> (u64, u64, u64) {
        (
            CHAIN_STEPS.with(|c| c.replace(0)),
            AGREEMENTS.with(|c| c.replace(0)),
            KEY_GENERATIONS.with(|c| c.replace(0)),
        )
    }
}

pub use record::{LocalKeys, PreKeyDecrypted, SessionRecord};
pub use version::{ProtocolVersion, Versions};

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

    /// Chain steps one incoming message may cost across every session state it is tried
    /// against: two trials at the largest forward jump. Without it a forged message (a
    /// new ratchet key, the largest jump, a bad MAC) costs each of the up to
    /// `1 + MAX_PREVIOUS_STATES` states a legitimate worst case before its MAC fails.
    ///
    /// States that hold the message's receiving chain are tried first, then the others,
    /// current first and newest previous next; a state whose walk would take more than
    /// what is left is not tried, and a message no state tried decrypts fails with
    /// [`crate::DecryptError::InvalidMessage`]. So any jump works in the states holding
    /// the chain, and on a new chain the current state and the newest previous one get
    /// the largest jump, while all 41 states are reached by a message up to counter 1,218
    /// on its new chain. Each state tried on a new chain costs one agreement; the key
    /// generation and second agreement of a DH ratchet step wait for a verified MAC.
    pub const MAX_CHAIN_STEPS_PER_MESSAGE: u32 = 2 * (MAX_FORWARD_JUMP + 1);

    /// So at most `(1 + MAX_PREVIOUS_STATES) * MAX_RECEIVER_CHAINS *
    /// MAX_SKIPPED_KEYS_PER_CHAIN` skipped keys (36 bytes each in memory) per device.
    pub const MAX_SKIPPED_KEYS_PER_DEVICE: usize =
        (1 + MAX_PREVIOUS_STATES) * MAX_RECEIVER_CHAINS * MAX_SKIPPED_KEYS_PER_CHAIN;

    /// How long (in milliseconds, 30 days, as libsignal) a v4 session we started may stay
    /// unacknowledged and still send: past it encrypting fails with
    /// [`crate::EncryptError::StaleUnacknowledgedSession`], so the app fetches a new bundle.
    pub const MAX_UNACKNOWLEDGED_SESSION_AGE: u64 = 30 * 24 * 60 * 60 * 1000;
}
