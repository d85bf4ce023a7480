/* fs/: the FUSE daemon. A thin adapter: the tree and the contents come from
 * the store's chain API (store/store.h); this module only speaks FUSE.
 * So far: read-only image mounts. Boxes (an upper dir) come next. */
#ifndef LBX_FS_H
#define LBX_FS_H

#include <stdbool.h>
#include <stdint.h>

#include "../store/error.h"

typedef struct lbx_fs_opts {
  const char *store_root; /* opened read-only by the daemon itself */
  const char *chain_id;   /* the image's merged tree */
  const char *fsname;     /* shown as the mount's source (the image ID) */
  const char *mountpoint;
  uint64_t total_bytes; /* what statfs reports as used */
  bool allow_other;
  bool debug; /* log every operation to stderr */
} lbx_fs_opts;

typedef struct lbx_fs lbx_fs;

/* Opens the store and the chain and mounts (through fusermount3 when not
 * root). On return the mount exists; requests wait until lbx_fs_serve. */
int lbx_fs_mount(const lbx_fs_opts *o, lbx_fs **out, lbx_err **err);
/* The version of the libfuse3 found at run time ("3.14.0"), loading it;
 * NULL with *err when it cannot be loaded. */
const char *lbx_fs_fuse_version(lbx_err **err);
/* Serves requests until the file system is unmounted or SIGINT/SIGTERM/
 * SIGHUP arrive; then unmounts. Multithreaded. */
int lbx_fs_serve(lbx_fs *fs, lbx_err **err);
void lbx_fs_free(lbx_fs *fs);

/* A box's read-write root: the image's tree under an upper dir (OCI
 * whiteouts), with a work dir on the same file system for atomic copy-up. */
typedef struct lbx_boxfs_opts {
  const char *store_root;
  const char *chain_id;
  const char *fsname;
  const char *mountpoint;
  const char *upper;
  const char *work;
  bool allow_other;
  bool debug;
  bool map_root; /* show the box's root as the mounting user (host mounts by non-root) */
} lbx_boxfs_opts;

typedef struct lbx_boxfs lbx_boxfs;
int lbx_boxfs_mount(const lbx_boxfs_opts *o, lbx_boxfs **out, lbx_err **err);
int lbx_boxfs_serve(lbx_boxfs *b, lbx_err **err);
/* Ends serving from another thread: detaches the mount; lbx_boxfs_serve
 * returns once the kernel lets the connection go (no process left in a
 * namespace that has the mount). */
void lbx_boxfs_unmount(lbx_boxfs *b);
void lbx_boxfs_free(lbx_boxfs *b);

#endif
