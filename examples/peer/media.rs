//! The peer protocol's safety-number and media ops.

use confide::fingerprint::{self, Fingerprint, Party};
use confide::media::{self, Expected, MediaKey, MediaKind, StreamOptions};
use confide::store::ProtocolStore;
use confide::{IdentityKey, SystemRng};
use serde_json::{Value, json};

use super::Peer;
use super::json::{Failure, Reply, as_hex, as_str, field, hex_field, key32, opt, opt_u32};

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

fn paths(req: &Value) -> Result<(&str, &str), Failure> {
    Ok((
        as_str(field(req, "in_path")?, "in_path")?,
        as_str(field(req, "out_path")?, "out_path")?,
    ))
}

pub(super) fn media_encrypt(req: &Value) -> Reply {
    let kind = media_kind(req)?;
    let (in_path, out_path) = paths(req)?;
    let key = match opt(req, "media_key") {
        Some(v) => MediaKey::from_bytes(key32(&as_hex(v, "media_key")?, "media_key")?),
        None => MediaKey::generate(&mut SystemRng::new()),
    };
    let info = media::encrypt_file(&key, kind, in_path, out_path, StreamOptions::new())?;
    Ok(json!({
        "media_key": hex::encode(key.as_bytes()),
        "file_sha256": hex::encode(info.file_sha256),
        "file_enc_sha256": hex::encode(info.file_enc_sha256),
        "file_length": info.file_length,
    }))
}

pub(super) fn media_decrypt(req: &Value) -> Reply {
    let kind = media_kind(req)?;
    let (in_path, out_path) = paths(req)?;
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
    let options = StreamOptions::new();
    let info = media::decrypt_file(&key, kind, in_path, out_path, expected, options)?;
    Ok(json!({ "file_length": info.file_length }))
}

impl<S: ProtocolStore> Peer<S> {
    /// The safety number of this device's identity and the given remote key.
    pub(super) fn fingerprint(&self, req: &Value) -> Reply {
        let version = opt_u32(req, "version")?.unwrap_or(fingerprint::CURRENT_VERSION);
        let iterations = opt_u32(req, "iterations")?.unwrap_or(fingerprint::DEFAULT_ITERATIONS);
        let remote_id = as_str(field(req, "remote_id")?, "remote_id")?;
        let remote_key = IdentityKey::try_from(&hex_field(req, "remote_key")?[..])
            .map_err(|e| Failure::new(e.code(), format!("remote_key: {e}")))?;
        let d = self.device()?;
        let local_id = match opt(req, "local_id") {
            Some(v) => as_str(v, "local_id")?,
            None => d.address().name(),
        };
        let fp = Fingerprint::new(
            version,
            iterations,
            Party::new(local_id.as_bytes(), &d.identity_key()?),
            Party::new(remote_id.as_bytes(), &remote_key),
        )?;
        Ok(json!({
            "displayable": fp.displayable().to_string(),
            "scannable": hex::encode(fp.scannable().to_bytes()),
        }))
    }
}
