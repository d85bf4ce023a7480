/* The lazybox mounts this mount namespace has, read from
 * /proc/self/mountinfo (fstype fuse.lazybox). The source names what is
 * served: "box:<box ID>" (random, so one store's), or "<image ID>@<tag>",
 * the tag naming the store, so that a store's commands never count (nor
 * reuse) another store's mount of the same image. */
#ifndef LBX_MOUNTS_H
#define LBX_MOUNTS_H

#include <stddef.h>

typedef struct lbx_mount_ent {
  char *dir;
  char *image; /* full hex ID */
} lbx_mount_ent;

/* The mounts of the store at root (image IDs without their tag); -errno. */
int lbx_mounts_list(const char *root, lbx_mount_ent **out, size_t *n);
/* The source of a mount of image id from the store at root. */
char *lbx_mount_source(const char *root, const char *id);
void lbx_mounts_free(lbx_mount_ent *v, size_t n);
/* The directory default mounts go under (made on demand). */
char *lbx_mounts_base(void);

#endif
