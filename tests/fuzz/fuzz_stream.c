/* The layer byte stream: the input (after one control byte) is what a
 * registry or a file would give; decompressed with the default gzip path
 * (ISA-L when built in) and with LBX_STREAM_ZLIB, read in odd-sized pieces.
 * When both succeed they must agree on every byte (the diff_id). */
#include "fuzz.h"
#include "index/stream.h"

#include <stdbool.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A bomb is not a bug: stop reading (and checking) past this, or past
 * 64 Ki calls (one-byte reads of a big output are slow, not interesting). */
#define OUT_MAX (4u << 20)
#define CALLS_MAX (64u << 10)

struct result {
  bool ok, capped;
  enum lbx_compression comp;
  uint64_t out;
  char compressed[LBX_DIGEST_STR], diff_id[LBX_DIGEST_STR];
};

static void
run(const uint8_t *data, size_t size, uint8_t ctl, unsigned flags, struct result *res)
{
  static uint8_t buf[1u << 20];
  static const size_t rsizes[] = {1, 512, 10000, 1u << 20};
  size_t rsize = rsizes[(ctl >> 3) % 4];
  fuzz_src src = {data, size, 0, fuzz_chunk(ctl)};
  lbx_stream *s = lbx_stream_new("fuzz", fuzz_src_read, &src, flags);
  lbx_err *err = NULL;
  ssize_t n;
  *res = (struct result){0};
  while ((n = lbx_stream_read(s, buf, rsize, &err)) > 0) {
    FUZZ_CHECK((size_t)n <= rsize);
    res->out += (uint64_t)n;
    FUZZ_CHECK(lbx_stream_out_bytes(s) == res->out);
    FUZZ_CHECK(lbx_stream_in_bytes(s) <= size);
    if (res->out > OUT_MAX || res->out > (uint64_t)rsize * CALLS_MAX) {
      res->capped = true;
      lbx_stream_free(s);
      return;
    }
  }
  res->comp = lbx_stream_compression(s);
  if (n < 0) {
    FUZZ_CHECK(err && err->msg);
    lbx_error_free(err);
    err = NULL;
    /* errors are sticky */
    FUZZ_CHECK(lbx_stream_read(s, buf, rsize, &err) == -1 && err);
    lbx_error_free(err);
    err = NULL;
    FUZZ_CHECK(lbx_stream_finish(s, res->compressed, res->diff_id, &err) == -1 && err);
    lbx_error_free(err);
    lbx_stream_free(s);
    return;
  }
  FUZZ_CHECK(!err);
  FUZZ_CHECK(lbx_stream_read(s, buf, rsize, NULL) == 0);
  if (lbx_stream_finish(s, res->compressed, res->diff_id, &err) == 0) {
    res->ok = true;
    /* every source byte was consumed and hashed */
    FUZZ_CHECK(lbx_stream_in_bytes(s) == size);
    FUZZ_CHECK(strncmp(res->compressed, "sha256:", 7) == 0 && strlen(res->compressed) == 71);
    if (res->comp == LBX_COMP_NONE) {
      FUZZ_CHECK(res->out == size);
      FUZZ_CHECK(strcmp(res->compressed, res->diff_id) == 0);
    }
  } else {
    FUZZ_CHECK(err);
    lbx_error_free(err);
  }
  lbx_stream_free(s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 1)
    return 0;
  uint8_t ctl = data[0];
  struct result a, b;
  run(data + 1, size - 1, ctl, 0, &a);
  run(data + 1, size - 1, ctl, LBX_STREAM_ZLIB, &b);
  if (a.capped || b.capped)
    return 0;
  FUZZ_CHECK(a.comp == b.comp);
  if (a.comp != LBX_COMP_GZIP) {
    FUZZ_CHECK(a.ok == b.ok && a.out == b.out);
  }
  if (a.ok && b.ok) {
    FUZZ_CHECK(a.out == b.out);
    FUZZ_CHECK(strcmp(a.compressed, b.compressed) == 0);
    FUZZ_CHECK(strcmp(a.diff_id, b.diff_id) == 0);
  }
  return 0;
}
