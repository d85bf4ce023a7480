/* The FUSE low-level daemon for image mounts.
 *
 * Inode numbers are the chain's own (root = 1 = FUSE_ROOT_ID), stable for a
 * given image. Everything below is immutable, so the kernel may cache it for
 * as long as it likes: long entry/attr timeouts, no open/opendir messages
 * (FUSE_CAP_NO_OPEN_SUPPORT implies FOPEN_KEEP_CACHE, NO_OPENDIR implies
 * FOPEN_CACHE_DIR), and every node read from SQLite once is kept in a table
 * indexed by inode, so requests after the first lookup run no SQL. */
#define FUSE_USE_VERSION 312

#include "fs.h"
#include "fs-internal.h"
#include "../store/store.h"

#include <fcntl.h>
#include "fuse-api.h"
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#define TIMEOUT 86400.0 /* seconds: the tree never changes under a mount */

struct dent {
  char *name;
  uint64_t ino;
};

/* One inode, as served. Filled once, then read without locks; the mutex
 * guards the parts made on demand (listing, blob fd, inline bytes). */
struct fnode {
  lbx_node_buf nb;
  pthread_mutex_t mu;
  struct dent *dents; /* directories: entries in name order, once listed */
  size_t ndents;
  bool listed;
  int fd;    /* regular files in a blob file: opened on first read */
  void *inl; /* regular files kept inline: their bytes, on first read */
  size_t inlen;
};

struct lbx_fs {
  lbx_store *store;
  lbx_chain *chain;
  struct fuse_session *se;
  uint64_t nnodes;
  _Atomic(struct fnode *) *nodes; /* index = ino */
  atomic_int open_fds;
  int max_fds;
  uint64_t total_bytes;
  bool mounted, debug;
};

static struct fnode *
fnode_get(lbx_fs *fs, uint64_t ino, int *errp)
{
  if (ino == 0 || ino > fs->nnodes) {
    *errp = ENOENT;
    return NULL;
  }
  struct fnode *n = atomic_load_explicit(&fs->nodes[ino], memory_order_acquire);
  if (n)
    return n;
  n = lbx_xcalloc(1, sizeof *n);
  int r = lbx_chain_getattr(fs->chain, ino, &n->nb);
  if (r < 0) {
    free(n);
    *errp = -r;
    return NULL;
  }
  pthread_mutex_init(&n->mu, NULL);
  n->fd = -1;
  struct fnode *expected = NULL;
  if (!atomic_compare_exchange_strong(&fs->nodes[ino], &expected, n)) {
    /* another thread filled it first: use theirs */
    lbx_node_buf_clear(&n->nb);
    pthread_mutex_destroy(&n->mu);
    free(n);
    n = expected;
  }
  return n;
}

void
lbx_fs_node_stat(const lbx_node *n, struct stat *st)
{
  static const mode_t types[] = {
      [LBX_T_REG] = S_IFREG, [LBX_T_DIR] = S_IFDIR, [LBX_T_SYMLINK] = S_IFLNK,
      [LBX_T_CHR] = S_IFCHR, [LBX_T_BLK] = S_IFBLK, [LBX_T_FIFO] = S_IFIFO};
  memset(st, 0, sizeof *st);
  st->st_ino = n->ino;
  st->st_mode = (n->type < LBX_ARRAY_SIZE(types) ? types[n->type] : S_IFREG) | (n->mode & 07777);
  st->st_nlink = n->nlink ? n->nlink : 1;
  st->st_uid = n->uid;
  st->st_gid = n->gid;
  st->st_rdev = n->rdev;
  st->st_size = n->type == LBX_T_SYMLINK && n->link ? (off_t)strlen(n->link) : (off_t)n->size;
  st->st_blksize = 4096;
  st->st_blocks = (blkcnt_t)((n->size + 511) / 512);
  st->st_mtim.tv_sec = n->mtime_ns / 1000000000;
  st->st_mtim.tv_nsec = n->mtime_ns % 1000000000;
  if (st->st_mtim.tv_nsec < 0) {
    st->st_mtim.tv_nsec += 1000000000;
    st->st_mtim.tv_sec--;
  }
  st->st_atim = st->st_ctim = st->st_mtim;
}

static void
fill_entry(const struct fnode *n, struct fuse_entry_param *e)
{
  memset(e, 0, sizeof *e);
  e->ino = n->nb.n.ino;
  e->attr_timeout = TIMEOUT;
  e->entry_timeout = TIMEOUT;
  lbx_fs_node_stat(&n->nb.n, &e->attr);
}

static void
fs_init(void *userdata, struct fuse_conn_info *conn)
{
  lbx_fs *fs = userdata;
  (void)fs;
  /* reads are answered from blob fds: let libfuse splice them */
  if (conn->capable & FUSE_CAP_SPLICE_WRITE)
    conn->want |= FUSE_CAP_SPLICE_WRITE;
  if (conn->capable & FUSE_CAP_SPLICE_MOVE)
    conn->want |= FUSE_CAP_SPLICE_MOVE;
  if (conn->capable & FUSE_CAP_CACHE_SYMLINKS)
    conn->want |= FUSE_CAP_CACHE_SYMLINKS;
  if (conn->capable & FUSE_CAP_READDIRPLUS)
    conn->want |= FUSE_CAP_READDIRPLUS;
  /* the tree never changes: no need to re-list a directory per open */
  conn->want &= ~(unsigned)FUSE_CAP_READDIRPLUS_AUTO;
  conn->max_readahead = 1u << 20;
}

/* A directory's entries, listed once from the store. */
struct collect {
  struct dent *v;
  size_t n, cap;
};

static int
collect_dent(void *ctx, const char *name, uint64_t ino)
{
  struct collect *c = ctx;
  if (c->n == c->cap) {
    c->cap = c->cap ? c->cap * 2 : 16;
    c->v = lbx_xrealloc(c->v, c->cap * sizeof *c->v);
  }
  c->v[c->n++] = (struct dent){lbx_xstrdup(name), ino};
  return 0;
}

static int
ensure_listed(lbx_fs *fs, struct fnode *n)
{
  pthread_mutex_lock(&n->mu);
  int r = 0;
  if (!n->listed) {
    struct collect c = {0};
    r = lbx_chain_readdir(fs->chain, n->nb.n.ino, NULL, collect_dent, &c);
    if (r == 0) {
      n->dents = c.v;
      n->ndents = c.n;
      n->listed = true;
    } else {
      for (size_t i = 0; i < c.n; i++)
        free(c.v[i].name);
      free(c.v);
    }
  }
  pthread_mutex_unlock(&n->mu);
  return r;
}

static void
fs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
  lbx_fs *fs = fuse_req_userdata(req);
  int err = 0;
  struct fnode *p = fnode_get(fs, parent, &err);
  if (!p)
    return (void)fuse_reply_err(req, err);
  if (p->nb.n.type != LBX_T_DIR)
    return (void)fuse_reply_err(req, ENOTDIR);
  uint64_t ino = 0;
  int r;
  if (p->listed) {
    /* SQLite listed names in BINARY (memcmp) order: bsearch that */
    size_t lo = 0, hi = p->ndents;
    r = -ENOENT;
    while (lo < hi) {
      size_t mid = lo + (hi - lo) / 2;
      int c = strcmp(name, p->dents[mid].name);
      if (c == 0) {
        ino = p->dents[mid].ino;
        r = 0;
        break;
      }
      if (c < 0)
        hi = mid;
      else
        lo = mid + 1;
    }
  } else {
    r = lbx_chain_lookup(fs->chain, parent, name, &ino);
  }
  if (r == -ENOENT) {
    /* negative entries are as immutable as the rest */
    struct fuse_entry_param e = {.ino = 0, .entry_timeout = TIMEOUT};
    return (void)fuse_reply_entry(req, &e);
  }
  if (r < 0)
    return (void)fuse_reply_err(req, -r);
  struct fnode *n = fnode_get(fs, ino, &err);
  if (!n)
    return (void)fuse_reply_err(req, err);
  struct fuse_entry_param e;
  fill_entry(n, &e);
  fuse_reply_entry(req, &e);
}

static void
fs_forget_one(lbx_fs *fs, fuse_ino_t ino)
{
  if (ino == 0 || ino > fs->nnodes)
    return;
  struct fnode *n = atomic_load_explicit(&fs->nodes[ino], memory_order_acquire);
  if (!n)
    return;
  /* The kernel dropped the inode: its blob fd can go. The node itself stays
   * (it is small, and the next lookup would read it again). */
  pthread_mutex_lock(&n->mu);
  if (n->fd >= 0) {
    close(n->fd);
    n->fd = -1;
    atomic_fetch_sub(&fs->open_fds, 1);
  }
  pthread_mutex_unlock(&n->mu);
}

static void
fs_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
  (void)nlookup;
  fs_forget_one(fuse_req_userdata(req), ino);
  fuse_reply_none(req);
}

static void
fs_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
  lbx_fs *fs = fuse_req_userdata(req);
  for (size_t i = 0; i < count; i++)
    fs_forget_one(fs, forgets[i].ino);
  fuse_reply_none(req);
}

static void
fs_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
  (void)fi;
  lbx_fs *fs = fuse_req_userdata(req);
  int err = 0;
  struct fnode *n = fnode_get(fs, ino, &err);
  if (!n)
    return (void)fuse_reply_err(req, err);
  struct stat st;
  lbx_fs_node_stat(&n->nb.n, &st);
  fuse_reply_attr(req, &st, TIMEOUT);
}

static void
fs_readlink(fuse_req_t req, fuse_ino_t ino)
{
  lbx_fs *fs = fuse_req_userdata(req);
  int err = 0;
  struct fnode *n = fnode_get(fs, ino, &err);
  if (!n)
    return (void)fuse_reply_err(req, err);
  if (n->nb.n.type != LBX_T_SYMLINK)
    return (void)fuse_reply_err(req, EINVAL);
  fuse_reply_readlink(req, n->nb.n.link ? n->nb.n.link : "");
}

static void
fs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
  (void)ino;
  (void)fi;
  /* ENOSYS once: the kernel then opens every file itself, with
   * FOPEN_KEEP_CACHE, and never asks again */
  fuse_reply_err(req, ENOSYS);
}

static void
fs_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
  (void)ino;
  (void)fi;
  fuse_reply_err(req, ENOSYS);
}

static void
fs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
  (void)fi;
  lbx_fs *fs = fuse_req_userdata(req);
  int err = 0;
  struct fnode *n = fnode_get(fs, ino, &err);
  if (!n)
    return (void)fuse_reply_err(req, err);
  if (n->nb.n.type != LBX_T_REG)
    return (void)fuse_reply_err(req, EISDIR);
  if (!n->nb.n.digest)
    return (void)fuse_reply_buf(req, NULL, 0);
  if ((uint64_t)off >= n->nb.n.size)
    return (void)fuse_reply_buf(req, NULL, 0);

  pthread_mutex_lock(&n->mu);
  int fd = n->fd;
  bool owned = false;
  if (fd < 0 && !n->inl) {
    void *data = NULL;
    size_t len = 0;
    int r = lbx_store_blob_open(fs->store, n->nb.n.digest, &fd, &data, &len);
    if (r < 0) {
      pthread_mutex_unlock(&n->mu);
      return (void)fuse_reply_err(req, -r);
    }
    if (data) {
      n->inl = data;
      n->inlen = len;
    } else if (atomic_fetch_add(&fs->open_fds, 1) < fs->max_fds) {
      /* the kernel reads a FUSE file in 128 KiB requests: let the blob's
       * own readahead run further ahead than that */
      posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
      n->fd = fd;
    } else {
      /* too many files open at once: this read uses the fd and closes it */
      atomic_fetch_sub(&fs->open_fds, 1);
      owned = true;
    }
  }
  pthread_mutex_unlock(&n->mu);

  if (n->inl) {
    size_t start = (size_t)off < n->inlen ? (size_t)off : n->inlen;
    size_t len = n->inlen - start < size ? n->inlen - start : size;
    return (void)fuse_reply_buf(req, (const char *)n->inl + start, len);
  }
  /* zero-copy when the kernel allows: libfuse splices from the blob fd */
  struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);
  buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
  buf.buf[0].fd = fd;
  buf.buf[0].pos = off;
  fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
  if (owned)
    close(fd);
}

static void
reply_dir(fuse_req_t req, lbx_fs *fs, fuse_ino_t ino, size_t size, off_t off, bool plus)
{
  int err = 0;
  struct fnode *n = fnode_get(fs, ino, &err);
  if (!n)
    return (void)fuse_reply_err(req, err);
  if (n->nb.n.type != LBX_T_DIR)
    return (void)fuse_reply_err(req, ENOTDIR);
  int r = ensure_listed(fs, n);
  if (r < 0)
    return (void)fuse_reply_err(req, -r);
  _cleanup_free_ char *buf = lbx_xmalloc(size);
  size_t used = 0;
  /* offsets: 1 after ".", 2 after "..", 3 + i after entry i */
  for (off_t i = off; (size_t)i < n->ndents + 2; i++) {
    const char *name;
    struct fuse_entry_param e = {0};
    struct fnode *c = NULL;
    if (i < 2) {
      name = i == 0 ? "." : "..";
      e.attr.st_ino = ino; /* a d_ino of 0 would hide the entry */
      e.attr.st_mode = S_IFDIR;
    } else {
      const struct dent *d = &n->dents[i - 2];
      name = d->name;
      c = fnode_get(fs, d->ino, &err);
      if (!c)
        break;
      if (plus)
        fill_entry(c, &e);
      else
        lbx_fs_node_stat(&c->nb.n, &e.attr);
    }
    size_t want = plus ? fuse_add_direntry_plus(req, buf + used, size - used, name, &e, i + 1)
                       : fuse_add_direntry(req, buf + used, size - used, name, &e.attr, i + 1);
    if (want > size - used)
      break; /* full; for plus the entry was not counted as a lookup */
    used += want;
  }
  fuse_reply_buf(req, buf, used);
}

static void
fs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
  (void)fi;
  reply_dir(req, fuse_req_userdata(req), ino, size, off, false);
}

static void
fs_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
  (void)fi;
  reply_dir(req, fuse_req_userdata(req), ino, size, off, true);
}

static void
fs_statfs(fuse_req_t req, fuse_ino_t ino)
{
  (void)ino;
  lbx_fs *fs = fuse_req_userdata(req);
  struct statvfs sv = {0};
  sv.f_bsize = 4096;
  sv.f_frsize = 4096;
  sv.f_blocks = (fsblkcnt_t)((fs->total_bytes + 4095) / 4096);
  sv.f_files = (fsfilcnt_t)fs->nnodes;
  sv.f_namemax = 255;
  sv.f_flag = ST_RDONLY;
  fuse_reply_statfs(req, &sv);
}

static void
fs_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
  lbx_fs *fs = fuse_req_userdata(req);
  int err = 0;
  struct fnode *n = fnode_get(fs, ino, &err);
  if (!n)
    return (void)fuse_reply_err(req, err);
  size_t pos = 0;
  const char *xn;
  const void *v;
  size_t vlen;
  while (lbx_xattrs_next(n->nb.n.xattrs, n->nb.n.xattrs_len, &pos, &xn, &v, &vlen) == 1) {
    if (strcmp(xn, name) != 0)
      continue;
    if (size == 0)
      return (void)fuse_reply_xattr(req, vlen);
    if (size < vlen)
      return (void)fuse_reply_err(req, ERANGE);
    return (void)fuse_reply_buf(req, v, vlen);
  }
  fuse_reply_err(req, ENODATA);
}

static void
fs_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
  lbx_fs *fs = fuse_req_userdata(req);
  int err = 0;
  struct fnode *n = fnode_get(fs, ino, &err);
  if (!n)
    return (void)fuse_reply_err(req, err);
  size_t pos = 0, total = 0;
  const char *xn;
  const void *v;
  size_t vlen;
  while (lbx_xattrs_next(n->nb.n.xattrs, n->nb.n.xattrs_len, &pos, &xn, &v, &vlen) == 1)
    total += strlen(xn) + 1;
  if (size == 0)
    return (void)fuse_reply_xattr(req, total);
  if (size < total)
    return (void)fuse_reply_err(req, ERANGE);
  _cleanup_free_ char *buf = lbx_xmalloc(total ? total : 1);
  size_t at = 0;
  pos = 0;
  while (lbx_xattrs_next(n->nb.n.xattrs, n->nb.n.xattrs_len, &pos, &xn, &v, &vlen) == 1) {
    size_t l = strlen(xn) + 1;
    memcpy(buf + at, xn, l);
    at += l;
  }
  fuse_reply_buf(req, buf, total);
}

static const struct fuse_lowlevel_ops ops = {
    .init = fs_init,
    .lookup = fs_lookup,
    .forget = fs_forget,
    .forget_multi = fs_forget_multi,
    .getattr = fs_getattr,
    .readlink = fs_readlink,
    .open = fs_open,
    .read = fs_read,
    .opendir = fs_opendir,
    .readdir = fs_readdir,
    .readdirplus = fs_readdirplus,
    .statfs = fs_statfs,
    .getxattr = fs_getxattr,
    .listxattr = fs_listxattr,
};

int
lbx_fs_mount(const lbx_fs_opts *o, lbx_fs **out, lbx_err **err)
{
  if (lbx_fuse_load(err) < 0)
    return -1;
  lbx_fs *fs = lbx_xcalloc(1, sizeof *fs);
  if (lbx_store_open(o->store_root, LBX_STORE_RDONLY, &fs->store, err) < 0 ||
      lbx_chain_open(fs->store, o->chain_id, &fs->chain, err) < 0) {
    lbx_fs_free(fs);
    return -1;
  }
  fs->nnodes = lbx_chain_nodes(fs->chain);
  fs->nodes = lbx_xcalloc(fs->nnodes + 1, sizeof *fs->nodes);
  fs->debug = o->debug;
  fs->total_bytes = o->total_bytes;
  /* Blob fds stay open while the kernel keeps an inode: use the hard
   * limit, and keep half of it for everything else. */
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    fs->max_fds = rl.rlim_cur > 2048 ? (int)(rl.rlim_cur / 2) : 512;
  } else {
    fs->max_fds = 512;
  }

  _cleanup_free_ char *opts = lbx_xasprintf("ro,fsname=%s,subtype=lazybox%s", o->fsname,
                                            o->allow_other ? ",allow_other" : "");
  char *argv[] = {(char *)"lazybox", (char *)"-o", opts, o->debug ? (char *)"-d" : NULL, NULL};
  struct fuse_args args = FUSE_ARGS_INIT(o->debug ? 4 : 3, argv);
  fs->se = fuse_session_new(&args, &ops, sizeof ops, fs);
  fuse_opt_free_args(&args);
  if (!fs->se) {
    lbx_fs_free(fs);
    return lbx_error(err, EINVAL, "mount %s: cannot start a FUSE session", o->mountpoint);
  }
  if (fuse_session_mount(fs->se, o->mountpoint) != 0) {
    lbx_fs_free(fs);
    return lbx_error(err, EPERM,
                     "mount %s: the FUSE mount failed (is /dev/fuse usable and fusermount3 "
                     "installed?)",
                     o->mountpoint);
  }
  fs->mounted = true;
  *out = fs;
  return 0;
}

int
lbx_fs_serve(lbx_fs *fs, lbx_err **err)
{
  if (fuse_set_signal_handlers(fs->se) != 0)
    return lbx_error(err, EINVAL, "cannot set signal handlers");
  struct fuse_loop_config *cfg = fuse_loop_cfg_create();
  fuse_loop_cfg_set_clone_fd(cfg, 1);
  fuse_loop_cfg_set_idle_threads(cfg, 4);
  int r = fuse_session_loop_mt(fs->se, cfg);
  fuse_loop_cfg_destroy(cfg);
  fuse_remove_signal_handlers(fs->se);
  if (r < 0)
    return lbx_error_errno(err, -r, "serving the mount");
  return 0;
}

void
lbx_fs_free(lbx_fs *fs)
{
  if (!fs)
    return;
  if (fs->se) {
    if (fs->mounted)
      fuse_session_unmount(fs->se);
    fuse_session_destroy(fs->se);
  }
  for (uint64_t i = 0; fs->nodes && i <= fs->nnodes; i++) {
    struct fnode *n = fs->nodes[i];
    if (!n)
      continue;
    lbx_node_buf_clear(&n->nb);
    for (size_t k = 0; k < n->ndents; k++)
      free(n->dents[k].name);
    free(n->dents);
    free(n->inl);
    if (n->fd >= 0)
      close(n->fd);
    pthread_mutex_destroy(&n->mu);
    free(n);
  }
  free(fs->nodes);
  lbx_chain_close(fs->chain);
  lbx_store_close(fs->store);
  free(fs);
}
