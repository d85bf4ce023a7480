/* Mark and sweep: rows first (what no image needs), then files (what no
 * row names). */
#include "store-internal.h"

#include <fcntl.h>
#include <sys/file.h>
#include <string.h>
#include <sys/stat.h>

static const char *const gc_sql[] = {
    /* chains no image uses */
    "CREATE TEMP TABLE IF NOT EXISTS gc_chains(id INTEGER PRIMARY KEY);"
    "DELETE FROM gc_chains;"
    "INSERT INTO gc_chains SELECT id FROM chains WHERE id NOT IN (SELECT chain FROM images);"
    "DELETE FROM nodes WHERE chain IN (SELECT id FROM gc_chains);"
    "DELETE FROM dirents WHERE chain IN (SELECT id FROM gc_chains);"
    "DELETE FROM chain_layers WHERE chain IN (SELECT id FROM gc_chains);"
    "DELETE FROM chains WHERE id IN (SELECT id FROM gc_chains);",
    /* layers no image uses */
    "CREATE TEMP TABLE IF NOT EXISTS gc_layers(id INTEGER PRIMARY KEY);"
    "DELETE FROM gc_layers;"
    "INSERT INTO gc_layers SELECT id FROM layers WHERE id NOT IN (SELECT layer FROM image_layers)"
    "  AND id NOT IN (SELECT layer FROM chain_layers);"
    "DELETE FROM entries WHERE layer IN (SELECT id FROM gc_layers);"
    "DELETE FROM layer_blobs WHERE layer IN (SELECT id FROM gc_layers);"
    "DELETE FROM layers WHERE id IN (SELECT id FROM gc_layers);",
    /* contents no layer has */
    "DELETE FROM blobs WHERE NOT EXISTS (SELECT 1 FROM entries e WHERE e.digest = blobs.digest);",
};

static int
sweep_dir(lbx_store *s, int dfd, const char *sub, bool tmp, lbx_gc_stats *st)
{
  int fd = openat(dfd, sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return errno == ENOENT ? 0 : -errno;
  _cleanup_closedir_ DIR *d = fdopendir(fd);
  if (!d) {
    close(fd);
    return -errno;
  }
  struct dirent *de;
  while ((de = readdir(d))) {
    if (de->d_name[0] == '.')
      continue;
    uint8_t digest[LBX_DIGEST_LEN];
    bool keep = false;
    if (!tmp && lbx_digest_parse(de->d_name, digest, 1) == 0) {
      LBX_LOCKED(s);
      _cleanup_reset_ sqlite3_stmt *q = lbx_stmt(s, ST_BLOB_FILE_EXISTS);
      if (!q)
        return -EIO;
      sqlite3_bind_blob(q, 1, digest, LBX_DIGEST_LEN, SQLITE_STATIC);
      int rc = sqlite3_step(q);
      if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return -lbx_sqlite_errno(rc);
      keep = rc == SQLITE_ROW;
    }
    if (keep)
      continue;
    struct stat sb;
    if (fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(sb.st_mode)) {
      if (unlinkat(dirfd(d), de->d_name, 0) == 0) {
        st->files++;
        st->bytes += (uint64_t)sb.st_size;
      }
    }
  }
  return 0;
}

static int
sweep_files(lbx_store *s, lbx_gc_stats *st)
{
  int r = 0;
  int bfd = open(s->blobdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (bfd >= 0) {
    _cleanup_closedir_ DIR *d = fdopendir(bfd);
    struct dirent *de;
    while (d && r == 0 && (de = readdir(d)))
      if (de->d_name[0] != '.' && strlen(de->d_name) == 2)
        r = sweep_dir(s, dirfd(d), de->d_name, false, st);
    if (!d)
      close(bfd);
  }
  if (r == 0)
    r = sweep_dir(s, s->rootfd, "tmp", true, st);
  return r;
}

int
lbx_store_sweep(lbx_store *s, bool wait, lbx_gc_stats *st, lbx_err **err)
{
  memset(st, 0, sizeof *st);
  if (s->lockfd < 0)
    return lbx_error(err, EROFS, "store %s: cannot open its lock file", s->root);
  while (flock(s->lockfd, LOCK_EX | (wait ? 0 : LOCK_NB)) < 0) {
    if (errno == EWOULDBLOCK)
      return 0; /* a load runs: its files are not garbage; the next gc sweeps */
    if (errno != EINTR)
      return lbx_error_errno(err, errno, "store %s: lock", s->root);
  }
  int r = sweep_files(s, st);
  lbx_dset_clear(&s->pending); /* files this process placed may be gone now */
  lbx_store_unlock(s);
  if (r < 0)
    return lbx_error_errno(err, -r, "store %s: removing unused blob files", s->root);
  return 0;
}

int
lbx_store_gc(lbx_store *s, lbx_gc_stats *st, lbx_err **err)
{
  memset(st, 0, sizeof *st);
  /* Exclusive: a running load may rely on rows and files it found in the
   * store but has not yet referenced from committed rows of its own. */
  if (lbx_store_lock(s, true, err) < 0)
    return -1;
  {
    LBX_LOCKED(s);
    /* Files go only after the rows naming them are gone for good: with
     * synchronous=NORMAL a WAL commit may be undone by a power cut, which
     * would bring back rows whose files we then deleted. */
    if (lbx_exec(s, "PRAGMA synchronous = FULL", err) < 0 ||
        lbx_exec(s, "BEGIN IMMEDIATE", err) < 0) {
      lbx_store_unlock(s);
      return -1;
    }
    uint64_t *counts[] = {&st->chains, &st->layers, &st->blobs};
    for (size_t i = 0; i < LBX_ARRAY_SIZE(gc_sql); i++) {
      int before = sqlite3_total_changes(s->db);
      if (sqlite3_exec(s->db, gc_sql[i], NULL, NULL, NULL) != SQLITE_OK) {
        lbx_sql_error(s, err, "collecting garbage");
        sqlite3_exec(s->db, "ROLLBACK; PRAGMA synchronous = NORMAL", NULL, NULL, NULL);
        lbx_store_unlock(s);
        return -1;
      }
      *counts[i] = (uint64_t)(sqlite3_total_changes(s->db) - before);
    }
    int c = lbx_exec(s, "COMMIT", err);
    if (c < 0)
      sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_exec(s->db, "PRAGMA synchronous = NORMAL", NULL, NULL, NULL);
    if (c < 0) {
      lbx_store_unlock(s);
      return -1;
    }
  }
  int r = sweep_files(s, st);
  lbx_dset_clear(&s->pending);
  lbx_store_unlock(s);
  if (r < 0)
    return lbx_error_errno(err, -r, "store %s: removing unused blob files", s->root);
  LBX_LOCKED(s);
  /* give the freed pages back to the file system */
  sqlite3_exec(s->db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
  return 0;
}
