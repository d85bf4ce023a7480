/* lazybox: global options, command dispatch, and the one place errors are
 * printed. */
#include "cli.h"
#include "config.h"

#include <getopt.h>
#include <stdarg.h>
#include <string.h>

static const char global_help[] =
    "Usage: lazybox [GLOBAL OPTIONS] COMMAND [ARG...]\n"
    "\n"
    "A rootless image and box manager.\n"
    "\n"
    "Global options:\n"
    "  --root DIR         store directory (env LAZYBOX_ROOT; default\n"
    "                     $XDG_DATA_HOME/lazybox, or /var/lib/lazybox as root)\n"
    "  --log-level LEVEL  error, warn, info or debug (default warn)\n"
    "  -h, --help         show this help\n"
    "  -v, --version      show the version\n"
    "\n"
    "Commands:\n";

static const lbx_cmd *const tables[] = {lbx_image_cmds, lbx_pull_cmds,  lbx_box_cmds,
                                        lbx_run_cmds,   lbx_logs_cmds,  lbx_cp_cmds,
                                        lbx_mount_cmds, lbx_system_cmds};

/* Podman's other names for a command, named in that command's help */
static const char *const aliases[][2] = {{"unmount", "umount"}};

static const lbx_cmd *
find_cmd(const char *name)
{
  for (size_t a = 0; a < LBX_ARRAY_SIZE(aliases); a++)
    if (strcmp(name, aliases[a][0]) == 0)
      name = aliases[a][1];
  for (size_t t = 0; t < LBX_ARRAY_SIZE(tables); t++)
    for (const lbx_cmd *c = tables[t]; c->name; c++)
      if (strcmp(c->name, name) == 0)
        return c;
  return NULL;
}

static void
print_global_help(FILE *f)
{
  fputs(global_help, f);
  for (size_t t = 0; t < LBX_ARRAY_SIZE(tables); t++)
    for (const lbx_cmd *c = tables[t]; c->name; c++)
      if (!strchr(c->name, ' '))
        fprintf(f, "  %-10s %s\n", c->name, c->summary);
  fputs("\nRun 'lazybox COMMAND --help' for more about a command.\n", f);
}

static char *
default_root(void)
{
  const char *env = getenv("LAZYBOX_ROOT");
  if (env && *env)
    return lbx_xstrdup(env);
  if (geteuid() == 0)
    return lbx_xstrdup("/var/lib/lazybox");
  const char *xdg = getenv("XDG_DATA_HOME");
  if (xdg && *xdg == '/')
    return lbx_xasprintf("%s/lazybox", xdg);
  const char *home = getenv("HOME");
  return lbx_xasprintf("%s/.local/share/lazybox", home && *home ? home : ".");
}

int
lbx_no_opt(void *ctx, int opt, char *arg)
{
  (void)ctx;
  (void)opt;
  (void)arg;
  return 0;
}

lbx_store *
lbx_cli_store(lbx_cli *cli, lbx_err **err)
{
  if (!cli->store && lbx_store_open(cli->root, 0, &cli->store, err) < 0)
    return NULL;
  return cli->store;
}

void
lbx_log(const lbx_cli *cli, enum lbx_log_level level, const char *fmt, ...)
{
  if (level > cli->log_level)
    return;
  static const char *const names[] = {"error", "warn", "info", "debug"};
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "%s: ", names[level]);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

int
lbx_parse_opts(const lbx_cmd *cmd, int argc, char **argv, const char *shortopts,
               const struct option *longopts, int (*on_opt)(void *ctx, int opt, char *arg),
               void *ctx, int *exit_code, lbx_err **err)
{
  /* every command takes --help; append it to the command's own options */
  size_t n = 0;
  while (longopts && longopts[n].name)
    n++;
  _cleanup_free_ struct option *all = lbx_xcalloc(n + 2, sizeof *all);
  if (n)
    memcpy(all, longopts, n * sizeof *all);
  all[n] = (struct option){"help", no_argument, NULL, 'h'};
  /* options may follow operands, as Podman's (cobra) commands allow, unless
   * shortopts starts with "+": then the first operand ends the options (what
   * follows an image is the box's command line) */
  bool stop = shortopts && shortopts[0] == '+';
  _cleanup_free_ char *so =
      lbx_xasprintf("%s:h%s", stop ? "+" : "", shortopts ? shortopts + stop : "");
  optind = 0; /* 0, not 1: glibc then resets its permutation state too */
  opterr = 0;
  int c;
  while ((c = getopt_long(argc, argv, so, all, NULL)) != -1) {
    if (c == 'h') {
      printf("%s", cmd->help);
      *exit_code = 0;
      return -1;
    }
    if (c == '?' || c == ':') {
      const char *bad = argv[optind - 1];
      *exit_code = 125;
      if (c == ':')
        lbx_error(err, EINVAL, "%s: option %s needs a value (see 'lazybox %s --help')", cmd->name,
                  bad, cmd->name);
      else
        lbx_error(err, EINVAL, "%s: unknown option %s (see 'lazybox %s --help')", cmd->name, bad,
                  cmd->name);
      return -1;
    }
    if (on_opt(ctx, c, optarg) < 0) {
      /* named as the user can find it in --help: the long name if any */
      const char *lname = NULL;
      for (const struct option *o = longopts; o && o->name; o++)
        if (o->val == c && !o->flag)
          lname = o->name;
      *exit_code = 125;
      if (lname)
        lbx_error(err, EINVAL, "%s: invalid value \"%s\" for --%s", cmd->name, optarg ? optarg : "",
                  lname);
      else
        lbx_error(err, EINVAL, "%s: invalid value \"%s\" for -%c", cmd->name, optarg ? optarg : "",
                  c);
      return -1;
    }
  }
  return optind;
}

int
main(int argc, char **argv)
{
  _cleanup_free_ char *root = NULL;
  lbx_cli cli = {.log_level = LBX_LOG_WARN};
  static const struct option opts[] = {
      {"root", required_argument, NULL, 'r'},
      {"log-level", required_argument, NULL, 'l'},
      {"help", no_argument, NULL, 'h'},
      {"version", no_argument, NULL, 'v'},
      {0},
  };
  opterr = 0;
  int c;
  while ((c = getopt_long(argc, argv, "+:hv", opts, NULL)) != -1) {
    switch (c) {
    case 'r':
      free(root);
      root = lbx_xstrdup(optarg);
      break;
    case 'l': {
      static const char *const levels[] = {"error", "warn", "info", "debug"};
      size_t i = 0;
      while (i < LBX_ARRAY_SIZE(levels) && strcmp(levels[i], optarg) != 0)
        i++;
      if (i == LBX_ARRAY_SIZE(levels)) {
        fprintf(stderr, "Error: --log-level \"%s\": use error, warn, info or debug\n", optarg);
        return 125;
      }
      cli.log_level = (enum lbx_log_level)i;
      break;
    }
    case 'h':
      print_global_help(stdout);
      return 0;
    case 'v':
      printf("lazybox version %s\n", LBX_VERSION);
      return 0;
    default:
      fprintf(stderr, "Error: unknown or incomplete global option %s (see 'lazybox --help')\n",
              argv[optind - 1]);
      return 125;
    }
  }
  if (optind >= argc) {
    print_global_help(stderr);
    return 125;
  }
  if (!root)
    root = default_root();
  cli.root = root;

  const char *name = argv[optind];
  if (strcmp(name, "help") == 0) {
    const lbx_cmd *cmd = optind + 1 < argc ? find_cmd(argv[optind + 1]) : NULL;
    if (cmd)
      printf("%s", cmd->help);
    else
      print_global_help(stdout);
    return 0;
  }
  const lbx_cmd *cmd = find_cmd(name);
  int sub = optind;
  /* two-word commands such as "system df" */
  if (cmd && !cmd->run && optind + 1 < argc && argv[optind + 1][0] != '-') {
    _cleanup_free_ char *two = lbx_xasprintf("%s %s", name, argv[optind + 1]);
    const lbx_cmd *c2 = find_cmd(two);
    if (c2) {
      cmd = c2;
      sub++;
    } else {
      fprintf(stderr, "Error: unknown command \"%s\" (see 'lazybox %s --help')\n", two, name);
      return 125;
    }
  }
  if (!cmd) {
    fprintf(stderr, "Error: unknown command \"%s\" (see 'lazybox --help')\n", name);
    return 125;
  }
  if (!cmd->run) {
    /* a group such as "system" on its own, or with --help */
    printf("%s", cmd->help);
    return sub + 1 < argc && strcmp(argv[sub + 1], "--help") != 0 &&
                   strcmp(argv[sub + 1], "-h") != 0
               ? 125
               : 0;
  }
  lbx_err *err = NULL;
  int rc = cmd->run(&cli, argc - sub, argv + sub, &err);
  if (err) {
    fprintf(stderr, "Error: %s\n", err->msg);
    lbx_error_free(err);
    if (rc == 0)
      rc = 125;
  }
  lbx_store_close(cli.store);
  return rc;
}
