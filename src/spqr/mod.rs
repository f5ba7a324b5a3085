//! SPQR, the sparse post-quantum ratchet of protocol v4 (the ML-KEM Braid of Signal's
//! public specification): each side's epochs exchange one ML-KEM-768 encapsulation in
//! 32-byte erasure-coded chunks, one chunk per message, and every epoch's secret seeds a
//! symmetric chain whose per-message key salts the Double Ratchet's message keys.
//!
//! Written here from the specification and the facts in `shared/spec/pq-v4-facts.md`.
//!
//! SCAFFOLD: this file fixes the interface the session code builds against; its bodies
//! are being written (see the issue). Nothing here may land as it is.

use rand_core::{CryptoRng, RngCore};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

// The codec pieces; the state machine that uses them is not written yet.
#[allow(dead_code)]
pub(crate) mod erasure;
#[allow(dead_code)]
pub(crate) mod gf;

/// Which way a side sends: the session's initiator sends A2B.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Direction {
    /// The initiator (Alice): send_ek side of epoch 1.
    A2B,
    /// The responder (Bob): send_ct side of epoch 1.
    B2A,
}

/// The 32-byte key one SPQR message yields: the HKDF salt of that message's Double
/// Ratchet keys.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct MessageKey(pub(crate) [u8; 32]);

impl std::fmt::Debug for MessageKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MessageKey(***)")
    }
}

/// Why SPQR refused a message or a stored state. The session maps every variant to a
/// decrypt error; nothing about the state changes on any of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum SpqrError {
    /// The scaffold has no implementation yet.
    #[error("not implemented")]
    Unimplemented,
}

/// One side's whole SPQR state: the epoch state machine, the authenticator and the
/// chains. Immutable in use: `send` and `recv` return the next state, which the caller
/// keeps only once the message it belongs to authenticated.
#[derive(Clone)]
pub(crate) struct State {
    _private: (),
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("spqr::State(***)")
    }
}

/// What [`State::send`] gives.
pub(crate) struct Sent {
    /// The state after sending.
    pub(crate) state: State,
    /// The key of this message (`None` only before the chain exists).
    pub(crate) key: Option<MessageKey>,
    /// The bytes for the SignalMessage's `pq_ratchet` field.
    pub(crate) message: Vec<u8>,
}

/// What [`State::recv`] gives.
pub(crate) struct Received {
    /// The state after receiving.
    pub(crate) state: State,
    /// The key of this message (`None` only before the chain exists).
    pub(crate) key: Option<MessageKey>,
}

impl State {
    /// The state a new v4 session starts with: `auth_key` is PQXDH's output [64..96],
    /// `direction` A2B for the initiator. Version V1, minimum version V1.
    pub(crate) fn new(auth_key: &[u8; 32], direction: Direction) -> Self {
        let _ = (auth_key, direction);
        Self { _private: () }
    }

    /// The next message to send, its key and the state after it.
    pub(crate) fn send<R: RngCore + CryptoRng>(&self, rng: &mut R) -> Result<Sent, SpqrError> {
        let _ = rng;
        Err(SpqrError::Unimplemented)
    }

    /// Reads one received `pq_ratchet` (empty when the field was absent): the key of its
    /// message and the state after it.
    pub(crate) fn recv(&self, message: &[u8]) -> Result<Received, SpqrError> {
        let _ = message;
        Err(SpqrError::Unimplemented)
    }

    /// The state in confide's own versioned encoding, for `storage.proto`'s session state.
    pub(crate) fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(Vec::new())
    }

    /// Parses [`to_bytes`](Self::to_bytes)'s output, refusing anything else.
    pub(crate) fn from_bytes(bytes: &[u8]) -> Result<Self, SpqrError> {
        let _ = bytes;
        Err(SpqrError::Unimplemented)
    }
}
