/* `lazybox cp`: the box's root as a directory fd, and a copy engine that
 * never lets the box's symlinks reach the host.
 *
 * The box's side of every copy is resolved from the root fd: the path the
 * caller gave with openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS) (the
 * kernel treats "/" and ".." as the root, absolute symlinks too, and
 * refuses /proc magic links), everything below it with *at() calls on
 * directory fds and O_NOFOLLOW / AT_SYMLINK_NOFOLLOW. A running box may
 * swap a directory for a symlink while we copy: then a call fails, it
 * never follows the new link out. New files are made with O_EXCL after
 * what was there is unlinked, so no existing link is written through.
 *
 * The root is a FUSE mount with allow_other inside the box's own user
 * namespace (rootless), which the kernel refuses to processes outside it:
 * the copy runs in a child that joins that namespace (a running box) or
 * makes its own and mounts the box's root there (a stopped one), as the
 * supervisor does (launch.c). */
#include "copy.h"
#include "launch-internal.h"
#include "fs.h"
#include "launcher.h"
#include "tar.h"
#include "tarw.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- one copy ---- */

/* A walk holds one directory fd per level: a tree deeper than this is
 * refused rather than run out of fds (or stack) half-way */
#define MAX_DEPTH 2048

struct cp {
  const char *box;
  int rootfd;
  bool into; /* host -> box; else box -> host */
  /* lbx_copy_dir_contents: owners kept too, what may not be read (an
   * owner the namespace does not map) or made (a device node, rootless)
   * is left out, and messages say what for */
  bool keep_owner;
  const char *what;
  char *msg;
  size_t len;
  unsigned depth; /* of directories being walked: each holds an fd */
  /* directories made by this copy: a source tree that holds its own
   * destination (a volume) is not copied into itself forever */
  struct {
    dev_t dev;
    ino_t ino;
  } * made;
  size_t nmade;
};

static int
fail(struct cp *c, bool box_side, const char *path_in, const char *why)
{
  /* one line, and the reason in it: control bytes shown as '?', a long
   * path (an archive's name may be megabytes) cut */
  char path[208];
  size_t n = 0;
  for (const char *p = path_in; *p && n < 200; p++)
    path[n++] = (unsigned char)*p < 0x20 || *p == 0x7f ? '?' : *p;
  if (path_in[n])
    memcpy(path + n, "...", 3), n += 3;
  path[n] = '\0';
  if (c->what)
    snprintf(c->msg, c->len, "%s: %s: %s", c->what, path, why);
  else if (box_side)
    snprintf(c->msg, c->len, "cp: %s in box %s: %s", path, c->box, why);
  else
    snprintf(c->msg, c->len, "cp: %s: %s", path, why);
  return -1;
}

static int
fail_errno(struct cp *c, bool box_side, const char *path, int e)
{
  return fail(c, box_side, path, strerror(e));
}

/* fail_errno, or 0 (the entry left out) where a best-effort copy may */
static int
fail_or_skip(struct cp *c, bool box_side, const char *path, int e)
{
  return c->keep_owner && (e == EACCES || e == EPERM) ? 0 : fail_errno(c, box_side, path, e);
}

/* Opens path on one side: the box's inside its root, the host's as the
 * caller would (the caller's own paths are trusted). */
static int
side_open(struct cp *c, bool box_side, const char *path, int flags)
{
  if (!box_side)
    return open(path, flags | O_CLOEXEC);
  struct open_how how = {
      .flags = (uint64_t)(flags | O_CLOEXEC),
      .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
  };
  /* EAGAIN: a rename raced the walk (the kernel cannot vouch for ".."
   * then); a few retries, as the man page suggests */
  for (int tries = 0;; tries++) {
    long fd = syscall(SYS_openat2, c->rootfd, *path ? path : ".", &how, sizeof how);
    if (fd >= 0)
      return (int)fd;
    if (errno == ENOSYS)
      errno = ENOTSUP; /* openat2 is Linux 5.6: never fall back to open */
    if (errno != EAGAIN || tries >= 16)
      return -1;
  }
}

/* A path as the caller wrote it, taken apart. */
struct spath {
  char *full;       /* without trailing "/" and "/." ("/" stays "/") */
  char *parent;     /* full's parent directory */
  const char *base; /* its last component; NULL when full names a directory
                     * by itself ("/", ".", "..", "x/..") */
  bool contents;    /* it ended in "/.": a directory's contents */
  bool slash;       /* it ended in "/": must be a directory */
};

static void
spath_split(const char *path, bool box_side, struct spath *sp)
{
  memset(sp, 0, sizeof *sp);
  size_t n = strlen(path);
  for (;;) {
    if (n >= 2 && path[n - 2] == '/' && path[n - 1] == '.') {
      n -= 2;
      sp->contents = sp->slash = true;
    } else if (n >= 2 && path[n - 1] == '/') {
      n--;
      sp->slash = true;
    } else {
      break;
    }
  }
  if (n == 0)
    sp->full = lbx_xstrdup(path[0] == '/' ? "/" : ".");
  else
    sp->full = lbx_xstrndup(path, n);
  char *slash = strrchr(sp->full, '/');
  const char *base = slash ? slash + 1 : sp->full;
  if (!*base || strcmp(base, ".") == 0 || strcmp(base, "..") == 0)
    return;
  sp->base = base;
  if (!slash)
    sp->parent = lbx_xstrdup(box_side ? "/" : ".");
  else if (slash == sp->full)
    sp->parent = lbx_xstrdup("/");
  else
    sp->parent = lbx_xstrndup(sp->full, (size_t)(slash - sp->full));
}

static void
spath_clear(struct spath *sp)
{
  free(sp->full);
  free(sp->parent);
}

static char *
child_path(const char *dir, const char *name)
{
  return lbx_xasprintf("%s/%s", strcmp(dir, "/") == 0 ? "" : dir, name);
}

static bool
made_here(const struct cp *c, const struct stat *st)
{
  for (size_t i = 0; i < c->nmade; i++)
    if (c->made[i].dev == st->st_dev && c->made[i].ino == st->st_ino)
      return true;
  return false;
}

static void
remember(struct cp *c, int fd)
{
  struct stat st;
  if (fstat(fd, &st) < 0)
    return;
  c->made = lbx_xrealloc(c->made, (c->nmade + 1) * sizeof *c->made);
  c->made[c->nmade].dev = st.st_dev;
  c->made[c->nmade].ino = st.st_ino;
  c->nmade++;
}

/* What is at the destination goes, unless both are directories (then the
 * copy merges into it): 1 merge, 0 create, -1 error. Never follows it. */
static int
prepare_dest(struct cp *c, int dfd, const char *dname, const char *dpath, bool dir)
{
  struct stat st;
  if (fstatat(dfd, dname, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return errno == ENOENT ? 0 : fail_errno(c, c->into, dpath, errno);
  if (S_ISDIR(st.st_mode)) {
    if (dir)
      return 1;
    return fail(c, c->into, dpath, "is a directory: cannot overwrite it with a non-directory");
  }
  if (dir)
    return fail(c, c->into, dpath, "exists and is not a directory");
  if (unlinkat(dfd, dname, 0) < 0)
    return fail_errno(c, c->into, dpath, errno);
  return 0;
}

/* Best effort: an owner the user namespace does not map (nobody, in a
 * box with only the caller's id) cannot be given, and the copy goes on */
static void
keep_owner(struct cp *c, int fd, const struct stat *st)
{
  if (c->keep_owner)
    (void)fchown(fd, st->st_uid, st->st_gid);
}

/* proc, sysfs and the like, in a running box: the kernel's files, not the
 * box's (their sizes are not their contents, some reads never end), which
 * Podman's cp does not see either: it copies from the box's own root file
 * system. Their directories come out empty. */
static bool
kernel_fs(int fd)
{
  struct statfs sf;
  if (fstatfs(fd, &sf) < 0)
    return false;
  switch ((unsigned long)sf.f_type) {
  case PROC_SUPER_MAGIC:
  case SYSFS_MAGIC:
  case DEVPTS_SUPER_MAGIC:
  case CGROUP_SUPER_MAGIC:
  case CGROUP2_SUPER_MAGIC:
  case SECURITYFS_MAGIC:
  case DEBUGFS_MAGIC:
  case TRACEFS_MAGIC:
  case PSTOREFS_MAGIC:
  case EFIVARFS_MAGIC:
  case BPF_FS_MAGIC:
    return true;
  default:
    return false;
  }
}

static void
times_of(const struct stat *st, struct timespec t[2])
{
  t[0] = st->st_atim;
  t[1] = st->st_mtim;
}

static int copy_node(struct cp *c, int sfd, const char *sname, const struct stat *st,
                     const char *spath, int dfd, const char *dname, const char *dpath);

/* keep_meta false: the caller's own directory, which a "/." copy fills,
 * keeps its mode and times */
static int
copy_dir(struct cp *c, int sfd, const char *sname, const struct stat *st, const char *spath,
         int dfd, const char *dname, const char *dpath, bool keep_meta)
{
  /* the source first: one a best-effort copy leaves out leaves nothing */
  int from = openat(sfd, sname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (from < 0)
    return fail_or_skip(c, !c->into, spath, errno);
  _cleanup_closedir_ DIR *d = fdopendir(from);
  if (!d) {
    close(from);
    return fail_errno(c, !c->into, spath, errno);
  }
  if (++c->depth > MAX_DEPTH)
    return fail(c, !c->into, spath, "directories nested too deep");
  bool leave_out = !c->into && kernel_fs(dirfd(d));
  int r = prepare_dest(c, dfd, dname, dpath, true);
  if (r < 0)
    return -1;
  /* 0700 while filling it: the final mode may not let us write */
  if (r == 0 && mkdirat(dfd, dname, 0700) < 0)
    return fail_errno(c, c->into, dpath, errno);
  _cleanup_close_ int to = openat(dfd, dname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (to < 0)
    return fail_errno(c, c->into, dpath, errno);
  remember(c, to);
  for (; !leave_out;) {
    errno = 0;
    struct dirent *de = readdir(d);
    if (!de) {
      if (errno)
        return fail_errno(c, !c->into, spath, errno);
      break;
    }
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
      continue;
    _cleanup_free_ char *cs = child_path(spath, de->d_name);
    _cleanup_free_ char *cd = child_path(dpath, de->d_name);
    struct stat cst;
    if (fstatat(dirfd(d), de->d_name, &cst, AT_SYMLINK_NOFOLLOW) < 0)
      return fail_errno(c, !c->into, cs, errno);
    if (S_ISDIR(cst.st_mode) && made_here(c, &cst))
      continue;
    if (copy_node(c, dirfd(d), de->d_name, &cst, cs, to, de->d_name, cd) < 0)
      return -1;
  }
  c->depth--;
  if (keep_meta) {
    struct timespec t[2];
    times_of(st, t);
    keep_owner(c, to, st);
    if (fchmod(to, st->st_mode & 07777) < 0 || futimens(to, t) < 0)
      return fail_errno(c, c->into, dpath, errno);
  }
  return 0;
}

static int
copy_file(struct cp *c, int sfd, const char *sname, const struct stat *st, const char *spath,
          int dfd, const char *dname, const char *dpath)
{
  /* O_NONBLOCK: what was a file may be a fifo by now; never hang on it */
  _cleanup_close_ int in =
      openat(sfd, sname, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (in < 0)
    return fail_or_skip(c, !c->into, spath, errno);
  struct stat now;
  if (fstat(in, &now) < 0)
    return fail_errno(c, !c->into, spath, errno);
  if (!S_ISREG(now.st_mode))
    return fail(c, !c->into, spath, "changed while being copied");
  if (prepare_dest(c, dfd, dname, dpath, false) < 0)
    return -1;
  _cleanup_close_ int out =
      openat(dfd, dname, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (out < 0)
    return fail_errno(c, c->into, dpath, errno);
  static char buf[128 * 1024];
  for (;;) {
    ssize_t n = read(in, buf, sizeof buf);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return fail_errno(c, !c->into, spath, errno);
    if (n == 0)
      break;
    int r = lbx_write_all(out, buf, (size_t)n);
    if (r < 0)
      return fail_errno(c, c->into, dpath, -r);
  }
  struct timespec t[2];
  times_of(st, t);
  /* the owner, then the mode, after the data: both drop set-id bits */
  keep_owner(c, out, st);
  if (fchmod(out, st->st_mode & 07777) < 0 || futimens(out, t) < 0)
    return fail_errno(c, c->into, dpath, errno);
  return 0;
}

static int
copy_node(struct cp *c, int sfd, const char *sname, const struct stat *st, const char *spath,
          int dfd, const char *dname, const char *dpath)
{
  struct timespec t[2];
  times_of(st, t);
  if (S_ISDIR(st->st_mode))
    return copy_dir(c, sfd, sname, st, spath, dfd, dname, dpath, true);
  if (S_ISREG(st->st_mode))
    return copy_file(c, sfd, sname, st, spath, dfd, dname, dpath);
  if (S_ISLNK(st->st_mode)) {
    _cleanup_free_ char *target = lbx_xmalloc(PATH_MAX + 1); /* not on a deep walk's stack */
    ssize_t n = readlinkat(sfd, sname, target, PATH_MAX);
    if (n < 0)
      return fail_errno(c, !c->into, spath, errno);
    target[n] = '\0';
    if (prepare_dest(c, dfd, dname, dpath, false) < 0)
      return -1;
    if (symlinkat(target, dfd, dname) < 0)
      return fail_errno(c, c->into, dpath, errno);
    if (c->keep_owner)
      (void)fchownat(dfd, dname, st->st_uid, st->st_gid, AT_SYMLINK_NOFOLLOW);
    /* a file system without symlink times keeps the link all the same */
    utimensat(dfd, dname, t, AT_SYMLINK_NOFOLLOW);
    return 0;
  }
  if (S_ISSOCK(st->st_mode))
    return 0; /* a socket is an endpoint, not data: tar skips them too */
  /* fifos, and device nodes where mknod is allowed (not rootless) */
  if (prepare_dest(c, dfd, dname, dpath, false) < 0)
    return -1;
  if (mknodat(dfd, dname, st->st_mode & (S_IFMT | 07777), st->st_rdev) < 0)
    return fail_or_skip(c, c->into, dpath, errno);
  if (utimensat(dfd, dname, t, AT_SYMLINK_NOFOLLOW) < 0)
    return fail_errno(c, c->into, dpath, errno);
  return 0;
}

/* The source: a directory fd and a name in it (never followed), or the
 * directory itself as ".". A host source path is followed as the caller's
 * cp would; a box source's last component only with a trailing "/" or
 * "/." (docker's rule), and always inside the root. */
static int
open_source(struct cp *c, bool box_side, const char *user, const struct spath *sp, int *fd,
            const char **name, struct stat *st, char **real)
{
  const char *path = sp->full;
  _cleanup_free_ char *rp = NULL;
  bool whole = !sp->base || sp->slash;
  if (!box_side) {
    if (!(rp = realpath(sp->full, NULL)))
      return fail_errno(c, false, user, errno);
    path = rp;
    whole = whole || strcmp(rp, "/") == 0;
  }
  if (whole) {
    *fd = side_open(c, box_side, path, O_PATH | O_DIRECTORY);
    *name = ".";
  } else {
    const char *slash = strrchr(path, '/');
    _cleanup_free_ char *parent = NULL;
    if (box_side)
      parent = lbx_xstrdup(sp->parent);
    else
      parent = slash == path ? lbx_xstrdup("/") : lbx_xstrndup(path, (size_t)(slash - path));
    *fd = side_open(c, box_side, parent, O_PATH | O_DIRECTORY);
    *name = box_side ? sp->base : slash + 1;
  }
  if (*fd < 0)
    return fail_errno(c, box_side, user, errno);
  if (fstatat(*fd, *name, st, AT_SYMLINK_NOFOLLOW) < 0) {
    int e = errno;
    close(*fd);
    *fd = -1; /* the caller closes what it holds */
    return fail_errno(c, box_side, user, e);
  }
  *real = steal_pointer(&rp);
  return 0;
}

/* The destination: an existing directory receives the source under name
 * (NULL: merge into it); otherwise the path is the new name. */
static int
open_dest(struct cp *c, bool box_side, const char *user, const struct spath *dp, const char *name,
          int *fd, const char **dname, char **shown)
{
  *fd = side_open(c, box_side, dp->full, O_PATH | O_DIRECTORY);
  if (*fd >= 0) {
    *dname = name ? name : ".";
    *shown = name ? child_path(dp->full, name) : lbx_xstrdup(dp->full);
    return 0;
  }
  if ((errno != ENOENT && errno != ENOTDIR) || !dp->base || dp->slash)
    return fail_errno(c, box_side, user, errno);
  *fd = side_open(c, box_side, dp->parent, O_PATH | O_DIRECTORY);
  if (*fd < 0) {
    char why[200];
    snprintf(why, sizeof why, "its parent directory %s: %s", dp->parent, strerror(errno));
    return fail(c, box_side, user, why);
  }
  *dname = dp->base;
  *shown = lbx_xstrdup(dp->full);
  return 0;
}

static int
copy_paths(struct cp *c, const char *src, const char *dst)
{
  bool src_box = !c->into;
  struct spath sp, dp;
  spath_split(src, src_box, &sp);
  spath_split(dst, !src_box, &dp);
  int sfd = -1, dfd = -1, r = -1;
  const char *sname, *dname;
  char *real = NULL, *shown = NULL;
  struct stat st;
  if (open_source(c, src_box, src, &sp, &sfd, &sname, &st, &real) < 0)
    goto out;
  if (sp.contents && !S_ISDIR(st.st_mode)) {
    fail(c, src_box, src, "not a directory");
    goto out;
  }
  /* "/." and a path without a name ("/", "..") fill an existing directory */
  if (open_dest(c, !src_box, dst, &dp, sp.contents ? NULL : sp.base, &dfd, &dname, &shown) < 0)
    goto out;
  if (S_ISDIR(st.st_mode))
    r = copy_dir(c, sfd, sname, &st, sp.full, dfd, dname, shown, strcmp(dname, ".") != 0);
  else
    r = copy_node(c, sfd, sname, &st, sp.full, dfd, dname, shown);
out:
  if (sfd >= 0)
    close(sfd);
  if (dfd >= 0)
    close(dfd);
  free(real);
  free(shown);
  free(c->made);
  spath_clear(&sp);
  spath_clear(&dp);
  return r;
}

int
lbx_copy_dir_contents(int from, int to, const char *what, const char *path, char *msg, size_t len)
{
  struct cp c = {.box = "",
                 .rootfd = -1,
                 .into = true,
                 .keep_owner = true,
                 .what = what,
                 .msg = msg,
                 .len = len};
  struct stat st;
  int r = fstat(from, &st) < 0 ? fail_errno(&c, false, path, errno)
                               : copy_dir(&c, from, ".", &st, path, to, ".", path, false);
  free(c.made);
  return r;
}

int
lbx_copy_into_box(int rootfd, const char *box, const char *host_src, const char *box_dst, char *msg,
                  size_t len)
{
  struct cp c = {.box = box, .rootfd = rootfd, .into = true, .msg = msg, .len = len};
  return copy_paths(&c, host_src, box_dst);
}

int
lbx_copy_out_of_box(int rootfd, const char *box, const char *box_src, const char *host_dst,
                    char *msg, size_t len)
{
  struct cp c = {.box = box, .rootfd = rootfd, .into = false, .msg = msg, .len = len};
  return copy_paths(&c, box_src, host_dst);
}

/* ---- out of the box as a tar stream ---- */

static int
tar_fail_out(struct cp *c, int r)
{
  snprintf(c->msg, c->len, "cp: writing the archive: %s", strerror(-r));
  return -1;
}

static int tar_node(struct cp *c, int sfd, const char *sname, const struct stat *st,
                    const char *spath, const char *arc, int out);

/* arc NULL: the directory's contents, each under its own name */
static int
tar_dir(struct cp *c, int sfd, const char *sname, const char *spath, const char *arc, int out)
{
  int from = openat(sfd, sname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (from < 0)
    return fail_errno(c, true, spath, errno);
  _cleanup_closedir_ DIR *d = fdopendir(from);
  if (!d) {
    close(from);
    return fail_errno(c, true, spath, errno);
  }
  if (kernel_fs(from))
    return 0;
  if (++c->depth > MAX_DEPTH)
    return fail(c, true, spath, "directories nested too deep");
  for (;;) {
    errno = 0;
    struct dirent *de = readdir(d);
    if (!de) {
      if (errno)
        return fail_errno(c, true, spath, errno);
      c->depth--;
      return 0;
    }
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
      continue;
    _cleanup_free_ char *cs = child_path(spath, de->d_name);
    _cleanup_free_ char *ca =
        arc ? lbx_xasprintf("%s/%s", arc, de->d_name) : lbx_xstrdup(de->d_name);
    struct stat cst;
    if (fstatat(dirfd(d), de->d_name, &cst, AT_SYMLINK_NOFOLLOW) < 0)
      return fail_errno(c, true, cs, errno);
    if (tar_node(c, dirfd(d), de->d_name, &cst, cs, ca, out) < 0)
      return -1;
  }
}

static int
tar_node(struct cp *c, int sfd, const char *sname, const struct stat *st, const char *spath,
         const char *arc, int out)
{
  int r;
  if (S_ISSOCK(st->st_mode))
    return 0; /* as copy_node: an endpoint, not data */
  if (S_ISLNK(st->st_mode)) {
    _cleanup_free_ char *target = lbx_xmalloc(PATH_MAX + 1); /* not on a deep walk's stack */
    ssize_t n = readlinkat(sfd, sname, target, PATH_MAX);
    if (n < 0)
      return fail_errno(c, true, spath, errno);
    target[n] = '\0';
    r = lbx_tarw_header(out, arc, st, target);
  } else if (S_ISREG(st->st_mode)) {
    _cleanup_close_ int in =
        openat(sfd, sname, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    struct stat now;
    if (in < 0 || fstat(in, &now) < 0)
      return fail_errno(c, true, spath, errno);
    if (!S_ISREG(now.st_mode))
      return fail(c, true, spath, "changed while being copied");
    int read_err;
    r = lbx_tarw_header(out, arc, &now, NULL);
    if (r == 0 && (r = lbx_tarw_data(out, in, (uint64_t)now.st_size, &read_err)) == 1)
      return read_err ? fail_errno(c, true, spath, read_err)
                      : fail(c, true, spath, "shrank while being copied");
  } else {
    r = lbx_tarw_header(out, arc, st, NULL);
    if (r == 0 && S_ISDIR(st->st_mode))
      return tar_dir(c, sfd, sname, spath, arc, out);
  }
  return r < 0 ? tar_fail_out(c, r) : 0;
}

int
lbx_copy_out_of_box_tar(int rootfd, const char *box, const char *box_src, int out, char *msg,
                        size_t len)
{
  struct cp c = {.box = box, .rootfd = rootfd, .into = false, .msg = msg, .len = len};
  /* a reader that goes away is an error to report, not a signal to die of */
  signal(SIGPIPE, SIG_IGN);
  struct spath sp;
  spath_split(box_src, true, &sp);
  int sfd = -1, r = -1;
  const char *sname;
  char *real = NULL;
  struct stat st;
  if (open_source(&c, true, box_src, &sp, &sfd, &sname, &st, &real) < 0)
    goto out;
  if (sp.contents && !S_ISDIR(st.st_mode)) {
    fail(&c, true, box_src, "not a directory");
    goto out;
  }
  /* "/." and a path without a name ("/", "..") give the contents */
  if (S_ISDIR(st.st_mode) && (sp.contents || !sp.base))
    r = tar_dir(&c, sfd, sname, sp.full, NULL, out);
  else
    r = tar_node(&c, sfd, sname, &st, sp.full, sp.base, out);
  if (r == 0 && (r = lbx_tarw_end(out)) < 0)
    r = tar_fail_out(&c, r);
out:
  if (sfd >= 0)
    close(sfd);
  free(real);
  spath_clear(&sp);
  return r;
}

/* ---- into the box from a tar stream ---- */

static ssize_t
read_fd(void *ctx, void *buf, size_t len, lbx_err **err)
{
  ssize_t n;
  while ((n = read(*(const int *)ctx, buf, len)) < 0 && errno == EINTR)
    ;
  if (n < 0)
    lbx_error_errno(err, errno, "standard input");
  return n;
}

/* The directory that holds path's last component, below dfd (the box's
 * directory base): missing components made when make; a symlink on the
 * way (merged /usr's bin -> usr/bin) resolved as the box would, inside
 * its root (openat2 RESOLVE_IN_ROOT from the root fd, by its path in the
 * box), never outside it. The fd, with *leaf pointing into path; -1 with
 * c's message. */
static int
walk_parent(struct cp *c, int dfd, const char *base, char *path, const char *shown, bool make,
            const char **leaf)
{
  int cur = dup(dfd);
  char *comp = path;
  for (char *slash; cur >= 0 && (slash = strchr(comp, '/')); comp = slash + 1) {
    *slash = '\0';
    int next = openat(cur, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (next < 0 && errno == ENOENT && make && mkdirat(cur, comp, 0755) == 0)
      next = openat(cur, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    struct stat lst;
    if (next < 0 && (errno == ENOTDIR || errno == ELOOP) &&
        fstatat(cur, comp, &lst, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(lst.st_mode)) {
      _cleanup_free_ char *in_box = child_path(base, path);
      next = side_open(c, true, in_box, O_PATH | O_DIRECTORY);
    }
    int e = errno;
    *slash = '/';
    close(cur);
    cur = next;
    if (cur < 0) {
      char why[160];
      snprintf(why, sizeof why, "%.*s: %s", (int)(slash - path), path,
               e == ELOOP || e == ENOTDIR ? "not a directory" : strerror(e));
      return fail(c, true, shown, why);
    }
  }
  if (cur < 0)
    return fail_errno(c, true, shown, errno);
  *leaf = comp;
  return cur;
}

/* A hard link's target, below dfd: its directory's fd and *leaf, the
 * target checked to be there before anything is replaced for the link */
static int
link_target(struct cp *c, const lbx_tar_entry *e, int dfd, const char *base, const char *shown,
            char **target, const char **leaf)
{
  lbx_err *err = NULL;
  if (lbx_tar_clean_path(e->linkname, target, &err) < 0) {
    fail(c, true, shown, err->msg);
    lbx_error_free(err);
    return -1;
  }
  int at = walk_parent(c, dfd, base, *target, shown, false, leaf);
  struct stat st;
  if (at >= 0 && fstatat(at, *leaf, &st, AT_SYMLINK_NOFOLLOW) < 0) {
    char why[300];
    snprintf(why, sizeof why, "its link target %.200s: %s", *target, strerror(errno));
    close(at);
    return fail(c, true, shown, why);
  }
  return at;
}

static int
untar_entry(struct cp *c, lbx_tar *t, const lbx_tar_entry *e, int dfd, const char *base, char *path,
            const char *shown)
{
  const char *leaf, *tleaf = NULL;
  _cleanup_close_ int at = walk_parent(c, dfd, base, path, shown, true, &leaf);
  if (at < 0)
    return -1;
  _cleanup_free_ char *target = NULL;
  _cleanup_close_ int tat =
      e->type == LBX_TAR_HARDLINK ? link_target(c, e, dfd, base, shown, &target, &tleaf) : -1;
  if (e->type == LBX_TAR_HARDLINK && tat < 0)
    return -1;
  struct timespec ts[2] = {{e->mtime_sec, (long)e->mtime_nsec},
                           {e->mtime_sec, (long)e->mtime_nsec}};
  struct stat lst;
  if (e->type == LBX_TAR_DIR && fstatat(at, leaf, &lst, AT_SYMLINK_NOFOLLOW) == 0 &&
      S_ISLNK(lst.st_mode)) {
    /* a link to a directory (merged /usr's bin) stays, as in Docker and
     * Podman, and what the archive has under that name goes through it */
    _cleanup_close_ int d = side_open(c, true, shown, O_PATH | O_DIRECTORY);
    if (d >= 0)
      return 0;
  }
  int r = prepare_dest(c, at, leaf, shown, e->type == LBX_TAR_DIR);
  if (r < 0)
    return -1;
  switch (e->type) {
  case LBX_TAR_DIR: {
    if (r == 0 && mkdirat(at, leaf, 0700) < 0)
      return fail_errno(c, true, shown, errno);
    /* the mode through an fd of the directory itself, never a link a
     * running box put there meanwhile; its times once its entries are in */
    _cleanup_close_ int d = openat(at, leaf, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (d < 0 || fchmod(d, e->mode) < 0)
      return fail_errno(c, true, shown, errno);
    return 0;
  }
  case LBX_TAR_REG: {
    _cleanup_close_ int out =
        openat(at, leaf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (out < 0)
      return fail_errno(c, true, shown, errno);
    static char buf[128 * 1024];
    lbx_err *err = NULL;
    ssize_t n;
    while ((n = lbx_tar_read(t, buf, sizeof buf, &err)) > 0)
      if ((r = lbx_write_all(out, buf, (size_t)n)) < 0)
        return fail_errno(c, true, shown, -r);
    if (n < 0) {
      snprintf(c->msg, c->len, "cp: %s", err->msg);
      lbx_error_free(err);
      return -1;
    }
    if (fchmod(out, e->mode) < 0 || futimens(out, ts) < 0)
      return fail_errno(c, true, shown, errno);
    return 0;
  }
  case LBX_TAR_SYMLINK:
    if (symlinkat(e->linkname, at, leaf) < 0)
      return fail_errno(c, true, shown, errno);
    utimensat(at, leaf, ts, AT_SYMLINK_NOFOLLOW); /* where links have times */
    return 0;
  case LBX_TAR_HARDLINK:
    if (linkat(tat, tleaf, at, leaf, 0) < 0)
      return fail_errno(c, true, shown, errno);
    return 0;
  default:
    if (mknodat(at, leaf,
                (e->type == LBX_TAR_FIFO  ? S_IFIFO
                 : e->type == LBX_TAR_CHR ? S_IFCHR
                                          : S_IFBLK) |
                    e->mode,
                makedev(e->devmajor, e->devminor)) < 0) {
      /* a device node where mknod is not allowed (rootless) is left out,
       * as Docker does in a user namespace */
      if (errno == EPERM && e->type != LBX_TAR_FIFO)
        return 0;
      return fail_errno(c, true, shown, errno);
    }
    if (utimensat(at, leaf, ts, AT_SYMLINK_NOFOLLOW) < 0)
      return fail_errno(c, true, shown, errno);
    return 0;
  }
}

struct dir_time {
  char *path;
  struct timespec ts[2];
};

int
lbx_copy_tar_into_box(int rootfd, const char *box, int in, const char *box_dst, char *msg,
                      size_t len)
{
  struct cp c = {.box = box, .rootfd = rootfd, .into = true, .msg = msg, .len = len};
  _cleanup_close_ int dfd = side_open(&c, true, box_dst, O_PATH | O_DIRECTORY);
  if (dfd < 0)
    return fail_errno(&c, true, box_dst, errno);
  _cleanup_(lbx_tar_freep) lbx_tar *t = lbx_tar_new("standard input", read_fd, &in);
  struct dir_time *dirs = NULL;
  size_t ndirs = 0;
  int r = 0;
  for (;;) {
    const lbx_tar_entry *e;
    lbx_err *err = NULL;
    _cleanup_free_ char *path = NULL;
    int got = lbx_tar_next(t, &e, &err);
    if (got > 0 && lbx_tar_clean_path(e->path, &path, &err) < 0)
      got = -1;
    if (got < 0) {
      snprintf(msg, len, "cp: %s", err->msg);
      lbx_error_free(err);
      r = -1;
      break;
    }
    if (got == 0) {
      /* the rest (a writer's record padding, or more) is read, not left
       * to end the writer with SIGPIPE */
      char sink[65536];
      ssize_t n;
      while ((n = read(in, sink, sizeof sink)) > 0 || (n < 0 && errno == EINTR))
        ;
      break;
    }
    if (!*path)
      continue; /* "./": the destination itself */
    _cleanup_free_ char *shown = child_path(box_dst, path);
    if ((r = untar_entry(&c, t, e, dfd, box_dst, path, shown)) < 0)
      break;
    if (e->type == LBX_TAR_DIR) {
      dirs = lbx_xrealloc(dirs, (ndirs + 1) * sizeof *dirs);
      dirs[ndirs++] = (struct dir_time){
          steal_pointer(&path),
          {{e->mtime_sec, (long)e->mtime_nsec}, {e->mtime_sec, (long)e->mtime_nsec}}};
    }
  }
  /* deepest first would not matter: a directory's time changes only when
   * its own entries change */
  for (size_t i = 0; i < ndirs; i++) {
    const char *leaf;
    char unused[1];
    struct cp quiet = {.box = box, .rootfd = rootfd, .msg = unused, .len = sizeof unused};
    int at = r == 0 ? walk_parent(&quiet, dfd, box_dst, dirs[i].path, "", false, &leaf) : -1;
    if (at >= 0) {
      utimensat(at, leaf, dirs[i].ts, AT_SYMLINK_NOFOLLOW);
      close(at);
    }
    free(dirs[i].path);
  }
  free(dirs);
  return r;
}

/* ---- the box's root, in a child ---- */

static int failf(char *msg, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int
failf(char *msg, size_t len, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, len, fmt, ap);
  va_end(ap);
  return -1;
}

/* A running box: /proc/<pid>/root, from inside the box's user namespace
 * (rootless), which its FUSE mount admits. The pid's directory is held
 * before its start time is checked, so a pid reused since is refused. */
static int
running_root(const lbx_box_root_opts *o, char *msg, size_t len)
{
  char path[64];
  snprintf(path, sizeof path, "/proc/%d", (int)o->pid);
  _cleanup_close_ int pidfd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (pidfd < 0)
    return failf(msg, len, "cp: box %s is not running", o->name);
  struct stat mine, theirs;
  if (stat("/proc/self/ns/user", &mine) < 0 || fstatat(pidfd, "ns/user", &theirs, 0) < 0)
    return failf(msg, len, "cp: box %s: its user namespace: %s", o->name, strerror(errno));
  if (mine.st_dev != theirs.st_dev || mine.st_ino != theirs.st_ino) {
    _cleanup_close_ int ns = openat(pidfd, "ns/user", O_RDONLY | O_CLOEXEC);
    if (ns < 0 || setns(ns, CLONE_NEWUSER) < 0)
      return failf(msg, len, "cp: box %s: joining its user namespace: %s", o->name,
                   strerror(errno));
  }
  if (lbx_pid_start(o->pid) != o->pid_start)
    return failf(msg, len, "cp: box %s is not running", o->name);
  int fd = openat(pidfd, "root", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return failf(msg, len, "cp: box %s: its root (%s/root): %s", o->name, path, strerror(errno));
  return fd;
}

/* A stopped box: its namespaces and root as the supervisor makes them
 * (launch.c), and no more (no box process). The box fs's lock on the work
 * dir keeps a start, or a second cp, out meanwhile. */
static int
stopped_root(const lbx_box_root_opts *o, lbx_boxfs **fsp, pthread_t *th, char *msg, size_t len)
{
  lbx_fail f = {0};
  bool single_id;
  if (lbx_box_ns_enter(o->name, 0, false, &single_id, &f) < 0 ||
      lbx_box_root_mount(o->name, o->id, o->store_root, o->chain_id, o->box_dir, false, fsp, &f) <
          0)
    return failf(msg, len, "cp: %s", f.msg);
  if (pthread_create(th, NULL, lbx_box_serve_main, *fsp) != 0) {
    lbx_boxfs_unmount(*fsp);
    *fsp = NULL;
    return failf(msg, len, "cp: box %s: starting the file system's threads failed", o->name);
  }
  _cleanup_free_ char *root = lbx_xasprintf("%s/root", o->box_dir);
  int fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return failf(msg, len, "cp: box %s: its root %s: %s", o->name, root, strerror(errno));
  return fd;
}

static _Noreturn void
child_main(const lbx_box_root_opts *o, lbx_box_root_fn fn, void *ctx, int report_fd)
{
  /* a copy nobody waits for stops */
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  /* modes are set exactly, not through the caller's umask */
  umask(0);
  /* a walk holds two fds per level (MAX_DEPTH) */
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  char msg[600] = "";
  lbx_boxfs *fs = NULL;
  pthread_t th;
  int rootfd =
      o->pid > 0 ? running_root(o, msg, sizeof msg) : stopped_root(o, &fs, &th, msg, sizeof msg);
  int code = 0;
  if (rootfd < 0 || fn(ctx, rootfd, msg, sizeof msg) < 0)
    code = 125;
  if (rootfd >= 0)
    close(rootfd);
  if (fs)
    lbx_box_stop_fs(fs, th);
  if (code) {
    char line[700];
    int n = snprintf(line, sizeof line, "%d %s\n", code, *msg ? msg : "cp failed");
    if (lbx_write_all(report_fd, line, (size_t)n) < 0)
      _exit(code);
  }
  /* never back into main: this process's namespaces are not the caller's */
  _exit(code);
}

int
lbx_box_root_run(const lbx_box_root_opts *o, lbx_box_root_fn fn, void *ctx, lbx_err **err)
{
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0)
    return lbx_error_errno(err, errno, "cp: pipe");
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) {
    int e = errno;
    close(p[0]);
    close(p[1]);
    return lbx_error_errno(err, e, "cp: fork");
  }
  if (pid == 0) {
    close(p[0]);
    child_main(o, fn, ctx, p[1]);
  }
  close(p[1]);
  char line[800];
  ssize_t got = lbx_read_all(p[0], line, sizeof line - 1);
  close(p[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;
  if (got > 0) {
    line[got] = '\0';
    line[strcspn(line, "\n")] = '\0';
    const char *text = strchr(line, ' ');
    return lbx_error(err, EIO, "%s", text ? text + 1 : line);
  }
  if (WIFSIGNALED(status))
    return lbx_error(err, EINTR, "cp: box %s: the copy was killed by signal %d", o->name,
                     WTERMSIG(status));
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return lbx_error(err, EIO, "cp: box %s: the copy failed (exit code %d)", o->name,
                     WEXITSTATUS(status));
  return 0;
}
