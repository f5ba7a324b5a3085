//! Sealed sender on a [`Device`]: seal 1:1 and group messages under the app's sender
//! certificate, and unseal what arrives, through the device's own decrypt paths.

use rand_core::{CryptoRng, RngCore};

use super::{Clock, Device, SealGroupMessageError, SealMessageError, SealToError, UnsealError};
use crate::Address;
#[cfg(doc)]
use crate::delivery::Decrypted;
use crate::envelope::{Content, ContentError};
use crate::group::{
    DistributionId, GroupDecryptError, GroupReceiveError, Layout, SenderKeyMessage,
};
use crate::sealed::{
    self, ContentHint, ContentType, Recipient, SealError, SenderCertificate, ServiceId, TrustRoots,
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

/// Who seals a message: the app's sender certificate, how the recipient should surface
/// a failure, and the group id to attach, if any.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct SealAs<'a> {
    /// The sender certificate the server issued this device.
    pub certificate: &'a SenderCertificate,
    /// How to surface a failure to the recipient ([`ContentHint::Default`] unless set).
    pub hint: ContentHint,
    /// The group id to attach (for group messages), if any.
    pub group_id: Option<&'a [u8]>,
    /// The sealed-sender version of a 1:1 [`Device::seal_message`] (v1 unless set).
    pub version: SealVersion,
}

/// Which sealed-sender version [`Device::seal_message`] uses for its one recipient.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum SealVersion {
    /// Sealed sender v1 (`0x11`), under the identity key trusted for the recipient.
    #[default]
    V1,
    /// Sealed sender v2: a multi-recipient (`0x23`) message for the one device, which
    /// the server turns into its `0x22` message.
    V2,
}

impl<'a> SealAs<'a> {
    /// Sealed under `certificate`, with the default hint and no group id.
    pub fn new(certificate: &'a SenderCertificate) -> Self {
        Self {
            certificate,
            hint: ContentHint::Default,
            group_id: None,
            version: SealVersion::V1,
        }
    }

    /// With this content hint.
    pub fn hint(mut self, hint: ContentHint) -> Self {
        self.hint = hint;
        self
    }

    /// With this sealed-sender version (for [`Device::seal_message`]).
    pub fn version(mut self, version: SealVersion) -> Self {
        self.version = version;
        self
    }

    /// With this group id attached.
    pub fn group_id(mut self, group_id: &'a [u8]) -> Self {
        self.group_id = Some(group_id);
        self
    }
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
    /// The decrypted message as sent: padded content from [`Device::seal_message`]
    /// (parse it with [`Unsealed::content`]), the bytes given to
    /// [`Device::seal_message_raw`].
    pub plaintext: zeroize::Zeroizing<Vec<u8>>,
    /// A message (1:1 or group) this store already decrypted (see
    /// [`Decrypted::redelivered`]).
    pub redelivered: bool,
}

impl Unsealed {
    /// The padded content [`Device::seal_message`] and [`Device::seal_group_message`]
    /// send, parsed.
    pub fn content(&self) -> Result<Content, ContentError> {
        Content::from_padded(&self.plaintext)
    }
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

    /// The v2 recipient entry for `remote`: its address name read as a service id,
    /// the identity key trusted for it, and its registration id from the session.
    pub fn recipient(&self, remote: &Address) -> Result<Recipient, SealToError> {
        let service_id = remote
            .name()
            .parse::<ServiceId>()
            .map_err(|_| SealToError::NotAServiceId)?;
        let identity_key = self
            .store
            .identity(remote)?
            .ok_or(SealToError::UnknownRecipient)?;
        let registration_id = self
            .store
            .session(remote)?
            .and_then(|r| r.current().map(|s| s.remote_registration_id()))
            .ok_or(SealToError::NoSession)?;
        Ok(Recipient {
            service_id,
            device_id: remote.device_id(),
            registration_id,
            identity_key,
        })
    }

    /// Encrypts `content`, padded, for `remote` (as [`Device::encrypt`]: the chain is
    /// saved first) and seals it as `from` says: by sealed sender v1, or v2 to the one
    /// device ([`Device::recipient`]).
    pub fn seal_message(
        &self,
        remote: &Address,
        content: &Content,
        from: &SealAs<'_>,
    ) -> Result<Vec<u8>, SealMessageError> {
        self.seal_message_raw(remote, &content.to_padded(), from)
    }

    /// As [`Device::seal_message`], with `plaintext` encrypted as given (no padding, for
    /// apps with their own framing).
    pub fn seal_message_raw(
        &self,
        remote: &Address,
        plaintext: &[u8],
        from: &SealAs<'_>,
    ) -> Result<Vec<u8>, SealMessageError> {
        let v2;
        let to = match from.version {
            SealVersion::V1 => SealFor::V1(remote),
            SealVersion::V2 => {
                v2 = [self.recipient(remote)?];
                SealFor::V2(&v2)
            }
        };
        self.check_seal(to)?;
        let message = self.encrypt_raw(remote, plaintext)?;
        let content_type = match message {
            CiphertextMessage::PreKey(_) => ContentType::PreKey,
            _ => ContentType::Whisper,
        };
        let content = UnidentifiedSenderMessageContent::new(
            content_type,
            from.certificate.clone(),
            message.serialized().to_vec(),
            from.hint,
            from.group_id.map(<[u8]>::to_vec),
        );
        Ok(self.seal(&content, to)?)
    }

    /// Group-encrypts `content`, padded (as [`Device::group_encrypt`]: the chain is
    /// saved first) and seals the message for `to` as `from` says (with its group id).
    pub fn seal_group_message(
        &self,
        distribution_id: DistributionId,
        content: &Content,
        from: &SealAs<'_>,
        to: SealFor<'_>,
    ) -> Result<Vec<u8>, SealGroupMessageError> {
        self.seal_group_message_raw(distribution_id, &content.to_padded(), from, to)
    }

    /// As [`Device::seal_group_message`], with `plaintext` encrypted as given.
    pub fn seal_group_message_raw(
        &self,
        distribution_id: DistributionId,
        plaintext: &[u8],
        from: &SealAs<'_>,
        to: SealFor<'_>,
    ) -> Result<Vec<u8>, SealGroupMessageError> {
        self.check_seal(to)?;
        let message = self.group_encrypt_raw(distribution_id, plaintext)?;
        let content = UnidentifiedSenderMessageContent::new(
            ContentType::SenderKey,
            from.certificate.clone(),
            message.serialized().to_vec(),
            from.hint,
            from.group_id.map(<[u8]>::to_vec),
        );
        Ok(self.seal(&content, to)?)
    }

    /// Opens a sealed message (v1, or v2 as delivered), validates its sender certificate
    /// under `trust` (its roots and revoked server key ids) at the device's time, and decrypts the inner message: a 1:1
    /// message through [`Device::decrypt_raw`], a current-layout group message through
    /// [`Device::group_decrypt_raw`] (with a transactional store both are committed
    /// atomically and redeliveries marked). Nothing is stored unless the inner decrypt
    /// succeeds.
    pub fn unseal(&self, bytes: &[u8], trust: &TrustRoots) -> Result<Unsealed, UnsealError> {
        let identity = self.store.local_identity()?;
        let content = sealed::open(bytes, &identity, trust, self.clock.now())?;
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
                let d = self.decrypt_raw(&sender, &message)?;
                (d.plaintext, d.redelivered)
            }
            ContentType::SenderKey => {
                let message = SenderKeyMessage::parse(content.contents(), Layout::Current)?;
                // The current layout names its distribution on the wire.
                let id = message
                    .distribution_id()
                    .ok_or(GroupReceiveError::Decrypt(GroupDecryptError::WrongLayout))?;
                let d = self.group_decrypt_raw(&sender, id, &message)?;
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
