/* mount, umount: an image as a read-only directory, served by a daemon
 * process that stays behind after `mount` returns. */
#include "cli.h"
#include "fs.h"
#include "mounts.h"

#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>

extern char **environ;

struct mount_opts {
  bool allow_other, debug;
};

static int
mount_opt(void *ctx, int opt, char *arg)
{
  (void)arg;
  struct mount_opts *o = ctx;
  if (opt == 'A')
    o->allow_other = true;
  else if (opt == 'D')
    o->debug = true;
  return 0;
}

static int
list_mounts(lbx_cli *cli, lbx_err **err)
{
  lbx_mount_ent *m;
  size_t n;
  int r = lbx_mounts_list(cli->root, &m, &n);
  if (r < 0)
    return lbx_error_errno(err, -r, "reading /proc/self/mountinfo"), 125;
  lbx_store *s = n ? lbx_cli_store(cli, err) : NULL;
  if (n && !s) {
    lbx_mounts_free(m, n);
    return 125;
  }
  printf("%-12s  %-40s  %s\n", "ID", "NAME", "MOUNTPOINT");
  for (size_t i = 0; i < n; i++) {
    if (strncmp(m[i].image, "box:", 4) == 0) {
      lbx_box_row box = {0};
      bool known = lbx_store_box_find(s, m[i].image + 4, &box) > 0;
      printf("%-12.12s  %-40s  %s\n", m[i].image + 4, known ? box.name : "<removed box>", m[i].dir);
      lbx_box_row_clear(&box);
      continue;
    }
    lbx_image_row row = {0};
    const char *name = "<none>";
    if (lbx_store_image_get(s, m[i].image, &row, NULL, NULL, NULL) == 0 && row.names &&
        row.names[0])
      name = row.names[0];
    printf("%-12.12s  %-40s  %s\n", m[i].image, name, m[i].dir);
    lbx_image_row_clear(&row);
  }
  lbx_mounts_free(m, n);
  return 0;
}

/* The default mount point: base/<id12>, in a directory only we own. */
static char *
default_mountpoint(const char *id, lbx_err **err)
{
  _cleanup_free_ char *base = lbx_mounts_base();
  int r = lbx_mkdir_p(base, 0700);
  if (r < 0) {
    lbx_error_errno(err, -r, "creating %s", base);
    return NULL;
  }
  /* the base may be under /tmp: refuse one somebody else made for us */
  struct stat st;
  if (lstat(base, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid()) {
    lbx_error(err, EPERM, "%s is not a directory owned by uid %u", base, (unsigned)geteuid());
    return NULL;
  }
  char *dir = lbx_xasprintf("%s/%.12s", base, id);
  if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
    lbx_error_errno(err, errno, "creating %s", dir);
    free(dir);
    return NULL;
  }
  return dir;
}

static void
to_devnull(void)
{
  int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (fd >= 0) {
    dup2(fd, 0);
    dup2(fd, 1);
    dup2(fd, 2);
    close(fd);
  }
}

/* The daemon of either kind: an image (read-only) or a box (read-write). */
struct daemon {
  bool box;
  lbx_fs_opts fo;
  lbx_boxfs_opts bo;
  lbx_fs *fs;
  lbx_boxfs *b;
};

static int
daemon_mount(struct daemon *d, lbx_err **err)
{
  return d->box ? lbx_boxfs_mount(&d->bo, &d->b, err) : lbx_fs_mount(&d->fo, &d->fs, err);
}

static int
daemon_serve(struct daemon *d, lbx_err **err)
{
  return d->box ? lbx_boxfs_serve(d->b, err) : lbx_fs_serve(d->fs, err);
}

static void
daemon_free(struct daemon *d)
{
  lbx_boxfs_free(d->b);
  lbx_fs_free(d->fs);
  d->b = NULL;
  d->fs = NULL;
}

static int
mount_run(lbx_cli *cli, int argc, char **argv, lbx_err **err)
{
  static const struct option opts[] = {
      {"allow-other", no_argument, NULL, 'A'}, {"debug", no_argument, NULL, 'D'}, {0}};
  struct mount_opts o = {0};
  int rc;
  int first = lbx_parse_opts(&lbx_mount_cmds[0], argc, argv, "", opts, mount_opt, &o, &rc, err);
  if (first < 0)
    return rc;
  if (first == argc)
    return list_mounts(cli, err);
  if (argc - first > 2)
    return lbx_error(err, EINVAL, "mount: expected IMAGE [DIR]"), 125;
  lbx_store *s = lbx_cli_store(cli, err);
  if (!s)
    return 125;
  /* a box by name or ID first (read-write), else an image (read-only) */
  struct daemon d = {0};
  _cleanup_(lbx_box_row_clear) lbx_box_row box = {0};
  int found = lbx_store_box_find(s, argv[first], &box);
  if (found == -EEXIST)
    return lbx_error(err, EEXIST, "mount: box ID \"%s\" is ambiguous", argv[first]), 125;
  d.box = found > 0;
  char id[LBX_DIGEST_HEX];
  _cleanup_(lbx_image_row_clear) lbx_image_row row = {0};
  if (d.box)
    snprintf(id, sizeof id, "%s", box.image);
  else if (lbx_image_resolve(s, argv[first], id, err) < 0)
    return 125;
  if (lbx_store_image_get(s, id, &row, NULL, NULL, err) < 0)
    return 125;
  _cleanup_free_ char *fsname =
      d.box ? lbx_xasprintf("box:%s", box.id) : lbx_mount_source(cli->root, id);
  bool by_default = argc - first == 1;
  _cleanup_free_ char *dir =
      by_default ? default_mountpoint(d.box ? box.id : id, err) : realpath(argv[first + 1], NULL);
  if (!dir) {
    if (!by_default)
      lbx_error_errno(err, errno, "mount point %s", argv[first + 1]);
    return 125;
  }
  /* mounted there already: say where, as `podman mount` does */
  lbx_mount_ent *m;
  size_t n;
  if (lbx_mounts_list(cli->root, &m, &n) == 0) {
    /* a box is served by one daemon at a time: its mount, wherever it is */
    const char *at = NULL;
    for (size_t i = 0; i < n && !at; i++)
      if (strcmp(m[i].dir, dir) == 0 || (d.box && strcmp(m[i].image, fsname) == 0))
        at = m[i].dir;
    if (at) {
      printf("%s\n", at);
      if (by_default && strcmp(at, dir) != 0)
        rmdir(dir);
      lbx_mounts_free(m, n);
      return 0;
    }
    lbx_mounts_free(m, n);
  }

  /* a running box's root is its supervisor's FUSE mount, inside the box's
   * own namespaces: no host path reaches it, and a second daemon over the
   * same upper dir would see changes behind the first one's back */
  if (d.box && lbx_cli_box_running(s, &box))
    return lbx_error(err, EBUSY,
                     "mount: box %s is running (its root is mounted in its own namespaces); "
                     "use exec or cp, or stop it first",
                     box.name),
           125;
  _cleanup_free_ char *bdir = d.box ? lbx_store_box_dir(s, box.id) : NULL;
  _cleanup_free_ char *upper = d.box ? lbx_xasprintf("%s/upper", bdir) : NULL;
  _cleanup_free_ char *work = d.box ? lbx_xasprintf("%s/work", bdir) : NULL;
  d.fo = (lbx_fs_opts){
      .store_root = cli->root,
      .chain_id = row.chain_id,
      .fsname = fsname,
      .mountpoint = dir,
      .total_bytes = row.size,
      .allow_other = o.allow_other,
      .debug = o.debug,
  };
  d.bo = (lbx_boxfs_opts){
      .store_root = cli->root,
      .chain_id = row.chain_id,
      .fsname = fsname,
      .mountpoint = dir,
      .upper = upper,
      .work = work,
      .allow_other = o.allow_other,
      .debug = o.debug,
      .map_root = geteuid() != 0,
  };
  /* the daemon opens its own read-only store: no SQLite handle crosses fork */
  lbx_store_close(cli->store);
  cli->store = NULL;

  if (o.debug) {
    /* foreground, every operation logged by libfuse on stderr */
    if (daemon_mount(&d, err) < 0)
      return 125;
    printf("%s\n", dir);
    fflush(stdout);
    rc = daemon_serve(&d, err) < 0 ? 125 : 0;
    daemon_free(&d);
    if (by_default)
      rmdir(dir);
    return rc;
  }

  int p[2];
  if (pipe2(p, O_CLOEXEC) < 0)
    return lbx_error_errno(err, errno, "pipe"), 125;
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0)
    return lbx_error_errno(err, errno, "fork"), 125;
  if (pid == 0) {
    close(p[0]);
    lbx_cli_close_inherited(p[1]);
    lbx_err *e = NULL;
    if (daemon_mount(&d, &e) < 0) {
      if (write(p[1], e->msg, strlen(e->msg)) < 0)
        _exit(2);
      _exit(1);
    }
    if (write(p[1], "", 1) < 0) {
      daemon_free(&d);
      _exit(1);
    }
    close(p[1]);
    /* the daemon: its own session, no terminal, nothing on stdio */
    setsid();
    if (chdir("/") < 0)
      _exit(1);
    to_devnull();
    signal(SIGHUP, SIG_IGN);
    int r = daemon_serve(&d, &e);
    daemon_free(&d);
    if (by_default)
      rmdir(dir);
    _exit(r < 0 ? 1 : 0);
  }
  close(p[1]);
  char msg[1024];
  ssize_t got = 0, r;
  /* a lone NUL says mounted: no need to wait for the daemon to close its
   * end; anything else is a message, read to its end */
  while ((r = read(p[0], msg + got, sizeof msg - 1 - (size_t)got)) > 0) {
    got += r;
    if (msg[0] == '\0')
      break;
  }
  close(p[0]);
  msg[got > 0 ? got : 0] = '\0';
  if (got == 0 || msg[0] != '\0') {
    int status;
    waitpid(pid, &status, 0);
    if (by_default)
      rmdir(dir);
    return lbx_error(err, EIO, "%s", got ? msg : "mount: the daemon died before mounting"), 125;
  }
  /* one round trip through the daemon: the mount answers before we return */
  struct stat st;
  if (stat(dir, &st) < 0)
    return lbx_error_errno(err, errno, "mount %s does not answer", dir), 125;
  printf("%s\n", dir);
  return 0;
}

/* a mount's source is an image ID or "box:<box ID>" */
static const char *
shown_id(const char *source)
{
  return strncmp(source, "box:", 4) == 0 ? source + 4 : source;
}

static int
unmount_dir(const char *dir, lbx_err **err)
{
  if (geteuid() == 0) {
    if (umount2(dir, 0) < 0)
      return lbx_error_errno(err, errno, "umount %s", dir);
  } else {
    char *argv[] = {(char *)"fusermount3", (char *)"-u", (char *)"-q", (char *)dir, NULL};
    pid_t pid;
    int r = posix_spawnp(&pid, "fusermount3", NULL, NULL, argv, environ);
    if (r != 0)
      return lbx_error_errno(err, r, "umount %s: running fusermount3", dir);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
      ;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
      return lbx_error(err, EBUSY, "umount %s: fusermount3 failed (is it in use?)", dir);
  }
  _cleanup_free_ char *base = lbx_mounts_base();
  size_t bl = strlen(base);
  if (strncmp(dir, base, bl) == 0 && dir[bl] == '/')
    rmdir(dir); /* our default mount point; the daemon may have removed it */
  return 0;
}

static int
umount_opt(void *ctx, int opt, char *arg)
{
  (void)arg;
  if (opt == 'a')
    *(bool *)ctx = true;
  return 0;
}

static int
umount_run(lbx_cli *cli, int argc, char **argv, lbx_err **err)
{
  static const struct option opts[] = {{"all", no_argument, NULL, 'a'}, {0}};
  bool all = false;
  int rc;
  int first = lbx_parse_opts(&lbx_mount_cmds[1], argc, argv, "a", opts, umount_opt, &all, &rc, err);
  if (first < 0)
    return rc;
  if (first == argc && !all)
    return lbx_error(err, EINVAL, "umount: name an image or a mount point, or use --all"), 125;
  lbx_mount_ent *m;
  size_t n;
  int r = lbx_mounts_list(cli->root, &m, &n);
  if (r < 0)
    return lbx_error_errno(err, -r, "reading /proc/self/mountinfo"), 125;
  rc = 0;
  for (size_t i = 0; i < n && all && rc == 0; i++) {
    if (unmount_dir(m[i].dir, err) < 0)
      rc = 125;
    else
      printf("%s\n", shown_id(m[i].image));
  }
  for (int a = first; a < argc && rc == 0; a++) {
    _cleanup_free_ char *real = realpath(argv[a], NULL);
    bool done = false;
    for (size_t i = 0; real && i < n && !done; i++) {
      if (strcmp(m[i].dir, real) == 0) {
        if (unmount_dir(m[i].dir, err) < 0)
          rc = 125;
        else
          printf("%s\n", shown_id(m[i].image));
        done = true;
      }
    }
    if (done)
      continue;
    /* a path, not a name: say so rather than parse it as an image */
    if (argv[a][0] == '/' || argv[a][0] == '.') {
      lbx_error(err, EINVAL, "umount: %s is not a lazybox mount%s", argv[a],
                real ? "" : " (no such directory)");
      rc = 125;
      break;
    }
    lbx_store *s = lbx_cli_store(cli, err);
    char id[LBX_DIGEST_HEX + 4];
    lbx_box_row box = {0};
    if (s && lbx_store_box_find(s, argv[a], &box) > 0) {
      snprintf(id, sizeof id, "box:%s", box.id);
      lbx_box_row_clear(&box);
    } else if (!s || lbx_image_resolve(s, argv[a], id, err) < 0) {
      rc = 125;
      break;
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
      if (strcmp(m[i].image, id) != 0)
        continue;
      if (unmount_dir(m[i].dir, err) < 0)
        rc = 125;
      done = true;
    }
    if (rc == 0 && !done) {
      lbx_error(err, ENOENT, "umount: %s is not mounted", argv[a]);
      rc = 125;
    } else if (rc == 0)
      printf("%s\n", strncmp(id, "box:", 4) == 0 ? id + 4 : id);
  }
  lbx_mounts_free(m, n);
  return rc;
}

const lbx_cmd lbx_mount_cmds[] = {
    {"mount", mount_run, "Mount a box (read-write) or an image (read-only), or list mounts",
     "Usage: lazybox mount [OPTIONS] [BOX|IMAGE [DIR]]\n"
     "\n"
     "Show a box's root read-write (its image under its own upper dir), or an\n"
     "IMAGE read-only, as a directory and print where. A name is looked up as a\n"
     "box first. Without DIR the mount point is $XDG_RUNTIME_DIR/lazybox/mounts/<ID>\n"
     "(/run/lazybox/mounts as root). No root needed: a daemon process serves the\n"
     "mount until `lazybox umount`; only the mounting user sees it, and in a\n"
     "rootless box mount the box's root user shows as that user. Without an\n"
     "argument, list the mounts.\n"
     "\n"
     "Options:\n"
     "      --allow-other   let other users see the mount (needs user_allow_other\n"
     "                      in /etc/fuse.conf when not root)\n"
     "      --debug         stay in the foreground and log every FUSE operation\n"},
    {"umount", umount_run, "Unmount boxes and images",
     "Usage: lazybox umount [OPTIONS] BOX|IMAGE|DIR [BOX|IMAGE|DIR...]\n"
     "\n"
     "Unmount a box's or an image's mounts, or the mount at DIR; prints the ID.\n"
     "`lazybox unmount` is the same command.\n"
     "\n"
     "Options:\n"
     "  -a, --all   unmount every lazybox mount\n"},
    {0},
};
