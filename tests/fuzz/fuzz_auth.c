/* What a registry or a config file hands the auth code: the first byte picks
 * the parser, the rest is its input.
 *   0: a WWW-Authenticate challenge (lbx_challenge_param, for the keys a
 *      bearer flow asks and for a key taken from the input itself);
 *   1: an auth.json (lbx_auth_lookup for a few hosts and repositories);
 *   2: a registries.conf (lbx_regconf_parse, then the queries a pull makes
 *      of it: search registries, aliases, endpoints of a few names).
 * Parsers must not crash, leak or print more than one line of error. */
#include "fuzz.h"
#include "index/auth.h"
#include "index/regconf.h"
#include "index/registry.h"

#include <fcntl.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *
write_tmp(const uint8_t *data, size_t size)
{
  const char *dir = getenv("TMPDIR");
  char *path = NULL;
  if (asprintf(&path, "%s/fuzz-auth-XXXXXX", dir ? dir : "/tmp") < 0)
    abort();
  int fd = mkstemp(path);
  FUZZ_CHECK(fd >= 0);
  FUZZ_CHECK(write(fd, data, size) == (ssize_t)size);
  close(fd);
  return path;
}

static void
one_line(lbx_err *err)
{
  FUZZ_CHECK(err && err->msg && !strchr(err->msg, '\n'));
  lbx_error_free(err);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 1 || size > 65536)
    return 0;
  uint8_t which = data[0] % 3;
  data++, size--;
  if (which == 0) {
    char *s = strndup((const char *)data, size);
    static const char *const keys[] = {"realm", "service", "scope", "error", ""};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
      char *v = lbx_challenge_param(s, keys[i]);
      FUZZ_CHECK(!v || strlen(v) <= strlen(s));
      free(v);
    }
    /* a key the input names: "key<space>challenge" */
    char *sp = strchr(s, ' ');
    if (sp) {
      *sp = '\0';
      free(lbx_challenge_param(sp + 1, s));
    }
    free(s);
    return 0;
  }
  char *path = write_tmp(data, size);
  if (which == 1) {
    static const char *const hosts[][2] = {
        {"docker.io", "library/busybox"}, {"127.0.0.1:5000", NULL}, {"quay.io", "a/b"}};
    for (size_t i = 0; i < 3; i++) {
      char *user = NULL, *pass = NULL;
      lbx_err *err = NULL;
      int r = lbx_auth_lookup(path, hosts[i][0], hosts[i][1], &user, &pass, &err);
      if (r < 0) {
        one_line(err);
        break;
      }
      FUZZ_CHECK(!err && (r == 0 || (user && pass)));
      free(user);
      free(pass);
    }
  } else {
    char *text = strndup((const char *)data, size);
    lbx_regconf *c = lbx_regconf_new();
    lbx_err *err = NULL;
    if (lbx_regconf_parse(c, path, text, &err) < 0) {
      one_line(err);
    } else {
      size_t n = 0;
      const char *const *regs = lbx_regconf_search(c, &n);
      for (size_t i = 0; i < n; i++)
        FUZZ_CHECK(regs[i] && *regs[i]);
      (void)lbx_regconf_alias(c, "alpine");
      (void)lbx_regconf_insecure(c, "127.0.0.1:5000");
      static const char *const names[] = {"docker.io/library/busybox", "quay.io/a/b",
                                          "127.0.0.1:5000/x", "a.example.com/b/c"};
      for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        for (int by_digest = 0; by_digest < 2; by_digest++) {
          lbx_endpoint *eps = NULL;
          size_t neps = 0;
          if (lbx_regconf_endpoints(c, names[i], by_digest, &eps, &neps, &err) < 0) {
            one_line(err);
            err = NULL;
            continue;
          }
          FUZZ_CHECK(neps >= 1);
          for (size_t j = 0; j < neps; j++)
            FUZZ_CHECK(*eps[j].host && *eps[j].repo);
          lbx_endpoints_free(eps, neps);
        }
    }
    lbx_regconf_free(c);
    free(text);
  }
  unlink(path);
  free(path);
  return 0;
}
