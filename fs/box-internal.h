/* Private to fs/box*.c: the node table, upper-dir access and copy-up
 * (box-node.c), shared by the FUSE request handlers (box.c). */
#ifndef LBX_BOX_INTERNAL_H
#define LBX_BOX_INTERNAL_H

#define FUSE_USE_VERSION 312

#include "fs.h"
#include "../store/store.h"

#include <dirent.h>
#include <fcntl.h>
#include "fuse-api.h"
#include <linux/openat2.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/xattr.h>

#define OVERRIDE_XATTR "user.lazybox.override"
#define WH_PREFIX ".wh."
#define WH_OPAQUE ".wh..wh..opq"
#define UPPER_INO_BIT (1ull << 63)
/* Upper files change only through us, but several names (nodes) can lead
 * to one upper inode (hard links), and a change through one must show
 * through the others: no attribute caching for upper files. */
#define UPPER_TIMEOUT 0.0
/* Directories cannot be hard-linked, and every change to one (entries,
 * modes, times) goes through the daemon, whose replies the kernel applies
 * (it drops a directory's attributes itself on create, unlink and rename
 * in it): their attributes and names can be cached as long as a lower
 * directory's, which is what an upper one was before its first change.
 * A path walk through them (/, /etc, /usr/bin of every exec) then costs no
 * round trip however long the box was idle; with one second, each walk
 * after an idle second cost a GETATTR per upper component. */
#define LOWER_TIMEOUT 86400.0
#define UPPER_DIR_TIMEOUT LOWER_TIMEOUT

struct bnode {
  struct bnode *parent; /* holds a reference */
  char *name;           /* "" for the root */
  uint64_t refs;        /* kernel lookups + children + open handles */
  uint64_t lower;       /* chain ino at this path, 0 if none is visible */
  uint64_t st_ino;
  mode_t type;   /* S_IFMT bits */
  bool upper;    /* the name exists in the upper dir */
  bool opaque;   /* directory: lower children are hidden */
  bool detached; /* its name was removed or replaced: no path leads here */
  int keep_fd;   /* upper files once opened: an fd to stat it by after detach */
  struct bnode *hnext;
};

struct lbx_boxfs {
  lbx_store *store;
  lbx_chain *chain;
  struct fuse_session *se;
  int upperfd, workfd;
  pthread_mutex_t mu; /* the node table and every node's tree fields */
  /* Every change to the box's tree (and copy-up) runs under this recursive
   * lock, so a copy-up never races another copy-up of the same name, nor a
   * rename or unlink changing the names it reads. Reads do not take it. */
  pthread_mutex_t wmu;
  struct bnode *root;
  struct bnode **table;
  size_t cap, count;
  uint64_t tmpseq;
  bool mounted;
  /* A mount on the host by a user who is not root (no user namespace in
   * between): the box's root shows as that user, as it would inside the
   * box's namespace where the user is root. */
  bool map_root;
  uint32_t host_uid, host_gid;
};

static inline void
bx_wunlockp(pthread_mutex_t **m)
{
  if (*m)
    pthread_mutex_unlock(*m);
}
#define BX_WLOCK(b)                                                                                \
  __attribute__((cleanup(bx_wunlockp))) pthread_mutex_t *bx_wmu_ = &(b)->wmu;                      \
  pthread_mutex_lock(bx_wmu_)

/* box id <-> what the kernel hands us and shows (see map_root) */
static inline uint32_t
bx_uid_out(const lbx_boxfs *b, uint32_t uid)
{
  return b->map_root && uid == 0 ? b->host_uid : uid;
}
static inline uint32_t
bx_gid_out(const lbx_boxfs *b, uint32_t gid)
{
  return b->map_root && gid == 0 ? b->host_gid : gid;
}
static inline uint32_t
bx_uid_in(const lbx_boxfs *b, uint32_t uid)
{
  return b->map_root && uid == b->host_uid ? 0 : uid;
}
static inline uint32_t
bx_gid_in(const lbx_boxfs *b, uint32_t gid)
{
  return b->map_root && gid == b->host_gid ? 0 : gid;
}

struct override {
  bool set;
  uint32_t uid, gid, mode;
};

struct found {
  bool upper;
  mode_t utype;
  ino_t uino;
  bool opaque;
  uint64_t lower;
  mode_t ltype;
};

void bx_table_insert(lbx_boxfs *b, struct bnode *n);
void bx_table_remove(lbx_boxfs *b, struct bnode *n);
struct bnode *bx_table_find(lbx_boxfs *b, struct bnode *parent, const char *name);
void bx_unref_locked(lbx_boxfs *b, struct bnode *n, uint64_t count);
struct bnode *bx_node_of(lbx_boxfs *b, fuse_ino_t ino);
fuse_ino_t bx_id_of(lbx_boxfs *b, struct bnode *n);
char *bx_path_of(lbx_boxfs *b, struct bnode *n);
int bx_open_beneath(lbx_boxfs *b, const char *path, int flags);
int bx_upper_dir(lbx_boxfs *b, struct bnode *dir);
bool bx_is_reserved(const char *name);
bool bx_is_opaque(int dirfd, const char *name);
int bx_node_stat(lbx_boxfs *b, struct bnode *n, struct stat *st, double *timeout);
mode_t bx_lower_type(uint32_t t);
int bx_resolve(lbx_boxfs *b, struct bnode *parent, const char *name, struct found *f);
struct bnode *bx_node_for(lbx_boxfs *b, struct bnode *parent, const char *name,
                          const struct found *f);
int bx_entry_for(lbx_boxfs *b, struct bnode *n, struct fuse_entry_param *e);
int bx_copy_up(lbx_boxfs *b, struct bnode *n);
int bx_upper_at(lbx_boxfs *b, struct bnode *n, int *dfd, char **name);
int bx_update_override(int dfd, const char *name, int set_mode, uint32_t mode, int set_uid,
                       uint32_t uid, int set_gid, uint32_t gid);
struct override bx_read_override_at(int dirfd, const char *name, mode_t type);
int bx_write_override_fd(int fd, uint32_t uid, uint32_t gid, uint32_t mode);
void bx_lower_stat(const lbx_node *n, struct stat *st);
bool bx_whiteout_exists(int dirfd, const char *name);
char *bx_path_locked(lbx_boxfs *b, struct bnode *n);
void bx_work_name(lbx_boxfs *b, const char *what, char *buf, size_t size);
void bx_remove_tree(int dirfd, const char *name, int depth);

/* box.c: removing names, shared with renames */
void bx_detach(lbx_boxfs *b, struct bnode *parent, const char *name);
int bx_make_whiteout(int dfd, const char *name);
int bx_dir_empty(lbx_boxfs *b, struct bnode *parent, const char *name, const struct found *f);
int bx_remove_name(lbx_boxfs *b, struct bnode *parent, const char *name, bool dir);

/* box-rename.c: rename(2) with RENAME_NOREPLACE or RENAME_EXCHANGE; -errno */
int bx_rename(lbx_boxfs *b, struct bnode *p, const char *name, struct bnode *np,
              const char *newname, unsigned int flags);

#endif
