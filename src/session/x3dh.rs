//! X3DH (v3) and PQXDH (v4): the initial shared secret, from the initiator's ("Alice")
//! and the responder's ("Bob") side. Three DH results, or four when a one-time prekey is
//! used, behind 32 bytes of 0xFF, then in v4 the Kyber1024 shared secret, expanded by
//! HKDF (salt absent) with the version's label into a root and a chain key, and in v4
//! also SPQR's 32-byte initial secret (96 bytes in all).
//!
//! Every agreement that gives all zeros is refused, and in v4 the responder refuses a
//! base key that is not a canonical, torsion-free point, as libsignal does.

use curve25519_dalek::montgomery::MontgomeryPoint;
use rand_core::{CryptoRng, RngCore};
use zeroize::{Zeroize, Zeroizing};

use super::chain_key::ChainKey;
use super::ratchet::{PendingKyber, PendingPreKey, ReceiverChain, SenderChain, Session};
use super::root_key::{RootKey, split_64};
use super::version::ProtocolVersion;
use crate::Timestamp;
use crate::crypto;
use crate::error::{BundleError, DecryptError};
use crate::keys::{
    IdentityKey, IdentityKeyPair, KemCiphertext, KeyPair, KyberPreKeyRecord, PreKeyBundle,
    PrivateKey, PublicKey,
};
use crate::spqr;
use crate::wire::PreKeyHeader;

const DISCONTINUITY: [u8; 32] = [0xFF; 32];

/// What the handshake derives: root key, first chain key, and in v4 SPQR's initial
/// secret (PQXDH's output bytes 64..96).
pub(crate) struct Secrets {
    pub(crate) root: RootKey,
    pub(crate) chain: ChainKey,
    pub(crate) spqr_auth_key: Option<Zeroizing<[u8; 32]>>,
}

/// Concatenates the DH results (behind the 0xFF prefix) and the KEM secret, if any, and
/// derives the keys with `version`'s label: 64 bytes without a KEM secret (v3), 96 with
/// one (v4). `None` if any agreement gave all zeros.
fn derive(
    pairs: &[(&PrivateKey, &PublicKey)],
    version: ProtocolVersion,
    kem_secret: Option<&[u8; 32]>,
) -> Option<Secrets> {
    let mut secrets = Zeroizing::new(Vec::with_capacity(32 * (pairs.len() + 2)));
    secrets.extend_from_slice(&DISCONTINUITY);
    for (ours, theirs) in pairs {
        secrets.extend_from_slice(ours.agree(theirs)?.as_ref());
    }
    let label = version.handshake_label();
    let Some(kem) = kem_secret else {
        let mut okm = [0u8; 64];
        crypto::hkdf_sha256(&[], &secrets, label, &mut okm);
        let (root, chain) = split_64(&okm);
        okm.zeroize();
        return Some(Secrets {
            root: RootKey::new(root),
            chain: ChainKey::new(chain, 0),
            spqr_auth_key: None,
        });
    };
    secrets.extend_from_slice(kem);
    let mut okm = Zeroizing::new([0u8; 96]);
    crypto::hkdf_sha256(&[], &secrets, label, &mut okm);
    let mut root = [0u8; 32];
    let mut chain = [0u8; 32];
    let mut auth = Zeroizing::new([0u8; 32]);
    root.copy_from_slice(&okm[..32]);
    chain.copy_from_slice(&okm[32..64]);
    auth.copy_from_slice(&okm[64..]);
    let out = Secrets {
        root: RootKey::new(root),
        chain: ChainKey::new(chain, 0),
        spqr_auth_key: Some(auth),
    };
    root.zeroize();
    chain.zeroize();
    Some(out)
}

/// Our side of a session we start from `bundle` in `version` (the caller chose it by
/// its policy and the bundle). Checks the signed prekey's signature, and in v4 the Kyber
/// prekey's; trust in the bundle's identity is the caller's decision.
pub(crate) fn initiate<R: RngCore + CryptoRng>(
    ours: (&IdentityKeyPair, u32),
    bundle: &PreKeyBundle,
    version: ProtocolVersion,
    rng: &mut R,
    now: Timestamp,
) -> Result<Session, BundleError> {
    if !bundle.has_valid_signature() {
        return Err(BundleError::InvalidSignature);
    }
    let (identity, registration_id) = ours;
    let kyber = match version {
        ProtocolVersion::V3 => None,
        ProtocolVersion::V4 => Some(
            bundle
                .kyber_pre_key
                .as_ref()
                .ok_or(BundleError::MissingKyberPreKey)?,
        ),
    };
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
    // Alice encapsulates once, now: the ciphertext is repeated until Bob answers.
    let encapsulated = kyber.map(|k| (k.id, k.key.encapsulate(rng)));
    let kem_secret = encapsulated.as_ref().map(|(_, (_, ss))| &**ss);
    let secrets = derive(&pairs, version, kem_secret).ok_or(BundleError::WeakKey)?;

    // Alice ratchets at once: her first sending chain already mixes in a fresh key.
    let ratchet = KeyPair::generate(rng);
    let (root, sending) = secrets
        .root
        .create_chain(their_signed, &ratchet.private)
        .ok_or(BundleError::WeakKey)?;
    let spqr = secrets
        .spqr_auth_key
        .as_ref()
        .map(|auth| spqr::State::new(auth, spqr::Direction::A2B));
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
        receivers: std::iter::once(ReceiverChain::new(*their_signed, secrets.chain)).collect(),
        pending_pre_key: Some(PendingPreKey {
            pre_key_id: bundle.pre_key.map(|p| p.id),
            signed_pre_key_id: bundle.signed_pre_key.id,
            base_key: base.public,
            created_at: now,
            kyber: encapsulated.map(|(id, (ciphertext, _))| PendingKyber { id, ciphertext }),
        }),
        local_registration_id: registration_id,
        remote_registration_id: bundle.registration_id,
        alice_base_key: base.public,
        spqr,
    })
}

/// The keys of ours that a prekey message names.
pub(crate) struct ResponderKeys<'a> {
    pub(crate) identity: &'a IdentityKeyPair,
    pub(crate) registration_id: u32,
    pub(crate) signed_pre_key: &'a KeyPair,
    pub(crate) one_time_pre_key: Option<&'a KeyPair>,
    /// v4: the Kyber prekey the message names.
    pub(crate) kyber_pre_key: Option<&'a KyberPreKeyRecord>,
}

/// Whether `key` is a canonical encoding (already checked by parsing) of a point in the
/// prime-order subgroup: a base key with a torsion component is refused in v4.
fn is_torsion_free(key: &PublicKey) -> bool {
    MontgomeryPoint(*key.x25519_bytes())
        .to_edwards(0)
        .is_some_and(|p| p.is_torsion_free())
}

/// The responder's derivation from explicit keys (the hazmat cross-check uses it too).
pub(crate) fn responder_secrets(
    ours: &ResponderKeys<'_>,
    their_identity: &IdentityKey,
    their_base: &PublicKey,
    version: ProtocolVersion,
    kyber_ciphertext: Option<&KemCiphertext>,
) -> Result<Secrets, DecryptError> {
    let their_identity = their_identity.public_key();
    let mut pairs = vec![
        (&ours.signed_pre_key.private, their_identity),
        (ours.identity.private_key(), their_base),
        (&ours.signed_pre_key.private, their_base),
    ];
    if let Some(otk) = ours.one_time_pre_key {
        pairs.push((&otk.private, their_base));
    }
    let kem_secret = match version {
        ProtocolVersion::V3 => None,
        ProtocolVersion::V4 => {
            if !is_torsion_free(their_base) {
                return Err(DecryptError::WeakKey);
            }
            let ct = kyber_ciphertext.ok_or(DecryptError::InvalidMessage)?;
            let record = ours.kyber_pre_key.ok_or(DecryptError::InvalidMessage)?;
            Some(record.key_pair().secret.decapsulate(ct))
        }
    };
    derive(&pairs, version, kem_secret.as_deref()).ok_or(DecryptError::WeakKey)
}

/// Our side of a session someone else started with a prekey message of `version`.
pub(crate) fn respond(
    ours: &ResponderKeys<'_>,
    header: &PreKeyHeader,
    version: ProtocolVersion,
) -> Result<Session, DecryptError> {
    let secrets = responder_secrets(
        ours,
        &header.identity_key,
        &header.base_key,
        version,
        header.kyber.as_ref().map(|(_, ct)| ct),
    )?;
    let spqr = secrets
        .spqr_auth_key
        .as_ref()
        .map(|auth| spqr::State::new(auth, spqr::Direction::B2A));
    Ok(Session {
        version,
        local_identity: *ours.identity.identity_key(),
        remote_identity: header.identity_key,
        root_key: secrets.root,
        previous_counter: 0,
        sender: SenderChain {
            ratchet: ours.signed_pre_key.clone(),
            chain_key: secrets.chain,
        },
        receivers: Default::default(),
        pending_pre_key: None,
        local_registration_id: ours.registration_id,
        remote_registration_id: header.registration_id,
        alice_base_key: header.base_key,
        spqr,
    })
}

#[cfg(test)]
mod tests {
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    use super::*;

    #[test]
    fn torsion_is_refused() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let good = KeyPair::generate(&mut rng).public;
        assert!(is_torsion_free(&good));
        // A small-order point (order 8) added to nothing: not in the prime subgroup.
        let mut order8 = [0u8; 32];
        order8.copy_from_slice(&[
            0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f,
            0xc4, 0x6a, 0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16,
            0x5f, 0x49, 0xb8, 0x00,
        ]);
        assert!(!is_torsion_free(&PublicKey::from_x25519(order8)));
        // A generator plus a torsion point: the Edwards sum of a real key and order 8.
        let p = MontgomeryPoint(*good.x25519_bytes()).to_edwards(0).unwrap();
        let t = MontgomeryPoint(order8).to_edwards(0).unwrap();
        let mixed = PublicKey::from_x25519((p + t).to_montgomery().to_bytes());
        assert!(!is_torsion_free(&mixed));
    }
}
