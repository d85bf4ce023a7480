/* Auth files (auth.json, ~/.docker/config.json). */
#include "auth.h"
#include "../store/util.h"

#include <fcntl.h>
#include <spawn.h>
#include <stdbool.h>
#include <jansson.h>
#include "../store/crypto.h"
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define _cleanup_json_ __attribute__((cleanup(json_decrefp)))
#define CONF_MAX (1u << 20)

char *
lbx_xdg_config_home(void)
{
  const char *x = getenv("XDG_CONFIG_HOME");
  if (x && *x == '/')
    return lbx_xstrdup(x);
  const char *home = getenv("HOME");
  return home && *home ? lbx_xasprintf("%s/.config", home) : NULL;
}

static char *
runtime_auth_file(void)
{
  const char *x = getenv("XDG_RUNTIME_DIR");
  if (x && *x == '/')
    return lbx_xasprintf("%s/containers/auth.json", x);
  return lbx_xasprintf("/run/containers/%u/auth.json", (unsigned)getuid());
}

char *
lbx_auth_default_file(void)
{
  const char *env = getenv("REGISTRY_AUTH_FILE");
  if (env && *env)
    return lbx_xstrdup(env);
  return runtime_auth_file();
}

int
lbx_auth_split(const char *creds, char **user, char **pass, lbx_err **err)
{
  const char *colon = strchr(creds, ':');
  if (!colon || colon == creds)
    return lbx_error(err, EINVAL, "credentials must be given as USERNAME:PASSWORD");
  *user = lbx_xstrndup(creds, (size_t)(colon - creds));
  *pass = lbx_xstrdup(colon + 1);
  return 0;
}

/* Reads a JSON file: 1 and *out, 0 if it does not exist, -1 with *err. */
static int
load_json(const char *path, json_t **out, lbx_err **err)
{
  _cleanup_free_ char *buf = NULL;
  size_t len;
  int r = lbx_read_file(path, CONF_MAX, &buf, &len);
  if (r == -ENOENT || r == -ENOTDIR)
    return 0;
  if (r < 0)
    return lbx_error_errno(err, -r, "auth file %s", path);
  json_error_t jerr;
  json_t *j = len ? json_loadb(buf, len, 0, &jerr) : json_object();
  if (!j || !json_is_object(j)) {
    json_decref(j);
    return lbx_error(err, EBADMSG, "auth file %s: not a JSON object%s%s", path, j ? "" : ": ",
                     j ? "" : jerr.text);
  }
  *out = j;
  return 1;
}

/* "https://index.docker.io/v1/" -> "index.docker.io": a key as a
 * registry[/repository] prefix (scheme, trailing slashes and Docker's
 * legacy /v1 or /v2 dropped). */
static char *
normalize_key(const char *key)
{
  if (strncmp(key, "https://", 8) == 0)
    key += 8;
  else if (strncmp(key, "http://", 7) == 0)
    key += 7;
  char *k = lbx_xstrdup(key);
  size_t n = strlen(k);
  while (n && k[n - 1] == '/')
    k[--n] = '\0';
  /* Docker's keys for docker.io and legacy "/v1" suffixes name the host */
  if (lbx_has_suffix(k, "/v1") || lbx_has_suffix(k, "/v2"))
    k[n - 3] = '\0';
  return k;
}

static bool
host_matches(const char *keyhost, size_t n, const char *host)
{
  if (strlen(host) == n && strncmp(keyhost, host, n) == 0)
    return true;
  if (strcmp(host, "docker.io") == 0) {
    static const char *const aliases[] = {"index.docker.io", "registry-1.docker.io"};
    for (size_t i = 0; i < LBX_ARRAY_SIZE(aliases); i++)
      if (strlen(aliases[i]) == n && strncmp(keyhost, aliases[i], n) == 0)
        return true;
  }
  return false;
}

/* How well key matches host/repo: 0 no match, 1 + length of the repository
 * part matched otherwise (a longer namespace wins). */
static size_t
key_score(const char *key, const char *host, const char *repo)
{
  _cleanup_free_ char *k = normalize_key(key);
  const char *slash = strchr(k, '/');
  size_t hl = slash ? (size_t)(slash - k) : strlen(k);
  if (!host_matches(k, hl, host))
    return 0;
  if (!slash)
    return 1;
  const char *ns = slash + 1;
  size_t nl = strlen(ns);
  if (!repo || strncmp(repo, ns, nl) != 0 || (repo[nl] != '\0' && repo[nl] != '/'))
    return 0;
  return 1 + nl;
}

static int
decode_auth(const char *path, const char *key, const char *b64, char **user, char **pass,
            lbx_err **err)
{
  size_t n = strlen(b64);
  _cleanup_free_ char *out = lbx_xmalloc(n + 4);
  int len = n ? lbx_base64_decode(out, b64, n) : 0;
  if (len < 0 || n % 4)
    return lbx_error(err, EBADMSG, "auth file %s: \"%s\": the auth value is not base64", path, key);
  for (size_t i = n; i > 0 && b64[i - 1] == '='; i--)
    len--;
  out[len] = '\0';
  if (lbx_auth_split(out, user, pass, err) < 0)
    return lbx_error_prefix(err, "auth file %s: \"%s\"", path, key);
  return 1;
}

/* ---- credential helpers ---- */

#define HELPER_OUT_MAX (64u << 10)

static void
first_line(char *s)
{
  s[strcspn(s, "\r\n")] = '\0';
}

/* `docker-credential-NAME get`, the registry on its stdin, a JSON answer
 * {"Username", "Secret"} on its stdout: what containers/image runs for a
 * registry the file's "credHelpers" names. 1 with credentials, 0 when the
 * helper has none, -1 with *err. */
static int
cred_helper(const char *path, const char *name, const char *host, char **user, char **pass,
            lbx_err **err)
{
  if (!*name || strchr(name, '/'))
    return lbx_error(err, EINVAL, "auth file %s: \"%s\" is not a credential helper name", path,
                     name);
  _cleanup_free_ char *prog = lbx_xasprintf("docker-credential-%s", name);
  int in[2], out[2];
  /* a socket for its stdin: send() with MSG_NOSIGNAL, no SIGPIPE when the
   * helper exits without reading */
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in) < 0)
    return lbx_error_errno(err, errno, "auth file %s: credential helper %s", path, prog);
  if (pipe2(out, O_CLOEXEC) < 0) {
    int e = errno;
    close(in[0]);
    close(in[1]);
    return lbx_error_errno(err, e, "auth file %s: credential helper %s", path, prog);
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in[1], STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&fa, out[1], STDOUT_FILENO);
  posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
  char *argv[] = {prog, (char *)"get", NULL};
  pid_t pid;
  int e = posix_spawnp(&pid, prog, &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  close(in[1]);
  close(out[1]);
  if (e != 0) {
    close(in[0]);
    close(out[0]);
    return lbx_error_errno(err, e, "auth file %s: credential helper %s", path, prog);
  }
  (void)!send(in[0], host, strlen(host), MSG_NOSIGNAL);
  close(in[0]);
  _cleanup_free_ char *buf = lbx_xmalloc(HELPER_OUT_MAX + 1);
  size_t len = 0;
  bool too_big = false;
  ssize_t n;
  /* read to the end whatever it writes: a helper blocked on a full pipe
   * would never exit */
  char sink[4096];
  while ((n = len < HELPER_OUT_MAX ? read(out[0], buf + len, HELPER_OUT_MAX - len)
                                   : read(out[0], sink, sizeof sink)) > 0 ||
         (n < 0 && errno == EINTR)) {
    if (n > 0 && len < HELPER_OUT_MAX)
      len += (size_t)n;
    else if (n > 0)
      too_big = true;
  }
  close(out[0]);
  buf[len] = '\0';
  int status;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    if (strstr(buf, "credentials not found"))
      return 0; /* the helper's word for "none" (docker-credential-helpers) */
    first_line(buf);
    return lbx_error(err, EACCES, "auth file %s: credential helper %s failed for %s%s%s", path,
                     prog, host, *buf ? ": " : "", buf);
  }
  if (too_big)
    return lbx_error(err, EFBIG, "auth file %s: credential helper %s: its answer is over %u bytes",
                     path, prog, HELPER_OUT_MAX);
  _cleanup_json_ json_t *j = json_loadb(buf, len, 0, NULL);
  const char *u = json_string_value(json_object_get(j, "Username"));
  const char *p = json_string_value(json_object_get(j, "Secret"));
  if (!u || !p)
    return lbx_error(err, EBADMSG,
                     "auth file %s: credential helper %s: no Username and Secret in its answer",
                     path, prog);
  if (strcmp(u, "<token>") == 0)
    return lbx_error(err, ENOTSUP,
                     "auth file %s: credential helper %s gave an identity token for %s, which "
                     "lazybox does not use",
                     path, prog, host);
  *user = lbx_xstrdup(u);
  *pass = lbx_xstrdup(p);
  return 1;
}

static int
lookup_in(const char *path, const char *host, const char *repo, char **user, char **pass,
          lbx_err **err)
{
  _cleanup_json_ json_t *j = NULL;
  int r = load_json(path, &j, err);
  if (r <= 0)
    return r;
  /* a helper named for the registry answers for it, as in containers/image */
  const char *hkey;
  json_t *hv;
  json_object_foreach(json_object_get(j, "credHelpers"), hkey, hv)
  {
    _cleanup_free_ char *k = normalize_key(hkey);
    if (!strchr(k, '/') && host_matches(k, strlen(k), host) && json_is_string(hv))
      return cred_helper(path, json_string_value(hv), host, user, pass, err);
  }
  json_t *auths = json_object_get(j, "auths");
  const char *key, *best_key = NULL;
  json_t *v, *best = NULL;
  size_t best_score = 0;
  json_object_foreach(auths, key, v)
  {
    size_t sc = key_score(key, host, repo);
    if (sc > best_score && json_is_string(json_object_get(v, "auth"))) {
      best_score = sc;
      best = v;
      best_key = key;
    }
  }
  if (!best)
    return 0;
  return decode_auth(path, best_key, json_string_value(json_object_get(best, "auth")), user, pass,
                     err);
}

int
lbx_auth_lookup(const char *authfile, const char *host, const char *repo, char **user, char **pass,
                lbx_err **err)
{
  if (authfile)
    return lookup_in(authfile, host, repo, user, pass, err);
  const char *env = getenv("REGISTRY_AUTH_FILE");
  if (env && *env)
    return lookup_in(env, host, repo, user, pass, err);
  _cleanup_free_ char *cfg = lbx_xdg_config_home();
  const char *home = getenv("HOME");
  char *paths[3] = {
      runtime_auth_file(),
      cfg ? lbx_xasprintf("%s/containers/auth.json", cfg) : NULL,
      home && *home ? lbx_xasprintf("%s/.docker/config.json", home) : NULL,
  };
  int r = 0;
  for (size_t i = 0; i < LBX_ARRAY_SIZE(paths) && r == 0; i++)
    if (paths[i])
      r = lookup_in(paths[i], host, repo, user, pass, err);
  for (size_t i = 0; i < LBX_ARRAY_SIZE(paths); i++)
    free(paths[i]);
  return r;
}

static int
write_json(const char *path, json_t *j, lbx_err **err)
{
  _cleanup_free_ char *dir = lbx_xstrdup(path);
  char *slash = strrchr(dir, '/');
  if (slash && slash != dir) {
    *slash = '\0';
    int r = lbx_mkdir_p(dir, 0700);
    if (r < 0)
      return lbx_error_errno(err, -r, "auth file %s: creating %s", path, dir);
  }
  _cleanup_free_ char *tmp = lbx_xasprintf("%s.tmp%d", path, (int)getpid());
  _cleanup_free_ char *text = json_dumps(j, JSON_INDENT(1) | JSON_SORT_KEYS);
  if (!text)
    return lbx_error(err, ENOMEM, "auth file %s: encoding JSON", path);
  _cleanup_close_ int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0)
    return lbx_error_errno(err, errno, "auth file %s", tmp);
  int r = lbx_write_all(fd, text, strlen(text));
  if (r == 0)
    r = lbx_write_all(fd, "\n", 1);
  if (r == 0 && fsync(fd) < 0)
    r = -errno;
  if (r == 0 && rename(tmp, path) < 0)
    r = -errno;
  if (r < 0) {
    unlink(tmp);
    return lbx_error_errno(err, -r, "auth file %s: writing", path);
  }
  return 0;
}

int
lbx_auth_store(const char *authfile, const char *key, const char *user, const char *pass,
               lbx_err **err)
{
  _cleanup_json_ json_t *j = NULL;
  int r = load_json(authfile, &j, err);
  if (r < 0)
    return -1;
  if (r == 0)
    j = json_object();
  json_t *auths = json_object_get(j, "auths");
  if (!json_is_object(auths)) {
    auths = json_object();
    json_object_set_new(j, "auths", auths);
  }
  _cleanup_free_ char *plain = lbx_xasprintf("%s:%s", user, pass);
  size_t n = strlen(plain);
  _cleanup_free_ char *b64 = lbx_xmalloc(4 * ((n + 2) / 3) + 1);
  lbx_base64_encode(b64, plain, n);
  json_t *entry = json_object_get(auths, key);
  if (!json_is_object(entry)) {
    entry = json_object();
    json_object_set_new(auths, key, entry);
  }
  json_object_set_new(entry, "auth", json_string(b64));
  return write_json(authfile, j, err);
}

int
lbx_auth_remove(const char *authfile, const char *key, lbx_err **err)
{
  _cleanup_json_ json_t *j = NULL;
  int r = load_json(authfile, &j, err);
  if (r <= 0)
    return r;
  json_t *auths = json_object_get(j, "auths");
  if (!json_is_object(auths) || json_object_size(auths) == 0)
    return 0;
  if (key) {
    /* the key as login wrote it, or any spelling of the same registry */
    const char *k;
    json_t *v;
    void *tmp;
    int removed = 0;
    json_object_foreach_safe(auths, tmp, k, v)
    {
      _cleanup_free_ char *nk = normalize_key(k);
      if (strcmp(k, key) == 0 || strcmp(nk, key) == 0) {
        json_object_del(auths, k);
        removed = 1;
      }
    }
    if (!removed)
      return 0;
  } else {
    json_object_clear(auths);
  }
  return write_json(authfile, j, err) < 0 ? -1 : 1;
}
