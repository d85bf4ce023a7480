/* Image commands: load, import, images, inspect, tag, rmi. */
#include "cli.h"
#include "mounts.h"
#include "ref.h"

#include <getopt.h>
#include <jansson.h>
#include <string.h>

#define _cleanup_json_ __attribute__((cleanup(json_decrefp)))

/* A failed load may have placed blob files before it failed: remove them
 * now unless another load is running (then the next gc does). Committed
 * layers stay, so loading again does not redo them. */
static void
sweep_after_failure(lbx_store *s)
{
  lbx_gc_stats st;
  lbx_err *e = NULL;
  lbx_store_sweep(s, false, &st, &e);
  lbx_error_free(e);
}

/* ---- load ---- */

struct load_opts {
  const char *input;
  bool quiet;
};

static int
load_opt(void *ctx, int opt, char *arg)
{
  struct load_opts *o = ctx;
  if (opt == 'i')
    o->input = arg;
  else if (opt == 'q')
    o->quiet = true;
  return 0;
}

static int
load_run(lbx_cli *cli, int argc, char **argv, lbx_err **err)
{
  static const struct option opts[] = {
      {"input", required_argument, NULL, 'i'}, {"quiet", no_argument, NULL, 'q'}, {0}};
  struct load_opts o = {0};
  int rc;
  int first = lbx_parse_opts(&lbx_image_cmds[0], argc, argv, "i:q", opts, load_opt, &o, &rc, err);
  if (first < 0)
    return rc;
  if (first < argc)
    return lbx_error(err, EINVAL, "load: unexpected argument \"%s\"", argv[first]), 125;
  /* as Podman: standard input when no -i is given, unless a terminal */
  if (!o.input && isatty(0))
    return lbx_error(err, EINVAL,
                     "load: give the image archive or layout with -i PATH, or on standard input"),
           125;
  if (!o.input)
    o.input = "-";
  lbx_store *s = lbx_cli_store(cli, err);
  if (!s)
    return 125;
  char **names;
  size_t n;
  if (lbx_load(s, o.input, &names, &n, err) < 0) {
    sweep_after_failure(s);
    return 125;
  }
  for (size_t i = 0; i < n; i++) {
    if (!o.quiet)
      printf("Loaded image: %s\n", names[i]);
    free(names[i]);
  }
  free(names);
  return 0;
}

/* ---- import ---- */

struct import_opts {
  const char **changes;
  size_t nchanges;
  const char *message;
  bool quiet;
};

static int
import_opt(void *ctx, int opt, char *arg)
{
  struct import_opts *o = ctx;
  if (opt == 'c') {
    o->changes = lbx_xrealloc(o->changes, (o->nchanges + 1) * sizeof *o->changes);
    o->changes[o->nchanges++] = arg;
  } else if (opt == 'm') {
    o->message = arg;
  } else if (opt == 'q') {
    o->quiet = true;
  }
  return 0;
}

static int
import_run(lbx_cli *cli, int argc, char **argv, lbx_err **err)
{
  static const struct option opts[] = {{"change", required_argument, NULL, 'c'},
                                       {"message", required_argument, NULL, 'm'},
                                       {"quiet", no_argument, NULL, 'q'},
                                       {0}};
  struct import_opts o = {0};
  int rc;
  int first =
      lbx_parse_opts(&lbx_image_cmds[1], argc, argv, "c:m:q", opts, import_opt, &o, &rc, err);
  _cleanup_free_ const char **changes = o.changes;
  if (first < 0)
    return rc;
  if (argc - first < 1 || argc - first > 2)
    return lbx_error(err, EINVAL, "import: expected TARBALL [NAME]"), 125;
  lbx_store *s = lbx_cli_store(cli, err);
  if (!s)
    return 125;
  char id[LBX_DIGEST_HEX];
  if (lbx_import(s, argv[first], argc - first == 2 ? argv[first + 1] : NULL, o.changes, o.nchanges,
                 o.message, id, err) < 0) {
    sweep_after_failure(s);
    return 125;
  }
  printf("%s\n", id);
  return 0;
}

/* ---- images ---- */

struct images_opts {
  bool all, quiet, no_trunc;
  const char *format;
};

static int
images_opt(void *ctx, int opt, char *arg)
{
  struct images_opts *o = ctx;
  switch (opt) {
  case 'a':
    o->all = true;
    break;
  case 'q':
    o->quiet = true;
    break;
  case 'n':
    o->no_trunc = true;
    break;
  case 'f':
    o->format = arg;
    break;
  }
  return 0;
}

static void
split_name(const char *name, char **repo, char **tag)
{
  /* "repo@digest", what a pull by digest names an image: no tag */
  const char *at = strchr(name, '@');
  if (at) {
    *repo = lbx_xstrndup(name, (size_t)(at - name));
    *tag = lbx_xstrdup("<none>");
    return;
  }
  const char *slash = strrchr(name, '/');
  const char *colon = strrchr(slash ? slash : name, ':');
  if (colon) {
    *repo = lbx_xstrndup(name, (size_t)(colon - name));
    *tag = lbx_xstrdup(colon + 1);
  } else {
    *repo = lbx_xstrdup(name);
    *tag = lbx_xstrdup("<none>");
  }
}

/* name is want, or ends in "/" + want: a name given in full or by its last
 * components ("other:v1" is localhost/other:v1, "x" is docker.io/library/x) */
static bool
name_matches(const char *name, const char *want)
{
  size_t n = strlen(name), w = strlen(want);
  return strcmp(name, want) == 0 ||
         (n > w && name[n - w - 1] == '/' && strcmp(name + n - w, want) == 0);
}

/* `images REPO` without a tag, as Podman: every tag of the repository,
 * named in full or by its last components ("other" is localhost/other,
 * "bench/debian" docker.io/bench/debian). */
static bool
repo_matches(const char *name, const char *want)
{
  _cleanup_free_ char *repo = NULL, *tag = NULL;
  split_name(name, &repo, &tag);
  return name_matches(repo, want);
}

static bool
any_repo_matches(char *const *names, const char *want)
{
  for (; *names; names++)
    if (repo_matches(*names, want))
      return true;
  return false;
}

/* The names `images` shows a line for (a new NULL-terminated array of the
 * row's strings): the tagged ones, else the first "repo@digest" one. */
static char **
tagged_names(char *const *names)
{
  size_t n = 0;
  while (names[n])
    n++;
  char **v = lbx_xcalloc(n + 1, sizeof *v);
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    if (!strchr(names[i], '@'))
      v[k++] = names[i];
  if (k == 0 && n > 0)
    v[k++] = names[0];
  return v;
}

/* Podman's Digest (the image's own manifest's, "" when none is known) and
 * RepoDigests (each repository it is named in, @ each digest it was pulled
 * or loaded by); -1 with *err. */
static int
image_digests(lbx_store *s, const char *id, char *const *names, json_t **digest,
              json_t **repo_digests, lbx_err **err)
{
  _cleanup_(lbx_strv_freep) char **d = NULL;
  if (lbx_store_image_digests(s, id, &d, err) < 0)
    return -1;
  *digest = json_string(d[0] ? d[0] : "");
  *repo_digests = json_array();
  for (size_t i = 0; names && names[i]; i++) {
    _cleanup_free_ char *repo = NULL, *tag = NULL;
    split_name(names[i], &repo, &tag);
    for (size_t k = 0; d[k]; k++) {
      _cleanup_free_ char *rd = lbx_xasprintf("%s@%s", repo, d[k]);
      bool seen = false;
      for (size_t j = 0; j < json_array_size(*repo_digests) && !seen; j++)
        seen = strcmp(json_string_value(json_array_get(*repo_digests, j)), rd) == 0;
      if (!seen)
        json_array_append_new(*repo_digests, json_string(rd));
    }
  }
  return 0;
}

static json_t *
image_labels(lbx_store *s, const char *id)
{
  lbx_image_row row;
  _cleanup_free_ char *config = NULL;
  size_t len;
  if (lbx_store_image_get(s, id, &row, &config, &len, NULL) < 0)
    return json_null();
  lbx_image_row_clear(&row);
  _cleanup_json_ json_t *cfg = json_loadb(config, len, 0, NULL);
  json_t *labels = json_object_get(json_object_get(cfg, "config"), "Labels");
  return labels ? json_incref(labels) : json_null();
}

static int
images_run(lbx_cli *cli, int argc, char **argv, lbx_err **err)
{
  static const struct option opts[] = {{"all", no_argument, NULL, 'a'},
                                       {"quiet", no_argument, NULL, 'q'},
                                       {"no-trunc", no_argument, NULL, 'n'},
                                       {"format", required_argument, NULL, 'f'},
                                       {0}};
  struct images_opts o = {0};
  int rc;
  int first = lbx_parse_opts(&lbx_image_cmds[2], argc, argv, "aq", opts, images_opt, &o, &rc, err);
  if (first < 0)
    return rc;
  /* without --format, Podman's own table: columns as wide as their widest
   * cell, through the template path */
  if ((!o.format || strcmp(o.format, "table") == 0) && !o.quiet)
    o.format = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}";
  bool tmpl = lbx_format_is_template(o.format);
  bool json = !tmpl && lbx_format_is_json(o.format, err);
  if (*err)
    return 125;
  lbx_store *s = lbx_cli_store(cli, err);
  if (!s)
    return 125;
  /* an optional operand filters by name, as "podman images busybox": a
   * repository without a tag lists all its tags; a name with a tag, a
   * digest or an ID prefix, that one image */
  char filter_id[LBX_DIGEST_HEX] = "";
  const char *filter_repo = NULL, *filter_name = NULL;
  if (first < argc) {
    const char *a = argv[first], *slash = strrchr(a, '/');
    bool tagless = !strchr(a, '@') && !strchr(slash ? slash : a, ':');
    /* no match is an empty list, as in Podman, not an error */
    lbx_err *e = NULL;
    /* "sha256:<ID>" has a colon but no tag: that image, all its lines */
    if (!tagless && !strchr(a, '@') && strncmp(a, "sha256:", 7) != 0)
      filter_name = a;
    if (tagless && !lbx_store_image_by_id(s, a, filter_id))
      filter_repo = a;
    else if (lbx_image_resolve(s, a, filter_id, &e) < 0)
      snprintf(filter_id, sizeof filter_id, "-"); /* matches no ID */
    lbx_error_free(e);
  }
  lbx_image_row *rows;
  size_t n;
  if (lbx_store_images(s, &rows, &n, err) < 0)
    return 125;
  if (tmpl) {
    /* the fields of Podman's `images --format` templates: one value per
     * name, as the table has one line per name */
    _cleanup_json_ json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
      if ((*filter_id && strcmp(rows[i].id, filter_id) != 0) ||
          (filter_repo && !any_repo_matches(rows[i].names, filter_repo)))
        continue;
      _cleanup_free_ char *created = lbx_rfc3339(rows[i].created_ns);
      _cleanup_free_ char *ago = lbx_human_ago(rows[i].created_ns);
      _cleanup_free_ char *size = lbx_human_size(rows[i].size);
      _cleanup_free_ char *id =
          o.no_trunc ? lbx_xasprintf("sha256:%s", rows[i].id) : lbx_xstrndup(rows[i].id, 12);
      json_t *names = json_array();
      for (char **p = rows[i].names; *p; p++)
        json_array_append_new(names, json_string(*p));
      json_int_t users = (json_int_t)lbx_store_image_users(s, rows[i].id, NULL);
      json_t *digest = NULL, *repo_digests = NULL;
      if (image_digests(s, rows[i].id, NULL, &digest, &repo_digests, err) < 0) {
        json_decref(names);
        lbx_image_rows_free(rows, n);
        return 125;
      }
      json_decref(repo_digests);
      /* one line per tagged name, as Podman lists them; an image named
       * only by digest ("repo@sha256:...") gets one <none> line */
      char **shown = tagged_names(rows[i].names);
      for (size_t k = 0; k == 0 || shown[k]; k++) {
        if (shown[k] && ((filter_repo && !repo_matches(shown[k], filter_repo)) ||
                         (filter_name && !name_matches(shown[k], filter_name))))
          continue; /* only the repository's tags, or the name asked for */
        _cleanup_free_ char *repo = NULL, *tag = NULL;
        if (shown[k])
          split_name(shown[k], &repo, &tag);
        json_t *labels = image_labels(s, rows[i].id);
        if (json_is_null(labels)) {
          json_decref(labels);
          labels = json_object(); /* Podman's map[] */
        }
        json_t *v = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:O, s:o}", "ID", id,
                              "Repository", repo ? repo : "<none>", "Tag", tag ? tag : "<none>",
                              "CreatedAt", created, "CreatedSince", ago, "Created", ago, "Size",
                              size, "Containers", users, "Names", names, "Labels", labels);
        json_object_set_new(v, "Id", json_string(rows[i].id));
        json_object_set_new(v, "Digest", json_incref(digest));
        json_object_set_new(v, "VirtualSize", json_string(size));
        json_object_set_new(v, "Dangling", json_boolean(!rows[i].names[0]));
        json_object_set_new(v, "ReadOnly", json_false());
        json_array_append_new(arr, v);
        if (!shown[k])
          break;
      }
      free(shown);
      json_decref(names);
      json_decref(digest);
    }
    static const char *const headers[] = {"ID", "IMAGE ID", "CreatedSince", "CREATED", NULL};
    if (lbx_format_print(o.format, arr, headers, err) < 0) {
      lbx_image_rows_free(rows, n);
      return 125;
    }
  } else if (json) {
    _cleanup_json_ json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
      if ((*filter_id && strcmp(rows[i].id, filter_id) != 0) ||
          (filter_repo && !any_repo_matches(rows[i].names, filter_repo)))
        continue;
      json_t *names = json_array();
      for (char **p = rows[i].names; *p; p++)
        if (!strchr(*p, '@')) /* tags only: "repo@digest" is not one */
          json_array_append_new(names, json_string(*p));
      _cleanup_free_ char *created = lbx_rfc3339(rows[i].created_ns);
      json_t *digest, *repo_digests;
      if (image_digests(s, rows[i].id, rows[i].names, &digest, &repo_digests, err) < 0) {
        json_decref(names);
        lbx_image_rows_free(rows, n);
        return 125;
      }
      /* Podman's fields; History is the names the image has had, which
       * here are the names it has */
      json_t *v = json_pack(
          "{s:s, s:s, s:o, s:O, s:O, s:o, s:o, s:I, s:s, s:I, s:i, s:I, s:I, s:o, s:b, s:b, s:s}",
          "Id", rows[i].id, "ParentId", "", "Names", names, "RepoTags", names, "History", names,
          "RepoDigests", repo_digests, "Digest", digest, "Created",
          (json_int_t)(rows[i].created_ns / 1000000000), "CreatedAt", created, "Size",
          (json_int_t)rows[i].size, "SharedSize", 0, "VirtualSize", (json_int_t)rows[i].size,
          "Containers", (json_int_t)lbx_store_image_users(s, rows[i].id, NULL), "Labels",
          image_labels(s, rows[i].id), "Dangling", !rows[i].names[0], "ReadOnly", 0, "ChainId",
          rows[i].chain_id);
      json_array_append_new(arr, v);
    }
    _cleanup_free_ char *text = json_dumps(arr, JSON_INDENT(4));
    printf("%s\n", text);
  } else {
    for (size_t i = 0; i < n; i++)
      if ((!*filter_id || strcmp(rows[i].id, filter_id) == 0) &&
          (!filter_repo || any_repo_matches(rows[i].names, filter_repo)))
        printf(o.no_trunc ? "sha256:%s\n" : "%.12s\n", rows[i].id);
  }
  lbx_image_rows_free(rows, n);
  return 0;
}

/* ---- inspect ---- */

struct inspect_opts {
  const char *format;
  const char *type;
};

static int
inspect_opt(void *ctx, int opt, char *arg)
{
  struct inspect_opts *o = ctx;
  if (opt == 'f')
    o->format = arg;
  else if (opt == 't')
    o->type = arg;
  return 0;
}

static json_t *
inspect_one(lbx_store *s, const char *id, lbx_err **err)
{
  lbx_image_row row;
  _cleanup_free_ char *config = NULL;
  size_t len;
  if (lbx_store_image_get(s, id, &row, &config, &len, err) < 0)
    return NULL;
  lbx_image_layer *layers = NULL;
  size_t nl = 0;
  if (lbx_store_image_layers(s, id, &layers, &nl, err) < 0) {
    lbx_image_row_clear(&row);
    return NULL;
  }
  _cleanup_json_ json_t *cfg = json_loadb(config, len, 0, NULL);
  json_t *names = json_array(), *diff_ids = json_array(), *digests = json_array();
  for (char **p = row.names; *p; p++)
    if (!strchr(*p, '@')) /* RepoTags: "repo@digest" names go to RepoDigests */
      json_array_append_new(names, json_string(*p));
  for (size_t i = 0; i < nl; i++) {
    json_array_append_new(diff_ids, json_string(layers[i].diff_id));
    json_array_append_new(digests, json_string(layers[i].digest));
  }
  _cleanup_free_ char *created = lbx_rfc3339(row.created_ns);
  json_t *digest, *repo_digests;
  if (image_digests(s, id, row.names, &digest, &repo_digests, err) < 0) {
    json_decref(names);
    json_decref(diff_ids);
    json_decref(digests);
    lbx_image_layers_free(layers, nl);
    lbx_image_row_clear(&row);
    return NULL;
  }
  json_t *o = json_pack("{s:s, s:o, s:s, s:s, s:s, s:O, s:{s:s, s:o}, s:o, s:I, s:I, s:s, s:O}",
                        "Id", id, "RepoTags", names, "Created", created, "Architecture",
                        json_string_value(json_object_get(cfg, "architecture")) ?: "", "Os",
                        json_string_value(json_object_get(cfg, "os")) ?: "", "Config",
                        json_object_get(cfg, "config") ?: json_object(), "RootFS", "Type", "layers",
                        "Layers", diff_ids, "Layers", digests, "Size", (json_int_t)row.size,
                        "Containers", (json_int_t)lbx_store_image_users(s, id, NULL), "ChainId",
                        row.chain_id, "History", json_object_get(cfg, "history") ?: json_array());
  json_object_set_new(o, "Digest", digest);
  json_object_set_new(o, "RepoDigests", repo_digests);
  json_t *author = json_object_get(cfg, "author");
  if (author)
    json_object_set(o, "Author", author);
  lbx_image_layers_free(layers, nl);
  lbx_image_row_clear(&row);
  return o;
}

static int
inspect_run(lbx_cli *cli, int argc, char **argv, lbx_err **err)
{
  static const struct option opts[] = {
      {"format", required_argument, NULL, 'f'}, {"type", required_argument, NULL, 't'}, {0}};
  struct inspect_opts o = {0};
  int rc;
  int first =
      lbx_parse_opts(&lbx_image_cmds[3], argc, argv, "f:t:", opts, inspect_opt, &o, &rc, err);
  if (first < 0)
    return rc;
  const char *type = o.type ? o.type : "all";
  if (strcmp(type, "container") == 0)
    type = "box";
  if (strcmp(type, "image") != 0 && strcmp(type, "box") != 0 && strcmp(type, "all") != 0)
    return lbx_error(err, EINVAL, "inspect: --type \"%s\": use image, box (or container), all",
                     o.type),
           125;
  if (first >= argc)
    return lbx_error(err, EINVAL, "inspect: name at least one image or box"), 125;
  lbx_store *s = lbx_cli_store(cli, err);
  if (!s)
    return 125;
  _cleanup_json_ json_t *arr = json_array();
  rc = 0;
  for (int i = first; i < argc; i++) {
    char id[LBX_DIGEST_HEX];
    lbx_err *e = NULL;
    json_t *one = NULL;
    /* a box first, as Podman looks at containers before images */
    if (strcmp(type, "image") != 0) {
      lbx_box_row box = {0};
      if (lbx_store_box_find(s, argv[i], &box) == 1)
        one = lbx_cli_box_json(s, &box);
      lbx_box_row_clear(&box);
      if (!one && strcmp(type, "box") == 0)
        lbx_error(&e, ENOENT, "inspect: no such box: %s", argv[i]);
    }
    if (!one && !e && lbx_image_resolve(s, argv[i], id, &e) == 0)
      one = inspect_one(s, id, &e);
    if (one) {
      json_array_append_new(arr, one);
    } else {
      /* every missing name is reported; the last one is printed by main */
      if (*err) {
        fprintf(stderr, "Error: %s\n", (*err)->msg);
        lbx_error_free(*err);
      }
      *err = e;
      rc = 125;
    }
  }
  /* --format TEMPLATE: one line per image or box, as `podman inspect -f` */
  if (lbx_format_is_template(o.format)) {
    lbx_err *terr = NULL;
    if (json_array_size(arr) > 0 && lbx_format_print(o.format, arr, NULL, &terr) < 0) {
      if (*err) {
        fprintf(stderr, "Error: %s\n", (*err)->msg);
        lbx_error_free(*err);
      }
      *err = terr;
      return 125;
    }
    return rc;
  }
  /* nothing at all found: only the error, as the failure it is */
  if (json_array_size(arr) > 0 || rc == 0) {
    _cleanup_free_ char *text = json_dumps(arr, JSON_INDENT(4));
    printf("%s\n", text);
  }
  return rc;
}

/* ---- tag ---- */

static int
tag_run(lbx_cli *cli, int argc, char **argv, lbx_err **err)
{
  int rc;
  int first = lbx_parse_opts(&lbx_image_cmds[4], argc, argv, "", NULL, lbx_no_opt, NULL, &rc, err);
  if (first < 0)
    return rc;
  if (argc - first < 2)
    return lbx_error(err, EINVAL, "tag: expected IMAGE NAME [NAME...]"), 125;
  lbx_store *s = lbx_cli_store(cli, err);
  if (!s)
    return 125;
  char id[LBX_DIGEST_HEX];
  if (lbx_image_resolve(s, argv[first], id, err) < 0)
    return 125;
  for (int i = first + 1; i < argc; i++) {
    _cleanup_(lbx_ref_freep) lbx_ref *ref = NULL;
    if (lbx_ref_parse(argv[i], LBX_REF_LOCAL, &ref, err) < 0)
      return 125;
    if (ref->digest)
      return lbx_error(err, EINVAL, "tag: \"%s\": a name with a digest cannot be a tag", argv[i]),
             125;
    _cleanup_free_ char *name = lbx_ref_string(ref);
    if (lbx_store_tag(s, name, id, err) < 0)
      return 125;
  }
  return 0;
}

/* ---- rmi ---- */

struct rmi_opts {
  bool force, all;
};

static int
rmi_opt(void *ctx, int opt, char *arg)
{
  (void)arg;
  struct rmi_opts *o = ctx;
  if (opt == 'f')
    o->force = true;
  else if (opt == 'a')
    o->all = true;
  return 0;
}

/* rmi -f: the image's boxes go with it, as in Podman (not mounted ones). */
static int
remove_boxes_of(lbx_store *s, const char *id, lbx_err **err)
{
  lbx_box_row *rows;
  size_t n;
  if (lbx_store_boxes(s, &rows, &n, err) < 0)
    return -1;
  lbx_mount_ent *m = NULL;
  size_t nm = 0;
  lbx_mounts_list(lbx_store_root(s), &m, &nm);
  int r = 0;
  /* every box is checked before any goes: a refusal removes nothing */
  for (size_t i = 0; i < n && r == 0; i++) {
    if (strcmp(rows[i].image, id) != 0)
      continue;
    if (lbx_cli_box_running(s, &rows[i]))
      r = lbx_error(err, EBUSY, "box %s of image %.12s is running: stop it first", rows[i].name,
                    id);
    _cleanup_free_ char *src = lbx_xasprintf("box:%s", rows[i].id);
    for (size_t k = 0; k < nm && r == 0; k++)
      if (strcmp(m[k].image, src) == 0)
        r = lbx_error(err, EBUSY,
                      "box %s of image %.12s is mounted at %s: run lazybox umount first",
                      rows[i].name, id, m[k].dir);
  }
  for (size_t i = 0; i < n && r == 0; i++)
    if (strcmp(rows[i].image, id) == 0 && lbx_store_box_delete(s, rows[i].id, err) < 0)
      r = -1;
  lbx_mounts_free(m, nm);
  for (size_t i = 0; i < n; i++)
    lbx_box_row_clear(&rows[i]);
  free(rows);
  return r;
}

/* Removes the image itself: every name, then the row. */
static int
remove_image(lbx_store *s, const char *id, char **names, bool force, lbx_err **err)
{
  /* a mount's daemon reads the image's rows and blobs: never pull them away */
  lbx_mount_ent *m;
  size_t nm;
  if (lbx_mounts_list(lbx_store_root(s), &m, &nm) == 0) {
    for (size_t i = 0; i < nm; i++)
      if (strcmp(m[i].image, id) == 0) {
        lbx_error(err, EBUSY, "image %.12s is mounted at %s: run lazybox umount first", id,
                  m[i].dir);
        lbx_mounts_free(m, nm);
        return -1;
      }
    lbx_mounts_free(m, nm);
  }
  _cleanup_free_ char *box = NULL;
  int users = lbx_store_image_users(s, id, &box);
  if (users > 0 && !force)
    return lbx_error(err, EBUSY,
                     "image %.12s is used by box %s%s: remove the box%s first, or use rmi -f", id,
                     box ? box : "?", users > 1 ? " and others" : "", users > 1 ? "es" : "");
  if (users > 0 && remove_boxes_of(s, id, err) < 0)
    return -1;
  for (char **p = names; p && *p; p++) {
    if (lbx_store_untag(s, *p, err) < 0)
      return -1;
    printf("Untagged: %s\n", *p);
  }
  if (lbx_store_image_delete(s, id, err) < 0)
    return -1;
  printf("Deleted: %s\n", id);
  return 0;
}

static int
rmi_one(lbx_store *s, const char *arg, bool force, lbx_err **err)
{
  char id[LBX_DIGEST_HEX];
  if (lbx_image_resolve(s, arg, id, err) < 0) {
    /* -f: a missing image is no error, as Podman (cleanup scripts) */
    if (force && *err && (*err)->code == ENOENT) {
      lbx_error_free(*err);
      *err = NULL;
      return 0;
    }
    return -1;
  }
  lbx_image_row row;
  if (lbx_store_image_get(s, id, &row, NULL, NULL, err) < 0)
    return -1;
  size_t nnames = 0;
  while (row.names[nnames])
    nnames++;
  /* A name of an image that has others: only that name goes. */
  const char *hex = strncmp(arg, "sha256:", 7) == 0 ? arg + 7 : arg;
  bool by_id = strncmp(id, hex, strlen(hex)) == 0 && strlen(hex) >= 3;
  int r = 0;
  if (!by_id && nnames > 1) {
    _cleanup_(lbx_ref_freep) lbx_ref *ref = NULL;
    char *match = NULL;
    if (lbx_ref_parse(arg, 0, &ref, NULL) == 0) {
      _cleanup_free_ char *full = lbx_ref_string(ref);
      _cleanup_(lbx_ref_freep) lbx_ref *local = NULL;
      _cleanup_free_ char *lfull =
          lbx_ref_parse(arg, LBX_REF_LOCAL, &local, NULL) == 0 ? lbx_ref_string(local) : NULL;
      for (size_t i = 0; i < nnames && !match; i++)
        if (strcmp(row.names[i], full) == 0 || (lfull && strcmp(row.names[i], lfull) == 0))
          match = row.names[i];
      /* a short name matched through another registry */
      for (size_t i = 0; i < nnames && !match; i++) {
        if (name_matches(row.names[i], arg))
          match = row.names[i];
      }
    }
    if (match) {
      if (lbx_store_untag(s, match, err) < 0)
        r = -1;
      else
        printf("Untagged: %s\n", match);
      lbx_image_row_clear(&row);
      return r;
    }
  }
  if (by_id && nnames > 1 && !force)
    r = lbx_error(err, EBUSY,
                  "image %.12s has %zu names (%s, ...): remove them by name, or use rmi -f", id,
                  nnames, row.names[0]);
  else
    r = remove_image(s, id, row.names, force, err);
  lbx_image_row_clear(&row);
  return r;
}

static int
rmi_run(lbx_cli *cli, int argc, char **argv, lbx_err **err)
{
  static const struct option opts[] = {
      {"force", no_argument, NULL, 'f'}, {"all", no_argument, NULL, 'a'}, {0}};
  struct rmi_opts o = {0};
  int rc;
  int first = lbx_parse_opts(&lbx_image_cmds[5], argc, argv, "fa", opts, rmi_opt, &o, &rc, err);
  if (first < 0)
    return rc;
  if (first >= argc && !o.all)
    return lbx_error(err, EINVAL, "rmi: name at least one image, or use --all"), 125;
  lbx_store *s = lbx_cli_store(cli, err);
  if (!s)
    return 125;
  rc = 0;
  if (o.all) {
    lbx_image_row *rows;
    size_t n;
    if (lbx_store_images(s, &rows, &n, err) < 0)
      return 125;
    for (size_t i = 0; i < n && rc == 0; i++)
      if (remove_image(s, rows[i].id, rows[i].names, o.force, err) < 0)
        rc = 125;
    lbx_image_rows_free(rows, n);
  }
  for (int i = first; i < argc && rc == 0; i++)
    if (rmi_one(s, argv[i], o.force, err) < 0)
      rc = 125;
  lbx_gc_stats st;
  lbx_err *gerr = NULL;
  if (lbx_store_gc(s, &st, &gerr) < 0) {
    if (!*err)
      *err = gerr;
    else
      lbx_error_free(gerr);
    return 125;
  }
  lbx_log(cli, LBX_LOG_INFO, "removed %llu layers, %llu blobs, %llu files",
          (unsigned long long)st.layers, (unsigned long long)st.blobs,
          (unsigned long long)st.files);
  return rc;
}

const lbx_cmd lbx_image_cmds[] = {
    {"load", load_run, "Load an image from a docker-archive tarball or an OCI layout",
     "Usage: lazybox load [-i PATH] [-q]\n"
     "\n"
     "Load images from a docker-archive tarball (docker save), or from an OCI\n"
     "image layout given as a directory or a tar file. Layers may be gzip, zstd\n"
     "or uncompressed; layers already in the store are not read again.\n"
     "Without -i (or with -i -) the archive is read from standard input.\n"
     "\n"
     "Options:\n"
     "  -i, --input PATH   the archive or layout to load\n"
     "  -q, --quiet        print nothing on success\n"},
    {"import", import_run, "Import a rootfs tarball as a one-layer image",
     "Usage: lazybox import [OPTIONS] TARBALL [NAME]\n"
     "\n"
     "Make an image of one layer from a plain rootfs tarball (gzip, zstd or\n"
     "uncompressed; - reads standard input). Prints the new image's ID.\n"
     "A NAME without a registry is named under localhost/.\n"
     "\n"
     "Options:\n"
     "  -c, --change INSTR    apply a Dockerfile instruction to the config:\n"
     "                        CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL,\n"
     "                        USER, VOLUME, WORKDIR (\"CMD /bin/sh\" or \"CMD=/bin/sh\")\n"
     "  -m, --message TEXT    the history comment\n"
     "  -q, --quiet           accepted for Podman compatibility\n"},
    {"images", images_run, "List images in the store",
     "Usage: lazybox images [OPTIONS] [IMAGE]\n"
     "\n"
     "List images: REPOSITORY TAG IMAGE ID CREATED SIZE, one line per name,\n"
     "each column as wide as its widest cell. IMAGE without a tag lists every\n"
     "tag of that repository (\"other\" matches localhost/other); with a tag,\n"
     "that name; an ID prefix, that image.\n"
     "\n"
     "Options:\n"
     "  -a, --all            show all images (lazybox keeps no intermediate ones)\n"
     "  -q, --quiet          print image IDs only\n"
     "      --no-trunc       print full image IDs\n"
     "      --format FORMAT  table (default), json, or a Go template, one line\n"
     "                       per name: {{.ID}} {{.Repository}} {{.Tag}}\n"
     "                       {{.CreatedAt}} {{.CreatedSince}} {{.Created}}\n"
     "                       {{.Size}} {{.Containers}} {{.Names}} {{.Labels}}\n"
     "                       {{.Id}} {{.Dangling}} {{.Digest}}\n"
     "                       (\"table \" first: a header and aligned columns)\n"
     "\n"
     "Templates take fields ({{.A.B}}), json, index, len, join, upper, lower,\n"
     "split, pipelines, if/else/else if, range, with; \\t and \\n are a tab\n"
     "and a newline.\n"},
    {"inspect", inspect_run, "Show an image's or a box's configuration as JSON",
     "Usage: lazybox inspect [OPTIONS] NAME [NAME...]\n"
     "\n"
     "Print a JSON array with one object per box or image (a box is looked for\n"
     "first). An image: Id, RepoTags, Digest (its manifest's), RepoDigests\n"
     "(each repository it is named in @ each digest it came by), Created,\n"
     "Architecture, Os, Config, RootFS (diff IDs), Layers (layer digests), Size,\n"
     "Containers, ChainId, History.\n"
     "A box: Id, Name, Created, Image, ImageName, Path, Args, State (Status,\n"
     "Running, Pid, ExitCode, StartedAt, FinishedAt), Config (Cmd, Entrypoint,\n"
     "Env, WorkingDir, User, Hostname, Tty, OpenStdin), Mounts, HostConfig\n"
     "(AutoRemove, ReadonlyRootfs, NetworkMode, NoNewPrivileges), LogPath.\n"
     "\n"
     "Options:\n"
     "  -f, --format FORMAT  json (default), or a Go template applied to each\n"
     "                       object: -f '{{.State.Pid}}', '{{json .Config.Env}}',\n"
     "                       '{{range .Mounts}}{{.Source}} {{end}}'\n"
     "  -t, --type TYPE      image, box (or container), or all (default)\n"
     "\n"
     "Templates take fields ({{.A.B}}), json, index, len, join, upper, lower,\n"
     "split, pipelines, if/else/else if, range, with; \\t and \\n are a tab\n"
     "and a newline; a field an object lacks prints <no value>.\n"},
    {"tag", tag_run, "Add names to an image",
     "Usage: lazybox tag IMAGE NAME [NAME...]\n"
     "\n"
     "Give IMAGE more names. A NAME without a registry is named under\n"
     "localhost/; a NAME another image had moves to IMAGE.\n"},
    {"rmi", rmi_run, "Remove images",
     "Usage: lazybox rmi [OPTIONS] IMAGE [IMAGE...]\n"
     "\n"
     "Remove an image by name or ID. A name of an image that has other names\n"
     "only removes that name. Content no remaining image uses is deleted.\n"
     "\n"
     "Options:\n"
     "  -a, --all     remove every image\n"
     "  -f, --force   remove an image with several names by ID, or one that\n"
     "                boxes use (the boxes, if not mounted, are removed with it);\n"
     "                an image that is not there is no error\n"},
    {0},
};
