/* Reading a merged tree: the queries the FUSE daemon and tools run. Each is
 * one indexed lookup on a primary key. */
#include "store-internal.h"

#include <fcntl.h>
#include <string.h>

struct lbx_chain {
  lbx_store *s;
  int64_t id;
  uint64_t nodes;
  sqlite3_stmt *paths; /* lbx_chain_paths's, made on its first use */
};

int
lbx_chain_open(lbx_store *s, const char *chain_id, lbx_chain **out, lbx_err **err)
{
  LBX_LOCKED(s);
  _cleanup_reset_ sqlite3_stmt *st = lbx_stmt(s, ST_CHAIN_INFO);
  if (!st)
    return lbx_sql_error(s, err, "preparing");
  sqlite3_bind_text(st, 1, chain_id, -1, SQLITE_STATIC);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_DONE)
    return lbx_error(err, ENOENT, "chain %s is not in the store", chain_id);
  if (rc != SQLITE_ROW)
    return lbx_sql_error(s, err, "reading a chain");
  lbx_chain *c = lbx_xcalloc(1, sizeof *c);
  c->s = s;
  c->id = sqlite3_column_int64(st, 0);
  c->nodes = (uint64_t)sqlite3_column_int64(st, 1);
  *out = c;
  return 0;
}

void
lbx_chain_close(lbx_chain *c)
{
  if (c) {
    LBX_LOCKED(c->s);
    sqlite3_finalize(c->paths);
  }
  free(c);
}

uint64_t
lbx_chain_nodes(const lbx_chain *c)
{
  return c->nodes;
}

void
lbx_node_buf_clear(lbx_node_buf *b)
{
  free(b->link);
  free(b->xattrs);
  memset(b, 0, sizeof *b);
}

int
lbx_chain_getattr(lbx_chain *c, uint64_t ino, lbx_node_buf *out)
{
  LBX_LOCKED(c->s);
  _cleanup_reset_ sqlite3_stmt *st = lbx_stmt(c->s, ST_NODE_GET);
  if (!st)
    return -EIO;
  sqlite3_bind_int64(st, 1, c->id);
  sqlite3_bind_int64(st, 2, (int64_t)ino);
  int rc = sqlite3_step(st);
  if (rc != SQLITE_ROW)
    return rc == SQLITE_DONE ? -ENOENT : -lbx_sqlite_errno(rc);
  lbx_node_buf_clear(out);
  lbx_node *n = &out->n;
  n->ino = ino;
  n->type = (uint32_t)sqlite3_column_int(st, 0);
  n->mode = (uint32_t)sqlite3_column_int(st, 1);
  n->uid = (uint32_t)sqlite3_column_int64(st, 2);
  n->gid = (uint32_t)sqlite3_column_int64(st, 3);
  n->nlink = (uint32_t)sqlite3_column_int64(st, 4);
  n->size = (uint64_t)sqlite3_column_int64(st, 5);
  n->mtime_ns = sqlite3_column_int64(st, 6);
  n->rdev = (uint64_t)sqlite3_column_int64(st, 7);
  if (sqlite3_column_type(st, 8) != SQLITE_NULL)
    n->link = out->link = lbx_xstrdup((const char *)sqlite3_column_text(st, 8));
  if (sqlite3_column_bytes(st, 9) == LBX_DIGEST_LEN) {
    memcpy(out->digest, sqlite3_column_blob(st, 9), LBX_DIGEST_LEN);
    n->digest = out->digest;
  }
  size_t xl = (size_t)sqlite3_column_bytes(st, 10);
  if (xl) {
    out->xattrs = lbx_xmalloc(xl);
    memcpy(out->xattrs, sqlite3_column_blob(st, 10), xl);
    n->xattrs = out->xattrs;
    n->xattrs_len = xl;
  }
  return 0;
}

int
lbx_chain_lookup(lbx_chain *c, uint64_t parent, const char *name, uint64_t *ino)
{
  LBX_LOCKED(c->s);
  _cleanup_reset_ sqlite3_stmt *st = lbx_stmt(c->s, ST_DIRENT_LOOKUP);
  if (!st)
    return -EIO;
  sqlite3_bind_int64(st, 1, c->id);
  sqlite3_bind_int64(st, 2, (int64_t)parent);
  sqlite3_bind_text(st, 3, name, -1, SQLITE_STATIC);
  int rc = sqlite3_step(st);
  if (rc != SQLITE_ROW)
    return rc == SQLITE_DONE ? -ENOENT : -lbx_sqlite_errno(rc);
  *ino = (uint64_t)sqlite3_column_int64(st, 0);
  return 0;
}

int
lbx_chain_paths(lbx_chain *c, uint64_t ino, char ***paths)
{
  *paths = NULL;
  LBX_LOCKED(c->s);
  /* up from each entry naming ino to the root (ino 1), one directory at a
   * time: a directory is named by exactly one entry */
  if (!c->paths &&
      sqlite3_prepare_v2(c->s->db,
                         "WITH RECURSIVE up(dir, path) AS ("
                         "  SELECT parent, name FROM dirents WHERE chain = ?1 AND ino = ?2"
                         "  UNION ALL"
                         "  SELECT d.parent, d.name || '/' || up.path FROM up JOIN dirents d"
                         "    ON d.chain = ?1 AND d.ino = up.dir WHERE up.dir != 1"
                         ") SELECT path FROM up WHERE dir = 1",
                         -1, &c->paths, NULL) != SQLITE_OK)
    return -EIO;
  sqlite3_stmt *st = c->paths;
  sqlite3_bind_int64(st, 1, c->id);
  sqlite3_bind_int64(st, 2, (int64_t)ino);
  size_t n = 0;
  char **v = lbx_xcalloc(1, sizeof *v);
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    v = lbx_xrealloc(v, (n + 2) * sizeof *v);
    v[n++] = lbx_xstrdup((const char *)sqlite3_column_text(st, 0));
    v[n] = NULL;
  }
  sqlite3_reset(st);
  if (rc != SQLITE_DONE) {
    lbx_strv_free(v);
    return -lbx_sqlite_errno(rc);
  }
  *paths = v;
  return 0;
}

int
lbx_chain_readdir(lbx_chain *c, uint64_t dir, const char *after, lbx_dirent_fn fn, void *ctx)
{
  LBX_LOCKED(c->s);
  _cleanup_reset_ sqlite3_stmt *st = lbx_stmt(c->s, after ? ST_READDIR_AFTER : ST_READDIR_FIRST);
  if (!st)
    return -EIO;
  sqlite3_bind_int64(st, 1, c->id);
  sqlite3_bind_int64(st, 2, (int64_t)dir);
  if (after)
    sqlite3_bind_text(st, 3, after, -1, SQLITE_STATIC);
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    int r =
        fn(ctx, (const char *)sqlite3_column_text(st, 0), (uint64_t)sqlite3_column_int64(st, 1));
    if (r != 0)
      return r;
  }
  return rc == SQLITE_DONE ? 0 : -lbx_sqlite_errno(rc);
}

int
lbx_store_blob_open(lbx_store *s, const uint8_t digest[LBX_DIGEST_LEN], int *fd, void **data,
                    size_t *len)
{
  *fd = -1;
  *data = NULL;
  *len = 0;
  {
    LBX_LOCKED(s);
    _cleanup_reset_ sqlite3_stmt *st = lbx_stmt(s, ST_BLOB_GET);
    if (!st)
      return -EIO;
    sqlite3_bind_blob(st, 1, digest, LBX_DIGEST_LEN, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW)
      return rc == SQLITE_DONE ? -ENOENT : -lbx_sqlite_errno(rc);
    if (sqlite3_column_type(st, 1) != SQLITE_NULL) {
      *len = (size_t)sqlite3_column_bytes(st, 1);
      *data = lbx_xmalloc(*len);
      if (*len) /* an empty blob's pointer is NULL */
        memcpy(*data, sqlite3_column_blob(st, 1), *len);
      return 0;
    }
  }
  char path[4096];
  lbx_blob_path(s, digest, path, sizeof path);
  *fd = open(path, O_RDONLY | O_CLOEXEC);
  return *fd < 0 ? -errno : 0;
}
