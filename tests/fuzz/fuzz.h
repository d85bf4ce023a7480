/* Shared bits of the libFuzzer harnesses: a memory byte source and a check
 * that aborts (libFuzzer then saves the input as a crash). */
#ifndef LBX_FUZZ_H
#define LBX_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "store/error.h"

#define FUZZ_CHECK(cond)                                                                           \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);                     \
      abort();                                                                                     \
    }                                                                                              \
  } while (0)

/* Bytes handed out at most `chunk` at a time (0: all that is asked for), so
 * that readers meet every buffer boundary. */
typedef struct fuzz_src {
  const uint8_t *data;
  size_t len, pos, chunk;
} fuzz_src;

static inline ssize_t
fuzz_src_read(void *ctx, void *buf, size_t len, lbx_err **err)
{
  (void)err;
  fuzz_src *s = ctx;
  size_t n = s->len - s->pos;
  if (n > len)
    n = len;
  if (s->chunk && n > s->chunk)
    n = s->chunk;
  memcpy(buf, s->data + s->pos, n);
  s->pos += n;
  return (ssize_t)n;
}

/* Chunk sizes worth trying, picked by one input byte. */
static inline size_t
fuzz_chunk(uint8_t b)
{
  static const size_t sizes[] = {0, 1, 7, 511, 512, 513, 4096, 65536};
  return sizes[b % (sizeof sizes / sizeof sizes[0])];
}

#endif

/* ---- a scratch store for the harnesses that need one ---- */

#include <ftw.h>
#include <unistd.h>

#include "store/store.h"

static char fuzz_root[4096];

static int
fuzz_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
  (void)st;
  (void)flag;
  (void)ftw;
  remove(path);
  return 0;
}

static void
fuzz_rm_root(void)
{
  if (fuzz_root[0])
    nftw(fuzz_root, fuzz_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* A store in a new directory under $TMPDIR, removed at exit (scripts/fuzz
 * also points TMPDIR at a directory of its own, for runs that crash). */
static inline lbx_store *
fuzz_store(void)
{
  const char *tmp = getenv("TMPDIR");
  snprintf(fuzz_root, sizeof fuzz_root, "%s/lbx-fuzz-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp(fuzz_root)) {
    perror(fuzz_root);
    abort();
  }
  atexit(fuzz_rm_root);
  char dir[4200];
  snprintf(dir, sizeof dir, "%s/store", fuzz_root);
  lbx_store *s = NULL;
  lbx_err *err = NULL;
  if (lbx_store_open(dir, 0, &s, &err) < 0) {
    fprintf(stderr, "fuzz: %s\n", err->msg);
    abort();
  }
  return s;
}

/* Removes every image: each input starts from the same store. */
static inline void
fuzz_drop_images(lbx_store *s)
{
  lbx_image_row *rows = NULL;
  size_t n = 0;
  lbx_err *err = NULL;
  FUZZ_CHECK(lbx_store_images(s, &rows, &n, &err) == 0);
  for (size_t i = 0; i < n; i++)
    FUZZ_CHECK(lbx_store_image_delete(s, rows[i].id, &err) == 0);
  lbx_image_rows_free(rows, n);
}
