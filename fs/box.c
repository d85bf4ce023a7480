/* The read-write root of a box: the image's merged tree (lower, read-only,
 * from the store) under a per-box upper directory on the host.
 *
 * The upper dir follows the OCI layer convention, so it is the box's diff:
 * a deleted lower name is an empty file ".wh.NAME" beside it, a directory
 * whose lower children are hidden holds ".wh..wh..opq". Those names are
 * never shown in the box, and the box cannot create names starting with
 * ".wh." (EPERM).
 *
 * Ownership and permissions the box sees for upper files live in the
 * "user.lazybox.override" xattr ("uid:gid:mode", mode in octal), because a
 * rootless daemon can neither chown nor let the box's mode bits lock itself
 * out; the real file keeps owner-accessible bits. Symlinks cannot carry a
 * user xattr: they show as root's, 0777.
 *
 * Every path in the upper dir is reached through openat2() with
 * RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS for the parent directories and
 * O_NOFOLLOW / AT_SYMLINK_NOFOLLOW for the last name, so a symlink the box
 * made can never lead the daemon to a host path.
 *
 * Node ids given to the kernel are pointers to our nodes; st_ino is stable:
 * the lower node's number for names the image has (kept across copy-up),
 * the upper file's inode number with the top bit set for the others. */
#include "box-internal.h"

#include <sys/file.h>

/* ---- requests ---- */

/* Open file handles: the fd (upper file or lower blob), or inline bytes. */
enum { HANDLE_FILE = 1, HANDLE_DIR = 2 }; /* the first field of both handle kinds */

struct bfile {
  int kind;
  int fd;
  void *data;
  size_t len;
  uint64_t lower; /* an unmodified lower file: its chain inode (fd is the blob's) */
};

static lbx_boxfs *
B(fuse_req_t req)
{
  return fuse_req_userdata(req);
}

static void
box_init(void *userdata, struct fuse_conn_info *conn)
{
  (void)userdata;
  if (conn->capable & FUSE_CAP_SPLICE_WRITE)
    conn->want |= FUSE_CAP_SPLICE_WRITE;
  if (conn->capable & FUSE_CAP_SPLICE_MOVE)
    conn->want |= FUSE_CAP_SPLICE_MOVE;
  /* readdirplus: a listing answers the lookups that `ls -l` or find would
   * send next, one round trip per name in a box whose root is a new mount
   * (cold) each time it starts. Left to the kernel's choice (AUTO): a plain
   * listing after which nothing is looked up stays plain. */
  if (conn->capable & FUSE_CAP_READDIRPLUS)
    conn->want |= FUSE_CAP_READDIRPLUS | FUSE_CAP_READDIRPLUS_AUTO;
  /* the box's umask is applied by the kernel before we see a mode */
  conn->want &= ~(unsigned)FUSE_CAP_DONT_MASK;
  conn->max_readahead = 1u << 20;
}

static void
box_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
  lbx_boxfs *b = B(req);
  struct bnode *p = bx_node_of(b, parent);
  struct found f;
  int r = bx_resolve(b, p, name, &f);
  if (r == -ENOENT) {
    /* A negative entry, cached as upper dirs are: a name can only appear
     * through this mount (create, mkdir, link, rename), and the kernel drops
     * the negative dentry itself then. Without it, each path the box's setup
     * and its programs probe for and do not find (mkdir -p, $PATH, locale
     * files) cost a round trip every time: about a third of the requests of
     * a `run --rm busybox true`. */
    struct fuse_entry_param e = {.ino = 0, .entry_timeout = UPPER_DIR_TIMEOUT};
    return (void)fuse_reply_entry(req, &e);
  }
  if (r < 0)
    return (void)fuse_reply_err(req, -r);
  struct bnode *n = bx_node_for(b, p, name, &f);
  struct fuse_entry_param e;
  if ((r = bx_entry_for(b, n, &e)) < 0) {
    pthread_mutex_lock(&b->mu);
    bx_unref_locked(b, n, 1);
    pthread_mutex_unlock(&b->mu);
    return (void)fuse_reply_err(req, -r);
  }
  fuse_reply_entry(req, &e);
}

static void
box_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
  lbx_boxfs *b = B(req);
  pthread_mutex_lock(&b->mu);
  bx_unref_locked(b, bx_node_of(b, ino), nlookup);
  pthread_mutex_unlock(&b->mu);
  fuse_reply_none(req);
}

static void
box_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
  lbx_boxfs *b = B(req);
  pthread_mutex_lock(&b->mu);
  for (size_t i = 0; i < count; i++)
    bx_unref_locked(b, bx_node_of(b, forgets[i].ino), forgets[i].nlookup);
  pthread_mutex_unlock(&b->mu);
  fuse_reply_none(req);
}

/* fstat(2) of an open file: through its handle, which stays valid after
 * its name is unlinked or renamed over (the node's path no longer leads
 * to it). */
static int
handle_stat(lbx_boxfs *b, struct bnode *n, const struct bfile *h, struct stat *st)
{
  if (h->fd < 0 || h->lower) {
    lbx_node_buf nb = {0};
    int r = lbx_chain_getattr(b->chain, h->lower, &nb);
    if (r < 0)
      return r;
    bx_lower_stat(&nb.n, st);
    lbx_node_buf_clear(&nb);
  } else {
    if (fstat(h->fd, st) < 0)
      return -errno;
    char buf[64];
    ssize_t len = fgetxattr(h->fd, OVERRIDE_XATTR, buf, sizeof buf - 1);
    uint32_t uid = 0, gid = 0, mode = st->st_mode & 07777;
    if (len > 0) {
      buf[len] = '\0';
      if (sscanf(buf, "%u:%u:%o", &uid, &gid, &mode) != 3)
        uid = gid = 0;
    }
    st->st_uid = uid;
    st->st_gid = gid;
    st->st_mode = (st->st_mode & S_IFMT) | (mode & 07777);
    st->st_ino = n->st_ino;
  }
  st->st_uid = bx_uid_out(b, st->st_uid);
  st->st_gid = bx_gid_out(b, st->st_gid);
  return 0;
}

/* Keeps one fd of an opened upper file in its node: if the name goes away
 * while the file is open, fstat(2) (which reaches us without the handle)
 * still has something to stat. */
static void
keep_fd(lbx_boxfs *b, struct bnode *n, int fd)
{
  pthread_mutex_lock(&b->mu);
  if (n->keep_fd < 0)
    n->keep_fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  pthread_mutex_unlock(&b->mu);
}

static void
box_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
  lbx_boxfs *b = B(req);
  struct stat st;
  double t = UPPER_TIMEOUT;
  struct bnode *n = bx_node_of(b, ino);
  const struct bfile *h = fi && fi->fh ? (const struct bfile *)(uintptr_t)fi->fh : NULL;
  int r = h && h->kind == HANDLE_FILE ? handle_stat(b, n, h, &st) : bx_node_stat(b, n, &st, &t);
  if (r < 0)
    return (void)fuse_reply_err(req, -r);
  fuse_reply_attr(req, &st, t);
}

static void
box_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
            struct fuse_file_info *fi)
{
  lbx_boxfs *b = B(req);
  BX_WLOCK(b);
  struct bnode *n = bx_node_of(b, ino);
  struct bfile *h = fi && fi->fh ? (struct bfile *)(uintptr_t)fi->fh : NULL;
  if (n->detached && h && h->kind == HANDLE_FILE && h->fd >= 0 && !h->lower &&
      to_set == FUSE_SET_ATTR_SIZE) {
    /* ftruncate of an open file whose name is gone */
    struct stat st;
    if (ftruncate(h->fd, attr->st_size) < 0)
      return (void)fuse_reply_err(req, errno);
    int e = handle_stat(b, n, h, &st);
    return e < 0 ? (void)fuse_reply_err(req, -e) : (void)fuse_reply_attr(req, &st, 0);
  }
  int dfd = -1;
  _cleanup_free_ char *name = NULL;
  int r = bx_upper_at(b, n, &dfd, &name);
  _cleanup_close_ int dguard = dfd;
  if (r < 0)
    return (void)fuse_reply_err(req, -r);
  if (to_set & (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) {
    r = bx_update_override(dfd, name, to_set & FUSE_SET_ATTR_MODE, attr->st_mode,
                           to_set & FUSE_SET_ATTR_UID, bx_uid_in(b, attr->st_uid),
                           to_set & FUSE_SET_ATTR_GID, bx_gid_in(b, attr->st_gid));
    if (r < 0)
      return (void)fuse_reply_err(req, -r);
  }
  if (to_set & FUSE_SET_ATTR_SIZE) {
    if (fi && fi->fh) {
      r = ftruncate(((struct bfile *)(uintptr_t)fi->fh)->fd, attr->st_size) < 0 ? -errno : 0;
    } else {
      _cleanup_close_ int fd = openat(dfd, name, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
      r = fd < 0 ? -errno : ftruncate(fd, attr->st_size) < 0 ? -errno : 0;
    }
    if (r < 0)
      return (void)fuse_reply_err(req, -r);
  }
  if (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME)) {
    struct timespec ts[2] = {{0, UTIME_OMIT}, {0, UTIME_OMIT}};
    if (to_set & FUSE_SET_ATTR_ATIME_NOW)
      ts[0].tv_nsec = UTIME_NOW;
    else if (to_set & FUSE_SET_ATTR_ATIME)
      ts[0] = attr->st_atim;
    if (to_set & FUSE_SET_ATTR_MTIME_NOW)
      ts[1].tv_nsec = UTIME_NOW;
    else if (to_set & FUSE_SET_ATTR_MTIME)
      ts[1] = attr->st_mtim;
    if (utimensat(dfd, name, ts, AT_SYMLINK_NOFOLLOW) < 0)
      return (void)fuse_reply_err(req, errno);
  }
  struct stat st;
  double t;
  if ((r = bx_node_stat(b, n, &st, &t)) < 0)
    return (void)fuse_reply_err(req, -r);
  fuse_reply_attr(req, &st, t);
}

static void
box_readlink(fuse_req_t req, fuse_ino_t ino)
{
  lbx_boxfs *b = B(req);
  struct bnode *n = bx_node_of(b, ino);
  if (!n->upper) {
    lbx_node_buf nb = {0};
    int r = lbx_chain_getattr(b->chain, n->lower, &nb);
    if (r < 0)
      return (void)fuse_reply_err(req, -r);
    fuse_reply_readlink(req, nb.n.link ? nb.n.link : "");
    lbx_node_buf_clear(&nb);
    return;
  }
  _cleanup_free_ char *p = bx_path_of(b, n);
  char *slash = strrchr(p, '/');
  _cleanup_close_ int dfd = -1;
  if (slash) {
    *slash = '\0';
    dfd = bx_open_beneath(b, p, O_PATH | O_DIRECTORY);
  } else {
    dfd = fcntl(b->upperfd, F_DUPFD_CLOEXEC, 3);
  }
  if (dfd < 0)
    return (void)fuse_reply_err(req, EIO);
  char buf[4097];
  ssize_t len = readlinkat(dfd, slash ? slash + 1 : p, buf, sizeof buf - 1);
  if (len < 0)
    return (void)fuse_reply_err(req, errno);
  buf[len] = '\0';
  fuse_reply_readlink(req, buf);
}

/* Prepares parent/name for a new entry: the parent in the upper dir, the
 * name free there; returns the parent's upper fd. *was_whiteout tells
 * whether a lower entry of that name was deleted before (a new directory
 * there must hide the old one's children). */
static int
prepare_new(lbx_boxfs *b, struct bnode *parent, const char *name, bool *was_whiteout)
{
  if (bx_is_reserved(name))
    return -EPERM;
  int r = bx_copy_up(b, parent);
  if (r < 0)
    return r;
  int dfd = bx_upper_dir(b, parent);
  if (dfd < 0)
    return dfd;
  _cleanup_free_ char *wh = lbx_xasprintf(WH_PREFIX "%s", name);
  *was_whiteout = faccessat(dfd, wh, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
  return dfd;
}

/* After a new entry is in place: its name's old whiteout can go (the upper
 * name wins meanwhile, so the order is crash-safe). */
static void
clear_whiteout(int dfd, const char *name, bool was_whiteout)
{
  if (!was_whiteout)
    return;
  _cleanup_free_ char *wh = lbx_xasprintf(WH_PREFIX "%s", name);
  unlinkat(dfd, wh, 0);
}

static void
reply_new(fuse_req_t req, lbx_boxfs *b, struct bnode *parent, const char *name,
          struct fuse_file_info *fi)
{
  struct found f;
  int r = bx_resolve(b, parent, name, &f);
  if (r < 0)
    return (void)fuse_reply_err(req, -r);
  struct bnode *n = bx_node_for(b, parent, name, &f);
  struct fuse_entry_param e;
  if ((r = bx_entry_for(b, n, &e)) < 0)
    return (void)fuse_reply_err(req, -r);
  if (fi) {
    if (fuse_reply_create(req, &e, fi) != 0) {
      struct bfile *h = (struct bfile *)(uintptr_t)fi->fh;
      close(h->fd);
      free(h);
    }
  } else {
    fuse_reply_entry(req, &e);
  }
}

static void
box_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
  lbx_boxfs *b = B(req);
  BX_WLOCK(b);
  struct bnode *p = bx_node_of(b, parent);
  bool wh;
  int dfd = prepare_new(b, p, name, &wh);
  if (dfd < 0)
    return (void)fuse_reply_err(req, -dfd);
  _cleanup_close_ int guard = dfd;
  /* Made whole in the work dir, owner and opaque marker included, then
   * renamed into place: a crash never leaves a directory over a deleted
   * lower one without its marker (its children would show again). */
  char tmp[64];
  bx_work_name(b, "mkdir", tmp, sizeof tmp);
  if (mkdirat(b->workfd, tmp, 0700) < 0)
    return (void)fuse_reply_err(req, errno);
  const struct fuse_ctx *ctx = fuse_req_ctx(req);
  _cleanup_close_ int fd = openat(b->workfd, tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  int r = fd < 0 ? -errno
                 : bx_write_override_fd(fd, bx_uid_in(b, ctx->uid), bx_gid_in(b, ctx->gid), mode);
  /* a lower directory of this name was deleted: its children stay hidden */
  if (r == 0 && wh) {
    int m = openat(fd, WH_OPAQUE, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    r = m < 0 ? -errno : (close(m), 0);
  }
  if (r == 0 && renameat2(b->workfd, tmp, dfd, name, RENAME_NOREPLACE) < 0)
    r = -errno;
  if (r < 0) {
    bx_remove_tree(b->workfd, tmp, 0);
    return (void)fuse_reply_err(req, -r);
  }
  clear_whiteout(dfd, name, wh);
  reply_new(req, b, p, name, NULL);
}

static void
box_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
  lbx_boxfs *b = B(req);
  BX_WLOCK(b);
  struct bnode *p = bx_node_of(b, parent);
  bool wh;
  int dfd = prepare_new(b, p, name, &wh);
  if (dfd < 0)
    return (void)fuse_reply_err(req, -dfd);
  _cleanup_close_ int guard = dfd;
  /* fifos and sockets cannot carry user xattrs: their real mode is what the
   * box asked for (plus our read/write), their owner shows as root */
  if (mknodat(dfd, name, (mode & S_IFMT) | (mode & 07777) | 0600, rdev) < 0)
    return (void)fuse_reply_err(req, errno);
  clear_whiteout(dfd, name, wh);
  reply_new(req, b, p, name, NULL);
}

static void
box_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
  lbx_boxfs *b = B(req);
  BX_WLOCK(b);
  struct bnode *p = bx_node_of(b, parent);
  bool wh;
  int dfd = prepare_new(b, p, name, &wh);
  if (dfd < 0)
    return (void)fuse_reply_err(req, -dfd);
  _cleanup_close_ int guard = dfd;
  if (symlinkat(link, dfd, name) < 0)
    return (void)fuse_reply_err(req, errno);
  clear_whiteout(dfd, name, wh);
  reply_new(req, b, p, name, NULL);
}

static void
box_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
           struct fuse_file_info *fi)
{
  lbx_boxfs *b = B(req);
  BX_WLOCK(b);
  struct bnode *p = bx_node_of(b, parent);
  bool wh;
  int dfd = prepare_new(b, p, name, &wh);
  if (dfd < 0)
    return (void)fuse_reply_err(req, -dfd);
  _cleanup_close_ int guard = dfd;
  int flags = (fi->flags & ~(O_CREAT | O_NOFOLLOW | O_DIRECTORY)) | O_CREAT | O_CLOEXEC;
  int fd = openat(dfd, name, flags | O_NOFOLLOW, 0600);
  if (fd < 0)
    return (void)fuse_reply_err(req, errno);
  const struct fuse_ctx *ctx = fuse_req_ctx(req);
  int r = bx_write_override_fd(fd, bx_uid_in(b, ctx->uid), bx_gid_in(b, ctx->gid), mode);
  if (r < 0) {
    close(fd);
    return (void)fuse_reply_err(req, -r);
  }
  struct bfile *h = lbx_xcalloc(1, sizeof *h);
  h->kind = HANDLE_FILE;
  h->fd = fd;
  fi->fh = (uint64_t)(uintptr_t)h;
  clear_whiteout(dfd, name, wh);
  reply_new(req, b, p, name, fi);
}

static void
box_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
  lbx_boxfs *b = B(req);
  struct bnode *n = bx_node_of(b, ino);
  bool writing = (fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC);
  /* only opens that may copy up take the tree lock: reads stay parallel */
  __attribute__((cleanup(bx_wunlockp))) pthread_mutex_t *wm = writing ? &b->wmu : NULL;
  if (wm)
    pthread_mutex_lock(wm);
  struct bfile *h = lbx_xcalloc(1, sizeof *h);
  h->kind = HANDLE_FILE;
  h->fd = -1;
  if (!n->upper && !writing) {
    h->lower = n->lower;
    lbx_node_buf nb = {0};
    int r = lbx_chain_getattr(b->chain, n->lower, &nb);
    if (r == 0 && nb.n.digest)
      r = lbx_store_blob_open(b->store, nb.n.digest, &h->fd, &h->data, &h->len);
    lbx_node_buf_clear(&nb);
    if (r < 0) {
      free(h);
      return (void)fuse_reply_err(req, -r);
    }
    fi->keep_cache = 1; /* lower contents never change */
  } else {
    int dfd = -1;
    _cleanup_free_ char *name = NULL;
    int r = bx_upper_at(b, n, &dfd, &name);
    _cleanup_close_ int guard = dfd;
    if (r < 0) {
      free(h);
      return (void)fuse_reply_err(req, -r);
    }
    int flags = fi->flags & ~(O_CREAT | O_EXCL | O_NOCTTY);
    /* the box may open write-only; reads by the kernel (page cache) need more */
    if ((flags & O_ACCMODE) == O_WRONLY)
      flags = (flags & ~O_ACCMODE) | O_RDWR;
    h->fd = openat(dfd, name, flags | O_NOFOLLOW | O_CLOEXEC);
    if (h->fd < 0) {
      int e = errno;
      free(h);
      return (void)fuse_reply_err(req, e);
    }
  }
  fi->fh = (uint64_t)(uintptr_t)h;
  if (h->fd >= 0 && !h->lower)
    keep_fd(b, n, h->fd);
  fuse_reply_open(req, fi);
}

static void
box_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
  (void)ino;
  struct bfile *h = (struct bfile *)(uintptr_t)fi->fh;
  if (h->fd < 0) {
    size_t start = (size_t)off < h->len ? (size_t)off : h->len;
    size_t len = h->len - start < size ? h->len - start : size;
    return (void)fuse_reply_buf(req, h->data ? (const char *)h->data + start : NULL, len);
  }
  struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);
  buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
  buf.buf[0].fd = h->fd;
  buf.buf[0].pos = off;
  fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
}

static void
box_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *in, off_t off,
              struct fuse_file_info *fi)
{
  (void)ino;
  struct bfile *h = (struct bfile *)(uintptr_t)fi->fh;
  struct fuse_bufvec out = FUSE_BUFVEC_INIT(fuse_buf_size(in));
  out.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
  out.buf[0].fd = h->fd;
  out.buf[0].pos = off;
  ssize_t r = fuse_buf_copy(&out, in, 0);
  if (r < 0)
    return (void)fuse_reply_err(req, (int)-r);
  fuse_reply_write(req, (size_t)r);
}

/* Released handles are freed a while later, not at once: a supervisor
 * once died of a read that still used a handle's inline bytes after its
 * release (ASan, heap-use-after-free in box_read, when box processes were
 * killed). Until that ordering is understood, the last 64 released
 * handles stay allocated, fds included (a read must never splice from an
 * fd number that now names another file). */
#define GRAVE 64
static struct bfile *grave[GRAVE];
static unsigned grave_next;
static pthread_mutex_t grave_mu = PTHREAD_MUTEX_INITIALIZER;

static void
box_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
  (void)ino;
  struct bfile *h = (struct bfile *)(uintptr_t)fi->fh;
  pthread_mutex_lock(&grave_mu);
  struct bfile *old = grave[grave_next % GRAVE];
  grave[grave_next++ % GRAVE] = h;
  pthread_mutex_unlock(&grave_mu);
  if (old) {
    if (old->fd >= 0)
      close(old->fd);
    free(old->data);
    free(old);
  }
  fuse_reply_err(req, 0);
}

static void
box_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
  (void)ino;
  struct bfile *h = (struct bfile *)(uintptr_t)fi->fh;
  int r = h->fd < 0 ? 0 : (datasync ? fdatasync(h->fd) : fsync(h->fd));
  fuse_reply_err(req, r < 0 ? errno : 0);
}

static void
box_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
              struct fuse_file_info *fi)
{
  (void)ino;
  struct bfile *h = (struct bfile *)(uintptr_t)fi->fh;
  fuse_reply_err(req, fallocate(h->fd, mode, off, len) < 0 ? errno : 0);
}

/* ---- directories ---- */

struct bdent {
  char *name;
  uint64_t ino;
  unsigned char type; /* DT_* */
};

struct bdir {
  int kind;
  struct bdent *v;
  size_t n;
};

static void
bdir_free(struct bdir *d)
{
  for (size_t i = 0; i < d->n; i++)
    free(d->v[i].name);
  free(d->v);
  d->v = NULL;
  d->n = 0;
}

static int
cmp_name(const void *a, const void *b)
{
  return strcmp(*(char *const *)a, *(char *const *)b);
}

struct lower_collect {
  struct bdir *d;
  char **upper; /* sorted names present (or whited out) in the upper dir */
  size_t nupper;
  lbx_chain *chain;
};

/* Runs inside lbx_chain_readdir, which holds the store: no store calls
 * here (types are filled in after the listing). */
static int
add_lower(void *ctx, const char *name, uint64_t ino)
{
  struct lower_collect *c = ctx;
  const char *key = name;
  if (c->nupper && bsearch(&key, c->upper, c->nupper, sizeof *c->upper, cmp_name))
    return 0;
  c->d->v = lbx_xrealloc(c->d->v, (c->d->n + 1) * sizeof *c->d->v);
  c->d->v[c->d->n++] = (struct bdent){lbx_xstrdup(name), ino, DT_UNKNOWN};
  return 0;
}

/* What the box sees in a directory: upper names (whiteout markers hidden),
 * then lower names that are neither in the upper dir nor whited out. */
static int
list_merged(lbx_boxfs *b, struct bnode *n, struct bdir *d)
{
  memset(d, 0, sizeof *d);
  char **upper = NULL;
  size_t nupper = 0;
  bool opaque = n->opaque;
  int r = 0;
  if (n->upper) {
    int fd = bx_upper_dir(b, n);
    int dfd = fd < 0 ? fd : openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0)
      close(fd);
    if (dfd < 0)
      return dfd < 0 && fd < 0 ? fd : -errno;
    _cleanup_closedir_ DIR *dir = fdopendir(dfd);
    if (!dir) {
      close(dfd);
      return -errno;
    }
    struct dirent *de;
    while ((de = readdir(dir))) {
      const char *name = de->d_name;
      if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        continue;
      if (strcmp(name, WH_OPAQUE) == 0) {
        opaque = true;
        continue;
      }
      bool wh = bx_is_reserved(name);
      upper = lbx_xrealloc(upper, (nupper + 1) * sizeof *upper);
      upper[nupper++] = lbx_xstrdup(wh ? name + strlen(WH_PREFIX) : name);
      if (wh)
        continue;
      d->v = lbx_xrealloc(d->v, (d->n + 1) * sizeof *d->v);
      d->v[d->n++] =
          (struct bdent){lbx_xstrdup(name), (uint64_t)de->d_ino | UPPER_INO_BIT, de->d_type};
    }
  }
  if (n->lower && !opaque) {
    /* an upper name over a lower one shows the lower number, as stat does */
    for (size_t i = 0; i < d->n; i++) {
      uint64_t ino;
      if (lbx_chain_lookup(b->chain, n->lower, d->v[i].name, &ino) == 0)
        d->v[i].ino = ino;
    }
    if (nupper)
      qsort(upper, nupper, sizeof *upper, cmp_name);
    struct lower_collect c = {d, upper, nupper, b->chain};
    size_t first = d->n;
    r = lbx_chain_readdir(b->chain, n->lower, NULL, add_lower, &c);
    for (size_t i = first; r == 0 && i < d->n; i++) {
      lbx_node_buf nb = {0};
      if (lbx_chain_getattr(b->chain, d->v[i].ino, &nb) == 0)
        d->v[i].type = (unsigned char)IFTODT(bx_lower_type(nb.n.type));
      lbx_node_buf_clear(&nb);
    }
  }
  for (size_t i = 0; i < nupper; i++)
    free(upper[i]);
  free(upper);
  if (r < 0)
    bdir_free(d);
  return r;
}

static void
box_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
  lbx_boxfs *b = B(req);
  struct bdir *d = lbx_xcalloc(1, sizeof *d);
  d->kind = HANDLE_DIR;
  int r = list_merged(b, bx_node_of(b, ino), d);
  if (r < 0) {
    free(d);
    return (void)fuse_reply_err(req, -r);
  }
  fi->fh = (uint64_t)(uintptr_t)d;
  fuse_reply_open(req, fi);
}

static void
box_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
  struct bdir *d = (struct bdir *)(uintptr_t)fi->fh;
  _cleanup_free_ char *buf = lbx_xmalloc(size);
  size_t used = 0;
  for (off_t i = off; (size_t)i < d->n + 2; i++) {
    struct stat st = {0};
    const char *name;
    if (i < 2) {
      name = i == 0 ? "." : "..";
      st.st_ino = ino;
      st.st_mode = S_IFDIR;
    } else {
      name = d->v[i - 2].name;
      st.st_ino = d->v[i - 2].ino;
      st.st_mode = DTTOIF(d->v[i - 2].type);
    }
    size_t want = fuse_add_direntry(req, buf + used, size - used, name, &st, i + 1);
    if (want > size - used)
      break;
    used += want;
  }
  fuse_reply_buf(req, buf, used);
}

/* As readdir, each name with what a lookup of it would answer (and the
 * lookup's reference, which the kernel will forget). The listing is the one
 * made at opendir: a name that went since, or cannot be stat'ed, goes out
 * without attributes (node id 0), which the kernel takes as a plain entry. */
static void
box_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
  lbx_boxfs *b = B(req);
  struct bdir *d = (struct bdir *)(uintptr_t)fi->fh;
  struct bnode *p = bx_node_of(b, ino);
  _cleanup_free_ char *buf = lbx_xmalloc(size);
  size_t used = 0;
  for (off_t i = off; (size_t)i < d->n + 2; i++) {
    struct fuse_entry_param e = {0};
    struct bnode *n = NULL;
    const char *name;
    if (i < 2) {
      /* the kernel takes no reference for these */
      name = i == 0 ? "." : "..";
      e.attr.st_ino = ino;
      e.attr.st_mode = S_IFDIR;
    } else {
      name = d->v[i - 2].name;
      struct found f;
      if (bx_resolve(b, p, name, &f) == 0) {
        n = bx_node_for(b, p, name, &f);
        if (bx_entry_for(b, n, &e) < 0) {
          pthread_mutex_lock(&b->mu);
          bx_unref_locked(b, n, 1);
          pthread_mutex_unlock(&b->mu);
          n = NULL;
        }
      }
      if (!n) {
        memset(&e, 0, sizeof e);
        e.attr.st_ino = d->v[i - 2].ino;
        e.attr.st_mode = DTTOIF(d->v[i - 2].type);
      }
    }
    size_t want = fuse_add_direntry_plus(req, buf + used, size - used, name, &e, i + 1);
    if (want > size - used) {
      /* not sent: its reference is not the kernel's */
      if (n) {
        pthread_mutex_lock(&b->mu);
        bx_unref_locked(b, n, 1);
        pthread_mutex_unlock(&b->mu);
      }
      break;
    }
    used += want;
  }
  fuse_reply_buf(req, buf, used);
}

static void
box_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
  (void)ino;
  struct bdir *d = (struct bdir *)(uintptr_t)fi->fh;
  bdir_free(d);
  free(d);
  fuse_reply_err(req, 0);
}

static void
box_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
  (void)datasync;
  (void)fi;
  lbx_boxfs *b = B(req);
  struct bnode *n = bx_node_of(b, ino);
  if (!n->upper)
    return (void)fuse_reply_err(req, 0);
  _cleanup_free_ char *p = bx_path_of(b, n);
  _cleanup_close_ int fd = bx_open_beneath(b, p, O_RDONLY | O_DIRECTORY);
  fuse_reply_err(req, fd < 0 ? -fd : fsync(fd) < 0 ? errno : 0);
}

/* ---- removing and renaming ---- */

/* Forgets parent/name in the table: the next lookup sees what is there now. */
void
bx_detach(lbx_boxfs *b, struct bnode *parent, const char *name)
{
  pthread_mutex_lock(&b->mu);
  struct bnode *n = bx_table_find(b, parent, name);
  if (n) {
    /* Out of the table, so the next lookup sees what is there now; alive
     * for the kernel's references. Open files keep working through their
     * handles (handle_stat); a path-based request on it finds nothing. */
    bx_table_remove(b, n);
    n->detached = true;
  }
  pthread_mutex_unlock(&b->mu);
}

int
bx_make_whiteout(int dfd, const char *name)
{
  _cleanup_free_ char *wh = lbx_xasprintf(WH_PREFIX "%s", name);
  int fd = openat(dfd, wh, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0)
    return -errno;
  close(fd);
  return 0;
}

/* 0 if the directory parent/name (resolved as *f) shows no names, else
 * -ENOTEMPTY or the error of reading it. */
int
bx_dir_empty(lbx_boxfs *b, struct bnode *parent, const char *name, const struct found *f)
{
  struct bnode *n = bx_node_for(b, parent, name, f);
  struct bdir d;
  int r = list_merged(b, n, &d);
  size_t count = d.n;
  if (r == 0)
    bdir_free(&d);
  pthread_mutex_lock(&b->mu);
  bx_unref_locked(b, n, 1);
  pthread_mutex_unlock(&b->mu);
  return r < 0 ? r : count ? -ENOTEMPTY : 0;
}

/* Removes parent/name (a directory if dir) from the box's view. */
int
bx_remove_name(lbx_boxfs *b, struct bnode *parent, const char *name, bool dir)
{
  struct found f;
  int r = bx_resolve(b, parent, name, &f);
  if (r < 0)
    return r;
  mode_t type = f.upper ? f.utype : f.ltype;
  if (dir && type != S_IFDIR)
    return -ENOTDIR;
  if (!dir && type == S_IFDIR)
    return -EISDIR;
  if (dir && (r = bx_dir_empty(b, parent, name, &f)) < 0)
    return r;
  r = bx_copy_up(b, parent);
  if (r < 0)
    return r;
  _cleanup_close_ int dfd = bx_upper_dir(b, parent);
  if (dfd < 0)
    return dfd;
  /* The whiteout first: while the upper name exists it still wins, so no
   * moment (a crash, a failed unlink) brings the lower name back. */
  if (f.lower && (r = bx_make_whiteout(dfd, name)) < 0)
    return r;
  if (f.upper) {
    /* A directory can still hold whiteouts and the opaque marker, which
     * rmdir(2) would not remove, and removing them in place first let a
     * failed rmdir bring lower children back: it goes out of the tree
     * whole, into the work dir, and is emptied there (what is left there
     * goes at the next mount). */
    char tmp[64];
    if (dir)
      bx_work_name(b, "rmdir", tmp, sizeof tmp);
    if ((dir ? renameat(dfd, name, b->workfd, tmp) : unlinkat(dfd, name, 0)) < 0) {
      r = -errno;
      if (f.lower) { /* the name stays: so does the lower one's hiding */
        _cleanup_free_ char *wh = lbx_xasprintf(WH_PREFIX "%s", name);
        unlinkat(dfd, wh, 0);
      }
      return r;
    }
    if (dir)
      bx_remove_tree(b->workfd, tmp, 0);
  }
  bx_detach(b, parent, name);
  return 0;
}

static void
box_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
  lbx_boxfs *b = B(req);
  BX_WLOCK(b);
  fuse_reply_err(req, -bx_remove_name(b, bx_node_of(b, parent), name, false));
}

static void
box_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
  lbx_boxfs *b = B(req);
  BX_WLOCK(b);
  fuse_reply_err(req, -bx_remove_name(b, bx_node_of(b, parent), name, true));
}

static void
box_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
           const char *newname, unsigned int flags)
{
  lbx_boxfs *b = B(req);
  BX_WLOCK(b);
  fuse_reply_err(
      req, -bx_rename(b, bx_node_of(b, parent), name, bx_node_of(b, newparent), newname, flags));
}

static void
box_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
  lbx_boxfs *b = B(req);
  BX_WLOCK(b);
  struct bnode *n = bx_node_of(b, ino), *np = bx_node_of(b, newparent);
  bool wh;
  int sdfd = -1;
  _cleanup_free_ char *sname = NULL;
  int r = bx_upper_at(b, n, &sdfd, &sname);
  _cleanup_close_ int sguard = sdfd;
  if (r < 0)
    return (void)fuse_reply_err(req, -r);
  int dfd = prepare_new(b, np, newname, &wh);
  if (dfd < 0)
    return (void)fuse_reply_err(req, -dfd);
  _cleanup_close_ int guard = dfd;
  if (linkat(sdfd, sname, dfd, newname, 0) < 0)
    return (void)fuse_reply_err(req, errno);
  clear_whiteout(dfd, newname, wh);
  /* The new name is a node of its own, so no reply refreshes the source's
   * attributes, and those of a name that was lower when first looked up
   * are cached for a day (copied up since, by this link or an earlier
   * open): stat showed it with one link (lbx-fsstress seeds 1005, 1008).
   * Told before the reply, so a stat right after link(2) returns asks
   * again; the kernel takes no inode lock for attributes alone. */
  fuse_lowlevel_notify_inval_inode(b->se, ino, -1, 0);
  reply_new(req, b, np, newname, NULL);
}

/* ---- the rest ---- */

static void
box_statfs(fuse_req_t req, fuse_ino_t ino)
{
  (void)ino;
  struct statvfs sv;
  if (fstatvfs(B(req)->upperfd, &sv) < 0)
    return (void)fuse_reply_err(req, errno);
  fuse_reply_statfs(req, &sv);
}

static void
box_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
  lbx_boxfs *b = B(req);
  struct bnode *n = bx_node_of(b, ino);
  if (strcmp(name, OVERRIDE_XATTR) == 0)
    return (void)fuse_reply_err(req, ENODATA);
  if (!n->upper) {
    lbx_node_buf nb = {0};
    int r = lbx_chain_getattr(b->chain, n->lower, &nb);
    if (r < 0)
      return (void)fuse_reply_err(req, -r);
    size_t pos = 0, vlen;
    const char *xn;
    const void *v;
    while (lbx_xattrs_next(nb.n.xattrs, nb.n.xattrs_len, &pos, &xn, &v, &vlen) == 1)
      if (strcmp(xn, name) == 0) {
        if (size == 0)
          fuse_reply_xattr(req, vlen);
        else if (size < vlen)
          fuse_reply_err(req, ERANGE);
        else
          fuse_reply_buf(req, v, vlen);
        lbx_node_buf_clear(&nb);
        return;
      }
    lbx_node_buf_clear(&nb);
    return (void)fuse_reply_err(req, ENODATA);
  }
  _cleanup_free_ char *p = bx_path_of(b, n);
  _cleanup_close_ int fd = bx_open_beneath(b, p, O_PATH);
  if (fd < 0)
    return (void)fuse_reply_err(req, -fd);
  char proc[64];
  snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
  _cleanup_free_ char *buf = size ? lbx_xmalloc(size) : NULL;
  ssize_t len = getxattr(proc, name, buf, size);
  if (len < 0)
    return (void)fuse_reply_err(req, errno);
  if (size == 0)
    return (void)fuse_reply_xattr(req, (size_t)len);
  fuse_reply_buf(req, buf, (size_t)len);
}

static void
box_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
  lbx_boxfs *b = B(req);
  struct bnode *n = bx_node_of(b, ino);
  _cleanup_free_ char *list = NULL;
  size_t total = 0;
  if (!n->upper) {
    lbx_node_buf nb = {0};
    int r = lbx_chain_getattr(b->chain, n->lower, &nb);
    if (r < 0)
      return (void)fuse_reply_err(req, -r);
    size_t pos = 0, vlen;
    const char *xn;
    const void *v;
    while (lbx_xattrs_next(nb.n.xattrs, nb.n.xattrs_len, &pos, &xn, &v, &vlen) == 1) {
      size_t l = strlen(xn) + 1;
      list = lbx_xrealloc(list, total + l);
      memcpy(list + total, xn, l);
      total += l;
    }
    lbx_node_buf_clear(&nb);
  } else {
    _cleanup_free_ char *p = bx_path_of(b, n);
    _cleanup_close_ int fd = bx_open_beneath(b, p, O_PATH);
    if (fd < 0)
      return (void)fuse_reply_err(req, -fd);
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    ssize_t len = listxattr(proc, NULL, 0);
    if (len < 0)
      return (void)fuse_reply_err(req, errno);
    _cleanup_free_ char *raw = lbx_xmalloc((size_t)len + 1);
    len = listxattr(proc, raw, (size_t)len);
    if (len < 0)
      return (void)fuse_reply_err(req, errno);
    for (ssize_t at = 0; at < len;) {
      size_t l = strlen(raw + at) + 1;
      if (strcmp(raw + at, OVERRIDE_XATTR) != 0) {
        list = lbx_xrealloc(list, total + l);
        memcpy(list + total, raw + at, l);
        total += l;
      }
      at += (ssize_t)l;
    }
  }
  if (size == 0)
    return (void)fuse_reply_xattr(req, total);
  if (size < total)
    return (void)fuse_reply_err(req, ERANGE);
  fuse_reply_buf(req, list, total);
}

/* setxattr and removexattr: on the upper file (copied up first), through
 * /proc/self/fd of an O_PATH fd, which works for every file type. */
static void
change_xattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size,
             int flags, bool remove)
{
  lbx_boxfs *b = B(req);
  BX_WLOCK(b);
  if (strcmp(name, OVERRIDE_XATTR) == 0)
    return (void)fuse_reply_err(req, EPERM);
  struct bnode *n = bx_node_of(b, ino);
  if (n->detached)
    return (void)fuse_reply_err(req, ENOENT); /* its path leads elsewhere now */
  int r = bx_copy_up(b, n);
  if (r < 0)
    return (void)fuse_reply_err(req, -r);
  _cleanup_free_ char *p = bx_path_of(b, n);
  _cleanup_close_ int fd = bx_open_beneath(b, p, O_PATH);
  if (fd < 0)
    return (void)fuse_reply_err(req, -fd);
  char proc[64];
  snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
  r = remove ? removexattr(proc, name) : setxattr(proc, name, value, size, flags);
  fuse_reply_err(req, r < 0 ? errno : 0);
}

static void
box_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size,
             int flags)
{
  change_xattr(req, ino, name, value, size, flags, false);
}

static void
box_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
  change_xattr(req, ino, name, NULL, 0, 0, true);
}

static const struct fuse_lowlevel_ops box_ops = {
    .init = box_init,
    .lookup = box_lookup,
    .forget = box_forget,
    .forget_multi = box_forget_multi,
    .getattr = box_getattr,
    .setattr = box_setattr,
    .readlink = box_readlink,
    .mknod = box_mknod,
    .mkdir = box_mkdir,
    .unlink = box_unlink,
    .rmdir = box_rmdir,
    .symlink = box_symlink,
    .rename = box_rename,
    .link = box_link,
    .open = box_open,
    .read = box_read,
    .write_buf = box_write_buf,
    /* no .flush: nothing is done at close(2) that release does not do,
     * and without one the kernel stops sending FLUSH after the first
     * ENOSYS (a round trip per close) */
    .release = box_release,
    .fsync = box_fsync,
    .opendir = box_opendir,
    .readdir = box_readdir,
    .readdirplus = box_readdirplus,
    .releasedir = box_releasedir,
    .fsyncdir = box_fsyncdir,
    .statfs = box_statfs,
    .setxattr = box_setxattr,
    .getxattr = box_getxattr,
    .listxattr = box_listxattr,
    .removexattr = box_removexattr,
    .create = box_create,
    .fallocate = box_fallocate,
};

int
lbx_boxfs_mount(const lbx_boxfs_opts *o, lbx_boxfs **out, lbx_err **err)
{
  if (lbx_fuse_load(err) < 0)
    return -1;
  lbx_boxfs *b = lbx_xcalloc(1, sizeof *b);
  b->upperfd = b->workfd = -1;
  pthread_mutex_init(&b->mu, NULL);
  pthread_mutexattr_t ma;
  pthread_mutexattr_init(&ma);
  pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE);
  pthread_mutex_init(&b->wmu, &ma);
  pthread_mutexattr_destroy(&ma);
  b->root = lbx_xcalloc(1, sizeof *b->root);
  b->root->name = lbx_xstrdup("");
  b->root->refs = 1;
  b->root->upper = true;
  b->root->type = S_IFDIR;
  b->root->keep_fd = -1;
  if (lbx_store_open(o->store_root, LBX_STORE_RDONLY, &b->store, err) < 0 ||
      lbx_chain_open(b->store, o->chain_id, &b->chain, err) < 0) {
    lbx_boxfs_free(b);
    return -1;
  }
  b->root->lower = 1;
  b->root->st_ino = 1;
  b->upperfd = open(o->upper, O_PATH | O_DIRECTORY | O_CLOEXEC);
  b->workfd = open(o->work, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (b->upperfd < 0 || b->workfd < 0) {
    lbx_error_errno(err, errno, "box directories %s, %s", o->upper, o->work);
    lbx_boxfs_free(b);
    return -1;
  }
  /* One daemon per box: two would cache different views of one upper dir
   * and copy up through one work dir. The lock dies with the daemon. */
  if (flock(b->workfd, LOCK_EX | LOCK_NB) < 0) {
    lbx_error(err, EBUSY, "box %s: another lazybox process serves it", o->fsname);
    lbx_boxfs_free(b);
    return -1;
  }
  /* copy-ups a killed daemon left half done: never visible, now garbage */
  {
    int dup_fd = dup(b->workfd);
    _cleanup_closedir_ DIR *wd = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
    struct dirent *de;
    while (wd && (de = readdir(wd)))
      if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
        bx_remove_tree(b->workfd, de->d_name, 0);
  }
  b->root->opaque = bx_is_opaque(b->upperfd, ".");
  b->map_root = o->map_root;
  b->host_uid = (uint32_t)getuid();
  b->host_gid = (uint32_t)getgid();
  /* default_permissions: the kernel checks the box's users against the
   * modes and owners we report, overrides included */
  _cleanup_free_ char *opts = lbx_xasprintf("default_permissions,fsname=%s,subtype=lazybox%s",
                                            o->fsname, o->allow_other ? ",allow_other" : "");
  char *argv[] = {(char *)"lazybox", (char *)"-o", opts, o->debug ? (char *)"-d" : NULL, NULL};
  struct fuse_args args = FUSE_ARGS_INIT(o->debug ? 4 : 3, argv);
  b->se = fuse_session_new(&args, &box_ops, sizeof box_ops, b);
  fuse_opt_free_args(&args);
  if (!b->se) {
    lbx_boxfs_free(b);
    return lbx_error(err, EINVAL, "mount %s: cannot start a FUSE session", o->mountpoint);
  }
  if (fuse_session_mount(b->se, o->mountpoint) != 0) {
    lbx_boxfs_free(b);
    return lbx_error(err, EPERM, "mount %s: the FUSE mount failed", o->mountpoint);
  }
  b->mounted = true;
  *out = b;
  return 0;
}

int
lbx_boxfs_serve(lbx_boxfs *b, lbx_err **err)
{
  if (fuse_set_signal_handlers(b->se) != 0)
    return lbx_error(err, EINVAL, "cannot set signal handlers");
  struct fuse_loop_config *cfg = fuse_loop_cfg_create();
  fuse_loop_cfg_set_idle_threads(cfg, 4);
  int r = fuse_session_loop_mt(b->se, cfg);
  fuse_loop_cfg_destroy(cfg);
  fuse_remove_signal_handlers(b->se);
  if (r < 0)
    return lbx_error_errno(err, -r, "serving the mount");
  return 0;
}

void
lbx_boxfs_unmount(lbx_boxfs *b)
{
  fuse_session_exit(b->se);
  if (b->mounted) {
    fuse_session_unmount(b->se);
    b->mounted = false;
  }
}

void
lbx_boxfs_free(lbx_boxfs *b)
{
  if (!b)
    return;
  pthread_mutex_lock(&grave_mu);
  for (unsigned i = 0; i < GRAVE; i++) {
    if (grave[i]) {
      if (grave[i]->fd >= 0)
        close(grave[i]->fd);
      free(grave[i]->data);
      free(grave[i]);
      grave[i] = NULL;
    }
  }
  pthread_mutex_unlock(&grave_mu);
  if (b->se) {
    if (b->mounted)
      fuse_session_unmount(b->se);
    fuse_session_destroy(b->se);
  }
  for (size_t i = 0; i < b->cap; i++)
    for (struct bnode *e = b->table[i], *next; e; e = next) {
      next = e->hnext;
      free(e->name);
      free(e);
    }
  free(b->table);
  if (b->root) {
    free(b->root->name);
    free(b->root);
  }
  if (b->upperfd >= 0)
    close(b->upperfd);
  if (b->workfd >= 0)
    close(b->workfd);
  lbx_chain_close(b->chain);
  lbx_store_close(b->store);
  pthread_mutex_destroy(&b->mu);
  pthread_mutex_destroy(&b->wmu);
  free(b);
}
