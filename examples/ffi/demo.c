/* Two confide devices set up a session and talk through the C ABI.
 * Built and run by tests/ffi.rs; run under valgrind by .ci/run. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "confide.h"

static int check(int32_t status, const char *what) {
  if (status != CONFIDE_OK) {
    const char *msg = confide_last_error_message();
    fprintf(stderr, "%s failed: code %d (%s)\n", what, status, msg ? msg : "?");
  }
  return status;
}

static uint64_t now_ms(void) {
  struct timespec ts;
  timespec_get(&ts, TIME_UTC);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int main(void) {
  int rc = 1;
  ConfideDevice *alice = NULL, *bob = NULL;
  ConfideBuffer bundle = {0}, first = {0}, reply = {0}, read = {0}, corrupt_out = {0};
  uint8_t type = 0;

  printf("confide %s\n", confide_version());
  if (check(confide_device_new(1, &alice), "alice") || check(confide_device_new(1, &bob), "bob"))
    goto done;

  /* Bob publishes a bundle; Alice starts a session from it. */
  if (check(confide_device_new_bundle(bob, 1, 100, now_ms(), &bundle), "bundle")) goto done;
  if (check(confide_process_bundle(alice, "bob", 1, bundle.data, bundle.len, now_ms()),
            "process_bundle"))
    goto done;

  const char *hello = "hello from C";
  if (check(confide_encrypt(alice, "bob", 1, (const uint8_t *)hello, strlen(hello), &type, &first),
            "encrypt"))
    goto done;
  printf("alice sent type %u, %zu bytes\n", type, first.len);
  if (check(confide_decrypt(bob, "alice", 1, type, first.data, first.len, &read), "decrypt"))
    goto done;
  printf("bob read: %.*s\n", (int)read.len, (const char *)read.data);
  confide_buffer_free(read);
  read = (ConfideBuffer){0};

  /* A replay is refused with a typed code and changes nothing. */
  int32_t status = confide_decrypt(bob, "alice", 1, type, first.data, first.len, &read);
  printf("replay refused: code %d\n", status);
  if (status != CONFIDE_ERR_DUPLICATE_MESSAGE) goto done;

  const char *answer = "hi C, Bob here";
  if (check(confide_encrypt(bob, "alice", 1, (const uint8_t *)answer, strlen(answer), &type, &reply),
            "encrypt reply"))
    goto done;

  /* A corrupted copy is refused; the genuine message still decrypts afterwards. */
  reply.data[reply.len - 1] ^= 0x01;
  status = confide_decrypt(alice, "bob", 1, type, reply.data, reply.len, &corrupt_out);
  printf("corrupted message refused: code %d (%s)\n", status, confide_last_error_message());
  if (status != CONFIDE_ERR_INVALID_MESSAGE) goto done;
  reply.data[reply.len - 1] ^= 0x01;
  if (check(confide_decrypt(alice, "bob", 1, type, reply.data, reply.len, &read), "decrypt reply"))
    goto done;
  printf("alice read: %.*s\n", (int)read.len, (const char *)read.data);

  /* Null handles are errors, not crashes. */
  if (confide_encrypt(NULL, "bob", 1, NULL, 0, &type, &corrupt_out) != CONFIDE_ERR_INVALID_ARGUMENT)
    goto done;
  rc = 0;

done:
  confide_buffer_free(bundle);
  confide_buffer_free(first);
  confide_buffer_free(reply);
  confide_buffer_free(read);
  confide_buffer_free(corrupt_out);
  confide_device_free(alice);
  confide_device_free(bob);
  return rc;
}
