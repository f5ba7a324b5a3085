//! Media keys and files from npm baileys 6.17.16 (`tests/vectors/media_baileys.json`,
//! captured once by `tests/vectors/capture/media_baileys.js`): every kind's expansion,
//! and uploads baileys encrypted, which confide must decrypt, verify and re-create byte
//! for byte from the same media key.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use confide::media::{
    Expected, MAC_LEN, MediaDecryptError, MediaKey, MediaKind, decrypt_bytes, encrypt_bytes, verify,
};
use serde_json::Value;

fn vectors() -> Value {
    let path = format!(
        "{}/tests/vectors/media_baileys.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn unhex(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

fn arr<const N: usize>(v: &Value) -> [u8; N] {
    unhex(v).try_into().unwrap()
}

fn kind(v: &Value) -> MediaKind {
    v.as_str().unwrap().parse().unwrap()
}

#[test]
fn every_kind_expands_as_baileys_does() {
    let v = vectors();
    let rows = v["keys"].as_array().unwrap();
    assert_eq!(rows.len(), 8);
    for row in rows {
        let k = kind(&row["kind"]);
        assert_eq!(k.info(), row["info"].as_str().unwrap());
        let e = MediaKey::from_bytes(arr(&row["media_key"])).expand(k);
        assert_eq!(e.iv(), &arr::<16>(&row["iv"]), "{k:?}");
        assert_eq!(e.cipher_key(), &arr::<32>(&row["cipher_key"]), "{k:?}");
        assert_eq!(e.mac_key(), &arr::<32>(&row["mac_key"]), "{k:?}");
        assert_eq!(e.ref_key(), &arr::<32>(&row["ref_key"]), "{k:?}");
    }
}

#[test]
fn baileys_uploads_decrypt_verify_and_reencrypt_byte_for_byte() {
    let v = vectors();
    for f in v["files"].as_array().unwrap() {
        let k = kind(&f["kind"]);
        let key = MediaKey::from_bytes(arr(&f["media_key"]));
        let upload = unhex(&f["upload"]);
        let plain = unhex(&f["plaintext"]);
        let expected = Expected::none()
            .file_enc_sha256(arr(&f["file_enc_sha256"]))
            .file_sha256(arr(&f["file_sha256"]))
            .file_length(f["file_length"].as_u64().unwrap());
        let (got, info) = decrypt_bytes(&key, k, &upload, expected).unwrap();
        assert_eq!(got, plain);
        assert_eq!(info.file_sha256, Some(arr::<32>(&f["file_sha256"])));
        assert_eq!(info.file_enc_sha256, Some(arr::<32>(&f["file_enc_sha256"])));
        assert_eq!(info.file_length, plain.len() as u64);
        assert_eq!(
            verify(&key, k, upload.as_slice(), Some(arr(&f["file_enc_sha256"]))).unwrap(),
            arr::<32>(&f["file_enc_sha256"])
        );
        let (again, made) = encrypt_bytes(&key, k, &plain);
        assert_eq!(again, upload, "{k:?} {} bytes", plain.len());
        assert_eq!(made.mac, arr::<MAC_LEN>(&f["mac"]));
        assert_eq!(made.file_sha256, arr::<32>(&f["file_sha256"]));
        assert_eq!(made.file_enc_sha256, arr::<32>(&f["file_enc_sha256"]));
        assert_eq!(made.file_length, plain.len() as u64);
        // Every flipped bit of the MAC, the last block and the first block is refused.
        let n = upload.len();
        let mut spots: Vec<usize> = (n - MAC_LEN..n).collect();
        spots.extend([0, 15, n - MAC_LEN - 1, n - MAC_LEN - 16]);
        for at in spots {
            for bit in [0x01u8, 0x80] {
                let mut bad = upload.clone();
                bad[at] ^= bit;
                assert!(
                    matches!(
                        decrypt_bytes(&key, k, &bad, Expected::none()),
                        Err(MediaDecryptError::BadMac)
                    ),
                    "{k:?} flip at {at}"
                );
                assert!(matches!(
                    verify(&key, k, bad.as_slice(), None),
                    Err(MediaDecryptError::BadMac)
                ));
            }
        }
        // The same upload under another kind's keys is refused.
        let other = if k == MediaKind::Document {
            MediaKind::Image
        } else {
            MediaKind::Document
        };
        assert!(matches!(
            decrypt_bytes(&key, other, &upload, Expected::none()),
            Err(MediaDecryptError::BadMac)
        ));
    }
}
