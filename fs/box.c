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
#define FUSE_USE_VERSION 312

#include "fs.h"
#include "../store/store.h"

#include <dirent.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <linux/openat2.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/xattr.h>

#define OVERRIDE_XATTR "user.lazybox.override"
#define WH_PREFIX ".wh."
#define WH_OPAQUE ".wh..wh..opq"
#define UPPER_INO_BIT (1ull << 63)
/* Upper files change only through us, but several names (nodes) can lead
 * to one upper inode (hard links), and a change through one must show
 * through the others: no attribute caching for upper files. */
#define UPPER_TIMEOUT 0.0
#define LOWER_TIMEOUT 86400.0

struct bnode {
  struct bnode *parent; /* holds a reference */
  char *name;           /* "" for the root */
  uint64_t refs;        /* kernel lookups + children + open handles */
  uint64_t lower;       /* chain ino at this path, 0 if none is visible */
  uint64_t st_ino;
  mode_t type; /* S_IFMT bits */
  bool upper;  /* the name exists in the upper dir */
  bool opaque; /* directory: lower children are hidden */
  struct bnode *hnext;
};

struct lbx_boxfs {
  lbx_store *store;
  lbx_chain *chain;
  struct fuse_session *se;
  int upperfd, workfd;
  pthread_mutex_t mu; /* the node table and every node's tree fields */
  struct bnode *root;
  struct bnode **table;
  size_t cap, count;
  uint64_t tmpseq;
  bool mounted;
};

/* ---- the node table, keyed by (parent, name) ---- */

static size_t
hash(const struct bnode *parent, const char *name, size_t cap)
{
  uint64_t h = (uint64_t)(uintptr_t)parent * 0x9e3779b97f4a7c15ull;
  for (const unsigned char *p = (const unsigned char *)name; *p; p++)
    h = (h ^ *p) * 0x100000001b3ull;
  return (size_t)(h & (cap - 1));
}

static void
table_insert(lbx_boxfs *b, struct bnode *n)
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

static void
table_remove(lbx_boxfs *b, struct bnode *n)
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

static struct bnode *
table_find(lbx_boxfs *b, struct bnode *parent, const char *name)
{
  if (!b->cap)
    return NULL;
  for (struct bnode *e = b->table[hash(parent, name, b->cap)]; e; e = e->hnext)
    if (e->parent == parent && strcmp(e->name, name) == 0)
      return e;
  return NULL;
}

/* Drops references under b->mu; frees nodes (and their parents) at zero. */
static void
unref_locked(lbx_boxfs *b, struct bnode *n, uint64_t count)
{
  while (n) {
    n->refs -= count;
    if (n->refs > 0 || n == b->root)
      return;
    struct bnode *parent = n->parent;
    table_remove(b, n);
    free(n->name);
    free(n);
    n = parent;
    count = 1;
  }
}

static struct bnode *
node_of(lbx_boxfs *b, fuse_ino_t ino)
{
  return ino == FUSE_ROOT_ID ? b->root : (struct bnode *)(uintptr_t)ino;
}

static fuse_ino_t
id_of(lbx_boxfs *b, struct bnode *n)
{
  return n == b->root ? FUSE_ROOT_ID : (fuse_ino_t)(uintptr_t)n;
}

/* "a/b/c" for a node ("." for the root); under b->mu. */
static char *
path_locked(lbx_boxfs *b, struct bnode *n)
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

static char *
path_of(lbx_boxfs *b, struct bnode *n)
{
  pthread_mutex_lock(&b->mu);
  char *s = path_locked(b, n);
  pthread_mutex_unlock(&b->mu);
  return s;
}

/* ---- the upper dir, reached without following any symlink ---- */

static int
open_beneath(lbx_boxfs *b, const char *path, int flags)
{
  struct open_how how = {
      .flags = (uint64_t)(flags | O_CLOEXEC | O_NOFOLLOW),
      .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
  };
  long fd = syscall(SYS_openat2, b->upperfd, path, &how, sizeof how);
  return fd < 0 ? -errno : (int)fd;
}

/* An O_PATH fd of a directory node in the upper dir, or -errno. */
static int
upper_dir(lbx_boxfs *b, struct bnode *dir)
{
  _cleanup_free_ char *p = path_of(b, dir);
  return open_beneath(b, p, O_PATH | O_DIRECTORY);
}

static bool
is_reserved(const char *name)
{
  return strncmp(name, WH_PREFIX, strlen(WH_PREFIX)) == 0;
}

static bool
whiteout_exists(int dirfd, const char *name)
{
  _cleanup_free_ char *wh = lbx_xasprintf(WH_PREFIX "%s", name);
  return faccessat(dirfd, wh, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
}

static bool
is_opaque(int dirfd, const char *name)
{
  _cleanup_free_ char *op = lbx_xasprintf("%s/" WH_OPAQUE, name);
  return faccessat(dirfd, op, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
}

/* ---- attributes ---- */

struct override {
  bool set;
  uint32_t uid, gid, mode;
};

static int
write_override_fd(int fd, uint32_t uid, uint32_t gid, uint32_t mode)
{
  char buf[64];
  int n = snprintf(buf, sizeof buf, "%u:%u:%o", uid, gid, mode & 07777);
  return fsetxattr(fd, OVERRIDE_XATTR, buf, (size_t)n, 0) < 0 ? -errno : 0;
}

/* Reads the override of an upper name through an fd (symlinks have none). */
static struct override
read_override_at(int dirfd, const char *name, mode_t type)
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

static void
lower_stat(const lbx_node *n, struct stat *st)
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

/* What the box sees of a node. */
static int
node_stat(lbx_boxfs *b, struct bnode *n, struct stat *st, double *timeout)
{
  if (n->upper) {
    _cleanup_free_ char *p = path_of(b, n);
    char *slash = strrchr(p, '/');
    _cleanup_close_ int dfd = -1;
    const char *name = p;
    if (slash) {
      *slash = '\0';
      dfd = open_beneath(b, p, O_PATH | O_DIRECTORY);
      name = slash + 1;
    } else {
      dfd = fcntl(b->upperfd, F_DUPFD_CLOEXEC, 3);
    }
    if (dfd < 0)
      return dfd;
    if (fstatat(dfd, name, st, AT_SYMLINK_NOFOLLOW) < 0)
      return -errno;
    struct override o = read_override_at(dfd, name, st->st_mode & S_IFMT);
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
    *timeout = UPPER_TIMEOUT;
    return 0;
  }
  lbx_node_buf nb = {0};
  int r = lbx_chain_getattr(b->chain, n->lower, &nb);
  if (r < 0)
    return r;
  lower_stat(&nb.n, st);
  lbx_node_buf_clear(&nb);
  *timeout = LOWER_TIMEOUT;
  return 0;
}

/* ---- resolving a name: upper first, then lower unless hidden ---- */

struct found {
  bool upper;
  mode_t utype;
  ino_t uino;
  bool opaque;
  uint64_t lower;
  mode_t ltype;
};

static mode_t
lower_type(uint32_t t)
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

static int
resolve(lbx_boxfs *b, struct bnode *parent, const char *name, struct found *f)
{
  memset(f, 0, sizeof *f);
  if (is_reserved(name))
    return -ENOENT;
  bool hidden = false;
  if (parent->upper) {
    _cleanup_close_ int dfd = upper_dir(b, parent);
    if (dfd < 0)
      return dfd;
    struct stat st;
    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
      f->upper = true;
      f->utype = st.st_mode & S_IFMT;
      f->uino = st.st_ino;
      if (S_ISDIR(st.st_mode))
        f->opaque = is_opaque(dfd, name);
    } else if (errno != ENOENT) {
      return -errno;
    } else {
      hidden = whiteout_exists(dfd, name);
    }
  }
  if (!hidden && parent->lower && !parent->opaque) {
    uint64_t ino;
    if (lbx_chain_lookup(b->chain, parent->lower, name, &ino) == 0) {
      lbx_node_buf nb = {0};
      if (lbx_chain_getattr(b->chain, ino, &nb) == 0) {
        f->ltype = lower_type(nb.n.type);
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
static struct bnode *
node_for(lbx_boxfs *b, struct bnode *parent, const char *name, const struct found *f)
{
  pthread_mutex_lock(&b->mu);
  struct bnode *n = table_find(b, parent, name);
  if (!n) {
    n = lbx_xcalloc(1, sizeof *n);
    n->parent = parent;
    parent->refs++;
    n->name = lbx_xstrdup(name);
    table_insert(b, n);
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

static int
entry_for(lbx_boxfs *b, struct bnode *n, struct fuse_entry_param *e)
{
  memset(e, 0, sizeof *e);
  double t;
  int r = node_stat(b, n, &e->attr, &t);
  if (r < 0)
    return r;
  e->ino = id_of(b, n);
  e->attr_timeout = t;
  e->entry_timeout = t;
  return 0;
}

/* ---- copy-up ---- */

static int copy_up(lbx_boxfs *b, struct bnode *n);

/* Makes the upper directory of a node that is (lower) a directory. */
static int
copy_up_dir(lbx_boxfs *b, struct bnode *n, const lbx_node *ln)
{
  _cleanup_close_ int pfd = upper_dir(b, n->parent);
  if (pfd < 0)
    return pfd;
  if (mkdirat(pfd, n->name, 0700) < 0 && errno != EEXIST)
    return -errno;
  _cleanup_close_ int fd = openat(pfd, n->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return -errno;
  int r = write_override_fd(fd, ln->uid, ln->gid, ln->mode);
  if (r < 0)
    return r;
  struct timespec ts[2] = {{ln->mtime_ns / 1000000000, ln->mtime_ns % 1000000000},
                           {ln->mtime_ns / 1000000000, ln->mtime_ns % 1000000000}};
  futimens(fd, ts);
  return 0;
}

/* Copies a lower file into the work dir, then renames it into place: a
 * crash leaves either no upper file or a whole one. */
static int
copy_up_file(lbx_boxfs *b, struct bnode *n, const lbx_node *ln)
{
  _cleanup_close_ int pfd = upper_dir(b, n->parent);
  if (pfd < 0)
    return pfd;
  char tmp[64];
  pthread_mutex_lock(&b->mu);
  snprintf(tmp, sizeof tmp, "copyup-%llu", (unsigned long long)++b->tmpseq);
  pthread_mutex_unlock(&b->mu);
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
    if ((r = write_override_fd(out, ln->uid, ln->gid, ln->mode)) < 0) {
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
static int
copy_up(lbx_boxfs *b, struct bnode *n)
{
  if (n->upper)
    return 0;
  if (n->parent && !n->parent->upper) {
    int r = copy_up(b, n->parent);
    if (r < 0)
      return r;
  }
  lbx_node_buf nb = {0};
  int r = lbx_chain_getattr(b->chain, n->lower, &nb);
  if (r < 0)
    return r;
  r = nb.n.type == LBX_T_DIR ? copy_up_dir(b, n, &nb.n) : copy_up_file(b, n, &nb.n);
  lbx_node_buf_clear(&nb);
  if (r == 0) {
    pthread_mutex_lock(&b->mu);
    n->upper = true;
    pthread_mutex_unlock(&b->mu);
  }
  return r;
}

/* ---- requests ---- */

/* Open file handles: the fd (upper file or lower blob), or inline bytes. */
struct bfile {
  int fd;
  void *data;
  size_t len;
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
  /* readdir entries carry no attributes here: merged listings are built per
   * opendir, and a lookup decides what a name is */
  conn->want &= ~(unsigned)FUSE_CAP_READDIRPLUS;
  /* the box's umask is applied by the kernel before we see a mode */
  conn->want &= ~(unsigned)FUSE_CAP_DONT_MASK;
  conn->max_readahead = 1u << 20;
}

static void
box_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
  lbx_boxfs *b = B(req);
  struct bnode *p = node_of(b, parent);
  struct found f;
  int r = resolve(b, p, name, &f);
  if (r < 0)
    return (void)fuse_reply_err(req, -r);
  struct bnode *n = node_for(b, p, name, &f);
  struct fuse_entry_param e;
  if ((r = entry_for(b, n, &e)) < 0) {
    pthread_mutex_lock(&b->mu);
    unref_locked(b, n, 1);
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
  unref_locked(b, node_of(b, ino), nlookup);
  pthread_mutex_unlock(&b->mu);
  fuse_reply_none(req);
}

static void
box_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
  lbx_boxfs *b = B(req);
  pthread_mutex_lock(&b->mu);
  for (size_t i = 0; i < count; i++)
    unref_locked(b, node_of(b, forgets[i].ino), forgets[i].nlookup);
  pthread_mutex_unlock(&b->mu);
  fuse_reply_none(req);
}

static void
box_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
  (void)fi;
  lbx_boxfs *b = B(req);
  struct stat st;
  double t;
  int r = node_stat(b, node_of(b, ino), &st, &t);
  if (r < 0)
    return (void)fuse_reply_err(req, -r);
  fuse_reply_attr(req, &st, t);
}

/* The upper parent dir fd and the node's name in it, after copy-up. */
static int
upper_at(lbx_boxfs *b, struct bnode *n, int *dfd, char **name)
{
  int r = copy_up(b, n);
  if (r < 0)
    return r;
  if (n == b->root) {
    *dfd = fcntl(b->upperfd, F_DUPFD_CLOEXEC, 3);
    *name = lbx_xstrdup(".");
    return *dfd < 0 ? -errno : 0;
  }
  *dfd = upper_dir(b, n->parent);
  if (*dfd < 0)
    return *dfd;
  pthread_mutex_lock(&b->mu);
  *name = lbx_xstrdup(n->name);
  pthread_mutex_unlock(&b->mu);
  return 0;
}

/* Reads, updates and writes the override of an upper name. */
static int
update_override(int dfd, const char *name, int set_mode, uint32_t mode, int set_uid, uint32_t uid,
                int set_gid, uint32_t gid)
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
  struct override o = read_override_at(dfd, name, st.st_mode & S_IFMT);
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

static void
box_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
            struct fuse_file_info *fi)
{
  lbx_boxfs *b = B(req);
  struct bnode *n = node_of(b, ino);
  int dfd = -1;
  _cleanup_free_ char *name = NULL;
  int r = upper_at(b, n, &dfd, &name);
  _cleanup_close_ int dguard = dfd;
  if (r < 0)
    return (void)fuse_reply_err(req, -r);
  if (to_set & (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) {
    r = update_override(dfd, name, to_set & FUSE_SET_ATTR_MODE, attr->st_mode,
                        to_set & FUSE_SET_ATTR_UID, attr->st_uid, to_set & FUSE_SET_ATTR_GID,
                        attr->st_gid);
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
  if ((r = node_stat(b, n, &st, &t)) < 0)
    return (void)fuse_reply_err(req, -r);
  fuse_reply_attr(req, &st, t);
}

static void
box_readlink(fuse_req_t req, fuse_ino_t ino)
{
  lbx_boxfs *b = B(req);
  struct bnode *n = node_of(b, ino);
  if (!n->upper) {
    lbx_node_buf nb = {0};
    int r = lbx_chain_getattr(b->chain, n->lower, &nb);
    if (r < 0)
      return (void)fuse_reply_err(req, -r);
    fuse_reply_readlink(req, nb.n.link ? nb.n.link : "");
    lbx_node_buf_clear(&nb);
    return;
  }
  _cleanup_free_ char *p = path_of(b, n);
  char *slash = strrchr(p, '/');
  _cleanup_close_ int dfd = -1;
  if (slash) {
    *slash = '\0';
    dfd = open_beneath(b, p, O_PATH | O_DIRECTORY);
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
  if (is_reserved(name))
    return -EPERM;
  int r = copy_up(b, parent);
  if (r < 0)
    return r;
  int dfd = upper_dir(b, parent);
  if (dfd < 0)
    return dfd;
  _cleanup_free_ char *wh = lbx_xasprintf(WH_PREFIX "%s", name);
  *was_whiteout = unlinkat(dfd, wh, 0) == 0;
  return dfd;
}

static void
reply_new(fuse_req_t req, lbx_boxfs *b, struct bnode *parent, const char *name,
          struct fuse_file_info *fi)
{
  struct found f;
  int r = resolve(b, parent, name, &f);
  if (r < 0)
    return (void)fuse_reply_err(req, -r);
  struct bnode *n = node_for(b, parent, name, &f);
  struct fuse_entry_param e;
  if ((r = entry_for(b, n, &e)) < 0)
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
  struct bnode *p = node_of(b, parent);
  bool wh;
  int dfd = prepare_new(b, p, name, &wh);
  if (dfd < 0)
    return (void)fuse_reply_err(req, -dfd);
  _cleanup_close_ int guard = dfd;
  if (mkdirat(dfd, name, 0700) < 0)
    return (void)fuse_reply_err(req, errno);
  const struct fuse_ctx *ctx = fuse_req_ctx(req);
  _cleanup_close_ int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  int r = fd < 0 ? -errno : write_override_fd(fd, ctx->uid, ctx->gid, mode);
  /* a lower directory of this name was deleted: its children stay hidden */
  if (r == 0 && wh) {
    int m = openat(fd, WH_OPAQUE, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    r = m < 0 ? -errno : (close(m), 0);
  }
  if (r < 0) {
    unlinkat(dfd, name, AT_REMOVEDIR);
    return (void)fuse_reply_err(req, -r);
  }
  reply_new(req, b, p, name, NULL);
}

static void
box_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
  lbx_boxfs *b = B(req);
  struct bnode *p = node_of(b, parent);
  bool wh;
  int dfd = prepare_new(b, p, name, &wh);
  if (dfd < 0)
    return (void)fuse_reply_err(req, -dfd);
  _cleanup_close_ int guard = dfd;
  /* fifos and sockets cannot carry user xattrs: their real mode is what the
   * box asked for (plus our read/write), their owner shows as root */
  if (mknodat(dfd, name, (mode & S_IFMT) | (mode & 07777) | 0600, rdev) < 0)
    return (void)fuse_reply_err(req, errno);
  reply_new(req, b, p, name, NULL);
}

static void
box_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
  lbx_boxfs *b = B(req);
  struct bnode *p = node_of(b, parent);
  bool wh;
  int dfd = prepare_new(b, p, name, &wh);
  if (dfd < 0)
    return (void)fuse_reply_err(req, -dfd);
  _cleanup_close_ int guard = dfd;
  if (symlinkat(link, dfd, name) < 0)
    return (void)fuse_reply_err(req, errno);
  reply_new(req, b, p, name, NULL);
}

static void
box_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
           struct fuse_file_info *fi)
{
  lbx_boxfs *b = B(req);
  struct bnode *p = node_of(b, parent);
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
  int r = write_override_fd(fd, ctx->uid, ctx->gid, mode);
  if (r < 0) {
    close(fd);
    return (void)fuse_reply_err(req, -r);
  }
  struct bfile *h = lbx_xcalloc(1, sizeof *h);
  h->fd = fd;
  fi->fh = (uint64_t)(uintptr_t)h;
  reply_new(req, b, p, name, fi);
}

static void
box_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
  lbx_boxfs *b = B(req);
  struct bnode *n = node_of(b, ino);
  bool writing = (fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC);
  struct bfile *h = lbx_xcalloc(1, sizeof *h);
  h->fd = -1;
  if (!n->upper && !writing) {
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
    int r = upper_at(b, n, &dfd, &name);
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

static void
box_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
  (void)ino;
  (void)fi;
  fuse_reply_err(req, 0);
}

static void
box_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
  (void)ino;
  struct bfile *h = (struct bfile *)(uintptr_t)fi->fh;
  if (h->fd >= 0)
    close(h->fd);
  free(h->data);
  free(h);
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
    int fd = upper_dir(b, n);
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
      bool wh = is_reserved(name);
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
    if (nupper)
      qsort(upper, nupper, sizeof *upper, cmp_name);
    struct lower_collect c = {d, upper, nupper, b->chain};
    size_t first = d->n;
    r = lbx_chain_readdir(b->chain, n->lower, NULL, add_lower, &c);
    for (size_t i = first; r == 0 && i < d->n; i++) {
      lbx_node_buf nb = {0};
      if (lbx_chain_getattr(b->chain, d->v[i].ino, &nb) == 0)
        d->v[i].type = (unsigned char)IFTODT(lower_type(nb.n.type));
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
  int r = list_merged(b, node_of(b, ino), d);
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
  struct bnode *n = node_of(b, ino);
  if (!n->upper)
    return (void)fuse_reply_err(req, 0);
  _cleanup_free_ char *p = path_of(b, n);
  _cleanup_close_ int fd = open_beneath(b, p, O_RDONLY | O_DIRECTORY);
  fuse_reply_err(req, fd < 0 ? -fd : fsync(fd) < 0 ? errno : 0);
}

/* ---- removing and renaming ---- */

/* Forgets parent/name in the table: the next lookup sees what is there now. */
static void
detach(lbx_boxfs *b, struct bnode *parent, const char *name)
{
  pthread_mutex_lock(&b->mu);
  struct bnode *n = table_find(b, parent, name);
  if (n) {
    table_remove(b, n);
    /* keep it alive for the kernel's references, out of the table */
    free(n->name);
    n->name = lbx_xstrdup("");
    n->upper = false;
    n->lower = 0;
  }
  pthread_mutex_unlock(&b->mu);
}

static int
make_whiteout(int dfd, const char *name)
{
  _cleanup_free_ char *wh = lbx_xasprintf(WH_PREFIX "%s", name);
  int fd = openat(dfd, wh, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0)
    return -errno;
  close(fd);
  return 0;
}

/* Removes parent/name (a directory if dir) from the box's view. */
static int
remove_name(lbx_boxfs *b, struct bnode *parent, const char *name, bool dir)
{
  struct found f;
  int r = resolve(b, parent, name, &f);
  if (r < 0)
    return r;
  mode_t type = f.upper ? f.utype : f.ltype;
  if (dir && type != S_IFDIR)
    return -ENOTDIR;
  if (!dir && type == S_IFDIR)
    return -EISDIR;
  if (dir) {
    struct bnode *n = node_for(b, parent, name, &f);
    struct bdir d;
    r = list_merged(b, n, &d);
    size_t count = d.n;
    if (r == 0)
      bdir_free(&d);
    pthread_mutex_lock(&b->mu);
    unref_locked(b, n, 1);
    pthread_mutex_unlock(&b->mu);
    if (r < 0)
      return r;
    if (count)
      return -ENOTEMPTY;
  }
  r = copy_up(b, parent);
  if (r < 0)
    return r;
  _cleanup_close_ int dfd = upper_dir(b, parent);
  if (dfd < 0)
    return dfd;
  if (f.upper) {
    if (dir) {
      /* only whiteouts and the opaque marker can be left in it */
      _cleanup_close_ int sub = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (sub >= 0) {
        int sub2 = dup(sub);
        _cleanup_closedir_ DIR *dd = sub2 >= 0 ? fdopendir(sub2) : NULL;
        struct dirent *de;
        while (dd && (de = readdir(dd)))
          if (is_reserved(de->d_name))
            unlinkat(sub, de->d_name, 0);
      }
    }
    if (unlinkat(dfd, name, dir ? AT_REMOVEDIR : 0) < 0)
      return -errno;
  }
  if (f.lower && (r = make_whiteout(dfd, name)) < 0)
    return r;
  detach(b, parent, name);
  return 0;
}

static void
box_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
  lbx_boxfs *b = B(req);
  fuse_reply_err(req, -remove_name(b, node_of(b, parent), name, false));
}

static void
box_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
  lbx_boxfs *b = B(req);
  fuse_reply_err(req, -remove_name(b, node_of(b, parent), name, true));
}

static void
box_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
           const char *newname, unsigned int flags)
{
  lbx_boxfs *b = B(req);
  struct bnode *p = node_of(b, parent), *np = node_of(b, newparent);
  if (is_reserved(newname))
    return (void)fuse_reply_err(req, EPERM);
  if (flags & ~RENAME_NOREPLACE)
    return (void)fuse_reply_err(req, EINVAL); /* RENAME_EXCHANGE: not yet */
  struct found src, dst;
  int r = resolve(b, p, name, &src);
  if (r < 0)
    return (void)fuse_reply_err(req, -r);
  int dr = resolve(b, np, newname, &dst);
  bool dst_exists = dr == 0;
  if (dst_exists && (flags & RENAME_NOREPLACE))
    return (void)fuse_reply_err(req, EEXIST);
  mode_t stype = src.upper ? src.utype : src.ltype;
  /* a directory with lower content cannot move by rename(2) in the upper
   * dir alone; EXDEV makes mv(1) copy it instead, as on overlayfs */
  bool merged_dir = stype == S_IFDIR && src.lower && !(src.upper && src.opaque);
  if (merged_dir)
    return (void)fuse_reply_err(req, EXDEV);
  if (dst_exists) {
    mode_t dtype = dst.upper ? dst.utype : dst.ltype;
    if (stype == S_IFDIR && dtype != S_IFDIR)
      return (void)fuse_reply_err(req, ENOTDIR);
    if (stype != S_IFDIR && dtype == S_IFDIR)
      return (void)fuse_reply_err(req, EISDIR);
    if ((r = remove_name(b, np, newname, dtype == S_IFDIR)) < 0)
      return (void)fuse_reply_err(req, -r);
  }
  struct bnode *n = node_for(b, p, name, &src);
  r = copy_up(b, n);
  pthread_mutex_lock(&b->mu);
  unref_locked(b, n, 1);
  pthread_mutex_unlock(&b->mu);
  if (r < 0 || (r = copy_up(b, np)) < 0)
    return (void)fuse_reply_err(req, -r);
  _cleanup_close_ int sfd = upper_dir(b, p);
  _cleanup_close_ int dfd = upper_dir(b, np);
  if (sfd < 0 || dfd < 0)
    return (void)fuse_reply_err(req, EIO);
  _cleanup_free_ char *wh = lbx_xasprintf(WH_PREFIX "%s", newname);
  bool dst_whiteout = unlinkat(dfd, wh, 0) == 0;
  if (renameat(sfd, name, dfd, newname) < 0)
    return (void)fuse_reply_err(req, errno);
  /* a directory moved over a deleted lower one must not show its children */
  if (stype == S_IFDIR && (dst_whiteout || (dst_exists && dst.lower))) {
    _cleanup_close_ int sub = openat(dfd, newname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int m =
        sub < 0 ? -1 : openat(sub, WH_OPAQUE, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (m >= 0)
      close(m);
  }
  if (src.lower && (r = make_whiteout(sfd, name)) < 0)
    return (void)fuse_reply_err(req, -r);
  /* the node moves with its name; whatever the table had at the target goes */
  detach(b, np, newname);
  pthread_mutex_lock(&b->mu);
  struct bnode *moved = table_find(b, p, name);
  if (moved) {
    table_remove(b, moved);
    np->refs++;
    struct bnode *old = moved->parent;
    moved->parent = np;
    free(moved->name);
    moved->name = lbx_xstrdup(newname);
    moved->upper = true;
    moved->lower = 0;
    table_insert(b, moved);
    unref_locked(b, old, 1);
  }
  pthread_mutex_unlock(&b->mu);
  fuse_reply_err(req, 0);
}

static void
box_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
  lbx_boxfs *b = B(req);
  struct bnode *n = node_of(b, ino), *np = node_of(b, newparent);
  bool wh;
  int sdfd = -1;
  _cleanup_free_ char *sname = NULL;
  int r = upper_at(b, n, &sdfd, &sname);
  _cleanup_close_ int sguard = sdfd;
  if (r < 0)
    return (void)fuse_reply_err(req, -r);
  int dfd = prepare_new(b, np, newname, &wh);
  if (dfd < 0)
    return (void)fuse_reply_err(req, -dfd);
  _cleanup_close_ int guard = dfd;
  if (linkat(sdfd, sname, dfd, newname, 0) < 0)
    return (void)fuse_reply_err(req, errno);
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
  struct bnode *n = node_of(b, ino);
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
  _cleanup_free_ char *p = path_of(b, n);
  _cleanup_close_ int fd = open_beneath(b, p, O_PATH);
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
  struct bnode *n = node_of(b, ino);
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
    _cleanup_free_ char *p = path_of(b, n);
    _cleanup_close_ int fd = open_beneath(b, p, O_PATH);
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

static void
box_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size,
             int flags)
{
  lbx_boxfs *b = B(req);
  if (strcmp(name, OVERRIDE_XATTR) == 0)
    return (void)fuse_reply_err(req, EPERM);
  struct bnode *n = node_of(b, ino);
  int r = copy_up(b, n);
  if (r < 0)
    return (void)fuse_reply_err(req, -r);
  _cleanup_free_ char *p = path_of(b, n);
  _cleanup_close_ int fd = open_beneath(b, p, O_PATH);
  if (fd < 0)
    return (void)fuse_reply_err(req, -fd);
  char proc[64];
  snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
  fuse_reply_err(req, setxattr(proc, name, value, size, flags) < 0 ? errno : 0);
}

static void
box_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
  lbx_boxfs *b = B(req);
  if (strcmp(name, OVERRIDE_XATTR) == 0)
    return (void)fuse_reply_err(req, EPERM);
  struct bnode *n = node_of(b, ino);
  int r = copy_up(b, n);
  if (r < 0)
    return (void)fuse_reply_err(req, -r);
  _cleanup_free_ char *p = path_of(b, n);
  _cleanup_close_ int fd = open_beneath(b, p, O_PATH);
  if (fd < 0)
    return (void)fuse_reply_err(req, -fd);
  char proc[64];
  snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
  fuse_reply_err(req, removexattr(proc, name) < 0 ? errno : 0);
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
    .flush = box_flush,
    .release = box_release,
    .fsync = box_fsync,
    .opendir = box_opendir,
    .readdir = box_readdir,
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
  lbx_boxfs *b = lbx_xcalloc(1, sizeof *b);
  b->upperfd = b->workfd = -1;
  pthread_mutex_init(&b->mu, NULL);
  b->root = lbx_xcalloc(1, sizeof *b->root);
  b->root->name = lbx_xstrdup("");
  b->root->refs = 1;
  b->root->upper = true;
  b->root->type = S_IFDIR;
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
  b->root->opaque = is_opaque(b->upperfd, ".");
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
lbx_boxfs_free(lbx_boxfs *b)
{
  if (!b)
    return;
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
  free(b);
}
