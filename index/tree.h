/* The merge of a layer chain into one tree, in memory: layers applied in
 * order, OCI whiteouts (".wh.NAME") and opaque directories (".wh..wh..opq")
 * honoured, hardlinked names sharing one node. The result is emitted as
 * nodes and directory entries for the store to keep. */
#ifndef LBX_TREE_H
#define LBX_TREE_H

#include <stdint.h>

#include "../store/entry.h"
#include "../store/error.h"

typedef struct lbx_tree lbx_tree;

/* A new tree holds only the root directory (0755, uid 0, mtime 0). */
lbx_tree *lbx_tree_new(void);
void lbx_tree_free(lbx_tree *t);
static inline void
lbx_tree_freep(lbx_tree **t)
{
  lbx_tree_free(*t);
}

/* Starts the next layer: whiteouts and opaque markers of a layer hide only
 * what lower layers put there, never what this layer adds. */
void lbx_tree_begin_layer(lbx_tree *t);

/* Applies one entry of the current layer (path already cleaned). Missing
 * parent directories are made (0755, root). Refused with -1 and *err
 * naming the path: a parent that is not a directory (e.g. a symlink: the
 * tree never follows links), a hardlink to a name that does not exist or is
 * a directory, a whiteout of "." or "..". A whiteout of a missing name is
 * not an error. */
int lbx_tree_apply(lbx_tree *t, const lbx_entry *e, lbx_err **err);

/* Emits the tree: every node once (inode numbers 1.. in breadth-first
 * order with names sorted bytewise, root = 1, so numbering is stable for
 * a given chain), then every directory entry (parent ino, name, ino).
 * A callback returning non-zero stops the walk and that value is returned. */
typedef int (*lbx_tree_node_fn)(void *ctx, const lbx_node *n);
typedef int (*lbx_tree_dirent_fn)(void *ctx, uint64_t parent, const char *name, uint64_t ino);
int lbx_tree_emit(lbx_tree *t, lbx_tree_node_fn node, lbx_tree_dirent_fn dirent, void *ctx);

uint64_t lbx_tree_count(const lbx_tree *t); /* nodes */

#endif
