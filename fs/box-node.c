/* Box nodes: the table the kernel's node ids point into, paths in the
 * upper dir reached without following symlinks, what the box sees of a
 * name, and copy-up. */
#include "box-internal.h"
#include "fs-internal.h"

/* ---- the node table, keyed by (parent, name) ---- */

static size_t
hash(const struct bnode *parent, const char *name, size_t cap)
{
  uint64_t h = (uint64_t)(uintptr_t)parent * 0x9e3779b97f4a7c15ull;
  for (const unsigned char *p = (const unsigned char *)name; *p; p++)
    h = (h ^ *p) * 0x100000001b3ull;
  return (size_t)(h & (cap - 1));
}

void
bx_table_insert(lbx_boxfs *b, struct bnode *n)
{
  if ((b->count + 1) * 2 > b->cap) {
    size_t ncap = b->cap ? b->cap * 2 : 1024;
    struct bnode **t = lbx_xcalloc(ncap, sizeof *t);
    for (size_t i = 0; i < b->cap; i++)
      for (struct bnode *e = b->table[i], *next; e; e = next) {
        next = e->hnext;
        size_t h = hash(e->parent, e->name, ncap);
        e->hnext = t[h];
        t[h] = e;
      }
    free(b->table);
    b->table = t;
    b->cap = ncap;
  }
  size_t h = hash(n->parent, n->name, b->cap);
  n->hnext = b->table[h];
  b->table[h] = n;
  b->count++;
}

void
bx_table_remove(lbx_boxfs *b, struct bnode *n)
{
  if (!b->cap)
    return;
  for (struct bnode **p = &b->table[hash(n->parent, n->name, b->cap)]; *p; p = &(*p)->hnext)
    if (*p == n) {
      *p = n->hnext;
      b->count--;
      return;
    }
}

struct bnode *
bx_table_find(lbx_boxfs *b, struct bnode *parent, const char *name)
{
  if (!b->cap)
    return NULL;
  for (struct bnode *e = b->table[hash(parent, name, b->cap)]; e; e = e->hnext)
    if (e->parent == parent && strcmp(e->name, name) == 0)
      return e;
  return NULL;
}

/* Drops references under b->mu; frees nodes (and their parents) at zero. */
void
bx_unref_locked(lbx_boxfs *b, struct bnode *n, uint64_t count)
{
  while (n) {
    n->refs -= count;
    if (n->refs > 0 || n == b->root)
      return;
    struct bnode *parent = n->parent;
    bx_table_remove(b, n);
    if (n->keep_fd >= 0)
      close(n->keep_fd);
    free(n->name);
    free(n);
    n = parent;
    count = 1;
  }
}

struct bnode *
bx_node_of(lbx_boxfs *b, fuse_ino_t ino)
{
  return ino == FUSE_ROOT_ID ? b->root : (struct bnode *)(uintptr_t)ino;
}

fuse_ino_t
bx_id_of(lbx_boxfs *b, struct bnode *n)
{
  return n == b->root ? FUSE_ROOT_ID : (fuse_ino_t)(uintptr_t)n;
}

/* "a/b/c" for a node ("." for the root); under b->mu. */
char *
bx_path_locked(lbx_boxfs *b, struct bnode *n)
{
  if (n == b->root)
    return lbx_xstrdup(".");
  size_t len = 0;
  for (struct bnode *p = n; p != b->root; p = p->parent)
    len += strlen(p->name) + 1;
  char *s = lbx_xmalloc(len);
  size_t at = len - 1;
  s[at] = '\0';
  for (struct bnode *p = n; p != b->root; p = p->parent) {
    size_t l = strlen(p->name);
    at -= l;
    memcpy(s + at, p->name, l);
    if (at > 0)
      s[--at] = '/';
  }
  return s;
}

char *
bx_path_of(lbx_boxfs *b, struct bnode *n)
{
  pthread_mutex_lock(&b->mu);
  char *s = bx_path_locked(b, n);
  pthread_mutex_unlock(&b->mu);
  return s;
}

/* ---- the upper dir, reached without following any symlink ---- */

int
bx_open_beneath(lbx_boxfs *b, const char *path, int flags)
{
  struct open_how how = {
      .flags = (uint64_t)(flags | O_CLOEXEC | O_NOFOLLOW),
      .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
  };
  long fd = syscall(SYS_openat2, b->upperfd, path, &how, sizeof how);
  return fd < 0 ? -errno : (int)fd;
}

/* An O_PATH fd of a directory node in the upper dir, or -errno. */
int
bx_upper_dir(lbx_boxfs *b, struct bnode *dir)
{
  _cleanup_free_ char *p = bx_path_of(b, dir);
  return bx_open_beneath(b, p, O_PATH | O_DIRECTORY);
}

bool
bx_is_reserved(const char *name)
{
  return strncmp(name, WH_PREFIX, strlen(WH_PREFIX)) == 0;
}

bool
bx_whiteout_exists(int dirfd, const char *name)
{
  _cleanup_free_ char *wh = lbx_xasprintf(WH_PREFIX "%s", name);
  return faccessat(dirfd, wh, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
}

bool
bx_is_opaque(int dirfd, const char *name)
{
  /* NAME itself without following it: were it swapped for a symlink, the
   * check must not probe a host path */
  _cleanup_close_ int fd = openat(dirfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  return fd >= 0 && faccessat(fd, WH_OPAQUE, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
}

/* ---- attributes ---- */

int
bx_write_override_fd(int fd, uint32_t uid, uint32_t gid, uint32_t mode)
{
  char buf[64];
  int n = snprintf(buf, sizeof buf, "%u:%u:%o", uid, gid, mode & 07777);
  return fsetxattr(fd, OVERRIDE_XATTR, buf, (size_t)n, 0) < 0 ? -errno : 0;
}

/* Reads the override of an upper name through an fd (symlinks have none). */
struct override
bx_read_override_at(int dirfd, const char *name, mode_t type)
{
  struct override o = {0};
  if (type == S_IFLNK)
    return o;
  int fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return o;
  /* fgetxattr does not work on O_PATH fds: go through /proc */
  char proc[64];
  snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
  char buf[64];
  ssize_t n = getxattr(proc, OVERRIDE_XATTR, buf, sizeof buf - 1);
  close(fd);
  if (n > 0) {
    buf[n] = '\0';
    if (sscanf(buf, "%u:%u:%o", &o.uid, &o.gid, &o.mode) == 3)
      o.set = true;
  }
  return o;
}

void
bx_lower_stat(const lbx_node *n, struct stat *st)
{
  lbx_fs_node_stat(n, st);
}

/* What the box sees of a node. */
int
bx_node_stat(lbx_boxfs *b, struct bnode *n, struct stat *st, double *timeout)
{
  if (n->detached && n->upper) {
    /* no path leads to it: stat it through the fd kept from its opening */
    if (n->keep_fd < 0 || fstat(n->keep_fd, st) < 0)
      return -ENOENT;
    char buf[64];
    ssize_t len = fgetxattr(n->keep_fd, OVERRIDE_XATTR, buf, sizeof buf - 1);
    struct override o = {0};
    if (len > 0) {
      buf[len] = '\0';
      o.set = sscanf(buf, "%u:%u:%o", &o.uid, &o.gid, &o.mode) == 3;
    }
    st->st_uid = bx_uid_out(b, o.set ? o.uid : 0);
    st->st_gid = bx_gid_out(b, o.set ? o.gid : 0);
    if (o.set)
      st->st_mode = (st->st_mode & S_IFMT) | (o.mode & 07777);
    st->st_ino = n->st_ino;
    *timeout = UPPER_TIMEOUT;
    return 0;
  }
  if (n->upper) {
    _cleanup_free_ char *p = bx_path_of(b, n);
    char *slash = strrchr(p, '/');
    _cleanup_close_ int dfd = -1;
    const char *name = p;
    if (slash) {
      *slash = '\0';
      dfd = bx_open_beneath(b, p, O_PATH | O_DIRECTORY);
      name = slash + 1;
    } else {
      dfd = fcntl(b->upperfd, F_DUPFD_CLOEXEC, 3);
    }
    if (dfd < 0)
      return dfd;
    if (fstatat(dfd, name, st, AT_SYMLINK_NOFOLLOW) < 0)
      return -errno;
    struct override o = bx_read_override_at(dfd, name, st->st_mode & S_IFMT);
    if (o.set) {
      st->st_uid = o.uid;
      st->st_gid = o.gid;
      st->st_mode = (st->st_mode & S_IFMT) | (o.mode & 07777);
    } else {
      st->st_uid = 0;
      st->st_gid = 0;
    }
    if (S_ISDIR(st->st_mode))
      st->st_nlink = 2;
    st->st_ino = n->st_ino;
    st->st_uid = bx_uid_out(b, st->st_uid);
    st->st_gid = bx_gid_out(b, st->st_gid);
    *timeout = S_ISDIR(st->st_mode) ? UPPER_DIR_TIMEOUT : UPPER_TIMEOUT;
    return 0;
  }
  lbx_node_buf nb = {0};
  int r = lbx_chain_getattr(b->chain, n->lower, &nb);
  if (r < 0)
    return r;
  bx_lower_stat(&nb.n, st);
  lbx_node_buf_clear(&nb);
  st->st_uid = bx_uid_out(b, st->st_uid);
  st->st_gid = bx_gid_out(b, st->st_gid);
  *timeout = LOWER_TIMEOUT;
  return 0;
}

/* ---- resolving a name: upper first, then lower unless hidden ---- */

mode_t
bx_lower_type(uint32_t t)
{
  switch (t) {
  case LBX_T_DIR:
    return S_IFDIR;
  case LBX_T_SYMLINK:
    return S_IFLNK;
  case LBX_T_CHR:
    return S_IFCHR;
  case LBX_T_BLK:
    return S_IFBLK;
  case LBX_T_FIFO:
    return S_IFIFO;
  default:
    return S_IFREG;
  }
}

int
bx_resolve(lbx_boxfs *b, struct bnode *parent, const char *name, struct found *f)
{
  memset(f, 0, sizeof *f);
  if (bx_is_reserved(name))
    return -ENOENT;
  bool hidden = false;
  if (parent->upper) {
    _cleanup_close_ int dfd = bx_upper_dir(b, parent);
    if (dfd < 0)
      return dfd;
    struct stat st;
    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
      f->upper = true;
      f->utype = st.st_mode & S_IFMT;
      f->uino = st.st_ino;
      if (S_ISDIR(st.st_mode))
        f->opaque = bx_is_opaque(dfd, name);
    } else if (errno != ENOENT) {
      return -errno;
    } else {
      hidden = bx_whiteout_exists(dfd, name);
    }
  }
  if (!hidden && parent->lower && !parent->opaque) {
    uint64_t ino;
    if (lbx_chain_lookup(b->chain, parent->lower, name, &ino) == 0) {
      lbx_node_buf nb = {0};
      if (lbx_chain_getattr(b->chain, ino, &nb) == 0) {
        f->ltype = bx_lower_type(nb.n.type);
        /* an upper non-directory, or an upper opaque dir, replaces the lower
         * entry; the lower number stays as the name's identity */
        f->lower = ino;
      }
      lbx_node_buf_clear(&nb);
    }
  }
  if (!f->upper && !f->lower)
    return -ENOENT;
  return 0;
}

/* The node for parent/name (found or made), with one more reference. */
struct bnode *
bx_node_for(lbx_boxfs *b, struct bnode *parent, const char *name, const struct found *f)
{
  pthread_mutex_lock(&b->mu);
  struct bnode *n = bx_table_find(b, parent, name);
  if (!n) {
    n = lbx_xcalloc(1, sizeof *n);
    n->keep_fd = -1;
    n->parent = parent;
    parent->refs++;
    n->name = lbx_xstrdup(name);
    bx_table_insert(b, n);
  } else if (n->upper && !f->upper) {
    /* a resolve that ran before a copy-up finished: the node knows better */
    n->refs++;
    pthread_mutex_unlock(&b->mu);
    return n;
  }
  n->upper = f->upper;
  n->opaque = f->opaque;
  n->type = f->upper ? f->utype : f->ltype;
  /* lower children only merge into a directory over a directory */
  bool merge = !f->upper || (f->utype == S_IFDIR && f->ltype == S_IFDIR && !f->opaque);
  n->lower = merge ? f->lower : 0;
  n->st_ino = f->lower ? f->lower : ((uint64_t)f->uino | UPPER_INO_BIT);
  if (f->upper && f->utype != f->ltype && f->lower && f->utype != 0 && f->ltype != 0 &&
      !(f->utype == S_IFDIR && f->ltype == S_IFDIR))
    n->st_ino = (uint64_t)f->uino | UPPER_INO_BIT; /* a new file where another type was */
  n->refs++;
  pthread_mutex_unlock(&b->mu);
  return n;
}

int
bx_entry_for(lbx_boxfs *b, struct bnode *n, struct fuse_entry_param *e)
{
  memset(e, 0, sizeof *e);
  double t;
  int r = bx_node_stat(b, n, &e->attr, &t);
  if (r < 0)
    return r;
  e->ino = bx_id_of(b, n);
  e->attr_timeout = t;
  e->entry_timeout = t;
  return 0;
}

/* ---- copy-up ---- */

/* The image's xattrs of a copied-up file or directory. Those the daemon
 * may not set (security.* without privilege) are left out. */
static void
copy_xattrs(int fd, const lbx_node *ln)
{
  size_t pos = 0, vlen;
  const char *name;
  const void *v;
  while (lbx_xattrs_next(ln->xattrs, ln->xattrs_len, &pos, &name, &v, &vlen) == 1)
    if (strcmp(name, OVERRIDE_XATTR) != 0)
      fsetxattr(fd, name, v, vlen, 0);
}

/* Makes the upper directory of a node that is (lower) a directory. */
static int
copy_up_dir(lbx_boxfs *b, struct bnode *n, const lbx_node *ln)
{
  _cleanup_close_ int pfd = bx_upper_dir(b, n->parent);
  if (pfd < 0)
    return pfd;
  if (mkdirat(pfd, n->name, 0700) < 0 && errno != EEXIST)
    return -errno;
  _cleanup_close_ int fd = openat(pfd, n->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return -errno;
  int r = bx_write_override_fd(fd, ln->uid, ln->gid, ln->mode);
  if (r < 0)
    return r;
  copy_xattrs(fd, ln);
  struct timespec ts[2] = {{ln->mtime_ns / 1000000000, ln->mtime_ns % 1000000000},
                           {ln->mtime_ns / 1000000000, ln->mtime_ns % 1000000000}};
  futimens(fd, ts);
  return 0;
}

/* A fresh name in the work dir ("copyup-7"). */
void
bx_work_name(lbx_boxfs *b, const char *what, char *buf, size_t size)
{
  pthread_mutex_lock(&b->mu);
  snprintf(buf, size, "%s-%llu", what, (unsigned long long)++b->tmpseq);
  pthread_mutex_unlock(&b->mu);
}

/* Removes dirfd/name and, for a directory, what it holds: work dir
 * leftovers (a removed directory's whiteouts, a half-made one). Best
 * effort; bounded in depth, since a removed directory held only markers. */
void
bx_remove_tree(int dirfd, const char *name, int depth)
{
  if (unlinkat(dirfd, name, 0) == 0 || (errno != EISDIR && errno != EPERM) || depth > 16)
    return;
  _cleanup_close_ int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  int fd2 = fd < 0 ? -1 : fcntl(fd, F_DUPFD_CLOEXEC, 3);
  _cleanup_closedir_ DIR *d = fd2 >= 0 ? fdopendir(fd2) : NULL;
  if (!d && fd2 >= 0)
    close(fd2);
  struct dirent *de;
  while (d && (de = readdir(d)))
    if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
      bx_remove_tree(fd, de->d_name, depth + 1);
  unlinkat(dirfd, name, AT_REMOVEDIR);
}

/* Copies a lower file into the work dir, then renames it into place: a
 * crash leaves either no upper file or a whole one. */
static int
copy_up_file(lbx_boxfs *b, struct bnode *n, const lbx_node *ln)
{
  _cleanup_close_ int pfd = bx_upper_dir(b, n->parent);
  if (pfd < 0)
    return pfd;
  char tmp[64];
  bx_work_name(b, "copyup", tmp, sizeof tmp);
  int r = 0;
  if (ln->type == LBX_T_SYMLINK) {
    if (symlinkat(ln->link ? ln->link : "", b->workfd, tmp) < 0)
      return -errno;
  } else if (ln->type == LBX_T_FIFO) {
    if (mkfifoat(b->workfd, tmp, 0600) < 0)
      return -errno;
  } else if (ln->type == LBX_T_REG) {
    _cleanup_close_ int out =
        openat(b->workfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (out < 0)
      return -errno;
    if (ln->digest && ln->size) {
      int in = -1;
      void *data = NULL;
      size_t len = 0;
      r = lbx_store_blob_open(b->store, ln->digest, &in, &data, &len);
      if (r == 0 && data) {
        r = lbx_write_all(out, data, len);
        free(data);
      } else if (r == 0) {
        /* reflink or in-kernel copy where the file systems allow */
        uint64_t left = ln->size;
        while (left > 0 && r == 0) {
          ssize_t c = copy_file_range(in, NULL, out, NULL, left, 0);
          if (c < 0 && (errno == EXDEV || errno == EOPNOTSUPP || errno == ENOSYS)) {
            char buf[65536];
            ssize_t got = read(in, buf, sizeof buf);
            c = got <= 0 ? (got < 0 ? -1 : 0)
                         : (lbx_write_all(out, buf, (size_t)got) < 0 ? -1 : got);
          }
          if (c < 0)
            r = -errno;
          else if (c == 0)
            r = -EIO;
          else
            left -= (uint64_t)c;
        }
        close(in);
      }
      if (r < 0) {
        unlinkat(b->workfd, tmp, 0);
        return r;
      }
    }
    if ((r = bx_write_override_fd(out, ln->uid, ln->gid, ln->mode)) < 0) {
      unlinkat(b->workfd, tmp, 0);
      return r;
    }
    copy_xattrs(out, ln);
    /* durable before it replaces the lower view: after a power cut the name
     * shows either the lower file or the whole copy */
    if (fdatasync(out) < 0) {
      r = -errno;
      unlinkat(b->workfd, tmp, 0);
      return r;
    }
    struct timespec ts[2] = {{ln->mtime_ns / 1000000000, ln->mtime_ns % 1000000000},
                             {ln->mtime_ns / 1000000000, ln->mtime_ns % 1000000000}};
    futimens(out, ts);
  } else {
    return -EPERM; /* device nodes cannot be made without privilege */
  }
  if (renameat(b->workfd, tmp, pfd, n->name) < 0) {
    r = -errno;
    unlinkat(b->workfd, tmp, 0);
    return r;
  }
  return 0;
}

/* Gives a node (and its parents) an upper entry, keeping what the box sees. */
static bool
is_upper(lbx_boxfs *b, struct bnode *n)
{
  pthread_mutex_lock(&b->mu);
  bool u = n->upper;
  pthread_mutex_unlock(&b->mu);
  return u;
}

/* The node at a path from the root, with a reference, or NULL. */
static struct bnode *
node_at(lbx_boxfs *b, const char *path)
{
  _cleanup_free_ char *p = lbx_xstrdup(path);
  struct bnode *cur = b->root;
  pthread_mutex_lock(&b->mu);
  cur->refs++;
  pthread_mutex_unlock(&b->mu);
  char *save = NULL;
  for (char *c = strtok_r(p, "/", &save); c && cur; c = strtok_r(NULL, "/", &save)) {
    struct found f;
    struct bnode *next =
        cur->type == S_IFDIR && bx_resolve(b, cur, c, &f) == 0 ? bx_node_for(b, cur, c, &f) : NULL;
    pthread_mutex_lock(&b->mu);
    bx_unref_locked(b, cur, 1);
    pthread_mutex_unlock(&b->mu);
    cur = next;
  }
  return cur;
}

/* A lower file with hard links was copied up under one of its names: each
 * other name that still shows that same lower file becomes a hard link to
 * the copy, so a write through one name shows through all of them, as on
 * the image unpacked. Names the box removed or replaced since are left
 * alone. Best effort: a name that cannot be linked (no room) keeps showing
 * the lower file. */
static void
link_aliases(lbx_boxfs *b, struct bnode *n)
{
  /* n's lower id, kept: a lookup of n's name (here, on its own path) now
   * finds it upper and clears the node's */
  uint64_t lower = n->lower;
  char **paths = NULL;
  if (lbx_chain_paths(b->chain, lower, &paths) < 0)
    return;
  _cleanup_(lbx_strv_freep) char **guard = paths;
  _cleanup_close_ int sdfd = bx_upper_dir(b, n->parent);
  if (sdfd < 0)
    return;
  for (size_t i = 0; paths[i]; i++) {
    struct bnode *m = node_at(b, paths[i]);
    if (!m)
      continue;
    if (m != n && !m->upper && m->lower == lower && m->type == S_IFREG &&
        bx_copy_up(b, m->parent) == 0) {
      _cleanup_close_ int dfd = bx_upper_dir(b, m->parent);
      if (dfd >= 0 && linkat(sdfd, n->name, dfd, m->name, 0) == 0) {
        pthread_mutex_lock(&b->mu);
        m->upper = true;
        pthread_mutex_unlock(&b->mu);
        /* the kernel may hold this name's lower pages and attributes (a
         * day's worth): both go. No request of ours waits on the lock we
         * hold with one of its pages locked (a write needs a copy-up,
         * which waits for us, before it locks a page). Unknown ids are
         * refused by the kernel, harmlessly. */
        fuse_lowlevel_notify_inval_inode(b->se, bx_id_of(b, m), 0, 0);
      }
    }
    pthread_mutex_lock(&b->mu);
    bx_unref_locked(b, m, 1);
    pthread_mutex_unlock(&b->mu);
  }
  /* and the name written through: the kernel's attributes are the lower
   * file's (its link count among them), cached for a day; attributes
   * only, which takes no inode lock (see box_link) */
  fuse_lowlevel_notify_inval_inode(b->se, bx_id_of(b, n), -1, 0);
}

int
bx_copy_up(lbx_boxfs *b, struct bnode *n)
{
  BX_WLOCK(b);
  if (is_upper(b, n))
    return 0;
  if (n->parent && !is_upper(b, n->parent)) {
    int r = bx_copy_up(b, n->parent);
    if (r < 0)
      return r;
  }
  lbx_node_buf nb = {0};
  int r = lbx_chain_getattr(b->chain, n->lower, &nb);
  if (r < 0)
    return r;
  r = nb.n.type == LBX_T_DIR ? copy_up_dir(b, n, &nb.n) : copy_up_file(b, n, &nb.n);
  bool linked = nb.n.type == LBX_T_REG && nb.n.nlink > 1;
  lbx_node_buf_clear(&nb);
  if (r == 0) {
    pthread_mutex_lock(&b->mu);
    n->upper = true;
    pthread_mutex_unlock(&b->mu);
    if (linked)
      link_aliases(b, n);
  }
  return r;
}

/* The upper parent dir fd and the node's name in it, after copy-up. */
int
bx_upper_at(lbx_boxfs *b, struct bnode *n, int *dfd, char **name)
{
  if (n->detached)
    return -ENOENT; /* its old path now leads to another file */
  int r = bx_copy_up(b, n);
  if (r < 0)
    return r;
  if (n == b->root) {
    *dfd = fcntl(b->upperfd, F_DUPFD_CLOEXEC, 3);
    *name = lbx_xstrdup(".");
    return *dfd < 0 ? -errno : 0;
  }
  *dfd = bx_upper_dir(b, n->parent);
  if (*dfd < 0)
    return *dfd;
  pthread_mutex_lock(&b->mu);
  *name = lbx_xstrdup(n->name);
  pthread_mutex_unlock(&b->mu);
  return 0;
}

/* Reads, updates and writes the override of an upper name. */
int
bx_update_override(int dfd, const char *name, int set_mode, uint32_t mode, int set_uid,
                   uint32_t uid, int set_gid, uint32_t gid)
{
  _cleanup_close_ int fd = openat(dfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return -errno;
  struct stat st;
  if (fstat(fd, &st) < 0)
    return -errno;
  if (S_ISLNK(st.st_mode))
    return set_mode ? -EOPNOTSUPP : 0; /* symlinks carry no user xattrs */
  char proc[64];
  snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
  struct override o = bx_read_override_at(dfd, name, st.st_mode & S_IFMT);
  if (!o.set) {
    o.uid = 0;
    o.gid = 0;
    o.mode = st.st_mode & 07777;
  }
  if (set_mode)
    o.mode = mode & 07777;
  if (set_uid)
    o.uid = uid;
  if (set_gid)
    o.gid = gid;
  char buf[64];
  int len = snprintf(buf, sizeof buf, "%u:%u:%o", o.uid, o.gid, o.mode);
  if (setxattr(proc, OVERRIDE_XATTR, buf, (size_t)len, 0) < 0)
    return -errno;
  return 0;
}
