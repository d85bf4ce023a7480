/* libcrypto through dlopen: see crypto.h for why. */
#include "crypto.h"

#include <dlfcn.h>
#include <openssl/evp.h>
#include <openssl/opensslv.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#if OPENSSL_VERSION_MAJOR == 3
#define CRYPTO_SONAME "libcrypto.so.3"
#else
#error "lazybox opens libcrypto.so.3 at run time: build against OpenSSL 3"
#endif

/* The libcrypto functions lazybox calls, resolved once. */
static struct {
  __typeof__(EVP_MD_CTX_new) *ctx_new;
  __typeof__(EVP_MD_CTX_free) *ctx_free;
  __typeof__(EVP_DigestInit_ex) *init;
  __typeof__(EVP_DigestUpdate) *update;
  __typeof__(EVP_DigestFinal_ex) *final;
  __typeof__(EVP_EncodeBlock) *encode;
  __typeof__(EVP_DecodeBlock) *decode;
  const EVP_MD *sha256;
} ev;
static pthread_once_t crypto_once = PTHREAD_ONCE_INIT;

static _Noreturn void
crypto_fail(const char *why)
{
  /* No error object can carry this: the install is broken, as when the
   * dynamic loader cannot find a linked library (and then exits with 127). */
  fprintf(stderr, "lazybox: cannot load %s (%s), needed for sha256 digests\n", CRYPTO_SONAME, why);
  fflush(stderr);
  _exit(127);
}

static void
crypto_load(void)
{
  /* Never closed: OpenSSL keeps global state until exit. */
  void *dl = dlopen(CRYPTO_SONAME, RTLD_NOW | RTLD_LOCAL);
  if (!dl)
    crypto_fail(dlerror());
#define SYM(field, name)                                                                           \
  do {                                                                                             \
    *(void **)&ev.field = dlsym(dl, name);                                                         \
    if (!ev.field)                                                                                 \
      crypto_fail("no symbol " name);                                                              \
  } while (0)
  SYM(ctx_new, "EVP_MD_CTX_new");
  SYM(ctx_free, "EVP_MD_CTX_free");
  SYM(init, "EVP_DigestInit_ex");
  SYM(update, "EVP_DigestUpdate");
  SYM(final, "EVP_DigestFinal_ex");
  SYM(encode, "EVP_EncodeBlock");
  SYM(decode, "EVP_DecodeBlock");
  __typeof__(EVP_sha256) *sha256;
  *(void **)&sha256 = dlsym(dl, "EVP_sha256");
  if (!sha256)
    crypto_fail("no symbol EVP_sha256");
#undef SYM
  ev.sha256 = sha256();
}

static inline void
crypto_ready(void)
{
  pthread_once(&crypto_once, crypto_load);
}

lbx_sha256 *
lbx_sha256_new(void)
{
  crypto_ready();
  EVP_MD_CTX *c = ev.ctx_new();
  if (!c || ev.init(c, ev.sha256, NULL) != 1) {
    /* what libcrypto fails with here is an allocation */
    fprintf(stderr, "lazybox: out of memory\n");
    abort();
  }
  return (lbx_sha256 *)c;
}

void
lbx_sha256_update(lbx_sha256 *c, const void *data, size_t len)
{
  /* EVP_DigestUpdate of SHA-256 only fails for a context that was never
   * initialised, which lbx_sha256_new rules out. */
  ev.update((EVP_MD_CTX *)c, data, len);
}

void
lbx_sha256_final(lbx_sha256 *c, uint8_t md[32])
{
  EVP_MD_CTX *x = (EVP_MD_CTX *)c;
  ev.final(x, md, NULL);
  ev.init(x, ev.sha256, NULL);
}

void
lbx_sha256_free(lbx_sha256 *c)
{
  if (c)
    ev.ctx_free((EVP_MD_CTX *)c);
}

void
lbx_sha256_freep(lbx_sha256 **c)
{
  lbx_sha256_free(*c);
}

void
lbx_sha256_buf(const void *data, size_t len, uint8_t md[32])
{
  _cleanup_sha256_ lbx_sha256 *c = lbx_sha256_new();
  lbx_sha256_update(c, data, len);
  lbx_sha256_final(c, md);
}

int
lbx_base64_encode(char *out, const void *in, size_t n)
{
  crypto_ready();
  return ev.encode((unsigned char *)out, (const unsigned char *)in, (int)n);
}

int
lbx_base64_decode(void *out, const char *in, size_t n)
{
  crypto_ready();
  return ev.decode((unsigned char *)out, (const unsigned char *)in, (int)n);
}
