//! The peer protocol's safety-number and media ops.

use confide::fingerprint::{Fingerprint, Party};
use confide::media::{self, Expected, MediaDecryptError, MediaKey, MediaKind, StreamOptions};
use confide::{IdentityKey, SystemRng};
use serde_json::{Value, json};

use super::{
    Failure, Peer, Reply, as_hex, as_str, as_u32, field, hex_field, key32, opt, store_error,
};

fn media_kind(req: &Value) -> Result<MediaKind, Failure> {
    as_str(field(req, "kind")?, "kind")?
        .parse()
        .map_err(|_| Failure::bad_request("field kind must be a media kind"))
}

fn hash32(req: &Value, name: &str) -> Result<Option<[u8; 32]>, Failure> {
    opt(req, name)
        .map(|v| key32(&as_hex(v, name)?, name))
        .transpose()
}

pub(super) fn media_encrypt(req: &Value) -> Reply {
    let kind = media_kind(req)?;
    let in_path = as_str(field(req, "in_path")?, "in_path")?;
    let out_path = as_str(field(req, "out_path")?, "out_path")?;
    let key = match opt(req, "media_key") {
        Some(v) => MediaKey::from_bytes(key32(&as_hex(v, "media_key")?, "media_key")?),
        None => MediaKey::generate(&mut SystemRng::new()),
    };
    let info = media::encrypt_file(&key, kind, in_path, out_path, StreamOptions::new())
        .map_err(|e| Failure::new("Io", e))?;
    Ok(json!({
        "media_key": hex::encode(key.as_bytes()),
        "file_sha256": hex::encode(info.file_sha256),
        "file_enc_sha256": hex::encode(info.file_enc_sha256),
        "file_length": info.file_length,
    }))
}

pub(super) fn media_decrypt(req: &Value) -> Reply {
    let kind = media_kind(req)?;
    let in_path = as_str(field(req, "in_path")?, "in_path")?;
    let out_path = as_str(field(req, "out_path")?, "out_path")?;
    let key = MediaKey::from_bytes(key32(&hex_field(req, "media_key")?, "media_key")?);
    let mut expected = Expected::none();
    if let Some(h) = hash32(req, "file_sha256")? {
        expected = expected.file_sha256(h);
    }
    if let Some(h) = hash32(req, "file_enc_sha256")? {
        expected = expected.file_enc_sha256(h);
    }
    // decrypt_file renames its temporary file into place only after every check passed,
    // so on error nothing exists at out_path.
    let info = media::decrypt_file(
        &key,
        kind,
        in_path,
        out_path,
        expected,
        StreamOptions::new(),
    )
    .map_err(|e| {
        let code = match &e {
            MediaDecryptError::BadMac => "BadMac",
            MediaDecryptError::EncSha256Mismatch => "EncSha256Mismatch",
            MediaDecryptError::FileSha256Mismatch => "FileSha256Mismatch",
            MediaDecryptError::LengthMismatch { .. } => "LengthMismatch",
            MediaDecryptError::BadPadding => "BadPadding",
            MediaDecryptError::TooShort { .. } => "TooShort",
            MediaDecryptError::NotBlockAligned { .. } => "NotBlockAligned",
            _ => "Io",
        };
        Failure::new(code, e)
    })?;
    Ok(json!({ "file_length": info.file_length }))
}

impl Peer {
    pub(super) fn fingerprint(&mut self, req: &Value) -> Reply {
        let version = match opt(req, "version") {
            Some(v) => as_u32(v, "version")?,
            None => confide::fingerprint::CURRENT_VERSION,
        };
        let iterations = match opt(req, "iterations") {
            Some(v) => as_u32(v, "iterations")?,
            None => confide::fingerprint::DEFAULT_ITERATIONS,
        };
        let remote_id = as_str(field(req, "remote_id")?, "remote_id")?
            .as_bytes()
            .to_vec();
        let remote_key = IdentityKey::try_from(&hex_field(req, "remote_key")?[..])
            .map_err(|e| Failure::new("InvalidKey", format!("remote_key: {e}")))?;
        let d = self.device()?;
        let local_id = match opt(req, "local_id") {
            Some(v) => as_str(v, "local_id")?.as_bytes().to_vec(),
            None => d.name.as_bytes().to_vec(),
        };
        let identity = d.store.get().local_identity().map_err(store_error)?;
        let fp = Fingerprint::new(
            version,
            iterations,
            Party::new(&local_id, identity.identity_key()),
            Party::new(&remote_id, &remote_key),
        )
        .map_err(|e| Failure::new("InvalidArgument", e))?;
        Ok(json!({
            "displayable": fp.displayable().to_string(),
            "scannable": hex::encode(fp.scannable().to_bytes()),
        }))
    }
}
