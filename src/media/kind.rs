//! Media kinds and the HKDF info string each one expands its key with.

use super::error::MediaKindError;

/// What a media file is, which picks the HKDF info string its [`MediaKey`](super::MediaKey)
/// is expanded with. A file decrypts only under the kind it was encrypted as.
///
/// GIFs and round video notes use [`Video`](Self::Video) keys, voice notes ("ptt") use
/// [`Audio`](Self::Audio) keys and stickers use image keys; [`MediaKind::from_str`] accepts
/// `gif`, `ptv` and `ptt` for that reason.
///
/// [`MediaKind::from_str`]: std::str::FromStr::from_str
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum MediaKind {
    /// A photo: `"WhatsApp Image Keys"`.
    Image,
    /// A video, GIF or video note: `"WhatsApp Video Keys"`.
    Video,
    /// Audio or a voice note: `"WhatsApp Audio Keys"`.
    Audio,
    /// Any other file: `"WhatsApp Document Keys"`.
    Document,
    /// A sticker; uses image keys: `"WhatsApp Image Keys"`.
    Sticker,
    /// A history-sync blob for a newly linked device: `"WhatsApp History Keys"`.
    History,
    /// An app-state (contacts, archive, stars) sync blob: `"WhatsApp App State Keys"`.
    AppState,
    /// A link-preview thumbnail: `"WhatsApp Link Thumbnail Keys"`.
    LinkThumbnail,
    /// A sticker pack: `"WhatsApp Sticker Pack Keys"`.
    StickerPack,
}

impl MediaKind {
    /// Every kind, in declaration order.
    pub const ALL: [MediaKind; 9] = [
        MediaKind::Image,
        MediaKind::Video,
        MediaKind::Audio,
        MediaKind::Document,
        MediaKind::Sticker,
        MediaKind::History,
        MediaKind::AppState,
        MediaKind::LinkThumbnail,
        MediaKind::StickerPack,
    ];

    /// The HKDF info string the media key is expanded with.
    pub const fn info(self) -> &'static str {
        match self {
            MediaKind::Image | MediaKind::Sticker => "WhatsApp Image Keys",
            MediaKind::Video => "WhatsApp Video Keys",
            MediaKind::Audio => "WhatsApp Audio Keys",
            MediaKind::Document => "WhatsApp Document Keys",
            MediaKind::History => "WhatsApp History Keys",
            MediaKind::AppState => "WhatsApp App State Keys",
            MediaKind::LinkThumbnail => "WhatsApp Link Thumbnail Keys",
            MediaKind::StickerPack => "WhatsApp Sticker Pack Keys",
        }
    }

    /// The kind's snake_case name, as the peer protocol spells it (`app_state`, ...).
    pub const fn name(self) -> &'static str {
        match self {
            MediaKind::Image => "image",
            MediaKind::Video => "video",
            MediaKind::Audio => "audio",
            MediaKind::Document => "document",
            MediaKind::Sticker => "sticker",
            MediaKind::History => "history",
            MediaKind::AppState => "app_state",
            MediaKind::LinkThumbnail => "link_thumbnail",
            MediaKind::StickerPack => "sticker_pack",
        }
    }
}

impl std::fmt::Display for MediaKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for MediaKind {
    type Err = MediaKindError;

    /// Parses a [`name`](Self::name), or one of the aliases `gif` and `ptv` (video keys)
    /// and `ptt` (audio keys).
    fn from_str(s: &str) -> Result<Self, MediaKindError> {
        let kind = match s {
            "image" => MediaKind::Image,
            "video" | "gif" | "ptv" => MediaKind::Video,
            "audio" | "ptt" => MediaKind::Audio,
            "document" => MediaKind::Document,
            "sticker" => MediaKind::Sticker,
            "history" => MediaKind::History,
            "app_state" => MediaKind::AppState,
            "link_thumbnail" => MediaKind::LinkThumbnail,
            "sticker_pack" => MediaKind::StickerPack,
            _ => return Err(MediaKindError::Unknown),
        };
        Ok(kind)
    }
}
