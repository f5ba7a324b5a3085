"""Two confide devices talk through the C ABI from Python, with the `confide` module.

Alice keeps her state in a SQLite file and is closed and reopened half-way; Bob lives in
memory. Then three devices named by UUIDs (Ben's on SQLite) form a group and exchange
sealed-sender messages (v1 and v2). The library must be built with the cargo feature
`ffi-testing` (the demo certifies its own devices). Usage:

    python3 -B examples/ffi/demo.py path/to/libconfide_ffi.so
"""

import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from confide import (ConfideError, Device, Library, ERR_DUPLICATE_MESSAGE,  # noqa: E402
                     ERR_INVALID_CERTIFICATE, ERR_INVALID_MESSAGE, ERR_NO_SENDER_KEY, ERR_WRONG_KEY,
                     MESSAGE_TYPE_SENDER_KEY, SEALED_SENDER_V1, SEALED_SENDER_V2)


def expect_error(code, fn, *args):
    try:
        fn(*args)
    except ConfideError as e:
        assert e.code == code, e
        return e
    raise SystemExit(f"{fn.__name__} was expected to fail with code {code}")


def refused(what, code, fn, *args):
    """`expect_error`, then prints how the call was refused."""
    print(f"{what}: code", expect_error(code, fn, *args).code)


ANN = "9d0652a3-dcc3-4d11-975f-74d61598733f"
BEN = "796abedb-ca4e-4f18-8803-1fde5b921f9f"
CAT = "e80f7bbe-5b94-471e-bd8c-2173654ea3d1"


def send_pairwise(sender, sender_name, receiver, receiver_name, data):
    kind, wire = sender.encrypt(receiver_name, 1, data)
    return receiver.decrypt(sender_name, 1, kind, wire)[0]


def group_and_sealed(lib, tmp, key):
    """Ann, Ben and Cat (named by UUIDs, as sealed sender needs; Ben on SQLite): a group, then
    sealed sender."""
    ann, cat = Device(lib, ANN), Device(lib, CAT)
    ben = Device(lib, BEN, path=os.path.join(tmp, "ben.db"), key=key)
    try:
        ann.start_session(BEN, 1, ben.publish_bundle())
        ann.start_session(CAT, 1, cat.publish_bundle())
        group = bytes(range(0xA0, 0xB0))
        skdm = ann.group_distribution(group)
        for member, name in ((ben, BEN), (cat, CAT)):
            member.group_process(ANN, 1, send_pairwise(ann, ANN, member, name, skdm))
        msg = ann.group_encrypt(group, b"hello group from Python")
        text, redelivered = ben.group_decrypt(ANN, 1, msg)
        assert not redelivered
        print("group: ben read:", text.decode())
        print("group: cat read:", cat.group_decrypt(ANN, 1, msg)[0].decode())
        # Cat lives in memory and keeps no plaintext: a repeat is a duplicate at once.
        refused("group replay on cat refused", ERR_DUPLICATE_MESSAGE, cat.group_decrypt, ANN, 1, msg)
        # Ben's SQLite store kept the plaintext: a redelivery, until he acknowledges it.
        text, redelivered = ben.group_decrypt(ANN, 1, msg)
        assert redelivered and text == b"hello group from Python"
        print("group: redelivered to ben:", text.decode())
        refused("malformed group acknowledgement refused", ERR_INVALID_MESSAGE, ben.group_acknowledge, ANN, 1,
                b"\x33not a group message")
        assert not cat.group_acknowledge(ANN, 1, msg), "an in-memory device stores nothing"
        assert ben.group_acknowledge(ANN, 1, msg)
        refused("group message acknowledged, then refused", ERR_DUPLICATE_MESSAGE, ben.group_decrypt, ANN, 1, msg)

        root_private, server_private = bytes(range(32)), bytes(range(32, 64))
        expires = 4102444800000  # 2100-01-01
        cert_ann, root = ann.test_certificate(root_private, server_private, 1, expires)
        cert_ben, _ = ben.test_certificate(root_private, server_private, 1, expires)

        sealed = ann.seal(BEN, 1, cert_ann, b"sealed v1 from Python", SEALED_SENDER_V1)
        bad = bytearray(sealed)
        bad[len(bad) // 2] ^= 1
        refused("corrupted sealed message refused", ERR_INVALID_MESSAGE, ben.unseal, root, bytes(bad))
        foreign_root = root[:5] + bytes([root[5] ^ 1]) + root[6:]
        refused("foreign trust root refused", ERR_INVALID_CERTIFICATE, ben.unseal, foreign_root, sealed)
        sender, device, _, _, text, redelivered = ben.unseal(root, sealed)
        assert (sender, device, redelivered) == (ANN, 1, False)
        print("ben unsealed (v1):", text.decode())
        assert ben.unseal(root, sealed)[5], "a SQLite device redelivers until acknowledged"
        assert ben.acknowledge_sealed(root, sealed)
        refused("sealed message acknowledged, then refused", ERR_DUPLICATE_MESSAGE, ben.unseal, root, sealed)

        multi = ben.seal(ANN, 1, cert_ben, b"sealed v2 from Python", SEALED_SENDER_V2)
        sender, _, _, _, text, _ = ann.unseal(root, lib.v2_for_recipient(multi, ANN))
        assert sender == BEN
        print("ann unsealed (v2):", text.decode())

        multi = ann.seal_group(group, b"demo-group", cert_ann, b"sealed to the group",
                               SEALED_SENDER_V2, [(BEN, 1), (CAT, 1)])
        copies = {}
        for member, label, uuid in ((ben, "ben", BEN), (cat, "cat", CAT)):
            copies[label] = lib.v2_for_recipient(multi, uuid)
            sender, _, kind, group_id, text, redelivered = member.unseal(root, copies[label])
            assert (sender, kind, group_id, redelivered) == (ANN, MESSAGE_TYPE_SENDER_KEY, b"demo-group",
                                                             False)
            print(f"{label} unsealed (group v2):", text.decode())
        refused("sealed group replay on cat refused", ERR_DUPLICATE_MESSAGE, cat.unseal, root, copies["cat"])
        assert not cat.acknowledge_sealed(root, copies["cat"]), "an in-memory device stores nothing"
        text, redelivered = ben.unseal(root, copies["ben"])[4:]
        assert redelivered and text == b"sealed to the group"
        print("ben got the sealed group message again:", text.decode())
        assert ben.acknowledge_sealed(root, copies["ben"])
        refused("sealed group message acknowledged, then refused", ERR_DUPLICATE_MESSAGE, ben.unseal, root,
                copies["ben"])

        # Cat leaves: a new chain for Ben only.
        ben.group_process(ANN, 1, send_pairwise(ann, ANN, ben, BEN, ann.group_rotate(group)))
        msg = ann.group_encrypt(group, b"cat has left")
        print("group: ben read after the rotation:", ben.group_decrypt(ANN, 1, msg)[0].decode())
        refused("cat, who left, refused", ERR_NO_SENDER_KEY, cat.group_decrypt, ANN, 1, msg)
    finally:
        for d in (ann, ben, cat):
            d.close()


def main(path):
    lib = Library(path)
    print("confide", lib.version())
    key = bytes(range(1, 33))
    with tempfile.TemporaryDirectory() as tmp:
        db = os.path.join(tmp, "alice.db")
        alice = Device(lib, "alice", path=db, key=key)
        bob = Device(lib, "bob")
        try:
            alice.start_session("bob", 1, bob.publish_bundle())
            kind, msg = alice.encrypt("bob", 1, b"hello from Python")
            print("bob read:", bob.decrypt("alice", 1, kind, msg)[0].decode())
            refused("replay refused", ERR_DUPLICATE_MESSAGE, bob.decrypt, "alice", 1, kind, msg)

            kind, reply = bob.encrypt("alice", 1, b"hi Python")
            text, redelivered = alice.decrypt("bob", 1, kind, reply)
            assert not redelivered
            text, redelivered = alice.decrypt("bob", 1, kind, reply)
            assert redelivered and text == b"hi Python"
            print("redelivered to alice:", text.decode())
            assert alice.acknowledge("bob", 1, kind, reply)
            expect_error(ERR_DUPLICATE_MESSAGE, alice.decrypt, "bob", 1, kind, reply)

            # Alice's app restarts.
            alice.close()
            refused("wrong store key refused", ERR_WRONG_KEY, Device, lib, "alice", 1, db, bytes(32))
            alice = Device(lib, "alice", path=db, key=key)
            assert alice.has_session("bob", 1)
            print("alice reopened: session with bob resumed")
            kind, msg = alice.encrypt("bob", 1, b"after the restart")
            print("bob read:", bob.decrypt("alice", 1, kind, msg)[0].decode())

            kind, reply = bob.encrypt("alice", 1, b"one more from Bob")
            bad = bytearray(reply)
            bad[-1] ^= 1
            refused("corrupted message refused", ERR_INVALID_MESSAGE, alice.decrypt, "bob", 1, kind, bytes(bad))
            print("alice read:", alice.decrypt("bob", 1, kind, reply)[0].decode())

            mine = alice.safety_number(b"alice", "bob", 1, b"bob")
            theirs = bob.safety_number(b"bob", "alice", 1, b"alice")
            assert mine == theirs and len(mine) == 60, (mine, theirs)
            print("safety number:", mine)
            group_and_sealed(lib, tmp, key)
        finally:
            alice.close()
            bob.close()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    main(sys.argv[1])
