/* The content-addressed store: one SQLite database (store.db) plus blob
 * files under blobs/sha256/. See docs/store-format.md for the layout.
 *
 * Errors: functions called per file or per lookup (the hot paths of
 * indexing and of the FUSE daemon) return -errno; the rest fill an lbx_err
 * whose message names the store or the object. */
#ifndef LBX_STORE_H
#define LBX_STORE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "entry.h"
#include "error.h"
#include "util.h"

typedef struct lbx_store lbx_store;

/* Files up to this size live in store.db instead of a file of their own:
 * see docs/store-format.md for the measurement behind the number. */
#ifndef LBX_INLINE_MAX /* overridable for bench/inline only */
#define LBX_INLINE_MAX 4096
#endif

enum {
  LBX_STORE_RDONLY = 1 << 0, /* readers such as the FUSE daemon */
};

/* Opens (creating and migrating as needed) the store under root. */
int lbx_store_open(const char *root, unsigned flags, lbx_store **out, lbx_err **err);
void lbx_store_close(lbx_store *s);
static inline void
lbx_store_closep(lbx_store **s)
{
  lbx_store_close(*s);
}
const char *lbx_store_root(const lbx_store *s);

/* Loads and imports hold the store lock shared; the blob sweep holds it
 * exclusive, so it never removes a file a running load has written but not
 * yet committed. */
int lbx_store_lock(lbx_store *s, bool exclusive, lbx_err **err);
void lbx_store_unlock(lbx_store *s);

/* ---- layers ---- */

/* 1 if a layer with this diff_id is indexed, 0 if not, -errno. */
int lbx_store_has_layer(lbx_store *s, const char *diff_id);
/* The diff_id a compressed layer digest was indexed as: 1 (diff_id filled), 0, -errno. */
int lbx_store_layer_by_digest(lbx_store *s, const char *digest, char diff_id[LBX_DIGEST_STR]);

/* A layer being indexed. Entries and small blobs are kept (entries past a
 * few MiB in an unlinked file in the store's tmp/, so memory stays bounded
 * whatever the number of entries) and written in one transaction by commit,
 * after the blob files written for the layer are durable (one syncfs, not an
 * fsync per file). Safe to use from one
 * thread per transaction; several transactions may run at once. */
typedef struct lbx_layer_tx lbx_layer_tx;
int lbx_layer_tx_begin(lbx_store *s, lbx_layer_tx **out, lbx_err **err);
void lbx_layer_tx_free(lbx_layer_tx *tx); /* aborts if not committed */
static inline void
lbx_layer_tx_freep(lbx_layer_tx **tx)
{
  lbx_layer_tx_free(*tx);
}
/* 1 if the content (of size bytes) is already stored, or its file was
 * placed by another transaction of this process (then this transaction
 * records it too, so it does not depend on the other one committing);
 * 0 if the caller must store it; -errno. */
int lbx_layer_tx_has_blob(lbx_layer_tx *tx, const uint8_t digest[LBX_DIGEST_LEN], uint64_t size);
/* Keeps a small content (len <= LBX_INLINE_MAX) to be written inline at commit. */
int lbx_layer_tx_put_inline(lbx_layer_tx *tx, const uint8_t digest[LBX_DIGEST_LEN],
                            const void *data, size_t len);
/* Writes a content to a blob file at once (tmp file, then rename). */
int lbx_layer_tx_put_data(lbx_layer_tx *tx, const uint8_t digest[LBX_DIGEST_LEN], const void *data,
                          size_t len);
/* For contents too big to hold in memory: a tmp file to write while hashing,
 * then put_file (names it by its content, or drops it if the content is
 * already stored). *path is NULL for an anonymous (O_TMPFILE) file; a
 * caller that gives up on the file calls drop_tmp(path) and closes fd. */
int lbx_layer_tx_tmpfile(lbx_layer_tx *tx, char **path); /* returns an fd or -errno */
void lbx_layer_tx_drop_tmp(const char *path);
int lbx_layer_tx_put_file(lbx_layer_tx *tx, const uint8_t digest[LBX_DIGEST_LEN], int fd,
                          const char *path, uint64_t size);
/* Copies the entry (strings and blobs) into the transaction: 0 or -errno
 * (e.g. -ENOSPC writing the rows out). */
int lbx_layer_tx_add_entry(lbx_layer_tx *tx, const lbx_entry *e);
/* Makes the blob files durable, then inserts the layer, its entries, its
 * blobs and the compressed digest it came as (digest may be NULL) in one
 * transaction. Committing a diff_id that is already indexed is a no-op. */
int lbx_layer_tx_commit(lbx_layer_tx *tx, const char *diff_id, uint64_t tar_size,
                        const char *digest, const char *media_type, uint64_t compressed_size,
                        lbx_err **err);

/* Calls fn for every entry of an indexed layer, in archive order. */
typedef int (*lbx_entry_fn)(void *ctx, const lbx_entry *e);
int lbx_store_layer_entries(lbx_store *s, const char *diff_id, lbx_entry_fn fn, void *ctx,
                            lbx_err **err);

/* ---- images ---- */

typedef struct lbx_image_layer {
  const char *diff_id;
  const char *digest; /* compressed blob digest as in the manifest */
  const char *media_type;
  uint64_t size; /* compressed size */
} lbx_image_layer;

typedef struct lbx_image_info {
  const char *id;     /* hex sha256 of the config (the image ID) */
  const char *config; /* config JSON bytes */
  size_t config_len;
  const char *manifest; /* manifest JSON bytes, may be NULL */
  size_t manifest_len;
  const char *digest;   /* "sha256:..." of the manifest, or NULL */
  const char *chain_id; /* OCI ChainID of the layers ("sha256:...") */
  int64_t created_ns;   /* from the config */
  size_t nlayers;
  const lbx_image_layer *layers;
} lbx_image_info;

/* Writes the chain's tree: called by image_commit when the chain is new. */
typedef struct lbx_chain_writer lbx_chain_writer;
int lbx_chain_writer_node(lbx_chain_writer *w, const lbx_node *n);
int lbx_chain_writer_dirent(lbx_chain_writer *w, uint64_t parent, const char *name, uint64_t ino);
typedef int (*lbx_chain_build_fn)(void *ctx, lbx_chain_writer *w, lbx_err **err);

/* 1 if the chain's tree is stored, 0 if not, -errno. */
int lbx_store_has_chain(lbx_store *s, const char *chain_id);
/* Records the image (its layers must be indexed), building the chain's tree
 * through build() when it is not stored yet, and points each of names at it
 * (a name moves from the image that had it). One transaction. */
int lbx_store_image_commit(lbx_store *s, const lbx_image_info *info, lbx_chain_build_fn build,
                           void *build_ctx, const char *const *names, size_t nnames, lbx_err **err);

typedef struct lbx_image_row {
  char id[LBX_DIGEST_HEX];
  char **names; /* NULL-terminated, sorted */
  int64_t created_ns;
  int64_t loaded_ns;
  uint64_t size; /* uncompressed layer bytes */
  uint64_t nlayers;
  char *chain_id;
} lbx_image_row;
void lbx_image_rows_free(lbx_image_row *rows, size_t n);
void lbx_image_row_clear(lbx_image_row *row);

int lbx_store_images(lbx_store *s, lbx_image_row **rows, size_t *n, lbx_err **err);
/* By exact name ("docker.io/library/x:tag"): 1 and id filled, 0 if absent. */
int lbx_store_image_by_name(lbx_store *s, const char *name, char id[LBX_DIGEST_HEX]);
/* Every manifest digest the image was pulled or loaded by ("sha256:...",
 * manifest lists' too), its own manifest's first: NULL-terminated, for
 * lbx_strv_free. */
int lbx_store_image_digests(lbx_store *s, const char *id, char ***out, lbx_err **err);
/* By manifest digest ("sha256:..."): 1 and id filled, 0 if absent. */
int lbx_store_image_by_digest(lbx_store *s, const char *digest, char id[LBX_DIGEST_HEX]);
/* By full ID or unique ID prefix (>= 3 hex): 1, 0 absent, -EEXIST ambiguous. */
int lbx_store_image_by_id(lbx_store *s, const char *prefix, char id[LBX_DIGEST_HEX]);
/* Names whose repository part (before ":tag") ends with "/" + suffix: short-name lookups. */
int lbx_store_names_matching(lbx_store *s, const char *repo_suffix, const char *tag, char ***names,
                             size_t *n);
int lbx_store_image_get(lbx_store *s, const char *id, lbx_image_row *row, char **config,
                        size_t *config_len, lbx_err **err);
/* Layers of an image in order; caller frees with lbx_image_layers_free. */
int lbx_store_image_layers(lbx_store *s, const char *id, lbx_image_layer **layers, size_t *n,
                           lbx_err **err);
void lbx_image_layers_free(lbx_image_layer *l, size_t n);

int lbx_store_tag(lbx_store *s, const char *name, const char *id, lbx_err **err);
/* 1 removed, 0 no such name. */
int lbx_store_untag(lbx_store *s, const char *name, lbx_err **err);
/* Number of boxes made from the image; *first (if non-NULL) gets the name
 * of one of them (caller frees), for messages. */
int lbx_store_image_users(lbx_store *s, const char *id, char **first);
/* Removes the image row (names, digests, layer refs); its boxes must be
 * gone first; the data goes at the next gc. */
int lbx_store_image_delete(lbx_store *s, const char *id, lbx_err **err);
/* Records one more digest (a manifest list's) that names image id. */
int lbx_store_image_add_digest(lbx_store *s, const char *id, const char *digest, lbx_err **err);

/* ---- garbage collection and usage ---- */

typedef struct lbx_gc_stats {
  uint64_t chains, layers, blobs, files, bytes;
} lbx_gc_stats;
/* Removes blob and tmp files no row names, if no load is running (it
 * would be waited for when wait is true); what a failed load leaves. */
int lbx_store_sweep(lbx_store *s, bool wait, lbx_gc_stats *st, lbx_err **err);
/* Drops chains and layers no image uses, blobs no layer uses, then (under
 * the exclusive store lock) blob files and tmp files nothing references. */
int lbx_store_gc(lbx_store *s, lbx_gc_stats *st, lbx_err **err);

typedef struct lbx_df {
  uint64_t images, layers, chains, blobs, inline_blobs;
  uint64_t logical_bytes; /* file content summed over every layer */
  uint64_t stored_bytes;  /* distinct content, counted once */
  uint64_t db_bytes;      /* store.db and its WAL */
} lbx_df;
int lbx_store_df(lbx_store *s, lbx_df *df, lbx_err **err);

/* ---- reading a chain (the merged tree), for the FUSE daemon and tools ---- */

typedef struct lbx_chain lbx_chain;
int lbx_chain_open(lbx_store *s, const char *chain_id, lbx_chain **out, lbx_err **err);
void lbx_chain_close(lbx_chain *c);
static inline void
lbx_chain_closep(lbx_chain **c)
{
  lbx_chain_close(*c);
}
/* A node read from the store; strings and blobs owned by it. */
typedef struct lbx_node_buf {
  lbx_node n;
  char *link;
  uint8_t digest[LBX_DIGEST_LEN];
  void *xattrs;
} lbx_node_buf;
void lbx_node_buf_clear(lbx_node_buf *b);
int lbx_chain_getattr(lbx_chain *c, uint64_t ino, lbx_node_buf *out); /* 0, -ENOENT */
int lbx_chain_lookup(lbx_chain *c, uint64_t parent, const char *name,
                     uint64_t *ino); /* 0, -ENOENT */
/* Directory entries in name order after `after` (NULL: from the start);
 * fn returns non-zero to stop (that value is returned). */
typedef int (*lbx_dirent_fn)(void *ctx, const char *name, uint64_t ino);
int lbx_chain_readdir(lbx_chain *c, uint64_t dir, const char *after, lbx_dirent_fn fn, void *ctx);
uint64_t lbx_chain_nodes(const lbx_chain *c);
/* Every path ("dir/name", from the root, without a leading slash) that
 * leads to node ino: its hard links. *paths is a NULL-terminated array the
 * caller frees with lbx_strv_free. 0 or -errno. Scans the chain's entries
 * (there is no index by inode): for the rare copy-up of a hard-linked
 * file, not for a hot path. */
int lbx_chain_paths(lbx_chain *c, uint64_t ino, char ***paths);

/* Opens a stored content: an fd of the blob file (*fd >= 0), or the inline
 * bytes (*data, *len; caller frees). */
int lbx_store_blob_open(lbx_store *s, const uint8_t digest[LBX_DIGEST_LEN], int *fd, void **data,
                        size_t *len);

/* ---- boxes ---- */

typedef struct lbx_box_row {
  char id[LBX_DIGEST_HEX];
  char *name;
  char image[LBX_DIGEST_HEX];
  int64_t created_ns;
  char *config; /* JSON: what the box runs (the launcher's business) */
  /* the last run, as the supervisor recorded it */
  char state[12];     /* created, running, exited */
  int pid;            /* the box's pid 1 in the host's pid namespace */
  uint64_t pid_start; /* its start time (clock ticks after boot, /proc/PID/stat) */
  int64_t started_ns, finished_ns;
  int exit_code; /* 128+N after signal N */
} lbx_box_row;
void lbx_box_row_clear(lbx_box_row *r);

/* Makes boxes/<id>/{upper,work} and the box's row, in that order (a crash
 * leaves at most an unused directory). -1 with *err: a name in use
 * (EEXIST), the image gone (ENOENT), ... */
int lbx_store_box_add(lbx_store *s, const char *id, const char *name, const char *image,
                      const char *config, lbx_err **err);
/* By name, full ID or unique ID prefix: 1 found, 0 absent, -EEXIST ambiguous. */
int lbx_store_box_find(lbx_store *s, const char *key, lbx_box_row *out);
/* By full ID only (a name never matches): 1 found, 0 absent, -errno. */
int lbx_store_box_by_id(lbx_store *s, const char *id, lbx_box_row *out);
int lbx_store_boxes(lbx_store *s, lbx_box_row **rows, size_t *n, lbx_err **err);
/* The supervisor's records: the box's pid 1 runs; it ended with code. */
int lbx_store_box_set_running(lbx_store *s, const char *id, int pid, uint64_t pid_start,
                              int64_t started_ns, lbx_err **err);
int lbx_store_box_set_exited(lbx_store *s, const char *id, int exit_code, int64_t finished_ns,
                             lbx_err **err);
/* A box whose supervisor is gone while its row says running: records it
 * exited with the end the supervisor kept in the box's directory when the
 * store could not take it (a full disk: lbx_box_keep_exit), else with -1
 * and now. Fills *row's state, exit code and end time, also when the
 * store cannot record them (-1: the kept end stays for a later look). */
int lbx_store_box_reap(lbx_store *s, lbx_box_row *row, lbx_err **err);
/* Keeps a box's end where a full disk still has room: an xattr of
 * root/boxes/<id>, held in the directory's inode. 0 or -errno. */
int lbx_box_keep_exit(const char *root, const char *id, int exit_code, int64_t finished_ns);
/* What `exec` needs of a running box, kept outside SQLite so that joining a
 * box does not open the store: the supervisor writes INFO (the CLI's JSON)
 * to root/boxes/<id>/exec.json and links root/running/<name> to the id.
 * 0 or -errno. */
int lbx_box_publish(const char *root, const char *id, const char *name, const char *info);
/* Removes both, the link only while it still names id (NULL name: the file
 * only). */
void lbx_box_unpublish(const char *root, const char *id, const char *name);
/* The published text of the box named name (newly allocated, *id set), or
 * NULL: nothing published, or its supervisor is gone. A hint: the caller
 * checks the pid it names still runs, else asks the store. */
char *lbx_box_published(const char *root, const char *name, char **id);
/* Gives the box another name (EEXIST: a box has it); a running box's
 * publication for exec (below) is withdrawn. */
int lbx_store_box_rename(lbx_store *s, const char *id, const char *old_name, const char *name,
                         lbx_err **err);
/* Removes the row, then the box's directory. */
int lbx_store_box_delete(lbx_store *s, const char *id, lbx_err **err);
/* Removes boxes/<id> only if no box row names it: what a crash between
 * making a box's directory and its row (or an rm) left. -1 with EBUSY when
 * the box exists. */
int lbx_store_box_dir_remove(lbx_store *s, const char *id, lbx_err **err);
/* root/boxes/<id> (newly allocated). */
char *lbx_store_box_dir(const lbx_store *s, const char *id);
/* 1 while the box's supervisor lives (it holds the lock of the box's log for
 * its whole life), 0 when it is gone: a "running" row is then stale. Reads
 * only; lbx_cli_box_running makes the same test and records the exit. */
int lbx_store_box_supervised(const lbx_store *s, const char *id);

/* ---- checking the store (fsck) ---- */

/* What a problem concerns; see docs/store-format.md, "Checking the store". */
typedef enum lbx_check_kind {
  LBX_CHECK_DATABASE, /* integrity_check, or a row naming a row that is not there */
  LBX_CHECK_BLOB,     /* a blob row whose file is missing or wrong, or whose content is wrong */
  LBX_CHECK_ORPHAN,   /* a file under blobs/ no row names */
  LBX_CHECK_TMP,      /* a file left in tmp/ */
  LBX_CHECK_BOX,      /* a box dir without a row, a row without its dir, a stale "running" */
  LBX_CHECK_UNUSED,   /* a chain, layer or blob row no image needs (gc's garbage) */
} lbx_check_kind;

typedef struct lbx_check_problem {
  lbx_check_kind kind;
  const char *object; /* the thing: "blob sha256:...", "tmp/blob-x1Y2z3", "box web (0123...)" */
  const char *reason; /* why it is a problem, one line */
  const char *repair; /* what --repair did ("removed", ...), NULL if nothing */
} lbx_check_problem;

typedef struct lbx_check_opts {
  bool verify; /* rehash every content, in files and inline */
  bool repair; /* remove garbage and fix state; never what a row references */
  /* called once per problem, in the order found; strings valid during the call */
  void (*problem)(void *ctx, const lbx_check_problem *p);
  void *ctx;
} lbx_check_opts;

typedef struct lbx_check_stats {
  uint64_t blobs, inline_blobs, files, boxes; /* what was looked at */
  uint64_t bytes_hashed;                      /* with verify */
  uint64_t problems, repaired;
  /* a load held the store lock: the files and layers it has not committed
   * yet look like garbage, so none were judged */
  bool load_running;
} lbx_check_stats;

/* Checks the database, the blob files against their rows (and with verify
 * their contents), tmp/, the boxes' directories and recorded states. Holds
 * the store lock shared (exclusive with repair, waiting for running loads).
 * 0 when the check ran (problems are counted in *st), -1 with *err when it
 * could not. */
int lbx_store_check(lbx_store *s, const lbx_check_opts *o, lbx_check_stats *st, lbx_err **err);

#endif
