/* One layer: stream -> tar reader -> blobs and entries -> one commit. */
#include "index.h"
#include "pipe.h"
#include "tar.h"
#include "../store/crypto.h"

#include <pthread.h>
#include <limits.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>

/* Contents up to this size are hashed in memory before anything is written,
 * so a content already stored costs no write at all; bigger ones are
 * written to a tmp file while hashed. */
#define BUFFERED_MAX (8u << 20)

static uint32_t
entry_type(enum lbx_tar_type t)
{
  switch (t) {
  case LBX_TAR_REG:
    return LBX_T_REG;
  case LBX_TAR_DIR:
    return LBX_T_DIR;
  case LBX_TAR_SYMLINK:
    return LBX_T_SYMLINK;
  case LBX_TAR_HARDLINK:
    return LBX_T_HARDLINK;
  case LBX_TAR_CHR:
    return LBX_T_CHR;
  case LBX_TAR_BLK:
    return LBX_T_BLK;
  case LBX_TAR_FIFO:
    return LBX_T_FIFO;
  }
  return 0;
}

/* Nanoseconds since the epoch, saturated: a tar may say any int64 second
 * (years far past 2262 do not fit, and are not worth an error). */
static int64_t
mtime_ns(int64_t sec, uint32_t nsec)
{
  if (sec > INT64_MAX / 1000000000 - 1)
    return INT64_MAX;
  if (sec < INT64_MIN / 1000000000 + 1)
    return INT64_MIN;
  return sec * 1000000000 + nsec;
}

struct layer_ctx {
  lbx_store *s;
  lbx_layer_tx *tx;
  lbx_tar *tar;
  const char *name;
  uint8_t *buf; /* BUFFERED_MAX bytes, reused for every file */
};

/* Reads the current regular file's content into the store; digest out. */
static int
store_content(struct layer_ctx *c, const lbx_tar_entry *te, uint8_t digest[LBX_DIGEST_LEN],
              lbx_err **err)
{
  _cleanup_sha256_ lbx_sha256 *md = lbx_sha256_new();
  int r;
  if (te->size <= BUFFERED_MAX) {
    size_t got = 0;
    while (got < te->size) {
      ssize_t n = lbx_tar_read(c->tar, c->buf + got, (size_t)te->size - got, err);
      if (n < 0)
        return -1;
      if (n == 0)
        return lbx_error(err, EIO, "%s: \"%s\": unexpected end of data", c->name, te->path);
      got += (size_t)n;
    }
    lbx_sha256_update(md, c->buf, got);
    lbx_sha256_final(md, digest);
    if (got <= LBX_INLINE_MAX) {
      /* no lookup: the commit's INSERT OR IGNORE keeps the first copy, and
       * a query per small file costs more than carrying its bytes */
      r = lbx_layer_tx_put_inline(c->tx, digest, c->buf, got);
    } else {
      r = lbx_layer_tx_has_blob(c->tx, digest, got);
      if (r == 0)
        r = lbx_layer_tx_put_data(c->tx, digest, c->buf, got);
    }
    if (r < 0)
      return lbx_error_errno(err, -r, "%s: \"%s\": storing its content", c->name, te->path);
    return 0;
  }
  _cleanup_free_ char *tmp = NULL;
  _cleanup_close_ int fd = lbx_layer_tx_tmpfile(c->tx, &tmp);
  if (fd < 0)
    return lbx_error_errno(err, -fd, "store %s: creating a tmp file", lbx_store_root(c->s));
  /* A size the header declares (up to 2^63 in base-256) is refused before
   * a byte is written when the store cannot hold it: a gzip bomb that
   * inflates to such a file would otherwise fill the disk before failing. */
  struct statvfs vfs;
  if (fstatvfs(fd, &vfs) == 0 && vfs.f_frsize > 0 &&
      te->size / vfs.f_frsize >= (uint64_t)vfs.f_bavail) {
    lbx_layer_tx_drop_tmp(tmp);
    return lbx_error(err, ENOSPC,
                     "%s: \"%s\": its %llu bytes do not fit in the %llu bytes free in %s", c->name,
                     te->path, (unsigned long long)te->size,
                     (unsigned long long)vfs.f_bavail * vfs.f_frsize, lbx_store_root(c->s));
  }
  uint64_t left = te->size;
  while (left > 0) {
    ssize_t n =
        lbx_tar_read(c->tar, c->buf, left < BUFFERED_MAX ? (size_t)left : BUFFERED_MAX, err);
    if (n <= 0) {
      lbx_layer_tx_drop_tmp(tmp);
      if (n == 0)
        return lbx_error(err, EIO, "%s: \"%s\": unexpected end of data", c->name, te->path);
      return -1;
    }
    lbx_sha256_update(md, c->buf, (size_t)n);
    if ((r = lbx_write_all(fd, c->buf, (size_t)n)) < 0) {
      lbx_layer_tx_drop_tmp(tmp);
      return lbx_error_errno(err, -r, "%s: \"%s\": writing its content", c->name, te->path);
    }
    left -= (uint64_t)n;
  }
  lbx_sha256_final(md, digest);
  if ((r = lbx_layer_tx_put_file(c->tx, digest, fd, tmp, te->size)) < 0)
    return lbx_error_errno(err, -r, "%s: \"%s\": storing its content", c->name, te->path);
  return 0;
}

/* Linux names are at most NAME_MAX bytes: a longer one could be indexed but
 * never looked up (the kernel answers ENAMETOOLONG before asking the mount),
 * so it is refused here, as unpacking it with tar would fail. 0 or -1. */
static int
check_name_lengths(const char *path, const char *layer, const char *what, lbx_err **err)
{
  for (const char *p = path; *p;) {
    size_t len = strcspn(p, "/");
    if (len > NAME_MAX)
      return lbx_error(err, ENAMETOOLONG, "%s: %s \"%.40s...\": a name of %zu bytes (at most %d)",
                       layer, what, p, len, NAME_MAX);
    p += len;
    p += *p == '/';
  }
  return 0;
}

static int
index_entries(struct layer_ctx *c, lbx_err **err)
{
  const lbx_tar_entry *te;
  int r;
  while ((r = lbx_tar_next(c->tar, &te, err)) == 1) {
    _cleanup_free_ char *path = NULL, *link = NULL;
    if (lbx_tar_clean_path(te->path, &path, err) < 0)
      return lbx_error_prefix(err, "%s", c->name);
    if (te->type == LBX_TAR_HARDLINK && lbx_tar_clean_path(te->linkname, &link, err) < 0)
      return lbx_error_prefix(err, "%s: hardlink \"%s\"", c->name, te->path);
    if (check_name_lengths(path, c->name, "entry", err) < 0 ||
        (link && check_name_lengths(link, c->name, "hardlink target", err) < 0))
      return -1;
    uint8_t digest[LBX_DIGEST_LEN];
    _cleanup_free_ uint8_t *xattrs = NULL;
    size_t xlen = 0;
    for (size_t i = 0; i < te->nxattrs; i++)
      lbx_xattrs_append(&xattrs, &xlen, te->xattrs[i].name, te->xattrs[i].value, te->xattrs[i].len);
    lbx_entry e = {
        .path = path,
        .link = link ? link : te->linkname,
        .type = entry_type(te->type),
        .mode = te->mode & 07777,
        .uid = te->uid,
        .gid = te->gid,
        .size = te->type == LBX_TAR_REG ? te->size : 0,
        .mtime_ns = mtime_ns(te->mtime_sec, te->mtime_nsec),
        .rdev = (te->type == LBX_TAR_CHR || te->type == LBX_TAR_BLK)
                    ? makedev(te->devmajor, te->devminor)
                    : 0,
        .offset = te->offset,
        .xattrs = xattrs,
        .xattrs_len = xlen,
    };
    if (e.type == LBX_T_REG) {
      if (store_content(c, te, digest, err) < 0)
        return -1;
      e.digest = digest;
    }
    if ((r = lbx_layer_tx_add_entry(c->tx, &e)) < 0)
      return lbx_error_errno(err, -r, "%s: \"%s\": keeping its row for the commit", c->name,
                             te->path);
  }
  return r;
}

bool
lbx_layer_media_type_known(const char *mt)
{
  static const char *const known[] = {
      "application/vnd.oci.image.layer.v1.tar",
      "application/vnd.oci.image.layer.v1.tar+gzip",
      "application/vnd.oci.image.layer.v1.tar+zstd",
      "application/vnd.docker.image.rootfs.diff.tar.gzip",
      "application/vnd.docker.image.rootfs.diff.tar",
      "application/vnd.oci.image.layer.nondistributable.v1.tar",
      "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
      "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
      "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
  };
  for (size_t i = 0; i < LBX_ARRAY_SIZE(known); i++)
    if (strcmp(mt, known[i]) == 0)
      return true;
  return false;
}

const char *
lbx_layer_media_type(enum lbx_compression c)
{
  switch (c) {
  case LBX_COMP_GZIP:
    return "application/vnd.oci.image.layer.v1.tar+gzip";
  case LBX_COMP_ZSTD:
    return "application/vnd.oci.image.layer.v1.tar+zstd";
  default:
    return "application/vnd.oci.image.layer.v1.tar";
  }
}

int
lbx_index_layer(lbx_store *s, const lbx_layer_src *src, lbx_layer_result *res, lbx_err **err)
{
  memset(res, 0, sizeof *res);
  _cleanup_(lbx_stream_freep) lbx_stream *st =
      lbx_stream_new(src->name, src->read, src->ctx, src->stream_flags);
  _cleanup_(lbx_layer_tx_freep) lbx_layer_tx *tx = NULL;
  if (lbx_layer_tx_begin(s, &tx, err) < 0)
    return -1;
  /* declared after st: cleanups run in reverse, so the pipe's thread stops
   * before the stream it reads is freed */
  _cleanup_(lbx_pipe_freep) lbx_pipe *pipe = NULL;
  if (lbx_pipe_start(st, &pipe, err) < 0)
    return -1;
  _cleanup_(lbx_tar_freep) lbx_tar *tar = lbx_tar_new(src->name, lbx_pipe_read, pipe);
  _cleanup_free_ uint8_t *buf = lbx_xmalloc(BUFFERED_MAX);
  struct layer_ctx c = {s, tx, tar, src->name, buf};
  if (index_entries(&c, err) < 0)
    return -1;
  if (lbx_pipe_finish(pipe, err) < 0 || lbx_stream_finish(st, res->digest, res->diff_id, err) < 0)
    return -1;
  res->compression = lbx_stream_compression(st);
  res->size = lbx_stream_in_bytes(st);
  if (src->digest && strcmp(src->digest, res->digest) != 0)
    return lbx_error(err, EBADMSG, "layer %s: digest mismatch: the data read has digest %s",
                     src->digest, res->digest);
  if (src->size && src->size != res->size)
    return lbx_error(err, EBADMSG, "layer %s: size mismatch: expected %llu bytes, read %llu",
                     src->name, (unsigned long long)src->size, (unsigned long long)res->size);
  if (src->diff_id && strcmp(src->diff_id, res->diff_id) != 0)
    return lbx_error(err, EBADMSG,
                     "layer %s: diff_id mismatch: the image config says %s, the data has %s",
                     src->name, src->diff_id, res->diff_id);
  return lbx_layer_tx_commit(tx, res->diff_id, lbx_stream_out_bytes(st), res->digest,
                             lbx_layer_media_type(res->compression), res->size, err);
}

struct job_queue {
  pthread_mutex_t mu;
  lbx_store *s;
  const lbx_layer_src *srcs;
  lbx_layer_result *res;
  size_t n, next;
  lbx_err *first;
};

static void *
worker(void *arg)
{
  struct job_queue *q = arg;
  for (;;) {
    pthread_mutex_lock(&q->mu);
    size_t i = q->next < q->n && !q->first ? q->next++ : q->n;
    pthread_mutex_unlock(&q->mu);
    if (i >= q->n)
      return NULL;
    lbx_err *e = NULL;
    if (lbx_index_layer(q->s, &q->srcs[i], &q->res[i], &e) < 0) {
      pthread_mutex_lock(&q->mu);
      if (!q->first)
        q->first = e;
      else
        lbx_error_free(e);
      pthread_mutex_unlock(&q->mu);
    }
  }
}

int
lbx_index_layers(lbx_store *s, const lbx_layer_src *srcs, size_t n, unsigned jobs,
                 lbx_layer_result *res, lbx_err **err)
{
  if (jobs == 0) {
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    jobs = cpus > 0 ? (unsigned)cpus : 1;
  }
  if (jobs > n)
    jobs = (unsigned)n;
  struct job_queue q = {PTHREAD_MUTEX_INITIALIZER, s, srcs, res, n, 0, NULL};
  if (jobs <= 1) {
    worker(&q);
  } else {
    pthread_t *t = lbx_xcalloc(jobs, sizeof *t);
    unsigned started = 0;
    for (; started < jobs; started++)
      if (pthread_create(&t[started], NULL, worker, &q) != 0)
        break;
    if (started == 0)
      worker(&q);
    for (unsigned i = 0; i < started; i++)
      pthread_join(t[i], NULL);
    free(t);
  }
  if (q.first) {
    if (err && !*err)
      *err = q.first;
    else
      lbx_error_free(q.first);
    return -1;
  }
  return 0;
}
