"""Two confide devices talk through the C ABI from Python (ctypes, standard library only).

Alice keeps her state in a SQLite file and is closed and reopened half-way; Bob lives in
memory. Then three devices named by UUIDs (Ben's on SQLite) form a group and exchange
sealed-sender messages (v1 and v2). Usage: python3 examples/ffi/confide.py path/to/libconfide_ffi.so
"""

import ctypes
import os
import sys
import tempfile

OK = 0
ERR_INVALID_MESSAGE = 2
ERR_DUPLICATE_MESSAGE = 3
ERR_WRONG_KEY = 11
ERR_INVALID_CERTIFICATE = 13
ERR_NO_SENDER_KEY = 15
SAFETY_NUMBER_SIZE = 61
PUBLIC_KEY_LEN = 33
SEALED_SENDER_V1 = 1
SEALED_SENDER_V2 = 2
MESSAGE_TYPE_SENDER_KEY = 7


class Buffer(ctypes.Structure):
    _fields_ = [("data", ctypes.POINTER(ctypes.c_uint8)), ("len", ctypes.c_size_t)]


class Recipient(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("device_id", ctypes.c_uint32)]


class Unsealed(ctypes.Structure):
    _fields_ = [("sender_name", ctypes.c_void_p), ("sender_device", ctypes.c_uint32),
                ("content_type", ctypes.c_uint8), ("content_hint", ctypes.c_uint32),
                ("group_id", Buffer), ("plaintext", Buffer), ("redelivered", ctypes.c_bool)]


class ConfideError(Exception):
    def __init__(self, code, message):
        super().__init__(f"confide error {code}: {message}")
        self.code = code


class Library:
    """Thin, typed wrappers; every buffer confide returns is copied and freed at once."""

    def __init__(self, path):
        lib = ctypes.CDLL(path)
        dev = ctypes.c_void_p
        buf_p = ctypes.POINTER(Buffer)
        c_bool_p = ctypes.POINTER(ctypes.c_bool)
        u8, u32, size, text, data = (ctypes.c_uint8, ctypes.c_uint32, ctypes.c_size_t,
                                     ctypes.c_char_p, ctypes.c_char_p)
        sigs = {
            "confide_device_open": [text, data, size, text, u32, ctypes.POINTER(dev)],
            "confide_device_new_in_memory": [text, u32, ctypes.POINTER(dev)],
            "confide_device_publish_bundle": [dev, u32, u32, buf_p],
            "confide_device_start_session": [dev, text, u32, data, size],
            "confide_device_has_session": [dev, text, u32, c_bool_p],
            "confide_device_encrypt": [dev, text, u32, data, size, ctypes.POINTER(u8), buf_p],
            "confide_device_decrypt": [dev, text, u32, u8, data, size, buf_p, c_bool_p],
            "confide_device_acknowledge": [dev, text, u32, u8, data, size, c_bool_p],
            "confide_device_safety_number": [dev, data, size, text, u32, data, size,
                                             ctypes.c_char_p, buf_p],
            "confide_device_group_distribution": [dev, data, buf_p],
            "confide_device_group_rotate": [dev, data, buf_p],
            "confide_device_group_process": [dev, text, u32, data, size],
            "confide_device_group_encrypt": [dev, data, data, size, buf_p],
            "confide_device_group_decrypt": [dev, text, u32, data, size, buf_p, c_bool_p],
            "confide_device_group_acknowledge": [dev, text, u32, data, size, c_bool_p],
            "confide_device_seal_message": [dev, text, u32, data, size, data, size, u8, buf_p],
            "confide_device_seal_group_message": [dev, data, data, size, data, size, data, size, u8,
                                                  ctypes.POINTER(Recipient), size, buf_p],
            "confide_sealed_v2_for_recipient": [data, size, text, buf_p],
            "confide_device_unseal": [dev, data, size, data, size, ctypes.POINTER(Unsealed)],
            "confide_device_acknowledge_sealed": [dev, data, size, data, size, c_bool_p],
            "confide_test_sender_certificate": [dev, data, data, u32, ctypes.c_uint64, buf_p,
                                                ctypes.c_char_p],
        }
        for name, args in sigs.items():
            fn = getattr(lib, name)
            fn.argtypes = args
            fn.restype = ctypes.c_int32
        lib.confide_device_free.argtypes = [dev]
        lib.confide_device_free.restype = None
        lib.confide_buffer_free.argtypes = [Buffer]
        lib.confide_buffer_free.restype = None
        lib.confide_unsealed_free.argtypes = [ctypes.POINTER(Unsealed)]
        lib.confide_unsealed_free.restype = None
        lib.confide_last_error_message.restype = ctypes.c_char_p
        lib.confide_version.restype = ctypes.c_char_p
        self.lib = lib

    def call(self, name, *args):
        code = getattr(self.lib, name)(*args)
        if code != OK:
            msg = self.lib.confide_last_error_message()
            raise ConfideError(code, msg.decode() if msg else "?")

    def take(self, buf):
        data = ctypes.string_at(buf.data, buf.len) if buf.len else b""
        self.lib.confide_buffer_free(buf)
        return data

    def out_buffer(self, name, *args):
        """Calls `name` with `args` and a trailing output buffer; returns its bytes."""
        buf = Buffer()
        self.call(name, *args, ctypes.byref(buf))
        return self.take(buf)

    def out_flag(self, name, *args):
        """Calls `name` with `args` and a trailing output bool; returns it."""
        flag = ctypes.c_bool()
        self.call(name, *args, ctypes.byref(flag))
        return flag.value

    def out_decrypted(self, name, *args):
        """Calls a decrypt function `name` with `args`; returns (plaintext, redelivered)."""
        buf, redelivered = Buffer(), ctypes.c_bool()
        self.call(name, *args, ctypes.byref(buf), ctypes.byref(redelivered))
        return self.take(buf), redelivered.value

    def v2_for_recipient(self, message, name):
        """The server's split of a v2 multi-recipient message."""
        return self.out_buffer("confide_sealed_v2_for_recipient", message, len(message), name.encode())


class Device:
    """One handle; `close` frees it (a SQLite file stays on disk)."""

    def __init__(self, lib, name, device_id=1, path=None, key=None):
        self.lib = lib
        self.handle = ctypes.c_void_p()
        if path is None:
            lib.call("confide_device_new_in_memory", name.encode(), device_id, ctypes.byref(self.handle))
        else:
            lib.call("confide_device_open", os.fsencode(path), key, len(key), name.encode(), device_id,
                     ctypes.byref(self.handle))

    def close(self):
        self.lib.lib.confide_device_free(self.handle)
        self.handle = ctypes.c_void_p()

    def publish_bundle(self, signed_id, prekey_id):
        return self.lib.out_buffer("confide_device_publish_bundle", self.handle, signed_id, prekey_id)

    def start_session(self, name, device_id, bundle):
        self.lib.call("confide_device_start_session", self.handle, name.encode(), device_id, bundle, len(bundle))

    def has_session(self, name, device_id):
        return self.lib.out_flag("confide_device_has_session", self.handle, name.encode(), device_id)

    def encrypt(self, name, device_id, plaintext):
        buf, kind = Buffer(), ctypes.c_uint8()
        self.lib.call("confide_device_encrypt", self.handle, name.encode(), device_id, plaintext, len(plaintext),
                      ctypes.byref(kind), ctypes.byref(buf))
        return kind.value, self.lib.take(buf)

    def decrypt(self, name, device_id, kind, message):
        """Returns (plaintext, redelivered)."""
        return self.lib.out_decrypted("confide_device_decrypt", self.handle, name.encode(), device_id, kind,
                                      message, len(message))

    def acknowledge(self, name, device_id, kind, message):
        return self.lib.out_flag("confide_device_acknowledge", self.handle, name.encode(), device_id, kind,
                                 message, len(message))

    # Groups: `group` is the 16-byte distribution id.
    def group_distribution(self, group):
        return self.lib.out_buffer("confide_device_group_distribution", self.handle, group)

    def group_rotate(self, group):
        return self.lib.out_buffer("confide_device_group_rotate", self.handle, group)

    def group_process(self, name, device_id, message):
        self.lib.call("confide_device_group_process", self.handle, name.encode(), device_id, message,
                      len(message))

    def group_encrypt(self, group, plaintext):
        return self.lib.out_buffer("confide_device_group_encrypt", self.handle, group, plaintext,
                                   len(plaintext))

    def group_decrypt(self, name, device_id, message):
        """Returns (plaintext, redelivered)."""
        return self.lib.out_decrypted("confide_device_group_decrypt", self.handle, name.encode(), device_id,
                                      message, len(message))

    def group_acknowledge(self, name, device_id, message):
        return self.lib.out_flag("confide_device_group_acknowledge", self.handle, name.encode(), device_id,
                                 message, len(message))

    # Sealed sender.
    def test_certificate(self, root_private, server_private, key_id, expires_ms):
        """Test helper: (certificate bytes, trust root public key)."""
        root, buf = ctypes.create_string_buffer(PUBLIC_KEY_LEN), Buffer()
        self.lib.call("confide_test_sender_certificate", self.handle, root_private, server_private, key_id,
                      expires_ms, ctypes.byref(buf), root)
        return self.lib.take(buf), root.raw

    def seal(self, name, device_id, certificate, plaintext, version):
        return self.lib.out_buffer("confide_device_seal_message", self.handle, name.encode(), device_id,
                                   certificate, len(certificate), plaintext, len(plaintext), version)

    def seal_group(self, group, group_id, certificate, plaintext, version, members):
        recipients = (Recipient * len(members))(*[Recipient(n.encode(), d) for n, d in members])
        return self.lib.out_buffer("confide_device_seal_group_message", self.handle, group, group_id,
                                   len(group_id), certificate, len(certificate), plaintext,
                                   len(plaintext), version, recipients, len(members))

    def unseal(self, trust_root, message):
        """Returns (sender name, sender device, content type, group id, plaintext, redelivered)."""
        u = Unsealed()
        self.lib.call("confide_device_unseal", self.handle, trust_root, len(trust_root), message,
                      len(message), ctypes.byref(u))
        try:
            return (ctypes.string_at(u.sender_name).decode(), u.sender_device, u.content_type,
                    ctypes.string_at(u.group_id.data, u.group_id.len) if u.group_id.len else b"",
                    ctypes.string_at(u.plaintext.data, u.plaintext.len), u.redelivered)
        finally:
            self.lib.lib.confide_unsealed_free(ctypes.byref(u))

    def acknowledge_sealed(self, trust_root, message):
        return self.lib.out_flag("confide_device_acknowledge_sealed", self.handle, trust_root, len(trust_root),
                                 message, len(message))

    def safety_number(self, local_id, name, device_id, remote_id):
        digits = ctypes.create_string_buffer(SAFETY_NUMBER_SIZE)
        self.lib.call("confide_device_safety_number", self.handle, local_id, len(local_id), name.encode(),
                      device_id, remote_id, len(remote_id), digits, None)
        return digits.value.decode()


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
        ann.start_session(BEN, 1, ben.publish_bundle(1, 1))
        ann.start_session(CAT, 1, cat.publish_bundle(1, 1))
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
    print("confide", lib.lib.confide_version().decode())
    key = bytes(range(1, 33))
    with tempfile.TemporaryDirectory() as tmp:
        db = os.path.join(tmp, "alice.db")
        alice = Device(lib, "alice", path=db, key=key)
        bob = Device(lib, "bob")
        try:
            alice.start_session("bob", 1, bob.publish_bundle(1, 100))
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
