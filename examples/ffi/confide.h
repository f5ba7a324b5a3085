#ifndef CONFIDE_H
#define CONFIDE_H

/* Generated from examples/ffi/lib.rs by cbindgen; tests/ffi.rs keeps it in sync. */

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

// Success.
#define CONFIDE_OK 0

// A required pointer was null, or a string was not UTF-8.
#define CONFIDE_ERR_INVALID_ARGUMENT 1

// Bytes that are not a valid message, bundle or key; or a message that failed
// authentication.
#define CONFIDE_ERR_INVALID_MESSAGE 2

// The message was already decrypted.
#define CONFIDE_ERR_DUPLICATE_MESSAGE 3

// No session with this address.
#define CONFIDE_ERR_NO_SESSION 4

// The remote identity key differs from the trusted one.
#define CONFIDE_ERR_UNTRUSTED_IDENTITY 5

// A bundle's signed prekey signature is invalid.
#define CONFIDE_ERR_INVALID_SIGNATURE 6

// A prekey message names a prekey this device does not have.
#define CONFIDE_ERR_UNKNOWN_PREKEY 7

// Any other failure (see the message).
#define CONFIDE_ERR_OTHER 8

// A bug in confide: a panic was caught at the boundary.
#define CONFIDE_ERR_PANIC 9

// One device: its identity, prekeys and sessions, kept in memory.
typedef struct ConfideDevice ConfideDevice;

// Bytes returned by confide; free with `confide_buffer_free`.
typedef struct ConfideBuffer {
  // The bytes, or null when `len` is 0.
  uint8_t *data;
  // Their number.
  size_t len;
} ConfideBuffer;

#ifdef __cplusplus
extern "C" {
#endif // __cplusplus

// Creates a device with a fresh identity. `*out` receives the handle; free it with
// `confide_device_free`. Thread-safe.
//
// # Safety
// `out` must be writable.
int32_t confide_device_new(uint32_t device_id, struct ConfideDevice **out);

// Frees a device (null is ignored). No other call on it may run concurrently or later.
//
// # Safety
// `device` is null or a handle from `confide_device_new` not yet freed.
void confide_device_free(struct ConfideDevice *device);

// Writes the device's 33-byte public identity key into `*out`. Thread-safe.
//
// # Safety
// `device` is a live handle; `out` is writable.
int32_t confide_device_identity_key(const struct ConfideDevice *device, struct ConfideBuffer *out);

// Makes a new signed prekey (and a one-time prekey unless `prekey_id` is 0), keeps
// them, and writes the bundle to publish (`PreKeyBundle::to_bytes`) into `*out`.
// Thread-safe.
//
// # Safety
// `device` is a live handle; `out` is writable.
int32_t confide_device_new_bundle(const struct ConfideDevice *device,
                                  uint32_t signed_prekey_id,
                                  uint32_t prekey_id,
                                  uint64_t now_ms,
                                  struct ConfideBuffer *out);

// Starts a session with (`name`, `remote_device_id`) from its bundle bytes. Serialize
// calls for the same address.
//
// # Safety
// `device` is a live handle; `name` is NUL-terminated; `bundle` holds `bundle_len` bytes.
int32_t confide_process_bundle(const struct ConfideDevice *device,
                               const char *name,
                               uint32_t remote_device_id,
                               const uint8_t *bundle,
                               size_t bundle_len,
                               uint64_t now_ms);

// Encrypts `plaintext` for (`name`, `remote_device_id`). Writes the message type
// (2 or 3) to `*out_type` and the message bytes to `*out`. Serialize calls for the same
// address.
//
// # Safety
// `device` is a live handle; `name` is NUL-terminated; `plaintext` holds
// `plaintext_len` bytes; `out_type` and `out` are writable.
int32_t confide_encrypt(const struct ConfideDevice *device,
                        const char *name,
                        uint32_t remote_device_id,
                        const uint8_t *plaintext,
                        size_t plaintext_len,
                        uint8_t *out_type,
                        struct ConfideBuffer *out);

// Decrypts a message of `message_type` (2 or 3) from (`name`, `remote_device_id`) and
// writes the plaintext to `*out`. On any failure no state changes. Serialize calls for
// the same address.
//
// # Safety
// `device` is a live handle; `name` is NUL-terminated; `message` holds `message_len`
// bytes; `out` is writable.
int32_t confide_decrypt(const struct ConfideDevice *device,
                        const char *name,
                        uint32_t remote_device_id,
                        uint8_t message_type,
                        const uint8_t *message,
                        size_t message_len,
                        struct ConfideBuffer *out);

// Frees a buffer returned by confide (a zeroed buffer is ignored). Thread-safe.
//
// # Safety
// `buffer` came from confide and was not freed before.
void confide_buffer_free(struct ConfideBuffer buffer);

// The last failure on this thread, or null after a success. Valid until the next
// confide call on this thread; do not free it.
const char *confide_last_error_message(void);

// confide's version, a static NUL-terminated string.
const char *confide_version(void);

#ifdef __cplusplus
}  // extern "C"
#endif  // __cplusplus

#endif  /* CONFIDE_H */
