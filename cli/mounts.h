/* The lazybox mounts this mount namespace has, read from
 * /proc/self/mountinfo (fstype fuse.lazybox, source = the image ID). */
#ifndef LBX_MOUNTS_H
#define LBX_MOUNTS_H

#include <stddef.h>

typedef struct lbx_mount_ent {
  char *dir;
  char *image; /* full hex ID */
} lbx_mount_ent;

/* -errno on failure. */
int lbx_mounts_list(lbx_mount_ent **out, size_t *n);
void lbx_mounts_free(lbx_mount_ent *v, size_t n);
/* The directory default mounts go under (made on demand). */
char *lbx_mounts_base(void);

#endif
