//! One Double Ratchet session state: sending chain, receiving chains, root key.

use std::collections::VecDeque;

use rand_core::{CryptoRng, RngCore};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::chain_key::ChainKey;
use super::limits::{
    MAX_FORWARD_JUMP, MAX_RECEIVER_CHAINS, MAX_SKIPPED_KEYS_PER_CHAIN,
    MAX_UNACKNOWLEDGED_SESSION_AGE,
};
use super::message_keys::MessageKeys;
use super::root_key::RootKey;
use super::version::ProtocolVersion;
use crate::Timestamp;
use crate::crypto;
use crate::error::{DecryptError, EncryptError};
use crate::keys::{IdentityKey, KemCiphertext, KeyPair, PublicKey};
use crate::spqr;
use crate::wire::{
    ADDRESSES_LEN, CiphertextMessage, Extension, PreKeyHeader, PreKeySignalMessage, SignalMessage,
};

#[derive(Clone, Debug)]
pub(crate) struct SenderChain {
    pub(crate) ratchet: KeyPair,
    pub(crate) chain_key: ChainKey,
}

/// A key kept for a message that was skipped over, so it can still arrive later.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct SkippedKey {
    pub(crate) counter: u32,
    pub(crate) seed: [u8; 32],
}

#[derive(Clone, Debug)]
pub(crate) struct ReceiverChain {
    pub(crate) ratchet_key: PublicKey,
    pub(crate) chain_key: ChainKey,
    /// Oldest first.
    pub(crate) skipped: VecDeque<SkippedKey>,
    pub(crate) evicted_up_to: Option<u32>,
}

impl std::fmt::Debug for SkippedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SkippedKey({}, ***)", self.counter)
    }
}

impl ReceiverChain {
    pub(crate) fn new(ratchet_key: PublicKey, chain_key: ChainKey) -> Self {
        Self {
            ratchet_key,
            chain_key,
            skipped: VecDeque::new(),
            evicted_up_to: None,
        }
    }

    /// The message-key seed for `counter`, advancing the chain or taking a kept seed
    /// (kept as seeds, since v4's salt arrives only with the message).
    fn message_seed(&mut self, counter: u32) -> Result<Zeroizing<[u8; 32]>, DecryptError> {
        let next = self.chain_key.index();
        if counter < next {
            let pos = self.skipped.iter().position(|k| k.counter == counter);
            if let Some(kept) = pos.and_then(|p| self.skipped.remove(p)) {
                return Ok(Zeroizing::new(kept.seed));
            }
            return Err(match self.evicted_up_to {
                Some(e) if counter <= e => DecryptError::MessageKeyEvicted { counter },
                _ => DecryptError::DuplicateMessage { counter },
            });
        }
        if counter - next > MAX_FORWARD_JUMP {
            return Err(DecryptError::TooFarAhead {
                counter,
                expected: next,
            });
        }
        // A chain at u32::MAX cannot produce further messages: anything claiming one
        // is too far ahead rather than a reason to wrap.
        let exhausted = || DecryptError::TooFarAhead {
            counter,
            expected: next,
        };
        while self.chain_key.index() < counter {
            let (seed, following) = self.chain_key.seed_and_next();
            self.skipped.push_back(SkippedKey {
                counter: self.chain_key.index(),
                seed,
            });
            if self.skipped.len() > MAX_SKIPPED_KEYS_PER_CHAIN {
                if let Some(old) = self.skipped.pop_front() {
                    self.evicted_up_to = Some(old.counter);
                }
            }
            self.chain_key = following.ok_or_else(exhausted)?;
        }
        let (seed, following) = self.chain_key.seed_and_next();
        self.chain_key = following.ok_or_else(exhausted)?;
        Ok(Zeroizing::new(seed))
    }
}

/// The work trying one message in one state costs, known before doing it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Price {
    /// The state already holds the message's receiving chain (no agreement needed).
    pub(crate) known_chain: bool,
    /// Chain steps to the message's key, counted against
    /// [`super::limits::MAX_CHAIN_STEPS_PER_MESSAGE`].
    pub(crate) chain_steps: u32,
}

/// What the initiator sends in every message until the responder first answers.
#[derive(Clone, Debug)]
pub(crate) struct PendingPreKey {
    pub(crate) pre_key_id: Option<u32>,
    pub(crate) signed_pre_key_id: u32,
    pub(crate) base_key: PublicKey,
    pub(crate) created_at: Timestamp,
    /// v4: the Kyber prekey and the one ciphertext encapsulated to it.
    pub(crate) kyber: Option<PendingKyber>,
}

/// The Kyber half of a v4 initiator's pending prekey: repeated unchanged.
#[derive(Clone, Debug)]
pub(crate) struct PendingKyber {
    pub(crate) id: u32,
    pub(crate) ciphertext: KemCiphertext,
}

#[cfg(test)]
#[path = "v4_tests.rs"]
mod v4_tests;

/// One Double Ratchet session with one remote device.
///
/// A [`super::SessionRecord`] keeps the current session and bounded previous ones; use
/// it rather than this type unless you manage re-initiation yourself.
#[derive(Clone, Debug)]
pub struct Session {
    pub(crate) version: ProtocolVersion,
    pub(crate) local_identity: IdentityKey,
    pub(crate) remote_identity: IdentityKey,
    pub(crate) root_key: RootKey,
    pub(crate) previous_counter: u32,
    pub(crate) sender: SenderChain,
    /// Most recent first.
    pub(crate) receivers: VecDeque<ReceiverChain>,
    pub(crate) pending_pre_key: Option<PendingPreKey>,
    pub(crate) local_registration_id: u32,
    pub(crate) remote_registration_id: u32,
    pub(crate) alice_base_key: PublicKey,
    /// v4 only: the SPQR state, advanced with each message sent and authenticated.
    pub(crate) spqr: Option<spqr::State>,
}

impl Session {
    /// Our identity key.
    pub fn local_identity(&self) -> &IdentityKey {
        &self.local_identity
    }

    /// The remote device's identity key.
    pub fn remote_identity(&self) -> &IdentityKey {
        &self.remote_identity
    }

    /// The remote device's registration id.
    pub fn remote_registration_id(&self) -> u32 {
        self.remote_registration_id
    }

    /// Our registration id, as sent in prekey messages.
    pub fn local_registration_id(&self) -> u32 {
        self.local_registration_id
    }

    /// The initiator's X3DH base key, which names this session.
    pub fn alice_base_key(&self) -> &PublicKey {
        &self.alice_base_key
    }

    /// Whether we started this session and have not yet heard back (our messages are
    /// still prekey messages).
    pub fn is_unacknowledged(&self) -> bool {
        self.pending_pre_key.is_some()
    }

    /// Whether this is a v4 session still unacknowledged more than
    /// [`MAX_UNACKNOWLEDGED_SESSION_AGE`] after it started at `now`: it may not send.
    pub(crate) fn is_stale_unacknowledged(&self, now: Timestamp) -> bool {
        self.version == ProtocolVersion::V4
            && self.pending_pre_key.as_ref().is_some_and(|p| {
                now.as_millis().saturating_sub(p.created_at.as_millis())
                    > MAX_UNACKNOWLEDGED_SESSION_AGE
            })
    }

    /// The protocol version's number (3 or 4).
    pub fn version(&self) -> u8 {
        self.version.number()
    }

    /// The protocol version this state speaks: every message it sends and accepts is
    /// of this version.
    pub fn protocol_version(&self) -> ProtocolVersion {
        self.version
    }

    /// The Kyber prekey id and ciphertext this (v4, unacknowledged) session repeats in
    /// its prekey messages.
    pub fn pending_kyber_pre_key(&self) -> Option<(u32, &KemCiphertext)> {
        let kyber = self.pending_pre_key.as_ref()?.kyber.as_ref()?;
        Some((kyber.id, &kyber.ciphertext))
    }

    /// Encrypts one message and advances the sending chain (and in v4 SPQR, which may
    /// sample a key pair or an encapsulation from `rng`). Prekey messages carry no
    /// addresses from here (see [`crate::session::cipher::encrypt`]).
    pub fn encrypt<R: RngCore + CryptoRng>(
        &mut self,
        plaintext: &[u8],
        rng: &mut R,
    ) -> Result<CiphertextMessage, EncryptError> {
        self.encrypt_with(plaintext, None, rng)
    }

    /// [`Self::encrypt`], binding `addresses` (sender, recipient) into a v4 prekey
    /// message's inner message. Changes nothing on failure.
    pub(crate) fn encrypt_with<R: RngCore + CryptoRng>(
        &mut self,
        plaintext: &[u8],
        addresses: Option<[u8; ADDRESSES_LEN]>,
        rng: &mut R,
    ) -> Result<CiphertextMessage, EncryptError> {
        self.encrypt_inner(plaintext, addresses, rng, |_| {})
    }

    /// [`Self::encrypt_with`], with `tamper` applied to the SPQR message before it is
    /// MACed (a no-op outside the unit tests, which forge authenticated bad input).
    pub(crate) fn encrypt_inner<R: RngCore + CryptoRng>(
        &mut self,
        plaintext: &[u8],
        addresses: Option<[u8; ADDRESSES_LEN]>,
        rng: &mut R,
        tamper: fn(&mut Vec<u8>),
    ) -> Result<CiphertextMessage, EncryptError> {
        // SPQR first: its key salts this message's keys.
        let (spqr_key, mut pq_ratchet, spqr_next) = match &self.spqr {
            Some(state) => {
                let sent = state
                    .send(rng)
                    .map_err(|_| EncryptError::PostQuantumRatchet)?;
                (sent.key, sent.message, Some(sent.state))
            }
            None => (None, Vec::new(), None),
        };
        tamper(&mut pq_ratchet);
        let chain_key = &self.sender.chain_key;
        let (keys, next) = chain_key.step(spqr_key.as_ref().map(|k| &k.0[..]));
        let next = next.ok_or(EncryptError::ChainExhausted)?;
        let ciphertext = crypto::aes256_cbc_encrypt(keys.cipher_key(), keys.iv(), plaintext);
        // Addresses go only into a v4 prekey message's inner message.
        let addresses = addresses
            .filter(|_| self.version == ProtocolVersion::V4 && self.pending_pre_key.is_some());
        let message = SignalMessage::new(
            self.version,
            keys.mac_key(),
            self.sender.ratchet.public,
            chain_key.index(),
            self.previous_counter,
            ciphertext,
            Extension {
                pq_ratchet,
                addresses,
            },
            (&self.local_identity, &self.remote_identity),
        );
        self.sender.chain_key = next;
        if spqr_next.is_some() {
            self.spqr = spqr_next;
        }
        Ok(match &self.pending_pre_key {
            Some(p) => CiphertextMessage::PreKey(PreKeySignalMessage::new(
                PreKeyHeader {
                    registration_id: self.local_registration_id,
                    pre_key_id: p.pre_key_id,
                    signed_pre_key_id: p.signed_pre_key_id,
                    base_key: p.base_key,
                    identity_key: self.local_identity,
                    kyber: p.kyber.as_ref().map(|k| (k.id, k.ciphertext.clone())),
                },
                message,
            )),
            None => CiphertextMessage::Signal(message),
        })
    }

    /// Decrypts one message. On any error `self` is unchanged. A message carrying
    /// addresses is refused here, where ours are unknown (see
    /// [`crate::session::cipher::decrypt`]).
    pub fn decrypt<R: RngCore + CryptoRng>(
        &mut self,
        message: &SignalMessage,
        rng: &mut R,
    ) -> Result<Zeroizing<Vec<u8>>, DecryptError> {
        let mut copy = self.clone();
        let plaintext = copy.decrypt_in_place(message, None, rng)?;
        *self = copy;
        Ok(plaintext)
    }

    /// What trying `message` in this state would cost, known before any agreement or
    /// chain step, or the error that refuses it here without work (another version, a
    /// jump past [`MAX_FORWARD_JUMP`]).
    pub(crate) fn price(&self, message: &SignalMessage) -> Result<Price, DecryptError> {
        if message.version() != self.version {
            return Err(DecryptError::InvalidMessage);
        }
        let counter = message.counter();
        let chain = self
            .receivers
            .iter()
            .find(|c| &c.ratchet_key == message.ratchet_key());
        let next = chain.map_or(0, |c| c.chain_key.index());
        let chain_steps = match counter.checked_sub(next) {
            // A kept key, or a duplicate: no step.
            None => 0,
            Some(jump) if jump > MAX_FORWARD_JUMP => {
                return Err(DecryptError::TooFarAhead {
                    counter,
                    expected: next,
                });
            }
            Some(jump) => jump + 1,
        };
        Ok(Price {
            known_chain: chain.is_some(),
            chain_steps,
        })
    }

    /// Decrypts, mutating `self` even on failure: callers pass a copy. `addresses` is
    /// our encoding of (sender = them, recipient = us), `None` when our names are not
    /// service ids: a message carrying addresses must match it.
    pub(crate) fn decrypt_in_place<R: RngCore + CryptoRng>(
        &mut self,
        message: &SignalMessage,
        addresses: Option<&[u8; ADDRESSES_LEN]>,
        rng: &mut R,
    ) -> Result<Zeroizing<Vec<u8>>, DecryptError> {
        // A state only reads messages of its own version, and a too-far jump is refused
        // before the agreement a new chain needs.
        self.price(message)?;
        let theirs = message.ratchet_key();
        let (chain, ratcheted) = match self.receivers.iter().position(|c| &c.ratchet_key == theirs)
        {
            Some(i) => (i, None),
            None => {
                // Only the receiving half of the DH ratchet step before the MAC check.
                let (root, receiving) = self
                    .root_key
                    .create_chain(theirs, &self.sender.ratchet.private)
                    .ok_or(DecryptError::WeakKey)?;
                self.receivers
                    .push_front(ReceiverChain::new(*theirs, receiving));
                self.receivers.truncate(MAX_RECEIVER_CHAINS);
                (0, Some(root))
            }
        };
        let seed = self
            .receivers
            .get_mut(chain)
            .ok_or(DecryptError::InvalidMessage)?
            .message_seed(message.counter())?;
        // Then SPQR: the key it gives salts the message keys; its next state is kept only
        // once the MAC checked out.
        let (spqr_key, spqr_next) = match &self.spqr {
            Some(state) => {
                let received = state
                    .recv(message.pq_ratchet())
                    .map_err(|_| DecryptError::PostQuantumRatchet)?;
                (received.key, Some(received.state))
            }
            None => (None, None),
        };
        let keys = MessageKeys::derive(&seed, spqr_key.as_ref().map(|k| &k.0[..]));
        if !message.verify_mac(keys.mac_key(), &self.remote_identity, &self.local_identity) {
            return Err(DecryptError::InvalidMessage);
        }
        // Addresses, when present, must name us and them as we know us: otherwise the
        // message is refused as a MAC failure would be.
        if let Some(theirs) = message.addresses() {
            if addresses.is_none_or(|ours| !crypto::ct_eq(ours, theirs)) {
                return Err(DecryptError::InvalidMessage);
            }
        }
        let plaintext =
            crypto::aes256_cbc_decrypt(keys.cipher_key(), keys.iv(), message.ciphertext())
                .map(Zeroizing::new)
                .ok_or(DecryptError::InvalidMessage)?;
        if let Some(root) = ratcheted {
            self.start_sending_chain(root, theirs, rng)?;
        }
        if spqr_next.is_some() {
            self.spqr = spqr_next;
        }
        // The responder has answered (or this is the responder): stop sending prekey messages.
        self.pending_pre_key = None;
        Ok(plaintext)
    }

    /// The sending half of a DH ratchet step, from the root key the receiving half gave:
    /// run only once the message authenticated, so a forged message causes no key
    /// generation and one agreement per state, not two.
    fn start_sending_chain<R: RngCore + CryptoRng>(
        &mut self,
        root: RootKey,
        theirs: &PublicKey,
        rng: &mut R,
    ) -> Result<(), DecryptError> {
        #[cfg(test)]
        super::work::key_generation();
        let ratchet = KeyPair::generate(rng);
        let (root, sending) = root
            .create_chain(theirs, &ratchet.private)
            .ok_or(DecryptError::WeakKey)?;
        self.root_key = root;
        self.previous_counter = self.sender.chain_key.index().max(1) - 1;
        self.sender = SenderChain {
            ratchet,
            chain_key: sending,
        };
        Ok(())
    }
}
