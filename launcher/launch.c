/* The supervisor and the box's first process.
 *
 * Order matters, and is the point of this file:
 *  - the supervisor unshares every namespace at once (user first, so the
 *    others belong to it), maps the caller to root, makes its mount tree
 *    private, mounts the box's root with fs/box.c (no thread runs yet) and
 *    forks the box's first process, which becomes pid 1 of the new pid
 *    namespace; only then does it start serving FUSE;
 *  - the box process unshares a second mount namespace (pivot_root moves
 *    every process whose root is the old root: the supervisor must keep
 *    the host view it serves the store and the upper dir from), takes what
 *    it needs from the host as detached mounts (proc, sys, dev nodes, the
 *    box's /etc files, volumes), pivot_roots into the FUSE mount, detaches
 *    the old root, and only then attaches those mounts, by paths that now
 *    resolve inside the box: an image's symlink can never point a mount
 *    or a created file at a host path. */
#include "copy.h"
#include "fs.h"
#include "io.h"
#include "launch-internal.h"
#include "util.h"

#include <errno.h>
#include <linux/openat2.h>
#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <pwd.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int
lbx_failf(lbx_fail *f, int code, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(f->msg, sizeof f->msg, fmt, ap);
  va_end(ap);
  f->code = code;
  return -1;
}

uint64_t
lbx_pid_start(pid_t pid)
{
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
  ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof buf - 1);
  if (n <= 0)
    return 0;
  buf[n] = '\0';
  /* the command name may hold spaces and parentheses: count from the last ')' */
  char *p = strrchr(buf, ')');
  if (!p)
    return 0;
  p++;
  for (int field = 3; field < 22 && p; field++)
    p = strchr(p + 1, ' ');
  return p ? strtoull(p + 1, NULL, 10) : 0;
}

int
lbx_signal_pid(pid_t pid, uint64_t start, int sig)
{
  _cleanup_close_ int pfd = pid > 0 ? pidfd_open(pid, 0) : -1;
  if (pfd < 0)
    return -ESRCH;
  /* checked after the pidfd is held: it names the process checked */
  if (lbx_pid_start(pid) != start)
    return -ESRCH;
  return pidfd_send_signal(pfd, sig, NULL, 0) < 0 ? -errno : 0;
}

/* ---- files the box sees at /etc/hostname, /etc/hosts, /etc/resolv.conf ---- */

static int
write_text(const char *path, const char *text, size_t n)
{
  _cleanup_free_ char *tmp = lbx_xasprintf("%s.tmp", path);
  _cleanup_close_ int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0 || lbx_write_all(fd, text, n) < 0 || rename(tmp, path) < 0)
    return -errno;
  return 0;
}

static int
box_files(const lbx_launch *l, lbx_fail *f)
{
  _cleanup_free_ char *hn = lbx_xasprintf("%s/hostname", l->box_dir);
  _cleanup_free_ char *hosts = lbx_xasprintf("%s/hosts", l->box_dir);
  _cleanup_free_ char *resolv = lbx_xasprintf("%s/resolv.conf", l->box_dir);
  _cleanup_free_ char *t1 = lbx_xasprintf("%s\n", l->hostname);
  _cleanup_free_ char *t2 = lbx_xasprintf("127.0.0.1\tlocalhost\n"
                                          "::1\tlocalhost ip6-localhost ip6-loopback\n"
                                          "127.0.1.1\t%s %s\n",
                                          l->hostname, l->name);
  _cleanup_free_ char *t3 = NULL;
  size_t n3 = 0;
  /* a box without a network of its own resolves as the host does */
  if (l->net_none || lbx_read_file("/etc/resolv.conf", 1 << 20, &t3, &n3) < 0) {
    free(t3);
    t3 = lbx_xstrdup("");
    n3 = 0;
  }
  int r;
  if ((r = write_text(hn, t1, strlen(t1))) < 0 || (r = write_text(hosts, t2, strlen(t2))) < 0 ||
      (r = write_text(resolv, t3, n3)) < 0)
    return lbx_failf(f, 125, "box %s: writing its /etc files in %s: %s", l->name, l->box_dir,
                     strerror(-r));
  return 0;
}

/* ---- the box's first process ---- */

struct child_fds {
  int alive_r; /* hangs up when the supervisor is gone */
  int err_w;   /* failures before exec, as "code message" */
  int sock_w;  /* with a tty: the pty master goes to the supervisor */
  int out_w, errout_w;
};

static int
detached_tree(const char *path, bool recursive, bool ro, lbx_fail *f)
{
  int fd = open_tree(AT_FDCWD, path,
                     OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (recursive ? AT_RECURSIVE : 0));
  if (fd < 0)
    return lbx_failf(f, 125, "taking %s into the box: %s", path, strerror(errno));
  if (ro) {
    struct mount_attr a = {.attr_set = MOUNT_ATTR_RDONLY};
    if (mount_setattr(fd, "", AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0), &a, sizeof a) < 0) {
      close(fd);
      return lbx_failf(f, 125, "making %s read-only: %s", path, strerror(errno));
    }
  }
  return fd;
}

/* A new proc or sysfs, detached. Made before pivot_root: an unprivileged
 * mount of either needs a fully visible one in the mount namespace, which
 * the host's are. */
static int
new_fs(const char *type, unsigned attr, lbx_fail *f)
{
  _cleanup_close_ int fs = fsopen(type, FSOPEN_CLOEXEC);
  if (fs < 0 || fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
    return lbx_failf(f, 125, "mounting the box's %s: %s", type, strerror(errno));
  int m =
      fsmount(fs, FSMOUNT_CLOEXEC, attr | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
  if (m < 0)
    return lbx_failf(f, 125, "mounting the box's %s: %s", type, strerror(errno));
  return m;
}

/* A mount point inside the box (after pivot_root): made when missing. */
static int
ensure_target(const char *path, bool dir)
{
  struct stat st;
  if (stat(path, &st) == 0)
    return 0;
  /* a dangling symlink (/proc -> a host path, resolv.conf -> a systemd
   * path) gives way, as it would to `rm` and `mkdir` in the box */
  struct stat lst;
  if (lstat(path, &lst) == 0 && S_ISLNK(lst.st_mode) && unlink(path) < 0)
    return -errno;
  _cleanup_free_ char *parent = lbx_xstrdup(path);
  char *slash = strrchr(parent, '/');
  if (slash && slash != parent) {
    *slash = '\0';
    lbx_mkdir_p(parent, 0755);
  }
  if (dir)
    return lbx_mkdir_p(path, 0755);
  int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0)
    return -errno;
  close(fd);
  return 0;
}

/* A caller's mount at dir or above it (-v vol:/var covers /var/tmp) */
static bool
mounted_over(const lbx_launch *l, const char *dir)
{
  for (size_t k = 0; k < l->nmounts; k++) {
    const char *t = l->mounts[k].target;
    size_t n = strlen(t);
    while (n > 1 && t[n - 1] == '/')
      n--;
    if (strncmp(dir, t, n) == 0 && (dir[n] == '\0' || dir[n] == '/' || n == 1))
      return true;
  }
  return false;
}

/* --read-only's writable places, as Podman's: /tmp and /var/tmp, and /run
 * (noexec, 64 MiB), each a tmpfs that starts with what the image has
 * there (its mode and owner too; 1777 for a /tmp it lacks), unless the
 * caller mounts something there or above */
static int
writable_tmp_dirs(const lbx_launch *l, lbx_fail *f)
{
  static const char *const dirs[] = {"/tmp", "/var/tmp", "/run"};
  for (size_t i = 0; i < LBX_ARRAY_SIZE(dirs); i++) {
    if (mounted_over(l, dirs[i]))
      continue;
    bool run = strcmp(dirs[i], "/run") == 0;
    struct stat st;
    bool had = stat(dirs[i], &st) == 0;
    int r = ensure_target(dirs[i], true);
    /* what the image has there, held before the tmpfs hides it */
    _cleanup_close_ int below = r < 0 ? -1 : open(dirs[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (below < 0 && r == 0 && errno == ENOTDIR)
      continue; /* a file, or a link to one: nothing to make writable */
    if (below < 0 || fstat(below, &st) < 0)
      return lbx_failf(f, 125, "tmpfs %s: %s", dirs[i], r < 0 ? strerror(-r) : strerror(errno));
    unsigned mode = had ? (unsigned)(st.st_mode & 07777) : run ? 0755u : 01777u;
    unsigned long flags = MS_NOSUID | MS_NODEV | (run ? MS_NOEXEC : 0);
    const char *size = run ? ",size=65536k" : "";
    char opts[96];
    snprintf(opts, sizeof opts, "mode=%o,uid=%u,gid=%u%s", mode, (unsigned)st.st_uid,
             (unsigned)st.st_gid, size);
    int m = mount("tmpfs", dirs[i], "tmpfs", flags, opts);
    if (m < 0 && errno == EINVAL) { /* an owner the namespace does not map */
      snprintf(opts, sizeof opts, "mode=%o%s", mode, size);
      m = mount("tmpfs", dirs[i], "tmpfs", flags, opts);
    }
    if (m < 0)
      return lbx_failf(f, 125, "tmpfs %s: %s", dirs[i], strerror(errno));
    _cleanup_close_ int top = open(dirs[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    char msg[512];
    if (top < 0)
      return lbx_failf(f, 125, "tmpfs %s: %s", dirs[i], strerror(errno));
    if (lbx_copy_dir_contents(below, top, "copying the image's files into its tmpfs", dirs[i], msg,
                              sizeof msg) < 0)
      return lbx_failf(f, 125, "%s", msg);
  }
  return 0;
}

static int
attach(int tree, const char *target, bool dir, lbx_fail *f)
{
  int r = ensure_target(target, dir);
  if (r < 0)
    return lbx_failf(f, 125, "making mount point %s in the box: %s", target, strerror(-r));
  if (move_mount(tree, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH) < 0)
    return lbx_failf(f, 125, "mounting %s in the box: %s", target, strerror(errno));
  return 0;
}

static int
lo_up(lbx_fail *f)
{
  _cleanup_close_ int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  struct ifreq ifr = {0};
  snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "lo");
  if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
    return lbx_failf(f, 125, "network lo: %s", strerror(errno));
  ifr.ifr_flags |= IFF_UP;
  if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
    return lbx_failf(f, 125, "bringing up lo: %s", strerror(errno));
  return 0;
}

static const char *const dev_nodes[] = {"null", "zero", "full", "random", "urandom", "tty"};
static const char *const etc_files[] = {"hostname", "hosts", "resolv.conf"};

static int
make_dev(bool single_id, const int nodes[], lbx_fail *f)
{
  if (ensure_target("/dev", true) < 0 ||
      mount("tmpfs", "/dev", "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k") < 0)
    return lbx_failf(f, 125, "mounting the box's /dev: %s", strerror(errno));
  for (size_t i = 0; i < LBX_ARRAY_SIZE(dev_nodes); i++) {
    char path[32];
    snprintf(path, sizeof path, "/dev/%s", dev_nodes[i]);
    if (attach(nodes[i], path, false, f) < 0)
      return -1;
  }
  /* gid 5 (tty) exists only when the box has more than the caller's id,
   * and not for a "root" that is itself in a user namespace with one id
   * (unshare -r): devpts refuses an unmapped gid with EINVAL */
  const unsigned long pts_flags = MS_NOSUID | MS_NOEXEC;
  if (mkdir("/dev/pts", 0755) < 0 ||
      ((single_id || mount("devpts", "/dev/pts", "devpts", pts_flags,
                           "newinstance,ptmxmode=0666,mode=620,gid=5") < 0) &&
       ((!single_id && errno != EINVAL) || mount("devpts", "/dev/pts", "devpts", pts_flags,
                                                 "newinstance,ptmxmode=0666,mode=620") < 0)))
    return lbx_failf(f, 125, "mounting the box's /dev/pts: %s", strerror(errno));
  if (mkdir("/dev/shm", 01777) < 0 ||
      mount("shm", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=65536k") <
          0)
    return lbx_failf(f, 125, "mounting the box's /dev/shm: %s", strerror(errno));
  static const char *const links[][2] = {{"pts/ptmx", "/dev/ptmx"},
                                         {"/proc/self/fd", "/dev/fd"},
                                         {"/proc/self/fd/0", "/dev/stdin"},
                                         {"/proc/self/fd/1", "/dev/stdout"},
                                         {"/proc/self/fd/2", "/dev/stderr"}};
  for (size_t i = 0; i < LBX_ARRAY_SIZE(links); i++)
    if (symlink(links[i][0], links[i][1]) < 0)
      return lbx_failf(f, 125, "making %s in the box: %s", links[i][1], strerror(errno));
  return 0;
}

/* What a box must not write or read of the kernel, as Podman's defaults:
 * real root in a box without a user namespace could otherwise set
 * /proc/sys/kernel/core_pattern and run a program on the host. */
static int
mask_kernel_files(lbx_fail *f)
{
  static const char *const ro[] = {"/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus",
                                   "/proc/fs"};
  static const char *const masked[] = {"/proc/kcore",         "/proc/keys",   "/proc/timer_list",
                                       "/proc/sched_debug",   "/proc/acpi",   "/proc/scsi",
                                       "/proc/latency_stats", "/sys/firmware"};
  for (size_t i = 0; i < LBX_ARRAY_SIZE(ro); i++) {
    if (access(ro[i], F_OK) < 0)
      continue;
    struct mount_attr a = {.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV |
                                       MOUNT_ATTR_NOEXEC};
    _cleanup_close_ int t = open_tree(AT_FDCWD, ro[i], OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
    if (t < 0 || mount_setattr(t, "", AT_EMPTY_PATH, &a, sizeof a) < 0 ||
        move_mount(t, "", AT_FDCWD, ro[i], MOVE_MOUNT_F_EMPTY_PATH) < 0)
      return lbx_failf(f, 125, "making %s read-only in the box: %s", ro[i], strerror(errno));
  }
  for (size_t i = 0; i < LBX_ARRAY_SIZE(masked); i++) {
    struct stat st;
    if (stat(masked[i], &st) < 0)
      continue;
    int r = S_ISDIR(st.st_mode) ? mount("tmpfs", masked[i], "tmpfs",
                                        MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=0")
                                : mount("/dev/null", masked[i], NULL, MS_BIND, NULL);
    if (r < 0)
      return lbx_failf(f, 125, "masking %s in the box: %s", masked[i], strerror(errno));
  }
  return 0;
}

static int
send_fd(int sock, int fd)
{
  char byte = 0;
  struct iovec iov = {&byte, 1};
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } u;
  memset(&u, 0, sizeof u);
  struct msghdr m = {
      .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf};
  struct cmsghdr *c = CMSG_FIRSTHDR(&m);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &fd, sizeof fd);
  return sendmsg(sock, &m, MSG_NOSIGNAL) == 1 ? 0 : -errno;
}

static int
recv_fd(int sock)
{
  char byte;
  struct iovec iov = {&byte, 1};
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } u;
  struct msghdr m = {
      .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf};
  if (recvmsg(sock, &m, MSG_CMSG_CLOEXEC) != 1)
    return -1;
  struct cmsghdr *c = CMSG_FIRSTHDR(&m);
  if (!c || c->cmsg_type != SCM_RIGHTS)
    return -1;
  int fd;
  memcpy(&fd, CMSG_DATA(c), sizeof fd);
  return fd;
}

static int
box_setup(const lbx_launch *l, const char *root, const struct child_fds *cf, bool single_id,
          lbx_fail *f)
{
  if (setsid() < 0)
    return lbx_failf(f, 125, "setsid: %s", strerror(errno));
  if (!l->tty) {
    int in = l->interactive ? 0 : open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (in < 0 || dup2(in, 0) < 0 || dup2(cf->out_w, 1) < 0 || dup2(cf->errout_w, 2) < 0)
      return lbx_failf(f, 125, "box stdio: %s", strerror(errno));
  }
  if (unshare(CLONE_NEWNS) < 0)
    return lbx_failf(f, 125, "a mount namespace for the box: %s", strerror(errno));
  if (sethostname(l->hostname, strlen(l->hostname)) < 0)
    return lbx_failf(f, 125, "hostname %s: %s", l->hostname, strerror(errno));
  if (l->net_none && lo_up(f) < 0)
    return -1;

  /* what comes from the host, taken while its paths are in view */
  int proc = new_fs("proc", 0, f);
  if (proc < 0)
    return -1;
  /* a box with its own network gets a sysfs of its own (its
   * /sys/class/net shows its interfaces); else the host's, read-only */
  int sys = l->net_none ? new_fs("sysfs", MOUNT_ATTR_RDONLY, f) : -1;
  if (sys < 0)
    sys = detached_tree("/sys", true, true, f);
  if (sys < 0)
    return -1;
  int nodes[LBX_ARRAY_SIZE(dev_nodes)];
  for (size_t i = 0; i < LBX_ARRAY_SIZE(dev_nodes); i++) {
    char path[32];
    snprintf(path, sizeof path, "/dev/%s", dev_nodes[i]);
    if ((nodes[i] = detached_tree(path, false, false, f)) < 0)
      return -1;
  }
  int etc[LBX_ARRAY_SIZE(etc_files)];
  for (size_t i = 0; i < LBX_ARRAY_SIZE(etc_files); i++) {
    _cleanup_free_ char *p = lbx_xasprintf("%s/%s", l->box_dir, etc_files[i]);
    if ((etc[i] = detached_tree(p, false, false, f)) < 0)
      return -1;
  }
  _cleanup_free_ int *vols = lbx_xcalloc(l->nmounts + 1, sizeof *vols);
  _cleanup_free_ bool *vol_dir = lbx_xcalloc(l->nmounts + 1, sizeof *vol_dir);
  for (size_t i = 0; i < l->nmounts; i++) {
    const lbx_mount_spec *m = &l->mounts[i];
    if (m->kind != LBX_MNT_BIND)
      continue;
    /* create stored the source's real path: a symlink in it now (a box
     * with a volume over a parent dir could plant one) is refused, not
     * followed to some other host path */
    struct open_how how = {.flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_NO_SYMLINKS};
    _cleanup_close_ int src = (int)syscall(SYS_openat2, AT_FDCWD, m->source, &how, sizeof how);
    struct stat st;
    if (src < 0 || fstat(src, &st) < 0)
      return lbx_failf(f, 125, "volume %s: %s", m->source,
                       errno == ELOOP ? "a symlink is in its path (it had none at create)"
                                      : strerror(errno));
    vol_dir[i] = S_ISDIR(st.st_mode);
    vols[i] =
        open_tree(src, "", AT_EMPTY_PATH | OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
    /* nosuid: no exec in the box can change credentials, which would
     * clear the parent-death signal that ties pid 1 to its supervisor;
     * nodev: a host device node in a volume stays an inert file */
    struct mount_attr a = {.attr_set = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV |
                                       (m->ro ? MOUNT_ATTR_RDONLY : 0),
                           /* a clone of a slave mount is a slave: the
                            * host's later mounts under the source would
                            * appear in the box (Podman's volumes are
                            * rprivate) */
                           .propagation = MS_PRIVATE};
    if (vols[i] < 0 || mount_setattr(vols[i], "", AT_EMPTY_PATH | AT_RECURSIVE, &a, sizeof a) < 0)
      return lbx_failf(f, 125, "volume %s: %s", m->source, strerror(errno));
  }

  /* into the box's root, leaving nothing of the host's behind */
  _cleanup_close_ int rfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (rfd < 0 || fchdir(rfd) < 0)
    return lbx_failf(f, 125, "box root %s: %s", root, strerror(errno));
  if (syscall(SYS_pivot_root, ".", ".") < 0)
    return lbx_failf(f, 125, "pivot_root into %s: %s", root, strerror(errno));
  if (umount2(".", MNT_DETACH) < 0 || chdir("/") < 0)
    return lbx_failf(f, 125, "detaching the host's root: %s", strerror(errno));

  if (attach(proc, "/proc", true, f) < 0 || make_dev(single_id, nodes, f) < 0 ||
      attach(sys, "/sys", true, f) < 0 || mask_kernel_files(f) < 0)
    return -1;
  /* before the /etc files (resolv.conf may link into /run) and the
   * caller's mounts (one under /tmp goes on the tmpfs) */
  if (l->read_only && l->read_only_tmpfs && writable_tmp_dirs(l, f) < 0)
    return -1;
  for (size_t i = 0; i < LBX_ARRAY_SIZE(etc_files); i++) {
    char path[32];
    snprintf(path, sizeof path, "/etc/%s", etc_files[i]);
    /* a read-only image without the file goes without it */
    if (ensure_target(path, false) == 0 && attach(etc[i], path, false, f) < 0)
      return -1;
  }
  for (size_t i = 0; i < l->nmounts; i++) {
    const lbx_mount_spec *m = &l->mounts[i];
    if (m->kind == LBX_MNT_BIND) {
      if (attach(vols[i], m->target, vol_dir[i], f) < 0)
        return -1;
    } else {
      int r = ensure_target(m->target, true);
      /* Podman's tmpfs defaults: rw, noexec, nosuid, nodev */
      if (r < 0 ||
          mount("tmpfs", m->target, "tmpfs",
                MS_NOSUID | MS_NODEV | MS_NOEXEC | (m->ro ? MS_RDONLY : 0), "mode=1777") < 0)
        return lbx_failf(f, 125, "tmpfs %s: %s", m->target, r < 0 ? strerror(-r) : strerror(errno));
    }
  }
  if (l->read_only) {
    struct mount_attr a = {.attr_set = MOUNT_ATTR_RDONLY};
    if (mount_setattr(AT_FDCWD, "/", 0, &a, sizeof a) < 0)
      return lbx_failf(f, 125, "making the box's root read-only: %s", strerror(errno));
  }
  if (l->tty) {
    int master, slave;
    int r = lbx_open_pty(&master, &slave);
    if (r < 0)
      return lbx_failf(f, 125, "a pty in the box: %s", strerror(-r));
    if (ioctl(slave, TIOCSCTTY, 0) < 0 || send_fd(cf->sock_w, master) < 0)
      return lbx_failf(f, 125, "the box's terminal: %s", strerror(errno));
    close(master);
    if (dup2(slave, 0) < 0 || dup2(slave, 1) < 0 || dup2(slave, 2) < 0)
      return lbx_failf(f, 125, "the box's terminal: %s", strerror(errno));
    if (slave > 2)
      close(slave);
  }
  return 0;
}

/* --init: pid 1 stays lazybox's own code (no exec, so its parent-death
 * signal holds whatever the box runs), forks the command, forwards the
 * signals it gets to it, reaps every orphan and ends with the command's
 * exit code, taking the pid namespace with it. Returns 0 in the command's
 * process, -1 with *f when the fork failed; pid 1 never returns. */
static int
run_init(const lbx_launch *l, lbx_fail *f)
{
  sigset_t all, none;
  sigfillset(&all);
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &all, NULL);
  pid_t child = fork();
  if (child < 0) {
    sigprocmask(SIG_SETMASK, &none, NULL);
    return lbx_failf(f, 125, "--init: fork: %s", strerror(errno));
  }
  if (child == 0) {
    /* its own process group, in the foreground of the box's terminal, so
     * ^C from the pty reaches it (SIGTTOU is still blocked here) */
    setpgid(0, 0);
    if (l->tty)
      tcsetpgrp(0, getpid());
    sigprocmask(SIG_SETMASK, &none, NULL);
    return 0;
  }
  /* the supervisor learns of failures and of the exec from the end of the
   * error pipe: pid 1 keeps no copy of it, nor of anything else */
  close_range(0, ~0U, 0);
  prctl(PR_SET_NAME, "lazybox-init");
  for (;;) {
    siginfo_t si;
    int sig = sigwaitinfo(&all, &si);
    if (sig < 0)
      continue;
    if (sig != SIGCHLD) {
      kill(child, sig);
      continue;
    }
    int status;
    pid_t p;
    while ((p = waitpid(-1, &status, WNOHANG)) > 0)
      if (p == child)
        _exit(WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status));
  }
}

static _Noreturn void
box_main(const lbx_launch *l, const char *root, const struct child_fds *cf, pid_t supervisor,
         bool single_id)
{
  /* nothing the box does outlives its supervisor; a supervisor that died
   * before this was armed shows as the hangup of a pipe only it writes */
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  (void)supervisor;
  struct pollfd alive = {cf->alive_r, POLLIN, 0};
  if (poll(&alive, 1, 0) != 0)
    _exit(125);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  for (int sig = 1; sig < NSIG; sig++)
    if (sig != SIGKILL && sig != SIGSTOP)
      signal(sig, SIG_DFL);
  lbx_fail f = {0};
  if (box_setup(l, root, cf, single_id, &f) == 0 && (!l->init || run_init(l, &f) == 0))
    lbx_become_and_exec(l->argv, l->env, l->user, l->workdir, true, l->tty, l->no_new_privs,
                        single_id, &f);
  char line[600];
  int n = snprintf(line, sizeof line, "%d %s", f.code, f.msg);
  if (write(cf->err_w, line, (size_t)n) < 0)
    _exit(f.code);
  _exit(f.code);
}

/* ---- the supervisor ---- */

static void
report(int fd, int code, const char *msg)
{
  if (fd < 0)
    return;
  char line[700];
  int n =
      code ? snprintf(line, sizeof line, "%d %s\n", code, msg) : snprintf(line, sizeof line, "0\n");
  if (lbx_write_all(fd, line, (size_t)n) < 0)
    return;
}

/* The caller's subordinate ids (/etc/subuid, /etc/subgid: "name:start:count"
 * or "uid:start:count"); the first line that names the caller. */
static bool
sub_range(const char *file, const char *user, unsigned id, unsigned long *start,
          unsigned long *count)
{
  _cleanup_fclose_ FILE *f = fopen(file, "re");
  char line[512];
  char num[16];
  snprintf(num, sizeof num, "%u", id);
  while (f && fgets(line, sizeof line, f)) {
    char *save = NULL;
    char *name = strtok_r(line, ":\n", &save);
    char *a = strtok_r(NULL, ":\n", &save);
    char *b = strtok_r(NULL, ":\n", &save);
    if (!name || !a || !b || (strcmp(name, num) != 0 && (!user || strcmp(name, user) != 0)))
      continue;
    *start = strtoul(a, NULL, 10);
    *count = strtoul(b, NULL, 10);
    if (*count > 0)
      return true;
  }
  return false;
}

static const char *
find_tool(const char *name)
{
  static const char *const dirs[] = {"/usr/bin/", "/bin/", "/usr/sbin/", "/sbin/"};
  static char path[64];
  for (size_t i = 0; i < LBX_ARRAY_SIZE(dirs); i++) {
    snprintf(path, sizeof path, "%s%s", dirs[i], name);
    if (access(path, X_OK) == 0)
      return path;
  }
  return NULL;
}

/* The lines of a box's uid (or gid) map: the caller's id "id" plus its
 * subordinate range start..start+count-1 (count 0: none). Default: the
 * caller is root and the range follows it. keep-id: the caller keeps its
 * own id and the range fills the ids around it, as Podman's. Returns the
 * number of "inside outside length" triples. */
static size_t
id_map(unsigned id, unsigned long start, unsigned long count, bool keep_id, unsigned long m[3][3])
{
  size_t n = 0;
  if (!keep_id) {
    m[n][0] = 0, m[n][1] = id, m[n++][2] = 1;
    if (count)
      m[n][0] = 1, m[n][1] = start, m[n++][2] = count;
    return n;
  }
  unsigned long below = count < id ? count : id;
  if (below)
    m[n][0] = 0, m[n][1] = start, m[n++][2] = below;
  m[n][0] = id, m[n][1] = id, m[n++][2] = 1;
  if (count > below)
    m[n][0] = (unsigned long)id + 1, m[n][1] = start + below, m[n++][2] = count - below;
  return n;
}

/* Runs newuidmap or newgidmap for pid with the map above. */
static int
run_idmap(const char *tool, pid_t pid, unsigned id, unsigned long start, unsigned long count,
          bool keep_id)
{
  unsigned long m[3][3];
  size_t n = id_map(id, start, count, keep_id, m);
  char a[10][24];
  char *argv[12] = {(char *)tool, a[0]};
  snprintf(a[0], sizeof a[0], "%d", (int)pid);
  size_t k = 1;
  for (size_t i = 0; i < n; i++)
    for (size_t j = 0; j < 3; j++, k++) {
      snprintf(a[k], sizeof a[k], "%lu", m[i][j]);
      argv[k + 1] = a[k];
    }
  argv[k + 1] = NULL;
  pid_t p = fork();
  if (p < 0)
    return -1;
  if (p == 0) {
    int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (nul >= 0)
      dup2(nul, 1);
    execv(tool, argv);
    _exit(127);
  }
  int status;
  return waitpid(p, &status, 0) == p && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* With subordinate ranges and the setuid helpers, the box gets the
 * caller as root plus a range for its other users (useradd, chown and
 * apt-get work); the helpers must run outside the new user namespace, so
 * a child made before unshare writes the maps when told to. */
struct idmapper {
  pid_t pid;
  int go; /* write end: a byte once the supervisor has unshared */
};

static bool
idmapper_start(struct idmapper *m, uid_t uid, gid_t gid, bool keep_id)
{
  m->pid = -1;
  struct passwd *pw = getpwuid(uid);
  const char *user = pw ? pw->pw_name : NULL;
  unsigned long us, uc, gs, gc;
  const char *nu = find_tool("newuidmap");
  char nu_path[64];
  snprintf(nu_path, sizeof nu_path, "%s", nu ? nu : "");
  const char *ng = find_tool("newgidmap");
  if (!nu || !ng || !sub_range("/etc/subuid", user, uid, &us, &uc) ||
      !sub_range("/etc/subgid", user, uid, &gs, &gc))
    return false;
  char ng_path[64];
  snprintf(ng_path, sizeof ng_path, "%s", ng);
  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0)
    return false;
  pid_t parent = getpid();
  m->pid = fork();
  if (m->pid < 0) {
    close(p[0]);
    close(p[1]);
    return false;
  }
  if (m->pid == 0) {
    close(p[1]);
    char byte;
    if (read(p[0], &byte, 1) != 1)
      _exit(2);
    _exit(run_idmap(nu_path, parent, (unsigned)uid, us, uc, keep_id) == 0 &&
                  run_idmap(ng_path, parent, (unsigned)gid, gs, gc, keep_id) == 0
              ? 0
              : 1);
  }
  close(p[0]);
  m->go = p[1];
  return true;
}

static int
idmapper_finish(struct idmapper *m)
{
  int r = write(m->go, "x", 1) == 1 ? 0 : -1;
  close(m->go);
  int status;
  if (waitpid(m->pid, &status, 0) != m->pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
    r = -1;
  return r;
}

static int
write_map(const char *file, const char *text)
{
  _cleanup_close_ int fd = open(file, O_WRONLY | O_CLOEXEC);
  if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
    return -errno;
  return 0;
}

int
lbx_box_ns_enter(const char *name, int flags, bool keep_id, bool *single_id, lbx_fail *f)
{
  uid_t uid = getuid();
  gid_t gid = getgid();
  bool rootless = geteuid() != 0;
  /* not CLONE_NEWPID: a process that unshared it can no longer make
   * threads, and the supervisor serves FUSE from threads; the box's
   * first process is cloned into a new pid namespace instead */
  flags |= CLONE_NEWNS | (rootless ? CLONE_NEWUSER : 0);
  struct idmapper mapper;
  bool full_map = rootless && idmapper_start(&mapper, uid, gid, keep_id);
  if (unshare(flags) < 0) {
    int uerr = errno;
    if (full_map) {
      close(mapper.go);
      waitpid(mapper.pid, NULL, 0);
    }
    return lbx_failf(f, 125, "box %s: entering new namespaces: %s%s", name, strerror(uerr),
                     uerr == EPERM && rootless ? " (are user namespaces disabled?)" : "");
  }
  if (full_map && idmapper_finish(&mapper) < 0)
    return lbx_failf(f, 125,
                     "box %s: newuidmap/newgidmap could not map the ranges of /etc/subuid and "
                     "/etc/subgid for uid %u",
                     name, (unsigned)uid);
  if (rootless && !full_map) {
    char map[64], gmap[64];
    snprintf(map, sizeof map, "%u %u 1\n", keep_id ? (unsigned)uid : 0, (unsigned)uid);
    snprintf(gmap, sizeof gmap, "%u %u 1\n", keep_id ? (unsigned)gid : 0, (unsigned)gid);
    int r;
    if ((r = write_map("/proc/self/setgroups", "deny")) < 0 ||
        (r = write_map("/proc/self/uid_map", map)) < 0 ||
        (r = write_map("/proc/self/gid_map", gmap)) < 0)
      return lbx_failf(f, 125, "box %s: mapping uid %u into the box: %s", name, (unsigned)uid,
                       strerror(-r));
  }
  /* Slave, as bubblewrap does: the box's mounts never reach the host, and
   * the host's unmounts reach this copy. Private, the copy kept every host
   * mount that existed at start alive for the box's whole life (another
   * lazybox mount's daemon stayed after its umount, and whatever held its
   * pipes waited with it). A host whose / is private propagates nothing
   * either way. */
  if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0)
    return lbx_failf(f, 125, "box %s: a mount tree of its own: %s", name, strerror(errno));
  *single_id = rootless && !full_map;
  return 0;
}

int
lbx_box_root_mount(const char *name, const char *id, const char *store_root, const char *chain_id,
                   const char *box_dir, bool debug, lbx_boxfs **out, lbx_fail *f)
{
  _cleanup_free_ char *root = lbx_xasprintf("%s/root", box_dir);
  _cleanup_free_ char *upper = lbx_xasprintf("%s/upper", box_dir);
  _cleanup_free_ char *work = lbx_xasprintf("%s/work", box_dir);
  if (mkdir(root, 0700) < 0 && errno != EEXIST)
    return lbx_failf(f, 125, "box %s: %s: %s", name, root, strerror(errno));
  lbx_boxfs_opts bo = {
      .store_root = store_root,
      .chain_id = chain_id,
      .fsname = id,
      .mountpoint = root,
      .upper = upper,
      .work = work,
      /* the box's users are not the mounting user: the kernel lets them in
       * (the mount is in our own namespaces, nobody else sees it) */
      .allow_other = true,
      .debug = debug,
  };
  lbx_err *e = NULL;
  if (lbx_boxfs_mount(&bo, out, &e) < 0) {
    lbx_failf(f, 125, "box %s: %s", name, e->msg);
    lbx_error_free(e);
    return -1;
  }
  return 0;
}

void *
lbx_box_serve_main(void *arg)
{
  lbx_err *e = NULL;
  if (lbx_boxfs_serve(arg, &e) < 0)
    lbx_error_free(e);
  return NULL;
}

void
lbx_box_stop_fs(lbx_boxfs *fs, pthread_t th)
{
  lbx_boxfs_unmount(fs);
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += 2;
  /* a process still holding the box's mount namespace (an exec on its
   * way out) keeps the connection: then the threads end with us */
  if (pthread_timedjoin_np(th, NULL, &until) == 0)
    lbx_boxfs_free(fs);
}

struct pump {
  int fd;
  enum lbx_log_stream stream;
  int to; /* the caller's fd, -1 when detached */
};

/* Copies what a box stream has into the log and to the caller;
 * false at its end. */
static bool
pump_once(struct pump *p, lbx_logw *log)
{
  char buf[65536];
  ssize_t n = read(p->fd, buf, sizeof buf);
  if (n < 0 && (errno == EINTR || errno == EAGAIN))
    return true;
  if (n <= 0)
    return false;
  lbx_logw_write(log, p->stream, buf, (size_t)n);
  if (p->to >= 0 && lbx_write_all(p->to, buf, (size_t)n) < 0)
    p->to = -1; /* a caller that went away does not stop the box */
  return true;
}

static int
status_code(int status)
{
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* what an attached caller passes on through lbx_supervise_relay */
static bool
relayed(int sig)
{
  return sig == SIGINT || sig == SIGQUIT || sig == SIGTERM || sig == SIGHUP;
}

/* Runs until the box's pid 1 has ended and its output is drained. */
static int
supervise_loop(const lbx_launch *l, pid_t pid, int sfd, struct pump *streams, size_t nstreams,
               int master, lbx_logw *log)
{
  int code = -1;
  bool stdin_open = master >= 0 && l->interactive && l->attach;
  for (;;) {
    struct pollfd pf[4];
    size_t n = 0;
    pf[n++] = (struct pollfd){sfd, POLLIN, 0};
    for (size_t i = 0; i < nstreams; i++)
      if (streams[i].fd >= 0)
        pf[n++] = (struct pollfd){streams[i].fd, POLLIN, 0};
    if (stdin_open)
      pf[n++] = (struct pollfd){0, POLLIN, 0};
    bool any_stream = false;
    for (size_t i = 0; i < nstreams; i++)
      any_stream |= streams[i].fd >= 0;
    if (code >= 0 && !any_stream)
      break;
    /* once pid 1 is gone the pid namespace is torn down and the streams
     * end; a second is plenty, and nothing may keep the supervisor */
    int r = poll(pf, n, code >= 0 ? 1000 : -1);
    if (r == 0)
      break;
    if (r < 0)
      continue;
    size_t k = 0;
    if (pf[k++].revents & POLLIN) {
      struct signalfd_siginfo si;
      while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
        if (si.ssi_signo == SIGCHLD) {
          int status;
          if (code < 0 && waitpid(pid, &status, WNOHANG) == pid)
            code = status_code(status);
        } else if (si.ssi_signo == SIGWINCH) {
          if (master >= 0)
            lbx_copy_winsize(0, master);
        } else if (code < 0) {
          int sig = (int)si.ssi_signo;
          if (sig == SIGRTMIN)
            sig = relayed(si.ssi_int) ? si.ssi_int : 0;
          else if (l->attach && relayed(sig) && getppid() == l->caller)
            sig = 0; /* the caller got it too, and relays it (if it is
                      * still there: a killed one relays nothing) */
          if (sig)
            kill(pid, sig);
        }
      }
    }
    for (size_t i = 0; i < nstreams; i++) {
      if (streams[i].fd < 0)
        continue;
      if ((pf[k++].revents & (POLLIN | POLLHUP | POLLERR)) && !pump_once(&streams[i], log)) {
        if (streams[i].fd != master)
          close(streams[i].fd);
        streams[i].fd = -1;
      }
    }
    if (stdin_open && (pf[k].revents & (POLLIN | POLLHUP | POLLERR))) {
      char buf[4096];
      ssize_t got = read(0, buf, sizeof buf);
      if (got <= 0 || lbx_write_all(master, buf, (size_t)got) < 0)
        stdin_open = false;
    }
  }
  if (code < 0) {
    int status;
    code = waitpid(pid, &status, 0) == pid ? status_code(status) : 125;
  }
  return code;
}

int
lbx_supervise_relay(pid_t supervisor, int sig)
{
  return sigqueue(supervisor, SIGRTMIN, (union sigval){.sival_int = sig}) < 0 ? -errno : 0;
}

int
lbx_supervise(const lbx_launch *l, int ready_fd, const lbx_launch_cbs *cbs)
{
  lbx_fail f = {0};
  lbx_err *e = NULL;
  _cleanup_free_ char *logpath = lbx_xasprintf("%s/ctr.log", l->box_dir);
  lbx_logw *log = NULL;
  /* the log's lock doubles as "this box runs": a second start stops here,
   * before it rewrites the /etc files the first one's box is mounting */
  if (lbx_logw_open(logpath, &log, &e) < 0) {
    if (e->code == EBUSY)
      lbx_failf(&f, 125, "box %s is already running", l->name);
    else
      lbx_failf(&f, 125, "box %s: %s", l->name, e->msg);
    report(ready_fd, f.code, f.msg);
    lbx_error_free(e);
    return 125;
  }
  if (cbs && cbs->owned)
    cbs->owned(cbs->ctx);
  if (box_files(l, &f) < 0)
    return report(ready_fd, f.code, f.msg), f.code;
  int errp[2], outp[2] = {-1, -1}, errout[2] = {-1, -1}, sock[2] = {-1, -1};
  if (pipe2(errp, O_CLOEXEC) < 0 ||
      (l->tty ? socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sock)
              : (pipe2(outp, O_CLOEXEC) | pipe2(errout, O_CLOEXEC))) < 0) {
    report(ready_fd, 125, "pipes for the box's output: out of file descriptors");
    return 125;
  }

  bool single_id = false;
  if (lbx_box_ns_enter(l->name,
                       l->net_none ? CLONE_NEWNET | CLONE_NEWUTS | CLONE_NEWIPC
                                   : CLONE_NEWUTS | CLONE_NEWIPC,
                       l->keep_id, &single_id, &f) < 0)
    return report(ready_fd, f.code, f.msg), f.code;
  _cleanup_free_ char *root = lbx_xasprintf("%s/root", l->box_dir);
  lbx_boxfs *fs = NULL;
  if (lbx_box_root_mount(l->name, l->id, l->store_root, l->chain_id, l->box_dir, l->debug, &fs,
                         &f) < 0)
    return report(ready_fd, f.code, f.msg), f.code;

  sigset_t set, old;
  sigemptyset(&set);
  int sigs[] = {SIGCHLD, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH};
  for (size_t i = 0; i < LBX_ARRAY_SIZE(sigs); i++)
    sigaddset(&set, sigs[i]);
  sigaddset(&set, SIGRTMIN); /* lbx_supervise_relay */
  sigprocmask(SIG_BLOCK, &set, &old);
  signal(SIGPIPE, SIG_IGN);
  int alive[2];
  if (pipe2(alive, O_CLOEXEC) < 0) {
    lbx_boxfs_unmount(fs);
    report(ready_fd, 125, "a pipe for the box: out of file descriptors");
    return 125;
  }
  struct child_fds cf = {alive[0], errp[1], sock[1], outp[1], errout[1]};
  pid_t me = getpid();
  /* like fork(2) (single-threaded here, so glibc's fork handlers have
   * nothing to do), but the child is pid 1 of a new pid namespace */
  pid_t pid = (pid_t)syscall(SYS_clone, CLONE_NEWPID | SIGCHLD, NULL, NULL, NULL, NULL);
  if (pid < 0) {
    lbx_failf(&f, 125, "box %s: fork: %s", l->name, strerror(errno));
    return report(ready_fd, f.code, f.msg), f.code;
  }
  if (pid == 0)
    box_main(l, root, &cf, me, single_id);
  close(errp[1]);
  close(alive[0]); /* alive[1] stays open until the supervisor ends */
  if (l->tty)
    close(sock[1]);
  else {
    close(outp[1]);
    close(errout[1]);
  }
  int sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
  pthread_t th;
  if (pthread_create(&th, NULL, lbx_box_serve_main, fs) != 0) {
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    lbx_boxfs_unmount(fs);
    report(ready_fd, 125, "starting the file system's threads failed");
    return 125;
  }

  /* the box's process reports a failure, or closes the pipe by exec */
  char msg[700];
  ssize_t got = lbx_read_all(errp[0], msg, sizeof msg - 1);
  close(errp[0]);
  if (got > 0) {
    msg[got] = '\0';
    int code = atoi(msg);
    const char *text = strchr(msg, ' ');
    waitpid(pid, NULL, 0);
    report(ready_fd, code ? code : 125, text ? text + 1 : msg);
    lbx_box_stop_fs(fs, th);
    lbx_logw_close(log);
    return code ? code : 125;
  }
  int master = -1;
  struct pump streams[2];
  size_t nstreams = 0;
  if (l->tty) {
    master = recv_fd(sock[0]);
    close(sock[0]);
    if (master >= 0) {
      if (l->attach)
        lbx_copy_winsize(0, master);
      streams[nstreams++] = (struct pump){master, LBX_STDOUT, l->attach ? 1 : -1};
    }
  } else {
    streams[nstreams++] = (struct pump){outp[0], LBX_STDOUT, l->attach ? 1 : -1};
    streams[nstreams++] = (struct pump){errout[0], LBX_STDERR, l->attach ? 2 : -1};
  }
  if (cbs && cbs->started)
    cbs->started(cbs->ctx, pid, lbx_pid_start(pid));
  report(ready_fd, 0, "");
  if (ready_fd >= 0)
    close(ready_fd);

  int code = supervise_loop(l, pid, sfd, streams, nstreams, master, log);
  if (master >= 0)
    close(master);
  /* unmounted here, so that what follows (--rm) sees the upper dir and
   * never walks into the box's root */
  lbx_box_stop_fs(fs, th);
  /* recorded before the log's lock goes: whoever waits on the lock
   * (wait, stop, ps) then reads the exit code */
  if (cbs && cbs->exited)
    cbs->exited(cbs->ctx, code);
  lbx_logw_close(log);
  /* the FUSE threads and the mount end with this process and its
   * namespaces; the caller _exits */
  return code;
}
