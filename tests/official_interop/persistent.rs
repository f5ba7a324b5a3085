//! confide's peer in persistent mode (`--db PATH --db-key HEX`) keeps its group state
//! across a crash: killed with SIGKILL between messages and started again, it still
//! reads the official libsignal's group messages, refuses the ones it already read, and
//! its own sending chain continues where it was (libsignal, as the receiver, would
//! refuse a reused iteration as a duplicate).

use serde_json::{Value, json};

use crate::harness::Node;

const CONFIDE_NAME: &str = "c0ff1de0-5555-4000-8000-00000000c0f1";
const LIBSIGNAL_NAME: &str = "11b51911-6666-4000-8000-0000000011b5";
const KEY_HEX: &str = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";

fn text(reply: &Value) -> &str {
    reply["text"]
        .as_str()
        .unwrap_or_else(|| panic!("text: {reply}"))
}

fn ciphertext(reply: &Value) -> Value {
    reply["ciphertext"].clone()
}

#[test]
fn persistent_peer_keeps_group_state_across_a_kill() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("peer.db");
    let confide_addr = json!({"name": CONFIDE_NAME, "device_id": 1});
    let libsignal_addr = json!({"name": LIBSIGNAL_NAME, "device_id": 1});

    let mut c = Node::spawn_confide_persistent(&db, KEY_HEX);
    c.ok(
        "generate_identity",
        json!({"name": CONFIDE_NAME, "device_id": 1, "registration_id": 77}),
    );
    let identity = c.ok("hello", json!({}))["identity_key"].clone();
    let mut l = Node::spawn_script("peer.js");
    l.ok(
        "generate_identity",
        json!({"name": LIBSIGNAL_NAME, "device_id": 1, "registration_id": 88}),
    );

    // Each side's sender key goes to the other.
    let theirs = l.ok("group_create", json!({}));
    let their_dist = theirs["distribution_id"].clone();
    c.ok(
        "group_process",
        json!({"sender": libsignal_addr, "skdm": theirs["skdm"]}),
    );
    let ours = c.ok("group_create", json!({}));
    let our_dist = ours["distribution_id"].clone();
    l.ok(
        "group_process",
        json!({"sender": confide_addr, "skdm": ours["skdm"]}),
    );

    let from_them: Vec<Value> = (0..6)
        .map(|i| {
            ciphertext(&l.ok(
                "group_encrypt",
                json!({"distribution_id": their_dist, "text": format!("from libsignal {i}")}),
            ))
        })
        .collect();
    for (i, m) in from_them.iter().enumerate().take(3) {
        let r = c.ok(
            "group_decrypt",
            json!({"sender": libsignal_addr, "ciphertext": m}),
        );
        assert_eq!(text(&r), format!("from libsignal {i}"));
    }
    let before: Vec<Value> = (0..3)
        .map(|i| {
            ciphertext(&c.ok(
                "group_encrypt",
                json!({"distribution_id": our_dist, "text": format!("from confide {i}")}),
            ))
        })
        .collect();

    // A crash, then the same command line again.
    c.kill();
    let mut c = Node::spawn_confide_persistent(&db, KEY_HEX);
    let hello = c.ok("hello", json!({}));
    assert_eq!(hello["name"], json!(CONFIDE_NAME), "{hello}");
    assert_eq!(hello["identity_key"], identity, "{hello}");

    // What was read stays read; what was not is still readable, out of order.
    for i in [5usize, 3, 4] {
        let r = c.ok(
            "group_decrypt",
            json!({"sender": libsignal_addr, "ciphertext": from_them[i]}),
        );
        assert_eq!(text(&r), format!("from libsignal {i}"));
    }
    for m in &from_them {
        let r = c.call(
            "group_decrypt",
            json!({"sender": libsignal_addr, "ciphertext": m}),
        );
        assert_eq!(r["ok"], json!(false), "replay accepted after restart: {r}");
        assert_eq!(r["code"], json!("DuplicateMessage"), "{r}");
    }

    // The sending chain continues: libsignal reads every message once, in any order,
    // and none of the new ones reuses an iteration of the old ones.
    let after: Vec<Value> = (3..6)
        .map(|i| {
            ciphertext(&c.ok(
                "group_encrypt",
                json!({"distribution_id": our_dist, "text": format!("from confide {i}")}),
            ))
        })
        .collect();
    let all: Vec<&Value> = after.iter().chain(before.iter()).collect();
    for (m, want) in all.iter().zip([3, 4, 5, 0, 1, 2]) {
        let r = l.ok(
            "group_decrypt",
            json!({"sender": confide_addr, "ciphertext": m}),
        );
        assert_eq!(text(&r), format!("from confide {want}"));
    }
    for m in &all {
        let r = l.call(
            "group_decrypt",
            json!({"sender": confide_addr, "ciphertext": m}),
        );
        assert_eq!(r["ok"], json!(false), "libsignal read a message twice: {r}");
    }
}
