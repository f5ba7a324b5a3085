//! Padded content messages, the default of [`Device`]: [`Device::encrypt`] and
//! [`Device::group_encrypt`] send a [`Content`] padded to a multiple of 160 bytes
//! (see [`crate::envelope`]), so the server learns a size class, never a message's
//! length; [`Device::decrypt`] and [`Device::group_decrypt`] unpad and parse what
//! arrives into a [`Received`]. A group's sending chain travels the same way: as
//! [`Body::SenderKeyDistribution`] content from [`Device::group_distribution`].
//!
//! The `_raw` calls encrypt and decrypt the bytes as given, for apps (and adapters to
//! other Signal clients) that frame and pad their messages themselves.

use rand_core::{CryptoRng, RngCore};

use super::{Clock, Device};
use crate::delivery::Decrypted;
use crate::envelope::{self, Body, Content, ContentError, DataMessage, DisappearingTimer, Header};
use crate::error::{DecryptError, EncryptError};
use crate::group::{DistributionId, SenderKeyMessage};
use crate::store::{MessageId, ProtocolStore};
use crate::wire::CiphertextMessage;
use crate::{Address, group};

use super::{GroupReceiveError, GroupSendError};

/// A content message [`Device::decrypt`] or [`Device::group_decrypt`] received.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Received {
    /// What the sender sent: a header (id, sent time) and a typed body.
    pub content: Content,
    /// The id the store keeps the message under: hand it to
    /// [`Device::acknowledge`] once the app saved the content.
    pub id: MessageId,
    /// `true` when this exact message was decrypted before and its content comes from
    /// the store (see [`Decrypted::redelivered`]).
    pub redelivered: bool,
}

/// [`Device::decrypt`] or [`Device::group_decrypt`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiveError {
    /// The 1:1 message did not decrypt; nothing changed.
    #[error("decrypt failed: {0}")]
    Decrypt(#[from] DecryptError),
    /// The group message did not decrypt; nothing changed.
    #[error("group decrypt failed: {0}")]
    Group(#[from] GroupReceiveError),
    /// The message decrypted (and the store keeps it under `id`, so a redelivery comes
    /// back the same way) but is not padded content: the sender does not use
    /// `Device::encrypt`. Acknowledge `id` to drop it.
    #[error("message {id:?} is not valid content: {error}")]
    Content {
        /// The stored message's id.
        id: MessageId,
        /// What is wrong with it.
        error: ContentError,
    },
}

impl Received {
    /// The text of a chat message, if the content is one and has text.
    pub fn text(&self) -> Option<&str> {
        match self.content.body() {
            Body::Message(m) => m.text(),
            _ => None,
        }
    }
}

fn received(d: Decrypted) -> Result<Received, ReceiveError> {
    match Content::from_padded(&d.plaintext) {
        Ok(content) => Ok(Received {
            content,
            id: d.id,
            redelivered: d.redelivered,
        }),
        Err(error) => Err(ReceiveError::Content { id: d.id, error }),
    }
}

impl<S: ProtocolStore, R: RngCore + CryptoRng, C: Clock> Device<S, R, C> {
    /// Content with `body`, a fresh random id and the device's time, ready for
    /// [`Device::encrypt`] or [`Device::group_encrypt`].
    pub fn compose(&self, body: Body) -> Result<Content, crate::error::StoreError> {
        let id = envelope::ContentId::random(&mut *self.rng()?);
        Ok(Content::new(Header::new(id, self.clock.now()), body))
    }

    /// A chat message with `text` (no disappearing timer), as [`Device::compose`].
    pub fn text(&self, text: &str) -> Result<Content, TextError> {
        let message = DataMessage::builder()
            .text(text)
            .build(DisappearingTimer::OFF)?;
        Ok(self.compose(Body::Message(message))?)
    }

    /// Encrypts `content`, padded, for `remote` (see [`Device::encrypt_raw`]: the
    /// advanced chain is saved before the ciphertext is returned).
    pub fn encrypt(
        &self,
        remote: &Address,
        content: &Content,
    ) -> Result<CiphertextMessage, EncryptError> {
        self.encrypt_raw(remote, &content.to_padded())
    }

    /// Decrypts a message from `remote` and parses its padded content. With a
    /// transactional store the message is committed before this returns and a
    /// redelivery is marked (see [`Device::decrypt_raw`]).
    pub fn decrypt(
        &self,
        remote: &Address,
        message: &CiphertextMessage,
    ) -> Result<Received, ReceiveError> {
        received(self.decrypt_raw(remote, message)?)
    }

    /// Encrypts `content`, padded, with this device's sending chain in the group (see
    /// [`Device::group_encrypt_raw`]).
    pub fn group_encrypt(
        &self,
        distribution_id: DistributionId,
        content: &Content,
    ) -> Result<SenderKeyMessage, GroupSendError> {
        self.group_encrypt_raw(distribution_id, &content.to_padded())
    }

    /// Decrypts a group message from `sender` in the group `distribution_id` and
    /// parses its padded content (see [`Device::group_decrypt_raw`]).
    pub fn group_decrypt(
        &self,
        sender: &Address,
        distribution_id: DistributionId,
        message: &SenderKeyMessage,
    ) -> Result<Received, ReceiveError> {
        received(self.group_decrypt_raw(sender, distribution_id, message)?)
    }

    /// The distribution message of this device's sending chain in the group (current
    /// layout) as content, creating and saving the chain on first use: send it to
    /// every member with [`Device::encrypt`]; theirs arrive from [`Device::decrypt`] as
    /// [`Body::SenderKeyDistribution`], for [`Device::group_process`].
    pub fn group_distribution(
        &self,
        distribution_id: DistributionId,
    ) -> Result<Content, group::GroupDistributionError> {
        let message =
            self.group_distribution_raw(distribution_id, crate::group::Layout::Current)?;
        Ok(self.compose(Body::SenderKeyDistribution(message))?)
    }
}

/// [`Device::text`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TextError {
    /// The text is not valid content (too long).
    #[error("invalid content: {0}")]
    Content(#[from] ContentError),
    /// The RNG lock was poisoned.
    #[error("store failed: {0}")]
    Store(#[from] crate::error::StoreError),
}
