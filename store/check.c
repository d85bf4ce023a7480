/* The store's fsck (`lazybox system check`): the database against itself,
 * the blob files against their rows, and what crashes leave behind: files
 * no row names, tmp/ leftovers, box directories without rows, boxes still
 * recorded running. Problems go to the caller's callback; nothing here
 * prints. See docs/store-format.md, "Checking the store". */
#include "store-internal.h"
#include "crypto.h"

#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>

/* A box directory younger than this may belong to a `create` that has made
 * it and is about to insert its row (create does not take the store lock). */
#define BOX_DIR_GRACE_NS (60 * 1000000000LL)

struct check {
  lbx_store *s;
  const lbx_check_opts *o;
  lbx_check_stats *st;
  /* no load held the lock when the check began: files and layers without
   * rows are garbage, not the work of a load that has not committed yet */
  bool quiet;
  int blobfd; /* blobs/sha256, or -1 when it does not exist */
  sqlite3_stmt *used_by;
  /* unused rows found, reported once gc (with repair) has run */
  char **unused;
  size_t nunused;
};

static void report(struct check *c, lbx_check_kind kind, const char *object, const char *repair,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void
report(struct check *c, lbx_check_kind kind, const char *object, const char *repair,
       const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  _cleanup_free_ char *reason = NULL;
  if (vasprintf(&reason, fmt, ap) < 0)
    reason = NULL;
  va_end(ap);
  c->st->problems++;
  if (repair)
    c->st->repaired++;
  if (c->o->problem) {
    lbx_check_problem p = {kind, object, reason ? reason : "?", repair};
    c->o->problem(c->o->ctx, &p);
  }
}

/* ---- the database ---- */

/* Rows naming rows that are not there. The schema declares no foreign keys
 * (PRAGMA foreign_key_check has nothing to check), so these queries check
 * what they would. Each yields the object of every bad row. */
static const struct {
  const char *sql, *reason;
} ref_checks[] = {
    {"SELECT 'name ' || name FROM names WHERE image NOT IN (SELECT id FROM images)",
     "names an image that is not in the store"},
    {"SELECT 'digest ' || digest FROM image_digests WHERE image NOT IN (SELECT id FROM images)",
     "names an image that is not in the store"},
    {"SELECT 'image ' || id FROM images WHERE chain NOT IN (SELECT id FROM chains)",
     "its merged tree (chain) is not in the store"},
    {"SELECT DISTINCT 'image ' || image FROM image_layers "
     "WHERE layer NOT IN (SELECT id FROM layers)",
     "one of its layers is not in the store"},
    {"SELECT DISTINCT 'chain ' || c.chain_id FROM chain_layers cl JOIN chains c ON c.id = cl.chain "
     "WHERE cl.layer NOT IN (SELECT id FROM layers)",
     "one of its layers is not in the store"},
    {"SELECT 'layer ' || l.diff_id || ' file ' || e.path FROM entries e "
     "JOIN layers l ON l.id = e.layer WHERE e.digest IS NOT NULL "
     "AND NOT EXISTS (SELECT 1 FROM blobs b WHERE b.digest = e.digest)",
     "its content has no blob row"},
    {"SELECT DISTINCT 'chain ' || c.chain_id FROM nodes n JOIN chains c ON c.id = n.chain "
     "WHERE n.digest IS NOT NULL AND NOT EXISTS (SELECT 1 FROM blobs b WHERE b.digest = n.digest)",
     "a file of its tree has a content with no blob row"},
    {"SELECT 'box ' || name || ' (' || substr(id, 1, 12) || ')' FROM boxes "
     "WHERE image NOT IN (SELECT id FROM images)",
     "its image is not in the store"},
};

/* Runs sql, calling row() for each result; a corrupt database is a problem
 * to report, anything else an error. */
typedef void row_fn(struct check *c, sqlite3_stmt *st, const void *arg);

static int
each_row(struct check *c, const char *sql, row_fn *row, const void *arg, lbx_err **err)
{
  lbx_store *s = c->s;
  _cleanup_finalize_ sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
  if (rc == SQLITE_OK)
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
      row(c, st, arg);
  if (rc == SQLITE_DONE)
    return 0;
  if ((rc & 0xff) == SQLITE_CORRUPT || (rc & 0xff) == SQLITE_NOTADB) {
    report(c, LBX_CHECK_DATABASE, "store.db", NULL, "%s", sqlite3_errmsg(s->db));
    return 0;
  }
  return lbx_sql_error(s, err, "checking the store");
}

static void
integrity_row(struct check *c, sqlite3_stmt *st, const void *arg)
{
  (void)arg;
  const char *msg = (const char *)sqlite3_column_text(st, 0);
  if (msg && strcmp(msg, "ok") != 0)
    report(c, LBX_CHECK_DATABASE, "store.db", NULL, "integrity_check: %s", msg);
}

static void
fk_row(struct check *c, sqlite3_stmt *st, const void *arg)
{
  (void)arg;
  _cleanup_free_ char *obj =
      lbx_xasprintf("table %s row %lld", (const char *)sqlite3_column_text(st, 0),
                    (long long)sqlite3_column_int64(st, 1));
  report(c, LBX_CHECK_DATABASE, obj, NULL, "foreign_key_check: names a missing row of %s",
         (const char *)sqlite3_column_text(st, 2));
}

static void
ref_row(struct check *c, sqlite3_stmt *st, const void *arg)
{
  report(c, LBX_CHECK_DATABASE, (const char *)sqlite3_column_text(st, 0), NULL, "%s",
         (const char *)arg);
}

static int
check_database(struct check *c, lbx_err **err)
{
  LBX_LOCKED(c->s);
  uint64_t before = c->st->problems;
  if (each_row(c, "PRAGMA integrity_check", integrity_row, NULL, err) < 0 ||
      each_row(c, "PRAGMA foreign_key_check", fk_row, NULL, err) < 0)
    return -1;
  /* the queries below would only repeat a broken database's errors */
  if (c->st->problems > before)
    return 0;
  for (size_t i = 0; i < LBX_ARRAY_SIZE(ref_checks); i++)
    if (each_row(c, ref_checks[i].sql, ref_row, ref_checks[i].reason, err) < 0)
      return -1;
  return 0;
}

/* ---- blob rows against their files ---- */

/* "used by layer sha256:... (image x:latest, ...)": who to re-pull when a
 * content is damaged. Called with the store mutex held. */
static char *
used_by(struct check *c, const uint8_t digest[LBX_DIGEST_LEN])
{
  lbx_store *s = c->s;
  if (!c->used_by &&
      sqlite3_prepare_v2(s->db,
                         "SELECT l.diff_id, (SELECT group_concat(coalesce((SELECT min(n.name) "
                         "FROM names n WHERE n.image = il.image), substr(il.image, 1, 12)), ', ') "
                         "FROM image_layers il WHERE il.layer = l.id) FROM layers l "
                         "WHERE l.id IN (SELECT layer FROM entries WHERE digest = ?1) LIMIT 4",
                         -1, &c->used_by, NULL) != SQLITE_OK)
    return lbx_xstrdup("used by: unknown");
  sqlite3_bind_blob(c->used_by, 1, digest, LBX_DIGEST_LEN, SQLITE_STATIC);
  char *out = NULL;
  int n = 0;
  while (sqlite3_step(c->used_by) == SQLITE_ROW) {
    const char *images = (const char *)sqlite3_column_text(c->used_by, 1);
    char *more = lbx_xasprintf("%s%s%s (%s%s)", out ? out : "used by layer ", out ? ", " : "",
                               (const char *)sqlite3_column_text(c->used_by, 0),
                               images ? "image " : "no image", images ? images : "");
    free(out);
    out = more;
    n++;
  }
  sqlite3_reset(c->used_by);
  if (n == 4) {
    char *more = lbx_xasprintf("%s, ...", out);
    free(out);
    out = more;
  }
  return out ? out : lbx_xstrdup("used by no layer");
}

#define REPULL "; remove the images using it (rmi) and load or pull them again"

/* sha256 of a file's bytes; -errno. */
static int
hash_fd(int fd, uint8_t md[LBX_DIGEST_LEN], uint64_t *bytes)
{
  _cleanup_sha256_ lbx_sha256 *ctx = lbx_sha256_new();
  _cleanup_free_ uint8_t *buf = lbx_xmalloc(1 << 20);
  ssize_t n;
  while ((n = lbx_read_all(fd, buf, 1 << 20)) > 0) {
    lbx_sha256_update(ctx, buf, (size_t)n);
    *bytes += (uint64_t)n;
  }
  if (n < 0)
    return (int)n;
  lbx_sha256_final(ctx, md);
  return 0;
}

static void
check_blob_file(struct check *c, const uint8_t digest[LBX_DIGEST_LEN], uint64_t size)
{
  char hex[LBX_DIGEST_HEX];
  lbx_hex(digest, LBX_DIGEST_LEN, hex);
  char rel[80];
  snprintf(rel, sizeof rel, "%.2s/%s", hex, hex);
  _cleanup_free_ char *obj = lbx_xasprintf("blob sha256:%s", hex);
  struct stat sb;
  if (c->blobfd < 0 || fstatat(c->blobfd, rel, &sb, AT_SYMLINK_NOFOLLOW) < 0) {
    int e = c->blobfd < 0 ? ENOENT : errno;
    _cleanup_free_ char *users = used_by(c, digest);
    report(c, LBX_CHECK_BLOB, obj, NULL, "its file blobs/sha256/%s: %s; %s" REPULL, rel,
           strerror(e), users);
    return;
  }
  if (!S_ISREG(sb.st_mode) || (uint64_t)sb.st_size != size) {
    _cleanup_free_ char *users = used_by(c, digest);
    if (!S_ISREG(sb.st_mode))
      report(c, LBX_CHECK_BLOB, obj, NULL, "blobs/sha256/%s is not a regular file; %s" REPULL, rel,
             users);
    else
      report(c, LBX_CHECK_BLOB, obj, NULL,
             "its file has %llu bytes, its row says %llu (damaged); %s" REPULL,
             (unsigned long long)sb.st_size, (unsigned long long)size, users);
    return;
  }
  if ((sb.st_mode & 07777) != 0444) {
    /* a content's bytes are immutable; a wrong mode is only a risk to them
     * and setting it back changes no byte */
    bool fixed = c->o->repair && fchmodat(c->blobfd, rel, 0444, 0) == 0;
    report(c, LBX_CHECK_BLOB, obj, fixed ? "mode set to 0444" : NULL,
           "its file has mode %04o, not 0444", (unsigned)(sb.st_mode & 07777));
  }
  if (!c->o->verify)
    return;
  _cleanup_close_ int fd = openat(c->blobfd, rel, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  uint8_t md[LBX_DIGEST_LEN];
  int r = fd < 0 ? -errno : hash_fd(fd, md, &c->st->bytes_hashed);
  if (r < 0) {
    report(c, LBX_CHECK_BLOB, obj, NULL, "reading blobs/sha256/%s: %s", rel, strerror(-r));
  } else if (memcmp(md, digest, LBX_DIGEST_LEN) != 0) {
    char got[LBX_DIGEST_HEX];
    lbx_hex(md, LBX_DIGEST_LEN, got);
    _cleanup_free_ char *users = used_by(c, digest);
    report(c, LBX_CHECK_BLOB, obj, NULL,
           "digest mismatch: its file's content has digest sha256:%s; %s" REPULL, got, users);
  }
}

static void
check_inline(struct check *c, const uint8_t digest[LBX_DIGEST_LEN], uint64_t size, const void *data,
             size_t len)
{
  uint8_t md[LBX_DIGEST_LEN];
  lbx_sha256_buf(data, len, md);
  c->st->bytes_hashed += len;
  if (len == size && memcmp(md, digest, LBX_DIGEST_LEN) == 0)
    return;
  char hex[LBX_DIGEST_HEX], got[LBX_DIGEST_HEX];
  lbx_hex(digest, LBX_DIGEST_LEN, hex);
  lbx_hex(md, LBX_DIGEST_LEN, got);
  _cleanup_free_ char *obj = lbx_xasprintf("blob sha256:%s", hex);
  _cleanup_free_ char *users = used_by(c, digest);
  report(c, LBX_CHECK_BLOB, obj, NULL,
         "digest mismatch: its inline content (%zu bytes, row says %llu) has digest "
         "sha256:%s; %s" REPULL,
         len, (unsigned long long)size, got, users);
}

static int
check_blobs(struct check *c, lbx_err **err)
{
  lbx_store *s = c->s;
  LBX_LOCKED(s);
  /* inline contents are read only to be hashed */
  const char *sql = c->o->verify ? "SELECT digest, size, data IS NULL, data FROM blobs"
                                 : "SELECT digest, size, data IS NULL, NULL FROM blobs";
  _cleanup_finalize_ sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
  if (rc == SQLITE_OK) {
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
      if (sqlite3_column_bytes(st, 0) != LBX_DIGEST_LEN) {
        report(c, LBX_CHECK_DATABASE, "blobs", NULL, "a row's digest is not 32 bytes");
        continue;
      }
      uint8_t digest[LBX_DIGEST_LEN];
      memcpy(digest, sqlite3_column_blob(st, 0), LBX_DIGEST_LEN);
      uint64_t size = (uint64_t)sqlite3_column_int64(st, 1);
      if (sqlite3_column_int(st, 2)) {
        c->st->blobs++;
        check_blob_file(c, digest, size);
      } else {
        c->st->inline_blobs++;
        if (c->o->verify)
          check_inline(c, digest, size, sqlite3_column_blob(st, 3),
                       (size_t)sqlite3_column_bytes(st, 3));
      }
    }
  }
  if (rc != SQLITE_DONE)
    return lbx_sql_error(s, err, "checking blobs");
  return 0;
}

/* ---- files no row names ---- */

static bool
row_names_file(lbx_store *s, const char *sub, const char *name, int *r)
{
  uint8_t digest[LBX_DIGEST_LEN];
  /* a file in the wrong fan-out directory is not at any row's address */
  if (lbx_digest_parse(name, digest, 1) < 0 || strncmp(name, sub, 2) != 0)
    return false;
  LBX_LOCKED(s);
  _cleanup_reset_ sqlite3_stmt *q = lbx_stmt(s, ST_BLOB_FILE_EXISTS);
  if (!q) {
    *r = -EIO;
    return true;
  }
  sqlite3_bind_blob(q, 1, digest, LBX_DIGEST_LEN, SQLITE_STATIC);
  int rc = sqlite3_step(q);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE)
    *r = -lbx_sqlite_errno(rc);
  return rc != SQLITE_DONE; /* on an error: keep it */
}

/* Removes a file no row names (only regular files and symlinks: a
 * directory there is not ours to guess about). */
static const char *
remove_file(struct check *c, int dfd, const char *name, const struct stat *sb)
{
  if (!c->o->repair || S_ISDIR(sb->st_mode))
    return NULL;
  return unlinkat(dfd, name, 0) == 0 ? "removed" : NULL;
}

static int
check_fanout(struct check *c, const char *sub)
{
  int fd = openat(c->blobfd, sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0)
    return errno == ENOENT ? 0 : -errno;
  _cleanup_closedir_ DIR *d = fdopendir(fd);
  if (!d) {
    close(fd);
    return -errno;
  }
  struct dirent *de;
  int r = 0;
  while (r == 0 && (de = readdir(d))) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
      continue;
    c->st->files++;
    if (row_names_file(c->s, sub, de->d_name, &r))
      continue;
    struct stat sb;
    if (fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
      continue; /* gone meanwhile */
    _cleanup_free_ char *obj = lbx_xasprintf("blobs/sha256/%s/%s", sub, de->d_name);
    report(c, LBX_CHECK_ORPHAN, obj, remove_file(c, dirfd(d), de->d_name, &sb),
           "no blob row names this file (left by a failed or interrupted load)");
  }
  return r;
}

static int
check_orphans(struct check *c, lbx_err **err)
{
  if (c->blobfd < 0)
    return 0;
  int dfd = openat(c->s->rootfd, "blobs/sha256", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0)
    return lbx_error_errno(err, errno, "store %s: blobs/sha256", c->s->root);
  _cleanup_closedir_ DIR *d = fdopendir(dfd);
  if (!d) {
    close(dfd);
    return lbx_error_errno(err, errno, "store %s: blobs/sha256", c->s->root);
  }
  struct dirent *de;
  int r = 0;
  while (r == 0 && (de = readdir(d))) {
    const char *n = de->d_name;
    if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0)
      continue;
    struct stat sb;
    if (fstatat(dirfd(d), n, &sb, AT_SYMLINK_NOFOLLOW) < 0)
      continue;
    if (S_ISDIR(sb.st_mode) && strlen(n) == 2) {
      r = check_fanout(c, n);
      continue;
    }
    _cleanup_free_ char *obj = lbx_xasprintf("blobs/sha256/%s", n);
    report(c, LBX_CHECK_ORPHAN, obj, remove_file(c, dirfd(d), n, &sb),
           "not a blob's file or fan-out directory");
  }
  lbx_dset_clear(&c->s->pending); /* files this process placed may be gone now */
  if (r < 0)
    return lbx_error_errno(err, -r, "store %s: reading blobs/sha256", c->s->root);
  return 0;
}

static int
check_tmp(struct check *c, lbx_err **err)
{
  int fd = openat(c->s->rootfd, "tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0)
    return errno == ENOENT ? 0 : lbx_error_errno(err, errno, "store %s: tmp", c->s->root);
  _cleanup_closedir_ DIR *d = fdopendir(fd);
  if (!d) {
    close(fd);
    return lbx_error_errno(err, errno, "store %s: tmp", c->s->root);
  }
  struct dirent *de;
  while ((de = readdir(d))) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
      continue;
    struct stat sb;
    if (fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
      continue;
    const char *done = remove_file(c, dirfd(d), de->d_name, &sb);
    if (!done && c->o->repair && S_ISDIR(sb.st_mode) &&
        unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR) == 0)
      done = "removed";
    _cleanup_free_ char *obj = lbx_xasprintf("tmp/%s", de->d_name);
    report(c, LBX_CHECK_TMP, obj, done, "left in tmp/ by an interrupted write");
  }
  return 0;
}

/* ---- boxes ---- */

static int
check_boxes(struct check *c, lbx_err **err)
{
  lbx_store *s = c->s;
  lbx_box_row *rows;
  size_t n;
  if (lbx_store_boxes(s, &rows, &n, err) < 0)
    return -1;
  int r = 0;
  for (size_t i = 0; i < n && r == 0; i++) {
    lbx_box_row *b = &rows[i];
    c->st->boxes++;
    _cleanup_free_ char *obj = lbx_xasprintf("box %s (%.12s)", b->name, b->id);
    _cleanup_free_ char *rel = lbx_xasprintf("boxes/%s", b->id);
    struct stat sb;
    if (fstatat(s->rootfd, rel, &sb, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(sb.st_mode))
      report(c, LBX_CHECK_BOX, obj, NULL,
             "its directory %s is missing (its changes are lost); remove the box (rm)", rel);
    if (strcmp(b->state, "running") == 0 && !lbx_store_box_supervised(s, b->id)) {
      const char *done = NULL;
      /* as the CLI records a box whose supervisor it finds gone */
      if (c->o->repair) {
        if (lbx_store_box_reap(s, b, err) < 0)
          r = -1;
        else
          done = "marked exited";
      }
      report(c, LBX_CHECK_BOX, obj, done, "recorded running (pid %d), but its supervisor is gone",
             b->pid);
    }
  }

  int fd = r < 0 ? -1 : openat(s->rootfd, "boxes", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  _cleanup_closedir_ DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
  if (fd >= 0 && !d)
    close(fd);
  struct dirent *de;
  int64_t now = lbx_now_ns();
  while (d && r == 0 && (de = readdir(d))) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
      continue;
    bool found = false;
    for (size_t i = 0; i < n && !found; i++)
      found = strcmp(rows[i].id, de->d_name) == 0;
    struct stat sb;
    if (found || fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
      continue;
    if ((int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec > now - BOX_DIR_GRACE_NS)
      continue;
    const char *done = NULL;
    if (c->o->repair && S_ISDIR(sb.st_mode)) {
      _cleanup_error_ lbx_err *e = NULL;
      /* it re-checks that no row names it, under the store mutex */
      if (lbx_store_box_dir_remove(s, de->d_name, &e) == 0)
        done = "removed";
    }
    _cleanup_free_ char *obj = lbx_xasprintf("boxes/%s", de->d_name);
    report(c, LBX_CHECK_BOX, obj, done,
           "no box row names this directory (left by an interrupted create or rm)");
  }
  for (size_t i = 0; i < n; i++)
    lbx_box_row_clear(&rows[i]);
  free(rows);
  return r;
}

/* ---- rows no image needs: what gc collects ---- */

static const char *const unused_sql[] = {
    "SELECT 'chain ' || chain_id FROM chains WHERE id NOT IN (SELECT chain FROM images)",
    /* a layer of an unused chain goes with that chain */
    "SELECT 'layer ' || diff_id FROM layers WHERE id NOT IN (SELECT layer FROM image_layers) "
    "AND id NOT IN (SELECT cl.layer FROM chain_layers cl JOIN images i ON i.chain = cl.chain)",
    "SELECT 'blob sha256:' || lower(hex(digest)) FROM blobs b "
    "WHERE NOT EXISTS (SELECT 1 FROM entries e WHERE e.digest = b.digest)",
};

static void
unused_row(struct check *c, sqlite3_stmt *st, const void *arg)
{
  (void)arg;
  c->unused = lbx_xrealloc(c->unused, (c->nunused + 1) * sizeof *c->unused);
  c->unused[c->nunused++] = lbx_xstrdup((const char *)sqlite3_column_text(st, 0));
}

static int
find_unused(struct check *c, lbx_err **err)
{
  LBX_LOCKED(c->s);
  for (size_t i = 0; i < LBX_ARRAY_SIZE(unused_sql); i++)
    if (each_row(c, unused_sql[i], unused_row, NULL, err) < 0)
      return -1;
  return 0;
}

static void
report_unused(struct check *c, const char *done)
{
  for (size_t i = 0; i < c->nunused; i++)
    report(c, LBX_CHECK_UNUSED, c->unused[i], done,
           "no image uses it (left by a failed load or rmi); system prune removes it");
}

/* ---- the whole check ---- */

/* Read-only: shared, so gc cannot remove files under our feet; but a load
 * also holds it shared, and its uncommitted files would look like garbage:
 * an exclusive lock had at once tells that no load runs. Repair: exclusive,
 * waiting, as gc. */
static int
lock_store(struct check *c, lbx_err **err)
{
  lbx_store *s = c->s;
  if (c->o->repair) {
    c->quiet = true;
    return lbx_store_lock(s, true, err);
  }
  if (s->lockfd >= 0 && flock(s->lockfd, LOCK_EX | LOCK_NB) == 0) {
    c->quiet = true;
    /* flock converts by unlocking first: a load that starts in that
     * instant, or during the check, may show its first files as garbage.
     * Only reported: removing needs --repair, which keeps it exclusive. */
    return lbx_store_lock(s, false, err);
  }
  c->quiet = false;
  c->st->load_running = true;
  return lbx_store_lock(s, false, err);
}

int
lbx_store_check(lbx_store *s, const lbx_check_opts *o, lbx_check_stats *st, lbx_err **err)
{
  memset(st, 0, sizeof *st);
  if (o->repair && (s->flags & LBX_STORE_RDONLY))
    return lbx_error(err, EROFS, "store %s is open read-only: cannot repair", s->root);
  struct check c = {.s = s, .o = o, .st = st, .blobfd = -1};
  if (lock_store(&c, err) < 0)
    return -1;
  c.blobfd = openat(s->rootfd, "blobs/sha256", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  int r = check_database(&c, err);
  if (r == 0)
    r = check_blobs(&c, err);
  if (r == 0 && c.quiet)
    r = check_orphans(&c, err);
  if (r == 0 && c.quiet)
    r = check_tmp(&c, err);
  if (r == 0)
    r = check_boxes(&c, err);
  if (r == 0 && c.quiet)
    r = find_unused(&c, err);
  {
    LBX_LOCKED(s);
    sqlite3_finalize(c.used_by);
  }
  if (c.blobfd >= 0)
    close(c.blobfd);
  lbx_store_unlock(s);
  if (r == 0 && c.nunused) {
    /* gc's own statements drop them, under its own exclusive lock: one
     * definition of garbage. Whatever a load committed meanwhile that uses
     * them keeps them, as it should. */
    const char *done = NULL;
    lbx_gc_stats gs;
    if (o->repair && (r = lbx_store_gc(s, &gs, err)) == 0)
      done = "removed";
    report_unused(&c, done);
  }
  for (size_t i = 0; i < c.nunused; i++)
    free(c.unused[i]);
  free(c.unused);
  return r;
}
