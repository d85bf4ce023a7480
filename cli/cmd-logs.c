/* logs: what a box printed, from its k8s-file log. */
#include "cli.h"
#include "io.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

struct logs_opts {
  bool follow, timestamps;
  const char *since, *until, *tail;
};

static int
logs_opt(void *ctx, int opt, char *arg)
{
  struct logs_opts *o = ctx;
  if (opt == 'f')
    o->follow = true;
  else if (opt == 't')
    o->timestamps = true;
  else if (opt == 'S')
    o->since = arg;
  else if (opt == 'U')
    o->until = arg;
  else if (opt == 'n')
    o->tail = arg;
  return 0;
}

/* The values are checked here rather than in logs_opt, to say what is wrong. */
static int
parse_time_opt(const char *name, const char *value, int64_t now, int64_t *out, lbx_err **err)
{
  if (!value)
    return 0;
  if (lbx_parse_time(value, now, out) < 0)
    return lbx_error(
        err, EINVAL,
        "logs: --%s \"%s\": use an RFC 3339 time (2026-11-23T17:07:26Z), a date "
        "(2026-11-23), Unix seconds (1700000000) or a duration before now (10m, 1h30m)",
        name, value);
  return 0;
}

static int
parse_tail(const char *value, long *out, lbx_err **err)
{
  if (!value)
    return 0;
  char *end;
  errno = 0;
  long n = strtol(value, &end, 10);
  if (errno || end == value || *end || n < -1)
    return lbx_error(err, EINVAL, "logs: --tail \"%s\": use a number of lines, or -1 for all",
                     value);
  *out = n;
  return 0;
}

static int
logs_run(lbx_cli *cli, int argc, char **argv, lbx_err **err)
{
  static const struct option opts[] = {
      {"follow", no_argument, NULL, 'f'},      {"timestamps", no_argument, NULL, 't'},
      {"since", required_argument, NULL, 'S'}, {"until", required_argument, NULL, 'U'},
      {"tail", required_argument, NULL, 'n'},  {0}};
  struct logs_opts lo = {0};
  int rc;
  int first = lbx_parse_opts(&lbx_logs_cmds[0], argc, argv, "ftn:", opts, logs_opt, &lo, &rc, err);
  if (first < 0)
    return rc;
  if (argc - first != 1)
    return lbx_error(err, EINVAL, "logs: name one box"), 125;
  lbx_logs_opts o = {.tail = -1, .follow = lo.follow, .timestamps = lo.timestamps};
  int64_t now = lbx_now_ns();
  if (parse_time_opt("since", lo.since, now, &o.since_ns, err) < 0 ||
      parse_time_opt("until", lo.until, now, &o.until_ns, err) < 0 ||
      parse_tail(lo.tail, &o.tail, err) < 0)
    return 125;
  _cleanup_(lbx_box_row_clear) lbx_box_row box = {0};
  lbx_store *s = lbx_cli_store_box(cli, argv[first], &box, err);
  if (!s)
    return 125;
  _cleanup_free_ char *dir = lbx_store_box_dir(s, box.id);
  _cleanup_free_ char *path = lbx_xasprintf("%s/ctr.log", dir);
  if (lbx_logs_print(path, &o, stdout, stderr, err) < 0)
    return lbx_error_prefix(err, "box %s", box.name), 125;
  return 0;
}

const lbx_cmd lbx_logs_cmds[] = {
    {"logs", logs_run, "Show what a box printed",
     "Usage: lazybox logs [OPTIONS] BOX\n"
     "\n"
     "Show the output of BOX (name, ID or ID prefix) from its log: what the box\n"
     "wrote to its standard output here on standard output, and its standard\n"
     "error on standard error, line by line in the order it was written. A box\n"
     "that never ran shows nothing.\n"
     "\n"
     "Options:\n"
     "  -f, --follow       keep showing new output as the box writes it, until the\n"
     "                     box ends (or Ctrl-C)\n"
     "  -t, --timestamps   begin each line with the time it was written\n"
     "                     (RFC 3339 in UTC, 2026-11-23T17:07:26.123456789Z)\n"
     "      --since TIME   only lines written at TIME or later\n"
     "      --until TIME   only lines written at TIME or earlier (with -f: stop\n"
     "                     following once TIME has passed)\n"
     "  -n, --tail N       only the last N lines (-1, the default: all), then with\n"
     "                     -f what comes next\n"
     "\n"
     "TIME is an RFC 3339 time (2026-11-23T17:07:26Z, 2026-11-23T18:07:26.5+01:00),\n"
     "a date or a time without zone in local time (2026-11-23,\n"
     "2026-11-23T17:07:26), Unix seconds (1700000000 or 1700000000.25), or a\n"
     "duration before now (45s, 10m, 1h30m, 500ms; units h, m, s, ms, us, ns).\n"},
    {0},
};
