/* Opening the store: directories, the database, its schema and migrations,
 * the statement cache, the store lock, and usage figures. */
#include "store-internal.h"

#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>

/* Schema versions, applied in order; user_version holds how many ran. */
static const char *const migrations[] = {
    /* 1: the first layout, see docs/store-format.md */
    "CREATE TABLE blobs("
    "  id INTEGER PRIMARY KEY,"
    "  digest BLOB NOT NULL UNIQUE,"
    "  size INTEGER NOT NULL,"
    "  data BLOB);"
    "CREATE TABLE layers("
    "  id INTEGER PRIMARY KEY,"
    "  diff_id TEXT NOT NULL UNIQUE,"
    "  size INTEGER NOT NULL,"
    "  entries INTEGER NOT NULL,"
    "  logical INTEGER NOT NULL,"
    "  created INTEGER NOT NULL);"
    "CREATE TABLE layer_blobs("
    "  digest TEXT PRIMARY KEY,"
    "  layer INTEGER NOT NULL,"
    "  media_type TEXT,"
    "  size INTEGER) WITHOUT ROWID;"
    "CREATE INDEX layer_blobs_layer ON layer_blobs(layer);"
    "CREATE TABLE entries("
    "  layer INTEGER NOT NULL,"
    "  seq INTEGER NOT NULL,"
    "  path TEXT NOT NULL,"
    "  type INTEGER NOT NULL,"
    "  mode INTEGER NOT NULL,"
    "  uid INTEGER NOT NULL,"
    "  gid INTEGER NOT NULL,"
    "  size INTEGER NOT NULL,"
    "  mtime INTEGER NOT NULL,"
    "  rdev INTEGER NOT NULL,"
    "  link TEXT,"
    "  digest BLOB,"
    "  offset INTEGER NOT NULL,"
    "  xattrs BLOB,"
    "  PRIMARY KEY(layer, seq)) WITHOUT ROWID;"
    "CREATE INDEX entries_digest ON entries(digest) WHERE digest IS NOT NULL;"
    "CREATE TABLE chains("
    "  id INTEGER PRIMARY KEY,"
    "  chain_id TEXT NOT NULL UNIQUE,"
    "  nodes INTEGER NOT NULL);"
    "CREATE TABLE chain_layers("
    "  chain INTEGER NOT NULL,"
    "  idx INTEGER NOT NULL,"
    "  layer INTEGER NOT NULL,"
    "  PRIMARY KEY(chain, idx)) WITHOUT ROWID;"
    "CREATE INDEX chain_layers_layer ON chain_layers(layer);"
    "CREATE TABLE nodes("
    "  chain INTEGER NOT NULL,"
    "  ino INTEGER NOT NULL,"
    "  type INTEGER NOT NULL,"
    "  mode INTEGER NOT NULL,"
    "  uid INTEGER NOT NULL,"
    "  gid INTEGER NOT NULL,"
    "  nlink INTEGER NOT NULL,"
    "  size INTEGER NOT NULL,"
    "  mtime INTEGER NOT NULL,"
    "  rdev INTEGER NOT NULL,"
    "  link TEXT,"
    "  digest BLOB,"
    "  xattrs BLOB,"
    "  PRIMARY KEY(chain, ino)) WITHOUT ROWID;"
    "CREATE TABLE dirents("
    "  chain INTEGER NOT NULL,"
    "  parent INTEGER NOT NULL,"
    "  name TEXT NOT NULL,"
    "  ino INTEGER NOT NULL,"
    "  PRIMARY KEY(chain, parent, name)) WITHOUT ROWID;"
    "CREATE TABLE images("
    "  id TEXT PRIMARY KEY,"
    "  chain INTEGER NOT NULL,"
    "  config BLOB NOT NULL,"
    "  manifest BLOB,"
    "  digest TEXT,"
    "  created INTEGER NOT NULL,"
    "  loaded INTEGER NOT NULL,"
    "  size INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE INDEX images_digest ON images(digest) WHERE digest IS NOT NULL;"
    "CREATE TABLE image_layers("
    "  image TEXT NOT NULL,"
    "  idx INTEGER NOT NULL,"
    "  layer INTEGER NOT NULL,"
    "  digest TEXT NOT NULL,"
    "  media_type TEXT NOT NULL,"
    "  size INTEGER NOT NULL,"
    "  PRIMARY KEY(image, idx)) WITHOUT ROWID;"
    "CREATE INDEX image_layers_layer ON image_layers(layer);"
    "CREATE TABLE names("
    "  name TEXT PRIMARY KEY,"
    "  image TEXT NOT NULL) WITHOUT ROWID;"
    "CREATE INDEX names_image ON names(image);"
    "CREATE TABLE boxes("
    "  id TEXT PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE,"
    "  image TEXT NOT NULL,"
    "  created INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE INDEX boxes_image ON boxes(image);",
    /* 2: what a box runs, as JSON (create's command; the launcher's config) */
    "ALTER TABLE boxes ADD COLUMN config TEXT NOT NULL DEFAULT '{}';",
    /* 3: what the launcher records: the box's pid 1 as the host sees it,
     * with its start time (a pid alone can be reused), and the last run */
    "ALTER TABLE boxes ADD COLUMN state TEXT NOT NULL DEFAULT 'created';"
    "ALTER TABLE boxes ADD COLUMN pid INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE boxes ADD COLUMN pid_start INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE boxes ADD COLUMN started INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE boxes ADD COLUMN finished INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE boxes ADD COLUMN exit_code INTEGER NOT NULL DEFAULT 0;",
    /* 4: every digest an image was pulled or loaded by: its manifests' and
     * the manifest lists' that led to it, so name@digest finds it without
     * the registry (images.digest keeps only the last manifest's) */
    "CREATE TABLE image_digests("
    "  digest TEXT NOT NULL,"
    "  image TEXT NOT NULL,"
    "  PRIMARY KEY(digest, image)) WITHOUT ROWID;"
    "CREATE INDEX image_digests_image ON image_digests(image);"
    "INSERT OR IGNORE INTO image_digests(digest, image) "
    "  SELECT digest, id FROM images WHERE digest IS NOT NULL;",
};

static const char *const stmt_sql[ST__COUNT] = {
    [ST_HAS_LAYER] = "SELECT 1 FROM layers WHERE diff_id = ?1",
    [ST_LAYER_BY_DIGEST] = "SELECT l.diff_id FROM layer_blobs b JOIN layers l ON l.id = b.layer "
                           "WHERE b.digest = ?1",
    [ST_HAS_BLOB] = "SELECT 1 FROM blobs WHERE digest = ?1",
    [ST_INSERT_LAYER] = "INSERT INTO layers(diff_id, size, entries, logical, created) "
                        "VALUES(?1, ?2, ?3, ?4, ?5)",
    [ST_INSERT_LAYER_BLOB] = "INSERT OR REPLACE INTO layer_blobs(digest, layer, media_type, size) "
                             "VALUES(?1, ?2, ?3, ?4)",
    [ST_INSERT_ENTRY] = "INSERT INTO entries(layer, seq, path, type, mode, uid, gid, size, mtime, "
                        "rdev, link, digest, offset, xattrs) "
                        "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    [ST_INSERT_BLOB] = "INSERT OR IGNORE INTO blobs(digest, size, data) VALUES(?1, ?2, ?3)",
    [ST_LAYER_ID] = "SELECT id FROM layers WHERE diff_id = ?1",
    [ST_LAYER_ENTRIES] = "SELECT path, type, mode, uid, gid, size, mtime, rdev, link, digest, "
                         "offset, xattrs FROM entries WHERE layer = ?1 ORDER BY seq",
    [ST_HAS_CHAIN] = "SELECT id FROM chains WHERE chain_id = ?1",
    [ST_INSERT_CHAIN] = "INSERT INTO chains(chain_id, nodes) VALUES(?1, 0)",
    [ST_INSERT_CHAIN_LAYER] = "INSERT INTO chain_layers(chain, idx, layer) VALUES(?1, ?2, ?3)",
    [ST_INSERT_NODE] = "INSERT INTO nodes(chain, ino, type, mode, uid, gid, nlink, size, mtime, "
                       "rdev, link, digest, xattrs) "
                       "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    [ST_INSERT_DIRENT] = "INSERT INTO dirents(chain, parent, name, ino) VALUES(?1, ?2, ?3, ?4)",
    [ST_INSERT_IMAGE] = "INSERT OR REPLACE INTO images(id, chain, config, manifest, digest, "
                        "created, loaded, size) VALUES(?1, ?2, ?3, ?4, ?8, ?5, ?6, ?7)",
    /* one list digest can lead to several images (platforms): the last
     * one pulled */
    [ST_IMAGE_BY_DIGEST] = "SELECT d.image FROM image_digests d JOIN images i ON i.id = d.image "
                           "WHERE d.digest = ?1 ORDER BY i.loaded DESC LIMIT 1",
    [ST_INSERT_IMAGE_DIGEST] = "INSERT OR IGNORE INTO image_digests(digest, image) VALUES(?1, ?2)",
    /* its own manifest's first */
    [ST_IMAGE_DIGESTS] = "SELECT d.digest FROM image_digests d JOIN images i ON i.id = d.image "
                         "WHERE d.image = ?1 ORDER BY d.digest IS NOT i.digest, d.digest",
    [ST_INSERT_IMAGE_LAYER] = "INSERT INTO image_layers(image, idx, layer, digest, media_type, "
                              "size) VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
    [ST_DELETE_IMAGE_LAYERS] = "DELETE FROM image_layers WHERE image = ?1",
    [ST_SET_NAME] = "INSERT OR REPLACE INTO names(name, image) VALUES(?1, ?2)",
    [ST_DELETE_NAME] = "DELETE FROM names WHERE name = ?1",
    [ST_IMAGES] = "SELECT i.id, i.created, i.loaded, i.size, c.chain_id, "
                  "(SELECT count(*) FROM image_layers l WHERE l.image = i.id) "
                  "FROM images i JOIN chains c ON c.id = i.chain ORDER BY i.loaded DESC, i.id",
    [ST_IMAGE_NAMES] = "SELECT name FROM names WHERE image = ?1 ORDER BY name",
    [ST_IMAGE_BY_NAME] = "SELECT image FROM names WHERE name = ?1",
    [ST_IMAGE_BY_ID] = "SELECT id FROM images WHERE id >= ?1 AND id < ?1 || 'g' LIMIT 2",
    [ST_IMAGE_GET] = "SELECT i.created, i.loaded, i.size, c.chain_id, i.config, "
                     "(SELECT count(*) FROM image_layers l WHERE l.image = i.id) "
                     "FROM images i JOIN chains c ON c.id = i.chain WHERE i.id = ?1",
    [ST_IMAGE_LAYERS] = "SELECT l.diff_id, il.digest, il.media_type, il.size FROM image_layers il "
                        "JOIN layers l ON l.id = il.layer WHERE il.image = ?1 ORDER BY il.idx",
    [ST_IMAGE_USERS] = "SELECT count(*), min(name) FROM boxes WHERE image = ?1",
    [ST_NAMES_LIKE] = "SELECT name FROM names WHERE name LIKE ?1 ESCAPE '\\' ORDER BY name",
    [ST_CHAIN_INFO] = "SELECT id, nodes FROM chains WHERE chain_id = ?1",
    [ST_NODE_GET] = "SELECT type, mode, uid, gid, nlink, size, mtime, rdev, link, digest, xattrs "
                    "FROM nodes WHERE chain = ?1 AND ino = ?2",
    [ST_DIRENT_LOOKUP] = "SELECT ino FROM dirents WHERE chain = ?1 AND parent = ?2 AND name = ?3",
    [ST_READDIR_FIRST] = "SELECT name, ino FROM dirents WHERE chain = ?1 AND parent = ?2 "
                         "ORDER BY name",
    [ST_READDIR_AFTER] = "SELECT name, ino FROM dirents WHERE chain = ?1 AND parent = ?2 "
                         "AND name > ?3 ORDER BY name",
    [ST_BLOB_GET] = "SELECT size, data FROM blobs WHERE digest = ?1",
    [ST_BLOB_FILE_EXISTS] = "SELECT 1 FROM blobs WHERE digest = ?1 AND data IS NULL",
};

sqlite3_stmt *
lbx_stmt(lbx_store *s, enum lbx_stmt which)
{
  if (!s->stmts[which] && sqlite3_prepare_v3(s->db, stmt_sql[which], -1, SQLITE_PREPARE_PERSISTENT,
                                             &s->stmts[which], NULL) != SQLITE_OK)
    return NULL;
  return s->stmts[which];
}

int
lbx_sqlite_errno(int rc)
{
  switch (rc & 0xff) {
  case SQLITE_FULL:
    return ENOSPC;
  case SQLITE_BUSY:
  case SQLITE_LOCKED:
    return EBUSY;
  case SQLITE_READONLY:
    return EROFS;
  case SQLITE_NOMEM:
    return ENOMEM;
  case SQLITE_CANTOPEN:
  case SQLITE_PERM:
  case SQLITE_AUTH:
    return EACCES;
  case SQLITE_CORRUPT:
  case SQLITE_NOTADB:
    return EUCLEAN;
  case SQLITE_CONSTRAINT:
    return EEXIST;
  default:
    return EIO;
  }
}

int
lbx_sql_error(lbx_store *s, lbx_err **err, const char *what)
{
  int rc = sqlite3_extended_errcode(s->db);
  int e = lbx_sqlite_errno(rc);
  /* SQLite's own words hide the cause: a full disk is "database or disk is
   * full", or "disk I/O error" when it struck the -shm file; the errno
   * behind an I/O error says which. */
  int sys = sqlite3_system_errno(s->db);
  bool io = (rc & 0xff) == SQLITE_IOERR && sys > 0;
  if (io)
    e = sys;
  if (io || (rc & 0xff) == SQLITE_FULL)
    return lbx_error(err, e, "store %s/store.db: %s: %s (%s)", s->root, what, sqlite3_errmsg(s->db),
                     strerror(e));
  return lbx_error(err, e, "store %s/store.db: %s: %s", s->root, what, sqlite3_errmsg(s->db));
}

int
lbx_exec(lbx_store *s, const char *sql, lbx_err **err)
{
  if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK)
    return lbx_sql_error(s, err, sql[0] == 'B' || sql[0] == 'C' ? sql : "updating the schema");
  return 0;
}

void
lbx_blob_path(const lbx_store *s, const uint8_t digest[LBX_DIGEST_LEN], char *out, size_t n)
{
  char hex[LBX_DIGEST_HEX];
  lbx_hex(digest, LBX_DIGEST_LEN, hex);
  snprintf(out, n, "%s/%.2s/%s", s->blobdir, hex, hex);
}

/* ---- open / close ---- */

static int
migrate(lbx_store *s, lbx_err **err)
{
  sqlite3_stmt *st;
  int version = 0;
  if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
    return lbx_sql_error(s, err, "reading the schema version");
  if (sqlite3_step(st) == SQLITE_ROW)
    version = sqlite3_column_int(st, 0);
  sqlite3_finalize(st);
  int latest = (int)LBX_ARRAY_SIZE(migrations);
  if (version > latest)
    return lbx_error(err, EPROTO,
                     "store %s: schema version %d is newer than this lazybox knows (%d); "
                     "upgrade lazybox",
                     s->root, version, latest);
  if (version == latest)
    return 0;
  if (s->flags & LBX_STORE_RDONLY)
    return lbx_error(err, EROFS, "store %s: schema version %d needs an upgrade to %d", s->root,
                     version, latest);
  if (lbx_exec(s, "BEGIN IMMEDIATE", err) < 0)
    return -1;
  /* again, inside the write lock: another process opening a new store at
   * the same moment may have created the schema meanwhile */
  if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK) {
    if (sqlite3_step(st) == SQLITE_ROW)
      version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
  }
  if (version >= latest)
    return lbx_exec(s, "COMMIT", err);
  for (int v = version; v < latest; v++) {
    if (sqlite3_exec(s->db, migrations[v], NULL, NULL, NULL) != SQLITE_OK) {
      lbx_sql_error(s, err, "creating the schema");
      sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
      return -1;
    }
  }
  _cleanup_free_ char *set = lbx_xasprintf("PRAGMA user_version = %d", latest);
  if (lbx_exec(s, set, err) < 0 || lbx_exec(s, "COMMIT", err) < 0) {
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return -1;
  }
  return 0;
}

/* A process that opens the store when no other has it open reads the whole
 * WAL back (SQLite rebuilds its index): about 0.6 ms per MiB here. 128
 * frames (512 KiB) keep that small while a checkpoint comes only every
 * twenty creates or so (a create writes about six pages). */
enum { WAL_CHECKPOINT_FRAMES = 128, BUSY_TIMEOUT_MS = 60000 };

/* Without the busy handler: a checkpoint that would have to wait for
 * another process's transaction (a pull's) does what it can now and is
 * tried again later, instead of stalling this command. */
static bool
checkpoint_now(sqlite3 *db)
{
  sqlite3_busy_timeout(db, 0);
  int rc = sqlite3_wal_checkpoint_v2(db, "main", SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
  sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS);
  return rc == SQLITE_OK;
}

static int
wal_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
  (void)name;
  lbx_store *s = arg;
  if (frames >= WAL_CHECKPOINT_FRAMES)
    s->checkpoint_due = !checkpoint_now(db);
  return SQLITE_OK;
}

void
lbx_store_sync_commits(lbx_store *s, bool full)
{
  LBX_LOCKED(s);
  sqlite3_exec(s->db, full ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL", NULL,
               NULL, NULL);
}

int
lbx_store_open(const char *root, unsigned flags, lbx_store **out, lbx_err **err)
{
  lbx_store *s = lbx_xcalloc(1, sizeof *s);
  _cleanup_(lbx_store_closep) lbx_store *guard = s;
  s->root = lbx_xstrdup(root);
  s->blobdir = lbx_xasprintf("%s/blobs/sha256", root);
  s->tmpdir = lbx_xasprintf("%s/tmp", root);
  s->flags = flags;
  s->rootfd = -1;
  s->lockfd = -1;
  pthread_mutex_init(&s->mu, NULL);

  if (!(flags & LBX_STORE_RDONLY)) {
    int r;
    /* 0700: image contents and boxes belong to their user alone. */
    if ((r = lbx_mkdir_p(root, 0700)) < 0 || (r = lbx_mkdir_p(s->blobdir, 0700)) < 0 ||
        (r = lbx_mkdir_p(s->tmpdir, 0700)) < 0)
      return lbx_error_errno(err, -r, "store %s: cannot create its directories", root);
  }
  s->rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (s->rootfd < 0)
    return lbx_error_errno(err, errno, "store %s", root);
  _cleanup_free_ char *lockpath = lbx_xasprintf("%s/lock", root);
  s->lockfd =
      open(lockpath, (flags & LBX_STORE_RDONLY ? O_RDONLY : O_RDWR | O_CREAT) | O_CLOEXEC, 0600);

  _cleanup_free_ char *dbpath = lbx_xasprintf("%s/store.db", root);
  int oflags =
      flags & LBX_STORE_RDONLY ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
  if (sqlite3_open_v2(dbpath, &s->db, oflags | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK)
    return lbx_error(err, lbx_sqlite_errno(sqlite3_errcode(s->db)), "store %s: %s", dbpath,
                     s->db ? sqlite3_errmsg(s->db) : "out of memory");
  /* Concurrent lazybox processes wait for each other instead of failing with
   * "database is locked". */
  sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
  /* Keep store.db-wal and -shm when the last connection closes: opening a
   * WAL database whose -shm file is gone must create and size it, which
   * fails on a full disk, and then no command could even list images, let
   * alone remove one to make room. A kept WAL file also gives the deletes of
   * rmi and prune room to commit in. */
  int persist = 1;
  sqlite3_file_control(s->db, "main", SQLITE_FCNTL_PERSIST_WAL, &persist);
  if (!(flags & LBX_STORE_RDONLY)) {
    /* WAL: readers (mounts) never block the writer. */
    /* Switching a new database to WAL needs it exclusively, and SQLite
     * answers BUSY at once, without the busy handler, when another process
     * opening the same new store holds a read lock: retry for a while. */
    int rc = SQLITE_BUSY;
    for (int i = 0;
         i < 3000 && ((rc = sqlite3_exec(s->db, "PRAGMA journal_mode = WAL", NULL, NULL, NULL)) &
                      0xff) == SQLITE_BUSY;
         i++)
      usleep(20000);
    if (rc != SQLITE_OK)
      return lbx_sql_error(s, err, "switching to WAL mode");
    /* NORMAL: a commit survives a crash of its process at once and a power
     * cut once checkpointed or written back; never a corrupt database.
     * Blob files are synced before the rows naming them commit, and gc
     * syncs its commit before it deletes files (gc.c). */
    /* A backstop: a checkpoint that could copy every frame back but not
     * truncate (a reader in the way) leaves the file at its largest size;
     * the next writer's restart cuts it back to this. */
    if (lbx_exec(s, "PRAGMA synchronous = NORMAL", err) < 0 ||
        lbx_exec(s, "PRAGMA journal_size_limit = 4194304", err) < 0)
      return -1;
    /* No checkpoint when a connection closes. The last one out used to
     * checkpoint and truncate the WAL, and the next writer then synced a new
     * WAL header: three fsyncs, a directory sync and a truncation, 1.7 ms
     * of a 7.8 ms create. The WAL is checkpointed and truncated once it
     * passes WAL_CHECKPOINT_FRAMES instead (wal_hook), which bounds what a
     * new process reads back. */
    sqlite3_db_config(s->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
    sqlite3_wal_hook(s->db, wal_hook, s);
  }
  if (lbx_exec(s, "PRAGMA foreign_keys = OFF", err) < 0 || migrate(s, err) < 0)
    return -1;
  *out = steal_pointer(&guard);
  return 0;
}

void
lbx_store_close(lbx_store *s)
{
  if (!s)
    return;
  for (int i = 0; i < ST__COUNT; i++)
    sqlite3_finalize(s->stmts[i]);
  /* Read-only commands never commit, so a checkpoint a reader kept from
   * truncating a big WAL would otherwise wait for the next write of a
   * WAL_CHECKPOINT_FRAMES commit, and every new process would read it all
   * back meanwhile. */
  if (s->db && s->checkpoint_due)
    checkpoint_now(s->db);
  if (s->db)
    sqlite3_close(s->db);
  if (s->rootfd >= 0)
    close(s->rootfd);
  if (s->lockfd >= 0)
    close(s->lockfd);
  lbx_dset_clear(&s->pending);
  pthread_mutex_destroy(&s->mu);
  free(s->root);
  free(s->blobdir);
  free(s->tmpdir);
  free(s);
}

const char *
lbx_store_root(const lbx_store *s)
{
  return s->root;
}

int
lbx_store_lock(lbx_store *s, bool exclusive, lbx_err **err)
{
  if (s->lockfd < 0)
    return lbx_error(err, EROFS, "store %s: cannot open its lock file", s->root);
  while (flock(s->lockfd, exclusive ? LOCK_EX : LOCK_SH) < 0)
    if (errno != EINTR)
      return lbx_error_errno(err, errno, "store %s: lock", s->root);
  return 0;
}

void
lbx_store_unlock(lbx_store *s)
{
  if (s->lockfd >= 0)
    flock(s->lockfd, LOCK_UN);
}

static int64_t
query_int(lbx_store *s, const char *sql)
{
  _cleanup_finalize_ sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
    return -1;
  return sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
}

int
lbx_store_df(lbx_store *s, lbx_df *df, lbx_err **err)
{
  LBX_LOCKED(s);
  /* One-off report queries: not worth a cached statement each. */
  int64_t v[7] = {
      query_int(s, "SELECT count(*) FROM images"),
      query_int(s, "SELECT count(*) FROM layers"),
      query_int(s, "SELECT count(*) FROM chains"),
      query_int(s, "SELECT count(*) FROM blobs"),
      query_int(s, "SELECT count(*) FROM blobs WHERE data IS NOT NULL"),
      query_int(s, "SELECT coalesce(sum(logical), 0) FROM layers"),
      query_int(s, "SELECT coalesce(sum(size), 0) FROM blobs"),
  };
  for (size_t i = 0; i < LBX_ARRAY_SIZE(v); i++)
    if (v[i] < 0)
      return lbx_sql_error(s, err, "usage");
  *df = (lbx_df){(uint64_t)v[0], (uint64_t)v[1], (uint64_t)v[2], (uint64_t)v[3],
                 (uint64_t)v[4], (uint64_t)v[5], (uint64_t)v[6], 0};
  const char *files[] = {"store.db", "store.db-wal"};
  for (size_t i = 0; i < LBX_ARRAY_SIZE(files); i++) {
    struct stat st;
    if (fstatat(s->rootfd, files[i], &st, 0) == 0)
      df->db_bytes += (uint64_t)st.st_size;
  }
  return 0;
}
