//! confide ↔ baileys media encryption, every kind, 0 bytes to 8 MiB, both directions.

use std::path::PathBuf;

use confide::media::{self, Expected, MediaDecryptError, MediaKey, MediaKind, StreamOptions};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use serde_json::{Value, json};

use crate::driver::driver;

/// Sizes from empty to 8 MiB, around block, chunk and buffer boundaries.
const SIZES: &[usize] = &[
    0,
    1,
    15,
    16,
    17,
    31,
    32,
    4095,
    65_536,
    65_537,
    (256 << 10) - 26,
    (256 << 10) + 1,
    (1 << 20) + 3,
    8 << 20,
];

struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!(
            "confide-media-interop-{}-{tag}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    fn s(&self, name: &str) -> String {
        self.path(name).to_str().unwrap().to_owned()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn kind_ix(kind: MediaKind) -> u64 {
    MediaKind::ALL.iter().position(|&k| k == kind).unwrap() as u64
}

fn plaintext(seed: u64, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    ChaCha20Rng::seed_from_u64(seed).fill_bytes(&mut v);
    v
}

fn unhex32(v: &Value) -> [u8; 32] {
    hex::decode(v.as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap()
}

/// confide encrypts (file API, helper thread); baileys decrypts (after the driver checks
/// the MAC and upload hash with baileys' derived keys) to the same bytes.
fn confide_to_baileys(kind: MediaKind) {
    let dir = Scratch::new(&format!("c2b-{kind}"));
    let mut rng = ChaCha20Rng::seed_from_u64(0xc02b + kind_ix(kind));
    for (i, &len) in SIZES.iter().enumerate() {
        let data = plaintext(i as u64 ^ (kind_ix(kind) << 8), len);
        std::fs::write(dir.path("plain"), &data).unwrap();
        let key = MediaKey::generate(&mut rng);
        let info = media::encrypt_file(
            &key,
            kind,
            dir.path("plain"),
            dir.path("enc"),
            StreamOptions::new(),
        )
        .unwrap();
        assert_eq!(info.file_length, len as u64);
        let reply = driver().ok(json!({
            "op": "media_decrypt",
            "kind": kind.name(),
            "in_path": dir.s("enc"),
            "out_path": dir.s("dec"),
            "media_key": hex::encode(key.as_bytes()),
            "file_sha256": hex::encode(info.file_sha256),
            "file_enc_sha256": hex::encode(info.file_enc_sha256),
        }));
        assert_eq!(reply["file_length"], json!(len), "{kind} {len}");
        assert_eq!(
            unhex32(&reply["file_sha256"]),
            info.file_sha256,
            "{kind} {len}"
        );
        assert!(
            std::fs::read(dir.path("dec")).unwrap() == data,
            "{kind} {len}: baileys decrypted other bytes"
        );
        // The same upload under a different kind fails baileys' key derivation + MAC.
        if len == 17 {
            let other = if kind == MediaKind::Document {
                MediaKind::Image
            } else {
                MediaKind::Document
            };
            let reply = driver().call(json!({
                "op": "media_decrypt",
                "kind": other.name(),
                "in_path": dir.s("enc"),
                "out_path": dir.s("dec-other"),
                "media_key": hex::encode(key.as_bytes()),
            }));
            assert_eq!(reply["code"], "BadMac", "{reply}");
        }
    }
}

/// baileys encrypts (random key of its own); confide decrypts with every check on, and
/// re-encrypting under baileys' key reproduces baileys' upload byte for byte.
fn baileys_to_confide(kind_name: &str, kind: MediaKind, sizes: &[usize]) {
    let dir = Scratch::new(&format!("b2c-{kind_name}"));
    for (i, &len) in sizes.iter().enumerate() {
        let data = plaintext(i as u64 ^ 0xb2c0 ^ (kind_ix(kind) << 8), len);
        std::fs::write(dir.path("plain"), &data).unwrap();
        let reply = driver().ok(json!({
            "op": "media_encrypt",
            "kind": kind_name,
            "in_path": dir.s("plain"),
            "out_path": dir.s("enc"),
        }));
        let key_hex = reply["media_key"].as_str().unwrap();
        let key = MediaKey::try_from(&hex::decode(key_hex).unwrap()[..]).unwrap();
        let expected = Expected::none()
            .file_sha256(unhex32(&reply["file_sha256"]))
            .file_enc_sha256(unhex32(&reply["file_enc_sha256"]))
            .file_length(reply["file_length"].as_u64().unwrap());
        let ctx = format!("{kind_name} {len} (baileys media key {key_hex})");
        let got = media::decrypt_file(
            &key,
            kind,
            dir.path("enc"),
            dir.path("dec"),
            expected,
            StreamOptions::new(),
        )
        .unwrap_or_else(|e| panic!("{ctx}: {e:?}"));
        assert_eq!(got.file_length, len as u64, "{ctx}");
        assert!(
            std::fs::read(dir.path("dec")).unwrap() == data,
            "{ctx}: decrypted other bytes"
        );

        if len < (1 << 20) {
            // (Larger sizes: the upload-hash check above already ties the bytes.)
            let upload = std::fs::read(dir.path("enc")).unwrap();
            let (again, info) = media::encrypt_bytes(&key, kind, &data);
            assert!(
                again == upload,
                "{ctx}: confide's upload differs from baileys'"
            );
            assert_eq!(
                hex::encode(info.mac),
                reply["mac"].as_str().unwrap(),
                "{ctx}"
            );

            let mut out = Vec::new();
            media::decrypt_stream(
                &key,
                kind,
                &upload[..],
                &mut out,
                expected,
                StreamOptions::single_threaded(),
            )
            .unwrap_or_else(|e| panic!("{ctx}: {e:?}"));
            assert!(out == data, "{ctx}");
            // Any flipped byte is refused and leaves nothing at the output path.
            let mut bad = upload.clone();
            bad[(i * 7919) % upload.len()] ^= 0x20;
            std::fs::write(dir.path("bad"), &bad).unwrap();
            let e = media::decrypt_file(
                &key,
                kind,
                dir.path("bad"),
                dir.path("bad.dec"),
                Expected::none(),
                StreamOptions::new(),
            )
            .unwrap_err();
            assert!(matches!(e, MediaDecryptError::BadMac), "{ctx}: {e:?}");
            assert!(!dir.path("bad.dec").exists());
        }
    }
}

macro_rules! both_directions {
    ($($name:ident => $kind:expr),* $(,)?) => {
        mod confide_encrypts_baileys_decrypts {
            use super::*;
            $( #[test] fn $name() { confide_to_baileys($kind); } )*
        }
        mod baileys_encrypts_confide_decrypts {
            use super::*;
            $( #[test] fn $name() { baileys_to_confide(stringify!($name), $kind, SIZES); } )*
        }
    };
}

both_directions!(
    image => MediaKind::Image,
    video => MediaKind::Video,
    audio => MediaKind::Audio,
    document => MediaKind::Document,
    sticker => MediaKind::Sticker,
    history => MediaKind::History,
    app_state => MediaKind::AppState,
    link_thumbnail => MediaKind::LinkThumbnail,
    sticker_pack => MediaKind::StickerPack,
);

/// baileys' own gif/ptt/ptv media types decrypt under the kinds confide maps them to.
#[test]
fn baileys_aliases_gif_ptt_ptv() {
    for name in ["gif", "ptt", "ptv"] {
        let kind: MediaKind = name.parse().unwrap();
        // Up to 256 KiB: the alias only changes the key derivation.
        baileys_to_confide(name, kind, &SIZES[..SIZES.len() - 2]);
    }
}
