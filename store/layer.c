/* Indexing one layer: blobs written as the tar is read, rows kept in memory
 * and committed in one transaction once the blob files are durable. */
#include "store-internal.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

struct tx_entry {
  lbx_entry e;
  uint8_t digest[LBX_DIGEST_LEN];
};

struct tx_inline {
  uint8_t digest[LBX_DIGEST_LEN];
  void *data;
  size_t len;
};

struct tx_file {
  uint8_t digest[LBX_DIGEST_LEN];
  uint64_t size;
};

/* Inline contents wait in memory for the commit; past this many bytes a
 * layer's small files go to blob files instead, so a hostile layer of
 * millions of small distinct files cannot exhaust memory. */
#define INLINE_BUDGET (64u << 20)

struct lbx_layer_tx {
  lbx_store *s;
  lbx_dset inl_set; /* digests in inl */
  size_t inl_bytes;
  struct tx_entry *entries;
  size_t nentries, centries;
  struct tx_inline *inl;
  size_t ninl, cinl;
  struct tx_file *files;
  size_t nfiles, cfiles;
  bool wrote_files;
  uint64_t logical;
};

int
lbx_layer_tx_begin(lbx_store *s, lbx_layer_tx **out, lbx_err **err)
{
  if (s->flags & LBX_STORE_RDONLY)
    return lbx_error(err, EROFS, "store %s is open read-only", s->root);
  lbx_layer_tx *tx = lbx_xcalloc(1, sizeof *tx);
  tx->s = s;
  *out = tx;
  return 0;
}

static void
entry_clear(lbx_entry *e)
{
  free((char *)e->path);
  free((char *)e->link);
  free((void *)e->xattrs);
}

void
lbx_layer_tx_free(lbx_layer_tx *tx)
{
  if (!tx)
    return;
  /* Blob files already renamed into place stay: they are harmless without
   * rows, another running load may rely on them, and gc sweeps them. */
  for (size_t i = 0; i < tx->nentries; i++)
    entry_clear(&tx->entries[i].e);
  for (size_t i = 0; i < tx->ninl; i++)
    free(tx->inl[i].data);
  free(tx->entries);
  free(tx->inl);
  lbx_dset_clear(&tx->inl_set);
  free(tx->files);
  free(tx);
}

static void record_file(lbx_layer_tx *tx, const uint8_t digest[LBX_DIGEST_LEN], uint64_t size);

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
  record_file(tx, digest, size);
  return 1;
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

static void
record_file(lbx_layer_tx *tx, const uint8_t digest[LBX_DIGEST_LEN], uint64_t size)
{
  if (tx->nfiles == tx->cfiles) {
    tx->cfiles = tx->cfiles ? tx->cfiles * 2 : 256;
    tx->files = lbx_xrealloc(tx->files, tx->cfiles * sizeof *tx->files);
  }
  memcpy(tx->files[tx->nfiles].digest, digest, LBX_DIGEST_LEN);
  tx->files[tx->nfiles++].size = size;
  tx->wrote_files = true;
  LBX_LOCKED(tx->s);
  lbx_dset_add(&tx->s->pending, digest);
}

/* Renames a written tmp file to its content address, making the fan-out
 * directory on first use. The file is 0444: contents are immutable. */
static int
place_blob(lbx_layer_tx *tx, const uint8_t digest[LBX_DIGEST_LEN], int fd, const char *tmp)
{
  char path[4096];
  lbx_blob_path(tx->s, digest, path, sizeof path);
  for (int attempt = 0; attempt < 2; attempt++) {
    /* Never replace a file another load may already have synced and be
     * about to commit a row for: that row would then name our unsynced
     * copy. */
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) == 0)
      return 0;
    if (errno == EEXIST) {
      /* A file without a row: maybe torn by a crash, maybe another load's.
       * Replace it only with bytes already on disk. */
      if (fdatasync(fd) < 0)
        return -errno;
      return rename(tmp, path) == 0 ? 0 : -errno;
    }
    if (errno != ENOENT || attempt)
      return -errno;
    char *slash = strrchr(path, '/');
    *slash = '\0';
    if (mkdir(path, 0700) < 0 && errno != EEXIST)
      return -errno;
    *slash = '/';
  }
  return -EIO;
}

int
lbx_layer_tx_tmpfile(lbx_layer_tx *tx, char **path)
{
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

int
lbx_layer_tx_put_file(lbx_layer_tx *tx, const uint8_t digest[LBX_DIGEST_LEN], int fd,
                      const char *path, uint64_t size)
{
  int r = lbx_layer_tx_has_blob(tx, digest, size);
  if (r != 0) {
    unlink(path);
    return r < 0 ? r : 0;
  }
  if (fchmod(fd, 0444) < 0 || (r = place_blob(tx, digest, fd, path)) < 0) {
    r = r < 0 ? r : -errno;
    unlink(path);
    return r;
  }
  record_file(tx, digest, size);
  return 0;
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
    unlink(path);
    return r;
  }
  return lbx_layer_tx_put_file(tx, digest, fd, path, len);
}

int
lbx_layer_tx_add_entry(lbx_layer_tx *tx, const lbx_entry *e)
{
  if (tx->nentries == tx->centries) {
    tx->centries = tx->centries ? tx->centries * 2 : 1024;
    tx->entries = lbx_xrealloc(tx->entries, tx->centries * sizeof *tx->entries);
  }
  struct tx_entry *t = &tx->entries[tx->nentries++];
  t->e = *e;
  t->e.path = lbx_xstrdup(e->path);
  t->e.link = e->link ? lbx_xstrdup(e->link) : NULL;
  if (e->xattrs && e->xattrs_len) {
    void *x = lbx_xmalloc(e->xattrs_len);
    memcpy(x, e->xattrs, e->xattrs_len);
    t->e.xattrs = x;
  } else {
    t->e.xattrs = NULL;
    t->e.xattrs_len = 0;
  }
  if (e->digest) {
    memcpy(t->digest, e->digest, LBX_DIGEST_LEN);
    t->e.digest = t->digest; /* fixed up after a realloc moves the array, see commit */
  }
  if (e->type == LBX_T_REG)
    tx->logical += e->size;
  return 0;
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

  st = lbx_stmt(s, ST_INSERT_ENTRY);
  if (!st)
    return lbx_sql_error(s, err, "preparing");
  for (size_t i = 0; i < tx->nentries; i++) {
    const lbx_entry *e = &tx->entries[i].e;
    sqlite3_bind_int64(st, 1, layer);
    sqlite3_bind_int64(st, 2, (int64_t)i);
    sqlite3_bind_text(st, 3, e->path, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 4, (int)e->type);
    sqlite3_bind_int(st, 5, (int)e->mode);
    sqlite3_bind_int64(st, 6, e->uid);
    sqlite3_bind_int64(st, 7, e->gid);
    sqlite3_bind_int64(st, 8, (int64_t)e->size);
    sqlite3_bind_int64(st, 9, e->mtime_ns);
    sqlite3_bind_int64(st, 10, (int64_t)e->rdev);
    if (e->link)
      sqlite3_bind_text(st, 11, e->link, -1, SQLITE_STATIC);
    else
      sqlite3_bind_null(st, 11);
    if (e->digest)
      sqlite3_bind_blob(st, 12, tx->entries[i].digest, LBX_DIGEST_LEN, SQLITE_STATIC);
    else
      sqlite3_bind_null(st, 12);
    sqlite3_bind_int64(st, 13, (int64_t)e->offset);
    if (e->xattrs)
      sqlite3_bind_blob(st, 14, e->xattrs, (int)e->xattrs_len, SQLITE_STATIC);
    else
      sqlite3_bind_null(st, 14);
    if (step_done(st) < 0)
      return lbx_sql_error(s, err, "adding an entry");
  }

  st = lbx_stmt(s, ST_INSERT_BLOB);
  if (!st)
    return lbx_sql_error(s, err, "preparing");
  for (size_t i = 0; i < tx->ninl; i++) {
    sqlite3_bind_blob(st, 1, tx->inl[i].digest, LBX_DIGEST_LEN, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (int64_t)tx->inl[i].len);
    sqlite3_bind_blob(st, 3, tx->inl[i].data, (int)tx->inl[i].len, SQLITE_STATIC);
    if (step_done(st) < 0)
      return lbx_sql_error(s, err, "adding a blob");
  }
  for (size_t i = 0; i < tx->nfiles; i++) {
    sqlite3_bind_blob(st, 1, tx->files[i].digest, LBX_DIGEST_LEN, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (int64_t)tx->files[i].size);
    sqlite3_bind_null(st, 3);
    if (step_done(st) < 0)
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
  if (tx->wrote_files && syncfs(s->rootfd) < 0)
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
