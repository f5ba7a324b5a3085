//! Alice and Bob set up a Signal-protocol session with confide and talk, each through a
//! `Device` over a persistent, sealed `SqliteStore`.
//!
//! `cargo run --example quickstart`

use confide::device::{Device, SystemClock};
use confide::group::{DistributionId, SenderKeyDistributionMessage, SenderKeyMessage};
use confide::store::{DurableStore, MessageId, SessionStore, SqliteStore, StoreKey};
use confide::{Address, CiphertextMessage, DecryptError, IdentityKeyPair, SystemRng};

fn short(bytes: &[u8]) -> String {
    let hex: String = bytes.iter().take(12).map(|b| format!("{b:02x}")).collect();
    format!("{hex}… ({} bytes)", bytes.len())
}

/// A device whose state lives in `path`, sealed with `key` (keep the key in the
/// platform keystore, never next to the database).
fn open_device(
    path: &std::path::Path,
    key: &StoreKey,
    name: &str,
) -> Result<Device<SqliteStore, SystemRng, SystemClock>, Box<dyn std::error::Error>> {
    // confide never reaches for a hidden RNG or clock: the app passes both in.
    let mut rng = SystemRng::new();
    let store = SqliteStore::open(path, key, &mut rng)?;
    if !store.has_local_identity()? {
        let registration_id = confide::keys::generate_registration_id(&mut rng);
        store.set_local_identity(&IdentityKeyPair::generate(&mut rng), registration_id)?;
    }
    Ok(Device::new(store, Address::new(name, 1), rng, SystemClock))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("confide-quickstart-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut rng = SystemRng::new();
    let alice_key = StoreKey::generate(&mut rng);
    let bob_key = StoreKey::generate(&mut rng);
    let alice = open_device(&dir.join("alice.db"), &alice_key, "alice")?;
    let bob = open_device(&dir.join("bob.db"), &bob_key, "bob")?;

    // 1. Bob publishes a bundle: identity key, signed prekey, one one-time prekey.
    let bundle = bob.publish_bundle(1, Some(100))?;
    println!("Bob's bundle");
    println!(
        "  identity key    {}",
        short(&bundle.identity_key.serialize())
    );
    println!(
        "  signed prekey   #{} (signature checks: {})",
        bundle.signed_pre_key.id,
        bundle.has_valid_signature()
    );
    println!("  one-time prekey #{}", bundle.pre_key.map_or(0, |p| p.id));

    // 2. Alice starts a session from it (X3DH) and writes first, while Bob is offline.
    //    The advanced sending chain is on disk before the ciphertext is handed out.
    alice.start_session(bob.address(), &bundle)?;
    let first = alice.encrypt(bob.address(), b"Hi Bob! Only you can read this.")?;
    println!(
        "\nAlice -> Bob  type {} (PreKeySignalMessage)  {}",
        first.message_type(),
        short(first.serialized())
    );

    // 3. Bob receives bytes from the network, parses them, and decrypts. The new session
    //    state, the used prekey and the plaintext are committed in one transaction.
    let wire = CiphertextMessage::from_parts(first.message_type(), first.serialized())?;
    let got = bob.decrypt(alice.address(), &wire)?;
    println!(
        "Bob reads     {:?}",
        String::from_utf8_lossy(&got.plaintext)
    );

    // 4. The network delivers it again (say Bob's app crashed before saving it): the
    //    store hands back the same plaintext, marked, without a second ratchet step.
    let again = bob.decrypt(alice.address(), &wire)?;
    println!(
        "Redelivered   {:?} (redelivered: {})",
        String::from_utf8_lossy(&again.plaintext),
        again.redelivered
    );

    // 5. Bob answers; from now on both send ordinary ratchet messages.
    let reply = bob.encrypt(alice.address(), b"Hi Alice, got it.")?;
    println!(
        "\nBob -> Alice  type {} (SignalMessage)  {}",
        reply.message_type(),
        short(reply.serialized())
    );
    let got = alice.decrypt(bob.address(), &reply)?;
    println!(
        "Alice reads   {:?}",
        String::from_utf8_lossy(&got.plaintext)
    );

    // 6. Messages may arrive out of order; each decrypts exactly once.
    let m1 = alice.encrypt(bob.address(), b"one")?;
    let m2 = alice.encrypt(bob.address(), b"two")?;
    for m in [&m2, &m1] {
        let got = bob.decrypt(alice.address(), m)?;
        println!(
            "Bob reads     {:?} (counter order swapped)",
            String::from_utf8_lossy(&got.plaintext)
        );
    }

    // 7. Once the app has saved a message it acknowledges it: the store drops the
    //    plaintext and keeps only the dedupe record, so a replay is refused.
    bob.store()
        .acknowledge(alice.address(), &MessageId::of(&m1))?;
    match bob.decrypt(alice.address(), &m1) {
        Err(DecryptError::DuplicateMessage { counter }) => {
            println!("Replay of counter {counter} refused: DuplicateMessage");
        }
        other => println!("unexpected: {other:?}"),
    }

    // 8. A tampered message fails, and changes nothing.
    let m3 = alice.encrypt(bob.address(), b"three")?;
    let mut bytes = m3.serialized().to_vec();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    let tampered = CiphertextMessage::from_parts(m3.message_type(), &bytes)?;
    let err = bob.decrypt(alice.address(), &tampered).err();
    println!(
        "Tampered copy: {}",
        err.map_or("accepted?!".into(), |e| e.to_string())
    );
    let got = bob.decrypt(alice.address(), &m3)?;
    println!(
        "Genuine copy:  {:?}",
        String::from_utf8_lossy(&got.plaintext)
    );

    // 9. A group: Alice makes a sending chain and hands its distribution message to Bob
    //    over their session; then one ciphertext reaches every member.
    let group = DistributionId::random(&mut rng);
    let skdm = alice.group_distribution(group)?;
    let wire = alice.encrypt(bob.address(), skdm.serialized())?;
    let got = bob.decrypt(alice.address(), &wire)?;
    bob.group_process(
        alice.address(),
        &SenderKeyDistributionMessage::try_from(&got.plaintext[..])?,
    )?;
    let sent = alice.group_encrypt(group, b"Hello, group!")?;
    let received = SenderKeyMessage::try_from(sent.serialized())?;
    let got = bob.group_decrypt(alice.address(), &received)?;
    println!(
        "\nAlice -> group  {}\nBob reads       {:?} (redelivered: {})",
        short(sent.serialized()),
        String::from_utf8_lossy(&got.plaintext),
        got.redelivered
    );
    // A group message is committed with the advanced sender key, so the same bytes
    // again come back from the store; once acknowledged, they are a duplicate.
    let again = bob.group_decrypt(alice.address(), &received)?;
    println!(
        "Redelivered     {:?} (redelivered: {})",
        String::from_utf8_lossy(&again.plaintext),
        again.redelivered
    );
    bob.store()
        .acknowledge(alice.address(), &MessageId::of_group(group, &received))?;
    if let Err(e) = bob.group_decrypt(alice.address(), &received) {
        println!("After acknowledge, replay refused: {e}");
    }

    // 10. Everything survives a restart: reopen Bob's store with his key.
    drop(bob);
    let bob = open_device(&dir.join("bob.db"), &bob_key, "bob")?;
    let summary = bob.store().verify()?;
    println!(
        "\nBob's store after a restart: {} session(s), {} message row(s), {} sender key(s), session resumes: {}",
        summary.sessions,
        summary.messages,
        summary.sender_keys,
        bob.store()
            .session(alice.address())?
            .is_some_and(|r| r.has_current_session())
    );
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
