//! X3DH: the initial shared secret, from the initiator's ("Alice") and the responder's
//! ("Bob") side. Three DH results, or four when a one-time prekey is used, behind 32
//! bytes of 0xFF (then a KEM shared secret, in a version that has one), expanded by
//! HKDF with the version's label ("WhisperText" for v3) into a root and a chain key.

use rand_core::{CryptoRng, RngCore};
use zeroize::{Zeroize, Zeroizing};

use super::chain_key::ChainKey;
use super::ratchet::{PendingPreKey, ReceiverChain, SenderChain, Session};
use super::root_key::{RootKey, split_64};
use super::version::ProtocolVersion;
use crate::Timestamp;
use crate::crypto;
use crate::error::{BundleError, DecryptError};
use crate::keys::{IdentityKeyPair, KeyPair, PreKeyBundle, PrivateKey, PublicKey};
use crate::wire::PreKeyHeader;

const DISCONTINUITY: [u8; 32] = [0xFF; 32];

/// What the handshake's key derivation takes besides the DH pairs.
#[derive(Clone, Copy)]
struct Handshake<'a> {
    /// The HKDF info ([`ProtocolVersion::handshake_label`]).
    label: &'static [u8],
    /// A KEM shared secret, appended after the DH results (`None` in v3).
    kem_secret: Option<&'a [u8]>,
}

impl Handshake<'_> {
    fn of(version: ProtocolVersion) -> Self {
        match version {
            ProtocolVersion::V3 => Self {
                label: version.handshake_label(),
                kem_secret: None,
            },
        }
    }
}

/// Concatenates the DH results (behind the 0xFF prefix) and the KEM secret, if any, and
/// derives root and chain keys. `None` if any agreement hit a low-order key.
fn derive(
    pairs: &[(&PrivateKey, &PublicKey)],
    handshake: Handshake<'_>,
) -> Option<(RootKey, ChainKey)> {
    let kem_len = handshake.kem_secret.map_or(0, <[u8]>::len);
    let mut secrets = Zeroizing::new(Vec::with_capacity(32 * (pairs.len() + 1) + kem_len));
    secrets.extend_from_slice(&DISCONTINUITY);
    for (ours, theirs) in pairs {
        secrets.extend_from_slice(ours.agree(theirs)?.as_ref());
    }
    if let Some(kem) = handshake.kem_secret {
        secrets.extend_from_slice(kem);
    }
    let mut okm = [0u8; 64];
    crypto::hkdf_sha256(&[], &secrets, handshake.label, &mut okm);
    let (root, chain) = split_64(&okm);
    okm.zeroize();
    Some((RootKey::new(root), ChainKey::new(chain, 0)))
}

/// Our side of a session we start from `bundle`. Checks the signed prekey's signature;
/// trust in the bundle's identity is the caller's decision.
pub(crate) fn initiate<R: RngCore + CryptoRng>(
    ours: (&IdentityKeyPair, u32),
    bundle: &PreKeyBundle,
    rng: &mut R,
    now: Timestamp,
) -> Result<Session, BundleError> {
    if !bundle.has_valid_signature() {
        return Err(BundleError::InvalidSignature);
    }
    let (identity, registration_id) = ours;
    let base = KeyPair::generate(rng);
    let their_identity = bundle.identity_key.public_key();
    let their_signed = &bundle.signed_pre_key.key;
    let mut pairs = vec![
        (identity.private_key(), their_signed),
        (&base.private, their_identity),
        (&base.private, their_signed),
    ];
    if let Some(pk) = &bundle.pre_key {
        pairs.push((&base.private, &pk.key));
    }
    // A v3 bundle (no KEM prekey) starts a v3 session.
    let version = ProtocolVersion::V3;
    let (root, chain) = derive(&pairs, Handshake::of(version)).ok_or(BundleError::WeakKey)?;

    // Alice ratchets at once: her first sending chain already mixes in a fresh key.
    let ratchet = KeyPair::generate(rng);
    let (root, sending) = root
        .create_chain(their_signed, &ratchet.private)
        .ok_or(BundleError::WeakKey)?;
    Ok(Session {
        version,
        local_identity: *identity.identity_key(),
        remote_identity: bundle.identity_key,
        root_key: root,
        previous_counter: 0,
        sender: SenderChain {
            ratchet,
            chain_key: sending,
        },
        receivers: std::iter::once(ReceiverChain::new(*their_signed, chain)).collect(),
        pending_pre_key: Some(PendingPreKey {
            pre_key_id: bundle.pre_key.map(|p| p.id),
            signed_pre_key_id: bundle.signed_pre_key.id,
            base_key: base.public,
            created_at: now,
        }),
        local_registration_id: registration_id,
        remote_registration_id: bundle.registration_id,
        alice_base_key: base.public,
    })
}

/// The keys of ours that a prekey message names.
pub(crate) struct ResponderKeys<'a> {
    pub(crate) identity: &'a IdentityKeyPair,
    pub(crate) registration_id: u32,
    pub(crate) signed_pre_key: &'a KeyPair,
    pub(crate) one_time_pre_key: Option<&'a KeyPair>,
}

/// Our side of a session someone else started with a prekey message of `version`.
pub(crate) fn respond(
    ours: &ResponderKeys<'_>,
    header: &PreKeyHeader,
    version: ProtocolVersion,
) -> Result<Session, DecryptError> {
    let their_identity = header.identity_key.public_key();
    let mut pairs = vec![
        (&ours.signed_pre_key.private, their_identity),
        (ours.identity.private_key(), &header.base_key),
        (&ours.signed_pre_key.private, &header.base_key),
    ];
    if let Some(otk) = ours.one_time_pre_key {
        pairs.push((&otk.private, &header.base_key));
    }
    let (root, chain) = derive(&pairs, Handshake::of(version)).ok_or(DecryptError::WeakKey)?;
    Ok(Session {
        version,
        local_identity: *ours.identity.identity_key(),
        remote_identity: header.identity_key,
        root_key: root,
        previous_counter: 0,
        sender: SenderChain {
            ratchet: ours.signed_pre_key.clone(),
            chain_key: chain,
        },
        receivers: Default::default(),
        pending_pre_key: None,
        local_registration_id: ours.registration_id,
        remote_registration_id: header.registration_id,
        alice_base_key: header.base_key,
    })
}
