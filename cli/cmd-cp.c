/* lazybox cp: files in and out of a box, running or not. The work is
 * launcher/copy.c's, in a child that holds the box's root; here: which
 * side is the box, which box, and what the child needs of the store (read
 * before the store is closed for the fork). */
#include "cli.h"
#include "copy.h"
#include "launcher.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct cp_job {
  const char *box, *src, *dst;
  bool into;
  bool tar; /* SRC or DEST "-": a tar stream on standard input or output */
};

static int
cp_in_child(void *ctx, int rootfd, char *msg, size_t len)
{
  struct cp_job *j = ctx;
  if (j->tar)
    return j->into ? lbx_copy_tar_into_box(rootfd, j->box, 0, j->dst, msg, len)
                   : lbx_copy_out_of_box_tar(rootfd, j->box, j->src, 1, msg, len);
  return j->into ? lbx_copy_into_box(rootfd, j->box, j->src, j->dst, msg, len)
                 : lbx_copy_out_of_box(rootfd, j->box, j->src, j->dst, msg, len);
}

/* "BOX:PATH" names a path in a box; anything starting with "/" or "."
 * (or without ':') is the host's, so a host path holding ':' is given as
 * ./a:b or /abs/a:b. Returns the box part (allocated), NULL for a host
 * path; *path points into arg. */
static char *
box_part(const char *arg, const char **path)
{
  *path = arg;
  const char *colon = strchr(arg, ':');
  if (arg[0] == '/' || arg[0] == '.' || !colon)
    return NULL;
  *path = colon + 1;
  return lbx_xstrndup(arg, (size_t)(colon - arg));
}

static int
cp_run(lbx_cli *cli, int argc, char **argv, lbx_err **err)
{
  static const struct option opts[] = {{0}};
  int rc;
  int first = lbx_parse_opts(&lbx_cp_cmds[0], argc, argv, "", opts, lbx_no_opt, NULL, &rc, err);
  if (first < 0)
    return rc;
  if (argc - first != 2)
    return lbx_error(err, EINVAL,
                     "cp: expected SRC and DEST, one of them BOX:PATH "
                     "(see 'lazybox cp --help')"),
           125;
  const char *spath, *dpath;
  _cleanup_free_ char *sbox = box_part(argv[first], &spath);
  _cleanup_free_ char *dbox = box_part(argv[first + 1], &dpath);
  if (sbox && dbox)
    return lbx_error(err, EINVAL, "cp: copying between boxes is not supported"), 125;
  if (!sbox && !dbox)
    return lbx_error(err, EINVAL,
                     "cp: one of SRC and DEST must be BOX:PATH (a host path holding ':' "
                     "starts with / or ./)"),
           125;
  const char *key = sbox ? sbox : dbox;
  if (!*key)
    return lbx_error(err, EINVAL, "cp: %s: name a box before ':'",
                     sbox ? argv[first] : argv[first + 1]),
           125;
  bool tar_in = !sbox && strcmp(spath, "-") == 0,
       tar = tar_in || (!dbox && strcmp(dpath, "-") == 0);
  if (tar_in && isatty(0))
    return lbx_error(err, EINVAL,
                     "cp: SRC \"-\" reads a tar archive, and standard input is a terminal: "
                     "redirect it"),
           125;
  if (tar && !tar_in && isatty(1))
    return lbx_error(err, EINVAL,
                     "cp: DEST \"-\" writes a tar archive, and standard output is a terminal: "
                     "redirect it"),
           125;
  if (!*spath || !*dpath)
    return lbx_error(err, EINVAL, "cp: %s: give a path", !*spath ? argv[first] : argv[first + 1]),
           125;

  lbx_store *s = lbx_cli_store(cli, err);
  if (!s)
    return 125;
  _cleanup_(lbx_box_row_clear) lbx_box_row box = {0};
  if (lbx_cli_box_find(s, key, &box, err) < 0)
    return lbx_error_prefix(err, "cp"), 125;
  bool running = lbx_cli_box_running(s, &box) && lbx_pid_start(box.pid) == box.pid_start;
  _cleanup_(lbx_image_row_clear) lbx_image_row image = {0};
  _cleanup_free_ char *dir = lbx_store_box_dir(s, box.id);
  if (!running && lbx_store_image_get(s, box.image, &image, NULL, NULL, err) < 0)
    return lbx_error_prefix(err, "cp: box %s", box.name), 125;
  lbx_box_root_opts o = {
      .name = box.name,
      .id = box.id,
      .pid = running ? box.pid : 0,
      .pid_start = running ? box.pid_start : 0,
      .store_root = cli->root,
      .chain_id = image.chain_id,
      .box_dir = dir,
  };
  struct cp_job job = {box.name, spath, dpath, dbox != NULL, tar};
  /* no SQLite state may cross fork (see start_box in cmd-run.c) */
  lbx_store_close(cli->store);
  cli->store = NULL;
  return lbx_box_root_run(&o, cp_in_child, &job, err) < 0 ? 125 : 0;
}

const lbx_cmd lbx_cp_cmds[] = {
    {"cp", cp_run, "Copy files and directories into or out of a box",
     "Usage: lazybox cp [OPTIONS] HOST_PATH|- BOX:BOX_PATH\n"
     "       lazybox cp [OPTIONS] BOX:BOX_PATH HOST_PATH|-\n"
     "\n"
     "Copy a file or a directory tree between the host and a box, running or\n"
     "stopped (BOX: a name, ID or ID prefix). Paths in the box are resolved\n"
     "inside its root: \"/\" and \"..\" stop there and the box's symlinks,\n"
     "absolute or not, point inside it, so no box can make cp read or write a\n"
     "host path; a relative BOX_PATH is taken from the box's root.\n"
     "\n"
     "When DEST is an existing directory, SRC is copied into it under its own\n"
     "name; otherwise DEST is the copy's name and its parent must exist. A SRC\n"
     "ending in \"/.\" copies the directory's contents. Directories are copied\n"
     "recursively with their files, symlinks (as symlinks, never followed),\n"
     "fifos and device nodes (when allowed); sockets are skipped. Modes and\n"
     "times are kept; owners are not: copies in belong to the box's root,\n"
     "copies out to the caller. A HOST_PATH that is a symlink is followed.\n"
     "A running box's /proc, /sys and other kernel file systems come out as\n"
     "empty directories.\n"
     "\n"
     "DEST \"-\" writes BOX_PATH to standard output as a tar archive (POSIX,\n"
     "pax where ustar falls short): a directory under its own name, one ending\n"
     "in \"/.\" as its contents; owners as the box sees them, modes and times\n"
     "kept. SRC \"-\" reads a tar archive (not compressed) from standard input\n"
     "and unpacks it into the directory BOX_PATH: a leading \"/\" in its names\n"
     "is dropped and \"..\" refused; a symlink on the way is followed as the box\n"
     "would, inside its root, so no entry reaches a host path; modes and times\n"
     "are kept, owners are the box's root; device nodes are left out where\n"
     "they cannot be made (rootless).\n"
     "\n"
     "An argument starting with \"/\" or \".\", or without ':', is a host path;\n"
     "name a host path holding ':' as ./a:b or /abs/a:b.\n"
     "\n"
     "Options:\n"
     "  -h, --help   show this help\n"},
    {0},
};
