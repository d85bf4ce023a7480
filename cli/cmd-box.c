/* Boxes as records: ps, rm, diff, inspect. A box is a row and an upper dir
 * over its image; cmd-run.c creates and runs them. */
#include "cli.h"
#include "mounts.h"
#include "plan.h"
#include "launcher.h"
#include "pull.h"
#include "ref.h"

#include <dirent.h>
#include <regex.h>
#include <signal.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>

#define _cleanup_json_ __attribute__((cleanup(json_decrefp)))

/* ---- ps ---- */

/* ps --filter KEY=VALUE, as Podman's: values of one key are alternatives,
 * different keys must all match. */
enum filter_key { F_ID, F_NAME, F_STATUS, F_EXITED, F_ANCESTOR, F_BEFORE, F_SINCE, F__COUNT };
static const char *const filter_keys[] = {"id",       "name",   "status", "exited",
                                          "ancestor", "before", "since"};

struct ps_filter {
  enum filter_key key;
  const char *value;
  regex_t re;                 /* name */
  long code;                  /* exited */
  int64_t created_ns;         /* before, since: the named box's */
  char image[LBX_DIGEST_HEX]; /* ancestor */
};

struct ps_opts {
  bool all, quiet, no_trunc;
  long last;            /* -l/--latest, -n/--last N: the N made last; 0 all */
  const char *bad_last; /* a --last that is not a whole number */
  const char *format;
  const char **filters; /* as given */
  size_t nfilters;
};

static int
ps_opt(void *ctx, int opt, char *arg)
{
  struct ps_opts *o = ctx;
  if (opt == 'a')
    o->all = true;
  else if (opt == 'q')
    o->quiet = true;
  else if (opt == 'N')
    o->no_trunc = true;
  else if (opt == 'M')
    o->format = arg;
  else if (opt == 'l')
    o->last = 1;
  else if (opt == 'n') {
    char *end;
    errno = 0;
    o->last = strtol(arg, &end, 10);
    if (!*arg || *end || errno || o->last < 0)
      o->bad_last = arg;
  } else if (opt == 'f') {
    o->filters = lbx_xrealloc(o->filters, (o->nfilters + 1) * sizeof *o->filters);
    o->filters[o->nfilters++] = arg;
  }
  return 0;
}

static void
filters_free(struct ps_filter *f, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (f[i].key == F_NAME)
      regfree(&f[i].re);
  free(f);
}

/* Checks and prepares the filters: NULL with *err naming the bad one. */
static struct ps_filter *
filters_parse(lbx_store *s, const struct ps_opts *o, lbx_err **err)
{
  struct ps_filter *f = lbx_xcalloc(o->nfilters + 1, sizeof *f);
  for (size_t i = 0; i < o->nfilters; i++) {
    const char *eq = strchr(o->filters[i], '=');
    size_t klen = eq ? (size_t)(eq - o->filters[i]) : 0;
    size_t k = 0;
    while (k < F__COUNT && !(eq && strlen(filter_keys[k]) == klen &&
                             strncmp(filter_keys[k], o->filters[i], klen) == 0))
      k++;
    if (k == F__COUNT) {
      lbx_error(err, EINVAL,
                "ps: --filter \"%s\": use KEY=VALUE with KEY one of id, name, status, exited, "
                "ancestor, before, since",
                o->filters[i]);
      filters_free(f, i);
      return NULL;
    }
    f[i].key = (enum filter_key)k;
    f[i].value = eq + 1;
    const char *bad = NULL;
    lbx_box_row box = {0};
    char *end;
    switch (f[i].key) {
    case F_NAME:
      if (regcomp(&f[i].re, f[i].value, REG_EXTENDED | REG_NOSUB) != 0) {
        f[i].key = F_ID; /* nothing to regfree */
        bad = "not a regular expression";
      }
      break;
    case F_STATUS:
      if (strcmp(f[i].value, "created") != 0 && strcmp(f[i].value, "running") != 0 &&
          strcmp(f[i].value, "exited") != 0 && strcmp(f[i].value, "paused") != 0 &&
          strcmp(f[i].value, "unknown") != 0)
        bad = "status is created, running, exited, paused or unknown";
      break;
    case F_EXITED:
      errno = 0;
      f[i].code = strtol(f[i].value, &end, 10);
      if (!*f[i].value || *end || errno)
        bad = "not an exit code";
      break;
    case F_ANCESTOR: {
      lbx_err *e = NULL;
      if (lbx_image_resolve(s, f[i].value, f[i].image, &e) < 0)
        snprintf(f[i].image, sizeof f[i].image, "-"); /* an unknown image matches no box */
      lbx_error_free(e);
      break;
    }
    case F_BEFORE:
    case F_SINCE:
      if (lbx_store_box_find(s, f[i].value, &box) != 1)
        bad = "no such box";
      f[i].created_ns = box.created_ns;
      lbx_box_row_clear(&box);
      break;
    default:
      break;
    }
    if (bad) {
      lbx_error(err, EINVAL, "ps: --filter \"%s\": %s", o->filters[i], bad);
      filters_free(f, i + 1);
      return NULL;
    }
  }
  return f;
}

static bool
filter_one(const struct ps_filter *f, const lbx_box_row *b, const char *state)
{
  switch (f->key) {
  case F_ID:
    return strncmp(b->id, f->value, strlen(f->value)) == 0;
  case F_NAME:
    return regexec(&f->re, b->name, 0, NULL, 0) == 0;
  case F_STATUS:
    return strcmp(state, f->value) == 0;
  case F_EXITED:
    return strcmp(state, "exited") == 0 && b->exit_code == f->code;
  case F_ANCESTOR:
    return strcmp(b->image, f->image) == 0;
  case F_BEFORE:
    return b->created_ns < f->created_ns;
  case F_SINCE:
    return b->created_ns > f->created_ns;
  default:
    return false;
  }
}

static bool
filters_match(const struct ps_filter *f, size_t n, const lbx_box_row *b, const char *state)
{
  for (size_t k = 0; k < F__COUNT; k++) {
    bool any = false, hit = false;
    for (size_t i = 0; i < n && !hit; i++)
      if (f[i].key == k) {
        any = true;
        hit = filter_one(&f[i], b, state);
      }
    if (any && !hit)
      return false;
  }
  return true;
}

/* running as lbx_cli_box_running found it (a dead supervisor's box is
 * then recorded as exited) */
static const char *
state_name(const lbx_box_row *b, bool running)
{
  return running ? "running" : strcmp(b->state, "created") == 0 ? "created" : "exited";
}

static char *
image_name(lbx_store *s, const char *id)
{
  lbx_image_row row = {0};
  char *name = NULL;
  if (lbx_store_image_get(s, id, &row, NULL, NULL, NULL) == 0 && row.names && row.names[0])
    name = lbx_xstrdup(row.names[0]);
  lbx_image_row_clear(&row);
  return name ? name : lbx_xstrndup(id, 12);
}

static char *
command_of(const char *config)
{
  _cleanup_json_ json_t *c = json_loads(config, 0, NULL);
  json_t *cmd = json_object_get(c, "Cmd");
  size_t i;
  json_t *v;
  size_t len = 0;
  char *out = lbx_xstrdup("");
  json_array_foreach(cmd, i, v)
  {
    const char *a = json_string_value(v);
    if (!a)
      continue;
    char *next = lbx_xasprintf("%s%s%s", out, len ? " " : "", a);
    free(out);
    out = next;
    len = strlen(out);
  }
  return out;
}

static int
ps_run(lbx_cli *cli, int argc, char **argv, lbx_err **err)
{
  static const struct option opts[] = {
      {"all", no_argument, NULL, 'a'},          {"quiet", no_argument, NULL, 'q'},
      {"no-trunc", no_argument, NULL, 'N'},     {"format", required_argument, NULL, 'M'},
      {"filter", required_argument, NULL, 'f'}, {"latest", no_argument, NULL, 'l'},
      {"last", required_argument, NULL, 'n'},   {0}};
  struct ps_opts o = {0};
  int rc;
  int first = lbx_parse_opts(&lbx_box_cmds[0], argc, argv, "aqf:ln:", opts, ps_opt, &o, &rc, err);
  _cleanup_free_ const char **given = o.filters;
  if (first < 0)
    return rc;
  if (o.bad_last)
    return lbx_error(err, EINVAL, "ps: --last %s: want a whole number", o.bad_last), 125;
  if (o.last)
    o.all = true; /* the last made, whatever their state, as Podman */
  if (first < argc)
    return lbx_error(err, EINVAL, "ps: unexpected argument \"%s\"", argv[first]), 125;
  /* without --format, Podman's own table: columns as wide as their widest
   * cell, through the template path */
  if ((!o.format || strcmp(o.format, "table") == 0) && !o.quiet)
    o.format = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.CreatedHuman}}\t{{.Status}}\t{{.Ports}}"
               "\t{{.Names}}";
  bool tmpl = lbx_format_is_template(o.format);
  bool json = !tmpl && lbx_format_is_json(o.format, err);
  if (*err)
    return 125;
  lbx_store *s = lbx_cli_store(cli, err);
  if (!s)
    return 125;
  struct ps_filter *filters = filters_parse(s, &o, err);
  if (!filters)
    return 125;
  /* a status or exit code asked for looks at every box, as in Podman */
  for (size_t i = 0; i < o.nfilters; i++)
    if (filters[i].key == F_STATUS || filters[i].key == F_EXITED)
      o.all = true;
  lbx_box_row *rows;
  size_t n;
  if (lbx_store_boxes(s, &rows, &n, err) < 0) {
    filters_free(filters, o.nfilters);
    return 125;
  }
  /* first which boxes match, so that --last can take the newest of them */
  _cleanup_free_ bool *shown = lbx_xcalloc(n + 1, sizeof *shown);
  _cleanup_free_ bool *alive = lbx_xcalloc(n + 1, sizeof *alive);
  size_t nshown = 0;
  for (size_t i = 0; i < n; i++) {
    alive[i] = lbx_cli_box_running(s, &rows[i]);
    /* a supervisor found dead just now was recorded as exited (in the row
     * too, with the end it kept if it could not record it) */
    const char *state = state_name(&rows[i], alive[i]);
    shown[i] = (o.all || alive[i]) && filters_match(filters, o.nfilters, &rows[i], state);
    nshown += shown[i];
  }
  for (; o.last > 0 && nshown > (size_t)o.last; nshown--) {
    size_t oldest = n;
    for (size_t i = 0; i < n; i++)
      if (shown[i] && (oldest == n || rows[i].created_ns < rows[oldest].created_ns))
        oldest = i;
    shown[oldest] = false;
  }
  _cleanup_json_ json_t *arr = json_array();
  for (size_t i = 0; i < n; i++) {
    if (!shown[i])
      continue;
    bool running = alive[i];
    const char *state = state_name(&rows[i], running);
    _cleanup_free_ char *img = image_name(s, rows[i].image);
    _cleanup_free_ char *cmd = command_of(rows[i].config);
    _cleanup_free_ char *ago = lbx_human_ago(rows[i].created_ns);
    _cleanup_free_ char *status = NULL;
    if (running) {
      _cleanup_free_ char *up = lbx_human_ago(rows[i].started_ns);
      /* "5 minutes ago" -> "Up 5 minutes" */
      char *sp = strstr(up, " ago");
      if (sp)
        *sp = '\0';
      status = lbx_xasprintf("Up %s", up);
    } else if (strcmp(state, "exited") == 0) {
      _cleanup_free_ char *when = lbx_human_ago(rows[i].finished_ns);
      status = lbx_xasprintf("Exited (%d) %s", rows[i].exit_code, when);
    } else {
      status = lbx_xstrdup("Created");
    }
    if (tmpl) {
      /* the fields of Podman's `ps --format` templates */
      _cleanup_free_ char *created = lbx_rfc3339(rows[i].created_ns);
      bool exited = strcmp(state, "exited") == 0;
      /* as Podman cuts it, in its table and in templates alike */
      if (!o.no_trunc && strlen(cmd) > 17) {
        /* at a character's start: a cut UTF-8 sequence makes no JSON string */
        int k = 17;
        while (k > 0 && (cmd[k] & 0xC0) == 0x80)
          k--;
        char *cut = lbx_xasprintf("%.*s...", k, cmd);
        free(cmd);
        cmd = cut;
      }
      json_t *b = json_pack(
          "{s:s%, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:i, s:b, s:I, s:I, s:o}", "ID",
          rows[i].id, (size_t)(o.no_trunc ? 64 : 12), "Image", img, "ImageID", rows[i].image,
          "Command", cmd, "CreatedAt", created, "CreatedHuman", ago, "Status", status, "State",
          state, "Names", rows[i].name, "Pid", running ? rows[i].pid : 0, "ExitCode",
          exited ? rows[i].exit_code : 0, "Exited", exited, "StartedAt",
          (json_int_t)(rows[i].started_ns / 1000000000), "ExitedAt",
          (json_int_t)(exited ? rows[i].finished_ns / 1000000000 : 0), "Labels", json_object());
      /* the rest of Podman's fields, as they read for a box outside a pod
       * with the host's network */
      _cleanup_free_ char *running_for = lbx_xstrdup(ago);
      char *sp = strstr(running_for, " ago");
      if (sp)
        *sp = '\0';
      json_object_set_new(b, "ImageID", json_stringn(rows[i].image, o.no_trunc ? 64 : 12));
      json_object_set_new(b, "Created", json_integer(rows[i].created_ns / 1000000000));
      json_object_set_new(b, "RunningFor", json_string(running_for));
      json_object_set_new(b, "Ports", json_string(""));
      json_object_set_new(b, "Mounts", json_array());
      json_object_set_new(b, "Networks", json_array());
      json_object_set_new(b, "Pod", json_string(""));
      json_object_set_new(b, "PodName", json_string(""));
      json_object_set_new(b, "Restarts", json_integer(0));
      json_array_append_new(arr, b);
    } else if (json) {
      /* Podman's fields and types: Command the argument vector, Created
       * Unix seconds, CreatedAt and Status for people; what a box outside
       * a pod, on the host's network, has for the rest */
      _cleanup_json_ json_t *conf = json_loads(rows[i].config, 0, NULL);
      json_t *argv_json = json_object_get(conf, "Cmd");
      bool exited = strcmp(state, "exited") == 0;
      json_t *b = json_pack(
          "{s:b, s:o, s:I, s:s, s:b, s:I, s:i, s:s, s:s, s:s, s:b, s:{}, s:[], s:[s], s:{}, s:[],"
          " s:i, s:s, s:s, s:n, s:i, s:n, s:I, s:s, s:s}",
          "AutoRemove", json_is_true(json_object_get(conf, "AutoRemove")), "Command",
          json_is_array(argv_json) ? json_deep_copy(argv_json) : json_array(), "Created",
          (json_int_t)(rows[i].created_ns / 1000000000), "CreatedAt", ago, "Exited", exited,
          "ExitedAt", (json_int_t)(exited ? rows[i].finished_ns / 1000000000 : 0), "ExitCode",
          exited ? rows[i].exit_code : 0, "Id", rows[i].id, "Image", img, "ImageID", rows[i].image,
          "IsInfra", 0, "Labels", "Mounts", "Names", rows[i].name, "Namespaces", "Networks", "Pid",
          running ? rows[i].pid : 0, "Pod", "", "PodName", "", "Ports", "Restarts", 0, "Size",
          "StartedAt", (json_int_t)(rows[i].started_ns / 1000000000), "State", state, "Status",
          status);
      json_array_append_new(arr, b);
    } else {
      printf(o.no_trunc ? "%s\n" : "%.12s\n", rows[i].id);
    }
  }
  if (json) {
    _cleanup_free_ char *text = json_dumps(arr, JSON_INDENT(4));
    printf("%s\n", text);
  }
  for (size_t i = 0; i < n; i++)
    lbx_box_row_clear(&rows[i]);
  free(rows);
  filters_free(filters, o.nfilters);
  static const char *const headers[] = {
      "ID", "CONTAINER ID", "CreatedHuman", "CREATED", "RunningFor", "RUNNING FOR", NULL};
  if (tmpl && lbx_format_print(o.format, arr, headers, err) < 0)
    return 125;
  return 0;
}

/* ---- rm ---- */

struct rm_opts {
  bool force, all;
};

static int
rm_opt(void *ctx, int opt, char *arg)
{
  (void)arg;
  struct rm_opts *o = ctx;
  if (opt == 'f')
    o->force = true;
  else if (opt == 'a')
    o->all = true;
  return 0;
}

static int
rm_run(lbx_cli *cli, int argc, char **argv, lbx_err **err)
{
  static const struct option opts[] = {
      {"all", no_argument, NULL, 'a'}, {"force", no_argument, NULL, 'f'}, {0}};
  struct rm_opts o = {0};
  int rc;
  int first = lbx_parse_opts(&lbx_box_cmds[1], argc, argv, "af", opts, rm_opt, &o, &rc, err);
  if (first < 0)
    return rc;
  bool force = o.force;
  lbx_store *s = lbx_cli_store(cli, err);
  if (!s)
    return 125;
  _cleanup_(lbx_strv_freep) char **keys =
      lbx_cli_box_args(s, "rm", o.all, false, argc, argv, first, err);
  if (!keys)
    return 125;
  lbx_mount_ent *m = NULL;
  size_t nm = 0;
  lbx_mounts_list(cli->root, &m, &nm);
  /* --all goes on past a box it must leave (running, mounted), as Podman
   * does, and names them all at the end */
  _cleanup_free_ char *left = NULL;
  rc = 0;
  for (char **k = keys; *k && rc == 0; k++) {
    _cleanup_(lbx_box_row_clear) lbx_box_row box = {0};
    int r = o.all ? lbx_store_box_by_id(s, *k, &box) : lbx_store_box_find(s, *k, &box);
    if (r <= 0) {
      /* -f: a box that is not there is no error, as in Podman; --all: it
       * went away since the list was made */
      if (r == 0 && (force || o.all))
        continue;
      rc = lbx_cli_box_find(s, *k, &box, err) < 0 ? 125 : 0;
      break;
    }
    _cleanup_free_ char *why = NULL;
    if (lbx_cli_box_running(s, &box)) {
      if (!force) {
        why = lbx_xstrdup("running");
      } else {
        lbx_signal_pid(box.pid, box.pid_start, SIGKILL);
        lbx_cli_box_wait(s, box.id, -1);
      }
    }
    _cleanup_free_ char *src = lbx_xasprintf("box:%s", box.id);
    for (size_t i = 0; i < nm && !why; i++)
      if (strcmp(m[i].image, src) == 0)
        why = lbx_xasprintf("mounted at %s", m[i].dir);
    if (why && o.all) {
      char *more = lbx_xasprintf("%s%s%s (%s)", left ? left : "", left ? ", " : "", box.name, why);
      free(left);
      left = more;
      continue;
    }
    if (why) {
      lbx_error(err, EBUSY, "box %s is %s: %s", box.name, why,
                strcmp(why, "running") == 0 ? "stop it first, or use rm -f"
                                            : "run lazybox umount first");
      rc = 125;
    } else if (lbx_store_box_delete(s, box.id, err) < 0) {
      rc = 125;
    } else {
      printf("%s\n", box.id);
    }
  }
  lbx_mounts_free(m, nm);
  if (rc == 0 && left) {
    lbx_error(err, EBUSY,
              "rm: boxes left: %s; stop them (or use rm -af) and unmount them (lazybox umount)",
              left);
    rc = 125;
  }
  return rc;
}

/* ---- diff ---- */

struct change {
  char kind; /* A, C, D */
  char *path;
};

struct diff_ctx {
  lbx_chain *chain;
  struct change *v;
  size_t n;
};

static void
add_change(struct diff_ctx *d, char kind, char *path)
{
  d->v = lbx_xrealloc(d->v, (d->n + 1) * sizeof *d->v);
  d->v[d->n++] = (struct change){kind, path};
}

/* Walks the upper dir: whiteouts are deletions, other names changes of a
 * lower name or additions. lower is the chain inode of this directory in
 * the image, 0 if the image has none here (or it is hidden by opacity). */
static int
walk_upper(struct diff_ctx *d, int dfd, const char *prefix, uint64_t lower)
{
  int fd = dup(dfd);
  DIR *dir = fd < 0 ? NULL : fdopendir(fd);
  if (!dir) {
    if (fd >= 0)
      close(fd);
    return -errno;
  }
  if (faccessat(dfd, ".wh..wh..opq", F_OK, AT_SYMLINK_NOFOLLOW) == 0)
    lower = 0;
  struct dirent *de;
  int r = 0;
  while (r == 0 && (de = readdir(dir))) {
    const char *name = de->d_name;
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0 || strcmp(name, ".wh..wh..opq") == 0)
      continue;
    if (strncmp(name, ".wh.", 4) == 0) {
      add_change(d, 'D', lbx_xasprintf("%s/%s", prefix, name + 4));
      continue;
    }
    uint64_t ino = 0;
    bool in_lower = lower && lbx_chain_lookup(d->chain, lower, name, &ino) == 0;
    char *path = lbx_xasprintf("%s/%s", prefix, name);
    add_change(d, in_lower ? 'C' : 'A', path);
    struct stat st;
    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode)) {
      int sub = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (sub < 0)
        r = -errno;
      else {
        lbx_node_buf nb = {0};
        bool lower_dir =
            in_lower && lbx_chain_getattr(d->chain, ino, &nb) == 0 && nb.n.type == LBX_T_DIR;
        lbx_node_buf_clear(&nb);
        r = walk_upper(d, sub, path, lower_dir ? ino : 0);
        close(sub);
      }
    }
  }
  closedir(dir);
  return r;
}

/* Mount points the launcher makes in a box whose image lacks them: not
 * the box's changes (Podman leaves out the same paths) */
static bool
launcher_made(const char *path)
{
  static const char *const paths[] = {"/dev",          "/proc",      "/sys",
                                      "/etc/hostname", "/etc/hosts", "/etc/resolv.conf",
                                      "/etc/mtab",     "/run",       "/run/.containerenv"};
  for (size_t i = 0; i < LBX_ARRAY_SIZE(paths); i++)
    if (strcmp(path, paths[i]) == 0)
      return true;
  return false;
}

static int
by_path(const void *a, const void *b)
{
  return strcmp(((const struct change *)a)->path, ((const struct change *)b)->path);
}

static int
diff_run(lbx_cli *cli, int argc, char **argv, lbx_err **err)
{
  /* 'M': ps_opt's code for --format ('f' is ps's --filter) */
  static const struct option opts[] = {{"format", required_argument, NULL, 'M'}, {0}};
  struct ps_opts o = {0};
  int rc;
  int first = lbx_parse_opts(&lbx_box_cmds[2], argc, argv, "", opts, ps_opt, &o, &rc, err);
  _cleanup_free_ const char **given = o.filters; /* none: diff takes no --filter */
  if (first < 0)
    return rc;
  if (argc - first != 1)
    return lbx_error(err, EINVAL, "diff: name one box"), 125;
  bool json = lbx_format_is_json(o.format, err);
  if (*err)
    return 125;
  _cleanup_(lbx_box_row_clear) lbx_box_row box = {0};
  lbx_store *s = lbx_cli_store_box(cli, argv[first], &box, err);
  if (!s)
    return 125;
  _cleanup_(lbx_image_row_clear) lbx_image_row row = {0};
  if (lbx_store_image_get(s, box.image, &row, NULL, NULL, err) < 0)
    return 125;
  _cleanup_(lbx_chain_closep) lbx_chain *chain = NULL;
  if (lbx_chain_open(s, row.chain_id, &chain, err) < 0)
    return 125;
  _cleanup_free_ char *dir = lbx_store_box_dir(s, box.id);
  _cleanup_free_ char *upper = lbx_xasprintf("%s/upper", dir);
  _cleanup_close_ int ufd = open(upper, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (ufd < 0)
    return lbx_error_errno(err, errno, "box %s: %s", box.name, upper), 125;
  struct diff_ctx d = {chain, NULL, 0};
  int r = walk_upper(&d, ufd, "", 1);
  if (d.n)
    qsort(d.v, d.n, sizeof *d.v, by_path);
  _cleanup_json_ json_t *out =
      json ? json_pack("{s:[], s:[], s:[]}", "added", "changed", "deleted") : NULL;
  for (size_t i = 0; i < d.n; i++) {
    if (d.v[i].kind != 'D' && launcher_made(d.v[i].path)) {
      free(d.v[i].path);
      continue;
    }
    if (json) {
      const char *key = d.v[i].kind == 'A' ? "added" : d.v[i].kind == 'C' ? "changed" : "deleted";
      json_array_append_new(json_object_get(out, key), json_string(d.v[i].path));
    } else if (r == 0) {
      printf("%c %s\n", d.v[i].kind, d.v[i].path);
    }
    free(d.v[i].path);
  }
  free(d.v);
  if (r < 0)
    return lbx_error_errno(err, -r, "box %s: reading %s", box.name, upper), 125;
  if (json) {
    _cleanup_free_ char *text = json_dumps(out, JSON_INDENT(4));
    printf("%s\n", text);
  }
  return 0;
}

/* ---- rename ---- */

static int
rename_run(lbx_cli *cli, int argc, char **argv, lbx_err **err)
{
  static const struct option opts[] = {{0}};
  int rc;
  int first = lbx_parse_opts(&lbx_box_cmds[3], argc, argv, "", opts, NULL, NULL, &rc, err);
  if (first < 0)
    return rc;
  if (argc - first != 2)
    return lbx_error(err, EINVAL, "rename: name a box and its new name"), 125;
  const char *name = argv[first + 1];
  if (!lbx_cli_valid_name(name))
    return lbx_error(err, EINVAL, "rename: box name \"%s\" must match [a-zA-Z0-9][a-zA-Z0-9_.-]*",
                     name),
           125;
  _cleanup_(lbx_box_row_clear) lbx_box_row box = {0};
  lbx_store *s = lbx_cli_store_box(cli, argv[first], &box, err);
  if (!s)
    return 125;
  if (strcmp(box.name, name) == 0)
    return lbx_error(err, EINVAL, "rename: box %s already has that name", box.name), 125;
  return lbx_store_box_rename(s, box.id, box.name, name, err) < 0 ? 125 : 0;
}

const lbx_cmd lbx_box_cmds[] = {
    {"ps", ps_run, "List boxes",
     "Usage: lazybox ps [OPTIONS]\n"
     "\n"
     "List boxes: CONTAINER ID IMAGE COMMAND CREATED STATUS PORTS NAMES, each\n"
     "column as wide as its widest cell (PORTS stays empty: a box has the\n"
     "host's network or none). Without -a only running boxes are listed.\n"
     "COMMAND is cut to 17 characters and \"...\" unless --no-trunc. STATUS is\n"
     "Created, Up <time>, or Exited (<code>) <time> ago (code -1: its supervisor\n"
     "was killed). JSON has Podman's fields: Id, Names, Image, ImageID, Command\n"
     "(the arguments), Created, StartedAt and ExitedAt (Unix seconds), CreatedAt\n"
     "(\"5 minutes ago\"), State, Status, Exited, ExitCode, Pid, AutoRemove.\n"
     "\n"
     "Options:\n"
     "  -a, --all            every box\n"
     "  -l, --latest         the box made last, whatever its state\n"
     "  -n, --last N         the N boxes made last, whatever their state\n"
     "  -f, --filter KEY=VALUE  only the boxes that match: id (a prefix), name\n"
     "                       (an extended regular expression), status (created,\n"
     "                       running, exited), exited (an exit code), ancestor\n"
     "                       (an image), before or since (a box: made before or\n"
     "                       after it); a key given twice matches either value,\n"
     "                       different keys must all match; status and exited\n"
     "                       look at every box, as -a does\n"
     "  -q, --quiet          box IDs only\n"
     "      --no-trunc       full IDs and commands\n"
     "      --format FORMAT  table (default), json, or a Go template, one line\n"
     "                       per box: {{.ID}} {{.Names}} {{.Image}} {{.ImageID}}\n"
     "                       {{.Command}} {{.CreatedAt}} {{.CreatedHuman}}\n"
     "                       {{.Status}} {{.State}} {{.Pid}} {{.ExitCode}}\n"
     "                       {{.Exited}} {{.StartedAt}} {{.ExitedAt}} {{.Labels}}\n"
     "                       {{.Created}} {{.RunningFor}}\n"
     "                       (\"table \" first: a header and aligned columns)\n"
     "\n"
     "Templates take fields ({{.A.B}}), json, index, len, join, upper, lower,\n"
     "split, pipelines, if/else/else if, range, with; \\t and \\n are a tab\n"
     "and a newline.\n"},
    {"rm", rm_run, "Remove boxes",
     "Usage: lazybox rm [OPTIONS] BOX [BOX...] | --all\n"
     "\n"
     "Remove boxes (name, ID or ID prefix) and their upper directories; prints\n"
     "their IDs. A running box is refused (stop it, or use -f); so is a box\n"
     "mounted with `lazybox mount`: unmount it first.\n"
     "\n"
     "Options:\n"
     "  -a, --all     every box\n"
     "  -f, --force   kill a running box first (SIGKILL); a box that does not\n"
     "                exist is not an error\n"},
    {"diff", diff_run, "List a box's changes to its image",
     "Usage: lazybox diff [--format json] BOX\n"
     "\n"
     "List what the box changed in its image's tree, from its upper directory:\n"
     "A (added), C (changed) and D (deleted) with the path, sorted by path.\n"
     "The mount points lazybox makes where the image has none (/dev, /proc,\n"
     "/sys, /run, /etc/hostname, /etc/hosts, /etc/resolv.conf) are left out,\n"
     "as Podman leaves them out.\n"
     "\n"
     "Options:\n"
     "      --format FORMAT  table (default) or json (added, changed, deleted)\n"},
    {"rename", rename_run, "Give a box another name",
     "Usage: lazybox rename BOX NAME\n"
     "\n"
     "Give the box (running or not) the name NAME, which no other box may\n"
     "have; NAME matches [a-zA-Z0-9][a-zA-Z0-9_.-]*. Its ID, hostname and\n"
     "files stay as they are.\n"},
    {0},
};

/* ---- inspect BOX ---- */

static char *
time_or_zero(int64_t ns)
{
  return ns ? lbx_rfc3339(ns) : lbx_xstrdup("0001-01-01T00:00:00Z");
}

json_t *
lbx_cli_box_json(lbx_store *s, lbx_box_row *box)
{
  bool running = lbx_cli_box_running(s, box);
  struct plan p;
  lbx_err *e = NULL;
  bool planned = lbx_plan_make(s, box, &p, &e) == 0;
  lbx_error_free(e);
  json_t *cfg = planned ? p.box : json_loads(box->config, 0, NULL);
  json_t *args = json_array(), *env = json_array();
  for (size_t i = 1; planned && p.argv[i]; i++)
    json_array_append_new(args, json_string(p.argv[i]));
  /* the hostname the box gets: --hostname, the image's, else the short ID */
  const char *hostname = json_string_value(json_object_get(cfg, "Hostname"));
  if ((!hostname || !*hostname) && planned)
    hostname = json_string_value(json_object_get(p.image, "Hostname"));
  char short_id[13];
  snprintf(short_id, sizeof short_id, "%.12s", box->id);
  if (!hostname || !*hostname)
    hostname = short_id;
  /* the environment its first process gets: what the launcher adds when
   * the image and the box did not set it (launcher/exec.c env_with) */
  for (size_t i = 0; planned && p.env[i]; i++)
    json_array_append_new(env, json_string(p.env[i]));
  _cleanup_free_ char *hn_env = lbx_xasprintf("HOSTNAME=%s", hostname);
  const char *defaults[] = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                            hn_env, "container=lazybox",
                            json_is_true(json_object_get(cfg, "Tty")) ? "TERM=xterm" : NULL};
  for (size_t d = 0; d < sizeof defaults / sizeof *defaults; d++) {
    if (!defaults[d])
      continue;
    size_t klen = (size_t)(strchr(defaults[d], '=') - defaults[d]) + 1;
    bool set = false;
    for (size_t i = 0; planned && p.env[i] && !set; i++)
      set = strncmp(p.env[i], defaults[d], klen) == 0;
    if (!set)
      json_array_append_new(env, json_string(defaults[d]));
  }
  /* Podman's mount fields (RW, Options, Propagation); ReadOnly kept */
  json_t *mounts = json_array();
  size_t mi;
  json_t *m;
  json_array_foreach(json_object_get(cfg, "Mounts"), mi, m)
  {
    bool bind = strcmp(json_string_value(json_object_get(m, "Type")) ?: "", "bind") == 0;
    bool ro = json_is_true(json_object_get(m, "ReadOnly"));
    json_t *c = json_deep_copy(m);
    if (!bind)
      json_object_set_new(c, "Source", json_string("tmpfs"));
    json_object_set_new(c, "Driver", json_string(""));
    json_object_set_new(c, "Mode", json_string(""));
    json_object_set_new(c, "Options",
                        bind ? json_pack("[s]", "rbind")
                             : json_pack("[s, s, s]", "nosuid", "nodev", "noexec"));
    json_object_set_new(c, "RW", json_boolean(!ro));
    json_object_set_new(c, "Propagation", json_string(bind ? "rprivate" : ""));
    json_array_append_new(mounts, c);
  }
  _cleanup_free_ char *created = lbx_rfc3339(box->created_ns);
  _cleanup_free_ char *started = time_or_zero(box->started_ns);
  _cleanup_free_ char *finished = time_or_zero(running ? 0 : box->finished_ns);
  _cleanup_free_ char *dir = lbx_store_box_dir(s, box->id);
  _cleanup_free_ char *log = lbx_xasprintf("%s/ctr.log", dir);
  const char *state = state_name(box, running);
  json_t *o = json_pack(
      "{s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:{s:s, s:b, s:i, s:i, s:s, s:s}, s:{s:O, s:O, s:o, "
      "s:s, s:s, s:s, s:b, s:b}, s:o, s:{s:b, s:b, s:s, s:b}, s:s}",
      "Id", box->id, "Name", box->name, "Created", created, "Image", box->image, "ImageName",
      json_string_value(json_object_get(cfg, "ImageName")) ?: "", "Path", planned ? p.argv[0] : "",
      "Args", args, "State", "Status", state, "Running", running, "Pid", running ? box->pid : 0,
      "ExitCode", strcmp(state, "exited") == 0 ? box->exit_code : 0, "StartedAt", started,
      "FinishedAt", finished, "Config", "Cmd", json_object_get(cfg, "Cmd") ?: json_array(),
      "Entrypoint", json_object_get(cfg, "Entrypoint") ?: json_null(), "Env", env, "WorkingDir",
      planned && p.workdir ? p.workdir : "/", "User", planned && p.user ? p.user : "", "Hostname",
      hostname, "Tty", json_is_true(json_object_get(cfg, "Tty")), "OpenStdin",
      json_is_true(json_object_get(cfg, "Interactive")), "Mounts", mounts, "HostConfig",
      "AutoRemove", json_is_true(json_object_get(cfg, "AutoRemove")), "ReadonlyRootfs",
      json_is_true(json_object_get(cfg, "ReadOnly")), "NetworkMode",
      json_string_value(json_object_get(cfg, "Net")) ?: "host", "NoNewPrivileges",
      json_is_true(json_object_get(cfg, "NoNewPrivileges")), "LogPath", log);
  json_t *hc = json_object_get(o, "HostConfig");
  json_object_set_new(hc, "UsernsMode",
                      json_string(json_string_value(json_object_get(cfg, "UserNS")) ?: ""));
  json_object_set_new(hc, "Init", json_boolean(json_is_true(json_object_get(cfg, "Init"))));
  if (!planned)
    json_decref(cfg);
  lbx_plan_clear(&p);
  return o;
}
