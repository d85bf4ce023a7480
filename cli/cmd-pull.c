/* Registry commands: pull, login, logout. */
#include "cli.h"
#include "auth.h"
#include "pull.h"
#include "regconf.h"

#include <getopt.h>
#include <string.h>
#include <termios.h>
#include <time.h>

static void
sweep_after_failure(lbx_store *s)
{
  lbx_gc_stats st;
  lbx_err *e = NULL;
  lbx_store_sweep(s, false, &st, &e);
  lbx_error_free(e);
}

/* "true"/"false" as Podman's boolean flags take them; NULL (no =value) is true. */
static int
parse_bool(const char *arg, bool *out)
{
  if (!arg || strcmp(arg, "true") == 0 || strcmp(arg, "1") == 0)
    *out = true;
  else if (strcmp(arg, "false") == 0 || strcmp(arg, "0") == 0)
    *out = false;
  else
    return -1;
  return 0;
}

/* ---- progress ---- */

#define BAR_LAYERS 64

struct printer {
  bool quiet, tty;
  int64_t start_ns, last_ns;
  bool drawn; /* a progress line is on screen */
  size_t n;
  char digest[BAR_LAYERS][LBX_DIGEST_STR];
  uint64_t done[BAR_LAYERS], total[BAR_LAYERS];
};

/* A digest's hex part; printed with %.12s, as Podman shows blobs. */
static const char *
hex_of(const char *d)
{
  if (!d)
    return "";
  return strncmp(d, "sha256:", 7) == 0 ? d + 7 : d;
}

static void
clear_bar(struct printer *p)
{
  if (p->drawn) {
    fputs("\r\033[K", stderr);
    p->drawn = false;
  }
}

static void
draw_bar(struct printer *p)
{
  uint64_t done = 0, total = 0;
  size_t active = 0;
  for (size_t i = 0; i < p->n; i++) {
    done += p->done[i];
    total += p->total[i];
    active += p->done[i] < p->total[i] || p->total[i] == 0;
  }
  double secs = (double)(lbx_now_ns() - p->start_ns) / 1e9;
  double rate = secs > 0 ? (double)done / secs : 0;
  _cleanup_free_ char *d = lbx_human_size(done);
  _cleanup_free_ char *t = lbx_human_size(total);
  _cleanup_free_ char *r = lbx_human_size((uint64_t)rate);
  char bar[26];
  int fill = total ? (int)(25.0 * (double)done / (double)total) : 0;
  for (int i = 0; i < 25; i++)
    bar[i] = i < fill ? '=' : (i == fill ? '>' : ' ');
  bar[25] = '\0';
  char eta[32] = "";
  if (rate > 0 && total > done)
    snprintf(eta, sizeof eta, " ETA %.0fs", (double)(total - done) / rate);
  fprintf(stderr, "\r\033[KCopying %zu blob%s [%s] %s / %s  %s/s%s", active, active == 1 ? "" : "s",
          bar, d, t, r, eta);
  p->drawn = true;
}

static void
on_progress(void *ctx, enum lbx_pull_event ev, const char *what, uint64_t done, uint64_t total)
{
  struct printer *p = ctx;
  if (p->quiet)
    return;
  if (ev == LBX_PULL_BLOB_BYTES) {
    if (!p->tty)
      return;
    size_t i = 0;
    while (i < p->n && strcmp(p->digest[i], what) != 0)
      i++;
    if (i == p->n && p->n < BAR_LAYERS)
      snprintf(p->digest[p->n++], LBX_DIGEST_STR, "%s", what);
    if (i < p->n) {
      p->done[i] = done;
      p->total[i] = total;
    }
    int64_t now = lbx_now_ns();
    if (now - p->last_ns >= 100000000) {
      p->last_ns = now;
      draw_bar(p);
    }
    return;
  }
  clear_bar(p);
  switch (ev) {
  case LBX_PULL_TRYING:
    fprintf(stderr, "Trying to pull %s...\n", what);
    break;
  case LBX_PULL_SOURCE:
    fprintf(stderr, "Getting image source signatures\n");
    p->start_ns = lbx_now_ns();
    break;
  case LBX_PULL_BLOB_SKIP:
    fprintf(stderr, "Copying blob %.12s skipped: already exists\n", hex_of(what));
    break;
  case LBX_PULL_BLOB_RETRY:
    fprintf(stderr, "Copying blob %.12s: transfer interrupted, resuming at byte %llu\n",
            hex_of(what), (unsigned long long)done);
    break;
  case LBX_PULL_BLOB_DONE:
    fprintf(stderr, "Copying blob %.12s done\n", hex_of(what));
    break;
  case LBX_PULL_CONFIG:
    fprintf(stderr, "Copying config %.12s done\n", hex_of(what));
    break;
  case LBX_PULL_WRITING:
    fprintf(stderr, "Writing manifest to image destination\n");
    break;
  case LBX_PULL_BLOB_BYTES:
    break;
  }
  if (p->drawn || (p->tty && ev == LBX_PULL_BLOB_DONE && p->n))
    draw_bar(p);
  fflush(stderr);
}

/* ---- pull ---- */

struct pull_opts {
  lbx_pull_opts po;
  bool quiet, bad;
  const char *creds;
};

static int
pull_opt(void *ctx, int opt, char *arg)
{
  struct pull_opts *o = ctx;
  bool v;
  switch (opt) {
  case 't':
    if (parse_bool(arg, &v) < 0)
      return -1;
    o->po.reg.insecure = !v;
    o->po.reg.tls_verify = v;
    break;
  case 'a':
    o->po.reg.authfile = arg;
    break;
  case 'C':
    o->po.reg.cert_dir = arg;
    break;
  case 'p':
    o->po.platform = arg;
    break;
  case 'q':
    o->quiet = true;
    break;
  case 'c':
    o->creds = arg;
    break;
  }
  return 0;
}

static int
pull_run(lbx_cli *cli, int argc, char **argv, lbx_err **err)
{
  static const struct option opts[] = {{"tls-verify", optional_argument, NULL, 't'},
                                       {"authfile", required_argument, NULL, 'a'},
                                       {"platform", required_argument, NULL, 'p'},
                                       {"quiet", no_argument, NULL, 'q'},
                                       {"creds", required_argument, NULL, 'c'},
                                       {"cert-dir", required_argument, NULL, 'C'},
                                       {0}};
  struct pull_opts o = {0};
  int rc;
  int first = lbx_parse_opts(&lbx_pull_cmds[0], argc, argv, "q", opts, pull_opt, &o, &rc, err);
  if (first < 0)
    return rc;
  if (argc - first != 1)
    return lbx_error(err, EINVAL, "pull: expected one image reference (see 'lazybox pull --help')"),
           125;
  _cleanup_free_ char *user = NULL, *pass = NULL;
  if (o.creds) {
    if (lbx_auth_split(o.creds, &user, &pass, err) < 0)
      return lbx_error_prefix(err, "pull: --creds"), 125;
    o.po.reg.user = user;
    o.po.reg.pass = pass;
  }
  if (o.po.reg.authfile && access(o.po.reg.authfile, F_OK) < 0)
    return lbx_error_errno(err, errno, "pull: --authfile %s", o.po.reg.authfile), 125;
  if (o.po.reg.cert_dir && access(o.po.reg.cert_dir, F_OK) < 0)
    return lbx_error_errno(err, errno, "pull: --cert-dir %s", o.po.reg.cert_dir), 125;
  lbx_store *s = lbx_cli_store(cli, err);
  if (!s)
    return 125;
  struct printer pr = {.quiet = o.quiet, .tty = isatty(STDERR_FILENO)};
  pr.start_ns = lbx_now_ns();
  o.po.progress = on_progress;
  o.po.progress_ctx = &pr;
  char id[LBX_DIGEST_HEX];
  if (lbx_pull(s, argv[first], &o.po, id, NULL, err) < 0) {
    clear_bar(&pr);
    sweep_after_failure(s);
    return 125;
  }
  clear_bar(&pr);
  printf("%s\n", id);
  return 0;
}

/* ---- login ---- */

struct login_opts {
  lbx_registry_opts reg;
  const char *user, *pass;
  bool pass_stdin;
};

static int
login_opt(void *ctx, int opt, char *arg)
{
  struct login_opts *o = ctx;
  bool v;
  switch (opt) {
  case 't':
    if (parse_bool(arg, &v) < 0)
      return -1;
    o->reg.insecure = !v;
    o->reg.tls_verify = v;
    break;
  case 'a':
    o->reg.authfile = arg;
    break;
  case 'C':
    o->reg.cert_dir = arg;
    break;
  case 'u':
    o->user = arg;
    break;
  case 'p':
    o->pass = arg;
    break;
  case 's':
    o->pass_stdin = true;
    break;
  }
  return 0;
}

/* One line from f without its newline, or NULL at EOF. */
static char *
read_line(FILE *f)
{
  char *line = NULL;
  size_t cap = 0;
  ssize_t n = getline(&line, &cap, f);
  if (n < 0) {
    free(line);
    return NULL;
  }
  while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
    line[--n] = '\0';
  return line;
}

static char *
prompt(const char *what, bool echo)
{
  fprintf(stderr, "%s: ", what);
  fflush(stderr);
  struct termios old, quiet;
  bool restore = false;
  if (!echo && tcgetattr(STDIN_FILENO, &old) == 0) {
    quiet = old;
    quiet.c_lflag &= ~(tcflag_t)ECHO;
    restore = tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) == 0;
  }
  char *line = read_line(stdin);
  if (restore) {
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
    fputc('\n', stderr);
  }
  return line;
}

/* "https://quay.io/ns/" -> "quay.io/ns": the auth file key; *host gets "quay.io". */
static char *
registry_key(const char *arg, char **host)
{
  if (strncmp(arg, "https://", 8) == 0)
    arg += 8;
  else if (strncmp(arg, "http://", 7) == 0)
    arg += 7;
  char *k = lbx_xstrdup(arg);
  size_t n = strlen(k);
  while (n && k[n - 1] == '/')
    k[--n] = '\0';
  const char *slash = strchr(k, '/');
  *host = slash ? lbx_xstrndup(k, (size_t)(slash - k)) : lbx_xstrdup(k);
  return k;
}

static int
login_run(lbx_cli *cli, int argc, char **argv, lbx_err **err)
{
  (void)cli;
  static const struct option opts[] = {{"tls-verify", optional_argument, NULL, 't'},
                                       {"authfile", required_argument, NULL, 'a'},
                                       {"username", required_argument, NULL, 'u'},
                                       {"password", required_argument, NULL, 'p'},
                                       {"password-stdin", no_argument, NULL, 's'},
                                       {"cert-dir", required_argument, NULL, 'C'},
                                       {0}};
  struct login_opts o = {0};
  int rc;
  int first = lbx_parse_opts(&lbx_pull_cmds[1], argc, argv, "u:p:", opts, login_opt, &o, &rc, err);
  if (first < 0)
    return rc;
  if (argc - first != 1)
    return lbx_error(err, EINVAL, "login: expected one registry (see 'lazybox login --help')"), 125;
  if (o.pass && o.pass_stdin)
    return lbx_error(err, EINVAL, "login: give --password or --password-stdin, not both"), 125;
  _cleanup_free_ char *host = NULL;
  _cleanup_free_ char *key = registry_key(argv[first], &host);
  if (!*host)
    return lbx_error(err, EINVAL, "login: \"%s\" is not a registry", argv[first]), 125;
  _cleanup_free_ char *user = o.user ? lbx_xstrdup(o.user) : NULL;
  _cleanup_free_ char *pass = o.pass ? lbx_xstrdup(o.pass) : NULL;
  bool tty = isatty(STDIN_FILENO);
  if (!user) {
    if (o.pass_stdin || !tty)
      return lbx_error(err, EINVAL, "login %s: give the user name with -u", key), 125;
    user = prompt("Username", true);
  }
  if (o.pass_stdin) {
    pass = read_line(stdin);
    if (!pass)
      return lbx_error(err, EINVAL, "login %s: no password on standard input", key), 125;
  } else if (!pass) {
    if (!tty)
      return lbx_error(err, EINVAL, "login %s: give the password with -p or --password-stdin", key),
             125;
    pass = prompt("Password", false);
  }
  if (!user || !*user || !pass)
    return lbx_error(err, EINVAL, "login %s: a user name and a password are needed", key), 125;
  o.reg.user = user;
  o.reg.pass = pass;
  _cleanup_(lbx_regconf_freep) lbx_regconf *conf = NULL;
  if (lbx_regconf_load(&conf, err) < 0)
    return lbx_error_prefix(err, "login %s", key), 125;
  if (!o.reg.tls_verify && lbx_regconf_insecure(conf, host))
    o.reg.insecure = true;
  if (lbx_registry_check_login(host, &o.reg, err) < 0)
    return lbx_error_prefix(err, "login %s", key), 125;
  _cleanup_free_ char *def = o.reg.authfile ? NULL : lbx_auth_default_file();
  if (lbx_auth_store(o.reg.authfile ? o.reg.authfile : def, key, user, pass, err) < 0)
    return lbx_error_prefix(err, "login %s", key), 125;
  printf("Login Succeeded!\n");
  return 0;
}

/* ---- logout ---- */

struct logout_opts {
  const char *authfile;
  bool all;
};

static int
logout_opt(void *ctx, int opt, char *arg)
{
  struct logout_opts *o = ctx;
  if (opt == 'f')
    o->authfile = arg;
  else if (opt == 'a')
    o->all = true;
  return 0;
}

static int
logout_run(lbx_cli *cli, int argc, char **argv, lbx_err **err)
{
  (void)cli;
  static const struct option opts[] = {
      {"authfile", required_argument, NULL, 'f'}, {"all", no_argument, NULL, 'a'}, {0}};
  struct logout_opts o = {0};
  int rc;
  int first = lbx_parse_opts(&lbx_pull_cmds[2], argc, argv, "a", opts, logout_opt, &o, &rc, err);
  if (first < 0)
    return rc;
  if (o.all ? argc - first != 0 : argc - first != 1)
    return lbx_error(err, EINVAL, "logout: expected one registry, or --all"), 125;
  _cleanup_free_ char *def = o.authfile ? NULL : lbx_auth_default_file();
  const char *file = o.authfile ? o.authfile : def;
  _cleanup_free_ char *host = NULL;
  _cleanup_free_ char *key = o.all ? NULL : registry_key(argv[first], &host);
  int r = lbx_auth_remove(file, key, err);
  if (r < 0)
    return lbx_error_prefix(err, "logout"), 125;
  if (o.all) {
    printf("Removed login credentials for all registries\n");
    return 0;
  }
  if (r == 0)
    return lbx_error(err, ENOENT, "logout: not logged into %s (in %s)", key, file), 125;
  printf("Removed login credentials for %s\n", key);
  return 0;
}

const lbx_cmd lbx_pull_cmds[] = {
    {"pull", pull_run, "Pull an image from a registry",
     "Usage: lazybox pull [OPTIONS] IMAGE\n"
     "\n"
     "Pull IMAGE (registry/repository:tag or @digest) into the store and print\n"
     "its image ID. A name without a registry is tried under the registries of\n"
     "unqualified-search-registries in registries.conf, else docker.io. A\n"
     "manifest list picks this host's platform. Layers already in the store are\n"
     "not downloaded; the others are indexed while they download, several at\n"
     "once, and resumed after an interrupted transfer. Credentials come from\n"
     "--creds, else the auth file (see login). registries.conf's [[registry]]\n"
     "tables and [aliases] apply as in Podman: mirrors are tried first, a\n"
     "blocked registry is refused, insecure = true allows what\n"
     "--tls-verify=false allows. TLS trusts the CAs (*.crt) and uses the client\n"
     "certificate (NAME.cert with NAME.key) of --cert-dir, else of the first of\n"
     "~/.config/containers/certs.d/HOST (not for root),\n"
     "/etc/containers/certs.d/HOST and /etc/docker/certs.d/HOST.\n"
     "\n"
     "Options:\n"
     "      --authfile FILE        read credentials from FILE (env REGISTRY_AUTH_FILE)\n"
     "      --cert-dir DIR         certificates for TLS (*.crt, *.cert, *.key)\n"
     "      --creds USER:PASSWORD  credentials for the registry\n"
     "      --platform OS/ARCH[/VARIANT]\n"
     "                             the platform to pick from a manifest list\n"
     "  -q, --quiet                print only the image ID\n"
     "      --tls-verify=false     allow a registry without valid TLS: https without\n"
     "                             certificate checks, else plain http (also needed\n"
     "                             for localhost registries); =true verifies\n"
     "                             even a registry registries.conf calls insecure\n"},
    {"login", login_run, "Log in to a registry",
     "Usage: lazybox login [OPTIONS] REGISTRY\n"
     "\n"
     "Check a user name and password against REGISTRY and record them in the\n"
     "auth file: --authfile, else $REGISTRY_AUTH_FILE, else\n"
     "$XDG_RUNTIME_DIR/containers/auth.json (the file Podman and skopeo use).\n"
     "Without -u or -p, asks for them on a terminal.\n"
     "\n"
     "Options:\n"
     "      --authfile FILE      the auth file to write\n"
     "      --cert-dir DIR       certificates for TLS (*.crt, *.cert, *.key; see pull)\n"
     "  -p, --password PASSWORD  the password (visible to other users: prefer\n"
     "                           --password-stdin)\n"
     "      --password-stdin     read the password from standard input\n"
     "      --tls-verify=false   allow a registry without valid TLS\n"
     "  -u, --username USER      the user name\n"},
    {"logout", logout_run, "Log out of a registry",
     "Usage: lazybox logout [OPTIONS] REGISTRY\n"
     "       lazybox logout [OPTIONS] --all\n"
     "\n"
     "Remove the credentials recorded for REGISTRY (or for every registry)\n"
     "from the auth file.\n"
     "\n"
     "Options:\n"
     "  -a, --all             remove the credentials of every registry\n"
     "      --authfile FILE   the auth file to edit\n"},
    {0},
};
