//! Attachment pointers: what a message carries so the recipient can fetch, check and
//! decrypt a blob the sender uploaded (the media itself never travels in the session).

use super::error::ContentError;
use super::limits::MAX_BLOB_ID_BYTES;
use crate::media::{MediaKey, MediaKind};

/// The blob store's name for an upload: 1 to [`MAX_BLOB_ID_BYTES`] bytes.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlobId(Vec<u8>);

impl BlobId {
    /// The raw id.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl TryFrom<&[u8]> for BlobId {
    type Error = ContentError;

    fn try_from(bytes: &[u8]) -> Result<Self, ContentError> {
        if bytes.is_empty() {
            return Err(ContentError::MissingField {
                field: "attachment.blob_id",
            });
        }
        if bytes.len() > MAX_BLOB_ID_BYTES {
            return Err(ContentError::TooLong {
                field: "attachment.blob_id",
                max: MAX_BLOB_ID_BYTES,
                found: bytes.len(),
            });
        }
        Ok(Self(bytes.to_vec()))
    }
}

impl std::fmt::Debug for BlobId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The server knows blob ids already; printing one reveals nothing new.
        f.write_str("BlobId(")?;
        for b in &self.0 {
            write!(f, "{b:02x}")?;
        }
        f.write_str(")")
    }
}

/// A SHA-256 digest. `Debug` hides it: the plaintext digest would let a reader of logs
/// confirm which file was sent.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sha256Digest([u8; 32]);

impl Sha256Digest {
    /// Wraps digest bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The digest bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    fn parse(field: &'static str, bytes: &[u8]) -> Result<Self, ContentError> {
        <[u8; 32]>::try_from(bytes)
            .map(Self)
            .map_err(|_| wrong_length(field, bytes.len()))
    }
}

impl std::fmt::Debug for Sha256Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sha256Digest(..)")
    }
}

fn wrong_length(field: &'static str, found: usize) -> ContentError {
    ContentError::WrongLength {
        field,
        expected: 32,
        found,
    }
}

/// What a blob holds, as the message says (`MediaKind` in `content.proto`). Finer than
/// [`MediaKind`], which only picks the key expansion: the app shows a GIF or a voice
/// note differently from a video or an audio file, though they share keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AttachmentKind {
    /// A photo.
    Image,
    /// A video.
    Video,
    /// An audio file.
    Audio,
    /// Any other file.
    Document,
    /// A sticker.
    Sticker,
    /// A history-sync bundle for a newly linked device.
    History,
    /// Synced app state (contact names, archives, stars).
    AppState,
    /// The preview image of a link.
    LinkThumbnail,
    /// A sticker pack.
    StickerPack,
    /// A looping short video.
    Gif,
    /// A push-to-talk voice note.
    Ptt,
}

impl AttachmentKind {
    /// The kind to expand the media key with (see [`crate::media`]): GIFs use video
    /// keys, voice notes audio keys, everything else its own.
    pub fn key_kind(self) -> MediaKind {
        match self {
            Self::Image => MediaKind::Image,
            Self::Video | Self::Gif => MediaKind::Video,
            Self::Audio | Self::Ptt => MediaKind::Audio,
            Self::Document => MediaKind::Document,
            Self::Sticker => MediaKind::Sticker,
            Self::History => MediaKind::History,
            Self::AppState => MediaKind::AppState,
            Self::LinkThumbnail => MediaKind::LinkThumbnail,
            Self::StickerPack => MediaKind::StickerPack,
        }
    }
}

/// Where a blob is, how to decrypt it and how to check it. Every field is a validated
/// type, so any value of this struct is a valid pointer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttachmentPointer {
    /// Where to fetch the encrypted blob.
    pub blob_id: BlobId,
    /// The key the blob is encrypted under (zeroized on drop, `Debug` redacted).
    pub media_key: MediaKey,
    /// SHA-256 of the plaintext, checked after decrypting.
    pub plaintext_sha256: Sha256Digest,
    /// SHA-256 of the encrypted blob, checked before decrypting.
    pub encrypted_sha256: Sha256Digest,
    /// Plaintext length in bytes.
    pub length: u64,
    /// What the blob holds; [`AttachmentKind::key_kind`] picks the key expansion.
    pub kind: AttachmentKind,
}

mod convert {
    //! Between the validated types and the private prost structs.

    use super::*;
    use crate::proto::content as pb;

    impl From<AttachmentKind> for pb::MediaKind {
        fn from(kind: AttachmentKind) -> Self {
            match kind {
                AttachmentKind::Image => Self::Image,
                AttachmentKind::Video => Self::Video,
                AttachmentKind::Audio => Self::Audio,
                AttachmentKind::Document => Self::Document,
                AttachmentKind::Sticker => Self::Sticker,
                AttachmentKind::History => Self::History,
                AttachmentKind::AppState => Self::AppState,
                AttachmentKind::LinkThumbnail => Self::LinkThumbnail,
                AttachmentKind::StickerPack => Self::StickerPack,
                AttachmentKind::Gif => Self::Gif,
                AttachmentKind::Ptt => Self::Ptt,
            }
        }
    }

    fn kind_from_wire(value: i32) -> Result<AttachmentKind, ContentError> {
        let unknown = ContentError::UnknownValue {
            field: "attachment.kind",
            value,
        };
        Ok(match pb::MediaKind::try_from(value).map_err(|_| unknown)? {
            pb::MediaKind::Unspecified => return Err(unknown),
            pb::MediaKind::Image => AttachmentKind::Image,
            pb::MediaKind::Video => AttachmentKind::Video,
            pb::MediaKind::Audio => AttachmentKind::Audio,
            pb::MediaKind::Document => AttachmentKind::Document,
            pb::MediaKind::Sticker => AttachmentKind::Sticker,
            pb::MediaKind::History => AttachmentKind::History,
            pb::MediaKind::AppState => AttachmentKind::AppState,
            pb::MediaKind::LinkThumbnail => AttachmentKind::LinkThumbnail,
            pb::MediaKind::StickerPack => AttachmentKind::StickerPack,
            pb::MediaKind::Gif => AttachmentKind::Gif,
            pb::MediaKind::Ptt => AttachmentKind::Ptt,
        })
    }

    impl TryFrom<&pb::AttachmentPointer> for AttachmentPointer {
        type Error = ContentError;

        fn try_from(p: &pb::AttachmentPointer) -> Result<Self, ContentError> {
            Ok(Self {
                blob_id: BlobId::try_from(&p.blob_id[..])?,
                media_key: MediaKey::try_from(&p.media_key[..])
                    .map_err(|_| wrong_length("attachment.media_key", p.media_key.len()))?,
                plaintext_sha256: Sha256Digest::parse(
                    "attachment.plaintext_sha256",
                    &p.plaintext_sha256,
                )?,
                encrypted_sha256: Sha256Digest::parse(
                    "attachment.encrypted_sha256",
                    &p.encrypted_sha256,
                )?,
                length: p.length,
                kind: kind_from_wire(p.kind)?,
            })
        }
    }

    impl From<&AttachmentPointer> for pb::AttachmentPointer {
        /// The result holds a copy of the media key: the caller scrubs it.
        fn from(a: &AttachmentPointer) -> Self {
            Self {
                blob_id: a.blob_id.0.clone(),
                media_key: a.media_key.as_bytes().to_vec(),
                plaintext_sha256: a.plaintext_sha256.0.to_vec(),
                encrypted_sha256: a.encrypted_sha256.0.to_vec(),
                length: a.length,
                kind: pb::MediaKind::from(a.kind).into(),
            }
        }
    }
}
