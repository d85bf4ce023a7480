/* Renames in a box root: rename(2) with RENAME_NOREPLACE or
 * RENAME_EXCHANGE, directories with lower content included.
 *
 * The upper dir holds no redirects (overlayfs's redirect_dir xattrs), so
 * a directory whose lower children show through (a merged directory)
 * cannot move by renaming its upper entry alone: the lower children
 * belong to its old path. So it is first made self-contained: everything it shows
 * is copied up, it is marked opaque, and only then does it move; its old
 * name gets a whiteout. What the box sees does not change before the final
 * rename(2) of the upper entries, so a failure or a crash on the way
 * leaves the box as it was (with some names copied up). */
#include "box-internal.h"

/* Beyond these (for each directory moved), a merged directory does not
 * move (EXDEV, and mv(1) copies it name by name, as on overlayfs without
 * redirect_dir): the copy runs under the box's write lock, which holds
 * every change in the box. */
#define MOVE_MAX_ENTRIES 10000
#define MOVE_MAX_BYTES (1ull << 30)

static mode_t
type_of(const struct found *f)
{
  return f->upper ? f->utype : f->ltype;
}

/* A directory whose path shows lower children. */
static bool
is_merged(const struct found *f)
{
  return f->ltype == S_IFDIR && (!f->upper || (f->utype == S_IFDIR && !f->opaque));
}

/* A node reference dropped at the end of the scope. */
struct noderef {
  lbx_boxfs *b;
  struct bnode *n;
};

static void
noderef_drop(struct noderef *h)
{
  if (!h->n)
    return;
  pthread_mutex_lock(&h->b->mu);
  bx_unref_locked(h->b, h->n, 1);
  pthread_mutex_unlock(&h->b->mu);
}
#define _cleanup_noderef_ __attribute__((cleanup(noderef_drop)))

/* ---- lower children and upper paths, as lists ---- */

struct lnames {
  char **name;
  uint64_t *ino;
  size_t n;
};

static void
lnames_free(struct lnames *l)
{
  for (size_t i = 0; i < l->n; i++)
    free(l->name[i]);
  free(l->name);
  free(l->ino);
  memset(l, 0, sizeof *l);
}

/* Runs inside lbx_chain_readdir, which holds the store: no store calls. */
static int
add_lname(void *ctx, const char *name, uint64_t ino)
{
  struct lnames *l = ctx;
  l->name = lbx_xrealloc(l->name, (l->n + 1) * sizeof *l->name);
  l->ino = lbx_xrealloc(l->ino, (l->n + 1) * sizeof *l->ino);
  l->name[l->n] = lbx_xstrdup(name);
  l->ino[l->n++] = ino;
  return 0;
}

struct strv {
  char **v;
  size_t n;
};

static void
strv_free(struct strv *s)
{
  for (size_t i = 0; i < s->n; i++)
    free(s->v[i]);
  free(s->v);
}

static void
strv_push(struct strv *s, char *str)
{
  s->v = lbx_xrealloc(s->v, (s->n + 1) * sizeof *s->v);
  s->v[s->n++] = str;
}

/* ---- making a merged directory self-contained ---- */

struct plan {
  size_t entries;
  uint64_t bytes;
};

/* Counts what copying up the lower directory `lower` would copy, under the
 * upper directory ufd (-1: none yet): the lower names neither whited out
 * nor in the upper dir, recursively, as bx_resolve sees them. -EXDEV past
 * the bounds, or for a device node (a rootless daemon cannot make one):
 * checked before anything is copied, so nothing is copied in vain. */
static int
plan_dir(lbx_boxfs *b, int ufd, uint64_t lower, struct plan *pl)
{
  __attribute__((cleanup(lnames_free))) struct lnames l = {0};
  int r = lbx_chain_readdir(b->chain, lower, NULL, add_lname, &l);
  if (r < 0)
    return r;
  for (size_t i = 0; i < l.n; i++) {
    lbx_node_buf nb = {0};
    if ((r = lbx_chain_getattr(b->chain, l.ino[i], &nb)) < 0)
      return r;
    uint32_t type = nb.n.type;
    uint64_t size = nb.n.size;
    lbx_node_buf_clear(&nb);
    if (ufd >= 0) {
      struct stat st;
      if (fstatat(ufd, l.name[i], &st, AT_SYMLINK_NOFOLLOW) == 0) {
        if (!S_ISDIR(st.st_mode) || type != LBX_T_DIR || bx_is_opaque(ufd, l.name[i]))
          continue; /* the upper entry hides the lower one whole */
        _cleanup_close_ int sub =
            openat(ufd, l.name[i], O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub < 0)
          return -errno;
        if ((r = plan_dir(b, sub, l.ino[i], pl)) < 0)
          return r;
        continue;
      }
      if (errno != ENOENT)
        return -errno;
      if (bx_whiteout_exists(ufd, l.name[i]))
        continue;
    }
    if (type != LBX_T_REG && type != LBX_T_DIR && type != LBX_T_SYMLINK && type != LBX_T_FIFO)
      return -EXDEV;
    if (++pl->entries > MOVE_MAX_ENTRIES)
      return -EXDEV;
    if (type == LBX_T_REG && (pl->bytes += size) > MOVE_MAX_BYTES)
      return -EXDEV;
    if (type == LBX_T_DIR && (r = plan_dir(b, -1, l.ino[i], pl)) < 0)
      return r;
  }
  return 0;
}

/* plan_dir for the merged directory parent/name (resolved as *f). */
static int
plan_move(lbx_boxfs *b, struct bnode *parent, const char *name, const struct found *f)
{
  struct plan pl = {f->upper ? 0 : 1, 0};
  _cleanup_close_ int ufd = -1;
  if (f->upper) {
    _cleanup_close_ int pfd = bx_upper_dir(b, parent);
    if (pfd < 0)
      return pfd;
    ufd = openat(pfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (ufd < 0)
      return -errno;
  }
  return plan_dir(b, ufd, f->lower, &pl);
}

/* Copies up every lower name the merged directory n (already upper) shows,
 * recursively; notes the upper path of each merged directory it goes
 * through, whose whiteouts become useless once n is opaque. */
static int
copy_tree_up(lbx_boxfs *b, struct bnode *n, struct strv *dirs)
{
  strv_push(dirs, bx_path_of(b, n));
  __attribute__((cleanup(lnames_free))) struct lnames l = {0};
  int r = lbx_chain_readdir(b->chain, n->lower, NULL, add_lname, &l);
  if (r < 0)
    return r;
  for (size_t i = 0; i < l.n; i++) {
    struct found f;
    r = bx_resolve(b, n, l.name[i], &f);
    if (r == -ENOENT)
      continue; /* whited out */
    if (r < 0)
      return r;
    bool merged = is_merged(&f);
    if (f.upper && !merged)
      continue;
    _cleanup_noderef_ struct noderef c = {b, bx_node_for(b, n, l.name[i], &f)};
    if ((r = bx_copy_up(b, c.n)) < 0 || (merged && (r = copy_tree_up(b, c.n, dirs)) < 0))
      return r;
  }
  return 0;
}

/* Marks an upper directory opaque: the lower children of whatever path it
 * is at, now or after a move, stay hidden. */
static int
mark_opaque(lbx_boxfs *b, struct bnode *dir)
{
  _cleanup_close_ int fd = bx_upper_dir(b, dir);
  if (fd < 0)
    return fd;
  int m = openat(fd, WH_OPAQUE, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (m < 0)
    return -errno;
  close(m);
  return 0;
}

/* Under b->mu: the nodes at and below top have no lower content any more
 * (top became opaque). A walk of the whole table: flatten is rare. */
static void
forget_lower_locked(lbx_boxfs *b, struct bnode *top)
{
  top->lower = 0;
  for (size_t i = 0; i < b->cap; i++)
    for (struct bnode *e = b->table[i]; e; e = e->hnext)
      for (struct bnode *p = e->parent; p; p = p->parent)
        if (p == top) {
          e->lower = 0;
          break;
        }
}

/* Removes the whiteouts of an upper directory (the opaque marker stays). */
static void
sweep_whiteouts(lbx_boxfs *b, const char *path)
{
  _cleanup_close_ int fd = bx_open_beneath(b, path, O_RDONLY | O_DIRECTORY);
  if (fd < 0)
    return;
  int fd2 = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  _cleanup_closedir_ DIR *d = fd2 >= 0 ? fdopendir(fd2) : NULL;
  if (!d && fd2 >= 0)
    close(fd2);
  struct dirent *de;
  while (d && (de = readdir(d)))
    if (bx_is_reserved(de->d_name) && strcmp(de->d_name, WH_OPAQUE) != 0)
      unlinkat(fd, de->d_name, 0);
}

/* Makes the merged directory n self-contained in the upper dir: copies up
 * what it shows, then marks it opaque. The box sees the same at every
 * step: each copy-up lands whole, and the marker comes when no lower name
 * is left to show. */
static int
flatten(lbx_boxfs *b, struct bnode *n)
{
  int r = bx_copy_up(b, n);
  if (r < 0)
    return r;
  __attribute__((cleanup(strv_free))) struct strv dirs = {0};
  if ((r = copy_tree_up(b, n, &dirs)) < 0)
    return r;
  /* the copies' names durable before the marker that relies on them */
  for (size_t i = 0; i < dirs.n; i++) {
    _cleanup_close_ int fd = bx_open_beneath(b, dirs.v[i], O_RDONLY | O_DIRECTORY);
    if (fd < 0 || fsync(fd) < 0)
      return fd < 0 ? fd : -errno;
  }
  if ((r = mark_opaque(b, n)) < 0)
    return r;
  pthread_mutex_lock(&b->mu);
  n->opaque = true;
  forget_lower_locked(b, n);
  pthread_mutex_unlock(&b->mu);
  /* they hide nothing now; left in, a diff of the box would list them */
  for (size_t i = 0; i < dirs.n; i++)
    sweep_whiteouts(b, dirs.v[i]);
  return 0;
}

/* ---- renames ---- */

/* Swaps two names. Both stay in the upper dir, so neither needs a
 * whiteout: an upper entry hides the lower one of its name. A directory
 * going to a path with lower content is marked opaque first (a merged one
 * is made self-contained), which changes nothing at its old path. */
static int
exchange(lbx_boxfs *b, struct bnode *p, const char *name, struct bnode *np, const char *newname)
{
  struct found fa, fb;
  int r;
  if ((r = bx_resolve(b, p, name, &fa)) < 0 || (r = bx_resolve(b, np, newname, &fb)) < 0)
    return r;
  bool ma = is_merged(&fa), mb = is_merged(&fb);
  if ((ma && (r = plan_move(b, p, name, &fa)) < 0) ||
      (mb && (r = plan_move(b, np, newname, &fb)) < 0))
    return r;
  _cleanup_noderef_ struct noderef a = {b, bx_node_for(b, p, name, &fa)};
  _cleanup_noderef_ struct noderef c = {b, bx_node_for(b, np, newname, &fb)};
  if ((r = ma ? flatten(b, a.n) : bx_copy_up(b, a.n)) < 0 ||
      (r = mb ? flatten(b, c.n) : bx_copy_up(b, c.n)) < 0)
    return r;
  bool oa = ma || (type_of(&fa) == S_IFDIR && (fa.opaque || fb.lower));
  bool ob = mb || (type_of(&fb) == S_IFDIR && (fb.opaque || fa.lower));
  if ((!ma && oa && !fa.opaque && (r = mark_opaque(b, a.n)) < 0) ||
      (!mb && ob && !fb.opaque && (r = mark_opaque(b, c.n)) < 0))
    return r;
  _cleanup_close_ int sfd = bx_upper_dir(b, p);
  _cleanup_close_ int dfd = bx_upper_dir(b, np);
  if (sfd < 0 || dfd < 0)
    return -EIO;
  if (renameat2(sfd, name, dfd, newname, RENAME_EXCHANGE) < 0)
    return -errno;
  /* the kernel swapped its dentries: the nodes swap their names. Each
   * parent keeps one child, so no parent reference changes hands. */
  pthread_mutex_lock(&b->mu);
  bx_table_remove(b, a.n);
  bx_table_remove(b, c.n);
  struct bnode *tp = a.n->parent;
  char *tn = a.n->name;
  a.n->parent = c.n->parent;
  a.n->name = c.n->name;
  c.n->parent = tp;
  c.n->name = tn;
  a.n->upper = c.n->upper = true;
  a.n->opaque = oa;
  c.n->opaque = ob;
  /* below them nothing had lower content: not merged, or made so */
  a.n->lower = c.n->lower = 0;
  bx_table_insert(b, a.n);
  bx_table_insert(b, c.n);
  pthread_mutex_unlock(&b->mu);
  return 0;
}

int
bx_rename(lbx_boxfs *b, struct bnode *p, const char *name, struct bnode *np, const char *newname,
          unsigned int flags)
{
  if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE))
    return -EINVAL; /* RENAME_WHITEOUT: overlayfs's own, not asked of us */
  if (flags & RENAME_EXCHANGE)
    return exchange(b, p, name, np, newname);
  if (bx_is_reserved(newname))
    return -EPERM;
  struct found src, dst;
  int r = bx_resolve(b, p, name, &src);
  if (r < 0)
    return r;
  bool dst_exists = bx_resolve(b, np, newname, &dst) == 0;
  if (dst_exists && (flags & RENAME_NOREPLACE))
    return -EEXIST;
  mode_t stype = type_of(&src), dtype = dst_exists ? type_of(&dst) : 0;
  if (dst_exists && stype == S_IFDIR && dtype != S_IFDIR)
    return -ENOTDIR;
  if (dst_exists && stype != S_IFDIR && dtype == S_IFDIR)
    return -EISDIR;
  /* Everything that can fail comes before anything that changes what the
   * box sees: a failed rename leaves both names as they were. */
  if (dst_exists && dtype == S_IFDIR && (r = bx_dir_empty(b, np, newname, &dst)) < 0)
    return r;
  bool merged = is_merged(&src);
  if (merged && (r = plan_move(b, p, name, &src)) < 0)
    return r;
  _cleanup_noderef_ struct noderef n = {b, bx_node_for(b, p, name, &src)};
  if ((r = merged ? flatten(b, n.n) : bx_copy_up(b, n.n)) < 0 || (r = bx_copy_up(b, np)) < 0)
    return r;
  _cleanup_close_ int sfd = bx_upper_dir(b, p);
  _cleanup_close_ int dfd = bx_upper_dir(b, np);
  if (sfd < 0 || dfd < 0)
    return -EIO;
  bool dst_whiteout = bx_whiteout_exists(dfd, newname);
  /* an empty directory being replaced goes first (rename(2) cannot replace
   * a directory holding whiteouts); a file is replaced by renameat itself */
  if (dst_exists && dtype == S_IFDIR && (r = bx_remove_name(b, np, newname, true)) < 0)
    return r;
  /* a directory moved where a lower one was must not show its children:
   * marked opaque before it gets there */
  bool opaque = merged || (stype == S_IFDIR && src.opaque);
  if (stype == S_IFDIR && !opaque && (dst_whiteout || (dst_exists && dst.lower))) {
    if ((r = mark_opaque(b, n.n)) < 0)
      return r;
    opaque = true;
  }
  /* the old name's whiteout before the move: until then the upper name
   * still wins over it, so no moment shows the lower file again */
  bool made_wh = false;
  if (src.lower) {
    if ((r = bx_make_whiteout(sfd, name)) < 0)
      return r;
    made_wh = true;
  }
  if (renameat(sfd, name, dfd, newname) < 0) {
    r = -errno;
    if (made_wh) {
      _cleanup_free_ char *swh = lbx_xasprintf(WH_PREFIX "%s", name);
      unlinkat(sfd, swh, 0);
    }
    return r;
  }
  if (dst_whiteout || (dst_exists && dst.lower)) {
    /* the new upper name hides the lower one now (a replaced directory got
     * a whiteout in bx_remove_name) */
    _cleanup_free_ char *wh = lbx_xasprintf(WH_PREFIX "%s", newname);
    unlinkat(dfd, wh, 0);
  }
  /* the node moves with its name; whatever the table had at the target goes */
  bx_detach(b, np, newname);
  pthread_mutex_lock(&b->mu);
  struct bnode *moved = n.n;
  if (!moved->detached) {
    bx_table_remove(b, moved);
    np->refs++;
    struct bnode *old = moved->parent;
    moved->parent = np;
    free(moved->name);
    moved->name = lbx_xstrdup(newname);
    moved->upper = true;
    moved->opaque = opaque;
    moved->lower = 0; /* below it nothing has lower content (see flatten) */
    bx_table_insert(b, moved);
    bx_unref_locked(b, old, 1);
  }
  pthread_mutex_unlock(&b->mu);
  return 0;
}
