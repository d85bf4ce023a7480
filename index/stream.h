/* A layer byte stream: source bytes -> sha256 (the compressed digest) ->
 * decompression (gzip through ISA-L or zlib, zstd, or none, found from the
 * magic bytes) -> sha256 (the diff_id) -> the reader. Pull-based: the tar
 * reader asks for bytes, the stream asks its source. */
#ifndef LBX_STREAM_H
#define LBX_STREAM_H

#include <stdint.h>
#include <sys/types.h>

#include "../store/error.h"
#include "../store/util.h"

/* A byte source: returns bytes read (> 0), 0 at the end, -1 with *err set. */
typedef ssize_t (*lbx_read_fn)(void *ctx, void *buf, size_t len, lbx_err **err);

typedef struct lbx_stream lbx_stream;

enum lbx_compression {
  LBX_COMP_NONE = 0,
  LBX_COMP_GZIP = 1,
  LBX_COMP_ZSTD = 2,
};

enum {
  LBX_STREAM_ZLIB = 1 << 0, /* inflate gzip with zlib even when ISA-L is built in */
};

/* name is what errors call the stream (a layer digest or a file name).
 * Nothing is read until the first lbx_stream_read. */
lbx_stream *lbx_stream_new(const char *name, lbx_read_fn src, void *src_ctx, unsigned flags);
void lbx_stream_free(lbx_stream *s);
static inline void
lbx_stream_freep(lbx_stream **s)
{
  lbx_stream_free(*s);
}

/* Reads decompressed bytes: > 0, 0 at the end of the decompressed data,
 * -1 with *err set (corrupt data, truncated input, source error). */
ssize_t lbx_stream_read(lbx_stream *s, void *buf, size_t len, lbx_err **err);

/* Reads and discards whatever is left (tar archives end in padding that the
 * tar reader may not consume), then gives both digests as "sha256:<hex>":
 * compressed = sha256 of the source bytes, diff_id = of the decompressed. */
int lbx_stream_finish(lbx_stream *s, char compressed[LBX_DIGEST_STR], char diff_id[LBX_DIGEST_STR],
                      lbx_err **err);

enum lbx_compression lbx_stream_compression(const lbx_stream *s); /* valid after the first read */
uint64_t lbx_stream_in_bytes(const lbx_stream *s);                /* source bytes consumed so far */
uint64_t lbx_stream_out_bytes(const lbx_stream *s);       /* decompressed bytes delivered so far */
const char *lbx_compression_name(enum lbx_compression c); /* "gzip", "zstd", "none" */
int lbx_stream_have_isal(void);
/* The versions of the zlib and libzstd found at run time (they are opened
 * with dlopen), or "not loadable". */
void lbx_stream_versions(const char **zlib, const char **zstd);

/* A source over a file descriptor region [off, off+len) read with pread;
 * len UINT64_MAX reads to the end of the file. */
typedef struct lbx_fd_source {
  int fd;
  uint64_t off, len, pos;
  const char *name;
} lbx_fd_source;
ssize_t lbx_fd_source_read(void *ctx, void *buf, size_t len, lbx_err **err);

#endif
