/* Images, their names, and the chains (merged trees) they point at. */
#include "store-internal.h"

#include <string.h>

struct lbx_chain_writer {
  lbx_store *s;
  int64_t chain;
  uint64_t nodes;
};

static void
bind_opt_text(sqlite3_stmt *st, int i, const char *v)
{
  if (v)
    sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
  else
    sqlite3_bind_null(st, i);
}

static void
bind_opt_blob(sqlite3_stmt *st, int i, const void *v, size_t len)
{
  if (v && len)
    sqlite3_bind_blob(st, i, v, (int)len, SQLITE_STATIC);
  else
    sqlite3_bind_null(st, i);
}

static int
step_done(sqlite3_stmt *st)
{
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  return rc == SQLITE_DONE ? 0 : -lbx_sqlite_errno(rc);
}

int
lbx_chain_writer_node(lbx_chain_writer *w, const lbx_node *n)
{
  sqlite3_stmt *st = lbx_stmt(w->s, ST_INSERT_NODE);
  if (!st)
    return -EIO;
  sqlite3_bind_int64(st, 1, w->chain);
  sqlite3_bind_int64(st, 2, (int64_t)n->ino);
  sqlite3_bind_int(st, 3, (int)n->type);
  sqlite3_bind_int(st, 4, (int)n->mode);
  sqlite3_bind_int64(st, 5, n->uid);
  sqlite3_bind_int64(st, 6, n->gid);
  sqlite3_bind_int64(st, 7, n->nlink);
  sqlite3_bind_int64(st, 8, (int64_t)n->size);
  sqlite3_bind_int64(st, 9, n->mtime_ns);
  sqlite3_bind_int64(st, 10, (int64_t)n->rdev);
  bind_opt_text(st, 11, n->link);
  bind_opt_blob(st, 12, n->digest, n->digest ? LBX_DIGEST_LEN : 0);
  bind_opt_blob(st, 13, n->xattrs, n->xattrs_len);
  w->nodes++;
  return step_done(st);
}

int
lbx_chain_writer_dirent(lbx_chain_writer *w, uint64_t parent, const char *name, uint64_t ino)
{
  sqlite3_stmt *st = lbx_stmt(w->s, ST_INSERT_DIRENT);
  if (!st)
    return -EIO;
  sqlite3_bind_int64(st, 1, w->chain);
  sqlite3_bind_int64(st, 2, (int64_t)parent);
  sqlite3_bind_text(st, 3, name, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 4, (int64_t)ino);
  return step_done(st);
}

static int64_t
chain_row(lbx_store *s, const char *chain_id)
{
  _cleanup_reset_ sqlite3_stmt *st = lbx_stmt(s, ST_HAS_CHAIN);
  if (!st)
    return -EIO;
  sqlite3_bind_text(st, 1, chain_id, -1, SQLITE_STATIC);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW)
    return sqlite3_column_int64(st, 0);
  return rc == SQLITE_DONE ? 0 : -lbx_sqlite_errno(rc);
}

int
lbx_store_has_chain(lbx_store *s, const char *chain_id)
{
  LBX_LOCKED(s);
  int64_t r = chain_row(s, chain_id);
  return r < 0 ? (int)r : r > 0;
}

static int64_t
layer_row(lbx_store *s, const char *diff_id)
{
  _cleanup_reset_ sqlite3_stmt *st = lbx_stmt(s, ST_LAYER_ID);
  if (!st)
    return -EIO;
  sqlite3_bind_text(st, 1, diff_id, -1, SQLITE_STATIC);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW)
    return sqlite3_column_int64(st, 0);
  return rc == SQLITE_DONE ? -ENOENT : -lbx_sqlite_errno(rc);
}

static int
add_digest(lbx_store *s, const char *digest, const char *id)
{
  sqlite3_stmt *st = lbx_stmt(s, ST_INSERT_IMAGE_DIGEST);
  if (!st)
    return -1;
  sqlite3_bind_text(st, 1, digest, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
  return step_done(st);
}

int
lbx_store_image_add_digest(lbx_store *s, const char *id, const char *digest, lbx_err **err)
{
  LBX_LOCKED(s);
  return add_digest(s, digest, id) < 0 ? lbx_sql_error(s, err, "adding an image digest") : 0;
}

static int
image_commit_locked(lbx_store *s, const lbx_image_info *info, lbx_chain_build_fn build,
                    void *build_ctx, const char *const *names, size_t nnames, lbx_err **err)
{
  _cleanup_free_ int64_t *layers = lbx_xcalloc(info->nlayers, sizeof *layers);
  uint64_t size = 0;
  for (size_t i = 0; i < info->nlayers; i++) {
    layers[i] = layer_row(s, info->layers[i].diff_id);
    if (layers[i] == -ENOENT)
      return lbx_error(err, ENOENT, "layer %s is not indexed", info->layers[i].diff_id);
    if (layers[i] < 0)
      return lbx_sql_error(s, err, "looking up a layer");
  }
  {
    /* the image's size: its layers' uncompressed bytes */
    _cleanup_finalize_ sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, "SELECT size FROM layers WHERE id = ?1", -1, &st, NULL) !=
        SQLITE_OK)
      return lbx_sql_error(s, err, "preparing");
    for (size_t i = 0; i < info->nlayers; i++) {
      sqlite3_bind_int64(st, 1, layers[i]);
      if (sqlite3_step(st) == SQLITE_ROW)
        size += (uint64_t)sqlite3_column_int64(st, 0);
      sqlite3_reset(st);
    }
  }

  int64_t chain = chain_row(s, info->chain_id);
  if (chain < 0)
    return lbx_sql_error(s, err, "looking up the chain");
  if (chain == 0) {
    sqlite3_stmt *st = lbx_stmt(s, ST_INSERT_CHAIN);
    if (!st)
      return lbx_sql_error(s, err, "preparing");
    sqlite3_bind_text(st, 1, info->chain_id, -1, SQLITE_STATIC);
    if (step_done(st) < 0)
      return lbx_sql_error(s, err, "adding the chain");
    chain = sqlite3_last_insert_rowid(s->db);
    st = lbx_stmt(s, ST_INSERT_CHAIN_LAYER);
    if (!st)
      return lbx_sql_error(s, err, "preparing");
    for (size_t i = 0; i < info->nlayers; i++) {
      sqlite3_bind_int64(st, 1, chain);
      sqlite3_bind_int64(st, 2, (int64_t)i);
      sqlite3_bind_int64(st, 3, layers[i]);
      if (step_done(st) < 0)
        return lbx_sql_error(s, err, "adding the chain");
    }
    lbx_chain_writer w = {s, chain, 0};
    if (build(build_ctx, &w, err) < 0)
      return -1;
    _cleanup_finalize_ sqlite3_stmt *up = NULL;
    if (sqlite3_prepare_v2(s->db, "UPDATE chains SET nodes = ?2 WHERE id = ?1", -1, &up, NULL) !=
        SQLITE_OK)
      return lbx_sql_error(s, err, "preparing");
    sqlite3_bind_int64(up, 1, chain);
    sqlite3_bind_int64(up, 2, (int64_t)w.nodes);
    if (sqlite3_step(up) != SQLITE_DONE)
      return lbx_sql_error(s, err, "adding the chain");
  }

  sqlite3_stmt *st = lbx_stmt(s, ST_INSERT_IMAGE);
  if (!st)
    return lbx_sql_error(s, err, "preparing");
  sqlite3_bind_text(st, 1, info->id, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, chain);
  sqlite3_bind_blob(st, 3, info->config, (int)info->config_len, SQLITE_STATIC);
  bind_opt_blob(st, 4, info->manifest, info->manifest_len);
  sqlite3_bind_int64(st, 5, info->created_ns);
  sqlite3_bind_int64(st, 6, lbx_now_ns());
  sqlite3_bind_int64(st, 7, (int64_t)size);
  bind_opt_text(st, 8, info->digest);
  if (step_done(st) < 0)
    return lbx_sql_error(s, err, "adding the image");
  if (info->digest && add_digest(s, info->digest, info->id) < 0)
    return lbx_sql_error(s, err, "adding the image's digest");

  st = lbx_stmt(s, ST_DELETE_IMAGE_LAYERS);
  if (!st)
    return lbx_sql_error(s, err, "preparing");
  sqlite3_bind_text(st, 1, info->id, -1, SQLITE_STATIC);
  if (step_done(st) < 0)
    return lbx_sql_error(s, err, "adding the image");
  st = lbx_stmt(s, ST_INSERT_IMAGE_LAYER);
  if (!st)
    return lbx_sql_error(s, err, "preparing");
  for (size_t i = 0; i < info->nlayers; i++) {
    const lbx_image_layer *l = &info->layers[i];
    sqlite3_bind_text(st, 1, info->id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (int64_t)i);
    sqlite3_bind_int64(st, 3, layers[i]);
    sqlite3_bind_text(st, 4, l->digest ? l->digest : l->diff_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, l->media_type ? l->media_type : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, (int64_t)l->size);
    if (step_done(st) < 0)
      return lbx_sql_error(s, err, "adding the image layers");
  }

  st = lbx_stmt(s, ST_SET_NAME);
  if (!st)
    return lbx_sql_error(s, err, "preparing");
  for (size_t i = 0; i < nnames; i++) {
    sqlite3_bind_text(st, 1, names[i], -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, info->id, -1, SQLITE_STATIC);
    if (step_done(st) < 0)
      return lbx_sql_error(s, err, "naming the image");
  }
  return 0;
}

int
lbx_store_image_commit(lbx_store *s, const lbx_image_info *info, lbx_chain_build_fn build,
                       void *build_ctx, const char *const *names, size_t nnames, lbx_err **err)
{
  LBX_LOCKED(s);
  if (lbx_exec(s, "BEGIN IMMEDIATE", err) < 0)
    return -1;
  if (image_commit_locked(s, info, build, build_ctx, names, nnames, err) < 0 ||
      lbx_exec(s, "COMMIT", err) < 0) {
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return lbx_error_prefix(err, "image %.12s", info->id);
  }
  return 0;
}

void
lbx_image_row_clear(lbx_image_row *row)
{
  for (char **p = row->names; p && *p; p++)
    free(*p);
  free(row->names);
  free(row->chain_id);
  row->names = NULL;
  row->chain_id = NULL;
}

void
lbx_image_rows_free(lbx_image_row *rows, size_t n)
{
  if (!rows)
    return;
  for (size_t i = 0; i < n; i++)
    lbx_image_row_clear(&rows[i]);
  free(rows);
}

static char **
image_names(lbx_store *s, const char *id)
{
  _cleanup_reset_ sqlite3_stmt *st = lbx_stmt(s, ST_IMAGE_NAMES);
  size_t n = 0;
  char **v = lbx_xcalloc(1, sizeof *v);
  if (!st)
    return v;
  sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
  while (sqlite3_step(st) == SQLITE_ROW) {
    v = lbx_xrealloc(v, (n + 2) * sizeof *v);
    v[n++] = lbx_xstrdup((const char *)sqlite3_column_text(st, 0));
    v[n] = NULL;
  }
  return v;
}

int
lbx_store_images(lbx_store *s, lbx_image_row **rows, size_t *n, lbx_err **err)
{
  LBX_LOCKED(s);
  _cleanup_reset_ sqlite3_stmt *st = lbx_stmt(s, ST_IMAGES);
  if (!st)
    return lbx_sql_error(s, err, "preparing");
  lbx_image_row *v = NULL;
  size_t k = 0;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    v = lbx_xrealloc(v, (k + 1) * sizeof *v);
    lbx_image_row *r = &v[k++];
    memset(r, 0, sizeof *r);
    snprintf(r->id, sizeof r->id, "%s", (const char *)sqlite3_column_text(st, 0));
    r->created_ns = sqlite3_column_int64(st, 1);
    r->loaded_ns = sqlite3_column_int64(st, 2);
    r->size = (uint64_t)sqlite3_column_int64(st, 3);
    r->chain_id = lbx_xstrdup((const char *)sqlite3_column_text(st, 4));
    r->nlayers = (uint64_t)sqlite3_column_int64(st, 5);
    r->names = image_names(s, r->id);
  }
  if (rc != SQLITE_DONE) {
    lbx_image_rows_free(v, k);
    return lbx_sql_error(s, err, "listing images");
  }
  *rows = v;
  *n = k;
  return 0;
}

int
lbx_store_image_by_name(lbx_store *s, const char *name, char id[LBX_DIGEST_HEX])
{
  LBX_LOCKED(s);
  _cleanup_reset_ sqlite3_stmt *st = lbx_stmt(s, ST_IMAGE_BY_NAME);
  if (!st)
    return -EIO;
  sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    snprintf(id, LBX_DIGEST_HEX, "%s", (const char *)sqlite3_column_text(st, 0));
    return 1;
  }
  return rc == SQLITE_DONE ? 0 : -lbx_sqlite_errno(rc);
}

int
lbx_store_image_by_digest(lbx_store *s, const char *digest, char id[LBX_DIGEST_HEX])
{
  LBX_LOCKED(s);
  _cleanup_reset_ sqlite3_stmt *st = lbx_stmt(s, ST_IMAGE_BY_DIGEST);
  if (!st)
    return -EIO;
  sqlite3_bind_text(st, 1, digest, -1, SQLITE_STATIC);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    snprintf(id, LBX_DIGEST_HEX, "%s", (const char *)sqlite3_column_text(st, 0));
    return 1;
  }
  return rc == SQLITE_DONE ? 0 : -lbx_sqlite_errno(rc);
}

int
lbx_store_image_by_id(lbx_store *s, const char *prefix, char id[LBX_DIGEST_HEX])
{
  size_t len = strlen(prefix);
  if (len < 3 || len > 64 || strspn(prefix, "0123456789abcdef") != len)
    return 0;
  LBX_LOCKED(s);
  _cleanup_reset_ sqlite3_stmt *st = lbx_stmt(s, ST_IMAGE_BY_ID);
  if (!st)
    return -EIO;
  sqlite3_bind_text(st, 1, prefix, -1, SQLITE_STATIC);
  int found = 0, rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    if (found++)
      return -EEXIST;
    snprintf(id, LBX_DIGEST_HEX, "%s", (const char *)sqlite3_column_text(st, 0));
  }
  return rc == SQLITE_DONE ? found : -lbx_sqlite_errno(rc);
}

int
lbx_store_names_matching(lbx_store *s, const char *repo_suffix, const char *tag, char ***names,
                         size_t *n)
{
  /* LIKE "%/<suffix>:<tag>" with the pattern characters of the name escaped */
  size_t cap = 2 * (strlen(repo_suffix) + strlen(tag)) + 8, k = 0;
  _cleanup_free_ char *pat = lbx_xmalloc(cap);
  pat[k++] = '%';
  pat[k++] = '/';
  for (int part = 0; part < 2; part++) {
    for (const char *c = part ? tag : repo_suffix; *c; c++) {
      if (*c == '%' || *c == '_' || *c == '\\')
        pat[k++] = '\\';
      pat[k++] = *c;
    }
    if (!part)
      pat[k++] = ':';
  }
  pat[k] = '\0';
  LBX_LOCKED(s);
  _cleanup_reset_ sqlite3_stmt *st = lbx_stmt(s, ST_NAMES_LIKE);
  if (!st)
    return -EIO;
  sqlite3_bind_text(st, 1, pat, -1, SQLITE_STATIC);
  char **v = NULL;
  size_t m = 0;
  while (sqlite3_step(st) == SQLITE_ROW) {
    const char *name = (const char *)sqlite3_column_text(st, 0);
    /* LIKE is case-insensitive for ASCII; names are compared exactly */
    const char *colon = strrchr(name, ':');
    size_t rl = strlen(repo_suffix);
    if (!colon || strcmp(colon + 1, tag) != 0 || (size_t)(colon - name) < rl + 1 ||
        strncmp(colon - rl, repo_suffix, rl) != 0 || colon[-(long)rl - 1] != '/')
      continue;
    v = lbx_xrealloc(v, (m + 1) * sizeof *v);
    v[m++] = lbx_xstrdup(name);
  }
  *names = v;
  *n = m;
  return 0;
}

int
lbx_store_image_get(lbx_store *s, const char *id, lbx_image_row *row, char **config,
                    size_t *config_len, lbx_err **err)
{
  LBX_LOCKED(s);
  _cleanup_reset_ sqlite3_stmt *st = lbx_stmt(s, ST_IMAGE_GET);
  if (!st)
    return lbx_sql_error(s, err, "preparing");
  sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_DONE)
    return lbx_error(err, ENOENT, "image %s is not in the store", id);
  if (rc != SQLITE_ROW)
    return lbx_sql_error(s, err, "reading the image");
  memset(row, 0, sizeof *row);
  snprintf(row->id, sizeof row->id, "%s", id);
  row->created_ns = sqlite3_column_int64(st, 0);
  row->loaded_ns = sqlite3_column_int64(st, 1);
  row->size = (uint64_t)sqlite3_column_int64(st, 2);
  row->chain_id = lbx_xstrdup((const char *)sqlite3_column_text(st, 3));
  row->nlayers = (uint64_t)sqlite3_column_int64(st, 5);
  if (config) {
    size_t len = (size_t)sqlite3_column_bytes(st, 4);
    char *c = lbx_xmalloc(len + 1);
    memcpy(c, sqlite3_column_blob(st, 4), len);
    c[len] = '\0';
    *config = c;
    if (config_len)
      *config_len = len;
  }
  row->names = image_names(s, id);
  return 0;
}

void
lbx_image_layers_free(lbx_image_layer *l, size_t n)
{
  if (!l)
    return;
  for (size_t i = 0; i < n; i++) {
    free((char *)l[i].diff_id);
    free((char *)l[i].digest);
    free((char *)l[i].media_type);
  }
  free(l);
}

int
lbx_store_image_layers(lbx_store *s, const char *id, lbx_image_layer **layers, size_t *n,
                       lbx_err **err)
{
  LBX_LOCKED(s);
  _cleanup_reset_ sqlite3_stmt *st = lbx_stmt(s, ST_IMAGE_LAYERS);
  if (!st)
    return lbx_sql_error(s, err, "preparing");
  sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
  lbx_image_layer *v = NULL;
  size_t k = 0;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    v = lbx_xrealloc(v, (k + 1) * sizeof *v);
    v[k++] = (lbx_image_layer){
        lbx_xstrdup((const char *)sqlite3_column_text(st, 0)),
        lbx_xstrdup((const char *)sqlite3_column_text(st, 1)),
        lbx_xstrdup((const char *)sqlite3_column_text(st, 2)),
        (uint64_t)sqlite3_column_int64(st, 3),
    };
  }
  if (rc != SQLITE_DONE) {
    lbx_image_layers_free(v, k);
    return lbx_sql_error(s, err, "reading image layers");
  }
  *layers = v;
  *n = k;
  return 0;
}

int
lbx_store_tag(lbx_store *s, const char *name, const char *id, lbx_err **err)
{
  LBX_LOCKED(s);
  sqlite3_stmt *st = lbx_stmt(s, ST_SET_NAME);
  if (!st)
    return lbx_sql_error(s, err, "preparing");
  sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
  if (step_done(st) < 0)
    return lbx_sql_error(s, err, "naming the image");
  return 0;
}

int
lbx_store_untag(lbx_store *s, const char *name, lbx_err **err)
{
  LBX_LOCKED(s);
  sqlite3_stmt *st = lbx_stmt(s, ST_DELETE_NAME);
  if (!st)
    return lbx_sql_error(s, err, "preparing");
  sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
  if (step_done(st) < 0)
    return lbx_sql_error(s, err, "removing a name");
  return sqlite3_changes(s->db) > 0;
}

int
lbx_store_image_digests(lbx_store *s, const char *id, char ***out, lbx_err **err)
{
  LBX_LOCKED(s);
  _cleanup_reset_ sqlite3_stmt *st = lbx_stmt(s, ST_IMAGE_DIGESTS);
  if (!st)
    return lbx_sql_error(s, err, "reading an image's digests");
  sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
  char **v = lbx_xcalloc(1, sizeof *v);
  size_t n = 0;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    v = lbx_xrealloc(v, (n + 2) * sizeof *v);
    v[n++] = lbx_xstrdup((const char *)sqlite3_column_text(st, 0));
    v[n] = NULL;
  }
  if (rc != SQLITE_DONE) {
    lbx_strv_free(v);
    return lbx_sql_error(s, err, "reading an image's digests");
  }
  *out = v;
  return 0;
}

int
lbx_store_image_users(lbx_store *s, const char *id, char **first)
{
  if (first)
    *first = NULL;
  LBX_LOCKED(s);
  _cleanup_reset_ sqlite3_stmt *st = lbx_stmt(s, ST_IMAGE_USERS);
  if (!st)
    return -EIO;
  sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
  if (sqlite3_step(st) != SQLITE_ROW)
    return -EIO;
  if (first && sqlite3_column_type(st, 1) != SQLITE_NULL)
    *first = lbx_xstrdup((const char *)sqlite3_column_text(st, 1));
  return sqlite3_column_int(st, 0);
}

int
lbx_store_image_delete(lbx_store *s, const char *id, lbx_err **err)
{
  LBX_LOCKED(s);
  /* the CLI removes an image's boxes (their dirs with their rows) first */
  static const char *const sql[] = {
      "DELETE FROM names WHERE image = ?1",
      "DELETE FROM image_digests WHERE image = ?1",
      "DELETE FROM image_layers WHERE image = ?1",
      "DELETE FROM images WHERE id = ?1",
  };
  if (lbx_exec(s, "BEGIN IMMEDIATE", err) < 0)
    return -1;
  for (size_t i = 0; i < LBX_ARRAY_SIZE(sql); i++) {
    _cleanup_finalize_ sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, sql[i], -1, &st, NULL) != SQLITE_OK ||
        (sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC), sqlite3_step(st)) != SQLITE_DONE) {
      lbx_sql_error(s, err, "removing the image");
      sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
      return -1;
    }
  }
  if (lbx_exec(s, "COMMIT", err) < 0) {
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return -1;
  }
  return 0;
}
