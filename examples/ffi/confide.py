"""Two confide devices talk through the C ABI from Python (ctypes, standard library only).

Usage: python3 examples/ffi/confide.py path/to/libconfide_ffi.so
"""

import ctypes
import sys
import time

OK = 0
ERR_INVALID_MESSAGE = 2
ERR_DUPLICATE_MESSAGE = 3


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
        sigs = {
            "confide_device_new": [ctypes.c_uint32, ctypes.POINTER(dev)],
            "confide_device_new_bundle": [dev, ctypes.c_uint32, ctypes.c_uint32, ctypes.c_uint64, buf_p],
            "confide_process_bundle": [dev, ctypes.c_char_p, ctypes.c_uint32, ctypes.c_char_p,
                                       ctypes.c_size_t, ctypes.c_uint64],
            "confide_encrypt": [dev, ctypes.c_char_p, ctypes.c_uint32, ctypes.c_char_p, ctypes.c_size_t,
                                ctypes.POINTER(ctypes.c_uint8), buf_p],
            "confide_decrypt": [dev, ctypes.c_char_p, ctypes.c_uint32, ctypes.c_uint8, ctypes.c_char_p,
                                ctypes.c_size_t, buf_p],
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
    def __init__(self, lib, device_id=1):
        self.lib = lib
        self.handle = ctypes.c_void_p()
        lib.call("confide_device_new", device_id, ctypes.byref(self.handle))

    def close(self):
        self.lib.lib.confide_device_free(self.handle)

    def bundle(self, signed_id, prekey_id):
        buf = Buffer()
        self.lib.call("confide_device_new_bundle", self.handle, signed_id, prekey_id, now_ms(), ctypes.byref(buf))
        return self.lib.take(buf)

    def process_bundle(self, name, device_id, bundle):
        self.lib.call("confide_process_bundle", self.handle, name.encode(), device_id, bundle, len(bundle), now_ms())

    def encrypt(self, name, device_id, plaintext):
        buf, kind = Buffer(), ctypes.c_uint8()
        self.lib.call("confide_encrypt", self.handle, name.encode(), device_id, plaintext, len(plaintext),
                      ctypes.byref(kind), ctypes.byref(buf))
        return kind.value, self.lib.take(buf)

    def decrypt(self, name, device_id, kind, message):
        buf = Buffer()
        self.lib.call("confide_decrypt", self.handle, name.encode(), device_id, kind, message, len(message),
                      ctypes.byref(buf))
        return self.lib.take(buf)


def now_ms():
    return int(time.time() * 1000)


def main(path):
    lib = Library(path)
    print("confide", lib.lib.confide_version().decode())
    alice, bob = Device(lib), Device(lib)
    try:
        alice.process_bundle("bob", 1, bob.bundle(1, 100))
        kind, msg = alice.encrypt("bob", 1, b"hello from Python")
        print("bob read:", bob.decrypt("alice", 1, kind, msg).decode())
        try:
            bob.decrypt("alice", 1, kind, msg)
            raise SystemExit("replay was accepted")
        except ConfideError as e:
            assert e.code == ERR_DUPLICATE_MESSAGE, e
            print("replay refused: code", e.code)
        kind, reply = bob.encrypt("alice", 1, b"hi Python")
        bad = bytearray(reply)
        bad[-1] ^= 1
        try:
            alice.decrypt("bob", 1, kind, bytes(bad))
            raise SystemExit("corrupted message was accepted")
        except ConfideError as e:
            assert e.code == ERR_INVALID_MESSAGE, e
            print("corrupted message refused: code", e.code)
        print("alice read:", alice.decrypt("bob", 1, kind, reply).decode())
    finally:
        alice.close()
        bob.close()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    main(sys.argv[1])
