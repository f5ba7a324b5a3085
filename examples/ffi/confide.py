"""Two confide devices talk through the C ABI from Python (ctypes, standard library only).

Alice keeps her state in a SQLite file and is closed and reopened half-way; Bob lives in
memory. Usage: python3 examples/ffi/confide.py path/to/libconfide_ffi.so
"""

import ctypes
import os
import sys
import tempfile

OK = 0
ERR_INVALID_MESSAGE = 2
ERR_DUPLICATE_MESSAGE = 3
ERR_WRONG_KEY = 11
SAFETY_NUMBER_SIZE = 61


class Buffer(ctypes.Structure):
    _fields_ = [("data", ctypes.POINTER(ctypes.c_uint8)), ("len", ctypes.c_size_t)]


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
        }
        for name, args in sigs.items():
            fn = getattr(lib, name)
            fn.argtypes = args
            fn.restype = ctypes.c_int32
        lib.confide_device_free.argtypes = [dev]
        lib.confide_device_free.restype = None
        lib.confide_buffer_free.argtypes = [Buffer]
        lib.confide_buffer_free.restype = None
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
        buf = Buffer()
        self.lib.call("confide_device_publish_bundle", self.handle, signed_id, prekey_id, ctypes.byref(buf))
        return self.lib.take(buf)

    def start_session(self, name, device_id, bundle):
        self.lib.call("confide_device_start_session", self.handle, name.encode(), device_id, bundle, len(bundle))

    def has_session(self, name, device_id):
        out = ctypes.c_bool()
        self.lib.call("confide_device_has_session", self.handle, name.encode(), device_id, ctypes.byref(out))
        return out.value

    def encrypt(self, name, device_id, plaintext):
        buf, kind = Buffer(), ctypes.c_uint8()
        self.lib.call("confide_device_encrypt", self.handle, name.encode(), device_id, plaintext, len(plaintext),
                      ctypes.byref(kind), ctypes.byref(buf))
        return kind.value, self.lib.take(buf)

    def decrypt(self, name, device_id, kind, message):
        """Returns (plaintext, redelivered)."""
        buf, redelivered = Buffer(), ctypes.c_bool()
        self.lib.call("confide_device_decrypt", self.handle, name.encode(), device_id, kind, message, len(message),
                      ctypes.byref(buf), ctypes.byref(redelivered))
        return self.lib.take(buf), redelivered.value

    def acknowledge(self, name, device_id, kind, message):
        found = ctypes.c_bool()
        self.lib.call("confide_device_acknowledge", self.handle, name.encode(), device_id, kind, message,
                      len(message), ctypes.byref(found))
        return found.value

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
            e = expect_error(ERR_DUPLICATE_MESSAGE, bob.decrypt, "alice", 1, kind, msg)
            print("replay refused: code", e.code)

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
            e = expect_error(ERR_WRONG_KEY, Device, lib, "alice", 1, db, bytes(32))
            print("wrong store key refused: code", e.code)
            alice = Device(lib, "alice", path=db, key=key)
            assert alice.has_session("bob", 1)
            print("alice reopened: session with bob resumed")
            kind, msg = alice.encrypt("bob", 1, b"after the restart")
            print("bob read:", bob.decrypt("alice", 1, kind, msg)[0].decode())

            kind, reply = bob.encrypt("alice", 1, b"one more from Bob")
            bad = bytearray(reply)
            bad[-1] ^= 1
            e = expect_error(ERR_INVALID_MESSAGE, alice.decrypt, "bob", 1, kind, bytes(bad))
            print("corrupted message refused: code", e.code)
            print("alice read:", alice.decrypt("bob", 1, kind, reply)[0].decode())

            mine = alice.safety_number(b"alice", "bob", 1, b"bob")
            theirs = bob.safety_number(b"bob", "alice", 1, b"alice")
            assert mine == theirs and len(mine) == 60, (mine, theirs)
            print("safety number:", mine)
        finally:
            alice.close()
            bob.close()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    main(sys.argv[1])
