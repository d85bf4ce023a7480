/* Our streaming tar reader: ustar, pax extended headers (global and per
 * file), GNU long names and long links. Sparse files are refused with an
 * error naming the file. It never touches the filesystem. */
#ifndef LBX_TAR_H
#define LBX_TAR_H

#include <stdint.h>
#include <sys/types.h>

#include "stream.h"

enum lbx_tar_type {
  LBX_TAR_REG = 1,
  LBX_TAR_DIR,
  LBX_TAR_SYMLINK,
  LBX_TAR_HARDLINK,
  LBX_TAR_CHR,
  LBX_TAR_BLK,
  LBX_TAR_FIFO,
};

typedef struct lbx_tar_xattr {
  char *name; /* e.g. "security.capability" (from SCHILY.xattr.NAME) */
  uint8_t *value;
  size_t len;
} lbx_tar_xattr;

typedef struct lbx_tar_entry {
  enum lbx_tar_type type;
  char *path;     /* as in the archive (pax path / GNU long name win), not cleaned */
  char *linkname; /* symlink or hardlink target as in the archive, or NULL */
  uint32_t mode;  /* 07777 bits only */
  uint32_t uid, gid;
  char *uname, *gname; /* may be NULL */
  uint64_t size;       /* data bytes that follow (0 for all but regular files) */
  int64_t mtime_sec;
  uint32_t mtime_nsec;
  uint32_t devmajor, devminor;
  uint64_t offset; /* offset of the data in the tar stream (the header's end) */
  size_t nxattrs;
  lbx_tar_xattr *xattrs;
} lbx_tar_entry;

typedef struct lbx_tar lbx_tar;

/* name is what errors call the archive. */
lbx_tar *lbx_tar_new(const char *name, lbx_read_fn read, void *ctx);
void lbx_tar_free(lbx_tar *t);
static inline void
lbx_tar_freep(lbx_tar **t)
{
  lbx_tar_free(*t);
}

/* Next entry: 1 with *out valid until the next call, 0 at the end of the
 * archive (two zero blocks, or a clean EOF on a block boundary), -1 on error
 * (*err names the archive and the entry). Unread data of the previous entry
 * is skipped. */
int lbx_tar_next(lbx_tar *t, const lbx_tar_entry **out, lbx_err **err);

/* Reads the current entry's data: > 0, 0 once all of it is read, -1 on a
 * short archive. */
ssize_t lbx_tar_read(lbx_tar *t, void *buf, size_t len, lbx_err **err);

/* Normalizes an archive path: drops leading "/" and "./", empty and "."
 * components and a trailing "/". Refuses ".." components (-1 with *err
 * naming the path). "" names the root. Returns a new string in *out. */
int lbx_tar_clean_path(const char *path, char **out, lbx_err **err);

#endif
