//! Sealed sender v1 (`0x11`): one ephemeral X25519 key per message; the sender's identity
//! key travels under AES-256-CTR + HMAC keyed from the ephemeral agreement, the content
//! under keys from the static-static agreement chained to it.

use prost::Message;
use rand_core::{CryptoRng, RngCore};
use zeroize::Zeroizing;

use super::content::UnidentifiedSenderMessageContent;
use super::error::{SealError, SealedOpenError, SealedWireError};
use super::symmetric::{ctr_hmac_decrypt, ctr_hmac_encrypt};
use crate::crypto;
use crate::keys::{IdentityKey, IdentityKeyPair, KeyPair, PUBLIC_KEY_LEN, PublicKey};
use crate::proto::sealed as pb;

/// The v1 version byte: `(1 << 4) | 1`.
pub const V1_VERSION_BYTE: u8 = 0x11;

const SALT_PREFIX: &[u8] = b"UnidentifiedDelivery";

struct Keys {
    chain: Zeroizing<[u8; 32]>,
    cipher: Zeroizing<[u8; 32]>,
    mac: Zeroizing<[u8; 32]>,
}

fn derive(salt: &[u8], shared: &[u8]) -> Keys {
    let mut okm = Zeroizing::new([0u8; 96]);
    crypto::hkdf_sha256(salt, shared, &[], &mut okm);
    let mut k = Keys {
        chain: Zeroizing::new([0u8; 32]),
        cipher: Zeroizing::new([0u8; 32]),
        mac: Zeroizing::new([0u8; 32]),
    };
    k.chain.copy_from_slice(&okm[..32]);
    k.cipher.copy_from_slice(&okm[32..64]);
    k.mac.copy_from_slice(&okm[64..]);
    k
}

fn ephemeral_salt(recipient: &PublicKey, ephemeral: &PublicKey) -> Vec<u8> {
    [
        SALT_PREFIX,
        &recipient.serialize()[..],
        &ephemeral.serialize()[..],
    ]
    .concat()
}

/// Seals `content` for one recipient (sealed sender v1).
pub fn seal_v1<R: RngCore + CryptoRng>(
    content: &UnidentifiedSenderMessageContent,
    sender: &IdentityKeyPair,
    recipient: &IdentityKey,
    rng: &mut R,
) -> Result<Vec<u8>, SealError> {
    let their = recipient.public_key();
    let ephemeral = KeyPair::generate(rng);
    let shared = ephemeral.private.agree(their).ok_or(SealError::WeakKey)?;
    let e = derive(&ephemeral_salt(their, &ephemeral.public), shared.as_ref());
    let encrypted_static = ctr_hmac_encrypt(&sender.identity_key().serialize(), &e.cipher, &e.mac);
    let shared = sender
        .private_key()
        .agree(their)
        .ok_or(SealError::WeakKey)?;
    let s = derive(&[&e.chain[..], &encrypted_static].concat(), shared.as_ref());
    let encrypted_message = ctr_hmac_encrypt(content.serialized(), &s.cipher, &s.mac);
    let mut out = vec![V1_VERSION_BYTE];
    // Encoding into a Vec only fails for lack of capacity, which Vec grows itself.
    let _ = pb::UnidentifiedSenderMessage {
        ephemeral_public: Some(ephemeral.public.serialize().to_vec()),
        encrypted_static: Some(encrypted_static),
        encrypted_message: Some(encrypted_message),
    }
    .encode(&mut out);
    Ok(out)
}

/// Opens a v1 message (the version byte already checked) to its content, unvalidated.
pub(super) fn open_v1(
    bytes: &[u8],
    recipient: &IdentityKeyPair,
) -> Result<UnidentifiedSenderMessageContent, SealedOpenError> {
    let bad = |field| SealedOpenError::Wire(SealedWireError::Malformed { field });
    let m = pb::UnidentifiedSenderMessage::decode(bytes.get(1..).unwrap_or_default())
        .map_err(|_| bad("UnidentifiedSenderMessage"))?;
    let ephemeral = m.ephemeral_public.ok_or(bad("ephemeral_public"))?;
    let encrypted_static = m.encrypted_static.ok_or(bad("encrypted_static"))?;
    let encrypted_message = m.encrypted_message.ok_or(bad("encrypted_message"))?;
    let ephemeral =
        PublicKey::try_from(ephemeral.as_slice()).map_err(|_| bad("ephemeral_public"))?;
    let ours = recipient.identity_key().public_key();
    let shared = recipient
        .private_key()
        .agree(&ephemeral)
        .ok_or(SealedOpenError::InvalidMessage)?;
    let e = derive(&ephemeral_salt(ours, &ephemeral), shared.as_ref());
    let static_bytes = ctr_hmac_decrypt(&encrypted_static, &e.cipher, &e.mac)
        .ok_or(SealedOpenError::InvalidMessage)?;
    if static_bytes.len() != PUBLIC_KEY_LEN {
        return Err(SealedOpenError::InvalidMessage);
    }
    let sender_key = PublicKey::try_from(static_bytes.as_slice())
        .map_err(|_| SealedOpenError::InvalidMessage)?;
    let shared = recipient
        .private_key()
        .agree(&sender_key)
        .ok_or(SealedOpenError::InvalidMessage)?;
    let s = derive(&[&e.chain[..], &encrypted_static].concat(), shared.as_ref());
    let content = ctr_hmac_decrypt(&encrypted_message, &s.cipher, &s.mac)
        .ok_or(SealedOpenError::InvalidMessage)?;
    let content = UnidentifiedSenderMessageContent::try_from(content.as_slice())?;
    if !crypto::ct_eq(
        &static_bytes,
        &content.sender().sender().identity_key.serialize(),
    ) {
        return Err(SealedOpenError::InvalidMessage);
    }
    Ok(content)
}
