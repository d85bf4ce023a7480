/* system df, system prune, system check, version. */
#include "cli.h"
#include "config.h"
#include "fs.h"
#include "registry.h"

#include <getopt.h>
#include <jansson.h>
#include <sqlite3.h>
#include <string.h>

#define _cleanup_json_ __attribute__((cleanup(json_decrefp)))

struct fmt_opts {
  const char *format;
  bool all, force;
};

static int
fmt_opt(void *ctx, int opt, char *arg)
{
  struct fmt_opts *o = ctx;
  if (opt == 'f' && arg)
    o->format = arg;
  else if (opt == 'f')
    o->force = true; /* prune's -f: no argument */
  else if (opt == 'a')
    o->all = true;
  else if (opt == 'F')
    o->force = true;
  return 0;
}

static int
df_run(lbx_cli *cli, int argc, char **argv, lbx_err **err)
{
  static const struct option opts[] = {{"format", required_argument, NULL, 'f'}, {0}};
  struct fmt_opts o = {0};
  int rc;
  int first = lbx_parse_opts(&lbx_system_cmds[1], argc, argv, "", opts, fmt_opt, &o, &rc, err);
  if (first < 0)
    return rc;
  bool json = lbx_format_is_json(o.format, err);
  if (*err)
    return 125;
  lbx_store *s = lbx_cli_store(cli, err);
  if (!s)
    return 125;
  lbx_df df;
  if (lbx_store_df(s, &df, err) < 0)
    return 125;
  double ratio = df.stored_bytes ? (double)df.logical_bytes / (double)df.stored_bytes : 1.0;
  if (json) {
    _cleanup_json_ json_t *o2 =
        json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f}", "Images", (json_int_t)df.images,
                  "Layers", (json_int_t)df.layers, "Chains", (json_int_t)df.chains, "Blobs",
                  (json_int_t)df.blobs, "InlineBlobs", (json_int_t)df.inline_blobs, "LogicalBytes",
                  (json_int_t)df.logical_bytes, "StoredBytes", (json_int_t)df.stored_bytes,
                  "DatabaseBytes", (json_int_t)df.db_bytes, "DedupRatio", ratio);
    _cleanup_free_ char *text = json_dumps(o2, JSON_INDENT(4));
    printf("%s\n", text);
    return 0;
  }
  _cleanup_free_ char *logical = lbx_human_size(df.logical_bytes);
  _cleanup_free_ char *stored = lbx_human_size(df.stored_bytes);
  _cleanup_free_ char *db = lbx_human_size(df.db_bytes);
  printf("Images          %llu\n", (unsigned long long)df.images);
  printf("Layers          %llu\n", (unsigned long long)df.layers);
  printf("Blobs           %llu (%llu inline)\n", (unsigned long long)df.blobs,
         (unsigned long long)df.inline_blobs);
  printf("Logical size    %s\n", logical);
  printf("Stored size     %s\n", stored);
  printf("Dedup ratio     %.2f\n", ratio);
  printf("Database size   %s\n", db);
  return 0;
}

static bool
confirm(const char *what)
{
  printf("WARNING! This will remove:\n%s\nAre you sure you want to continue? [y/N] ", what);
  fflush(stdout);
  char line[16];
  if (!fgets(line, sizeof line, stdin))
    return false;
  return line[0] == 'y' || line[0] == 'Y';
}

static int
prune_run(lbx_cli *cli, int argc, char **argv, lbx_err **err)
{
  static const struct option opts[] = {
      {"all", no_argument, NULL, 'a'}, {"force", no_argument, NULL, 'F'}, {0}};
  struct fmt_opts o = {0};
  int rc;
  int first = lbx_parse_opts(&lbx_system_cmds[2], argc, argv, "af", opts, fmt_opt, &o, &rc, err);
  if (first < 0)
    return rc;
  if (first < argc)
    return lbx_error(err, EINVAL, "system prune: unexpected argument \"%s\"", argv[first]), 125;
  if (!o.force && !confirm(o.all ? "  - all images not used by a box\n  - unused layers and content"
                                 : "  - images without a name\n  - unused layers and content"))
    return 0;
  lbx_store *s = lbx_cli_store(cli, err);
  if (!s)
    return 125;
  lbx_image_row *rows;
  size_t n;
  if (lbx_store_images(s, &rows, &n, err) < 0)
    return 125;
  bool header = false;
  rc = 0;
  for (size_t i = 0; i < n && rc == 0; i++) {
    if (lbx_store_image_users(s, rows[i].id, NULL) > 0 || (rows[i].names[0] && !o.all))
      continue;
    for (char **p = rows[i].names; *p && rc == 0; p++)
      if (lbx_store_untag(s, *p, err) < 0)
        rc = 125;
    if (rc == 0 && lbx_store_image_delete(s, rows[i].id, err) < 0)
      rc = 125;
    if (rc == 0) {
      if (!header)
        printf("Deleted Images\n");
      header = true;
      printf("%s\n", rows[i].id);
    }
  }
  lbx_image_rows_free(rows, n);
  if (rc != 0)
    return rc;
  lbx_gc_stats st;
  if (lbx_store_gc(s, &st, err) < 0)
    return 125;
  _cleanup_free_ char *freed = lbx_human_size(st.bytes);
  printf("Total reclaimed space: %s\n", freed);
  return 0;
}

/* ---- check ---- */

struct check_opts {
  const char *format;
  bool verify, repair;
};

enum { OPT_VERIFY = 0x100 };

static int
check_opt(void *ctx, int opt, char *arg)
{
  struct check_opts *o = ctx;
  if (opt == 'f')
    o->format = arg;
  else if (opt == 'r')
    o->repair = true;
  else if (opt == OPT_VERIFY)
    o->verify = true;
  return 0;
}

struct check_out {
  json_t *problems; /* with --format json; else lines are printed as found */
};

static void
on_problem(void *ctx, const lbx_check_problem *p)
{
  static const char *const kinds[] = {
      [LBX_CHECK_DATABASE] = "database", [LBX_CHECK_BLOB] = "blob", [LBX_CHECK_ORPHAN] = "orphan",
      [LBX_CHECK_TMP] = "tmp",           [LBX_CHECK_BOX] = "box",   [LBX_CHECK_UNUSED] = "unused",
  };
  struct check_out *out = ctx;
  if (out->problems) {
    json_array_append_new(out->problems,
                          json_pack("{s:s, s:s, s:s, s:s?}", "Kind", kinds[p->kind], "Object",
                                    p->object, "Reason", p->reason, "Repaired", p->repair));
    return;
  }
  if (p->repair)
    printf("%s: %s; repaired: %s\n", p->object, p->reason, p->repair);
  else
    printf("%s: %s\n", p->object, p->reason);
  fflush(stdout); /* a long --verify shows what it found as it goes */
}

static int
check_run(lbx_cli *cli, int argc, char **argv, lbx_err **err)
{
  static const struct option opts[] = {{"format", required_argument, NULL, 'f'},
                                       {"repair", no_argument, NULL, 'r'},
                                       {"verify", no_argument, NULL, OPT_VERIFY},
                                       {0}};
  struct check_opts o = {0};
  int rc;
  int first = lbx_parse_opts(&lbx_system_cmds[3], argc, argv, "r", opts, check_opt, &o, &rc, err);
  if (first < 0)
    return rc;
  if (first < argc)
    return lbx_error(err, EINVAL, "system check: unexpected argument \"%s\"", argv[first]), 125;
  bool json = lbx_format_is_json(o.format, err);
  if (*err)
    return 125;
  lbx_store *s = lbx_cli_store(cli, err);
  if (!s)
    return 125;
  _cleanup_json_ json_t *problems = json ? json_array() : NULL;
  struct check_out out = {problems};
  lbx_check_opts co = {.verify = o.verify, .repair = o.repair, .problem = on_problem, .ctx = &out};
  lbx_check_stats st;
  if (lbx_store_check(s, &co, &st, err) < 0)
    return 125;
  rc = st.problems > st.repaired ? 1 : 0;
  if (json) {
    _cleanup_json_ json_t *v =
        json_pack("{s:O, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:b}", "Problems", problems, "Found",
                  (json_int_t)st.problems, "Repaired", (json_int_t)st.repaired, "Blobs",
                  (json_int_t)st.blobs, "InlineBlobs", (json_int_t)st.inline_blobs, "Files",
                  (json_int_t)st.files, "Boxes", (json_int_t)st.boxes, "BytesHashed",
                  (json_int_t)st.bytes_hashed, "LoadRunning", st.load_running);
    _cleanup_free_ char *text = json_dumps(v, JSON_INDENT(4));
    printf("%s\n", text);
    return rc;
  }
  if (st.load_running)
    printf("A load or pull was running: files and layers it had not committed were not "
           "checked.\n");
  _cleanup_free_ char *hashed = lbx_human_size(st.bytes_hashed);
  printf("%llu blob files, %llu inline contents, %llu boxes checked%s%s; ",
         (unsigned long long)st.blobs, (unsigned long long)st.inline_blobs,
         (unsigned long long)st.boxes, o.verify ? ", contents hashed: " : "",
         o.verify ? hashed : "");
  if (!st.problems)
    printf("no problems found\n");
  else
    printf("%llu problem%s found, %llu repaired\n", (unsigned long long)st.problems,
           st.problems == 1 ? "" : "s", (unsigned long long)st.repaired);
  return rc;
}

static int
version_run(lbx_cli *cli, int argc, char **argv, lbx_err **err)
{
  (void)cli;
  static const struct option opts[] = {{"format", required_argument, NULL, 'f'}, {0}};
  struct fmt_opts o = {0};
  int rc;
  int first = lbx_parse_opts(&lbx_system_cmds[4], argc, argv, "f:", opts, fmt_opt, &o, &rc, err);
  if (first < 0)
    return rc;
  bool json = lbx_format_is_json(o.format, err);
  if (*err)
    return 125;
  const char *gzip = lbx_stream_have_isal() ? "ISA-L (zlib fallback)" : "zlib";
  const char *zlib_v, *zstd_v;
  lbx_stream_versions(&zlib_v, &zstd_v);
#if defined(__x86_64__)
  const char *arch = "amd64";
#elif defined(__aarch64__)
  const char *arch = "arm64";
#else
  const char *arch = "other";
#endif
  /* the libraries opened when needed: what this machine would load */
  _cleanup_error_ lbx_err *fuse_err = NULL, *curl_err = NULL;
  const char *fuse_v = lbx_fs_fuse_version(&fuse_err);
  const char *curl_v = lbx_registry_curl_version(&curl_err);
  _cleanup_free_ char *fuse =
      fuse_v ? lbx_xasprintf("libfuse %s", fuse_v) : lbx_xstrdup(fuse_err->msg);
  _cleanup_free_ char *curl = lbx_xstrdup(curl_v ? curl_v : curl_err->msg);
  if (json) {
    _cleanup_json_ json_t *v =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "Version", LBX_VERSION, "SQLite",
                  sqlite3_libversion(), "Zlib", zlib_v, "Zstd", zstd_v, "GzipInflate", gzip, "FUSE",
                  fuse, "Curl", curl, "OsArch", arch);
    _cleanup_free_ char *text = json_dumps(v, JSON_INDENT(4));
    printf("%s\n", text);
    return 0;
  }
  printf("Version:      %s\n", LBX_VERSION);
  printf("SQLite:       %s\n", sqlite3_libversion());
  printf("Zlib:         %s\n", zlib_v);
  printf("Zstd:         %s\n", zstd_v);
  printf("Gzip inflate: %s\n", gzip);
  printf("FUSE:         %s\n", fuse);
  printf("Curl:         %s\n", curl);
  printf("OS/Arch:      linux/%s\n", arch);
  return 0;
}

const lbx_cmd lbx_system_cmds[] = {
    {"system", NULL, "Manage the store",
     "Usage: lazybox system COMMAND\n"
     "\n"
     "Commands:\n"
     "  df       show how much space images use, and what deduplication saves\n"
     "  prune    remove unused images and content\n"
     "  check    check the store for damage and leftovers, and repair them\n"},
    {"system df", df_run, "Show store usage",
     "Usage: lazybox system df [--format json]\n"
     "\n"
     "Show the images, layers and distinct contents (blobs) in the store, the\n"
     "bytes all layers hold (logical size) against the bytes stored once each\n"
     "(stored size), their ratio, and the database's size.\n"
     "\n"
     "Options:\n"
     "      --format FORMAT  table (default) or json\n"},
    {"system prune", prune_run, "Remove unused images and content",
     "Usage: lazybox system prune [-a] [-f]\n"
     "\n"
     "Remove images without a name (with -a: every image no box uses), then the\n"
     "layers and contents no image needs. Asks first unless -f is given.\n"
     "\n"
     "Options:\n"
     "  -a, --all     remove every image not used by a box, not only unnamed ones\n"
     "  -f, --force   do not ask for confirmation\n"},
    {"system check", check_run, "Check the store for damage and leftovers",
     "Usage: lazybox system check [--verify] [-r] [--format json]\n"
     "\n"
     "Check the store: the database (SQLite integrity_check, and rows that name\n"
     "missing rows), every blob file against its row (present, size, mode 0444),\n"
     "and what interrupted commands leave: blob files no row names, files in\n"
     "tmp/, box directories without a box and boxes without their directory,\n"
     "boxes recorded running whose supervisor is gone, and layers, trees and\n"
     "contents no image uses. One line per problem, then a summary.\n"
     "\n"
     "--repair removes the leftovers (files no row names, tmp/ files, box\n"
     "directories without a box, and what no image uses, as prune does), records\n"
     "stale boxes as exited and sets blob files back to mode 0444. It never\n"
     "removes what a row names: a missing or damaged content is reported with\n"
     "the images that use it, to be removed (rmi) and loaded or pulled again.\n"
     "\n"
     "Exit status: 0 when no problem is left, 1 when problems remain, 125 when\n"
     "the check could not run.\n"
     "\n"
     "Options:\n"
     "      --verify         also hash every content and compare it with its digest\n"
     "  -r, --repair         repair what can be repaired safely (see above)\n"
     "      --format FORMAT  table (default) or json\n"},
    {"version", version_run, "Show the version and the libraries in use",
     "Usage: lazybox version [--format json]\n"
     "\n"
     "Show lazybox's version and the libraries it uses: SQLite, and zlib, zstd,\n"
     "the gzip inflater, libfuse3 and libcurl as this machine loads them when a\n"
     "command needs them (a library that cannot be loaded says why).\n"
     "\n"
     "Options:\n"
     "  -f, --format FORMAT   table (default) or json\n"},
    {0},
};
