/* SHA-256 and base64 from OpenSSL's libcrypto, which is opened with dlopen
 * the first time one of these is called, not linked.
 *
 * Mapping and relocating libcrypto (21,000 relocations) costs every lazybox
 * process about 3 ms before main on the machines we measure, and most
 * commands (create, start, exec, ps, rm, mount) never hash anything. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "util.h"

typedef struct lbx_sha256 lbx_sha256;

/* A running SHA-256. If libcrypto cannot be loaded, these print one line
 * naming the library and the reason and exit with 127, as the dynamic loader
 * would have done at start when it was linked. */
lbx_sha256 *lbx_sha256_new(void);
void lbx_sha256_update(lbx_sha256 *c, const void *data, size_t len);
/* Writes the digest and starts the context over. */
void lbx_sha256_final(lbx_sha256 *c, uint8_t md[32]);
void lbx_sha256_free(lbx_sha256 *c);
void lbx_sha256_freep(lbx_sha256 **c);
#define _cleanup_sha256_ _cleanup_(lbx_sha256_freep)

/* The digest of one buffer. */
void lbx_sha256_buf(const void *data, size_t len, uint8_t md[32]);

/* Base64 without line breaks. encode writes 4 * ((n + 2) / 3) bytes and a
 * terminator and returns the length; decode returns the decoded length
 * (padding included, as OpenSSL's EVP_DecodeBlock) or -1 on bad input. */
int lbx_base64_encode(char *out, const void *in, size_t n);
int lbx_base64_decode(void *out, const char *in, size_t n);
