"""confide's C ABI from Python (ctypes, standard library only): an importable module.

    import confide
    lib = confide.Library("target/release/examples/libconfide_ffi.so")
    with confide.Device.open(lib, "alice.db", key, "alice") as alice:
        ...

Every call raises `ConfideError` (with the `CONFIDE_ERR_*` code) on failure; every buffer
confide returns is copied and wiped at once. `demo.py` beside this file uses it.
"""

import ctypes
import os

OK = 0
ERR_INVALID_ARGUMENT = 1
ERR_INVALID_MESSAGE = 2
ERR_DUPLICATE_MESSAGE = 3
ERR_NO_SESSION = 4
ERR_UNTRUSTED_IDENTITY = 5
ERR_WRONG_KEY = 11
ERR_NOT_FOUND = 12
ERR_INVALID_CERTIFICATE = 13
ERR_CERTIFICATE_EXPIRED = 14
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
            "confide_device_publish_bundle": [dev, buf_p],
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
        }
        # Only in a library built with the cargo feature `ffi-testing`.
        if hasattr(lib, "confide_test_sender_certificate"):
            sigs["confide_test_sender_certificate"] = [dev, data, data, u32, ctypes.c_uint64, buf_p,
                                                       ctypes.c_char_p]
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

    def version(self):
        return self.lib.confide_version().decode()

    def v2_for_recipient(self, message, name):
        """The server's split of a v2 multi-recipient message."""
        return self.out_buffer("confide_sealed_v2_for_recipient", message, len(message), name.encode())


class Device:
    """One device handle: `Device.open` (a SQLite file sealed under a 32-byte key) or
    `Device.in_memory`. `close` (or leaving a `with` block) frees it; the file stays."""

    def __init__(self, lib, name, device_id=1, path=None, key=None):
        self.lib = lib
        self.handle = ctypes.c_void_p()
        if path is None:
            lib.call("confide_device_new_in_memory", name.encode(), device_id, ctypes.byref(self.handle))
        else:
            lib.call("confide_device_open", os.fsencode(path), key, len(key), name.encode(), device_id,
                     ctypes.byref(self.handle))

    @classmethod
    def open(cls, lib, path, key, name, device_id=1):
        """A persistent device: created on first open, resumed after."""
        return cls(lib, name, device_id, path=path, key=key)

    @classmethod
    def in_memory(cls, lib, name, device_id=1):
        """A device with a fresh identity, gone at `close`."""
        return cls(lib, name, device_id)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if self.handle:
            self.lib.lib.confide_device_free(self.handle)
        self.handle = ctypes.c_void_p()

    def publish_bundle(self):
        """New prekeys under ids the device allocates; the bundle bytes to publish."""
        return self.lib.out_buffer("confide_device_publish_bundle", self.handle)

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
        """Test helper (a library built with feature `ffi-testing`): (certificate, trust root)."""
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
