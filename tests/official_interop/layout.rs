//! `group_create`'s `layout`: confide's peer makes a chain in either layout (and its
//! messages follow the chain's), libsignal's peer, which has only the current one,
//! refuses `"legacy"`, and both refuse an unknown layout as a bad request.

use confide::group::{Layout, SenderKeyDistributionMessage, SenderKeyMessage};
use serde_json::{Value, json};

use crate::harness::Node;

const NAME: &str = "c0ff1de0-4444-4000-8000-00000000c0f4";

fn unhex(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().expect("hex string")).expect("hex")
}

fn started(mut p: Node) -> Node {
    p.ok("generate_identity", json!({"name": NAME, "device_id": 1}));
    p
}

#[test]
fn peer_group_layouts_confide() {
    let mut p = started(Node::spawn_confide());
    for (layout, dist) in [
        (Layout::Legacy, "0f0f0f0f-0000-4000-8000-0000000000a1"),
        (Layout::Current, "0f0f0f0f-0000-4000-8000-0000000000a2"),
    ] {
        let name = match layout {
            Layout::Legacy => "legacy",
            _ => "current",
        };
        let r = p.ok(
            "group_create",
            json!({"distribution_id": dist, "layout": name}),
        );
        let skdm = SenderKeyDistributionMessage::parse(&unhex(&r["skdm"]), layout).unwrap();
        assert_eq!(skdm.layout(), layout, "{r}");
        let m = p.ok(
            "group_encrypt",
            json!({"distribution_id": dist, "text": "in my layout"}),
        );
        let m = SenderKeyMessage::parse(&unhex(&m["ciphertext"]), layout).unwrap();
        assert_eq!((m.layout(), m.chain_id()), (layout, skdm.chain_id()));
    }
    // The current layout is the default, and parses as nothing else.
    let r = p.ok(
        "group_create",
        json!({"distribution_id": "0f0f0f0f-0000-4000-8000-0000000000a3"}),
    );
    let skdm = unhex(&r["skdm"]);
    assert_eq!(
        SenderKeyDistributionMessage::parse(&skdm, Layout::Current)
            .unwrap()
            .layout(),
        Layout::Current
    );
    let r = p.call("group_create", json!({"layout": "sideways"}));
    assert_eq!(
        (r["ok"].clone(), r["code"].clone()),
        (json!(false), json!("BadRequest")),
        "{r}"
    );
}

#[test]
fn peer_group_layouts_libsignal() {
    let mut p = started(Node::spawn_script("peer.js"));
    let r = p.call("group_create", json!({"layout": "legacy"}));
    assert_eq!(r["ok"], json!(false), "{r}");
    let r = p.call("group_create", json!({"layout": "sideways"}));
    assert_eq!(
        (r["ok"].clone(), r["code"].clone()),
        (json!(false), json!("BadRequest")),
        "{r}"
    );
    p.ok("group_create", json!({"layout": "current"}));
}
