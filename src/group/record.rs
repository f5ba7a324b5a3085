//! The sender-key record: every chain kept for one (sender, distribution) pair, with
//! the bounded skipped keys of each, and its versioned protobuf form.

use std::collections::VecDeque;

use prost::Message;
use rand_core::{CryptoRng, RngCore};
use zeroize::Zeroizing;

use super::chain::{MessageKeySeed, SenderChainKey};
use super::error::{GroupDecryptError, GroupEncryptError, GroupProcessError};
use super::limits::{MAX_FORWARD_JUMP, MAX_MESSAGE_KEYS, MAX_SENDER_KEY_STATES};
use super::message::{SenderKeyDistributionMessage, SenderKeyMessage};
use super::{DistributionId, Layout};
use crate::crypto;
use crate::error::RecordError;
use crate::keys::{PrivateKey, PublicKey, xeddsa};
use crate::proto::group as pb;

/// The record format this version writes (`SenderKeyRecord.format_version`).
pub const RECORD_FORMAT_VERSION: u32 = 1;

/// The message version of every chain (the low nibble of `0x33`).
const MESSAGE_VERSION: u32 = 3;

/// One chain of one sender.
#[derive(Clone)]
struct SenderKeyState {
    chain_id: u32,
    chain_key: SenderChainKey,
    signing_public: PublicKey,
    signing_private: Option<PrivateKey>,
    /// Oldest first.
    skipped: VecDeque<MessageKeySeed>,
}

impl SenderKeyState {
    /// The message key for `iteration`, advancing this (copied) state as needed.
    fn message_key(&mut self, iteration: u32) -> Result<MessageKeySeed, GroupDecryptError> {
        // No sender may use u32::MAX: stepping past it is impossible, so its key would
        // stay derivable and a replay would decrypt again.
        if iteration == u32::MAX {
            return Err(GroupDecryptError::ChainExhausted { iteration });
        }
        let current = self.chain_key.iteration();
        if iteration < current {
            let pos = self
                .skipped
                .iter()
                .position(|s| s.iteration == iteration)
                .ok_or(GroupDecryptError::DuplicateMessage { iteration })?;
            return self
                .skipped
                .remove(pos)
                .ok_or(GroupDecryptError::DuplicateMessage { iteration });
        }
        if iteration - current > MAX_FORWARD_JUMP {
            return Err(GroupDecryptError::TooFarAhead {
                iteration,
                expected: current,
            });
        }
        loop {
            let (seed, next) = self.chain_key.step();
            // Only the chain at u32::MAX has no successor, and `iteration` is below it.
            let next = next.ok_or(GroupDecryptError::ChainExhausted { iteration })?;
            self.chain_key = next;
            if seed.iteration == iteration {
                return Ok(seed);
            }
            if self.skipped.len() >= MAX_MESSAGE_KEYS {
                self.skipped.pop_front();
            }
            self.skipped.push_back(seed);
        }
    }
}

/// All sender-key chains kept for one (sender, distribution) pair: the sender's own
/// record holds its sending chain (with the private signing key); a receiver's holds
/// the chains learned from distribution messages, most recent first, at most
/// [`MAX_SENDER_KEY_STATES`]. Serializes to a versioned protobuf (`proto/group.proto`);
/// it contains secret keys, so store it encrypted. `Debug` shows no key material.
#[derive(Clone)]
pub struct SenderKeyRecord {
    layout: Layout,
    distribution_id: Option<DistributionId>,
    states: VecDeque<SenderKeyState>,
}

impl SenderKeyRecord {
    /// An empty record for a distribution in the given layout. The older layout has
    /// no distribution id on the wire; `distribution_id` then only names the record.
    pub fn new(distribution_id: DistributionId, layout: Layout) -> Self {
        Self {
            layout,
            distribution_id: Some(distribution_id),
            states: VecDeque::new(),
        }
    }

    /// The layout of this record's messages.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// The distribution this record is for.
    pub fn distribution_id(&self) -> Option<DistributionId> {
        self.distribution_id
    }

    /// How many chains are kept.
    pub fn chain_count(&self) -> usize {
        self.states.len()
    }

    /// Whether this record can send (holds a chain with its private signing key).
    pub fn can_send(&self) -> bool {
        self.states
            .front()
            .is_some_and(|s| s.signing_private.is_some())
    }

    fn wire_distribution(&self) -> Option<DistributionId> {
        match self.layout {
            Layout::Current => self.distribution_id,
            Layout::Legacy => None,
        }
    }

    /// The distribution message for the own sending chain, creating the chain (random
    /// chain id, chain key and signing key) when there is none yet.
    pub fn distribution<R: RngCore + CryptoRng>(
        &mut self,
        rng: &mut R,
    ) -> SenderKeyDistributionMessage {
        match self.states.front() {
            Some(s) if s.signing_private.is_some() => self.distribution_for_front(),
            _ => self.rotate(rng),
        }
    }

    /// Starts a fresh sending chain (as after a member leaves) and returns its
    /// distribution message. Every earlier chain of this record, with its signing key,
    /// is dropped, so nothing more can be encrypted under the old key.
    pub fn rotate<R: RngCore + CryptoRng>(&mut self, rng: &mut R) -> SenderKeyDistributionMessage {
        let chain_id = rng.next_u32() >> 1;
        let mut key = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(key.as_mut());
        let signing_private = PrivateKey::generate(rng);
        let state = SenderKeyState {
            chain_id,
            chain_key: SenderChainKey::new(0, &key),
            signing_public: signing_private.public_key(),
            signing_private: Some(signing_private),
            skipped: VecDeque::new(),
        };
        drop(key);
        self.states.clear();
        self.states.push_front(state);
        self.distribution_for_front()
    }

    fn distribution_for_front(&self) -> SenderKeyDistributionMessage {
        // Only called with a front state present. The chain key is copied straight into
        // the message (which zeroizes it), never into a local that outlives the call.
        match self.states.front() {
            Some(s) => SenderKeyDistributionMessage::new(
                self.layout,
                self.wire_distribution(),
                s.chain_id,
                s.chain_key.iteration(),
                *s.chain_key.key(),
                s.signing_public,
            ),
            None => SenderKeyDistributionMessage::new(
                self.layout,
                self.wire_distribution(),
                0,
                0,
                [0u8; 32],
                PublicKey::from_x25519([0u8; 32]),
            ),
        }
    }

    /// Adds the chain a distribution message describes. Processing the same message
    /// again keeps the chain's progress (so replays stay refused); a new chain goes in
    /// front and the oldest is dropped beyond [`MAX_SENDER_KEY_STATES`].
    pub fn process(
        &mut self,
        message: &SenderKeyDistributionMessage,
    ) -> Result<(), GroupProcessError> {
        if message.layout() != self.layout {
            return Err(GroupProcessError::WrongLayout);
        }
        if self.layout == Layout::Current && message.distribution_id() != self.distribution_id {
            return Err(GroupProcessError::WrongDistribution);
        }
        // Refused here, not only at each decrypt, so such a chain never replaces a good
        // one under the same chain id.
        if !xeddsa::is_signing_key(message.signing_key().x25519_bytes()) {
            return Err(GroupProcessError::WeakSigningKey);
        }
        if message.iteration() == u32::MAX {
            return Err(GroupProcessError::ChainExhausted);
        }
        let existing = self.states.iter().position(|s| {
            s.chain_id == message.chain_id() && s.signing_public == *message.signing_key()
        });
        let state = match existing.and_then(|i| self.states.remove(i)) {
            Some(s) => s,
            None => SenderKeyState {
                chain_id: message.chain_id(),
                chain_key: SenderChainKey::new(message.iteration(), message.chain_key()),
                signing_public: *message.signing_key(),
                signing_private: None,
                skipped: VecDeque::new(),
            },
        };
        // A different key under the same chain id replaces the old chain.
        self.states.retain(|s| s.chain_id != message.chain_id());
        while self.states.len() >= MAX_SENDER_KEY_STATES {
            self.states.pop_back();
        }
        self.states.push_front(state);
        Ok(())
    }

    /// Drops every chain but the most recent one, so messages on earlier chains of this
    /// sender are refused from now on (libsignal keeps them; this is stricter).
    pub fn forget_previous_chains(&mut self) {
        self.states.truncate(1);
    }

    /// Encrypts and signs one group message with the own sending chain.
    pub fn encrypt<R: RngCore + CryptoRng>(
        &mut self,
        plaintext: &[u8],
        rng: &mut R,
    ) -> Result<SenderKeyMessage, GroupEncryptError> {
        let layout = self.layout;
        let distribution = self.wire_distribution();
        let state = self
            .states
            .front_mut()
            .ok_or(GroupEncryptError::NoSenderKey)?;
        let Some(signing) = state.signing_private.clone() else {
            return Err(GroupEncryptError::NoSenderKey);
        };
        let (seed, next) = state.chain_key.step();
        let next = next.ok_or(GroupEncryptError::ChainExhausted)?;
        let keys = seed.keys();
        let ciphertext = crypto::aes256_cbc_encrypt(&keys.cipher_key, &keys.iv, plaintext);
        let message = SenderKeyMessage::new(
            layout,
            distribution,
            state.chain_id,
            seed.iteration,
            ciphertext,
            &signing,
            rng,
        );
        state.chain_key = next;
        Ok(message)
    }

    /// Verifies and decrypts one group message. On any error the record is unchanged.
    pub fn decrypt(
        &mut self,
        message: &SenderKeyMessage,
    ) -> Result<Zeroizing<Vec<u8>>, GroupDecryptError> {
        if message.layout() != self.layout {
            return Err(GroupDecryptError::WrongLayout);
        }
        if self.layout == Layout::Current && message.distribution_id() != self.distribution_id {
            return Err(GroupDecryptError::WrongDistribution);
        }
        let index = self
            .states
            .iter()
            .position(|s| s.chain_id == message.chain_id())
            .ok_or(GroupDecryptError::NoSenderKey {
                chain_id: message.chain_id(),
            })?;
        let original = &self.states[index];
        if !message.verify(&original.signing_public) {
            return Err(GroupDecryptError::InvalidMessage);
        }
        let mut state = original.clone();
        let seed = state.message_key(message.iteration())?;
        let keys = seed.keys();
        let plaintext =
            crypto::aes256_cbc_decrypt(&keys.cipher_key, &keys.iv, message.ciphertext())
                .map(Zeroizing::new)
                .ok_or(GroupDecryptError::InvalidMessage)?;
        self.states[index] = state;
        Ok(plaintext)
    }

    /// The versioned protobuf form. Contains secret keys.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let record = pb::SenderKeyRecord {
            format_version: RECORD_FORMAT_VERSION,
            layout: match self.layout {
                Layout::Current => 0,
                Layout::Legacy => 1,
            },
            distribution_id: self
                .distribution_id
                .map(|d| d.as_bytes().to_vec())
                .unwrap_or_default(),
            states: self
                .states
                .iter()
                .map(|s| pb::SenderKeyState {
                    message_version: MESSAGE_VERSION,
                    chain_id: s.chain_id,
                    iteration: s.chain_key.iteration(),
                    chain_key: s.chain_key.key().to_vec(),
                    signing_public: s.signing_public.serialize().to_vec(),
                    signing_private: s.signing_private.as_ref().map(|k| k.to_bytes().to_vec()),
                    skipped: s
                        .skipped
                        .iter()
                        .map(|k| pb::SkippedKey {
                            iteration: k.iteration,
                            seed: k.seed.to_vec(),
                        })
                        .collect(),
                })
                .collect(),
        };
        let bytes = Zeroizing::new(record.encode_to_vec());
        zeroize_record(record);
        bytes
    }

    /// Loads a record written by [`to_bytes`](Self::to_bytes) of this or any earlier
    /// released version.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, RecordError> {
        Self::decode(bytes, true)
    }

    /// Loads bytes a store has just authenticated as ones confide wrote (sealed under
    /// the app's key, bound to their row): every field is validated, but the own
    /// signing key's public half is taken as stored instead of re-derived, a base-point
    /// multiplication that would only re-check confide's own writer on every group send.
    // Only the persistent stores seal what they load.
    #[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
    pub(crate) fn from_sealed_bytes(bytes: &[u8]) -> Result<Self, RecordError> {
        Self::decode(bytes, false)
    }

    fn decode(bytes: &[u8], rederive: bool) -> Result<Self, RecordError> {
        let record = pb::SenderKeyRecord::decode(bytes).map_err(|_| RecordError::Malformed)?;
        let result = Self::from_proto(&record, rederive);
        zeroize_record(record);
        result
    }

    fn from_proto(record: &pb::SenderKeyRecord, rederive: bool) -> Result<Self, RecordError> {
        if record.format_version != RECORD_FORMAT_VERSION {
            return Err(RecordError::UnsupportedVersion {
                found: record.format_version,
            });
        }
        let layout = match record.layout {
            0 => Layout::Current,
            1 => Layout::Legacy,
            _ => return Err(RecordError::Inconsistent { field: "layout" }),
        };
        let distribution_id = if record.distribution_id.is_empty() {
            None
        } else {
            Some(DistributionId::from_bytes(
                <[u8; 16]>::try_from(record.distribution_id.as_slice()).map_err(|_| {
                    RecordError::Inconsistent {
                        field: "distribution_id",
                    }
                })?,
            ))
        };
        if record.states.len() > MAX_SENDER_KEY_STATES {
            return Err(RecordError::Inconsistent { field: "states" });
        }
        let mut states = VecDeque::with_capacity(record.states.len());
        for s in &record.states {
            if s.message_version != MESSAGE_VERSION {
                return Err(RecordError::UnsupportedVersion {
                    found: s.message_version,
                });
            }
            if s.skipped.len() > MAX_MESSAGE_KEYS {
                return Err(RecordError::Inconsistent { field: "skipped" });
            }
            // A reference into the decoded record (wiped by `zeroize_record`), not a copy.
            let key = <&[u8; 32]>::try_from(s.chain_key.as_slice())
                .map_err(|_| RecordError::Inconsistent { field: "chain_key" })?;
            let signing_public =
                PublicKey::try_from(s.signing_public.as_slice()).map_err(RecordError::Key)?;
            let signing_private = match &s.signing_private {
                Some(b) => {
                    let k = crate::keys::private_from_slice(b).map_err(RecordError::Key)?;
                    if rederive && k.public_key() != signing_public {
                        return Err(RecordError::Inconsistent {
                            field: "signing_private",
                        });
                    }
                    Some(k)
                }
                None => None,
            };
            let mut skipped = VecDeque::with_capacity(s.skipped.len());
            for k in &s.skipped {
                skipped.push_back(MessageKeySeed {
                    iteration: k.iteration,
                    seed: *<&[u8; 32]>::try_from(k.seed.as_slice())
                        .map_err(|_| RecordError::Inconsistent { field: "seed" })?,
                });
            }
            states.push_back(SenderKeyState {
                chain_id: s.chain_id,
                chain_key: SenderChainKey::new(s.iteration, key),
                signing_public,
                signing_private,
                skipped,
            });
        }
        Ok(Self {
            layout,
            distribution_id,
            states,
        })
    }
}

fn zeroize_record(mut record: pb::SenderKeyRecord) {
    use zeroize::Zeroize;
    for s in &mut record.states {
        s.chain_key.zeroize();
        if let Some(p) = s.signing_private.as_mut() {
            p.zeroize();
        }
        for k in &mut s.skipped {
            k.seed.zeroize();
        }
    }
}

impl std::fmt::Debug for SenderKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SenderKeyRecord")
            .field("layout", &self.layout)
            .field("distribution_id", &self.distribution_id)
            .field("chains", &self.states.len())
            .field("can_send", &self.can_send())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    const ID: DistributionId = DistributionId::from_bytes([7; 16]);

    /// An own record whose chain has reached `iteration`, as if it had sent that many.
    fn sender_at(iteration: u32, rng: &mut ChaCha20Rng) -> SenderKeyRecord {
        let mut record = SenderKeyRecord::new(ID, Layout::Current);
        record.rotate(rng);
        let front = record.states.front_mut().unwrap();
        front.chain_key = SenderChainKey::new(iteration, front.chain_key.key());
        record
    }

    /// A message the sender's key signs at `iteration`, made outside `encrypt` (which
    /// never makes one at `u32::MAX`), as a forger holding the chain would.
    fn message_at(
        sender: &SenderKeyRecord,
        iteration: u32,
        plaintext: &[u8],
        rng: &mut ChaCha20Rng,
    ) -> SenderKeyMessage {
        let state = sender.states.front().unwrap();
        let mut chain = state.chain_key.clone();
        while chain.iteration() < iteration {
            chain = chain.step().1.unwrap();
        }
        let keys = chain.step().0.keys();
        SenderKeyMessage::new(
            Layout::Current,
            Some(ID),
            state.chain_id,
            iteration,
            crypto::aes256_cbc_encrypt(&keys.cipher_key, &keys.iv, plaintext),
            state.signing_private.as_ref().unwrap(),
            rng,
        )
    }

    #[test]
    fn the_last_iterations_never_decrypt_twice() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let mut sender = sender_at(u32::MAX - 1, &mut rng);
        let mut receiver = SenderKeyRecord::new(ID, Layout::Current);
        receiver.process(&sender.distribution(&mut rng)).unwrap();
        let last = sender.encrypt(b"last", &mut rng).unwrap();
        assert_eq!(last.iteration(), u32::MAX - 1);
        let past = message_at(&sender, u32::MAX, b"past", &mut rng);

        assert_eq!(receiver.decrypt(&last).unwrap().as_slice(), b"last");
        let before = receiver.to_bytes();
        // u32::MAX has no successor, so its key could never be marked used.
        let results = [receiver.decrypt(&past), receiver.decrypt(&past)];
        let refused = Err(GroupDecryptError::ChainExhausted {
            iteration: u32::MAX,
        });
        assert!(results.iter().all(|r| *r == refused), "{results:?}");
        assert_eq!(receiver.to_bytes(), before);
        assert_eq!(
            receiver.decrypt(&last).map(|_| ()),
            Err(GroupDecryptError::DuplicateMessage {
                iteration: u32::MAX - 1
            })
        );
    }

    #[test]
    fn a_message_at_the_end_is_refused_before_the_chain_moves() {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let sender = sender_at(u32::MAX - 3, &mut rng);
        let mut receiver = SenderKeyRecord::new(ID, Layout::Current);
        let mut sender = sender;
        receiver.process(&sender.distribution(&mut rng)).unwrap();
        let past = message_at(&sender, u32::MAX, b"past", &mut rng);
        let before = receiver.to_bytes();
        assert_eq!(
            receiver.decrypt(&past).map(|_| ()),
            Err(GroupDecryptError::ChainExhausted {
                iteration: u32::MAX
            })
        );
        assert_eq!(receiver.to_bytes(), before);
        // The skipped ones still decrypt, once each.
        for _ in 0..3 {
            let m = sender.encrypt(b"m", &mut rng).unwrap();
            assert_eq!(receiver.decrypt(&m).unwrap().as_slice(), b"m");
            assert!(matches!(
                receiver.decrypt(&m),
                Err(GroupDecryptError::DuplicateMessage { .. })
            ));
        }
    }

    #[test]
    fn an_exhausted_sending_chain_refuses_to_encrypt() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let mut sender = sender_at(u32::MAX - 1, &mut rng);
        assert_eq!(
            sender.encrypt(b"a", &mut rng).unwrap().iteration(),
            u32::MAX - 1
        );
        let before = sender.to_bytes();
        for _ in 0..2 {
            assert!(matches!(
                sender.encrypt(b"b", &mut rng),
                Err(GroupEncryptError::ChainExhausted)
            ));
        }
        assert_eq!(sender.to_bytes(), before);
    }

    #[test]
    fn a_distribution_at_the_last_iteration_is_refused() {
        let mut rng = ChaCha20Rng::seed_from_u64(4);
        let mut sender = sender_at(u32::MAX, &mut rng);
        let skdm = sender.distribution(&mut rng);
        assert_eq!(skdm.iteration(), u32::MAX);
        let mut receiver = SenderKeyRecord::new(ID, Layout::Current);
        let before = receiver.to_bytes();
        assert_eq!(
            receiver.process(&skdm),
            Err(GroupProcessError::ChainExhausted)
        );
        assert_eq!(receiver.to_bytes(), before);
    }
}
