/* The layer byte stream: hashes what the source gives, picks a decoder from
 * the magic bytes, hashes what the decoder gives. Two buffers matter for
 * speed: a large input buffer so each source read (a pread or an HTTP chunk)
 * is big, and an output staging buffer so a caller reading 512-byte tar
 * headers does not make ISA-L or zstd run on tiny output windows.
 *
 * The decoders' libraries are opened with dlopen when a stream first needs
 * one, not linked: only load, import and pull decode, and mapping zlib, zstd
 * and ISA-L cost every other command (create, exec, ps...) about 0.8 ms at
 * start. A missing ISA-L falls back to zlib; a missing zlib or zstd fails
 * the layers that need it, naming the library. */
#if __has_include("config.h")
#include "config.h"
#endif
#ifndef HAVE_ISAL
#define HAVE_ISAL 0
#endif

#include "stream.h"

#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <string.h>

#include "../store/crypto.h"
#include <zlib.h>
#include <zstd.h>
#if HAVE_ISAL
#include <isa-l/igzip_lib.h>
#endif

#define IN_BUF_SIZE (512u * 1024) /* one source read */
#define STAGE_SIZE (256u * 1024)  /* decoder output when the caller asks for little */
#define DIRECT_MIN (64u * 1024)   /* from this size on, decode into the caller's buffer */
#define MAX_CALL_OUT (1u << 30)   /* decoders take 32-bit lengths */
#define MAGIC_MAX 4               /* zstd's magic is the longest we look at */

#define ZLIB_SONAME "libz.so.1"
#if ZSTD_VERSION_MAJOR == 1
#define ZSTD_SONAME "libzstd.so.1"
#else
#error "lazybox opens libzstd.so.1 at run time: build against zstd 1.x"
#endif
#define ISAL_SONAME "libisal.so.2"

/* The decoder functions, resolved once; a library that could not be opened
 * leaves its part NULL and its reason in *_error. */
static struct {
  __typeof__(inflateInit2_) *inflate_init2;
  __typeof__(inflate) *inflate;
  __typeof__(inflateReset) *inflate_reset;
  __typeof__(inflateEnd) *inflate_end;
  __typeof__(zError) *zerror;
  __typeof__(zlibVersion) *zlib_ver; /* zlib.h defines zlib_version */
  char zlib_error[200];

  __typeof__(ZSTD_createDStream) *zstd_create;
  __typeof__(ZSTD_initDStream) *zstd_init;
  __typeof__(ZSTD_decompressStream) *zstd_decompress;
  __typeof__(ZSTD_freeDStream) *zstd_free;
  __typeof__(ZSTD_isError) *zstd_is_error;
  __typeof__(ZSTD_getErrorName) *zstd_error_name;
  __typeof__(ZSTD_versionString) *zstd_version;
  char zstd_error[200];

#if HAVE_ISAL
  __typeof__(isal_inflate_init) *isal_init;
  __typeof__(isal_inflate_reset) *isal_reset;
  __typeof__(isal_inflate) *isal_inflate;
#endif
} dec;
static pthread_once_t dec_once = PTHREAD_ONCE_INIT;

/* Resolves each name into the function pointer that follows it; all or
 * nothing: on failure every pointer is NULL and why says what was missing. */
static bool
open_lib(const char *soname, char *why, size_t whylen, const char *const *names, void ***ptrs,
         size_t n)
{
  void *dl = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
  if (!dl) {
    snprintf(why, whylen, "%s", dlerror());
    return false;
  }
  for (size_t i = 0; i < n; i++)
    if (!(*ptrs[i] = dlsym(dl, names[i]))) {
      snprintf(why, whylen, "%s: no symbol %s", soname, names[i]);
      for (size_t j = 0; j < n; j++)
        *ptrs[j] = NULL;
      dlclose(dl);
      return false;
    }
  return true; /* never closed: streams may be in use until exit */
}

static void
dec_load(void)
{
  const char *zn[] = {"inflateInit2_", "inflate", "inflateReset",
                      "inflateEnd",    "zError",  "zlibVersion"};
  void **zp[] = {(void **)&dec.inflate_init2, (void **)&dec.inflate, (void **)&dec.inflate_reset,
                 (void **)&dec.inflate_end,   (void **)&dec.zerror,  (void **)&dec.zlib_ver};
  open_lib(ZLIB_SONAME, dec.zlib_error, sizeof dec.zlib_error, zn, zp, 6);
  const char *sn[] = {"ZSTD_createDStream", "ZSTD_initDStream", "ZSTD_decompressStream",
                      "ZSTD_freeDStream",   "ZSTD_isError",     "ZSTD_getErrorName",
                      "ZSTD_versionString"};
  void **sp[] = {(void **)&dec.zstd_create,     (void **)&dec.zstd_init,
                 (void **)&dec.zstd_decompress, (void **)&dec.zstd_free,
                 (void **)&dec.zstd_is_error,   (void **)&dec.zstd_error_name,
                 (void **)&dec.zstd_version};
  open_lib(ZSTD_SONAME, dec.zstd_error, sizeof dec.zstd_error, sn, sp, 7);
#if HAVE_ISAL
  char ignored[200]; /* without ISA-L, gzip goes to zlib */
  const char *in[] = {"isal_inflate_init", "isal_inflate_reset", "isal_inflate"};
  void **ip[] = {(void **)&dec.isal_init, (void **)&dec.isal_reset, (void **)&dec.isal_inflate};
  open_lib(ISAL_SONAME, ignored, sizeof ignored, in, ip, 3);
#endif
}

static const uint8_t gzip_magic[] = {0x1f, 0x8b};
static const uint8_t zstd_magic[] = {0x28, 0xb5, 0x2f, 0xfd};

enum decoder {
  DEC_NONE,
  DEC_ISAL,
  DEC_ZLIB,
  DEC_ZSTD,
};

struct lbx_stream {
  char *name;
  lbx_read_fn src;
  void *src_ctx;
  unsigned flags;

  enum lbx_compression comp;
  enum decoder dec;
  bool started;
  bool src_eof;    /* the source said 0 */
  bool out_eof;    /* the decoder has delivered its last byte */
  bool member_end; /* gzip member or zstd frame complete; more may follow */
  bool finished;   /* digests are final */

  uint8_t *in; /* source bytes [in_pos, in_len) are read but not decoded */
  size_t in_pos, in_len;
  uint8_t *stage; /* decoded bytes [stage_pos, stage_len) not yet delivered */
  size_t stage_pos, stage_len;

  uint64_t in_read, out_bytes;
  lbx_sha256 *in_md, *out_md;

#if HAVE_ISAL
  struct inflate_state *isal; /* ~100 KiB of tables and history: kept off the stack */
#endif
  z_stream zlib;
  bool zlib_live;
  ZSTD_DStream *zstd;

  /* Errors are sticky: a tar reader that retries after a failure must get
   * the same explanation, not a misleading later one. */
  int fail_code;
  char *fail_msg;

  char compressed[LBX_DIGEST_STR], diff_id[LBX_DIGEST_STR];
};

const char *
lbx_compression_name(enum lbx_compression c)
{
  switch (c) {
  case LBX_COMP_GZIP:
    return "gzip";
  case LBX_COMP_ZSTD:
    return "zstd";
  case LBX_COMP_NONE:
    break;
  }
  return "none";
}

void
lbx_stream_versions(const char **zlib, const char **zstd)
{
  pthread_once(&dec_once, dec_load);
  *zlib = dec.zlib_ver ? dec.zlib_ver() : "not loadable";
  *zstd = dec.zstd_version ? dec.zstd_version() : "not loadable";
}

int
lbx_stream_have_isal(void)
{
#if HAVE_ISAL
  pthread_once(&dec_once, dec_load);
  return dec.isal_inflate != NULL;
#else
  return 0;
#endif
}

static int fail(lbx_stream *s, lbx_err **err, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Records the stream's error (prefixed with its name) and reports it. */
static int
fail(lbx_stream *s, lbx_err **err, int code, const char *fmt, ...)
{
  if (!s->fail_msg) {
    va_list ap;
    va_start(ap, fmt);
    char *what;
    if (vasprintf(&what, fmt, ap) < 0)
      what = NULL;
    va_end(ap);
    s->fail_msg = lbx_xasprintf("%s: %s", s->name, what ? what : "out of memory");
    s->fail_code = code;
    free(what);
  }
  return lbx_error(err, s->fail_code, "%s", s->fail_msg);
}

/* A source error already names its source; keep a copy for later calls. */
static int
fail_source(lbx_stream *s, lbx_err **err)
{
  if (!s->fail_msg) {
    if (err && *err) {
      s->fail_code = (*err)->code;
      s->fail_msg = lbx_xstrdup((*err)->msg);
    } else {
      s->fail_code = EIO;
      s->fail_msg = lbx_xasprintf("%s: reading the source failed", s->name);
    }
  }
  return lbx_error(err, s->fail_code, "%s", s->fail_msg);
}

lbx_stream *
lbx_stream_new(const char *name, lbx_read_fn src, void *src_ctx, unsigned flags)
{
  lbx_stream *s = lbx_xcalloc(1, sizeof *s);
  s->name = lbx_xstrdup(name ? name : "stream");
  s->src = src;
  s->src_ctx = src_ctx;
  s->flags = flags;
  s->in = lbx_xmalloc(IN_BUF_SIZE);
  s->in_md = lbx_sha256_new();
  s->out_md = lbx_sha256_new();
  return s;
}

void
lbx_stream_free(lbx_stream *s)
{
  if (!s)
    return;
#if HAVE_ISAL
  free(s->isal);
#endif
  if (s->zlib_live)
    dec.inflate_end(&s->zlib);
  if (s->zstd)
    dec.zstd_free(s->zstd);
  lbx_sha256_free(s->in_md);
  lbx_sha256_free(s->out_md);
  free(s->in);
  free(s->stage);
  free(s->fail_msg);
  free(s->name);
  free(s);
}

enum lbx_compression
lbx_stream_compression(const lbx_stream *s)
{
  return s->comp;
}

uint64_t
lbx_stream_in_bytes(const lbx_stream *s)
{
  return s->in_read - (s->in_len - s->in_pos);
}

uint64_t
lbx_stream_out_bytes(const lbx_stream *s)
{
  return s->out_bytes;
}

static size_t
in_avail(const lbx_stream *s)
{
  return s->in_len - s->in_pos;
}

/* One call to the source, hashing what it gives. */
static ssize_t
src_read(lbx_stream *s, void *buf, size_t len, lbx_err **err)
{
  ssize_t n = s->src(s->src_ctx, buf, len, err);
  if (n < 0)
    return fail_source(s, err);
  if ((size_t)n > len)
    return fail(s, err, EIO, "source returned %zd bytes for a %zu-byte read", n, len);
  if (n == 0) {
    s->src_eof = true;
    return 0;
  }
  lbx_sha256_update(s->in_md, buf, (size_t)n);
  s->in_read += (uint64_t)n;
  return n;
}

/* Reads until at least want bytes are buffered or the source ends. The
 * leftover moved to the front is at most a few bytes: callers ask for more
 * only when they hold less than a magic number's worth, or nothing. */
static int
refill(lbx_stream *s, size_t want, lbx_err **err)
{
  while (in_avail(s) < want && !s->src_eof) {
    if (s->in_pos > 0) {
      size_t keep = in_avail(s);
      memmove(s->in, s->in + s->in_pos, keep);
      s->in_pos = 0;
      s->in_len = keep;
    }
    ssize_t n = src_read(s, s->in + s->in_len, IN_BUF_SIZE - s->in_len, err);
    if (n < 0)
      return -1;
    s->in_len += (size_t)n;
  }
  return 0;
}

/* Picks the decoder from the magic bytes. A source may hand out one byte at
 * a time, so this reads until it has enough bytes or the source ends; a
 * stream shorter than any magic is plain data. */
static int
start(lbx_stream *s, lbx_err **err)
{
  s->started = true;
  pthread_once(&dec_once, dec_load);
  if (refill(s, MAGIC_MAX, err) < 0)
    return -1;
  const uint8_t *p = s->in + s->in_pos;
  size_t n = in_avail(s);

  if (n >= sizeof gzip_magic && memcmp(p, gzip_magic, sizeof gzip_magic) == 0) {
    s->comp = LBX_COMP_GZIP;
#if HAVE_ISAL
    if (!(s->flags & LBX_STREAM_ZLIB) && dec.isal_inflate) {
      s->isal = lbx_xmalloc(sizeof *s->isal);
      dec.isal_init(s->isal);
      s->isal->crc_flag = ISAL_GZIP; /* parse the header, verify CRC and size */
      s->dec = DEC_ISAL;
    }
#endif
    if (s->dec != DEC_ISAL) {
      /* 16 + window bits: gzip wrapper only; the magic already said gzip. */
      if (!dec.inflate)
        return fail(s, err, ELIBACC, "gzip data: cannot load zlib (%s)", dec.zlib_error);
      int r = dec.inflate_init2(&s->zlib, 16 + MAX_WBITS, ZLIB_VERSION, (int)sizeof s->zlib);
      if (r != Z_OK)
        return fail(s, err, r == Z_MEM_ERROR ? ENOMEM : EIO, "cannot set up zlib: %s",
                    s->zlib.msg ? s->zlib.msg : dec.zerror(r));
      s->zlib_live = true;
      s->dec = DEC_ZLIB;
    }
  } else if (n >= sizeof zstd_magic && memcmp(p, zstd_magic, sizeof zstd_magic) == 0) {
    s->comp = LBX_COMP_ZSTD;
    /* The default window limit (128 MiB) stays: raising it would let a
     * frame header alone make us allocate gigabytes. */
    if (!dec.zstd_decompress)
      return fail(s, err, ELIBACC, "zstd data: cannot load libzstd (%s)", dec.zstd_error);
    s->zstd = dec.zstd_create();
    if (!s->zstd)
      return fail(s, err, ENOMEM, "cannot set up zstd");
    size_t r = dec.zstd_init(s->zstd);
    if (dec.zstd_is_error(r))
      return fail(s, err, EIO, "cannot set up zstd: %s", dec.zstd_error_name(r));
    s->dec = DEC_ZSTD;
  } else {
    s->comp = LBX_COMP_NONE;
    s->dec = DEC_NONE;
  }
  if (s->dec != DEC_NONE)
    s->stage = lbx_xmalloc(STAGE_SIZE);
  return 0;
}

#if HAVE_ISAL
static const char *
isal_strerror(int ret)
{
  switch (ret) {
  case ISAL_INVALID_BLOCK:
    return "invalid block";
  case ISAL_INVALID_SYMBOL:
    return "invalid code";
  case ISAL_INVALID_LOOKBACK:
    return "invalid distance too far back";
  case ISAL_INVALID_WRAPPER:
    return "invalid gzip header";
  case ISAL_UNSUPPORTED_METHOD:
    return "unknown compression method";
  case ISAL_INCORRECT_CHECKSUM:
    return "CRC or length mismatch";
  case ISAL_NEED_DICT:
    return "needs a preset dictionary";
  }
  return "inflate error";
}

static ssize_t
step_isal(lbx_stream *s, uint8_t *out, size_t cap, lbx_err **err)
{
  struct inflate_state *st = s->isal;
  st->next_in = s->in + s->in_pos;
  st->avail_in = (uint32_t)in_avail(s);
  st->next_out = out;
  st->avail_out = (uint32_t)cap;
  int ret = dec.isal_inflate(st);
  s->in_pos = (size_t)(st->next_in - s->in);
  if (ret != ISAL_DECOMP_OK)
    return fail(s, err, EBADMSG, "gzip data is corrupt: %s", isal_strerror(ret));
  /* FINISH means the trailer checked out and all output was flushed;
   * with a gzip wrapper ISA-L stops reading right after the trailer. */
  if (st->block_state == ISAL_BLOCK_FINISH)
    s->member_end = true;
  return (ssize_t)(cap - st->avail_out);
}
#endif

static ssize_t
step_zlib(lbx_stream *s, uint8_t *out, size_t cap, lbx_err **err)
{
  z_stream *z = &s->zlib;
  z->next_in = s->in + s->in_pos;
  z->avail_in = (uInt)in_avail(s);
  z->next_out = out;
  z->avail_out = (uInt)cap;
  int ret = dec.inflate(z, Z_NO_FLUSH);
  s->in_pos = (size_t)(z->next_in - s->in);
  switch (ret) {
  case Z_STREAM_END:
    s->member_end = true;
    break;
  case Z_OK:
  case Z_BUF_ERROR: /* no progress possible yet: the caller decides if input ran out */
    break;
  case Z_MEM_ERROR:
    return fail(s, err, ENOMEM, "gzip: out of memory");
  default:
    return fail(s, err, EBADMSG, "gzip data is corrupt: %s", z->msg ? z->msg : dec.zerror(ret));
  }
  return (ssize_t)(cap - z->avail_out);
}

static ssize_t
step_zstd(lbx_stream *s, uint8_t *out, size_t cap, lbx_err **err)
{
  ZSTD_inBuffer in = {s->in + s->in_pos, in_avail(s), 0};
  ZSTD_outBuffer o = {out, cap, 0};
  size_t r = dec.zstd_decompress(s->zstd, &o, &in);
  s->in_pos += in.pos;
  if (dec.zstd_is_error(r))
    return fail(s, err, EBADMSG, "zstd data is corrupt: %s", dec.zstd_error_name(r));
  /* 0: a frame is complete and flushed. The next call starts a new frame
   * by itself if more input follows, so zstd needs no reset. */
  s->member_end = r == 0;
  return (ssize_t)o.pos;
}

/* After a gzip member: another member may follow (pigz, cat a.gz b.gz);
 * anything else is refused, as Go's gzip reader (the one registries and
 * containerd use) refuses it. 1 = a member follows, 0 = clean end. */
static int
next_member(lbx_stream *s, lbx_err **err)
{
  if (refill(s, sizeof gzip_magic, err) < 0)
    return -1;
  size_t n = in_avail(s);
  if (n == 0)
    return 0;
  if (n < sizeof gzip_magic || memcmp(s->in + s->in_pos, gzip_magic, sizeof gzip_magic) != 0)
    return fail(s, err, EBADMSG, "trailing garbage after gzip data");
#if HAVE_ISAL
  if (s->dec == DEC_ISAL) {
    dec.isal_reset(s->isal);
    s->isal->crc_flag = ISAL_GZIP;
  }
#endif
  if (s->dec == DEC_ZLIB && dec.inflate_reset(&s->zlib) != Z_OK)
    return fail(s, err, EIO, "cannot reset zlib");
  s->member_end = false;
  return 1;
}

/* Decodes at least one byte into out, or returns 0 at the clean end. */
static ssize_t
decode(lbx_stream *s, uint8_t *out, size_t cap, lbx_err **err)
{
  for (;;) {
    if (s->member_end && s->dec != DEC_ZSTD) {
      int r = next_member(s, err);
      if (r <= 0)
        return r;
    }
    if (in_avail(s) == 0 && !s->src_eof && refill(s, 1, err) < 0)
      return -1;
    if (in_avail(s) == 0 && s->src_eof && s->member_end)
      return 0;

    size_t before = s->in_pos;
    ssize_t n;
    switch (s->dec) {
#if HAVE_ISAL
    case DEC_ISAL:
      n = step_isal(s, out, cap, err);
      break;
#endif
    case DEC_ZLIB:
      n = step_zlib(s, out, cap, err);
      break;
    case DEC_ZSTD:
      n = step_zstd(s, out, cap, err);
      break;
    default:
      return fail(s, err, EINVAL, "no decoder");
    }
    if (n != 0)
      return n;
    if (s->member_end)
      continue;
    if (in_avail(s) == 0 && s->src_eof)
      return fail(s, err, EBADMSG, "unexpected end of compressed data");
    /* Input and output room but nothing moved: looping would spin. */
    if (s->in_pos == before && in_avail(s) > 0)
      return fail(s, err, EBADMSG, "decoder made no progress");
  }
}

/* Plain tar: the source bytes are the output. Large reads skip the input
 * buffer and go straight from the source into the caller's memory. */
static ssize_t
read_plain(lbx_stream *s, uint8_t *buf, size_t len, lbx_err **err)
{
  if (in_avail(s) == 0) {
    if (s->src_eof)
      return 0;
    if (len >= DIRECT_MIN)
      return src_read(s, buf, len, err);
    if (refill(s, 1, err) < 0)
      return -1;
    if (in_avail(s) == 0)
      return 0;
  }
  size_t n = in_avail(s) < len ? in_avail(s) : len;
  memcpy(buf, s->in + s->in_pos, n);
  s->in_pos += n;
  return (ssize_t)n;
}

ssize_t
lbx_stream_read(lbx_stream *s, void *buf, size_t len, lbx_err **err)
{
  if (s->fail_msg)
    return lbx_error(err, s->fail_code, "%s", s->fail_msg);
  if (len == 0 || s->out_eof)
    return 0;
  if (!s->started && start(s, err) < 0)
    return -1;
  if (len > MAX_CALL_OUT)
    len = MAX_CALL_OUT;

  ssize_t n;
  if (s->dec == DEC_NONE) {
    n = read_plain(s, buf, len, err);
  } else if (s->stage_pos < s->stage_len || len < DIRECT_MIN) {
    if (s->stage_pos == s->stage_len) {
      n = decode(s, s->stage, STAGE_SIZE, err);
      if (n <= 0)
        goto out;
      s->stage_pos = 0;
      s->stage_len = (size_t)n;
    }
    n = (ssize_t)(s->stage_len - s->stage_pos < len ? s->stage_len - s->stage_pos : len);
    memcpy(buf, s->stage + s->stage_pos, (size_t)n);
    s->stage_pos += (size_t)n;
  } else {
    n = decode(s, buf, len, err);
  }
out:
  if (n < 0)
    return -1;
  if (n == 0) {
    s->out_eof = true;
    return 0;
  }
  /* Plain data: the diff_id is the compressed digest, no second hash. */
  if (s->dec != DEC_NONE)
    lbx_sha256_update(s->out_md, buf, (size_t)n);
  s->out_bytes += (uint64_t)n;
  return n;
}

static void
final_digest(lbx_sha256 *md, char out[LBX_DIGEST_STR])
{
  uint8_t bin[LBX_DIGEST_LEN];
  lbx_sha256_final(md, bin);
  memcpy(out, "sha256:", 7);
  lbx_hex(bin, LBX_DIGEST_LEN, out + 7);
}

int
lbx_stream_finish(lbx_stream *s, char compressed[LBX_DIGEST_STR], char diff_id[LBX_DIGEST_STR],
                  lbx_err **err)
{
  if (!s->finished) {
    _cleanup_free_ uint8_t *sink = lbx_xmalloc(STAGE_SIZE);
    ssize_t n;
    while ((n = lbx_stream_read(s, sink, STAGE_SIZE, err)) > 0)
      ;
    if (n < 0)
      return -1;
    /* Every decoder ends only at the source's end, so the compressed
     * digest covers every byte the source had. */
    final_digest(s->in_md, s->compressed);
    if (s->dec == DEC_NONE)
      memcpy(s->diff_id, s->compressed, LBX_DIGEST_STR);
    else
      final_digest(s->out_md, s->diff_id);
    s->finished = true;
  }
  if (compressed)
    memcpy(compressed, s->compressed, LBX_DIGEST_STR);
  if (diff_id)
    memcpy(diff_id, s->diff_id, LBX_DIGEST_STR);
  return 0;
}

ssize_t
lbx_fd_source_read(void *ctx, void *buf, size_t len, lbx_err **err)
{
  lbx_fd_source *f = ctx;
  const char *name = f->name ? f->name : "file";
  if (f->len != UINT64_MAX) {
    if (f->pos >= f->len)
      return 0;
    if (len > f->len - f->pos)
      len = (size_t)(f->len - f->pos);
  }
  if (len > MAX_CALL_OUT)
    len = MAX_CALL_OUT;
  if (f->off > (uint64_t)INT64_MAX - f->pos)
    return lbx_error(err, EINVAL, "%s: offset out of range", name);
  uint64_t at = f->off + f->pos;
  ssize_t n;
  do
    n = pread(f->fd, buf, len, (off_t)at);
  while (n < 0 && errno == EINTR);
  if (n < 0)
    return lbx_error_errno(err, errno, "%s: read at offset %" PRIu64, name, at);
  if (n == 0 && f->len != UINT64_MAX)
    return lbx_error(err, EIO, "%s: file ends at offset %" PRIu64 ", before its region's end", name,
                     at);
  f->pos += (uint64_t)n;
  return n;
}
