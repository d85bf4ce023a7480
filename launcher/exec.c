/* The last steps of every box process (the first one and those `exec`
 * adds), and `exec` itself: join a running box's namespaces and root
 * through /proc/<its pid 1>, with no FUSE, image or SQL work. */
#include "io.h"
#include "launch-internal.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

int
lbx_open_pty(int *master, int *slave)
{
  int m = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (m < 0)
    return -errno;
  int unlock = 0;
  if (ioctl(m, TIOCSPTLCK, &unlock) < 0) {
    int r = -errno;
    close(m);
    return r;
  }
  /* the peer by fd, not by a /dev/pts path another mount could shadow */
  int s = ioctl(m, TIOCGPTPEER, O_RDWR | O_NOCTTY);
  if (s < 0) {
    int r = -errno;
    close(m);
    return r;
  }
  *master = m;
  *slave = s;
  return 0;
}

void
lbx_copy_winsize(int from_tty, int to_pty)
{
  struct winsize ws;
  if (ioctl(from_tty, TIOCGWINSZ, &ws) == 0)
    ioctl(to_pty, TIOCSWINSZ, &ws);
}

/* Podman's default capability set for a box's root. */
static const int default_caps[] = {
    CAP_CHOWN,   CAP_DAC_OVERRIDE, CAP_FOWNER,  CAP_FSETID, CAP_KILL,       CAP_NET_BIND_SERVICE,
    CAP_SETFCAP, CAP_SETGID,       CAP_SETPCAP, CAP_SETUID, CAP_SYS_CHROOT,
};

static int
limit_caps(lbx_fail *f)
{
  uint64_t keep = 0;
  for (size_t i = 0; i < LBX_ARRAY_SIZE(default_caps); i++)
    keep |= 1ULL << default_caps[i];
  for (int cap = 0; cap <= 63; cap++) {
    if (keep & (1ULL << cap))
      continue;
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno == EINVAL)
      break; /* past the kernel's last capability */
  }
  struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct d[2];
  memset(d, 0, sizeof d);
  if (syscall(SYS_capget, &h, d) < 0)
    return lbx_failf(f, 125, "capget: %s", strerror(errno));
  for (int k = 0; k < 2; k++) {
    uint32_t mask = (uint32_t)(keep >> (32 * k));
    d[k].effective &= mask;
    d[k].permitted &= mask;
    d[k].inheritable &= mask;
  }
  if (syscall(SYS_capset, &h, d) < 0)
    return lbx_failf(f, 125, "capset: %s", strerror(errno));
  return 0;
}

static char **
env_with(char **env, const char *key, const char *value)
{
  size_t klen = strlen(key), n = 0;
  for (; env && env[n]; n++)
    if (strncmp(env[n], key, klen) == 0 && env[n][klen] == '=')
      return env;
  char **v = lbx_xcalloc(n + 2, sizeof *v);
  for (size_t i = 0; i < n; i++)
    v[i] = env[i];
  v[n] = lbx_xasprintf("%s=%s", key, value);
  return v;
}

/* A "root" that is itself in a user namespace an unprivileged process
 * made (unshare -r) may not call setgroups(2) at all: it keeps the groups
 * it has, as the single-id box does. */
static bool
setgroups_denied(void)
{
  char buf[16] = "";
  _cleanup_close_ int fd = open("/proc/self/setgroups", O_RDONLY | O_CLOEXEC);
  return fd >= 0 && read(fd, buf, sizeof buf - 1) > 0 && strncmp(buf, "deny", 4) == 0;
}

void
lbx_become_and_exec(char **argv, char **env, const char *user, const char *workdir,
                    bool make_workdir, bool tty, bool no_new_privs, bool single_id, lbx_fail *f)
{
  lbx_user u;
  char msg[300];
  if (lbx_user_resolve(user, &u, msg, sizeof msg) < 0) {
    lbx_failf(f, 125, "%s", msg);
    return;
  }
  /* in the box's user namespace, getuid() is the caller's id there: 0, or
   * its own with --userns keep-id */
  if (single_id && (u.uid != getuid() || u.gid != getgid())) {
    lbx_failf(f, 125,
              "user %s (uid %u, gid %u): a rootless box without an /etc/subuid range has only "
              "uid %u (the caller's)",
              user, (unsigned)u.uid, (unsigned)u.gid, (unsigned)getuid());
    return;
  }
  char hostname[256] = "";
  gethostname(hostname, sizeof hostname - 1);
  env = env_with(env, "PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
  env = env_with(env, "HOME", u.home);
  env = env_with(env, "HOSTNAME", hostname);
  env = env_with(env, "container", "lazybox");
  if (tty)
    env = env_with(env, "TERM", "xterm");
  const char *wd = workdir && *workdir ? workdir : "/";
  if (*wd != '/') {
    lbx_failf(f, 125, "workdir %s: not an absolute path", wd);
    return;
  }
  /* run makes a missing workdir, as Podman does; exec does not (a typo in
   * exec -w would otherwise change the box) */
  if (make_workdir)
    lbx_mkdir_p(wd, 0755);
  if (limit_caps(f) < 0)
    return;
  /* single_id: setgroups(2) is denied in a user namespace whose gid map
   * an unprivileged process wrote; the box has no other group anyway */
  if (!single_id && setgroups(u.ngroups, u.groups) < 0 && !(errno == EPERM && setgroups_denied())) {
    lbx_failf(f, 125, "setgroups: %s", strerror(errno));
    return;
  }
  if (setresgid(u.gid, u.gid, u.gid) < 0 || setresuid(u.uid, u.uid, u.uid) < 0) {
    lbx_failf(f, 125, "user %s: %s", user,
              errno == EINVAL ? "its uid or gid has no mapping in this user namespace"
                              : strerror(errno));
    return;
  }
  /* a change of credentials clears the parent-death signal: armed again */
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (chdir(wd) < 0) {
    /* 127 for a missing one, as Podman reports it (its runtime's code) */
    lbx_failf(f, errno == ENOENT ? 127 : 125, "workdir %s: %s", wd, strerror(errno));
    return;
  }
  if (no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
    lbx_failf(f, 125, "no_new_privs: %s", strerror(errno));
    return;
  }
  /* nothing of the caller's (a test runner's fd 3, a host dir) gets in */
  close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
  environ = env;
  execvp(argv[0], argv);
  int e = errno;
  if (e == ENOENT && !strchr(argv[0], '/'))
    lbx_failf(f, 127, "%s: executable file not found in $PATH", argv[0]);
  else if (e == ENOENT)
    lbx_failf(f, 127, "%s: no such file or directory", argv[0]);
  else
    lbx_failf(f, 126, "%s: %s", argv[0], strerror(e));
}

/* ---- exec ---- */

static const char *const ns_names[] = {"user", "ipc", "uts", "net", "pid", "mnt"};

static bool
same_ns(pid_t pid, const char *ns)
{
  char a[64], b[64];
  struct stat sa, sb;
  snprintf(a, sizeof a, "/proc/self/ns/%s", ns);
  snprintf(b, sizeof b, "/proc/%d/ns/%s", (int)pid, ns);
  return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_ino == sb.st_ino && sa.st_dev == sb.st_dev;
}

static int
pump_tty(pid_t child, int master, int sfd, bool interactive)
{
  bool in_open = interactive;
  int code = -1;
  for (;;) {
    struct pollfd pf[3] = {{sfd, POLLIN, 0}, {master, POLLIN, 0}, {0, POLLIN, 0}};
    int n = poll(pf, in_open ? 3 : 2, code >= 0 ? 200 : -1);
    if (n == 0)
      break;
    if (n < 0)
      continue;
    if (pf[0].revents & POLLIN) {
      struct signalfd_siginfo si;
      while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
        int status;
        if (si.ssi_signo == SIGCHLD) {
          if (code < 0 && waitpid(child, &status, WNOHANG) == child)
            code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        } else if (si.ssi_signo == SIGWINCH) {
          lbx_copy_winsize(0, master);
        } else if (code < 0) {
          kill(child, (int)si.ssi_signo);
        }
      }
    }
    if (pf[1].revents & (POLLIN | POLLHUP | POLLERR)) {
      char buf[65536];
      ssize_t got = read(master, buf, sizeof buf);
      if (got <= 0) {
        if (code >= 0)
          break;
        /* the command closed its terminal but runs on */
        pf[1].fd = -1;
      } else if (lbx_write_all(1, buf, (size_t)got) < 0) {
        /* the caller's terminal is gone; the command goes on */
      }
    }
    if (in_open && (pf[2].revents & (POLLIN | POLLHUP | POLLERR))) {
      char buf[4096];
      ssize_t got = read(0, buf, sizeof buf);
      if (got <= 0 || lbx_write_all(master, buf, (size_t)got) < 0)
        in_open = false;
    }
  }
  if (code < 0) {
    int status;
    code = waitpid(child, &status, 0) == child
               ? (WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status))
               : 125;
  }
  return code;
}

int
lbx_exec_in(const lbx_exec *x, lbx_err **err)
{
  /* a pidfd first, checked against the recorded start time, and alive
   * still after every /proc/<pid> file is open: those files are then the
   * box's, never a process that reused its pid */
  _cleanup_close_ int pfd = pidfd_open(x->pid, 0);
  if (pfd < 0 || lbx_pid_start(x->pid) != x->pid_start)
    return lbx_error(err, ESRCH, "the box's first process (pid %d) is gone", (int)x->pid);
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/root", (int)x->pid);
  _cleanup_close_ int rootfd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0)
    return lbx_error_errno(err, errno, "the box's root (%s)", path);
  int fds[LBX_ARRAY_SIZE(ns_names)];
  /* a box of another user namespace with one line in its uid map has
   * only root (no subordinate range) */
  bool single_id = false;
  if (!same_ns(x->pid, "user")) {
    snprintf(path, sizeof path, "/proc/%d/uid_map", (int)x->pid);
    _cleanup_free_ char *map = NULL;
    size_t len = 0;
    single_id =
        lbx_read_file(path, 4096, &map, &len) < 0 || memchr(map, '\n', len) == map + len - 1;
  }
  for (size_t i = 0; i < LBX_ARRAY_SIZE(ns_names); i++) {
    fds[i] = -1;
    if (same_ns(x->pid, ns_names[i]))
      continue;
    snprintf(path, sizeof path, "/proc/%d/ns/%s", (int)x->pid, ns_names[i]);
    if ((fds[i] = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
      int e = errno;
      for (size_t k = 0; k < i; k++)
        if (fds[k] >= 0)
          close(fds[k]);
      return lbx_error_errno(err, e, "the box's %s namespace (%s)", ns_names[i], path);
    }
  }
  /* Until it execs, this process holds host fds (the caller's, /dev/null)
   * and, once in the box's namespaces, a box process could reach them
   * through /proc/<pid>/fd: not dumpable, it cannot (execve resets it). */
  prctl(PR_SET_DUMPABLE, 0);
  /* the host's /dev/null: the box's could be a fifo that blocks */
  _cleanup_close_ int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (pidfd_send_signal(pfd, 0, NULL, 0) < 0) {
    for (size_t i = 0; i < LBX_ARRAY_SIZE(ns_names); i++)
      if (fds[i] >= 0)
        close(fds[i]);
    return lbx_error(err, ESRCH, "the box's first process (pid %d) is gone", (int)x->pid);
  }
  /* the user namespace first: it grants the right to join the others */
  int r = 0;
  for (size_t i = 0; i < LBX_ARRAY_SIZE(ns_names); i++) {
    if (fds[i] >= 0 && r == 0 && setns(fds[i], 0) < 0)
      r = lbx_error_errno(err, errno, "joining the box's %s namespace", ns_names[i]);
    if (fds[i] >= 0)
      close(fds[i]);
  }
  if (r < 0)
    return -1;
  if (fchdir(rootfd) < 0 || chroot(".") < 0 || chdir("/") < 0)
    return lbx_error_errno(err, errno, "entering the box's root");

  int master = -1, slave = -1;
  if (x->tty && (r = lbx_open_pty(&master, &slave)) < 0)
    return lbx_error_errno(err, -r, "a pty in the box");
  int errp[2];
  if (pipe2(errp, O_CLOEXEC) < 0)
    return lbx_error_errno(err, errno, "pipe");
  sigset_t set, old;
  sigemptyset(&set);
  int sigs[] = {SIGCHLD, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGWINCH};
  for (size_t i = 0; i < LBX_ARRAY_SIZE(sigs); i++)
    sigaddset(&set, sigs[i]);
  sigprocmask(SIG_BLOCK, &set, &old);
  pid_t child = fork();
  if (child < 0)
    return lbx_error_errno(err, errno, "fork");
  if (child == 0) {
    sigprocmask(SIG_SETMASK, &old, NULL);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    lbx_fail f = {0};
    /* its own session: the caller's terminal is not its controlling one
     * (no TIOCSTI into the caller's shell); signals come through us */
    setsid();
    if (x->tty) {
      if (ioctl(slave, TIOCSCTTY, 0) < 0 || dup2(slave, 0) < 0 || dup2(slave, 1) < 0 ||
          dup2(slave, 2) < 0)
        lbx_failf(&f, 125, "the command's terminal: %s", strerror(errno));
    } else if (!x->interactive && devnull >= 0) {
      dup2(devnull, 0);
    }
    if (!f.code)
      lbx_become_and_exec(x->argv, x->env, x->user, x->workdir, false, x->tty, x->no_new_privs,
                          single_id, &f);
    char line[600];
    int n = snprintf(line, sizeof line, "%d %s", f.code, f.msg);
    if (write(errp[1], line, (size_t)n) < 0)
      _exit(f.code);
    _exit(f.code);
  }
  close(errp[1]);
  if (slave >= 0)
    close(slave);
  char msg[700];
  ssize_t got = lbx_read_all(errp[0], msg, sizeof msg - 1);
  close(errp[0]);
  if (got > 0) {
    msg[got] = '\0';
    int status;
    waitpid(child, &status, 0);
    const char *text = strchr(msg, ' ');
    int code = atoi(msg);
    /* the CLI turns these into Podman's exit codes 127, 126, 125 */
    lbx_error(err,
              code == 127   ? ENOENT
              : code == 126 ? EACCES
                            : EINVAL,
              "%s", text ? text + 1 : msg);
    return -1;
  }
  int code;
  if (x->tty) {
    int sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    struct termios saved;
    bool raw = x->interactive && lbx_term_raw(0, &saved) == 0;
    lbx_copy_winsize(0, master);
    code = pump_tty(child, master, sfd, x->interactive);
    if (raw)
      lbx_term_restore(0, &saved);
    close(sfd);
    close(master);
  } else {
    /* the command has its own session: ^C on the caller's terminal
     * reaches us, and is passed on with every other signal */
    int sfd = signalfd(-1, &set, SFD_CLOEXEC);
    code = -1;
    while (code < 0) {
      struct signalfd_siginfo si;
      int status;
      if (sfd < 0 || read(sfd, &si, sizeof si) != (ssize_t)sizeof si) {
        /* never spin: without the signal fd, just wait */
        if (waitpid(child, &status, 0) == child)
          code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        else if (errno != EINTR)
          code = 125;
        continue;
      }
      if (si.ssi_signo == SIGCHLD) {
        if (waitpid(child, &status, WNOHANG) == child)
          code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      } else if (si.ssi_signo != SIGWINCH) {
        kill(child, (int)si.ssi_signo);
      }
    }
    close(sfd);
  }
  return code;
}
