//! SPQR, the sparse post-quantum ratchet of protocol v4 (the ML-KEM Braid of Signal's
//! public specification): each side's epochs exchange one ML-KEM-768 encapsulation in
//! 32-byte erasure-coded chunks, one chunk per message, and every epoch's secret seeds a
//! symmetric chain whose per-message key salts the Double Ratchet's message keys.
//!
//! Written here from the specification and the facts in `shared/spec/pq-v4-facts.md`.
//!
//! Layout: [`authenticator`] (the MACs), [`chain`] (the per-message keys), [`epoch`]
//! (the state machine), [`serialize`] (the stored form); the codec pieces are
//! [`erasure`], [`kem`] and [`wire`].

// Only the session code calls `State`; until it does, the library itself uses none of
// this (the tests use all of it).
#![cfg_attr(not(test), allow(dead_code))]

use rand_core::{CryptoRng, RngCore};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

mod authenticator;
mod chain;
mod epoch;
pub(crate) mod erasure;
pub(crate) mod gf;
pub(crate) mod kem;
mod serialize;
#[cfg(test)]
mod tests;
pub(crate) mod wire;

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
/// decrypt error (and [`StateDecode`](Self::StateDecode) to a bad stored state); nothing
/// about the state changes on any of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum SpqrError {
    /// An empty (version 0) SPQR message while this side still negotiates: every v4
    /// message must carry SPQR.
    #[error("SPQR message below the minimum version")]
    MinimumVersion,
    /// A version 0 message after version 1 was agreed.
    #[error("SPQR version changed after negotiation")]
    VersionMismatch,
    /// The message bytes do not parse.
    #[error("malformed SPQR message")]
    MessageDecode,
    /// A header or ciphertext MAC did not verify.
    #[error("SPQR MAC verification failed")]
    MacVerifyFailed,
    /// The message's epoch is newer than this side can be in, or older than the kept
    /// chains.
    #[error("SPQR epoch out of range")]
    EpochOutOfRange,
    /// The key index is further ahead than the chain ratchets for one message.
    #[error("SPQR key index jumps too far")]
    KeyJump,
    /// The key index is older than the kept skipped keys.
    #[error("SPQR key already trimmed")]
    KeyTrimmed,
    /// The key of this index was already used (a duplicate or replay).
    #[error("SPQR key already requested")]
    KeyAlreadyRequested,
    /// The peer's encapsulation key does not match its authenticated header.
    #[error("SPQR peer sent an encapsulation key that does not match its header")]
    ErroneousDataReceived,
    /// A send would use an older epoch's chain than the last one did.
    #[error("SPQR send epoch decreased")]
    SendEpochDecreased,
    /// A chain's counter is at its maximum.
    #[error("SPQR chain exhausted")]
    ChainExhausted,
    /// The state's parts contradict each other (cannot happen with states this code
    /// made).
    #[error("SPQR state inconsistent")]
    StateInconsistent,
    /// A stored state does not parse or fails a check.
    #[error("stored SPQR state refused: {0}")]
    StateDecode(&'static str),
}

/// One side's whole SPQR state: the epoch state machine, the authenticator and the
/// chains. Immutable in use: `send` and `recv` return the next state, which the caller
/// keeps only once the message it belongs to authenticated.
#[derive(Clone)]
pub(crate) struct State {
    scka: epoch::Scka,
    chain: chain::Chain,
    /// Whether a message was received: libsignal then forgets its version negotiation,
    /// and a version 0 message becomes a mismatch rather than below the minimum.
    negotiated: bool,
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
    /// `direction` A2B for the initiator. Version V1, minimum version V1, so the chain
    /// exists from the start and every message has a key.
    pub(crate) fn new(auth_key: &[u8; 32], direction: Direction) -> Self {
        let scka = match direction {
            Direction::A2B => epoch::Scka::initiator(auth_key),
            Direction::B2A => epoch::Scka::responder(auth_key),
        };
        Self {
            scka,
            chain: chain::Chain::new(auth_key, direction),
            negotiated: false,
        }
    }

    /// The next message to send, its key and the state after it. The key of a message
    /// of SCKA epoch E comes from chain epoch E − 1, after adding any epoch secret this
    /// send produced.
    pub(crate) fn send<R: RngCore + CryptoRng>(&self, rng: &mut R) -> Result<Sent, SpqrError> {
        let mut chain = self.chain.clone();
        let sent = self.scka.clone().send(rng)?;
        if let Some(secret) = &sent.secret {
            chain.add_epoch(secret.epoch, &secret.secret)?;
        }
        let key_epoch = sent
            .epoch
            .checked_sub(1)
            .ok_or(SpqrError::StateInconsistent)?;
        let (index, key) = chain.send_key(key_epoch)?;
        let message = wire::Message {
            epoch: sent.epoch,
            index,
            payload: sent.payload,
        }
        .encode();
        Ok(Sent {
            state: Self {
                scka: sent.state,
                chain,
                negotiated: self.negotiated,
            },
            key: Some(MessageKey(key)),
            message,
        })
    }

    /// Reads one received `pq_ratchet` (empty when the field was absent): the key of its
    /// message and the state after it.
    pub(crate) fn recv(&self, message: &[u8]) -> Result<Received, SpqrError> {
        let msg = match wire::decode(message).map_err(|_| SpqrError::MessageDecode)? {
            wire::Decoded::V0 if self.negotiated => return Err(SpqrError::VersionMismatch),
            wire::Decoded::V0 => return Err(SpqrError::MinimumVersion),
            // A newer version than ours: no key, nothing changes (the caller's MAC
            // check then fails).
            wire::Decoded::Unknown => {
                return Ok(Received {
                    state: self.clone(),
                    key: None,
                });
            }
            wire::Decoded::V1(msg) => msg,
        };
        let (scka, secret) = self.scka.clone().recv(&msg)?;
        let mut chain = self.chain.clone();
        if let Some(secret) = &secret {
            chain.add_epoch(secret.epoch, &secret.secret)?;
        }
        let key_epoch = msg.epoch.checked_sub(1).ok_or(SpqrError::MessageDecode)?;
        // Index 0 in epoch 1 is "no key", sent only by a side without a chain.
        let key = if key_epoch == 0 && msg.index == 0 {
            None
        } else {
            Some(MessageKey(chain.recv_key(key_epoch, msg.index)?))
        };
        Ok(Received {
            state: Self {
                scka,
                chain,
                negotiated: true,
            },
            key,
        })
    }

    /// The state in confide's own versioned encoding, for `storage.proto`'s session state.
    pub(crate) fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        serialize::encode(self)
    }

    /// Parses [`to_bytes`](Self::to_bytes)'s output, refusing anything else.
    pub(crate) fn from_bytes(bytes: &[u8]) -> Result<Self, SpqrError> {
        serialize::decode(bytes)
    }
}
