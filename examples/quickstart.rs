//! Alice and Bob chat through two persistent devices, each over its own sealed
//! `SqliteStore` file: a session from a published bundle, padded messages both ways, a
//! restart that picks the chat up from disk, a group message, and the safety number
//! they compare. Everything goes through `Device`.
//!
//! `cargo run --example quickstart`

use std::path::Path;

use confide::device::{Device, SystemClock};
use confide::envelope::Body;
use confide::group::DistributionId;
use confide::store::{SqliteStore, StoreKey};
use confide::{Address, CiphertextMessage, SystemRng};

type Phone = Device<SqliteStore, SystemRng, SystemClock>;

/// Opens `name`'s device from `dir`, creating it (identity included) on first use. The
/// store key belongs in the platform keystore, never next to the database. confide
/// never reaches for a hidden RNG or clock: the app passes both in.
fn open(dir: &Path, name: &str, key: &StoreKey) -> Result<Phone, Box<dyn std::error::Error>> {
    let mut rng = SystemRng::new();
    let store = SqliteStore::open(dir.join(format!("{name}.db")), key, &mut rng)?;
    // Protocol v4 (PQXDH and SPQR), the default.
    Ok(Device::open(
        store,
        Address::new(name, 1),
        rng,
        SystemClock,
    )?)
}

/// What the network carries: a message type and bytes.
fn send(message: &CiphertextMessage) -> (u8, Vec<u8>) {
    (message.message_type(), message.serialized().to_vec())
}

/// `to` receives bytes from `from` and reads them; the app saves the text, then
/// acknowledges it so the store drops its copy.
fn receive(
    to: &Phone,
    from: &Phone,
    (kind, bytes): (u8, Vec<u8>),
) -> Result<(), Box<dyn std::error::Error>> {
    let message = CiphertextMessage::from_parts(kind, &bytes)?;
    let got = to.decrypt(from.address(), &message)?;
    println!(
        "{:>5} reads {:?}  ({} bytes on the wire: padded, so only the size class shows)",
        to.address().name(),
        got.text().unwrap_or("<not text>"),
        bytes.len()
    );
    to.acknowledge(from.address(), &got.id)?;
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("confide-quickstart-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut rng = SystemRng::new();
    let (alice_key, bob_key) = (StoreKey::generate(&mut rng), StoreKey::generate(&mut rng));
    let alice = open(&dir, "alice", &alice_key)?;
    let bob = open(&dir, "bob", &bob_key)?;

    // 1. Bob publishes a bundle (the device picks the prekey ids and never reuses them);
    //    Alice starts a session from it and writes first, while Bob is offline.
    let bundle = bob.publish_bundle()?;
    println!(
        "Bob's bundle: signed prekey #{}, one-time prekey #{}, last-resort Kyber1024 prekey #{}; \
         {} more one-time prekeys and {} one-time Kyber prekeys to upload",
        bundle.signed_pre_key.id,
        bundle.pre_key.map_or(0, |p| p.id),
        bundle.kyber_pre_key.as_ref().map_or(0, |k| k.id),
        bob.top_up_pre_keys()?.len(),
        bob.top_up_kyber_pre_keys()?.len()
    );
    alice.start_session(bob.address(), &bundle)?;
    let hi = send(&alice.encrypt(
        bob.address(),
        &alice.text("Hi Bob! Only you can read this.")?,
    )?);
    receive(&bob, &alice, hi)?;
    let reply = send(&bob.encrypt(alice.address(), &bob.text("Hi Alice, got it.")?)?);
    receive(&alice, &bob, reply)?;

    // 2. Both apps restart: the devices come back from their files, sessions included.
    let alice_identity = alice.identity_key()?;
    drop((alice, bob));
    let alice = open(&dir, "alice", &alice_key)?;
    let bob = open(&dir, "bob", &bob_key)?;
    assert_eq!(alice.identity_key()?, alice_identity);
    println!("\n-- restart --\n");
    let again = send(&alice.encrypt(
        bob.address(),
        &alice.text("Still there after the restart?")?,
    )?);
    receive(&bob, &alice, again)?;
    let yes = send(&bob.encrypt(alice.address(), &bob.text("Yes, same session.")?)?);
    receive(&alice, &bob, yes)?;

    // 3. A group: Alice's sending chain reaches Bob as content over their session, then
    //    one ciphertext serves every member.
    let group = DistributionId::random(&mut rng);
    let invite = alice.encrypt(bob.address(), &alice.group_distribution(group)?)?;
    let got = bob.decrypt(alice.address(), &invite)?;
    if let Body::SenderKeyDistribution(key) = got.content.body() {
        bob.group_process(alice.address(), group, key)?;
    }
    bob.acknowledge(alice.address(), &got.id)?;
    let sent = alice.group_encrypt(group, &alice.text("Hello, group!")?)?;
    let got = bob.group_decrypt(alice.address(), group, &sent)?;
    println!(
        "\n  bob reads {:?} in the group ({} bytes on the wire)",
        got.text().unwrap_or("<not text>"),
        sent.serialized().len()
    );
    bob.acknowledge(alice.address(), &got.id)?;

    // 4. They compare safety numbers (in person, or by scanning the QR code).
    let on_alice = alice.safety_number(bob.address())?;
    let on_bob = bob.safety_number(alice.address())?;
    assert_eq!(
        on_alice.displayable().to_string(),
        on_bob.displayable().to_string()
    );
    println!(
        "\nSafety number on both phones:\n  {}",
        on_alice.displayable().groups().join(" ")
    );

    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
