/* index/stream.c: every decoder against data compressed here in memory,
 * digests checked against EVP directly, and the ways a layer goes wrong
 * (truncation, corruption, trailing bytes, a failing source). */
#include "index/stream.h"
#include "tap.h"

#include <fcntl.h>
#include <string.h>

#include <openssl/evp.h>
#include <zlib.h>
#include <zstd.h>

/* ---- test data ---------------------------------------------------------- */

/* Text runs between pseudo-random runs: compressible, but not trivially. */
static uint8_t *
make_data(size_t n, uint32_t seed)
{
  static const char text[] = "usr/lib/x86_64-linux-gnu/libc.so.6 -rwxr-xr-x root root\n";
  uint8_t *p = lbx_xmalloc(n ? n : 1);
  uint32_t x = seed ? seed : 1;
  size_t i = 0;
  while (i < n) {
    x ^= x << 13, x ^= x >> 17, x ^= x << 5;
    size_t run = 64 + x % 2048;
    int random_run = (x >> 11) % 3 == 0;
    for (size_t j = 0; j < run && i < n; j++, i++) {
      if (random_run) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        p[i] = (uint8_t)x;
      } else {
        p[i] = (uint8_t)text[j % (sizeof text - 1)];
      }
    }
  }
  return p;
}

static uint8_t *
gzip_mem(const uint8_t *in, size_t n, int level, size_t *out_len)
{
  z_stream z = {0};
  if (deflateInit2(&z, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    abort();
  size_t cap = deflateBound(&z, n) + 64;
  uint8_t *out = lbx_xmalloc(cap);
  z.next_in = (uint8_t *)in;
  z.avail_in = (uInt)n;
  z.next_out = out;
  z.avail_out = (uInt)cap;
  if (deflate(&z, Z_FINISH) != Z_STREAM_END)
    abort();
  *out_len = z.total_out;
  deflateEnd(&z);
  return out;
}

static uint8_t *
zstd_mem(const uint8_t *in, size_t n, int level, size_t *out_len)
{
  size_t cap = ZSTD_compressBound(n);
  uint8_t *out = lbx_xmalloc(cap);
  size_t r = ZSTD_compress(out, cap, in, n, level);
  if (ZSTD_isError(r))
    abort();
  *out_len = r;
  return out;
}

static uint8_t *
concat(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
  uint8_t *p = lbx_xmalloc(an + bn + 1);
  if (an)
    memcpy(p, a, an);
  if (bn)
    memcpy(p + an, b, bn);
  return p;
}

static void
sha256_str(const void *p, size_t n, char out[LBX_DIGEST_STR])
{
  uint8_t md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(p, n, md, &len, EVP_sha256(), NULL) != 1)
    abort();
  memcpy(out, "sha256:", 7);
  lbx_hex(md, len, out + 7);
}

/* ---- a memory source ---------------------------------------------------- */

typedef struct {
  const uint8_t *p;
  size_t len, pos;
  size_t chunk;   /* most bytes per call; 0 = as many as asked */
  size_t fail_at; /* fail once pos reaches this; SIZE_MAX = never */
  int calls;
} mem_src;

static ssize_t
mem_read(void *ctx, void *buf, size_t len, lbx_err **err)
{
  mem_src *m = ctx;
  m->calls++;
  if (m->pos >= m->fail_at)
    return lbx_error(err, ECONNRESET, "registry: connection reset at byte %zu", m->pos);
  size_t n = m->len - m->pos;
  if (n > len)
    n = len;
  if (m->chunk && n > m->chunk)
    n = m->chunk;
  if (m->fail_at != SIZE_MAX && n > m->fail_at - m->pos)
    n = m->fail_at - m->pos;
  memcpy(buf, m->p + m->pos, n);
  m->pos += n;
  return (ssize_t)n;
}

static ssize_t
lying_read(void *ctx, void *buf, size_t len, lbx_err **err)
{
  (void)ctx, (void)buf, (void)err;
  return (ssize_t)len + 1;
}

static mem_src
src_of(const uint8_t *p, size_t n, size_t chunk)
{
  return (mem_src){.p = p, .len = n, .chunk = chunk, .fail_at = SIZE_MAX};
}

/* Everything one stream gives, read in read_size pieces, then finished. */
typedef struct {
  int rc; /* 0, or -1 with err set */
  uint8_t *out;
  size_t out_len;
  enum lbx_compression comp;
  uint64_t in_bytes, out_bytes;
  char compressed[LBX_DIGEST_STR], diff_id[LBX_DIGEST_STR];
  lbx_err *err;
} result;

static void
result_clear(result *r)
{
  free(r->out);
  lbx_error_free(r->err);
  memset(r, 0, sizeof *r);
}

static result
run_source(const char *name, lbx_read_fn fn, void *ctx, unsigned flags, size_t read_size)
{
  result r = {0};
  _cleanup_(lbx_stream_freep) lbx_stream *s = lbx_stream_new(name, fn, ctx, flags);
  size_t cap = 1 << 16;
  r.out = lbx_xmalloc(cap);
  for (;;) {
    if (r.out_len + read_size > cap) {
      cap = 2 * (r.out_len + read_size);
      r.out = lbx_xrealloc(r.out, cap);
    }
    ssize_t n = lbx_stream_read(s, r.out + r.out_len, read_size, &r.err);
    if (n < 0) {
      r.rc = -1;
      /* the error is sticky: the same one again */
      lbx_err *again = NULL;
      if (lbx_stream_read(s, r.out, read_size, &again) != -1 || !again ||
          strcmp(again->msg, r.err->msg) != 0)
        r.rc = -2;
      lbx_error_free(again);
      return r;
    }
    if (n == 0)
      break;
    if ((size_t)n > read_size)
      abort();
    r.out_len += (size_t)n;
  }
  r.comp = lbx_stream_compression(s);
  r.rc = lbx_stream_finish(s, r.compressed, r.diff_id, &r.err);
  r.in_bytes = lbx_stream_in_bytes(s);
  r.out_bytes = lbx_stream_out_bytes(s);
  return r;
}

static result
run_mem(const uint8_t *p, size_t n, unsigned flags, size_t chunk, size_t read_size)
{
  mem_src m = src_of(p, n, chunk);
  return run_source("layer sha256:test", mem_read, &m, flags, read_size);
}

/* ---- checks ------------------------------------------------------------- */

static const char *
err_msg(const result *r)
{
  return r->err ? r->err->msg : "(no error)";
}

/* Decoding gives back plain; both digests and counters match. */
static void
check_roundtrip(const char *what, const uint8_t *comp, size_t comp_len, const uint8_t *plain,
                size_t plain_len, enum lbx_compression want, unsigned flags, size_t chunk,
                size_t read_size)
{
  result r = run_mem(comp, comp_len, flags, chunk, read_size);
  tap_is_int(r.rc, 0, "%s: reads to the end (%s)", what, err_msg(&r));
  tap_ok(r.out_len == plain_len && (plain_len == 0 || memcmp(r.out, plain, plain_len) == 0),
         "%s: decompressed bytes equal (%zu of %zu)", what, r.out_len, plain_len);
  tap_is_str(lbx_compression_name(r.comp), lbx_compression_name(want), "%s: compression", what);
  char want_c[LBX_DIGEST_STR], want_d[LBX_DIGEST_STR];
  sha256_str(comp, comp_len, want_c);
  sha256_str(plain, plain_len, want_d);
  tap_is_str(r.compressed, want_c, "%s: compressed digest", what);
  tap_is_str(r.diff_id, want_d, "%s: diff_id", what);
  tap_is_int(r.in_bytes, comp_len, "%s: in bytes", what);
  tap_is_int(r.out_bytes, plain_len, "%s: out bytes", what);
  result_clear(&r);
}

static void
check_fails(const char *what, const uint8_t *comp, size_t comp_len, unsigned flags, size_t chunk,
            const char *want_msg)
{
  result r = run_mem(comp, comp_len, flags, chunk, 4096);
  tap_is_int(r.rc, -1, "%s: fails, the same error when read again", what);
  tap_ok(r.err && strstr(r.err->msg, "layer sha256:test: ") == r.err->msg,
         "%s: error names the stream: %s", what, err_msg(&r));
  if (want_msg)
    tap_ok(r.err && strstr(r.err->msg, want_msg), "%s: error says '%s'", what, want_msg);
  result_clear(&r);
}

static const struct {
  const char *name;
  unsigned flags;
} gzip_paths[] = {
    {"gzip/isal", 0},
    {"gzip/zlib", LBX_STREAM_ZLIB},
};

static void
test_roundtrips(void)
{
  size_t n = 3 * 1024 * 1024 + 12345; /* several input buffers' worth */
  _cleanup_free_ uint8_t *plain = make_data(n, 7);
  size_t gz_len, zs_len;
  _cleanup_free_ uint8_t *gz = gzip_mem(plain, n, 6, &gz_len);
  _cleanup_free_ uint8_t *zs = zstd_mem(plain, n, 3, &zs_len);
  tap_ok(gz_len < n && zs_len < n, "test data compresses (gzip %zu, zstd %zu of %zu)", gz_len,
         zs_len, n);

  /* 512: tar-header-sized reads through the staging buffer; 1 MiB: decode
   * straight into the caller's buffer; 100000: odd sizes in between. */
  static const size_t sizes[] = {512, 100000, 1 << 20};
  for (size_t i = 0; i < LBX_ARRAY_SIZE(sizes); i++) {
    char what[64];
    snprintf(what, sizeof what, "none, reads of %zu", sizes[i]);
    check_roundtrip(what, plain, n, plain, n, LBX_COMP_NONE, 0, 0, sizes[i]);
    for (size_t g = 0; g < LBX_ARRAY_SIZE(gzip_paths); g++) {
      snprintf(what, sizeof what, "%s, reads of %zu", gzip_paths[g].name, sizes[i]);
      check_roundtrip(what, gz, gz_len, plain, n, LBX_COMP_GZIP, gzip_paths[g].flags, 0, sizes[i]);
    }
    snprintf(what, sizeof what, "zstd, reads of %zu", sizes[i]);
    check_roundtrip(what, zs, zs_len, plain, n, LBX_COMP_ZSTD, 0, 0, sizes[i]);
  }

  /* A source that gives odd-sized pieces (an HTTP body, say). */
  for (size_t g = 0; g < LBX_ARRAY_SIZE(gzip_paths); g++) {
    char what[64];
    snprintf(what, sizeof what, "%s, source pieces of 7777", gzip_paths[g].name);
    check_roundtrip(what, gz, gz_len, plain, n, LBX_COMP_GZIP, gzip_paths[g].flags, 7777, 3000);
  }
  check_roundtrip("zstd, source pieces of 7777", zs, zs_len, plain, n, LBX_COMP_ZSTD, 0, 7777,
                  3000);

  /* Level 0: stored blocks only, another inflate code path. */
  size_t st_len;
  _cleanup_free_ uint8_t *st = gzip_mem(plain, 200000, 0, &st_len);
  for (size_t g = 0; g < LBX_ARRAY_SIZE(gzip_paths); g++) {
    char what[64];
    snprintf(what, sizeof what, "%s, stored blocks", gzip_paths[g].name);
    check_roundtrip(what, st, st_len, plain, 200000, LBX_COMP_GZIP, gzip_paths[g].flags, 0, 512);
  }
}

static void
test_one_byte_source(void)
{
  size_t n = 96 * 1024;
  _cleanup_free_ uint8_t *plain = make_data(n, 11);
  size_t gz_len, zs_len;
  _cleanup_free_ uint8_t *gz = gzip_mem(plain, n, 6, &gz_len);
  _cleanup_free_ uint8_t *zs = zstd_mem(plain, n, 3, &zs_len);
  check_roundtrip("none, 1-byte source", plain, n, plain, n, LBX_COMP_NONE, 0, 1, 512);
  for (size_t g = 0; g < LBX_ARRAY_SIZE(gzip_paths); g++) {
    char what[64];
    snprintf(what, sizeof what, "%s, 1-byte source", gzip_paths[g].name);
    check_roundtrip(what, gz, gz_len, plain, n, LBX_COMP_GZIP, gzip_paths[g].flags, 1, 512);
  }
  check_roundtrip("zstd, 1-byte source", zs, zs_len, plain, n, LBX_COMP_ZSTD, 0, 1, 512);
}

static void
test_multi(void)
{
  size_t n1 = 700000, n2 = 300000;
  _cleanup_free_ uint8_t *p1 = make_data(n1, 21);
  _cleanup_free_ uint8_t *p2 = make_data(n2, 22);
  _cleanup_free_ uint8_t *plain = concat(p1, n1, p2, n2);
  size_t a_len, b_len, e_len;
  _cleanup_free_ uint8_t *a = gzip_mem(p1, n1, 6, &a_len);
  _cleanup_free_ uint8_t *b = gzip_mem(p2, n2, 1, &b_len);
  _cleanup_free_ uint8_t *e = gzip_mem((const uint8_t *)"", 0, 6, &e_len);
  /* member, empty member, member: pigz and `cat a.gz b.gz` make such files */
  _cleanup_free_ uint8_t *ae = concat(a, a_len, e, e_len);
  _cleanup_free_ uint8_t *aeb = concat(ae, a_len + e_len, b, b_len);
  size_t aeb_len = a_len + e_len + b_len;
  _cleanup_free_ uint8_t *garbage = concat(aeb, aeb_len, (const uint8_t *)"\0\0\0\0", 4);
  _cleanup_free_ uint8_t *half = concat(aeb, aeb_len, (const uint8_t *)"\x1f", 1);

  for (size_t g = 0; g < LBX_ARRAY_SIZE(gzip_paths); g++) {
    char what[80];
    unsigned fl = gzip_paths[g].flags;
    snprintf(what, sizeof what, "%s, three members", gzip_paths[g].name);
    check_roundtrip(what, aeb, aeb_len, plain, n1 + n2, LBX_COMP_GZIP, fl, 0, 4096);
    snprintf(what, sizeof what, "%s, three members, 1-byte source", gzip_paths[g].name);
    check_roundtrip(what, aeb, aeb_len, plain, n1 + n2, LBX_COMP_GZIP, fl, 1, 1 << 20);
    snprintf(what, sizeof what, "%s, only an empty member", gzip_paths[g].name);
    check_roundtrip(what, e, e_len, (const uint8_t *)"", 0, LBX_COMP_GZIP, fl, 0, 512);
    snprintf(what, sizeof what, "%s, zero bytes after the last member", gzip_paths[g].name);
    check_fails(what, garbage, aeb_len + 4, fl, 0, "trailing garbage after gzip data");
    snprintf(what, sizeof what, "%s, one stray byte after the last member", gzip_paths[g].name);
    check_fails(what, half, aeb_len + 1, fl, 0, "trailing garbage after gzip data");
    snprintf(what, sizeof what, "%s, a member cut after its magic", gzip_paths[g].name);
    _cleanup_free_ uint8_t *cut = concat(aeb, aeb_len, b, 5);
    check_fails(what, cut, aeb_len + 5, fl, 0, "unexpected end of compressed data");
  }

  size_t z1_len, z2_len;
  _cleanup_free_ uint8_t *z1 = zstd_mem(p1, n1, 3, &z1_len);
  _cleanup_free_ uint8_t *z2 = zstd_mem(p2, n2, 19, &z2_len);
  _cleanup_free_ uint8_t *zz = concat(z1, z1_len, z2, z2_len);
  check_roundtrip("zstd, two frames", zz, z1_len + z2_len, plain, n1 + n2, LBX_COMP_ZSTD, 0, 0,
                  4096);
  check_roundtrip("zstd, two frames, 1-byte source", zz, z1_len + z2_len, plain, n1 + n2,
                  LBX_COMP_ZSTD, 0, 1, 1 << 20);
  _cleanup_free_ uint8_t *zg = concat(zz, z1_len + z2_len, (const uint8_t *)"garbage!", 8);
  check_fails("zstd, garbage after the frames", zg, z1_len + z2_len + 8, 0, 0,
              "zstd data is corrupt");
}

static void
test_truncated_and_corrupt(void)
{
  size_t n = 400000;
  _cleanup_free_ uint8_t *plain = make_data(n, 31);
  size_t gz_len, zs_len;
  _cleanup_free_ uint8_t *gz = gzip_mem(plain, n, 6, &gz_len);
  _cleanup_free_ uint8_t *zs = zstd_mem(plain, n, 3, &zs_len);

  for (size_t g = 0; g < LBX_ARRAY_SIZE(gzip_paths); g++) {
    unsigned fl = gzip_paths[g].flags;
    const char *pn = gzip_paths[g].name;
    char what[80];
    /* cut inside the header, the data, the CRC, and the length */
    const size_t cuts[] = {2, 5, gz_len / 2, gz_len - 8, gz_len - 5, gz_len - 1};
    for (size_t i = 0; i < LBX_ARRAY_SIZE(cuts); i++) {
      snprintf(what, sizeof what, "%s, cut to %zu of %zu bytes", pn, cuts[i], gz_len);
      check_fails(what, gz, cuts[i], fl, 0, "unexpected end of compressed data");
    }
    snprintf(what, sizeof what, "%s, cut, 1-byte source", pn);
    check_fails(what, gz, gz_len - 3, fl, 1, "unexpected end of compressed data");

    _cleanup_free_ uint8_t *bad = concat(gz, gz_len, (const uint8_t *)"", 0);
    bad[gz_len - 6] ^= 0x55; /* the CRC */
    snprintf(what, sizeof what, "%s, wrong CRC", pn);
    check_fails(what, bad, gz_len, fl, 0, "gzip data is corrupt");
    memcpy(bad, gz, gz_len);
    bad[gz_len - 2] ^= 0x01; /* the length */
    snprintf(what, sizeof what, "%s, wrong length", pn);
    check_fails(what, bad, gz_len, fl, 0, "gzip data is corrupt");
    memcpy(bad, gz, gz_len);
    bad[gz_len / 3] ^= 0xff; /* somewhere in the deflate data */
    snprintf(what, sizeof what, "%s, corrupt byte in the data", pn);
    check_fails(what, bad, gz_len, fl, 0, "gzip data is corrupt");
    memcpy(bad, gz, gz_len);
    bad[10] = 0xff; /* first block header byte: type 3 does not exist */
    snprintf(what, sizeof what, "%s, invalid block type", pn);
    check_fails(what, bad, gz_len, fl, 0, "gzip data is corrupt");
    memcpy(bad, gz, gz_len);
    bad[2] = 7; /* compression method other than deflate */
    snprintf(what, sizeof what, "%s, unknown method", pn);
    check_fails(what, bad, gz_len, fl, 0, "gzip data is corrupt");
  }

  const size_t zcuts[] = {5, zs_len / 2, zs_len - 1};
  for (size_t i = 0; i < LBX_ARRAY_SIZE(zcuts); i++) {
    char what[80];
    snprintf(what, sizeof what, "zstd, cut to %zu of %zu bytes", zcuts[i], zs_len);
    check_fails(what, zs, zcuts[i], 0, 0, "unexpected end of compressed data");
  }
  check_fails("zstd, cut, 1-byte source", zs, zs_len - 2, 0, 1,
              "unexpected end of compressed data");
  _cleanup_free_ uint8_t *zbad = concat(zs, zs_len, (const uint8_t *)"", 0);
  zbad[4] = 0xff; /* frame header descriptor: reserved bit set */
  check_fails("zstd, bad frame header", zbad, zs_len, 0, 0, "zstd data is corrupt");
}

static void
test_source_error(void)
{
  size_t n = 300000;
  _cleanup_free_ uint8_t *plain = make_data(n, 41);
  size_t gz_len, zs_len;
  _cleanup_free_ uint8_t *gz = gzip_mem(plain, n, 6, &gz_len);
  _cleanup_free_ uint8_t *zs = zstd_mem(plain, n, 3, &zs_len);
  struct {
    const char *name;
    const uint8_t *p;
    size_t len;
    unsigned flags;
  } cases[] = {
      {"none", plain, n, 0},
      {"gzip/isal", gz, gz_len, 0},
      {"gzip/zlib", gz, gz_len, LBX_STREAM_ZLIB},
      {"zstd", zs, zs_len, 0},
  };
  for (size_t i = 0; i < LBX_ARRAY_SIZE(cases); i++) {
    for (int at_start = 0; at_start <= 1; at_start++) {
      mem_src m = src_of(cases[i].p, cases[i].len, 1000);
      m.fail_at = at_start ? 0 : cases[i].len / 2;
      result r = run_source("layer x", mem_read, &m, cases[i].flags, 512);
      tap_is_int(r.rc, -1, "%s: source error at byte %zu fails the stream, sticky", cases[i].name,
                 m.fail_at);
      char want[80];
      snprintf(want, sizeof want, "registry: connection reset at byte %zu", m.fail_at);
      tap_is_str(r.err ? r.err->msg : NULL, want, "%s: the source's own message", cases[i].name);
      tap_is_int(r.err ? r.err->code : 0, ECONNRESET, "%s: the source's code", cases[i].name);
      result_clear(&r);
    }
  }

  /* A source that claims more bytes than it was asked for is refused. */
  mem_src m = src_of(plain, 10, 0);
  _cleanup_(lbx_stream_freep) lbx_stream *s = lbx_stream_new("liar", lying_read, &m, 0);
  _cleanup_error_ lbx_err *err = NULL;
  uint8_t buf[16];
  tap_is_int(lbx_stream_read(s, buf, sizeof buf, &err), -1, "an over-long source read fails");
}

static void
test_empty_and_short(void)
{
  char empty[LBX_DIGEST_STR];
  sha256_str("", 0, empty);
  result r = run_mem((const uint8_t *)"", 0, 0, 0, 512);
  tap_is_int(r.rc, 0, "empty input reads to the end");
  tap_is_int(r.comp, LBX_COMP_NONE, "empty input is plain");
  tap_is_int(r.out_len, 0, "empty input gives no bytes");
  tap_is_str(r.diff_id, empty, "empty input: diff_id of nothing");
  tap_is_str(r.compressed, empty, "empty input: compressed digest of nothing");
  result_clear(&r);

  /* Shorter than a magic number, or a magic's prefix: plain data. */
  check_roundtrip("one byte 0x1f", (const uint8_t *)"\x1f", 1, (const uint8_t *)"\x1f", 1,
                  LBX_COMP_NONE, 0, 0, 512);
  check_roundtrip("zstd magic's first 3 bytes", (const uint8_t *)"\x28\xb5\x2f", 3,
                  (const uint8_t *)"\x28\xb5\x2f", 3, LBX_COMP_NONE, 0, 1, 512);
  check_roundtrip("'hello', 1-byte source", (const uint8_t *)"hello", 5, (const uint8_t *)"hello",
                  5, LBX_COMP_NONE, 0, 1, 2);
}

static void
test_finish_drains(void)
{
  size_t n = 2 * 1024 * 1024;
  _cleanup_free_ uint8_t *plain = make_data(n, 51);
  size_t gz_len;
  _cleanup_free_ uint8_t *gz = gzip_mem(plain, n, 6, &gz_len);
  char want_c[LBX_DIGEST_STR], want_d[LBX_DIGEST_STR];
  sha256_str(gz, gz_len, want_c);
  sha256_str(plain, n, want_d);

  for (int partial = 0; partial <= 1; partial++) {
    mem_src m = src_of(gz, gz_len, 0);
    _cleanup_(lbx_stream_freep) lbx_stream *s = lbx_stream_new("layer", mem_read, &m, 0);
    _cleanup_error_ lbx_err *err = NULL;
    uint8_t buf[1024];
    if (partial)
      tap_is_int(lbx_stream_read(s, buf, sizeof buf, &err), sizeof buf, "a first read");
    char c[LBX_DIGEST_STR], d[LBX_DIGEST_STR];
    tap_is_int(lbx_stream_finish(s, c, d, &err), 0, "finish after %s read drains the rest",
               partial ? "a partial" : "no");
    tap_is_str(c, want_c, "finish: compressed digest");
    tap_is_str(d, want_d, "finish: diff_id");
    tap_is_int(lbx_stream_out_bytes(s), n, "finish: out bytes count the drained rest");
    tap_is_int(lbx_stream_read(s, buf, sizeof buf, &err), 0, "reads after finish give the end");
    char c2[LBX_DIGEST_STR], d2[LBX_DIGEST_STR];
    tap_ok(lbx_stream_finish(s, c2, d2, &err) == 0 && !strcmp(c, c2) && !strcmp(d, d2),
           "finish again gives the same digests");
  }

  /* finish reports a corrupt tail the reader never reached */
  _cleanup_free_ uint8_t *bad = concat(gz, gz_len, (const uint8_t *)"", 0);
  bad[gz_len - 6] ^= 1;
  mem_src m = src_of(bad, gz_len, 0);
  _cleanup_(lbx_stream_freep) lbx_stream *s = lbx_stream_new("layer", mem_read, &m, 0);
  _cleanup_error_ lbx_err *err = NULL;
  char c[LBX_DIGEST_STR], d[LBX_DIGEST_STR];
  tap_is_int(lbx_stream_finish(s, c, d, &err), -1, "finish fails on a wrong CRC");
}

static void
test_fd_source(void)
{
  char path[] = "/tmp/lbx-test-stream-XXXXXX";
  _cleanup_close_ int fd = mkstemp(path);
  if (fd < 0) {
    tap_ok(0, "mkstemp: %s", strerror(errno));
    return;
  }
  unlink(path);
  size_t n = 1500000;
  _cleanup_free_ uint8_t *plain = make_data(n, 61);
  size_t gz_len;
  _cleanup_free_ uint8_t *gz = gzip_mem(plain, n, 6, &gz_len);
  /* a blob file with other bytes around the layer, as in a packed store */
  const char pre[] = "PREFIX-bytes-that-are-not-the-layer";
  const char post[] = "trailing bytes of the next blob";
  if (lbx_write_all(fd, pre, sizeof pre) < 0 || lbx_write_all(fd, gz, gz_len) < 0 ||
      lbx_write_all(fd, post, sizeof post) < 0)
    abort();
  char want_c[LBX_DIGEST_STR], want_d[LBX_DIGEST_STR];
  sha256_str(gz, gz_len, want_c);
  sha256_str(plain, n, want_d);

  lbx_fd_source f = {.fd = fd, .off = sizeof pre, .len = gz_len, .name = "blobs.pack"};
  result r = run_source("layer", lbx_fd_source_read, &f, 0, 1 << 20);
  tap_is_int(r.rc, 0, "fd source region: reads (%s)", err_msg(&r));
  tap_ok(r.out_len == n && memcmp(r.out, plain, n) == 0, "fd source region: bytes equal");
  tap_is_str(r.compressed, want_c, "fd source region: compressed digest");
  tap_is_str(r.diff_id, want_d, "fd source region: diff_id");
  tap_is_int(f.pos, gz_len, "fd source region: pos at the region's end");
  result_clear(&r);

  /* to EOF: the plain file from the layer's start on */
  lbx_fd_source whole = {.fd = fd, .off = sizeof pre + gz_len, .len = UINT64_MAX, .name = "f"};
  uint8_t buf[256];
  lbx_err *err = NULL;
  ssize_t k = lbx_fd_source_read(&whole, buf, sizeof buf, &err);
  tap_ok(k == sizeof post && memcmp(buf, post, sizeof post) == 0, "fd source to EOF: the tail");
  tap_is_int(lbx_fd_source_read(&whole, buf, sizeof buf, &err), 0, "fd source to EOF: then 0");

  /* a region past the file's end is an error that names the file */
  lbx_fd_source past = {
      .fd = fd, .off = sizeof pre + gz_len, .len = sizeof post + 4096, .name = "blobs.pack"};
  r = run_source("layer", lbx_fd_source_read, &past, 0, 1 << 20);
  tap_is_int(r.rc, -1, "fd source region past EOF fails");
  tap_ok(r.err && strncmp(r.err->msg, "blobs.pack: ", 12) == 0, "error names the file: %s",
         err_msg(&r));
  result_clear(&r);

  lbx_fd_source badfd = {.fd = -1, .off = 0, .len = UINT64_MAX, .name = "nofd"};
  tap_is_int(lbx_fd_source_read(&badfd, buf, sizeof buf, &err), -1, "fd source: bad fd fails");
  tap_is_int(err ? err->code : 0, EBADF, "fd source: with EBADF");
  lbx_error_free(err);
}

int
main(void)
{
  tap_is_str(lbx_compression_name(LBX_COMP_GZIP), "gzip", "name of gzip");
  tap_is_str(lbx_compression_name(LBX_COMP_ZSTD), "zstd", "name of zstd");
  tap_is_str(lbx_compression_name(LBX_COMP_NONE), "none", "name of none");
  printf("# ISA-L %s\n", lbx_stream_have_isal() ? "built in" : "not built in");
  test_roundtrips();
  test_one_byte_source();
  test_multi();
  test_truncated_and_corrupt();
  test_source_error();
  test_empty_and_short();
  test_finish_drains();
  test_fd_source();
  return tap_done();
}
