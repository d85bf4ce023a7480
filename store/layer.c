/* Indexing one layer: blobs written as the tar is read, rows kept for the
 * commit, one transaction once the blob files are durable. The rows wait in
 * a record stream, in memory up to SPILL_AT bytes and past that in an
 * unlinked file in the store's tmp/, so a layer of millions of entries costs
 * disk (page cache), not memory: its transaction must not start before the
 * syncfs, or the store's write lock would be held for the whole download. */
#include "store-internal.h"

#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

struct tx_inline {
  uint8_t digest[LBX_DIGEST_LEN];
  void *data;
  size_t len;
};

/* A record of the stream: an entry (its strings follow: path, link,
 * xattrs) or a blob file placed for the layer (digest and size only).
 * Native layout: the file never outlives the process that wrote it. */
enum { REC_ENTRY = 1, REC_FILE = 2 };
struct rec {
  uint8_t kind, has_digest, has_link, pad;
  uint32_t type, mode, uid, gid;
  uint32_t path_len, link_len, xattrs_len;
  uint64_t size;
  int64_t mtime_ns;
  uint64_t rdev, offset;
  uint8_t digest[LBX_DIGEST_LEN];
};

/* In memory below this; past it, written out in chunks of this size. */
#define SPILL_AT (4u << 20)

/* Inline contents wait in memory for the commit; past this many bytes a
 * layer's small files go to blob files instead, so a hostile layer of
 * millions of small distinct files cannot exhaust memory. */
#define INLINE_BUDGET (64u << 20)

/* Blob bytes a layer places between two early syncs (see sync_early). */
#define EARLY_SYNC_BYTES (32u << 20)

struct lbx_layer_tx {
  lbx_store *s;
  lbx_dset inl_set; /* digests in inl */
  size_t inl_bytes;
  uint8_t *recs; /* records not yet in the spill file */
  size_t rlen, rcap;
  int spill_fd; /* -1 until the records outgrow SPILL_AT */
  size_t nentries;
  struct tx_inline *inl;
  size_t ninl, cinl;
  bool wrote_files;
  uint64_t logical;
  /* The store's directory opened for this layer alone: syncfs reports a
   * writeback error once per open file, so layers committing at once on
   * one descriptor could take each other's errors and one of them would
   * commit rows naming a file that never reached the disk. */
  int syncfd;
  uint64_t unsynced; /* blob bytes placed since the last early sync began */
  pthread_t syncer;
  bool syncing;            /* syncer was started and not yet joined */
  atomic_bool syncer_done; /* set by syncer as it ends */
  int anon;                /* tmp files: 1 O_TMPFILE, 0 named, -1 not tried yet */
};

int
lbx_layer_tx_begin(lbx_store *s, lbx_layer_tx **out, lbx_err **err)
{
  if (s->flags & LBX_STORE_RDONLY)
    return lbx_error(err, EROFS, "store %s is open read-only", s->root);
  /* opened before any of the layer's files is written: its errors are
   * all reported to this descriptor */
  int fd = openat(s->rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return lbx_error_errno(err, errno, "store %s", s->root);
  lbx_layer_tx *tx = lbx_xcalloc(1, sizeof *tx);
  tx->s = s;
  tx->syncfd = fd;
  tx->spill_fd = -1;
  tx->anon = -1;
  *out = tx;
  return 0;
}

static void
join_syncer(lbx_layer_tx *tx)
{
  if (tx->syncing)
    pthread_join(tx->syncer, NULL);
  tx->syncing = false;
}

void
lbx_layer_tx_free(lbx_layer_tx *tx)
{
  if (!tx)
    return;
  join_syncer(tx);
  /* Blob files already renamed into place stay: they are harmless without
   * rows, another running load may rely on them, and gc sweeps them. */
  for (size_t i = 0; i < tx->ninl; i++)
    free(tx->inl[i].data);
  free(tx->inl);
  lbx_dset_clear(&tx->inl_set);
  free(tx->recs);
  if (tx->spill_fd >= 0)
    close(tx->spill_fd);
  close(tx->syncfd);
  free(tx);
}

static int record_file(lbx_layer_tx *tx, const uint8_t digest[LBX_DIGEST_LEN], uint64_t size);

/* The store's tmp/ holds it, so it counts against the store's file system
 * (where the rows go anyway), never the host's /tmp. */
static int
spill_open(lbx_layer_tx *tx)
{
  int fd = open(tx->s->tmpdir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR))
    return fd >= 0 ? fd : -errno;
  _cleanup_free_ char *p = lbx_xasprintf("%s/rows-XXXXXX", tx->s->tmpdir);
  fd = mkostemp(p, O_CLOEXEC);
  if (fd < 0)
    return -errno;
  unlink(p);
  return fd;
}

static int
spill_flush(lbx_layer_tx *tx)
{
  if (tx->rlen == 0)
    return 0;
  if (tx->spill_fd < 0) {
    int fd = spill_open(tx);
    if (fd < 0)
      return fd;
    tx->spill_fd = fd;
  }
  int r = lbx_write_all(tx->spill_fd, tx->recs, tx->rlen);
  if (r < 0)
    return r;
  tx->rlen = 0;
  if (tx->rcap > SPILL_AT) { /* grown for one huge record: give it back */
    tx->recs = lbx_xrealloc(tx->recs, SPILL_AT);
    tx->rcap = SPILL_AT;
  }
  return 0;
}

/* Appends one record: the fixed part, then up to three byte strings. */
static int
put_rec(lbx_layer_tx *tx, const struct rec *h, const void *a, size_t alen, const void *b,
        size_t blen, const void *c, size_t clen)
{
  size_t need = sizeof *h + alen + blen + clen;
  if (tx->rlen && tx->rlen + need > SPILL_AT) {
    int r = spill_flush(tx);
    if (r < 0)
      return r;
  }
  if (tx->rlen + need > tx->rcap) {
    size_t cap = tx->rcap ? tx->rcap : 64 << 10;
    while (cap < tx->rlen + need)
      cap *= 2;
    tx->recs = lbx_xrealloc(tx->recs, cap);
    tx->rcap = cap;
  }
  uint8_t *p = tx->recs + tx->rlen;
  memcpy(p, h, sizeof *h);
  p += sizeof *h;
  if (alen)
    memcpy(p, a, alen);
  if (blen)
    memcpy(p + alen, b, blen);
  if (clen)
    memcpy(p + alen + blen, c, clen);
  tx->rlen += need;
  return 0;
}

int
lbx_layer_tx_has_blob(lbx_layer_tx *tx, const uint8_t digest[LBX_DIGEST_LEN], uint64_t size)
{
  lbx_store *s = tx->s;
  if (size <= LBX_INLINE_MAX && lbx_dset_has(&tx->inl_set, digest))
    return 1;
  bool pending;
  {
    LBX_LOCKED(s);
    _cleanup_reset_ sqlite3_stmt *st = lbx_stmt(s, ST_HAS_BLOB);
    if (!st)
      return -EIO;
    sqlite3_bind_blob(st, 1, digest, LBX_DIGEST_LEN, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
      return 1;
    if (rc != SQLITE_DONE)
      return -lbx_sqlite_errno(rc);
    pending = lbx_dset_has(&s->pending, digest);
  }
  if (!pending)
    return 0;
  int r = record_file(tx, digest, size);
  return r < 0 ? r : 1;
}

int
lbx_layer_tx_put_inline(lbx_layer_tx *tx, const uint8_t digest[LBX_DIGEST_LEN], const void *data,
                        size_t len)
{
  if (len > LBX_INLINE_MAX)
    return -EINVAL;
  if (lbx_dset_has(&tx->inl_set, digest))
    return 0; /* the same small content twice in one layer: kept once */
  if (tx->inl_bytes + len > INLINE_BUDGET) {
    int r = lbx_layer_tx_has_blob(tx, digest, len);
    return r != 0 ? (r < 0 ? r : 0) : lbx_layer_tx_put_data(tx, digest, data, len);
  }
  lbx_dset_add(&tx->inl_set, digest);
  tx->inl_bytes += len;
  if (tx->ninl == tx->cinl) {
    tx->cinl = tx->cinl ? tx->cinl * 2 : 256;
    tx->inl = lbx_xrealloc(tx->inl, tx->cinl * sizeof *tx->inl);
  }
  struct tx_inline *b = &tx->inl[tx->ninl++];
  memcpy(b->digest, digest, LBX_DIGEST_LEN);
  b->data = lbx_xmalloc(len);
  memcpy(b->data, data, len);
  b->len = len;
  return 0;
}

static void *
syncer_main(void *arg)
{
  lbx_layer_tx *tx = arg;
  /* Its own descriptor: syncfs reports a writeback error once per open
   * file, and the commit's syncfs (tx->syncfd) must still see any. */
  int fd = open(tx->s->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    (void)syncfs(fd);
    close(fd);
  }
  atomic_store(&tx->syncer_done, true);
  return NULL;
}

/* The commit's syncfs waited for the whole layer's blob files at once (0.2 s
 * of a 0.9 s load of a 200 MB layer, the disk idle until then). A thread
 * syncs every EARLY_SYNC_BYTES while the layer is still being read, so the
 * disk writes beside the inflate and the commit's syncfs finds little left.
 * Durability still rests on that last syncfs alone. */
static void
sync_early(lbx_layer_tx *tx, uint64_t size)
{
  tx->unsynced += size;
  if (tx->unsynced < EARLY_SYNC_BYTES)
    return;
  if (tx->syncing) {
    if (!atomic_load(&tx->syncer_done))
      return; /* the next one starts once this one is done */
    join_syncer(tx);
  }
  tx->unsynced = 0;
  atomic_store(&tx->syncer_done, false);
  tx->syncing = pthread_create(&tx->syncer, NULL, syncer_main, tx) == 0;
}

static int
record_file(lbx_layer_tx *tx, const uint8_t digest[LBX_DIGEST_LEN], uint64_t size)
{
  struct rec h = {.kind = REC_FILE, .has_digest = 1, .size = size};
  memcpy(h.digest, digest, LBX_DIGEST_LEN);
  int r = put_rec(tx, &h, NULL, 0, NULL, 0, NULL, 0);
  if (r < 0)
    return r;
  tx->wrote_files = true;
  sync_early(tx, size);
  LBX_LOCKED(tx->s);
  lbx_dset_add(&tx->s->pending, digest);
  return 0;
}

/* Gives an O_TMPFILE file the name path (its directory must exist). */
static int
link_anon(int fd, const char *path)
{
  char self[64];
  snprintf(self, sizeof self, "/proc/self/fd/%d", fd);
  return linkat(AT_FDCWD, self, AT_FDCWD, path, AT_SYMLINK_FOLLOW) == 0 ? 0 : -errno;
}

/* Puts a synced file over path in one step: a named tmp file is renamed,
 * an anonymous one is first named in tmp/. */
static int
replace_with(lbx_layer_tx *tx, int fd, const char *tmp, const char *path)
{
  if (tmp)
    return rename(tmp, path) == 0 ? 0 : -errno;
  for (unsigned i = 0;; i++) {
    char side[4096];
    snprintf(side, sizeof side, "%s/blob-%ld-%u", tx->s->tmpdir, (long)getpid(), i);
    int r = link_anon(fd, side);
    if (r == -EEXIST && i < 1000)
      continue;
    if (r < 0)
      return r;
    if (rename(side, path) == 0)
      return 0;
    r = -errno;
    unlink(side);
    return r;
  }
}

/* Names a written tmp file by its content address, making the fan-out
 * directory on first use. The file is 0444: contents are immutable. tmp is
 * NULL for an O_TMPFILE file. */
static int
place_blob(lbx_layer_tx *tx, const uint8_t digest[LBX_DIGEST_LEN], int fd, const char *tmp)
{
  char path[4096];
  lbx_blob_path(tx->s, digest, path, sizeof path);
  for (int attempt = 0; attempt < 2; attempt++) {
    /* Never replace a file another load may already have synced and be
     * about to commit a row for: that row would then name our unsynced
     * copy. */
    int r = tmp ? (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) == 0 ? 0 : -errno)
                : link_anon(fd, path);
    if (r == 0)
      return 0;
    if (r == -EEXIST) {
      /* A file without a row: maybe torn by a crash, maybe another load's.
       * Replace it only with bytes already on disk. */
      if (fdatasync(fd) < 0)
        return -errno;
      return replace_with(tx, fd, tmp, path);
    }
    if (r != -ENOENT || attempt)
      return r;
    char *slash = strrchr(path, '/');
    *slash = '\0';
    if (mkdir(path, 0700) < 0 && errno != EEXIST)
      return -errno;
    *slash = '/';
  }
  return -EIO;
}

/* An O_TMPFILE file when the store's file system and /proc allow (*path
 * NULL), else a named one in tmp/. Anonymous files make the layer's blob
 * writes touch one directory each instead of three times tmp/, whose block
 * the early syncs kept under writeback: the tar thread waited on it (85 ms
 * of a 0.8 s pull). A killed load leaves no tmp file behind either. */
int
lbx_layer_tx_tmpfile(lbx_layer_tx *tx, char **path)
{
  *path = NULL;
  if (tx->anon != 0) {
    int fd = open(tx->s->tmpdir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0 && (tx->anon == 1 || (errno != EOPNOTSUPP && errno != EISDIR)))
      return -errno;
    if (fd >= 0 && tx->anon < 0) {
      /* linkat needs /proc to name the file (AT_EMPTY_PATH needs a
       * capability a rootless user lacks) */
      char self[64];
      snprintf(self, sizeof self, "/proc/self/fd/%d", fd);
      tx->anon = access(self, F_OK) == 0;
      if (!tx->anon) {
        close(fd);
        fd = -1;
      }
    }
    if (fd >= 0)
      return fd;
    tx->anon = 0;
  }
  char *p = lbx_xasprintf("%s/blob-XXXXXX", tx->s->tmpdir);
  int fd = mkostemp(p, O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    free(p);
    return -e;
  }
  *path = p;
  return fd;
}

void
lbx_layer_tx_drop_tmp(const char *path)
{
  if (path)
    unlink(path);
}

int
lbx_layer_tx_put_file(lbx_layer_tx *tx, const uint8_t digest[LBX_DIGEST_LEN], int fd,
                      const char *path, uint64_t size)
{
  int r = lbx_layer_tx_has_blob(tx, digest, size);
  if (r != 0) {
    lbx_layer_tx_drop_tmp(path);
    return r < 0 ? r : 0;
  }
  if (fchmod(fd, 0444) < 0 || (r = place_blob(tx, digest, fd, path)) < 0) {
    r = r < 0 ? r : -errno;
    lbx_layer_tx_drop_tmp(path);
    return r;
  }
  return record_file(tx, digest, size);
}

int
lbx_layer_tx_put_data(lbx_layer_tx *tx, const uint8_t digest[LBX_DIGEST_LEN], const void *data,
                      size_t len)
{
  _cleanup_free_ char *path = NULL;
  _cleanup_close_ int fd = lbx_layer_tx_tmpfile(tx, &path);
  if (fd < 0)
    return fd;
  int r = lbx_write_all(fd, data, len);
  if (r < 0) {
    lbx_layer_tx_drop_tmp(path);
    return r;
  }
  return lbx_layer_tx_put_file(tx, digest, fd, path, len);
}

int
lbx_layer_tx_add_entry(lbx_layer_tx *tx, const lbx_entry *e)
{
  size_t plen = strlen(e->path), llen = e->link ? strlen(e->link) : 0;
  size_t xlen = e->xattrs ? e->xattrs_len : 0;
  if (plen > UINT32_MAX || llen > UINT32_MAX || xlen > UINT32_MAX)
    return -E2BIG;
  struct rec h = {
      .kind = REC_ENTRY,
      .has_digest = e->digest != NULL,
      .has_link = e->link != NULL,
      .type = e->type,
      .mode = e->mode,
      .uid = e->uid,
      .gid = e->gid,
      .path_len = (uint32_t)plen,
      .link_len = (uint32_t)llen,
      .xattrs_len = (uint32_t)xlen,
      .size = e->size,
      .mtime_ns = e->mtime_ns,
      .rdev = e->rdev,
      .offset = e->offset,
  };
  if (e->digest)
    memcpy(h.digest, e->digest, LBX_DIGEST_LEN);
  int r = put_rec(tx, &h, e->path, plen, e->link, llen, e->xattrs, xlen);
  if (r < 0)
    return r;
  tx->nentries++;
  if (e->type == LBX_T_REG)
    tx->logical += e->size;
  return 0;
}

/* Reads the records back in order: from memory, or from the spill file
 * through the same buffer (grown for a record bigger than it). */
struct rec_reader {
  lbx_layer_tx *tx;
  size_t pos;
  bool from_file;
};

/* Makes n bytes from pos available in tx->recs: 1, 0 at the end, -errno. */
static int
reader_need(struct rec_reader *rd, size_t n)
{
  lbx_layer_tx *tx = rd->tx;
  if (tx->rlen - rd->pos >= n)
    return 1;
  if (!rd->from_file)
    return rd->pos == tx->rlen ? 0 : -EIO;
  memmove(tx->recs, tx->recs + rd->pos, tx->rlen - rd->pos);
  tx->rlen -= rd->pos;
  rd->pos = 0;
  if (n > tx->rcap) {
    tx->recs = lbx_xrealloc(tx->recs, n);
    tx->rcap = n;
  }
  while (tx->rlen < n) {
    ssize_t got = read(tx->spill_fd, tx->recs + tx->rlen, tx->rcap - tx->rlen);
    if (got < 0 && errno == EINTR)
      continue;
    if (got < 0)
      return -errno;
    if (got == 0)
      return tx->rlen == 0 ? 0 : -EIO; /* a torn record: the file was cut */
    tx->rlen += (size_t)got;
  }
  return 1;
}

static int
reader_start(struct rec_reader *rd, lbx_layer_tx *tx)
{
  *rd = (struct rec_reader){.tx = tx};
  if (tx->spill_fd < 0)
    return 0;
  int r = spill_flush(tx);
  if (r < 0)
    return r;
  if (lseek(tx->spill_fd, 0, SEEK_SET) < 0)
    return -errno;
  rd->from_file = true;
  return 0;
}

/* The next record; for an entry, *e points into the buffer until the next
 * call. 1, 0 at the end, -errno. */
static int
reader_next(struct rec_reader *rd, struct rec *h, lbx_entry *e)
{
  int r = reader_need(rd, sizeof *h);
  if (r <= 0)
    return r;
  memcpy(h, rd->tx->recs + rd->pos, sizeof *h);
  size_t body = (size_t)h->path_len + h->link_len + h->xattrs_len;
  if ((r = reader_need(rd, sizeof *h + body)) <= 0)
    return r < 0 ? r : -EIO;
  const uint8_t *p = rd->tx->recs + rd->pos;
  rd->pos += sizeof *h + body;
  if (h->kind != REC_ENTRY)
    return 1;
  /* strings without their NUL: bound to SQL by their lengths in h */
  *e = (lbx_entry){
      .type = h->type,
      .mode = h->mode,
      .uid = h->uid,
      .gid = h->gid,
      .size = h->size,
      .mtime_ns = h->mtime_ns,
      .rdev = h->rdev,
      .offset = h->offset,
      .xattrs_len = h->xattrs_len,
  };
  e->path = (const char *)p + sizeof *h;
  e->link = h->has_link ? (const char *)p + sizeof *h + h->path_len : NULL;
  e->xattrs = h->xattrs_len ? p + sizeof *h + h->path_len + h->link_len : NULL;
  return 1;
}

static int
step_done(sqlite3_stmt *st)
{
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  return rc == SQLITE_DONE ? 0 : -1;
}

static int
insert_rows(lbx_layer_tx *tx, const char *diff_id, uint64_t tar_size, const char *digest,
            const char *media_type, uint64_t compressed_size, lbx_err **err)
{
  lbx_store *s = tx->s;
  sqlite3_stmt *st = lbx_stmt(s, ST_INSERT_LAYER);
  if (!st)
    return lbx_sql_error(s, err, "preparing");
  sqlite3_bind_text(st, 1, diff_id, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, (int64_t)tar_size);
  sqlite3_bind_int64(st, 3, (int64_t)tx->nentries);
  sqlite3_bind_int64(st, 4, (int64_t)tx->logical);
  sqlite3_bind_int64(st, 5, lbx_now_ns());
  if (step_done(st) < 0)
    return lbx_sql_error(s, err, "adding the layer");
  int64_t layer = sqlite3_last_insert_rowid(s->db);

  if (digest) {
    st = lbx_stmt(s, ST_INSERT_LAYER_BLOB);
    if (!st)
      return lbx_sql_error(s, err, "preparing");
    sqlite3_bind_text(st, 1, digest, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, layer);
    sqlite3_bind_text(st, 3, media_type, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, (int64_t)compressed_size);
    if (step_done(st) < 0)
      return lbx_sql_error(s, err, "adding the layer digest");
  }

  sqlite3_stmt *ins = lbx_stmt(s, ST_INSERT_ENTRY), *blob = lbx_stmt(s, ST_INSERT_BLOB);
  if (!ins || !blob)
    return lbx_sql_error(s, err, "preparing");
  struct rec_reader rd;
  struct rec h;
  lbx_entry e = {0};
  int r = reader_start(&rd, tx);
  for (int64_t seq = 0; r >= 0 && (r = reader_next(&rd, &h, &e)) > 0;) {
    if (h.kind == REC_FILE) {
      sqlite3_bind_blob(blob, 1, h.digest, LBX_DIGEST_LEN, SQLITE_STATIC);
      sqlite3_bind_int64(blob, 2, (int64_t)h.size);
      sqlite3_bind_null(blob, 3);
      if (step_done(blob) < 0)
        return lbx_sql_error(s, err, "adding a blob");
      continue;
    }
    sqlite3_bind_int64(ins, 1, layer);
    sqlite3_bind_int64(ins, 2, seq++);
    sqlite3_bind_text(ins, 3, e.path, (int)h.path_len, SQLITE_STATIC);
    sqlite3_bind_int(ins, 4, (int)e.type);
    sqlite3_bind_int(ins, 5, (int)e.mode);
    sqlite3_bind_int64(ins, 6, e.uid);
    sqlite3_bind_int64(ins, 7, e.gid);
    sqlite3_bind_int64(ins, 8, (int64_t)e.size);
    sqlite3_bind_int64(ins, 9, e.mtime_ns);
    sqlite3_bind_int64(ins, 10, (int64_t)e.rdev);
    if (e.link)
      sqlite3_bind_text(ins, 11, e.link, (int)h.link_len, SQLITE_STATIC);
    else
      sqlite3_bind_null(ins, 11);
    if (h.has_digest)
      sqlite3_bind_blob(ins, 12, h.digest, LBX_DIGEST_LEN, SQLITE_STATIC);
    else
      sqlite3_bind_null(ins, 12);
    sqlite3_bind_int64(ins, 13, (int64_t)e.offset);
    if (e.xattrs)
      sqlite3_bind_blob(ins, 14, e.xattrs, (int)e.xattrs_len, SQLITE_STATIC);
    else
      sqlite3_bind_null(ins, 14);
    if (step_done(ins) < 0)
      return lbx_sql_error(s, err, "adding an entry");
  }
  if (r < 0)
    return lbx_error_errno(err, -r, "store %s: reading back the layer's rows from %s", s->root,
                           s->tmpdir);

  for (size_t i = 0; i < tx->ninl; i++) {
    sqlite3_bind_blob(blob, 1, tx->inl[i].digest, LBX_DIGEST_LEN, SQLITE_STATIC);
    sqlite3_bind_int64(blob, 2, (int64_t)tx->inl[i].len);
    sqlite3_bind_blob(blob, 3, tx->inl[i].data, (int)tx->inl[i].len, SQLITE_STATIC);
    if (step_done(blob) < 0)
      return lbx_sql_error(s, err, "adding a blob");
  }
  return 0;
}

int
lbx_layer_tx_commit(lbx_layer_tx *tx, const char *diff_id, uint64_t tar_size, const char *digest,
                    const char *media_type, uint64_t compressed_size, lbx_err **err)
{
  lbx_store *s = tx->s;
  /* Durability first, once per layer: after this every blob file the rows
   * below name is on disk. syncfs covers files other running loads placed
   * that this layer relies on, too. */
  join_syncer(tx);
  if (tx->wrote_files && syncfs(tx->syncfd) < 0)
    return lbx_error_errno(err, errno, "store %s: syncing blob files", s->root);

  LBX_LOCKED(s);
  if (lbx_exec(s, "BEGIN IMMEDIATE", err) < 0)
    return -1;
  _cleanup_reset_ sqlite3_stmt *has = lbx_stmt(s, ST_HAS_LAYER);
  if (!has) {
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return lbx_sql_error(s, err, "preparing");
  }
  sqlite3_bind_text(has, 1, diff_id, -1, SQLITE_STATIC);
  int rc = sqlite3_step(has);
  sqlite3_reset(has);
  int r = 0;
  if (rc == SQLITE_ROW) {
    /* Another load indexed the same layer meanwhile: keep its rows. */
  } else if (rc != SQLITE_DONE) {
    r = lbx_sql_error(s, err, "looking up the layer");
  } else {
    r = insert_rows(tx, diff_id, tar_size, digest, media_type, compressed_size, err);
  }
  if (r < 0 || lbx_exec(s, "COMMIT", err) < 0) {
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return lbx_error_prefix(err, "layer %s", diff_id);
  }
  return 0;
}

int
lbx_store_has_layer(lbx_store *s, const char *diff_id)
{
  LBX_LOCKED(s);
  _cleanup_reset_ sqlite3_stmt *st = lbx_stmt(s, ST_HAS_LAYER);
  if (!st)
    return -EIO;
  sqlite3_bind_text(st, 1, diff_id, -1, SQLITE_STATIC);
  int rc = sqlite3_step(st);
  return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -lbx_sqlite_errno(rc);
}

int
lbx_store_layer_by_digest(lbx_store *s, const char *digest, char diff_id[LBX_DIGEST_STR])
{
  LBX_LOCKED(s);
  _cleanup_reset_ sqlite3_stmt *st = lbx_stmt(s, ST_LAYER_BY_DIGEST);
  if (!st)
    return -EIO;
  sqlite3_bind_text(st, 1, digest, -1, SQLITE_STATIC);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    snprintf(diff_id, LBX_DIGEST_STR, "%s", (const char *)sqlite3_column_text(st, 0));
    return 1;
  }
  return rc == SQLITE_DONE ? 0 : -lbx_sqlite_errno(rc);
}

int
lbx_store_layer_entries(lbx_store *s, const char *diff_id, lbx_entry_fn fn, void *ctx,
                        lbx_err **err)
{
  LBX_LOCKED(s);
  _cleanup_reset_ sqlite3_stmt *id = lbx_stmt(s, ST_LAYER_ID);
  if (!id)
    return lbx_sql_error(s, err, "preparing");
  sqlite3_bind_text(id, 1, diff_id, -1, SQLITE_STATIC);
  if (sqlite3_step(id) != SQLITE_ROW)
    return lbx_error(err, ENOENT, "layer %s is not in the store", diff_id);
  int64_t layer = sqlite3_column_int64(id, 0);

  _cleanup_reset_ sqlite3_stmt *st = lbx_stmt(s, ST_LAYER_ENTRIES);
  if (!st)
    return lbx_sql_error(s, err, "preparing");
  sqlite3_bind_int64(st, 1, layer);
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    lbx_entry e = {
        .path = (const char *)sqlite3_column_text(st, 0),
        .type = (uint32_t)sqlite3_column_int(st, 1),
        .mode = (uint32_t)sqlite3_column_int(st, 2),
        .uid = (uint32_t)sqlite3_column_int64(st, 3),
        .gid = (uint32_t)sqlite3_column_int64(st, 4),
        .size = (uint64_t)sqlite3_column_int64(st, 5),
        .mtime_ns = sqlite3_column_int64(st, 6),
        .rdev = (uint64_t)sqlite3_column_int64(st, 7),
        .link = (const char *)sqlite3_column_text(st, 8),
        .digest = sqlite3_column_bytes(st, 9) == LBX_DIGEST_LEN ? sqlite3_column_blob(st, 9) : NULL,
        .offset = (uint64_t)sqlite3_column_int64(st, 10),
        .xattrs = sqlite3_column_blob(st, 11),
        .xattrs_len = (size_t)sqlite3_column_bytes(st, 11),
    };
    int r = fn(ctx, &e);
    if (r != 0)
      return r;
  }
  if (rc != SQLITE_DONE)
    return lbx_sql_error(s, err, "reading layer entries");
  return 0;
}
