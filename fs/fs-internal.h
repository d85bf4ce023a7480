/* Private to fs/: what image mounts and box roots share. */
#ifndef LBX_FS_INTERNAL_H
#define LBX_FS_INTERNAL_H

#include <sys/stat.h>

#include "../store/entry.h"

/* A lower (image) node as stat(2) shows it. */
void lbx_fs_node_stat(const lbx_node *n, struct stat *st);

#endif
