/* launcher/: runs a box. A supervisor process enters new user (rootless),
 * mount, pid, uts, ipc (and with net none, network) namespaces, serves the
 * box's root (fs/box.c) there, and forks the box's first process, which
 * makes a second mount namespace, pivot_roots into the FUSE mount and
 * execs. The supervisor pumps the box's output into its log (io.h) and to
 * an attached caller, forwards signals and reports the exit code.
 *
 * The launcher knows nothing of SQL: what it learns (the box's pid, its
 * exit) goes to the caller through callbacks, in the supervisor process. */
#ifndef LBX_LAUNCHER_H
#define LBX_LAUNCHER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "../store/error.h"

typedef enum { LBX_MNT_BIND, LBX_MNT_TMPFS } lbx_mnt_kind;

typedef struct lbx_mount_spec {
  lbx_mnt_kind kind;
  char *source; /* bind: an absolute host path */
  char *target; /* an absolute path in the box */
  bool ro;
} lbx_mount_spec;

typedef struct lbx_launch_cbs {
  void *ctx;
  /* this supervisor holds the box (its log's lock): no other start runs
   * it; before this, nothing of the box's was touched */
  void (*owned)(void *ctx);
  /* the box's process runs (exec'd or about to); pid as the host sees it */
  void (*started)(void *ctx, pid_t pid, uint64_t pid_start);
  /* the box's pid 1 ended with code (128+N after signal N) */
  void (*exited)(void *ctx, int code);
} lbx_launch_cbs;

typedef struct lbx_launch {
  const char *id, *name;
  const char *store_root, *chain_id;
  const char *box_dir; /* upper/, work/, ctr.log and the box's /etc files */
  char **argv;         /* NULL-terminated; argv[0] looked up in the box's PATH */
  char **env;          /* NULL-terminated KEY=VALUE */
  const char *workdir; /* absolute; made when missing */
  const char *user;    /* "", "name", "uid", "name:group", "uid:gid" */
  const char *hostname;
  bool tty;             /* a pty from the box's own devpts */
  bool interactive;     /* the supervisor's stdin goes to the box (attached: the
                         * caller's; detached: a pipe that stays open) */
  bool attach;          /* the box's output also goes to the caller */
  pid_t caller;         /* attached: the caller's pid (lbx_supervise_relay) */
  bool read_only;       /* the root is mounted read-only */
  bool read_only_tmpfs; /* with read_only: /run, /tmp and /var/tmp are
                         * tmpfs holding a copy of what the image has there
                         * (Podman's --read-only-tmpfs), where no mount is */
  bool no_new_privs;
  bool net_none; /* a network namespace with only lo */
  bool keep_id;  /* rootless: the caller keeps its uid and gid in the box */
  bool init;     /* pid 1 is a small init that runs the command (--init) */
  lbx_mount_spec *mounts;
  size_t nmounts;
  bool debug; /* the FUSE daemon logs each operation */
} lbx_launch;

/* The supervisor's body, in a process the caller forked for it (so it
 * is single-threaded, as unshare(CLONE_NEWUSER) requires). When the box's
 * process is running (or failed to start), a line goes to ready_fd, which
 * is then closed: "0" or "<exit code> <message>" (125: the launcher
 * failed, 126: the command cannot run, 127: no such command). Returns the
 * exit code for the supervisor to _exit with. */
int lbx_supervise(const lbx_launch *l, int ready_fd, const lbx_launch_cbs *cbs);
/* Passes sig (SIGINT, SIGQUIT, SIGTERM or SIGHUP) on to the box through
 * its supervisor, from the caller that forked it. An attached supervisor
 * drops those it gets itself (a terminal's ^C or hangup, a kill of the
 * group: the caller got them too), and takes them from here instead, as a
 * queued real-time signal: two SIGINTs pending at once would merge into
 * one that names only the first sender. Async-signal-safe. */
int lbx_supervise_relay(pid_t supervisor, int sig);

/* Start time of a process (clock ticks after boot), 0 if it is gone:
 * a pid and its start time name a process for good. */
uint64_t lbx_pid_start(pid_t pid);
/* Sends sig to the process pid only if it is still the one that started
 * at start (through a pidfd: a pid reused between the check and the
 * signal is never hit). 0, -ESRCH when it is gone, -errno. */
int lbx_signal_pid(pid_t pid, uint64_t start, int sig);

/* Runs argv inside a running box (pid: its pid 1 as the host sees it):
 * joins its namespaces and root, as user, in workdir, with env. Returns
 * the command's exit code, or -1 with *err. */
typedef struct lbx_exec {
  pid_t pid;
  uint64_t pid_start; /* lbx_pid_start() of pid when it was recorded */
  char **argv, **env;
  const char *workdir, *user;
  bool tty, interactive, no_new_privs;
} lbx_exec;
int lbx_exec_in(const lbx_exec *x, lbx_err **err);

/* user.c: -u/--user inside the box, from its /etc/passwd and /etc/group
 * (read after pivot_root, so the box's files, never the host's). */
typedef struct lbx_user {
  uid_t uid;
  gid_t gid;
  gid_t groups[64];
  size_t ngroups;
  char home[256];
} lbx_user;
int lbx_user_resolve(const char *spec, lbx_user *u, char *msg, size_t msglen);

#endif
