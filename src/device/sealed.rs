//! Sealed sender on a [`Device`]: seal 1:1 and group messages under the app's sender
//! certificate, and unseal what arrives, through the device's own decrypt paths.

use rand_core::{CryptoRng, RngCore};

use super::{Clock, Device, SealGroupMessageError, SealMessageError, SealToError, UnsealError};
use crate::Address;
#[cfg(doc)]
use crate::cipher::Decrypted;
use crate::group::{DistributionId, Layout, SenderKeyMessage};
use crate::keys::PublicKey;
use crate::sealed::{
    self, ContentHint, ContentType, Recipient, SealError, SenderCertificate,
    UnidentifiedSenderMessageContent,
};
use crate::store::ProtocolStore;
use crate::wire::CiphertextMessage;

/// Whom a sealed message is for.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub enum SealFor<'a> {
    /// Sealed sender v1 to this one device, under the identity key this device trusts for
    /// it (known from its bundle or an earlier message).
    V1(&'a Address),
    /// Sealed sender v2 to these devices: one multi-recipient (`0x23`) message that the
    /// server splits into one `0x22` message per recipient.
    V2(&'a [Recipient]),
}

/// What [`Device::unseal`] found inside a sealed message.
#[derive(Clone)]
#[non_exhaustive]
pub struct Unsealed {
    /// The sender's address: the certificate's UUID as the name and its device id (name
    /// peers by their UUID for sessions and groups to line up with sealed sender).
    pub sender: Address,
    /// The validated sender certificate (UUID, optional phone number, identity key).
    pub certificate: SenderCertificate,
    /// The inner message's kind.
    pub content_type: ContentType,
    /// How to surface a failure to the user.
    pub content_hint: ContentHint,
    /// The group id the sender attached, if any.
    pub group_id: Option<Vec<u8>>,
    /// The decrypted message.
    pub plaintext: zeroize::Zeroizing<Vec<u8>>,
    /// A message (1:1 or group) this store already decrypted (see
    /// [`Decrypted::redelivered`]).
    pub redelivered: bool,
}

impl std::fmt::Debug for Unsealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Unsealed")
            .field("sender", &self.sender)
            .field("content_type", &self.content_type)
            .field("content_hint", &self.content_hint)
            .field("group_id", &self.group_id.as_ref().map(Vec::len))
            .field(
                "plaintext",
                &format_args!("<{} bytes>", self.plaintext.len()),
            )
            .field("redelivered", &self.redelivered)
            .finish_non_exhaustive()
    }
}

impl<S: ProtocolStore, R: RngCore + CryptoRng, C: Clock> Device<S, R, C> {
    /// Seals `content` (made by the app or by [`Device::seal_message`]'s steps) with this
    /// device's identity. To send one group message by v1 to several members, encrypt it
    /// once with [`Device::group_encrypt`] and seal its content per member.
    pub fn seal(
        &self,
        content: &UnidentifiedSenderMessageContent,
        to: SealFor<'_>,
    ) -> Result<Vec<u8>, SealToError> {
        let identity = self.store.local_identity()?;
        match to {
            SealFor::V1(remote) => {
                let theirs = self
                    .store
                    .identity(remote)?
                    .ok_or(SealToError::UnknownRecipient)?;
                Ok(sealed::seal_v1(
                    content,
                    &identity,
                    &theirs,
                    &mut *self.rng()?,
                )?)
            }
            SealFor::V2(recipients) => Ok(sealed::seal_v2(
                content,
                &identity,
                recipients,
                &mut *self.rng()?,
            )?),
        }
    }

    /// Checks what [`Device::seal`] needs before anything is encrypted.
    fn check_seal(&self, to: SealFor<'_>) -> Result<(), SealToError> {
        match to {
            SealFor::V1(remote) if self.store.identity(remote)?.is_none() => {
                Err(SealToError::UnknownRecipient)
            }
            SealFor::V2([]) => Err(SealError::NoRecipients.into()),
            _ => Ok(()),
        }
    }

    /// Encrypts a 1:1 message for `remote` (as [`Device::encrypt`]: the chain is saved
    /// first) and seals it under the app's sender certificate.
    pub fn seal_message(
        &self,
        remote: &Address,
        plaintext: &[u8],
        certificate: &SenderCertificate,
        hint: ContentHint,
        to: SealFor<'_>,
    ) -> Result<Vec<u8>, SealMessageError> {
        self.check_seal(to)?;
        let message = self.encrypt(remote, plaintext)?;
        let content_type = match message {
            CiphertextMessage::PreKey(_) => ContentType::PreKey,
            _ => ContentType::Whisper,
        };
        let content = UnidentifiedSenderMessageContent::new(
            content_type,
            certificate.clone(),
            message.serialized().to_vec(),
            hint,
            None,
        );
        Ok(self.seal(&content, to)?)
    }

    /// Group-encrypts (as [`Device::group_encrypt`]: the chain is saved first) and seals
    /// the message under the app's sender certificate, with the app's group id.
    pub fn seal_group_message(
        &self,
        distribution_id: DistributionId,
        plaintext: &[u8],
        group_id: Option<&[u8]>,
        certificate: &SenderCertificate,
        hint: ContentHint,
        to: SealFor<'_>,
    ) -> Result<Vec<u8>, SealGroupMessageError> {
        self.check_seal(to)?;
        let message = self.group_encrypt(distribution_id, plaintext)?;
        let content = UnidentifiedSenderMessageContent::new(
            ContentType::SenderKey,
            certificate.clone(),
            message.serialized().to_vec(),
            hint,
            group_id.map(<[u8]>::to_vec),
        );
        Ok(self.seal(&content, to)?)
    }

    /// Opens a sealed message (v1, or v2 as delivered), validates its sender certificate
    /// under `trust_root` at the device's time, and decrypts the inner message: a 1:1
    /// message through [`Device::decrypt`], a current-layout group message through
    /// [`Device::group_decrypt`] (with a transactional store both are committed
    /// atomically and redeliveries marked). Nothing is stored unless the inner decrypt
    /// succeeds.
    pub fn unseal(&self, bytes: &[u8], trust_root: &PublicKey) -> Result<Unsealed, UnsealError> {
        let identity = self.store.local_identity()?;
        let content = sealed::open(bytes, &identity, trust_root, self.clock.now())?;
        let certificate = content.sender().clone();
        let info = certificate.sender();
        let sender = Address::new(info.uuid.clone(), info.device_id);
        if sender == self.address {
            return Err(UnsealError::SelfSend);
        }
        if let Some(known) = self.store.identity(&sender)? {
            if known != info.identity_key {
                return Err(UnsealError::UntrustedIdentity {
                    known,
                    received: info.identity_key,
                });
            }
        }
        let content_type = content.content_type();
        let (plaintext, redelivered) = match content_type {
            ContentType::PreKey | ContentType::Whisper => {
                let message =
                    CiphertextMessage::from_parts(content_type.message_type(), content.contents())?;
                if let CiphertextMessage::PreKey(m) = &message {
                    if *m.identity_key() != info.identity_key {
                        return Err(UnsealError::IdentityMismatch);
                    }
                }
                let d = self.decrypt(&sender, &message)?;
                (d.plaintext, d.redelivered)
            }
            ContentType::SenderKey => {
                let message = SenderKeyMessage::parse(content.contents(), Layout::Current)?;
                let d = self.group_decrypt(&sender, &message)?;
                (d.plaintext, d.redelivered)
            }
            other => {
                return Err(UnsealError::UnsupportedContent {
                    content_type: other,
                });
            }
        };
        Ok(Unsealed {
            sender,
            content_type,
            content_hint: content.content_hint(),
            group_id: content.group_id().map(<[u8]>::to_vec),
            certificate,
            plaintext,
            redelivered,
        })
    }
}
