/* Private to store/: the handle's layout and the statement cache. */
#ifndef LBX_STORE_INTERNAL_H
#define LBX_STORE_INTERNAL_H

#include <pthread.h>
#include <sqlite3.h>

#include "dset.h"
#include "store.h"

/* Every SQL statement the store runs more than once, prepared on first use
 * and kept for the life of the handle. */
enum lbx_stmt {
  ST_HAS_LAYER,
  ST_LAYER_BY_DIGEST,
  ST_HAS_BLOB,
  ST_INSERT_LAYER,
  ST_INSERT_LAYER_BLOB,
  ST_INSERT_ENTRY,
  ST_INSERT_BLOB,
  ST_LAYER_ID,
  ST_LAYER_ENTRIES,
  ST_HAS_CHAIN,
  ST_INSERT_CHAIN,
  ST_INSERT_CHAIN_LAYER,
  ST_INSERT_NODE,
  ST_INSERT_DIRENT,
  ST_INSERT_IMAGE,
  ST_INSERT_IMAGE_LAYER,
  ST_DELETE_IMAGE_LAYERS,
  ST_SET_NAME,
  ST_DELETE_NAME,
  ST_IMAGES,
  ST_IMAGE_NAMES,
  ST_IMAGE_BY_NAME,
  ST_IMAGE_BY_ID,
  ST_IMAGE_BY_DIGEST,
  ST_INSERT_IMAGE_DIGEST,
  ST_IMAGE_DIGESTS,
  ST_IMAGE_GET,
  ST_IMAGE_LAYERS,
  ST_IMAGE_USERS,
  ST_NAMES_LIKE,
  ST_CHAIN_INFO,
  ST_NODE_GET,
  ST_DIRENT_LOOKUP,
  ST_READDIR_FIRST,
  ST_READDIR_AFTER,
  ST_BLOB_GET,
  ST_BLOB_FILE_EXISTS,
  ST__COUNT
};

struct lbx_store {
  char *root;
  char *blobdir; /* root/blobs/sha256 */
  char *tmpdir;  /* root/tmp */
  int rootfd;
  int lockfd;
  unsigned flags;
  sqlite3 *db;
  /* One connection serves every thread: the mutex makes each statement
   * use, and each write transaction, exclusive. */
  pthread_mutex_t mu;
  sqlite3_stmt *stmts[ST__COUNT];
  /* Blob files renamed into place by transactions not yet committed, so
   * two layers indexed at once write a shared content once. */
  lbx_dset pending;
  /* The WAL passed WAL_CHECKPOINT_FRAMES and a reader kept its checkpoint
   * from truncating it: tried again when this connection closes. */
  bool checkpoint_due;
};

/* synchronous=FULL (the next commits are on disk when they return) or back
 * to NORMAL. */
void lbx_store_sync_commits(lbx_store *s, bool full);

sqlite3_stmt *lbx_stmt(lbx_store *s, enum lbx_stmt which);
static inline void
lbx_stmt_resetp(sqlite3_stmt **st)
{
  if (*st) {
    sqlite3_reset(*st);
    sqlite3_clear_bindings(*st);
  }
}
#define _cleanup_reset_ __attribute__((cleanup(lbx_stmt_resetp)))
static inline void
lbx_stmt_finalizep(sqlite3_stmt **st)
{
  sqlite3_finalize(*st);
}
#define _cleanup_finalize_ __attribute__((cleanup(lbx_stmt_finalizep)))

static inline void
lbx_unlockp(pthread_mutex_t **mu)
{
  if (*mu)
    pthread_mutex_unlock(*mu);
}
/* Holds the store mutex to the end of the scope. */
#define LBX_LOCKED(s)                                                                              \
  __attribute__((cleanup(lbx_unlockp))) pthread_mutex_t *lbx_mu_ = &(s)->mu;                       \
  pthread_mutex_lock(lbx_mu_)

/* Runs SQL text with no results (schema, BEGIN/COMMIT). */
int lbx_exec(lbx_store *s, const char *sql, lbx_err **err);
/* Turns an SQLite failure into an error naming the store. */
int lbx_sql_error(lbx_store *s, lbx_err **err, const char *what);
int lbx_sqlite_errno(int rc);

void lbx_blob_path(const lbx_store *s, const uint8_t digest[LBX_DIGEST_LEN], char *out, size_t n);

#endif
