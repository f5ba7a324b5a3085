//! The peer's `sealed_decrypt` makes every check `Device::unseal` makes: a certificate
//! that names a known sender under another identity key is refused before any
//! decryption, with `UntrustedIdentity`, and leaves the group state alone. (The peer
//! used to open the envelope itself and went straight to the group chain.)

use serde_json::{Value, json};

use crate::harness::Node;

const ALICE: &str = "a11ce000-5555-4000-8000-00000000a11c";
const BOB: &str = "b0b00000-5555-4000-8000-000000000b0b";
const DIST: &str = "0f0f0f0f-0000-4000-8000-0000000000b1";

fn peer(name: &str) -> Node {
    let mut p = Node::spawn_confide();
    p.ok("generate_identity", json!({"name": name, "device_id": 1}));
    p
}

fn addr(name: &str) -> Value {
    json!({"name": name, "device_id": 1})
}

/// `from` starts a session with `to` and sends one message, so `to` trusts its key.
fn introduce(from: &mut Node, from_name: &str, to: &mut Node, to_name: &str) {
    let bundle = to.ok("bundle", json!({}))["bundle"].clone();
    from.ok(
        "process_bundle",
        json!({"address": addr(to_name), "bundle": bundle}),
    );
    let m = from.ok("encrypt", json!({"address": addr(to_name), "text": "hi"}));
    to.ok(
        "decrypt",
        json!({"address": addr(from_name), "type": m["type"], "ciphertext": m["ciphertext"]}),
    );
}

fn sealed_group(p: &mut Node, cert: &Value, text: &str) -> Value {
    p.ok(
        "sealed_encrypt",
        json!({"address": addr(BOB), "sender_cert": cert["sender_cert"], "distribution_id": DIST,
               "text": text, "version": 1}),
    )
}

#[test]
fn peer_unseal_refuses_a_known_sender_under_another_identity() {
    let mut alice = peer(ALICE);
    let mut bob = peer(BOB);
    introduce(&mut alice, ALICE, &mut bob, BOB);
    let skdm = alice.ok("group_create", json!({"distribution_id": DIST}))["skdm"].clone();
    bob.ok(
        "group_process",
        json!({"sender": addr(ALICE), "skdm": skdm}),
    );
    let cert = alice.ok("sender_cert", json!({}));
    let root = cert["trust_root"].clone();

    // Mallory calls herself Alice, with her own key, and holds a valid certificate for
    // that name from the same server.
    let mut mallory = peer(ALICE);
    let bundle = bob.ok("bundle", json!({}))["bundle"].clone();
    mallory.ok(
        "process_bundle",
        json!({"address": addr(BOB), "bundle": bundle}),
    );
    mallory.ok("group_create", json!({"distribution_id": DIST}));
    let forged = mallory.ok(
        "sender_cert",
        json!({"trust_root_private": cert["trust_root_private"]}),
    );
    let e = sealed_group(&mut mallory, &forged, "it is me, Alice");
    let r = bob.call(
        "sealed_decrypt",
        json!({"ciphertext": e["ciphertext"], "trust_root": root}),
    );
    assert_eq!(r["ok"], json!(false), "{r}");
    assert_eq!(r["code"], json!("UntrustedIdentity"), "{r}");

    // Nothing changed: Alice's next sealed group message opens.
    let e = sealed_group(&mut alice, &cert, "the real Alice");
    let o = bob.ok(
        "sealed_decrypt",
        json!({"ciphertext": e["ciphertext"], "trust_root": root}),
    );
    assert_eq!(o["text"], json!("the real Alice"), "{o}");
}
