/* Boxes that run: create, run, start, stop, kill, wait, exec. The box's
 * settings are kept as JSON in its row at create time; start merges them
 * with the image's config (plan.c) and hands them to the launcher. */
#include "cli.h"
#include "io.h"
#include "plan.h"
#include "launcher.h"
#include "pull.h"
#include "ref.h"

#include <ctype.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define _cleanup_json_ __attribute__((cleanup(json_decrefp)))

int
lbx_cli_box_find(lbx_store *s, const char *key, lbx_box_row *box, lbx_err **err)
{
  int r = lbx_store_box_find(s, key, box);
  if (r <= 0)
    return lbx_error(err, r == 0 ? ENOENT : EEXIST, "box %s: %s", key,
                     r == 0 ? "no such box" : "the ID prefix is ambiguous");
  return 0;
}

lbx_store *
lbx_cli_store_box(lbx_cli *cli, const char *key, lbx_box_row *box, lbx_err **err)
{
  lbx_store *s = lbx_cli_store(cli, err);
  return s && lbx_cli_box_find(s, key, box, err) == 0 ? s : NULL;
}

char **
lbx_cli_box_args(lbx_store *s, const char *cmd, bool all, bool running_only, int argc, char **argv,
                 int first, lbx_err **err)
{
  if (all && first < argc)
    return lbx_error(err, EINVAL, "%s: --all and a box name cannot go together", cmd), NULL;
  if (!all && first >= argc)
    return lbx_error(err, EINVAL, "%s: name at least one box (or --all)", cmd), NULL;
  if (!all) {
    char **v = lbx_xcalloc((size_t)(argc - first) + 1, sizeof *v);
    for (int a = first; a < argc; a++)
      v[a - first] = lbx_xstrdup(argv[a]);
    return v;
  }
  lbx_box_row *rows;
  size_t n;
  if (lbx_store_boxes(s, &rows, &n, err) < 0)
    return NULL;
  char **v = lbx_xcalloc(n + 1, sizeof *v);
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    if (!running_only || lbx_cli_box_running(s, &rows[i]))
      v[k++] = lbx_xstrdup(rows[i].id);
    lbx_box_row_clear(&rows[i]);
  }
  free(rows);
  return v;
}

/* One key of lbx_cli_box_args' list: 1 found; 0 gone since an --all list
 * was made (IDs only then, looked up exactly); -1 with *err. */
static int
box_arg(lbx_store *s, const char *cmd, const char *key, bool all, lbx_box_row *box, lbx_err **err)
{
  if (!all)
    return lbx_cli_box_find(s, key, box, err) < 0 ? -1 : 1;
  int r = lbx_store_box_by_id(s, key, box);
  return r < 0 ? lbx_error_errno(err, -r, "%s: box %s", cmd, key) : r;
}

/* The supervisor holds the box log's lock for its whole life. */
bool
lbx_cli_box_running(lbx_store *s, lbx_box_row *box)
{
  if (strcmp(box->state, "running") != 0)
    return false;
  if (lbx_store_box_supervised(s, box->id))
    return true;
  /* its supervisor was killed (the box went with it: PDEATHSIG), or
   * could not record the end in a full store */
  lbx_store_box_reap(s, box, NULL);
  /* or it ended as it should and another one started the box since
   * (restart): reap then read that run's row */
  return strcmp(box->state, "running") == 0 && lbx_store_box_supervised(s, box->id);
}

/* Blocks until the box's supervisor is gone (0), or timeout_ms passed (-1;
 * timeout_ms < 0: no limit). */
int
lbx_cli_box_wait(lbx_store *s, const char *id, long timeout_ms)
{
  _cleanup_free_ char *dir = lbx_store_box_dir(s, id);
  _cleanup_free_ char *log = lbx_xasprintf("%s/ctr.log", dir);
  _cleanup_close_ int fd = open(log, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return 0;
  if (timeout_ms < 0)
    return flock(fd, LOCK_SH) < 0 && errno != EINTR ? 0 : 0;
  for (long waited = 0;; waited += 50) {
    if (flock(fd, LOCK_SH | LOCK_NB) == 0)
      return 0;
    if (waited >= timeout_ms)
      return -1;
    usleep(50 * 1000);
  }
}

/* ---- create/run options ---- */

struct box_opts {
  const char *name, *pull, *workdir, *user, *hostname, *entrypoint, *net, *userns;
  bool tls_verify_off, tls_verify_on, rm, detach, interactive, tty, read_only, no_new_privs, init,
      debug_fs, no_read_only_tmpfs;
  json_t *env, *mounts;
  lbx_err *bad; /* the first bad option value */
};

/* KEY=VALUE as given, or KEY alone: the caller's value when it has one
 * (Podman's rule for -e and --env-file). -1 for a variable without a name
 * ("=x"), which Podman refuses too. */
static int
env_append(json_t *env, const char *kv)
{
  if (*kv == '=' || !*kv)
    return -1;
  if (strchr(kv, '=')) {
    json_array_append_new(env, json_string(kv));
    return 0;
  }
  const char *v = getenv(kv);
  if (v) {
    _cleanup_free_ char *s = lbx_xasprintf("%s=%s", kv, v);
    json_array_append_new(env, json_string(s));
  }
  return 0;
}

static int
add_env_file(struct box_opts *o, const char *path)
{
  _cleanup_fclose_ FILE *f = fopen(path, "re");
  struct stat st;
  if (!f || fstat(fileno(f), &st) < 0)
    return lbx_error_errno(&o->bad, errno, "--env-file %s", path);
  if (S_ISDIR(st.st_mode))
    return lbx_error(&o->bad, EISDIR, "--env-file %s: a directory, not a file", path);
  char *line = NULL;
  size_t cap = 0;
  ssize_t n;
  int r = 0;
  while (r == 0 && (n = getline(&line, &cap, f)) >= 0) {
    line[strcspn(line, "\r\n")] = '\0';
    const char *p = line + strspn(line, " \t");
    if (*p && *p != '#' && env_append(o->env, p) < 0)
      r = lbx_error(&o->bad, EINVAL, "--env-file %s: \"%s\": a variable needs a name", path, p);
  }
  if (r == 0 && ferror(f))
    r = lbx_error_errno(&o->bad, errno, "--env-file %s", path);
  free(line);
  return r;
}

static void
add_env(struct box_opts *o, const char *kv)
{
  if (env_append(o->env, kv) < 0)
    lbx_error(&o->bad, EINVAL, "-e \"%s\": a variable needs a name", kv);
}

static int
add_volume(struct box_opts *o, const char *spec)
{
  _cleanup_free_ char *copy = lbx_xstrdup(spec);
  char *src = copy, *dst = strchr(copy, ':');
  if (!dst)
    return lbx_error(&o->bad, EINVAL, "--volume %s: use HOST-DIR:BOX-DIR[:ro]", spec);
  *dst++ = '\0';
  char *mode = strchr(dst, ':');
  if (mode)
    *mode++ = '\0';
  bool ro = false;
  if (mode && strcmp(mode, "ro") == 0)
    ro = true;
  else if (mode && strcmp(mode, "rw") != 0)
    return lbx_error(&o->bad, EINVAL, "--volume %s: option \"%s\": use ro or rw", spec, mode);
  if (*src != '/' && strncmp(src, "./", 2) != 0 && strncmp(src, "../", 3) != 0 &&
      strcmp(src, ".") != 0)
    return lbx_error(&o->bad, EINVAL,
                     "--volume %s: named volumes are not supported; give a host path "
                     "(absolute, or starting with ./)",
                     spec);
  if (*dst != '/')
    return lbx_error(&o->bad, EINVAL, "--volume %s: the box path must be absolute", spec);
  char real[PATH_MAX];
  if (!realpath(src, real))
    return lbx_error_errno(&o->bad, errno, "--volume %s: %s", spec, src);
  json_array_append_new(o->mounts, json_pack("{s:s, s:s, s:s, s:b}", "Type", "bind", "Source", real,
                                             "Destination", dst, "ReadOnly", ro));
  return 0;
}

static int
add_tmpfs(struct box_opts *o, const char *spec)
{
  _cleanup_free_ char *copy = lbx_xstrdup(spec);
  char *opts = strchr(copy, ':');
  if (opts)
    *opts++ = '\0';
  bool ro = false;
  for (char *save = NULL, *t = opts ? strtok_r(opts, ",", &save) : NULL; t;
       t = strtok_r(NULL, ",", &save)) {
    if (strcmp(t, "ro") == 0)
      ro = true;
    else if (strcmp(t, "rw") != 0)
      return lbx_error(&o->bad, EINVAL, "--tmpfs %s: option \"%s\": use ro or rw", spec, t);
  }
  if (*copy != '/')
    return lbx_error(&o->bad, EINVAL, "--tmpfs %s: the box path must be absolute", spec);
  json_array_append_new(o->mounts, json_pack("{s:s, s:s, s:b}", "Type", "tmpfs", "Destination",
                                             copy, "ReadOnly", ro));
  return 0;
}

enum {
  OPT_PULL = 0x100,
  OPT_TLS,
  OPT_RM,
  OPT_ENV_FILE,
  OPT_TMPFS,
  OPT_HOSTNAME,
  OPT_ENTRYPOINT,
  OPT_READ_ONLY,
  OPT_READ_ONLY_TMPFS,
  OPT_NET,
  OPT_NNP,
  OPT_USERNS,
  OPT_INIT,
};

static const struct option box_longopts[] = {
    {"name", required_argument, NULL, 'n'},
    {"pull", required_argument, NULL, OPT_PULL},
    {"tls-verify", required_argument, NULL, OPT_TLS},
    {"rm", no_argument, NULL, OPT_RM},
    {"detach", no_argument, NULL, 'd'},
    {"interactive", no_argument, NULL, 'i'},
    {"tty", no_argument, NULL, 't'},
    {"env", required_argument, NULL, 'e'},
    {"env-file", required_argument, NULL, OPT_ENV_FILE},
    {"volume", required_argument, NULL, 'v'},
    {"tmpfs", required_argument, NULL, OPT_TMPFS},
    {"workdir", required_argument, NULL, 'w'},
    {"user", required_argument, NULL, 'u'},
    {"hostname", required_argument, NULL, OPT_HOSTNAME},
    {"entrypoint", required_argument, NULL, OPT_ENTRYPOINT},
    {"read-only", no_argument, NULL, OPT_READ_ONLY},
    {"read-only-tmpfs", optional_argument, NULL, OPT_READ_ONLY_TMPFS},
    {"net", required_argument, NULL, OPT_NET},
    {"network", required_argument, NULL, OPT_NET},
    {"no-new-privileges", no_argument, NULL, OPT_NNP},
    {"userns", required_argument, NULL, OPT_USERNS},
    {"init", no_argument, NULL, OPT_INIT},
    {0},
};

static int
box_opt(void *ctx, int opt, char *arg)
{
  struct box_opts *o = ctx;
  if (o->bad)
    return 0;
  switch (opt) {
  case 'n':
    o->name = arg;
    break;
  case OPT_PULL:
    o->pull = arg;
    break;
  case OPT_TLS:
    o->tls_verify_off = strcmp(arg, "false") == 0;
    o->tls_verify_on = strcmp(arg, "true") == 0;
    break;
  case OPT_RM:
    o->rm = true;
    break;
  case 'd':
    o->detach = true;
    break;
  case 'i':
    o->interactive = true;
    break;
  case 't':
    o->tty = true;
    break;
  case 'e':
    add_env(o, arg);
    break;
  case OPT_ENV_FILE:
    add_env_file(o, arg);
    break;
  case 'v':
    add_volume(o, arg);
    break;
  case OPT_TMPFS:
    add_tmpfs(o, arg);
    break;
  case 'w':
    o->workdir = arg;
    break;
  case 'u':
    o->user = arg;
    break;
  case OPT_HOSTNAME:
    o->hostname = arg;
    break;
  case OPT_ENTRYPOINT:
    o->entrypoint = arg;
    break;
  case OPT_READ_ONLY:
    o->read_only = true;
    break;
  case OPT_READ_ONLY_TMPFS:
    if (!arg || strcmp(arg, "true") == 0)
      o->no_read_only_tmpfs = false;
    else if (strcmp(arg, "false") == 0)
      o->no_read_only_tmpfs = true;
    else
      lbx_error(&o->bad, EINVAL, "--read-only-tmpfs=%s: use true or false", arg);
    break;
  case OPT_NET:
    o->net = arg;
    break;
  case OPT_NNP:
    o->no_new_privs = true;
    break;
  case OPT_USERNS:
    o->userns = arg;
    break;
  case OPT_INIT:
    o->init = true;
    break;
  }
  return 0;
}

void
lbx_cli_close_inherited(int keep)
{
  if (keep < 3) {
    close_range(3, ~0U, 0);
    return;
  }
  if (keep > 3)
    close_range(3, (unsigned)keep - 1, 0);
  close_range((unsigned)keep + 1, ~0U, 0);
}

bool
lbx_cli_valid_name(const char *n)
{
  /* as Podman: [a-zA-Z0-9][a-zA-Z0-9_.-]* */
  if (!((n[0] >= 'a' && n[0] <= 'z') || (n[0] >= 'A' && n[0] <= 'Z') ||
        (n[0] >= '0' && n[0] <= '9')))
    return false;
  return strspn(n, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") ==
         strlen(n);
}

/* create's work, shared with run: the box's row, its settings as JSON. */
static int
create_box(lbx_cli *cli, const char *cmdname, struct box_opts *o, int argc, char **argv, int first,
           char id[LBX_DIGEST_HEX], lbx_err **err)
{
  if (o->bad) {
    *err = steal_pointer(&o->bad);
    return -1;
  }
  if (first >= argc)
    return lbx_error(err, EINVAL, "%s: name an image", cmdname);
  if (strcmp(o->pull, "missing") != 0 && strcmp(o->pull, "always") != 0 &&
      strcmp(o->pull, "never") != 0)
    return lbx_error(err, EINVAL, "%s: --pull \"%s\": use always, missing or never", cmdname,
                     o->pull);
  if (o->name && !lbx_cli_valid_name(o->name))
    return lbx_error(err, EINVAL, "%s: box name \"%s\" must match [a-zA-Z0-9][a-zA-Z0-9_.-]*",
                     cmdname, o->name);
  if (o->net && strcmp(o->net, "host") != 0 && strcmp(o->net, "none") != 0)
    return lbx_error(err, EINVAL, "%s: --net \"%s\": use host or none", cmdname, o->net);
  if (o->workdir && *o->workdir != '/')
    return lbx_error(err, EINVAL, "%s: --workdir \"%s\" must be an absolute path", cmdname,
                     o->workdir);
  bool keep_id = o->userns && strcmp(o->userns, "keep-id") == 0;
  if (o->userns && !keep_id && strcmp(o->userns, "host") != 0 && *o->userns)
    return lbx_error(err, EINVAL, "%s: --userns \"%s\": use host or keep-id", cmdname, o->userns);
  /* as root there is no user namespace: the box's ids are the host's */
  if (keep_id && geteuid() == 0)
    return lbx_error(err, EINVAL,
                     "%s: --userns keep-id is for rootless use (as root the box's "
                     "ids already are the host's)",
                     cmdname);
  lbx_store *s = lbx_cli_store(cli, err);
  if (!s)
    return -1;
  char image[LBX_DIGEST_HEX];
  lbx_err *miss = NULL;
  bool have =
      strcmp(o->pull, "always") != 0 && lbx_image_resolve(s, argv[first], image, &miss) == 0;
  if (!have && strcmp(o->pull, "never") == 0) {
    *err = miss;
    return -1;
  }
  lbx_error_free(miss);
  if (!have) {
    lbx_pull_opts po = {0};
    po.reg.insecure = o->tls_verify_off;
    po.reg.tls_verify = o->tls_verify_on;
    char *pulled = NULL;
    if (lbx_pull(s, argv[first], &po, image, &pulled, err) < 0)
      return -1;
    free(pulled);
  }
  uint8_t rnd[LBX_DIGEST_LEN];
  if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
    return lbx_error_errno(err, errno, "%s: random box ID", cmdname);
  lbx_hex(rnd, sizeof rnd, id);
  _cleanup_free_ char *name = o->name ? lbx_xstrdup(o->name) : lbx_xasprintf("box_%.12s", id);
  _cleanup_json_ json_t *cmd = json_array();
  for (int i = first + 1; i < argc; i++)
    json_array_append_new(cmd, json_string(argv[i]));
  _cleanup_json_ json_t *config =
      json_pack("{s:s, s:O, s:O, s:O, s:b, s:b, s:b, s:b, s:b, s:s}", "ImageName", argv[first],
                "Cmd", cmd, "Env", o->env, "Mounts", o->mounts, "AutoRemove", o->rm, "Interactive",
                o->interactive, "Tty", o->tty, "ReadOnly", o->read_only, "NoNewPrivileges",
                o->no_new_privs, "Net", o->net ? o->net : "host");
  /* only when off: boxes made before it existed have it on, as Podman */
  if (o->no_read_only_tmpfs)
    json_object_set_new(config, "ReadOnlyTmpfs", json_false());
  if (o->entrypoint)
    json_object_set_new(config, "Entrypoint", json_string(o->entrypoint));
  if (o->workdir)
    json_object_set_new(config, "WorkingDir", json_string(o->workdir));
  if (o->user)
    json_object_set_new(config, "User", json_string(o->user));
  else if (keep_id) { /* as Podman: the box's processes run as the caller */
    _cleanup_free_ char *u = lbx_xasprintf("%u:%u", (unsigned)getuid(), (unsigned)getgid());
    json_object_set_new(config, "User", json_string(u));
  }
  if (keep_id)
    json_object_set_new(config, "UserNS", json_string("keep-id"));
  if (o->init)
    json_object_set_new(config, "Init", json_true());
  if (o->hostname)
    json_object_set_new(config, "Hostname", json_string(o->hostname));
  _cleanup_free_ char *text = json_dumps(config, JSON_COMPACT);
  return lbx_store_box_add(s, id, name, image, text, err);
}

static int
create_run(lbx_cli *cli, int argc, char **argv, lbx_err **err)
{
  struct box_opts o = {.pull = "missing", .env = json_array(), .mounts = json_array()};
  int rc;
  /* "+": what follows the image is the box's command, options included */
  int first = lbx_parse_opts(&lbx_run_cmds[0], argc, argv, "+ite:v:w:u:", box_longopts, box_opt, &o,
                             &rc, err);
  char id[LBX_DIGEST_HEX];
  if (first >= 0)
    rc = create_box(cli, "create", &o, argc, argv, first, id, err) < 0 ? 125 : 0;
  if (first >= 0 && rc == 0)
    printf("%s\n", id);
  json_decref(o.env);
  json_decref(o.mounts);
  lbx_error_free(o.bad);
  return rc;
}

/* ---- start ---- */

struct sup_ctx {
  const char *root, *id, *name;
  const struct plan *plan; /* what exec takes from the box (publish_exec) */
  bool auto_remove, no_new_privs;
  bool owned;      /* this supervisor held the box: only then is --rm its to do */
  bool removed;    /* --rm done, while the box's lock was still held */
  lbx_store *kept; /* opened to record the start; records the end and --rm */
};

static void
sup_owned(void *ctx)
{
  ((struct sup_ctx *)ctx)->owned = true;
}

/* What exec_run needs to join the box without opening the store; its keys
 * are read by exec_published. */
static void
publish_exec(const struct sup_ctx *c, pid_t pid, uint64_t pid_start)
{
  json_t *env = json_array();
  for (size_t i = 0; c->plan->env && c->plan->env[i]; i++)
    json_array_append_new(env, json_string(c->plan->env[i]));
  _cleanup_json_ json_t *o =
      json_pack("{s:s, s:s, s:i, s:I, s:o, s:s?, s:s?, s:b}", "Id", c->id, "Name", c->name, "Pid",
                (int)pid, "PidStart", (json_int_t)pid_start, "Env", env, "WorkingDir",
                c->plan->workdir, "User", c->plan->user, "NoNewPrivileges", c->no_new_privs);
  _cleanup_free_ char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
  /* without it, exec asks the store */
  if (!text || lbx_box_publish(c->root, c->id, c->name, text) < 0)
    return;
  /* A rename since the row was read withdrew nothing yet: the name is
   * checked after publishing (rename updates the row, then withdraws), so
   * one of the two always sees the other. */
  lbx_box_row now = {0};
  if (!c->kept || lbx_store_box_by_id(c->kept, c->id, &now) != 1 || strcmp(now.name, c->name) != 0)
    lbx_box_unpublish(c->root, c->id, c->name);
  lbx_box_row_clear(&now);
}

static void
sup_started(void *ctx, pid_t pid, uint64_t pid_start)
{
  struct sup_ctx *c = ctx;
  /* Kept open for the box's end: opening the store again once the box has
   * exited would put ~1 ms more between that and the caller's exit code.
   * An idle connection holds no lock, and the box's pid 1 was forked
   * before it existed. */
  if (lbx_store_open(c->root, 0, &c->kept, NULL) == 0)
    lbx_store_box_set_running(c->kept, c->id, pid, pid_start, lbx_now_ns(), NULL);
  publish_exec(c, pid, pid_start);
}

static void
sup_exited(void *ctx, int code)
{
  struct sup_ctx *c = ctx;
  int64_t now = lbx_now_ns();
  lbx_box_unpublish(c->root, c->id, c->name);
  if ((!c->kept && lbx_store_open(c->root, 0, &c->kept, NULL) < 0) ||
      lbx_store_box_set_exited(c->kept, c->id, code, now, NULL) < 0)
    /* a full disk: the store cannot take the end, the box's directory
     * keeps it for the next look at the box (lbx_store_box_reap) */
    lbx_box_keep_exit(c->root, c->id, code, now);
  /* --rm before the box's lock goes (it goes right after this): a start
   * that then takes the lock must not have its box removed under it */
  if (c->auto_remove && c->kept && lbx_store_box_delete(c->kept, c->id, NULL) == 0)
    c->removed = true;
}

static volatile sig_atomic_t forward_to;

static void
forward_signal(int sig)
{
  int saved = errno;
  if (forward_to > 0)
    lbx_supervise_relay((pid_t)forward_to, sig);
  errno = saved;
}

/* Starts the box; attached: returns its exit code when it ends; detached:
 * 0 once it runs. 125/126/127 with *err when it cannot start. */
static int
start_box(lbx_cli *cli, lbx_box_row *box, bool attach, bool debug, lbx_err **err)
{
  lbx_store *s = cli->store;
  if (lbx_cli_box_running(s, box))
    return lbx_error(err, EBUSY, "box %s is already running", box->name), 125;
  _cleanup_(lbx_plan_clear) struct plan p;
  if (lbx_plan_make(s, box, &p, err) < 0)
    return 125;
  _cleanup_free_ char *dir = lbx_store_box_dir(s, box->id);
  json_t *mounts = json_object_get(p.box, "Mounts");
  size_t nm = json_array_size(mounts);
  _cleanup_free_ lbx_mount_spec *ms = lbx_xcalloc(nm + 1, sizeof *ms);
  for (size_t i = 0; i < nm; i++) {
    json_t *m = json_array_get(mounts, i);
    const char *type = json_string_value(json_object_get(m, "Type"));
    ms[i].kind = type && strcmp(type, "tmpfs") == 0 ? LBX_MNT_TMPFS : LBX_MNT_BIND;
    ms[i].source = (char *)json_string_value(json_object_get(m, "Source"));
    ms[i].target = (char *)json_string_value(json_object_get(m, "Destination"));
    ms[i].ro = json_is_true(json_object_get(m, "ReadOnly"));
    if (!ms[i].target || (ms[i].kind == LBX_MNT_BIND && !ms[i].source))
      return lbx_error(err, EINVAL, "box %s: mount %zu of its settings is incomplete", box->name,
                       i),
             125;
  }
  /* --hostname, else the image's (Docker's config carries one), else the
   * short ID */
  const char *hostname = json_string_value(json_object_get(p.box, "Hostname"));
  if (!hostname || !*hostname)
    hostname = json_string_value(json_object_get(p.image, "Hostname"));
  char short_id[13];
  snprintf(short_id, sizeof short_id, "%.12s", box->id);
  bool tty = json_is_true(json_object_get(p.box, "Tty"));
  lbx_launch l = {
      .id = box->id,
      .name = box->name,
      .store_root = cli->root,
      .chain_id = p.chain_id,
      .box_dir = dir,
      .argv = p.argv,
      .env = p.env,
      .workdir = p.workdir,
      .user = p.user,
      .hostname = hostname && *hostname ? hostname : short_id,
      .tty = tty,
      /* detached, stdin is a pipe kept open (below), not the caller's */
      .interactive = json_is_true(json_object_get(p.box, "Interactive")),
      .attach = attach,
      .caller = getpid(),
      .read_only = json_is_true(json_object_get(p.box, "ReadOnly")),
      .read_only_tmpfs = !json_is_false(json_object_get(p.box, "ReadOnlyTmpfs")),
      .no_new_privs = json_is_true(json_object_get(p.box, "NoNewPrivileges")),
      .net_none = strcmp(json_string_value(json_object_get(p.box, "Net")) ?: "host", "none") == 0,
      .keep_id = strcmp(json_string_value(json_object_get(p.box, "UserNS")) ?: "", "keep-id") == 0,
      .init = json_is_true(json_object_get(p.box, "Init")),
      .mounts = ms,
      .nmounts = nm,
      .debug = debug,
  };
  struct sup_ctx sc = {
      .root = cli->root,
      .id = box->id,
      .name = box->name,
      .plan = &p,
      .auto_remove = json_is_true(json_object_get(p.box, "AutoRemove")),
      .no_new_privs = l.no_new_privs,
  };
  lbx_launch_cbs cbs = {&sc, sup_owned, sup_started, sup_exited};
  int ready[2];
  if (pipe2(ready, O_CLOEXEC) < 0)
    return lbx_error_errno(err, errno, "pipe"), 125;
  struct termios saved;
  bool restore = attach && tty && isatty(0) && tcgetattr(0, &saved) == 0;
  fflush(NULL);
  /* SQLite keeps per-process state about open databases (locks, the WAL
   * index) that a forked child would inherit but not own: the supervisor's
   * own connections then miss their locks, and the parent's close can
   * checkpoint and delete the WAL under them (a detached box's exit code
   * was lost that way). Closed here; reopened when needed. */
  lbx_store_close(cli->store);
  cli->store = NULL;
  /* Held from before the fork: a signal that comes while the box starts
   * waits for our handler (below) or the supervisor's signal fd, rather
   * than ending either of us on the default action. */
  sigset_t held, prev;
  sigemptyset(&held);
  int sigs[] = {SIGINT, SIGQUIT, SIGTERM, SIGHUP, SIGRTMIN};
  for (size_t i = 0; i < LBX_ARRAY_SIZE(sigs); i++)
    sigaddset(&held, sigs[i]);
  sigprocmask(SIG_BLOCK, &held, &prev);
  pid_t sup = fork();
  if (sup < 0) {
    sigprocmask(SIG_SETMASK, &prev, NULL);
    return lbx_error_errno(err, errno, "fork"), 125;
  }
  if (sup == 0) {
    /* the supervisor: no SQLite handle crosses fork; it opens its own.
     * The signals stay held: lbx_supervise takes them from a signal fd. */
    close(ready[0]);
    /* the exit code goes back on the ready pipe once everything is done
     * (state recorded, --rm removed): the caller then need not wait for
     * this process's end, which tears down its namespaces and the FUSE
     * mount in the kernel (about 15 ms, measured) */
    int done_fd = attach ? fcntl(ready[1], F_DUPFD_CLOEXEC, 3) : -1;
    if (!attach) {
      setsid();
      lbx_cli_close_inherited(ready[1]);
      int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
      if (nul >= 0) {
        dup2(nul, 0);
        dup2(nul, 1);
        dup2(nul, 2);
      }
      /* -i with nobody attached: the box's stdin stays open, never written
       * (Podman's conmon keeps its pipe), so `run -di IMAGE cat` or a shell
       * keeps running instead of reading the end at once. The write end
       * lives as long as this process. */
      int keep[2];
      if (l.interactive && !l.tty && pipe2(keep, O_CLOEXEC) == 0) {
        dup2(keep[0], 0);
        close(keep[0]);
      }
    }
    struct termios raw_saved;
    bool raw = attach && tty && l.interactive && lbx_term_raw(0, &raw_saved) == 0;
    int code = lbx_supervise(&l, ready[1], &cbs);
    if (raw)
      lbx_term_restore(0, &raw_saved);
    /* not when another start runs the box (this one lost the race); a box
     * that never ran (no such command) is removed here */
    if (sc.auto_remove && sc.owned && !sc.removed &&
        (sc.kept || lbx_store_open(cli->root, 0, &sc.kept, NULL) == 0))
      lbx_store_box_delete(sc.kept, box->id, NULL);
    if (done_fd >= 0) {
      dprintf(done_fd, "exit %d\n", code & 0xff);
      close(done_fd); /* the caller reads to the end */
    }
    lbx_store_close(sc.kept);
    _exit(code & 0xff);
  }
  close(ready[1]);
  forward_to = sup;
  struct sigaction sa = {.sa_handler = forward_signal}, old_term, old_hup, old_int, old_quit;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, &old_term);
  sigaction(SIGHUP, &sa, &old_hup);
  /* each of these goes through here, once: a terminal's ^C or hangup, a
   * kill of this process or of its group; an attached supervisor drops
   * those it gets itself and takes the ones relayed from here */
  sigaction(SIGINT, &sa, &old_int);
  sigaction(SIGQUIT, &sa, &old_quit);
  sigprocmask(SIG_SETMASK, &prev, NULL);
  char line[800];
  /* room for two terminators: the first line's, and an empty second */
  ssize_t got = lbx_read_all(ready[0], line, sizeof line - 2);
  /* the end of the pipe: attached, the box is over; detached, it is on
   * its own. Nothing more goes to the supervisor, whose pid, once it is
   * reaped, may be another process's. */
  forward_to = 0;
  close(ready[0]);
  line[got > 0 ? got : 0] = '\0';
  /* "CODE[ message]\n", then from an attached box "exit N\n" */
  line[strcspn(line, "\n")] = '\0';
  if (got <= 0 || (size_t)got == strlen(line))
    line[strlen(line) + 1] = '\0'; /* no second line */
  const char *exit_line;
  int rc;
  int code = got > 0 ? atoi(line) : 125;
  if (code != 0) {
    int status;
    while (waitpid(sup, &status, 0) < 0 && errno == EINTR)
      ;
    const char *msg = strchr(line, ' ');
    lbx_error(err, EINVAL, "%s", msg ? msg + 1 : "the box's supervisor ended before the box ran");
    rc = code;
  } else if (!attach) {
    rc = 0;
  } else if ((exit_line = strstr(line + strlen(line) + 1, "exit ")) != NULL) {
    rc = atoi(exit_line + 5); /* the supervisor ends on its own */
  } else {
    int status;
    while (waitpid(sup, &status, 0) < 0 && errno == EINTR)
      ;
    rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  if (restore)
    tcsetattr(0, TCSADRAIN, &saved);
  sigaction(SIGTERM, &old_term, NULL);
  sigaction(SIGHUP, &old_hup, NULL);
  sigaction(SIGINT, &old_int, NULL);
  sigaction(SIGQUIT, &old_quit, NULL);
  return rc;
}

static int
run_run(lbx_cli *cli, int argc, char **argv, lbx_err **err)
{
  struct box_opts o = {.pull = "missing", .env = json_array(), .mounts = json_array()};
  int rc;
  int first = lbx_parse_opts(&lbx_run_cmds[1], argc, argv, "+dite:v:w:u:", box_longopts, box_opt,
                             &o, &rc, err);
  char id[LBX_DIGEST_HEX];
  if (first >= 0)
    rc = create_box(cli, "run", &o, argc, argv, first, id, err) < 0 ? 125 : 0;
  json_decref(o.env);
  json_decref(o.mounts);
  lbx_error_free(o.bad);
  if (first < 0 || rc != 0)
    return rc;
  lbx_box_row box = {0};
  if (lbx_cli_box_find(cli->store, id, &box, err) < 0)
    return 125;
  rc = start_box(cli, &box, !o.detach, false, err);
  if (o.detach && rc == 0)
    printf("%s\n", box.id);
  /* a box that never ran is no box: --rm removes it then too */
  lbx_store *s = rc >= 125 && o.rm ? lbx_cli_store(cli, NULL) : NULL;
  if (s && !lbx_cli_box_running(s, &box))
    lbx_store_box_delete(s, box.id, NULL);
  lbx_box_row_clear(&box);
  return rc;
}

/* ---- start, stop, kill, wait ---- */

struct flag_opts {
  bool attach, interactive; /* attach: -a, which is --all for stop and kill */
  bool running;             /* restart --running */
  long timeout;
  const char *signal;
};

static int
flag_opt(void *ctx, int opt, char *arg)
{
  struct flag_opts *o = ctx;
  if (opt == 'a')
    o->attach = true;
  else if (opt == 'i')
    o->interactive = true;
  else if (opt == 't') {
    /* whole seconds, as Podman's --time: "abc", "5x" or "" are refused,
     * not read as 0 (which stopped the box at once) */
    char *end;
    errno = 0;
    o->timeout = strtol(arg, &end, 10);
    if (errno || end == arg || *end || o->timeout < -1)
      return -1;
  } else if (opt == 's')
    o->signal = arg;
  else if (opt == 'R')
    o->running = true;
  return 0;
}

static int
start_run(lbx_cli *cli, int argc, char **argv, lbx_err **err)
{
  static const struct option opts[] = {
      {"attach", no_argument, NULL, 'a'}, {"interactive", no_argument, NULL, 'i'}, {0}};
  struct flag_opts o = {0};
  int rc;
  int first = lbx_parse_opts(&lbx_run_cmds[2], argc, argv, "ai", opts, flag_opt, &o, &rc, err);
  if (first < 0)
    return rc;
  if (first >= argc)
    return lbx_error(err, EINVAL, "start: name at least one box"), 125;
  if (o.attach && argc - first > 1)
    return lbx_error(err, EINVAL, "start: --attach takes one box"), 125;
  for (int a = first; a < argc; a++) {
    /* start_box closes the store before it forks: opened again each time */
    _cleanup_(lbx_box_row_clear) lbx_box_row box = {0};
    if (!lbx_cli_store_box(cli, argv[a], &box, err))
      return 125;
    if (o.interactive) {
      /* start -i: stdin for this run, whatever create said */
      json_t *c = json_loads(box.config, 0, NULL);
      json_object_set_new(c, "Interactive", json_true());
      free(box.config);
      box.config = json_dumps(c, JSON_COMPACT);
      json_decref(c);
    }
    rc = start_box(cli, &box, o.attach, false, err);
    if (o.attach || rc != 0)
      return rc;
    printf("%s\n", argv[a]);
  }
  return 0;
}

static const struct {
  const char *name;
  int sig;
} signals[] = {
    {"HUP", SIGHUP},   {"INT", SIGINT},     {"QUIT", SIGQUIT}, {"KILL", SIGKILL},
    {"USR1", SIGUSR1}, {"USR2", SIGUSR2},   {"TERM", SIGTERM}, {"CONT", SIGCONT},
    {"STOP", SIGSTOP}, {"WINCH", SIGWINCH}, {"ALRM", SIGALRM}, {"PIPE", SIGPIPE},
};

static int
parse_signal(const char *s)
{
  char *end;
  long n = strtol(s, &end, 10);
  if (*s && !*end)
    return n > 0 && n < NSIG ? (int)n : -1;
  if (strncasecmp(s, "SIG", 3) == 0)
    s += 3;
  /* RTMIN+3: systemd images' STOPSIGNAL */
  if (strncasecmp(s, "RTMIN", 5) == 0 || strncasecmp(s, "RTMAX", 5) == 0) {
    bool max = toupper((unsigned char)s[3]) == 'A';
    long off = 0;
    if (s[5] && ((s[5] != '+' && s[5] != '-') || (max != (s[5] == '-')) ||
                 (off = strtol(s + 6, &end, 10)) < 0 || *end || end == s + 6))
      return -1;
    long sig = max ? SIGRTMAX - off : SIGRTMIN + off;
    return sig >= SIGRTMIN && sig <= SIGRTMAX ? (int)sig : -1;
  }
  for (size_t i = 0; i < LBX_ARRAY_SIZE(signals); i++)
    if (strcasecmp(s, signals[i].name) == 0)
      return signals[i].sig;
  return -1;
}

/* What stop sends first: the image's StopSignal (Dockerfile STOPSIGNAL,
 * import -c), as Podman does; SIGTERM when it has none or one we do not
 * know. */
static int
stop_signal(lbx_store *s, const lbx_box_row *box)
{
  lbx_image_row row = {0};
  _cleanup_free_ char *cfg = NULL;
  size_t len = 0;
  if (lbx_store_image_get(s, box->image, &row, &cfg, &len, NULL) < 0)
    return SIGTERM;
  lbx_image_row_clear(&row);
  _cleanup_json_ json_t *whole = json_loadb(cfg, len, 0, NULL);
  const char *name =
      json_string_value(json_object_get(json_object_get(whole, "config"), "StopSignal"));
  int sig = name ? parse_signal(name) : -1;
  return sig > 0 ? sig : SIGTERM;
}

/* Signals the box's pid 1, checking it is still that process. */
static int
signal_box(lbx_store *s, lbx_box_row *box, int sig)
{
  if (!lbx_cli_box_running(s, box))
    return -ESRCH;
  return lbx_signal_pid(box->pid, box->pid_start, sig);
}

static int
stop_run(lbx_cli *cli, int argc, char **argv, lbx_err **err)
{
  static const struct option opts[] = {
      {"all", no_argument, NULL, 'a'}, {"time", required_argument, NULL, 't'}, {0}};
  struct flag_opts o = {.timeout = 10};
  int rc;
  int first = lbx_parse_opts(&lbx_run_cmds[3], argc, argv, "at:", opts, flag_opt, &o, &rc, err);
  if (first < 0)
    return rc;
  if (o.timeout < 0 || o.timeout > 86400 * 365)
    return lbx_error(err, EINVAL, "stop: --time must be 0 to 31536000 seconds"), 125;
  lbx_store *s = lbx_cli_store(cli, err);
  if (!s)
    return 125;
  bool all = o.attach; /* -a */
  _cleanup_(lbx_strv_freep) char **keys =
      lbx_cli_box_args(s, "stop", all, true, argc, argv, first, err);
  if (!keys)
    return 125;
  size_t n = 0;
  while (keys[n])
    n++;
  lbx_box_row *boxes = lbx_xcalloc(n + 1, sizeof *boxes);
  rc = 0;
  for (size_t i = 0; i < n && rc == 0; i++)
    if (box_arg(s, "stop", keys[i], all, &boxes[i], err) < 0)
      rc = 125;
  /* All at once, as Podman does: each box's stop signal (stop_signal),
   * then one grace time for all of them. pid 1 of a pid namespace ignores
   * a signal it has no handler for: SIGKILL when the grace time is over. */
  bool *sent = lbx_xcalloc(n + 1, sizeof *sent);
  for (size_t i = 0; i < n && rc == 0; i++)
    sent[i] = boxes[i].id[0] && signal_box(s, &boxes[i], stop_signal(s, &boxes[i])) == 0;
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (size_t i = 0; i < n && rc == 0; i++) {
    if (sent[i]) {
      struct timespec t;
      clock_gettime(CLOCK_MONOTONIC, &t);
      long spent = (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
      long left = o.timeout * 1000 - spent;
      if (lbx_cli_box_wait(s, boxes[i].id, left > 0 ? left : 0) < 0) {
        signal_box(s, &boxes[i], SIGKILL);
        lbx_cli_box_wait(s, boxes[i].id, -1);
      }
    }
    if (boxes[i].id[0])
      printf("%s\n", keys[i]);
  }
  for (size_t i = 0; i < n; i++)
    lbx_box_row_clear(&boxes[i]);
  free(boxes);
  free(sent);
  return rc;
}

static int
restart_run(lbx_cli *cli, int argc, char **argv, lbx_err **err)
{
  static const struct option opts[] = {{"all", no_argument, NULL, 'a'},
                                       {"running", no_argument, NULL, 'R'},
                                       {"time", required_argument, NULL, 't'},
                                       {0}};
  struct flag_opts o = {.timeout = 10};
  int rc;
  int first = lbx_parse_opts(&lbx_run_cmds[7], argc, argv, "at:", opts, flag_opt, &o, &rc, err);
  if (first < 0)
    return rc;
  if (o.timeout < 0 || o.timeout > 86400 * 365)
    return lbx_error(err, EINVAL, "restart: --time must be 0 to 31536000 seconds"), 125;
  lbx_store *s = lbx_cli_store(cli, err);
  if (!s)
    return 125;
  bool all = o.attach; /* -a */
  _cleanup_(lbx_strv_freep) char **keys =
      lbx_cli_box_args(s, "restart", all, o.running, argc, argv, first, err);
  if (!keys)
    return 125;
  bool failed = false;
  for (char **k = keys; *k; k++) {
    /* start_box closes the store before it forks: opened again each time */
    if (!(s = lbx_cli_store(cli, err)))
      return 125;
    _cleanup_(lbx_box_row_clear) lbx_box_row box = {0};
    int r = box_arg(s, "restart", *k, all, &box, err);
    if (r < 0)
      return 125;
    if (r == 0)
      continue;
    bool running = lbx_cli_box_running(s, &box);
    if (!running && o.running)
      continue;
    /* its supervisor removes it as it stops, under a restart's feet; the
     * other boxes of an --all are restarted all the same */
    _cleanup_json_ json_t *cfg = json_loads(box.config, 0, NULL);
    if (running && json_is_true(json_object_get(cfg, "AutoRemove"))) {
      if (!*err)
        lbx_error(err, EINVAL, "restart: box %s was made with --rm: it is removed when it stops",
                  box.name);
      failed = true;
      continue;
    }
    if (running) {
      /* a failed signal is a box already ending: waited for all the same */
      if (signal_box(s, &box, stop_signal(s, &box)) < 0 ||
          lbx_cli_box_wait(s, box.id, o.timeout * 1000) < 0) {
        signal_box(s, &box, SIGKILL);
        lbx_cli_box_wait(s, box.id, -1);
      }
      /* as its supervisor recorded the end: the row read above says running */
      char id[sizeof box.id];
      memcpy(id, box.id, sizeof id);
      lbx_box_row_clear(&box);
      if (lbx_store_box_by_id(s, id, &box) <= 0)
        continue;
    }
    if ((rc = start_box(cli, &box, false, false, err)) != 0)
      return rc;
    printf("%s\n", *k);
  }
  return failed ? 125 : 0;
}

static int
kill_run(lbx_cli *cli, int argc, char **argv, lbx_err **err)
{
  static const struct option opts[] = {
      {"all", no_argument, NULL, 'a'}, {"signal", required_argument, NULL, 's'}, {0}};
  struct flag_opts o = {.signal = "KILL"};
  int rc;
  int first = lbx_parse_opts(&lbx_run_cmds[4], argc, argv, "as:", opts, flag_opt, &o, &rc, err);
  if (first < 0)
    return rc;
  int sig = parse_signal(o.signal);
  if (sig < 0)
    return lbx_error(err, EINVAL, "kill: \"%s\" is not a signal", o.signal), 125;
  lbx_store *s = lbx_cli_store(cli, err);
  if (!s)
    return 125;
  bool all = o.attach; /* -a */
  _cleanup_(lbx_strv_freep) char **keys =
      lbx_cli_box_args(s, "kill", all, true, argc, argv, first, err);
  if (!keys)
    return 125;
  for (char **k = keys; *k; k++) {
    _cleanup_(lbx_box_row_clear) lbx_box_row box = {0};
    int r = box_arg(s, "kill", *k, all, &box, err);
    if (r < 0)
      return 125;
    if (r == 0)
      continue;
    r = signal_box(s, &box, sig);
    if (r == -ESRCH && all)
      continue; /* it ended since the list was made */
    if (r == -ESRCH)
      return lbx_error(err, ESRCH, "box %s is not running", box.name), 125;
    if (r < 0)
      return lbx_error_errno(err, -r, "box %s: signal %d", box.name, sig), 125;
    printf("%s\n", box.id);
  }
  return 0;
}

static int
wait_run(lbx_cli *cli, int argc, char **argv, lbx_err **err)
{
  static const struct option opts[] = {{0}};
  int rc;
  int first = lbx_parse_opts(&lbx_run_cmds[5], argc, argv, "", opts, flag_opt, NULL, &rc, err);
  if (first < 0)
    return rc;
  if (first >= argc)
    return lbx_error(err, EINVAL, "wait: name at least one box"), 125;
  lbx_store *s = lbx_cli_store(cli, err);
  if (!s)
    return 125;
  for (int a = first; a < argc; a++) {
    _cleanup_(lbx_box_row_clear) lbx_box_row box = {0};
    if (lbx_cli_box_find(s, argv[a], &box, err) < 0)
      return 125;
    lbx_cli_box_wait(s, box.id, -1);
    lbx_box_row_clear(&box);
    if (lbx_cli_box_find(s, argv[a], &box, err) < 0)
      return 125;
    lbx_cli_box_running(s, &box); /* records a killed supervisor's box as exited */
    lbx_box_row_clear(&box);
    if (lbx_cli_box_find(s, argv[a], &box, err) < 0)
      return 125;
    printf("%d\n", box.exit_code);
  }
  return 0;
}

/* ---- exec ---- */

struct exec_opts {
  bool interactive, tty, no_new_privs;
  const char *workdir, *user;
  json_t *env;
};

static int
exec_opt(void *ctx, int opt, char *arg)
{
  struct exec_opts *o = ctx;
  if (opt == 'i')
    o->interactive = true;
  else if (opt == 't')
    o->tty = true;
  else if (opt == 'w')
    o->workdir = arg;
  else if (opt == 'u')
    o->user = arg;
  else if (opt == 'e')
    return env_append(o->env, arg);
  return 0;
}

/* What the supervisor of the running box named key published
 * (publish_exec), if it is whole and its pid is still the box's pid 1; else
 * NULL, and exec looks the box up in the store. Keys that are IDs always
 * go to the store: only names are published. */
static json_t *
exec_published(const char *root, const char *key)
{
  _cleanup_free_ char *id = NULL;
  _cleanup_free_ char *text = lbx_box_published(root, key, &id);
  if (!text)
    return NULL;
  json_t *o = json_loads(text, 0, NULL);
  json_t *pid = json_object_get(o, "Pid"), *start = json_object_get(o, "PidStart");
  if (!json_is_integer(pid) || !json_is_integer(start) || json_integer_value(pid) <= 0 ||
      !json_is_array(json_object_get(o, "Env")) ||
      strcmp(json_string_value(json_object_get(o, "Id")) ?: "", id) != 0 ||
      strcmp(json_string_value(json_object_get(o, "Name")) ?: "", key) != 0 ||
      lbx_pid_start((int)json_integer_value(pid)) != (uint64_t)json_integer_value(start)) {
    json_decref(o);
    return NULL;
  }
  return o;
}

static int
exec_run(lbx_cli *cli, int argc, char **argv, lbx_err **err)
{
  static const struct option opts[] = {
      {"interactive", no_argument, NULL, 'i'}, {"tty", no_argument, NULL, 't'},
      {"env", required_argument, NULL, 'e'},   {"workdir", required_argument, NULL, 'w'},
      {"user", required_argument, NULL, 'u'},  {0}};
  _cleanup_json_ json_t *env = json_array();
  struct exec_opts o = {.env = env};
  int rc;
  int first =
      lbx_parse_opts(&lbx_run_cmds[6], argc, argv, "+ite:w:u:", opts, exec_opt, &o, &rc, err);
  if (first < 0)
    return rc;
  if (argc - first < 2)
    return lbx_error(err, EINVAL, "exec: name a box and a command"), 125;
  if (o.workdir && *o.workdir != '/')
    return lbx_error(err, EINVAL, "exec: --workdir \"%s\" must be an absolute path", o.workdir),
           125;
  lbx_exec x = {
      .argv = argv + first + 1,
      .tty = o.tty,
      .interactive = o.interactive,
  };
  _cleanup_json_ json_t *pub = exec_published(cli->root, argv[first]);
  _cleanup_(lbx_box_row_clear) lbx_box_row box = {0};
  _cleanup_(lbx_plan_clear) struct plan p = {0};
  _cleanup_(lbx_strv_freep) char **envv = NULL;
  if (pub) {
    x.pid = (int)json_integer_value(json_object_get(pub, "Pid"));
    x.pid_start = (uint64_t)json_integer_value(json_object_get(pub, "PidStart"));
    envv = lbx_plan_merge_env(json_object_get(pub, "Env"), NULL, env);
    x.workdir = json_string_value(json_object_get(pub, "WorkingDir"));
    x.user = json_string_value(json_object_get(pub, "User"));
    x.no_new_privs = json_is_true(json_object_get(pub, "NoNewPrivileges"));
  } else {
    lbx_store *s = lbx_cli_store_box(cli, argv[first], &box, err);
    if (!s)
      return 125;
    if (!lbx_cli_box_running(s, &box) || lbx_pid_start(box.pid) != box.pid_start)
      return lbx_error(err, ESRCH, "box %s is not running", box.name), 125;
    if (lbx_plan_make(s, &box, &p, err) < 0)
      return 125;
    envv = lbx_plan_merge_env(json_object_get(p.image, "Env"), json_object_get(p.box, "Env"), env);
    x.pid = box.pid;
    x.pid_start = box.pid_start;
    x.workdir = p.workdir;
    x.user = p.user;
    x.no_new_privs = json_is_true(json_object_get(p.box, "NoNewPrivileges"));
  }
  x.env = envv;
  if (o.workdir)
    x.workdir = o.workdir;
  if (o.user)
    x.user = o.user;
  fflush(NULL);
  /* no host file of ours may be open when we join the box */
  lbx_store_close(cli->store);
  cli->store = NULL;
  rc = lbx_exec_in(&x, err);
  if (rc < 0)
    rc = (*err)->code == ENOENT ? 127 : (*err)->code == EACCES ? 126 : 125;
  /* This process may now have the box's namespaces and root: its /proc is
   * the box's, and exit-time work (the leak checker of a test build walks
   * /proc/self) would not find itself there. Nothing is left to do but
   * report and go. */
  if (*err)
    fprintf(stderr, "Error: %s\n", (*err)->msg);
  fflush(NULL);
  _exit(rc);
}

#define BOX_OPTIONS_HELP                                                                           \
  "  -e, --env KEY[=VALUE]      set a variable (KEY alone: the caller's value)\n"                  \
  "      --env-file FILE        variables from FILE, KEY=VALUE per line\n"                         \
  "      --entrypoint CMD       run CMD instead of the image's entrypoint (its\n"                  \
  "                             Cmd is then dropped unless a command is given)\n"                  \
  "      --hostname NAME        the box's hostname (default: the image's, else\n"                  \
  "                             its short ID)\n"                                                   \
  "  -i, --interactive          keep the caller's stdin open to the box\n"                         \
  "      --init                 pid 1 is a small init that runs the command,\n"                    \
  "                             forwards signals to it and reaps orphans\n"                        \
  "      --name NAME            the box's name (default box_<ID>)\n"                               \
  "      --net, --network MODE  host (default: the host's network) or none (a\n"                   \
  "                             network namespace with only lo)\n"                                 \
  "      --no-new-privileges    the box's processes cannot gain privileges\n"                      \
  "      --pull POLICY          missing (default): pull IMAGE when it is not in\n"                 \
  "                             the store; always; never\n"                                        \
  "      --read-only            mount the box's root read-only; /run, /tmp and\n"                  \
  "                             /var/tmp stay writable, each a tmpfs that starts\n"                \
  "                             with the image's files there\n"                                    \
  "      --read-only-tmpfs=false  with --read-only, leave /run, /tmp and /var/tmp\n"               \
  "                             read-only too\n"                                                   \
  "      --rm                   remove the box when it ends\n"                                     \
  "      --tls-verify=false     pull over plain HTTP or without TLS checks; =true\n"               \
  "                             verifies even a registry registries.conf calls\n"                  \
  "                             insecure\n"                                                        \
  "      --tmpfs DIR[:ro]       an empty tmpfs at DIR in the box\n"                                \
  "  -t, --tty                  give the box a terminal (a pty of its own)\n"                      \
  "  -u, --user USER[:GROUP]    run as USER (name from the box's /etc/passwd, or\n"                \
  "                             uid[:gid]); rootless, users other than root\n"                     \
  "                             need the caller's /etc/subuid range\n"                             \
  "      --userns MODE          host (default: rootless, the caller is root in\n"                  \
  "                             the box) or keep-id (rootless: the caller keeps\n"                 \
  "                             its uid and gid, and runs as them)\n"                              \
  "  -v, --volume HOST:BOX[:ro] bind-mount the host directory or file HOST\n"                      \
  "                             (absolute or ./relative) at BOX, nosuid and nodev\n"               \
  "  -w, --workdir DIR          working directory in the box (made if missing)\n"

const lbx_cmd lbx_run_cmds[] = {
    {"create", create_run, "Create a box from an image (no files copied)",
     "Usage: lazybox create [OPTIONS] IMAGE [COMMAND [ARG...]]\n"
     "\n"
     "Create a box: a row and an empty upper directory over IMAGE, whatever its\n"
     "size, with the settings below; prints the box ID. `lazybox start` runs it;\n"
     "`lazybox mount BOX` shows its root read-write.\n"
     "\n"
     "Options:\n" BOX_OPTIONS_HELP},
    {"run", run_run, "Create a box and run it",
     "Usage: lazybox run [OPTIONS] IMAGE [COMMAND [ARG...]]\n"
     "\n"
     "Create a box from IMAGE and run COMMAND (default: the image's entrypoint\n"
     "and command) in new user (rootless), mount, pid, uts and ipc namespaces.\n"
     "Attached, the box's output goes to the caller and to its log, and the\n"
     "exit code is the box's (125: lazybox failed, 126: the command cannot run,\n"
     "127: no such command). With -d, prints the box ID once it runs.\n"
     "\n"
     "Options:\n"
     "  -d, --detach               run in the background (output to the log)\n" BOX_OPTIONS_HELP},
    {"start", start_run, "Start boxes",
     "Usage: lazybox start [OPTIONS] BOX [BOX...]\n"
     "\n"
     "Start created or exited boxes in the background and print their names, or\n"
     "with -a run one attached and exit with its exit code. Starting a running\n"
     "box is an error.\n"
     "\n"
     "Options:\n"
     "  -a, --attach        attach to the box's output; its exit code is ours\n"
     "  -i, --interactive   the caller's stdin goes to the box\n"},
    {"stop", stop_run, "Stop running boxes",
     "Usage: lazybox stop [OPTIONS] BOX [BOX...] | --all\n"
     "\n"
     "Send each box's first process its image's stop signal (STOPSIGNAL;\n"
     "SIGTERM when it has none), then SIGKILL when it has not ended after the\n"
     "grace time; prints the names (IDs with --all). A box that does not run\n"
     "is not an error. (A first process without a handler for that signal\n"
     "ignores it, as pid 1 does: it is killed after the grace time.)\n"
     "\n"
     "Options:\n"
     "  -a, --all            every running box\n"
     "  -t, --time SECONDS   grace time before SIGKILL (default 10)\n"},
    {"kill", kill_run, "Send a signal to running boxes",
     "Usage: lazybox kill [OPTIONS] BOX [BOX...] | --all\n"
     "\n"
     "Send a signal to each box's first process; prints the IDs.\n"
     "\n"
     "Options:\n"
     "  -a, --all             every running box\n"
     "  -s, --signal SIGNAL   name (TERM, SIGTERM) or number (default KILL)\n"},
    {"wait", wait_run, "Wait for boxes to end",
     "Usage: lazybox wait BOX [BOX...]\n"
     "\n"
     "Wait until each box has stopped and print its exit code (128+N after\n"
     "signal N; -1 when its supervisor was killed and the code is unknown).\n"},
    {"exec", exec_run, "Run a command in a running box",
     "Usage: lazybox exec [OPTIONS] BOX COMMAND [ARG...]\n"
     "\n"
     "Run COMMAND in a running box: in its namespaces and root, with its\n"
     "environment, user and working directory unless given; the exit code is\n"
     "the command's (125, 126, 127 as for run).\n"
     "\n"
     "Options:\n"
     "  -e, --env KEY[=VALUE]    set a variable\n"
     "  -i, --interactive        the caller's stdin goes to the command\n"
     "  -t, --tty                a pty from the box's /dev/pts\n"
     "  -u, --user USER[:GROUP]  run as USER\n"
     "  -w, --workdir DIR        working directory\n"},
    {"restart", restart_run, "Restart boxes",
     "Usage: lazybox restart [OPTIONS] BOX [BOX...] | --all\n"
     "\n"
     "Stop each running box as stop does (its stop signal, SIGKILL after the\n"
     "grace time), then start it again in the background; created and exited\n"
     "boxes are just started. Prints the names (IDs with --all). A running\n"
     "box made with --rm is refused (it is removed when it stops); the others\n"
     "are restarted all the same.\n"
     "\n"
     "Options:\n"
     "  -a, --all            every box (with --running: every running box)\n"
     "      --running        only the boxes that run\n"
     "  -t, --time SECONDS   grace time before SIGKILL (default 10)\n"},
    {0},
};
