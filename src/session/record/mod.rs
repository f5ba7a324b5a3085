//! All session states kept for one remote device, and their persisted form.

use std::collections::VecDeque;

use rand_core::{CryptoRng, RngCore};
use zeroize::Zeroizing;

use super::limits::{MAX_CHAIN_STEPS_PER_MESSAGE, MAX_PREVIOUS_STATES};
use super::ratchet::Session;
use super::version::{ProtocolVersion, Versions};
use super::x3dh::{self, ResponderKeys};
use crate::Timestamp;
use crate::error::{BundleError, DecryptError, EncryptError, RecordError, WireError};
use crate::keys::{
    IdentityKeyPair, KyberPreKeyRecord, PreKeyBundle, PreKeyRecord, PublicKey, SignedPreKeyRecord,
};
use crate::store::KyberPreKeyUse;
use crate::wire::{ADDRESSES_LEN, CiphertextMessage, PreKeySignalMessage, SignalMessage};

mod stored;

use stored::Origin;

/// Our keys that an incoming prekey message may need: look up the ids the message
/// names ([`PreKeySignalMessage::signed_pre_key_id`], [`PreKeySignalMessage::pre_key_id`])
/// and pass what you have.
///
/// Built with [`LocalKeys::new`] and the `with_` setters, so a new kind of prekey can be
/// added without breaking callers.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct LocalKeys<'a> {
    /// Our identity.
    pub identity: &'a IdentityKeyPair,
    /// Our registration id.
    pub registration_id: u32,
    /// The signed prekey the message names, if we still have it.
    pub signed_pre_key: Option<&'a SignedPreKeyRecord>,
    /// The one-time prekey the message names, if we still have it.
    pub pre_key: Option<&'a PreKeyRecord>,
    /// The Kyber prekey a v4 message names
    /// ([`PreKeySignalMessage::kyber_pre_key_id`]), if we still have it.
    pub kyber_pre_key: Option<&'a KyberPreKeyRecord>,
}

impl<'a> LocalKeys<'a> {
    /// Our identity and registration id, with no prekeys.
    pub fn new(identity: &'a IdentityKeyPair, registration_id: u32) -> Self {
        Self {
            identity,
            registration_id,
            signed_pre_key: None,
            pre_key: None,
            kyber_pre_key: None,
        }
    }

    /// The Kyber prekey a v4 message names, if we still have it.
    #[must_use]
    pub fn with_kyber_pre_key(mut self, key: Option<&'a KyberPreKeyRecord>) -> Self {
        self.kyber_pre_key = key;
        self
    }

    /// The signed prekey the message names, if we still have it.
    #[must_use]
    pub fn with_signed_pre_key(mut self, key: Option<&'a SignedPreKeyRecord>) -> Self {
        self.signed_pre_key = key;
        self
    }

    /// The one-time prekey the message names, if we still have it.
    #[must_use]
    pub fn with_pre_key(mut self, key: Option<&'a PreKeyRecord>) -> Self {
        self.pre_key = key;
        self
    }
}

/// The result of decrypting a prekey message. `Debug` shows the plaintext's length, not
/// its bytes, so a logged result never leaks a message.
#[derive(PartialEq, Eq)]
#[non_exhaustive]
pub struct PreKeyDecrypted {
    /// The plaintext.
    pub plaintext: Zeroizing<Vec<u8>>,
    /// The one-time prekey this message consumed: delete it now.
    pub used_pre_key: Option<u32>,
    /// Whether the message started a new session (rather than continuing one a
    /// retransmitted prekey message already started).
    pub new_session: bool,
    /// The Kyber prekey use of a new v4 session: mark it in the store
    /// ([`crate::store::KyberPreKeyStore::mark_kyber_pre_key_used`]), which deletes a
    /// one-time Kyber prekey and remembers a last-resort one's handshake.
    pub kyber_pre_key_use: Option<KyberPreKeyUse>,
}

impl std::fmt::Debug for PreKeyDecrypted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreKeyDecrypted")
            .field(
                "plaintext",
                &format_args!("<{} bytes>", self.plaintext.len()),
            )
            .field("used_pre_key", &self.used_pre_key)
            .field("new_session", &self.new_session)
            .field("kyber_pre_key_use", &self.kyber_pre_key_use)
            .finish()
    }
}

/// The current session with one remote device plus up to
/// [`super::limits::MAX_PREVIOUS_STATES`] previous ones.
///
/// Every method that can fail leaves the record exactly as it was when it fails: work
/// is done on a copy and committed only on success.
#[derive(Clone, Debug, Default)]
pub struct SessionRecord {
    current: Option<Session>,
    previous: VecDeque<Session>,
}

impl SessionRecord {
    /// A record with no session.
    pub fn new() -> Self {
        Self::default()
    }

    /// The current session, if any.
    pub fn current(&self) -> Option<&Session> {
        self.current.as_ref()
    }

    /// How many previous states are kept.
    pub fn previous_count(&self) -> usize {
        self.previous.len()
    }

    /// Whether there is a current session to encrypt with.
    pub fn has_current_session(&self) -> bool {
        self.current.is_some()
    }

    /// Starts a new session from `bundle` (checking its signatures), keeping the
    /// current one as a previous state: v4 when the bundle has a Kyber prekey and
    /// `versions` allows v4, else v3 if allowed; otherwise
    /// [`BundleError::MissingKyberPreKey`] (v4 only, no Kyber prekey). Trust in
    /// `bundle.identity_key` is the caller's decision: compare it with what you knew
    /// first.
    pub fn start_session<R: RngCore + CryptoRng>(
        &mut self,
        ours: (&IdentityKeyPair, u32),
        bundle: &PreKeyBundle,
        versions: Versions,
        rng: &mut R,
        now: Timestamp,
    ) -> Result<(), BundleError> {
        let version = choose_version(bundle, versions)?;
        let session = x3dh::initiate(ours, bundle, version, rng, now)?;
        self.install(session);
        Ok(())
    }

    /// Encrypts with the current session (v4's SPQR draws from `rng`).
    pub fn encrypt<R: RngCore + CryptoRng>(
        &mut self,
        plaintext: &[u8],
        rng: &mut R,
    ) -> Result<CiphertextMessage, EncryptError> {
        self.encrypt_with(plaintext, None, rng)
    }

    /// [`Self::encrypt`], binding `addresses` into a v4 prekey message.
    pub(crate) fn encrypt_with<R: RngCore + CryptoRng>(
        &mut self,
        plaintext: &[u8],
        addresses: Option<[u8; ADDRESSES_LEN]>,
        rng: &mut R,
    ) -> Result<CiphertextMessage, EncryptError> {
        self.current
            .as_mut()
            .ok_or(EncryptError::NoSession)?
            .encrypt_with(plaintext, addresses, rng)
    }

    /// Decrypts a message in an existing session, trying the current state and then the
    /// previous ones; a previous state that succeeds becomes current again. All the
    /// trials share [`super::limits::MAX_CHAIN_STEPS_PER_MESSAGE`]: states the message
    /// would take more than what is left to walk are not tried. A message carrying
    /// addresses is refused here, where ours are unknown.
    pub fn decrypt<R: RngCore + CryptoRng>(
        &mut self,
        message: &SignalMessage,
        rng: &mut R,
    ) -> Result<Zeroizing<Vec<u8>>, DecryptError> {
        self.decrypt_in(message, None, rng, |_| true)
    }

    /// [`Self::decrypt`], checking any addresses against `addresses` (ours for
    /// (sender = them, recipient = us); `None` when our names are not service ids).
    pub(crate) fn decrypt_bound<R: RngCore + CryptoRng>(
        &mut self,
        message: &SignalMessage,
        addresses: Option<&[u8; ADDRESSES_LEN]>,
        rng: &mut R,
    ) -> Result<Zeroizing<Vec<u8>>, DecryptError> {
        self.decrypt_in(message, addresses, rng, |_| true)
    }

    /// [`Self::decrypt`], trying only the states `eligible` accepts.
    fn decrypt_in<R: RngCore + CryptoRng>(
        &mut self,
        message: &SignalMessage,
        addresses: Option<&[u8; ADDRESSES_LEN]>,
        rng: &mut R,
        eligible: impl Fn(&Session) -> bool,
    ) -> Result<Zeroizing<Vec<u8>>, DecryptError> {
        if self.current.is_none() && self.previous.is_empty() {
            return Err(DecryptError::NoSession);
        }
        // A message of a version no kept state speaks is refused as such, as the parser
        // refuses a version this release does not know.
        let version = message.version();
        if !self.states().any(|s| s.protocol_version() == version) {
            return Err(DecryptError::Wire(WireError::UnsupportedVersion {
                found: version.version_byte(),
            }));
        }
        // A specific verdict (duplicate, evicted, too far ahead) from a state whose chain
        // matched is worth reporting; MAC and padding failures stay one opaque error.
        let mut specific = None;
        // Each state's price is known before any work. The states that hold the
        // message's chain go first (a genuine message's, as a rule), then the others,
        // current first; all of them share one budget of chain steps, so a forged message
        // costs a bounded multiple of one trial, not one trial per kept state.
        let mut trials = Vec::new();
        for (slot, state) in self.slots() {
            if !eligible(state) {
                continue;
            }
            match state.price(message) {
                Ok(price) => trials.push((slot, price)),
                Err(e) => note_specific(&mut specific, e),
            }
        }
        trials.sort_by_key(|(_, price)| !price.known_chain);
        let mut budget = MAX_CHAIN_STEPS_PER_MESSAGE;
        for (slot, price) in trials {
            let Some(left) = budget.checked_sub(price.chain_steps) else {
                // Not tried: the message fails as it would in a state that cannot read it.
                continue;
            };
            budget = left;
            let Some(state) = self.slot(slot) else {
                continue;
            };
            let mut copy = state.clone();
            match copy.decrypt_in_place(message, addresses, rng) {
                Ok(plaintext) => {
                    match slot {
                        Slot::Current => self.current = Some(copy),
                        Slot::Previous(i) => {
                            self.previous.remove(i);
                            self.install(copy);
                        }
                    }
                    return Ok(plaintext);
                }
                Err(e) => note_specific(&mut specific, e),
            }
        }
        Err(specific.unwrap_or(DecryptError::InvalidMessage))
    }

    /// Decrypts a prekey message: continues the session it belongs to if we have it
    /// (a retransmission, or a later message sent before our reply), otherwise runs
    /// X3DH as responder and makes the new session current. Either way the state that
    /// decrypted is current afterwards, and its remote identity is the one to trust.
    ///
    /// A message that continues a kept session is tried only against that session, and
    /// its header must name that session's remote identity: the inner MAC covers the
    /// session's identities, not the header's, so a relabelled header is refused with
    /// [`DecryptError::InvalidMessage`] before any work.
    ///
    /// A v4 message runs PQXDH with the Kyber prekey `keys` holds; the result names the
    /// use to mark ([`PreKeyDecrypted::kyber_pre_key_use`]). A message carrying
    /// addresses is refused here, where ours are unknown.
    pub fn decrypt_prekey<R: RngCore + CryptoRng>(
        &mut self,
        message: &PreKeySignalMessage,
        keys: &LocalKeys<'_>,
        rng: &mut R,
    ) -> Result<PreKeyDecrypted, DecryptError> {
        self.decrypt_prekey_bound(message, keys, None, rng)
    }

    /// [`Self::decrypt_prekey`], checking any addresses against `addresses`.
    pub(crate) fn decrypt_prekey_bound<R: RngCore + CryptoRng>(
        &mut self,
        message: &PreKeySignalMessage,
        keys: &LocalKeys<'_>,
        addresses: Option<&[u8; ADDRESSES_LEN]>,
        rng: &mut R,
    ) -> Result<PreKeyDecrypted, DecryptError> {
        let base_key = message.base_key();
        let version = message.version();
        if self.has_base_key(base_key) {
            let named = message.identity_key();
            // The same version and base key: that session, without a new handshake.
            let belongs = |s: &Session| {
                s.alice_base_key() == base_key
                    && s.remote_identity() == named
                    && s.protocol_version() == version
            };
            if !self.states().any(belongs) {
                return Err(DecryptError::InvalidMessage);
            }
            let plaintext = self.decrypt_in(message.message(), addresses, rng, belongs)?;
            return Ok(PreKeyDecrypted {
                plaintext,
                used_pre_key: None,
                new_session: false,
                kyber_pre_key_use: None,
            });
        }
        let spk_id = message.signed_pre_key_id();
        let signed = keys
            .signed_pre_key
            .filter(|k| k.id() == spk_id)
            .ok_or(DecryptError::UnknownSignedPreKey { id: spk_id })?;
        // Some v3 senders (the TypeScript port) always write pre_key_id, as 0 when no
        // one-time prekey was used: read 0 as "none" unless we really hold prekey 0.
        // Either way the X3DH result must match the MAC, so this accepts nothing false.
        let one_time = match message.pre_key_id() {
            Some(id) => match keys.pre_key.filter(|k| k.id() == id) {
                Some(k) => Some(k),
                None if id == 0 => None,
                None => return Err(DecryptError::UnknownPreKey { id }),
            },
            None => None,
        };
        let kyber = match message.kyber_pre_key_id() {
            Some(id) => Some(
                keys.kyber_pre_key
                    .filter(|k| k.id() == id)
                    .ok_or(DecryptError::UnknownKyberPreKey { id })?,
            ),
            None => None,
        };
        let responder = ResponderKeys {
            identity: keys.identity,
            registration_id: keys.registration_id,
            signed_pre_key: signed.key_pair(),
            one_time_pre_key: one_time.map(PreKeyRecord::key_pair),
            kyber_pre_key: kyber,
        };
        let mut session = x3dh::respond(&responder, &message.header(), version)?;
        let plaintext = session.decrypt_in_place(message.message(), addresses, rng)?;
        self.install(session);
        Ok(PreKeyDecrypted {
            plaintext,
            used_pre_key: one_time.map(PreKeyRecord::id),
            new_session: true,
            kyber_pre_key_use: kyber.map(|k| KyberPreKeyUse::new(k.id(), spk_id, *base_key)),
        })
    }

    /// Whether any kept state was started with this X3DH base key.
    pub fn has_base_key(&self, base_key: &PublicKey) -> bool {
        self.states().any(|s| s.alice_base_key() == base_key)
    }

    /// Every kept state with where it is kept, current first.
    fn slots(&self) -> impl Iterator<Item = (Slot, &Session)> {
        let current = self.current.iter().map(|s| (Slot::Current, s));
        let previous = self
            .previous
            .iter()
            .enumerate()
            .map(|(i, s)| (Slot::Previous(i), s));
        current.chain(previous)
    }

    fn slot(&self, slot: Slot) -> Option<&Session> {
        match slot {
            Slot::Current => self.current.as_ref(),
            Slot::Previous(i) => self.previous.get(i),
        }
    }

    /// Every kept state, current first. States may be of different protocol versions.
    pub fn states(&self) -> impl Iterator<Item = &Session> {
        self.current.iter().chain(self.previous.iter())
    }

    /// Makes `session` current, keeping the old current one as the newest previous state.
    fn install(&mut self, session: Session) {
        if let Some(old) = self.current.replace(session) {
            self.previous.push_front(old);
            self.previous.truncate(MAX_PREVIOUS_STATES);
        }
    }

    /// Drops the current session (keeping it as a previous state), so the next message
    /// must start a new one.
    pub fn archive_current(&mut self) {
        if let Some(old) = self.current.take() {
            self.previous.push_front(old);
            self.previous.truncate(MAX_PREVIOUS_STATES);
        }
    }

    /// The persisted form (`storage.proto` `SessionRecord`). It contains secret keys:
    /// store it encrypted.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        stored::encode(self)
    }

    /// Loads the persisted form, validating every field, including that each stored
    /// ratchet public key belongs to its private key.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, RecordError> {
        stored::decode(bytes, Origin::Untrusted)
    }

    /// Loads bytes that a store has just authenticated as ones confide wrote (AES-GCM
    /// under the app's key, bound to their row). Every field is still validated, but the
    /// ratchet public keys are taken as stored instead of re-derived: that base-point
    /// multiplication per state would only re-check confide's own writer, and it is a
    /// large share of a durable decrypt.
    // Only the persistent stores seal what they load.
    #[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
    pub(crate) fn from_sealed_bytes(bytes: &[u8]) -> Result<Self, RecordError> {
        stored::decode(bytes, Origin::Sealed)
    }
}

/// Where a state is kept in a [`SessionRecord`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    Current,
    Previous(usize),
}

/// The version a session from `bundle` speaks under `versions`.
fn choose_version(
    bundle: &PreKeyBundle,
    versions: Versions,
) -> Result<ProtocolVersion, BundleError> {
    if bundle.kyber_pre_key.is_some() && versions.allows(ProtocolVersion::V4) {
        return Ok(ProtocolVersion::V4);
    }
    if versions.allows(ProtocolVersion::V3) {
        return Ok(ProtocolVersion::V3);
    }
    Err(BundleError::MissingKyberPreKey)
}

fn note_specific(slot: &mut Option<DecryptError>, e: DecryptError) {
    let specific = matches!(
        e,
        DecryptError::DuplicateMessage { .. }
            | DecryptError::MessageKeyEvicted { .. }
            | DecryptError::TooFarAhead { .. }
            | DecryptError::PostQuantumRatchet
    );
    if specific && slot.is_none() {
        *slot = Some(e);
    }
}

#[cfg(test)]
mod tests {
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    use super::*;
    use crate::keys::KeyPair;
    use crate::session::limits::{MAX_FORWARD_JUMP, MAX_PREVIOUS_STATES};
    use crate::session::version::ProtocolVersion;
    use crate::session::work;

    fn now() -> Timestamp {
        Timestamp::from_millis(1_700_000_000_000)
    }

    fn prekey(message: CiphertextMessage) -> PreKeySignalMessage {
        match message {
            CiphertextMessage::PreKey(m) => m,
            CiphertextMessage::Signal(_) => panic!("expected a prekey message"),
        }
    }

    /// Bob's record holding `n` states, each started by its own prekey message from
    /// Alice, and Alice's record of the newest one.
    fn bob_with_states(n: usize, rng: &mut ChaCha20Rng) -> (SessionRecord, SessionRecord) {
        let bob_id = IdentityKeyPair::generate(rng);
        let signed = SignedPreKeyRecord::generate(rng, &bob_id, 7, now());
        let bundle = PreKeyBundle::new(2222, 1, *bob_id.identity_key(), signed.public());
        let keys = LocalKeys::new(&bob_id, 2222).with_signed_pre_key(Some(&signed));
        let alice_id = IdentityKeyPair::generate(rng);
        let mut bob = SessionRecord::new();
        let mut alice = SessionRecord::new();
        for _ in 0..n {
            alice = SessionRecord::new();
            alice
                .start_session((&alice_id, 1111), &bundle, Versions::V3AndV4, rng, now())
                .unwrap();
            let m = prekey(alice.encrypt(b"hello", rng).unwrap());
            bob.decrypt_prekey(&m, &keys, rng).unwrap();
        }
        (bob, alice)
    }

    #[test]
    fn forged_message_costs_a_bounded_multiple_of_one_trial() {
        let mut rng = ChaCha20Rng::seed_from_u64(16);
        let (mut bob, _) = bob_with_states(MAX_PREVIOUS_STATES + 1, &mut rng);
        assert_eq!(bob.previous_count(), MAX_PREVIOUS_STATES);
        // A ratchet key no state knows, on the largest jump a new chain accepts, and a
        // MAC under a key nobody derived: it looks legitimate to every state until the MAC.
        let ratchet = KeyPair::generate(&mut rng).public;
        let stranger = IdentityKeyPair::generate(&mut rng);
        let forged = SignalMessage::new(
            ProtocolVersion::V3,
            &[7; 32],
            ratchet,
            MAX_FORWARD_JUMP,
            0,
            vec![0; 16],
            crate::wire::Extension::default(),
            (stranger.identity_key(), stranger.identity_key()),
        );
        let before = bob.to_bytes();
        work::take();
        assert!(matches!(
            bob.decrypt(&forged, &mut rng),
            Err(DecryptError::InvalidMessage)
        ));
        let (steps, agreements, generations) = work::take();
        assert_eq!(before, bob.to_bytes());
        // One legitimate worst case is MAX_FORWARD_JUMP + 1 chain steps; the whole
        // forged message may cost two of them, not one per kept state.
        assert!(
            steps <= 2 * (u64::from(MAX_FORWARD_JUMP) + 1),
            "{steps} chain steps"
        );
        // Tried in the current state and the newest previous one, at one agreement each
        // and no key generation (that waits for a verified MAC).
        assert_eq!(
            steps,
            u64::from(crate::session::limits::MAX_CHAIN_STEPS_PER_MESSAGE)
        );
        assert_eq!((agreements, generations), (2, 0));
    }

    #[test]
    fn far_ahead_message_on_a_new_chain_costs_one_trial() {
        let mut rng = ChaCha20Rng::seed_from_u64(17);
        let (mut bob, mut alice) = bob_with_states(MAX_PREVIOUS_STATES + 1, &mut rng);
        // Bob answers the newest state; Alice ratchets and jumps far ahead on her new chain.
        let reply = match bob.encrypt(b"hi", &mut rng).unwrap() {
            CiphertextMessage::Signal(m) => m,
            CiphertextMessage::PreKey(_) => panic!("Bob answers with a SignalMessage"),
        };
        alice.decrypt(&reply, &mut rng).unwrap();
        for _ in 0..MAX_FORWARD_JUMP {
            alice.encrypt(b"lost", &mut rng).unwrap();
        }
        let far = match alice.encrypt(b"far", &mut rng).unwrap() {
            CiphertextMessage::Signal(m) => m,
            CiphertextMessage::PreKey(_) => panic!("Alice heard back"),
        };
        assert_eq!(far.counter(), MAX_FORWARD_JUMP);
        work::take();
        assert_eq!(&bob.decrypt(&far, &mut rng).unwrap()[..], b"far");
        let (steps, agreements, generations) = work::take();
        assert_eq!(steps, u64::from(MAX_FORWARD_JUMP) + 1);
        assert_eq!((agreements, generations), (2, 1));
    }
}
