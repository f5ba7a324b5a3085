//! Secrets never print and are wiped when dropped.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// Reading a value's bytes after it was dropped needs raw pointers; test-only.
#![allow(unsafe_code)]

use std::mem::MaybeUninit;

use confide::device::{Device, FixedClock};
use confide::envelope::{
    AttachmentKind, AttachmentPointer, BlobId, Body, Content, ContentId, DataMessage,
    DisappearingTimer, Header, Sha256Digest,
};
use confide::group::{DistributionId, GroupSessions, SenderKeyRecord};
use confide::keys::{IdentityKeyPair, KeyPair, PreKeyRecord, PrivateKey, SignedPreKeyRecord};
use confide::media::{Decryptor, Encryptor, Expected, MediaKey, MediaKind};
use confide::sealed::{
    ContentHint, ContentType, SenderCertificate, SenderInfo, ServerCertificate,
    UnidentifiedSenderMessageContent,
};
use confide::session::Versions;
use confide::session::cipher::{self, BundleSpec};
use confide::session::{LocalKeys, SessionRecord};
use confide::store::{
    Commit, DeliveredMessage, DurableStore, InMemoryStore, MessageId, NewMessage, RowVersion,
    SessionStore, SqliteStore, StoreKey,
};
use confide::{Address, Timestamp};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Every way `Debug` could show `secret`: lower/upper hex, and the decimal and hex
/// array forms `{:?}` and `{:x?}` give a byte slice. Any 8-byte window counts.
fn leaks(output: &str, secret: &[u8]) -> bool {
    secret.windows(8.min(secret.len())).any(|w| {
        let lower = hex(w);
        let decimal = w
            .iter()
            .map(|b| b.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        let hex_list = w
            .iter()
            .map(|b| format!("{b:x}"))
            .collect::<Vec<_>>()
            .join(", ");
        output.contains(&lower)
            || output.contains(&lower.to_uppercase())
            || output.contains(&decimal)
            || output.contains(&hex_list)
    })
}

/// A run of 4+ comma-separated numbers: what `Debug` of a byte array or `Vec<u8>`
/// looks like. No secret type may print one, whatever the bytes are.
fn has_byte_list(output: &str) -> bool {
    let mut run = 0;
    for part in output.split(", ") {
        let tail = part.trim_start_matches('[').trim_end_matches(']');
        if !tail.is_empty() && tail.len() <= 3 && tail.chars().all(|c| c.is_ascii_hexdigit()) {
            run += 1;
            if run >= 4 {
                return true;
            }
        } else {
            run = 0;
        }
    }
    false
}

/// Hex that is not a value the server or the peer sees anyway: every run of 16+ hex
/// digits must be the whole content of a `PublicKey(..)`, `BlobId(..)` or a
/// `ContentId(..)`.
fn unlabelled_hex(output: &str) -> Option<String> {
    let bytes = output.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if !bytes[i].is_ascii_hexdigit() {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_hexdigit() {
            i += 1;
        }
        if i - start < 16 {
            continue;
        }
        let before = &output[..start];
        let labelled = ["PublicKey(", "BlobId(", "MessageId(", "ContentId("]
            .iter()
            .any(|l| before.ends_with(l))
            && output[i..].starts_with(')');
        if !labelled {
            return Some(output[start..i].to_owned());
        }
    }
    None
}

/// What [`secret_debug_outputs`] collects.
struct Snapshot {
    /// (type name, `Debug` output).
    outputs: Vec<(&'static str, String)>,
    /// Every secret's bytes we can reach.
    secrets: Vec<Vec<u8>>,
    /// The signed prekey's signature as `Debug` prints it: public, allowed.
    signature: String,
}

/// The `Debug` output of every public type that holds secret material, built from fixed
/// seeds so the text is stable, plus every secret's bytes we can reach.
///
/// Covered (in this order): keys::PrivateKey, keys::KeyPair, IdentityKeyPair,
/// PreKeyRecord, SignedPreKeyRecord, session::LocalKeys, SessionRecord (and the
/// hazmat::Session inside it), cipher::Decrypted, group::SenderKeyRecord,
/// group::SenderKeyDistributionMessage (carries the chain key), group::GroupSessions,
/// media::MediaKey, media::ExpandedMediaKey, media::Encryptor, media::Decryptor,
/// envelope::AttachmentPointer (carries a media key), envelope::DataMessage,
/// envelope::Content (its encoding carries media keys), sealed::
/// UnidentifiedSenderMessageContent, store::StoreKey, store::NewMessage,
/// store::DeliveredMessage, store::Commit, store::InMemoryStore, store::SqliteStore,
/// device::Device.
///
/// Sealed-sender key material (the v1/v2 ephemeral and derived keys) is private to the
/// crate and never reaches a public type; it is covered through IdentityKeyPair.
fn secret_debug_outputs() -> Snapshot {
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let mut secrets: Vec<Vec<u8>> = Vec::new();
    let mut out: Vec<(&'static str, String)> = Vec::new();
    let now = Timestamp::from_millis(1_700_000_000_000);

    let private = PrivateKey::from_bytes([0x11; 32]);
    secrets.push(private.to_bytes().to_vec());
    out.push(("PrivateKey", format!("{private:?}")));

    let pair = KeyPair::from_private(private.clone());
    out.push(("KeyPair", format!("{pair:?}")));

    let identity = IdentityKeyPair::generate(&mut rng);
    secrets.push(identity.private_key().to_bytes().to_vec());
    out.push(("IdentityKeyPair", format!("{identity:?}")));

    let pre_key = PreKeyRecord::generate(&mut rng, 5);
    secrets.push(pre_key.key_pair().private().to_bytes().to_vec());
    out.push(("PreKeyRecord", format!("{pre_key:?}")));

    let signed = SignedPreKeyRecord::generate(&mut rng, &identity, 1, now);
    secrets.push(signed.key_pair().private().to_bytes().to_vec());
    out.push(("SignedPreKeyRecord", format!("{signed:?}")));

    let local = LocalKeys::new(&identity, 42)
        .with_signed_pre_key(Some(&signed))
        .with_pre_key(Some(&pre_key));
    out.push(("LocalKeys", format!("{local:?}")));

    // A real 1:1 session between two in-memory stores, one message each way.
    let alice = InMemoryStore::generate(&mut rng);
    let bob = InMemoryStore::generate(&mut rng);
    let (a, b) = (Address::new("alice", 1), Address::new("bob", 1));
    let spec = BundleSpec::new(1, 1).with_pre_key(Some(1));
    let bundle = cipher::publish_bundle(&bob, &mut rng, &spec, now).unwrap();
    cipher::start_session(&alice, &b, &bundle, Versions::V3AndV4, &mut rng, now).unwrap();
    let m = cipher::encrypt(
        &alice,
        &a,
        &b,
        b"secret words",
        &mut confide::SystemRng::new(),
        now,
    )
    .unwrap();
    cipher::decrypt(&bob, &b, &a, &m, &mut rng, now).unwrap();
    let reply = cipher::encrypt(
        &bob,
        &b,
        &a,
        b"secret reply",
        &mut confide::SystemRng::new(),
        now,
    )
    .unwrap();
    let decrypted = cipher::decrypt(&alice, &a, &b, &reply, &mut rng, now).unwrap();
    let record: SessionRecord = alice.session(&b).unwrap().unwrap();
    out.push(("SessionRecord", format!("{record:?}")));
    out.push(("Decrypted", format!("{decrypted:?}")));

    let dist = DistributionId::from_bytes([0x42; 16]);
    let mut group_record = SenderKeyRecord::new(dist, confide::group::Layout::Current);
    let skdm = group_record.distribution(&mut rng);
    out.push(("SenderKeyRecord", format!("{group_record:?}")));
    out.push(("SenderKeyDistributionMessage", format!("{skdm:?}")));
    let mut groups = GroupSessions::new();
    groups.insert_record(a.clone(), group_record.clone());
    out.push(("GroupSessions", format!("{groups:?}")));

    let media_key = MediaKey::from_bytes([0x33; 32]);
    secrets.push(media_key.as_bytes().to_vec());
    out.push(("MediaKey", format!("{media_key:?}")));
    let expanded = media_key.expand(MediaKind::Image);
    secrets.push(expanded.iv().to_vec());
    secrets.push(expanded.cipher_key().to_vec());
    secrets.push(expanded.mac_key().to_vec());
    secrets.push(expanded.ref_key().to_vec());
    out.push(("ExpandedMediaKey", format!("{expanded:?}")));
    out.push((
        "Encryptor",
        format!("{:?}", Encryptor::new(&media_key, MediaKind::Image)),
    ));
    out.push((
        "Decryptor",
        format!(
            "{:?}",
            Decryptor::new(&media_key, MediaKind::Image, Expected::default())
        ),
    ));

    let pointer = AttachmentPointer {
        blob_id: BlobId::try_from(&b"blob-1"[..]).unwrap(),
        media_key: media_key.clone(),
        plaintext_sha256: Sha256Digest::from_bytes([0x44; 32]),
        encrypted_sha256: Sha256Digest::from_bytes([0x55; 32]),
        length: 1234,
        kind: AttachmentKind::Image,
    };
    out.push(("AttachmentPointer", format!("{pointer:?}")));
    let message = DataMessage::builder()
        .text("meet at noon")
        .attachment(pointer)
        .build(DisappearingTimer::OFF)
        .unwrap();
    out.push(("DataMessage", format!("{message:?}")));
    let content = Content::new(
        Header::new(ContentId::from_bytes([0x66; 16]), now),
        Body::Message(message),
    );
    out.push(("Content", format!("{content:?}")));

    let trust_root = KeyPair::generate(&mut rng);
    let server = KeyPair::generate(&mut rng);
    secrets.push(server.private().to_bytes().to_vec());
    let server_cert = ServerCertificate::new(1, server.public(), trust_root.private(), &mut rng);
    let info = SenderInfo {
        uuid: "9d0652a3-dcc3-4d11-975f-74d61598733f".into(),
        e164: None,
        device_id: 1,
        identity_key: *identity.identity_key(),
        expiration: now,
    };
    let cert = SenderCertificate::new(info, server_cert, server.private(), &mut rng);
    let usmc = UnidentifiedSenderMessageContent::new(
        ContentType::Whisper,
        cert,
        m.serialized().to_vec(),
        ContentHint::Default,
        None,
    );
    out.push(("UnidentifiedSenderMessageContent", format!("{usmc:?}")));

    let store_key = StoreKey::from_bytes([0x77; 32]);
    secrets.push(store_key.as_bytes().to_vec());
    out.push(("StoreKey", format!("{store_key:?}")));
    let id = MessageId::of(&m);
    let new_message = NewMessage::new(id, b"plaintext kept for redelivery", now);
    out.push(("NewMessage", format!("{new_message:?}")));
    let delivered = DeliveredMessage::new(
        Some(zeroize::Zeroizing::new(b"plaintext kept".to_vec())),
        now,
    );
    out.push(("DeliveredMessage", format!("{delivered:?}")));
    let commit = Commit::session(&b, RowVersion::ABSENT, &record)
        .with_identity(identity.identity_key())
        .with_message(new_message);
    out.push(("Commit", format!("{commit:?}")));
    out.push(("InMemoryStore", format!("{alice:?}")));

    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(dir.path().join("s.db"), &store_key, &mut rng).unwrap();
    sqlite.set_local_identity(&identity, 7).unwrap();
    out.push(("SqliteStore", format!("{sqlite:?}")));
    let device = Device::new(
        sqlite,
        Address::new("carol", 2),
        ChaCha20Rng::seed_from_u64(8),
        FixedClock::new(now),
    )
    .with_versions(confide::session::Versions::V3AndV4);
    out.push(("Device", format!("{device:?}")));

    Snapshot {
        signature: format!("{:?}", signed.signature()),
        outputs: out,
        secrets,
    }
}

/// One line per type, `name: Debug output`.
const EXPECTED: &str = r#"PrivateKey: PrivateKey(***)
KeyPair: KeyPair { public: PublicKey(7b4e909bbe7ffe44c465a220037d608ee35897d31ef972f07f74892cb0f73f13), private: PrivateKey(***) }
IdentityKeyPair: IdentityKeyPair { identity: IdentityKey(PublicKey(42bf9a08d1bcfc01bd2e3706ab8840891332085a421a52580f93b5c1386d845f)), private: PrivateKey(***) }
PreKeyRecord: PreKeyRecord { id: 5, key_pair: KeyPair { public: PublicKey(bbf2b82bc6b3d06e3ec8cf871cc658fe648fefb9d10c71f7963df30399ab6117), private: PrivateKey(***) } }
SignedPreKeyRecord: SignedPreKeyRecord { id: 1, timestamp: Timestamp(1700000000000), key_pair: KeyPair { public: PublicKey(b5fef971fd40feb72928a97f5bf48ef1dab2fce550e8469633c57d6bac1eb208), private: PrivateKey(***) }, signature: [85, 206, 95, 152, 102, 226, 106, 242, 151, 217, 185, 66, 237, 108, 118, 29, 129, 51, 13, 153, 135, 169, 231, 138, 79, 147, 99, 253, 48, 114, 151, 242, 167, 20, 153, 145, 223, 150, 117, 0, 61, 19, 211, 187, 237, 122, 202, 222, 25, 201, 85, 10, 162, 120, 1, 227, 169, 217, 61, 221, 87, 123, 213, 10] }
LocalKeys: LocalKeys { identity: IdentityKeyPair { identity: IdentityKey(PublicKey(42bf9a08d1bcfc01bd2e3706ab8840891332085a421a52580f93b5c1386d845f)), private: PrivateKey(***) }, registration_id: 42, signed_pre_key: Some(SignedPreKeyRecord { id: 1, timestamp: Timestamp(1700000000000), key_pair: KeyPair { public: PublicKey(b5fef971fd40feb72928a97f5bf48ef1dab2fce550e8469633c57d6bac1eb208), private: PrivateKey(***) }, signature: [85, 206, 95, 152, 102, 226, 106, 242, 151, 217, 185, 66, 237, 108, 118, 29, 129, 51, 13, 153, 135, 169, 231, 138, 79, 147, 99, 253, 48, 114, 151, 242, 167, 20, 153, 145, 223, 150, 117, 0, 61, 19, 211, 187, 237, 122, 202, 222, 25, 201, 85, 10, 162, 120, 1, 227, 169, 217, 61, 221, 87, 123, 213, 10] }), pre_key: Some(PreKeyRecord { id: 5, key_pair: KeyPair { public: PublicKey(bbf2b82bc6b3d06e3ec8cf871cc658fe648fefb9d10c71f7963df30399ab6117), private: PrivateKey(***) } }), kyber_pre_key: None }
SessionRecord: SessionRecord { current: Some(Session { version: V3, local_identity: IdentityKey(PublicKey(095c5c6cc23cd9fa0955cc0f81205e379aeefa327a500f80b1ebeba561e02f16)), remote_identity: IdentityKey(PublicKey(d15f6285cc9e4b0530ff4a8186b2aa4aadb371e7885713928fa27b123c76b34e)), root_key: RootKey(***), previous_counter: 0, sender: SenderChain { ratchet: KeyPair { public: PublicKey(616e21a9ad111a8828a6297b79fe164f6ba83454356d6003b918b430cbe76014), private: PrivateKey(***) }, chain_key: ChainKey { key: "***", index: 0 } }, receivers: [ReceiverChain { ratchet_key: PublicKey(a6a38c18cba0f5a1405d117c47edcaac4c2c7f4f51dba0d8ac083ba52608627d), chain_key: ChainKey { key: "***", index: 1 }, skipped: [], evicted_up_to: None }, ReceiverChain { ratchet_key: PublicKey(da544064435c2ff08186bc859714862a8bd1f16d285b1238a54d5fbc3e3fe137), chain_key: ChainKey { key: "***", index: 0 }, skipped: [], evicted_up_to: None }], pending_pre_key: None, local_registration_id: 3534, remote_registration_id: 11162, alice_base_key: PublicKey(e833dd96ef0e5952d12e2544239fe153b95a1f4e75115adb8ffd02783bb3bb0f), spqr: None }), previous: [] }
Decrypted: Decrypted { plaintext: <12 bytes>, redelivered: false }
SenderKeyRecord: SenderKeyRecord { layout: Current, distribution_id: Some(DistributionId(42424242-4242-4242-4242-424242424242)), chains: 1, can_send: true, .. }
SenderKeyDistributionMessage: SenderKeyDistributionMessage { layout: Current, distribution_id: Some(DistributionId(42424242-4242-4242-4242-424242424242)), chain_id: 1213381097, iteration: 0, chain_key: "***", signing_key: PublicKey(3604c139dcc06f058e153d5d77d3681192fd85c53f78c0f5160f32b63b06a12c) }
GroupSessions: GroupSessions { records: 1 }
MediaKey: MediaKey(***)
ExpandedMediaKey: ExpandedMediaKey(***)
Encryptor: Encryptor { length: 0, .. }
Decryptor: Decryptor { total: 0, .. }
AttachmentPointer: AttachmentPointer { blob_id: BlobId(626c6f622d31), media_key: MediaKey(***), plaintext_sha256: Sha256Digest(..), encrypted_sha256: Sha256Digest(..), length: 1234, kind: Image }
DataMessage: DataMessage { text: Some(<12 bytes>), attachments: [AttachmentPointer { blob_id: BlobId(626c6f622d31), media_key: MediaKey(***), plaintext_sha256: Sha256Digest(..), encrypted_sha256: Sha256Digest(..), length: 1234, kind: Image }], quote: None, timer: DisappearingTimer(off), view_once: false }
Content: Content { header: Header { id: ContentId(66666666666666666666666666666666), sent_at: Timestamp(1700000000000), hosting_serial: None }, body: Message(DataMessage { text: Some(<12 bytes>), attachments: [AttachmentPointer { blob_id: BlobId(626c6f622d31), media_key: MediaKey(***), plaintext_sha256: Sha256Digest(..), encrypted_sha256: Sha256Digest(..), length: 1234, kind: Image }], quote: None, timer: DisappearingTimer(off), view_once: false }), .. }
UnidentifiedSenderMessageContent: UnidentifiedSenderMessageContent { content_type: Whisper, content_hint: Default, contents_len: 146, .. }
StoreKey: StoreKey(<redacted>)
NewMessage: NewMessage { id: MessageId(6744f03e…), plaintext: <29 bytes>, received_at: Timestamp(1700000000000) }
DeliveredMessage: DeliveredMessage { plaintext: Some("<14 bytes>"), received_at: Timestamp(1700000000000) }
Commit: Commit { address: Address { name: "bob", device_id: 1 }, expected: RowVersion(None), session: SessionRecord { current: Some(Session { version: V3, local_identity: IdentityKey(PublicKey(095c5c6cc23cd9fa0955cc0f81205e379aeefa327a500f80b1ebeba561e02f16)), remote_identity: IdentityKey(PublicKey(d15f6285cc9e4b0530ff4a8186b2aa4aadb371e7885713928fa27b123c76b34e)), root_key: RootKey(***), previous_counter: 0, sender: SenderChain { ratchet: KeyPair { public: PublicKey(616e21a9ad111a8828a6297b79fe164f6ba83454356d6003b918b430cbe76014), private: PrivateKey(***) }, chain_key: ChainKey { key: "***", index: 0 } }, receivers: [ReceiverChain { ratchet_key: PublicKey(a6a38c18cba0f5a1405d117c47edcaac4c2c7f4f51dba0d8ac083ba52608627d), chain_key: ChainKey { key: "***", index: 1 }, skipped: [], evicted_up_to: None }, ReceiverChain { ratchet_key: PublicKey(da544064435c2ff08186bc859714862a8bd1f16d285b1238a54d5fbc3e3fe137), chain_key: ChainKey { key: "***", index: 0 }, skipped: [], evicted_up_to: None }], pending_pre_key: None, local_registration_id: 3534, remote_registration_id: 11162, alice_base_key: PublicKey(e833dd96ef0e5952d12e2544239fe153b95a1f4e75115adb8ffd02783bb3bb0f), spqr: None }), previous: [] }, identity: Some(IdentityKey(PublicKey(42bf9a08d1bcfc01bd2e3706ab8840891332085a421a52580f93b5c1386d845f))), remove_pre_key: None, message: Some(NewMessage { id: MessageId(6744f03e…), plaintext: <29 bytes>, received_at: Timestamp(1700000000000) }), kyber_pre_key_use: None }
InMemoryStore: InMemoryStore { identity: IdentityKey(PublicKey(095c5c6cc23cd9fa0955cc0f81205e379aeefa327a500f80b1ebeba561e02f16)), .. }
SqliteStore: SqliteStore { .. }
Device: Device { address: Address { name: "carol", device_id: 2 }, .. }
"#;

#[test]
fn debug_output_is_pinned_and_shows_no_key_bytes() {
    let Snapshot {
        outputs,
        secrets,
        signature,
    } = secret_debug_outputs();
    let actual: String = outputs
        .iter()
        .map(|(name, dbg)| format!("{name}: {dbg}\n"))
        .collect();
    // Controls: the detectors do fire on the forms a leak would take.
    for s in &secrets {
        assert!(leaks(&format!("{s:?}"), s) && leaks(&format!("{s:x?}"), s));
        assert!(leaks(&hex(s), s) && leaks(&hex(s).to_uppercase(), s));
    }
    assert!(has_byte_list(&format!("{:?}", [1u8, 200, 3, 4])));
    assert!(has_byte_list(&format!("{:x?}", vec![1u8, 200, 3, 4])));
    assert_eq!(
        unlabelled_hex("ChainKey(00112233445566778899)").as_deref(),
        Some("00112233445566778899")
    );
    for (name, dbg) in &outputs {
        for plaintext in [
            "secret words",
            "secret reply",
            "meet at noon",
            "plaintext kept",
        ] {
            assert!(!dbg.contains(plaintext), "{name} shows plaintext: {dbg}");
        }
        for s in &secrets {
            assert!(!leaks(dbg, s), "{name} shows key bytes: {dbg}");
        }
        // The signed prekey's signature is public (it is in every bundle).
        let without_signature = dbg.replace(&signature, "<signature>");
        assert!(
            !has_byte_list(&without_signature),
            "{name} prints a byte array: {dbg}"
        );
        if let Some(h) = unlabelled_hex(dbg) {
            panic!("{name} prints unlabelled hex {h}: {dbg}");
        }
    }
    assert_eq!(
        actual, EXPECTED,
        "Debug output changed; review it, then update EXPECTED with:\n{actual}"
    );
}

/// Drops the value in place and returns the bytes it occupied.
fn bytes_after_drop<T>(value: T) -> Vec<u8> {
    let mut slot = MaybeUninit::<T>::uninit();
    slot.write(value);
    // SAFETY: initialised just above; dropped exactly once.
    unsafe { slot.assume_init_drop() };
    // SAFETY: the slot's storage is still ours; we only read its bytes.
    unsafe { std::slice::from_raw_parts(slot.as_ptr().cast::<u8>(), size_of::<T>()) }.to_vec()
}

fn has_secret(bytes: &[u8], secret: &[u8]) -> bool {
    bytes.windows(secret.len()).any(|w| w == secret)
}

#[test]
fn private_keys_are_zeroed_on_drop() {
    // A clamped key whose bytes we know.
    let key = PrivateKey::from_bytes([0x5a; 32]);
    let secret = key.to_bytes();
    // Control: the method does see bytes that nobody wipes.
    assert!(has_secret(&bytes_after_drop(*secret), &secret[1..31]));
    let after = bytes_after_drop(key);
    assert!(!has_secret(&after, &secret[1..31]), "{after:02x?}");

    let pair = KeyPair::from_private(PrivateKey::from_bytes([0x6b; 32]));
    let secret = pair.private().to_bytes();
    let after = bytes_after_drop(pair);
    assert!(!has_secret(&after, &secret[1..31]));

    let identity = IdentityKeyPair::from_private(PrivateKey::from_bytes([0x7c; 32]));
    let secret = identity.private_key().to_bytes();
    let after = bytes_after_drop(identity);
    assert!(!has_secret(&after, &secret[1..31]));
}

#[test]
fn symmetric_keys_are_zeroed_on_drop() {
    let media = MediaKey::from_bytes([0x3c; 32]);
    assert!(has_secret(
        &bytes_after_drop(*media.as_bytes()),
        &[0x3c; 32]
    ));
    let after = bytes_after_drop(media);
    assert!(!has_secret(&after, &[0x3c; 32]), "{after:02x?}");

    let store = StoreKey::from_bytes([0x4d; 32]);
    let after = bytes_after_drop(store);
    assert!(!has_secret(&after, &[0x4d; 32]), "{after:02x?}");
}
