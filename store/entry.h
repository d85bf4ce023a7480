/* The record of one filesystem entry, shared by the tar indexer (a layer's
 * entries), the tree merge and the store (a chain's nodes). */
#ifndef LBX_ENTRY_H
#define LBX_ENTRY_H

#include <stddef.h>
#include <stdint.h>

enum lbx_type {
  LBX_T_REG = 1,
  LBX_T_DIR = 2,
  LBX_T_SYMLINK = 3,
  LBX_T_HARDLINK = 4, /* layer entries only: link names the target path */
  LBX_T_CHR = 5,
  LBX_T_BLK = 6,
  LBX_T_FIFO = 7,
};

typedef struct lbx_entry {
  const char *path; /* cleaned, relative to the root, "" is the root itself */
  const char *link; /* symlink target (verbatim) or hardlink target (cleaned path) */
  uint32_t type;    /* enum lbx_type */
  uint32_t mode;    /* permission bits with setuid/setgid/sticky (07777) */
  uint32_t uid, gid;
  uint64_t size;         /* content bytes of a regular file, else 0 */
  int64_t mtime_ns;      /* nanoseconds since the epoch */
  uint64_t rdev;         /* makedev(major, minor) for devices */
  uint64_t offset;       /* regular files: data offset in the uncompressed layer */
  const uint8_t *digest; /* regular files: sha256 of the content (32 bytes) */
  const void *xattrs;    /* packed xattrs, see lbx_xattrs_* below, or NULL */
  size_t xattrs_len;
} lbx_entry;

/* A node of a merged tree (a chain): like an entry, without a path. */
typedef struct lbx_node {
  uint64_t ino;
  uint32_t type; /* never LBX_T_HARDLINK: hardlinked names share one node */
  uint32_t mode;
  uint32_t uid, gid;
  uint32_t nlink;
  uint64_t size;
  int64_t mtime_ns;
  uint64_t rdev;
  const char *link;
  const uint8_t *digest;
  const void *xattrs;
  size_t xattrs_len;
} lbx_node;

/* Packed xattrs: a sequence of records, each "name\0" then a 4-byte
 * little-endian value length then the value bytes. One flat blob keeps a
 * node to one row and one column. */
void lbx_xattrs_append(uint8_t **buf, size_t *len, const char *name, const void *value,
                       size_t vlen);
/* Iterates: *pos starts at 0; returns 1 with name/value set, 0 at the end,
 * -EINVAL on a malformed blob. */
int lbx_xattrs_next(const void *buf, size_t len, size_t *pos, const char **name, const void **value,
                    size_t *vlen);

#endif
