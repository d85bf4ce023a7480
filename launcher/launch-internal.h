/* What launch.c (the supervisor and the box's first process) and exec.c
 * (a process joining a running box) share. */
#ifndef LBX_LAUNCH_INTERNAL_H
#define LBX_LAUNCH_INTERNAL_H

#include "fs.h"
#include "launcher.h"

#include <pthread.h>
#include <stddef.h>

/* A failure inside a box process before exec: code and message. */
typedef struct lbx_fail {
  int code; /* 125, 126, 127 */
  char msg[512];
} lbx_fail;
int lbx_failf(lbx_fail *f, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Enters new user (when not root) and mount namespaces plus flags
 * (CLONE_NEW*), maps the caller to 0, or to itself with keep_id (and its
 * /etc/subuid, /etc/subgid ranges when newuidmap/newgidmap can), makes
 * the mount tree private. *single_id: the namespace has only the caller
 * (no range). */
int lbx_box_ns_enter(const char *name, int flags, bool keep_id, bool *single_id,
                     struct lbx_fail *f);
/* Mounts the box's root at <box_dir>/root (in the current namespaces). */
int lbx_box_root_mount(const char *name, const char *id, const char *store_root,
                       const char *chain_id, const char *box_dir, bool debug, lbx_boxfs **out,
                       struct lbx_fail *f);
/* A pthread body serving the box's root; and the end of it: unmount,
 * join (2 s at most), free. */
void *lbx_box_serve_main(void *fs);
void lbx_box_stop_fs(lbx_boxfs *fs, pthread_t th);

/* In the box, after its root is in place: takes on user (ids, groups,
 * Podman's default capabilities), adds the default environment (PATH,
 * HOME, HOSTNAME, TERM with a tty), enters workdir, and execs argv with
 * every other fd closed. Returns only on failure. */
void lbx_become_and_exec(char **argv, char **env, const char *user, const char *workdir,
                         bool make_workdir, bool tty, bool no_new_privs, bool single_id,
                         lbx_fail *f);

/* A pty pair from the devpts instance of the current mount namespace. */
int lbx_open_pty(int *master, int *slave);

/* Pumps a pty master and the caller's terminal until the master hangs up
 * or child_done() says so; keeps the window size in step (SIGWINCH must be
 * blocked and in sigfd's set). */
void lbx_copy_winsize(int from_tty, int to_pty);

#endif
