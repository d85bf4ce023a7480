/* launcher/copy.c: `lazybox cp`. A box's root as a directory fd, for a
 * running box (its pid 1's /proc/<pid>/root, from inside its user
 * namespace) or a stopped one (its root mounted and served for the time
 * of the copy, in namespaces of our own), and a copy engine that resolves
 * every path on the box's side inside that root: openat2(RESOLVE_IN_ROOT)
 * for the path the caller gave, then *at() calls that never follow a
 * symlink. Whatever the box's symlinks say, no host path is read or
 * written on the box's behalf. */
#ifndef LBX_COPY_H
#define LBX_COPY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "../store/error.h"

typedef struct lbx_box_root_opts {
  const char *name; /* for messages */
  const char *id;
  /* a running box (pid > 0): its pid 1 as the host sees it, and that
   * process's start time (lbx_pid_start), so a reused pid is never taken */
  pid_t pid;
  uint64_t pid_start;
  /* a stopped box: what mounting its root needs (as lbx_launch's) */
  const char *store_root, *chain_id, *box_dir;
} lbx_box_root_opts;

/* Runs fn in a child process that holds the box's root as rootfd (an
 * O_PATH directory fd); fn returns 0, or -1 with a one-line message in
 * msg. The caller must have no SQLite handle open (the child is forked)
 * and be single-threaded. Returns 0, or -1 with *err holding fn's message
 * or why the root could not be had. Prints nothing. */
typedef int (*lbx_box_root_fn)(void *ctx, int rootfd, char *msg, size_t msglen);
int lbx_box_root_run(const lbx_box_root_opts *o, lbx_box_root_fn fn, void *ctx, lbx_err **err);

/* Podman's cp rules: an existing destination directory receives the
 * source under its base name, else the destination is the new name (its
 * parent must exist); a source ending in "/." gives its contents. Trees
 * recursively; files, symlinks (never followed), fifos, device nodes
 * (where mknod is allowed); sockets are skipped; modes and times kept,
 * owners not (new files are the copying process's: the box's root going
 * in, the caller coming out). The host source path itself is followed if
 * it is a symlink. box names the box in messages:
 * "cp: /etc/nosuch in box web: No such file or directory". Call with
 * umask 0 (lbx_box_root_run's child has it). */
int lbx_copy_into_box(int rootfd, const char *box, const char *host_src, const char *box_dst,
                      char *msg, size_t len);
int lbx_copy_out_of_box(int rootfd, const char *box, const char *box_src, const char *host_dst,
                        char *msg, size_t len);

/* BOX_SRC out of the box as a tar stream on out (Podman's `cp BOX:PATH
 * -`): a directory under its base name, with everything below it; one
 * ending in "/." (or "/") as its contents; a file or symlink alone.
 * Owners as the box sees them, modes and times kept; sockets skipped.
 * Resolved as lbx_copy_out_of_box resolves. */
int lbx_copy_out_of_box_tar(int rootfd, const char *box, const char *box_src, int out, char *msg,
                            size_t len);

/* A tar stream read from in, unpacked into the box's directory BOX_DST
 * (Podman's `cp - BOX:PATH`): entries' paths taken below it (a leading "/"
 * dropped, ".." refused); a symlink on the way resolved inside the box's
 * root, so no entry reaches outside it; what is there is replaced,
 * directories merged (a link to one kept). Modes and times kept; owners
 * are the box's root's, as for lbx_copy_into_box; device nodes left out
 * where mknod is refused. */
int lbx_copy_tar_into_box(int rootfd, const char *box, int in, const char *box_dst, char *msg,
                          size_t len);

/* Copies what directory from holds into directory to, owners kept where
 * the user namespace maps them: a tmpfs mounted over a directory starts
 * with its contents (crun's tmpcopyup, for --read-only's /run and /tmp).
 * path names the directory in messages: "WHAT: PATH/x: why". */
int lbx_copy_dir_contents(int from, int to, const char *what, const char *path, char *msg,
                          size_t len);

#endif
