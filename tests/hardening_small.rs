//! Issue 16's smaller audit items: sealed-sender trust roots and revocations as values,
//! sealed v2 recipients listed twice, decrypted media files, and trust roots that must
//! be canonical keys.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use confide::Timestamp;
use confide::keys::{IdentityKeyPair, KeyPair, PrivateKey};
use confide::sealed::{
    self, CertificateError, ContentHint, ContentType, MultiRecipientMessage, Recipient, SealError,
    SealV2Context, SealedOpenError, SenderCertificate, SenderInfo, ServerCertificate, ServiceId,
    ServiceIdKind, TrustRoots, UnidentifiedSenderMessageContent,
};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const NOW: Timestamp = Timestamp::from_millis(1_700_000_000_000);
const ALICE: &str = "9d0652a3-dcc3-4d11-975f-74d61598733f";

/// A sender certificate under a server key `key_id` that `root` certifies.
fn certificate(
    rng: &mut ChaCha20Rng,
    root: &PrivateKey,
    key_id: u32,
    alice: &IdentityKeyPair,
) -> SenderCertificate {
    let server = KeyPair::generate(rng);
    let server_cert = ServerCertificate::new(key_id, server.public(), root, rng);
    let info = SenderInfo {
        uuid: ALICE.into(),
        e164: None,
        device_id: 1,
        identity_key: *alice.identity_key(),
        expiration: Timestamp::from_millis(NOW.as_millis() + 1000),
    };
    SenderCertificate::new(info, server_cert, server.private(), rng)
}

fn sealed_to(
    rng: &mut ChaCha20Rng,
    cert: SenderCertificate,
    alice: &IdentityKeyPair,
    bob: &IdentityKeyPair,
) -> Vec<u8> {
    let content = UnidentifiedSenderMessageContent::new(
        ContentType::SenderKey,
        cert,
        b"inner".to_vec(),
        ContentHint::Default,
        None,
    );
    sealed::seal_v1(&content, alice, bob.identity_key(), rng).unwrap()
}

/// During a root rotation both roots are trusted: a certificate chained to the second
/// validates, and one root alone refuses what the other signed.
#[test]
fn a_certificate_under_the_second_of_two_roots_validates() {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let old_root = KeyPair::generate(&mut rng);
    let new_root = KeyPair::generate(&mut rng);
    let alice = IdentityKeyPair::generate(&mut rng);
    let bob = IdentityKeyPair::generate(&mut rng);
    let cert = certificate(&mut rng, new_root.private(), 7, &alice);
    let both = TrustRoots::new(old_root.public()).with_root(new_root.public());
    assert_eq!(both.roots(), &[old_root.public(), new_root.public()]);
    cert.validate(&both, NOW).unwrap();
    let bytes = sealed_to(&mut rng, cert.clone(), &alice, &bob);
    let opened = sealed::open(&bytes, &bob, &both, NOW).unwrap();
    assert_eq!(opened.contents(), b"inner");
    assert_eq!(
        cert.validate(&TrustRoots::new(old_root.public()), NOW),
        Err(CertificateError::UntrustedServer)
    );
}

/// A root that signed nothing here is refused, through `open` as well.
#[test]
fn an_unknown_root_is_refused() {
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let root = KeyPair::generate(&mut rng);
    let stranger = KeyPair::generate(&mut rng);
    let other = KeyPair::generate(&mut rng);
    let alice = IdentityKeyPair::generate(&mut rng);
    let bob = IdentityKeyPair::generate(&mut rng);
    let cert = certificate(&mut rng, root.private(), 7, &alice);
    let trust = TrustRoots::new(stranger.public()).with_root(other.public());
    assert_eq!(
        cert.validate(&trust, NOW),
        Err(CertificateError::UntrustedServer)
    );
    let bytes = sealed_to(&mut rng, cert, &alice, &bob);
    assert_eq!(
        sealed::open(&bytes, &bob, &trust, NOW).map(|_| ()),
        Err(SealedOpenError::Certificate(
            CertificateError::UntrustedServer
        ))
    );
}

/// A host revokes a leaked server key by id without a new release; the default list
/// (libsignal's test id) stays refused.
#[test]
fn a_configured_revoked_key_id_is_refused() {
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let root = KeyPair::generate(&mut rng);
    let alice = IdentityKeyPair::generate(&mut rng);
    let bob = IdentityKeyPair::generate(&mut rng);
    let cert = certificate(&mut rng, root.private(), 42, &alice);
    let plain = TrustRoots::new(root.public());
    cert.validate(&plain, NOW).unwrap();
    let revoking = plain.clone().with_revoked(42);
    assert!(revoking.revoked().contains(&42));
    assert_eq!(
        cert.validate(&revoking, NOW),
        Err(CertificateError::Revoked { key_id: 42 })
    );
    let bytes = sealed_to(&mut rng, cert, &alice, &bob);
    assert_eq!(
        sealed::open(&bytes, &bob, &revoking, NOW).map(|_| ()),
        Err(SealedOpenError::Certificate(CertificateError::Revoked {
            key_id: 42
        }))
    );
    let test_id = certificate(&mut rng, root.private(), 0xDEAD_C357, &alice);
    assert_eq!(plain.revoked(), sealed::REVOKED_SERVER_KEY_IDS);
    assert_eq!(
        test_id.validate(&plain, NOW),
        Err(CertificateError::Revoked {
            key_id: 0xDEAD_C357
        })
    );
}

fn recipient(
    service_id: confide::sealed::ServiceId,
    device_id: u32,
    identity: &IdentityKeyPair,
) -> Recipient {
    Recipient {
        service_id,
        device_id,
        registration_id: 1000 + device_id,
        identity_key: *identity.identity_key(),
    }
}

/// A v2 message carries one key share per service id, under one identity key: a list
/// that names two identity keys for one service id (the same device twice, or two of
/// its devices) is refused instead of silently sealing to the first key.
#[test]
fn sealed_v2_refuses_one_recipient_with_two_identity_keys() {
    let mut rng = ChaCha20Rng::seed_from_u64(4);
    let root = KeyPair::generate(&mut rng);
    let alice = IdentityKeyPair::generate(&mut rng);
    let bob = IdentityKeyPair::generate(&mut rng);
    let mallory = IdentityKeyPair::generate(&mut rng);
    let cert = certificate(&mut rng, root.private(), 7, &alice);
    let content = UnidentifiedSenderMessageContent::new(
        ContentType::SenderKey,
        cert,
        b"inner".to_vec(),
        ContentHint::Default,
        None,
    );
    let bob_id = ServiceId::new(ServiceIdKind::Aci, [0xb0; 16]);
    for devices in [(1, 1), (1, 2)] {
        let list = [
            recipient(bob_id, devices.0, &bob),
            recipient(bob_id, devices.1, &mallory),
        ];
        assert_eq!(
            sealed::seal_v2(&content, &alice, &list, &mut rng),
            Err(SealError::ConflictingIdentityKeys),
            "devices {devices:?}"
        );
        let mut context = SealV2Context::new(&alice);
        assert_eq!(
            context.seal(&content, &list, &mut rng),
            Err(SealError::ConflictingIdentityKeys)
        );
        assert_eq!(context.len(), 0, "nothing is remembered on error");
    }
}

/// The same device listed twice (same key) is refused too, rather than deduplicated:
/// the server would refuse the duplicate entry, and an app listing it has a bug worth
/// seeing.
#[test]
fn sealed_v2_refuses_a_device_listed_twice() {
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let root = KeyPair::generate(&mut rng);
    let alice = IdentityKeyPair::generate(&mut rng);
    let bob = IdentityKeyPair::generate(&mut rng);
    let cert = certificate(&mut rng, root.private(), 7, &alice);
    let content = UnidentifiedSenderMessageContent::new(
        ContentType::SenderKey,
        cert,
        b"inner".to_vec(),
        ContentHint::Default,
        None,
    );
    let bob_id = ServiceId::new(ServiceIdKind::Aci, [0xb0; 16]);
    let list = [recipient(bob_id, 3, &bob), recipient(bob_id, 3, &bob)];
    assert_eq!(
        sealed::seal_v2(&content, &alice, &list, &mut rng),
        Err(SealError::DuplicateRecipient { device_id: 3 })
    );
    // Two devices of one service id under its one key still seal, and both open.
    let list = [recipient(bob_id, 3, &bob), recipient(bob_id, 4, &bob)];
    let multi = sealed::seal_v2(&content, &alice, &list, &mut rng).unwrap();
    let one = MultiRecipientMessage::try_from(&multi[..])
        .unwrap()
        .for_recipient(&bob_id)
        .unwrap();
    let trust = TrustRoots::new(root.public());
    assert_eq!(
        sealed::open(&one, &bob, &trust, NOW).unwrap().contents(),
        b"inner"
    );
}

fn media_upload(dir: &std::path::Path) -> (confide::media::MediaKey, std::path::PathBuf) {
    let mut rng = ChaCha20Rng::seed_from_u64(6);
    let key = confide::media::MediaKey::generate(&mut rng);
    let data: Vec<u8> = (0..10_000u32).map(|i| (i * 31) as u8).collect();
    let (upload, _) =
        confide::media::encrypt_bytes(&key, confide::media::MediaKind::Document, &data);
    let enc = dir.join("upload.enc");
    std::fs::write(&enc, upload).unwrap();
    (key, enc)
}

fn names(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Decrypted media (and the temporary file it is written to) is readable by its owner
/// only, whatever the umask: other local users never see a user's pictures.
#[cfg(unix)]
#[test]
fn decrypted_media_files_are_owner_only() {
    use confide::media::{self, Expected, MediaKind, StreamOptions};
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let (key, enc) = media_upload(dir.path());
    let out = dir.path().join("picture.bin");
    media::decrypt_file(
        &key,
        MediaKind::Document,
        &enc,
        &out,
        Expected::none(),
        StreamOptions::new(),
    )
    .unwrap();
    let mode = std::fs::metadata(&out).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "decrypted file mode {mode:o}");
    let again = dir.path().join("again.enc");
    media::encrypt_file(
        &key,
        MediaKind::Document,
        &out,
        &again,
        StreamOptions::new(),
    )
    .unwrap();
    let mode = std::fs::metadata(&again).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "encrypted file mode {mode:o}");
}

/// A process that dies mid-decrypt leaves its temporary file of unverified plaintext
/// behind. The next decrypt to the same path removes it, whether that decrypt succeeds
/// or fails, and leaves other outputs' files alone.
#[test]
fn a_partial_file_left_by_a_crash_is_removed_by_the_next_decrypt() {
    use confide::media::{self, Expected, MediaDecryptError, MediaKind, StreamOptions};
    let dir = tempfile::tempdir().unwrap();
    let (key, enc) = media_upload(dir.path());
    let out = dir.path().join("picture.bin");
    // Temporary names are `.<name>.<pid>-<n>.partial`; no live process has pid 0.
    let stale = dir.path().join(".picture.bin.0-3.partial");
    let other = dir.path().join(".other.bin.0-3.partial");
    std::fs::write(&stale, b"unverified plaintext").unwrap();
    std::fs::write(&other, b"another output's").unwrap();
    let mut bad = std::fs::read(&enc).unwrap();
    let n = bad.len();
    bad[n - 1] ^= 1;
    let bad_path = dir.path().join("bad.enc");
    std::fs::write(&bad_path, bad).unwrap();
    let e = media::decrypt_file(
        &key,
        MediaKind::Document,
        &bad_path,
        &out,
        Expected::none(),
        StreamOptions::new(),
    )
    .unwrap_err();
    assert!(matches!(e, MediaDecryptError::BadMac), "{e:?}");
    assert_eq!(
        names(dir.path()),
        [".other.bin.0-3.partial", "bad.enc", "upload.enc"],
        "the failed decrypt removed its own temporary file and the stale one"
    );
    std::fs::write(&stale, b"unverified plaintext").unwrap();
    media::decrypt_file(
        &key,
        MediaKind::Document,
        &enc,
        &out,
        Expected::none(),
        StreamOptions::new(),
    )
    .unwrap();
    assert_eq!(
        names(dir.path()),
        [
            ".other.bin.0-3.partial",
            "bad.enc",
            "picture.bin",
            "upload.enc"
        ]
    );
}

/// The cdylib of examples/ffi, built with `ffi-testing` as tests/ffi.rs builds it
/// (same target dir, so the two share one build).
fn ffi_library() -> std::path::PathBuf {
    ffi_lib::lib_dir().join("libconfide_ffi.so")
}

#[path = "common/ffi_lib.rs"]
mod ffi_lib;

/// The C ABI takes a trust root as 33 bytes or the 32 bare ones; both forms go through
/// the canonical check, so a non-canonical alias of a real key (bit 255 set, or u >= p)
/// is refused as an invalid argument before anything is opened, while the canonical
/// key gets as far as the (garbage) message. `PublicKey::from_x25519`, which skips the
/// check, is crate-private; the FFI's `public_key` uses `try_from_x25519` and
/// `TryFrom<&[u8]>`, checked here too.
#[test]
fn a_non_canonical_trust_root_is_refused_through_the_c_abi() {
    use confide::keys::PublicKey;
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let real = KeyPair::generate(&mut rng).public();
    let mut high_bit = *real.x25519_bytes();
    high_bit[31] |= 0x80;
    // p + 9 = 2^255 - 10: the base point's alias.
    let mut above_p = [0xffu8; 32];
    above_p[0] = 0xf6;
    above_p[31] = 0x7f;
    let serialized = |bare: &[u8; 32]| {
        let mut v = vec![0x05];
        v.extend_from_slice(bare);
        v
    };
    let refused = [
        high_bit.to_vec(),
        serialized(&high_bit),
        above_p.to_vec(),
        serialized(&above_p),
    ];
    for bad in &refused {
        let r = match <[u8; 32]>::try_from(&bad[..]) {
            Ok(bare) => PublicKey::try_from_x25519(bare),
            Err(_) => PublicKey::try_from(&bad[..]),
        };
        assert_eq!(r, Err(confide::KeyError::NonCanonical), "{bad:02x?}");
    }

    let lib = ffi_library();
    let script = r#"
import sys
sys.path.insert(0, sys.argv[1])
from confide import ConfideError, Device, Library, ERR_INVALID_ARGUMENT
lib = Library(sys.argv[2])
good = [bytes.fromhex(h) for h in sys.argv[3].split(",")]
bad = [bytes.fromhex(h) for h in sys.argv[4].split(",")]
with Device.in_memory(lib, "9d0652a3-dcc3-4d11-975f-74d61598733f") as d:
    def code(root):
        try:
            d.unseal(root, b"\x11" + bytes(120))
        except ConfideError as e:
            return e.code
        raise SystemExit("garbage unsealed")
    for root in bad:
        assert code(root) == ERR_INVALID_ARGUMENT, (root.hex(), code(root))
    for root in good:
        assert code(root) != ERR_INVALID_ARGUMENT, (root.hex(), code(root))
print("non-canonical trust roots refused")
"#;
    let hex = |v: &[Vec<u8>]| {
        v.iter()
            .map(|b| b.iter().map(|x| format!("{x:02x}")).collect::<String>())
            .collect::<Vec<_>>()
            .join(",")
    };
    let good = [real.x25519_bytes().to_vec(), real.serialize().to_vec()];
    let out = std::process::Command::new("python3")
        .arg("-B")
        .arg("-c")
        .arg(script)
        .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/ffi"))
        .arg(&lib)
        .arg(hex(&good))
        .arg(hex(&refused))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("python3 is needed for this test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("non-canonical trust roots refused"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
