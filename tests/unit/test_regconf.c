/* registries.conf: the TOML this reader takes and what a pull makes of it
 * (endpoints in order, prefixes on component boundaries, wildcards,
 * aliases, later files over earlier ones), each row as containers/image
 * would read the same file. */
#include "index/regconf.h"
#include "store/util.h"
#include "tests/unit/tap.h"

#include <stdbool.h>
#include <string.h>

static lbx_regconf *
parse(const char *text, lbx_err **err)
{
  lbx_regconf *c = lbx_regconf_new();
  if (lbx_regconf_parse(c, "test.conf", text, err) < 0) {
    lbx_regconf_free(c);
    return NULL;
  }
  return c;
}

/* "host/repo[!]" per endpoint ('!' when insecure), joined by spaces */
static char *
endpoints(const lbx_regconf *c, const char *name, bool by_digest)
{
  lbx_endpoint *eps = NULL;
  size_t n = 0;
  lbx_err *err = NULL;
  if (lbx_regconf_endpoints(c, name, by_digest, &eps, &n, &err) < 0) {
    char *msg = lbx_xasprintf("error: %s", err->msg);
    lbx_error_free(err);
    return msg;
  }
  char *out = lbx_xstrdup("");
  for (size_t i = 0; i < n; i++) {
    char *next = lbx_xasprintf("%s%s%s/%s%s", out, i ? " " : "", eps[i].host, eps[i].repo,
                               eps[i].insecure ? "!" : "");
    free(out);
    out = next;
  }
  lbx_endpoints_free(eps, n);
  return out;
}

static void
bad(const char *text, const char *why, const char *desc)
{
  lbx_err *err = NULL;
  lbx_regconf *c = parse(text, &err);
  tap_ok(!c && err && strstr(err->msg, why), "%s: refused (%s)", desc, err ? err->msg : "no error");
  tap_ok(!err || !strchr(err->msg, '\n'), "  on one line");
  lbx_error_free(err);
  lbx_regconf_free(c);
}

int
main(void)
{
  lbx_err *err = NULL;

  /* strings, escapes, comments, CRLF, arrays over lines */
  lbx_regconf *c = parse("# comment\r\n"
                         "unqualified-search-registries = [ # first\n"
                         "  \"a.io\", 'b\\.io', # literal: no escapes\n"
                         "  \"c\\u00e9.io\",\n"
                         "]\r\n"
                         "other = 12 # a number, ignored\n"
                         "when = 1979-05-27T07:32:00Z\n"
                         "[aliases]\n"
                         "\"x/y\" = \"q.io/x/y\"\n"
                         "plain = 'd.io/plain'\n",
                         &err);
  tap_ok(c != NULL, "a file with comments, CRLF and literal strings parses%s%s", err ? ": " : "",
         err ? err->msg : "");
  size_t n = 0;
  const char *const *s = c ? lbx_regconf_search(c, &n) : NULL;
  tap_is_int(n, 3, "three search registries");
  if (n == 3) {
    tap_is_str(s[0], "a.io", "  basic string");
    tap_is_str(s[1], "b\\.io", "  literal string keeps its backslash");
    tap_is_str(s[2], "c\xc3\xa9.io", "  \\u escape as UTF-8");
  }
  tap_is_str(c ? lbx_regconf_alias(c, "x/y") : NULL, "q.io/x/y", "quoted alias key");
  tap_is_str(c ? lbx_regconf_alias(c, "plain") : NULL, "d.io/plain", "bare alias key");
  tap_ok(!c || !lbx_regconf_alias(c, "x"), "no alias for another name");
  lbx_regconf_free(c);

  /* endpoints */
  c = parse("[[registry]]\n"
            "prefix = \"docker.io/library\"\n"
            "location = \"mirror.local:5000/lib\"\n"
            "insecure = true\n"
            "[[registry.mirror]]\n"
            "location = \"m1.local/dh\"\n"
            "[[registry.mirror]]\n"
            "location = \"m2.local/dh\"\n"
            "insecure = true\n"
            "pull-from-mirror = \"digest-only\"\n"
            "[[registry.mirror]]\n"
            "location = \"m3.local/dh\"\n"
            "pull-from-mirror = \"tag-only\"\n"
            "[[registry]]\n"
            "location = \"docker.io\"\n"
            "[[registry]]\n"
            "prefix = \"*.corp.example\"\n"
            "[[registry.mirror]]\n"
            "location = \"cache.local\"\n"
            "[[registry]]\n"
            "location = \"bad.example\"\n"
            "blocked = true\n",
            &err);
  tap_ok(c != NULL, "registry tables parse%s%s", err ? ": " : "", err ? err->msg : "");
  if (c) {
    _cleanup_free_ char *tag = endpoints(c, "docker.io/library/busybox", false);
    tap_is_str(tag, "m1.local/dh/busybox m3.local/dh/busybox mirror.local:5000/lib/busybox!",
               "by tag: mirrors for tags, then the location, prefix rewritten");
    _cleanup_free_ char *dig = endpoints(c, "docker.io/library/busybox", true);
    tap_is_str(dig, "m1.local/dh/busybox m2.local/dh/busybox! mirror.local:5000/lib/busybox!",
               "by digest: the digest-only mirror, not the tag-only one");
    _cleanup_free_ char *other = endpoints(c, "docker.io/other/x", false);
    tap_is_str(other, "docker.io/other/x", "a shorter prefix matches the rest of docker.io");
    _cleanup_free_ char *boundary = endpoints(c, "docker.io/libraryx/y", false);
    tap_is_str(boundary, "docker.io/libraryx/y", "a prefix matches whole components only");
    _cleanup_free_ char *wild = endpoints(c, "a.b.corp.example/team/app", false);
    tap_is_str(wild, "cache.local/team/app a.b.corp.example/team/app",
               "a wildcard: its mirror gets the path, the host keeps the name");
    _cleanup_free_ char *notwild = endpoints(c, "corp.example/team/app", false);
    tap_is_str(notwild, "corp.example/team/app", "*.corp.example does not match corp.example");
    _cleanup_free_ char *none = endpoints(c, "quay.io/a/b", false);
    tap_is_str(none, "quay.io/a/b", "no matching table: the name as it is");
    _cleanup_free_ char *blocked = endpoints(c, "bad.example/x", false);
    tap_ok(strstr(blocked, "error: ") && strstr(blocked, "blocked") &&
               strstr(blocked, "test.conf:20"),
           "blocked: an error naming the file and line (%s)", blocked);
    tap_ok(lbx_regconf_insecure(c, "mirror.local:5000") == false,
           "insecure is the prefix's, not the location's");
    tap_ok(lbx_regconf_insecure(c, "docker.io/library") == true, "insecure by prefix");
  }
  lbx_regconf_free(c);

  /* a later file: search list replaced, same prefix replaced, aliases added */
  c = parse("unqualified-search-registries = [\"a.io\"]\n"
            "[[registry]]\nlocation = \"a.io\"\ninsecure = true\n"
            "[aliases]\nk = \"a.io/k\"\n",
            &err);
  tap_ok(c && lbx_regconf_parse(c, "later.conf",
                                "unqualified-search-registries = [\"b.io\"]\n"
                                "[[registry]]\nlocation = \"a.io\"\n"
                                "[aliases]\nj = \"b.io/j\"\n",
                                &err) == 0,
         "a second file parses into the same configuration");
  if (c) {
    s = lbx_regconf_search(c, &n);
    tap_ok(n == 1 && strcmp(s[0], "b.io") == 0, "the later search list replaces the earlier");
    tap_ok(!lbx_regconf_insecure(c, "a.io"), "the later [[registry]] replaces the same prefix");
    tap_ok(lbx_regconf_alias(c, "k") && lbx_regconf_alias(c, "j"), "aliases of both files");
  }
  lbx_regconf_free(c);

  /* what containers/image also does: slashes trimmed, the first table of a
   * prefix in one file, wildcards whatever the port, "" cancelling an alias */
  c = parse("unqualified-search-registries = [\"s.io/\"]\n"
            "[[registry]]\nprefix = \"a.io/foo/\"\nlocation = \"b.io/bar/\"\n"
            "[[registry.mirror]]\nlocation = \"m.io/x/\"\n"
            "[[registry]]\nprefix = \"a.io/foo\"\nlocation = \"c.io\"\n"
            "[[registry]]\nprefix = \"*.w.io\"\n[[registry.mirror]]\nlocation = \"wm.io\"\n"
            "[aliases]\nk = \"a.io/k\"\n",
            &err);
  tap_ok(c && lbx_regconf_parse(c, "later.conf", "[aliases]\nk = \"\"\n", &err) == 0,
         "slashes, a repeated prefix and an empty alias parse");
  if (c) {
    s = lbx_regconf_search(c, &n);
    tap_ok(n == 1 && strcmp(s[0], "s.io") == 0, "a search entry's trailing slash is trimmed");
    _cleanup_free_ char *slash = endpoints(c, "a.io/foo/x", false);
    tap_is_str(slash, "m.io/x/x b.io/bar/x",
               "trailing slashes trimmed; the first table of a prefix in a file counts");
    _cleanup_free_ char *port = endpoints(c, "r.w.io:5000/p/q", false);
    tap_is_str(port, "wm.io/p/q r.w.io:5000/p/q", "a wildcard matches a host with a port");
    tap_ok(!lbx_regconf_alias(c, "k"), "an empty alias in a later file cancels the earlier one");
  }
  lbx_regconf_free(c);

  /* errors: file, line, reason */
  bad("[aliases]\nk = \"short\"\n", "test.conf:2: the alias \"k\" = \"short\" is not a fully",
      "an alias to a short name");
  bad("[aliases]\nk = \"a.io/k:1\"\n", "not a fully qualified", "an alias with a tag");
  bad("[[registry]]\nlocation = \"a.io\"\nmirror = [{ location = \"m.io\" }]\n",
      "test.conf:3: mirrors as an inline array", "inline mirrors");
  bad("[[registry]]\nlocation = \"a.io\"\nmirror-by-digest-only = true\n"
      "[[registry.mirror]]\nlocation = \"m.io\"\npull-from-mirror = \"all\"\n",
      "both mirror-by-digest-only", "both digest settings");
  bad("[[registry]]\nprefix = \"*.a.io:5000\"\n", "of the form", "wildcard with a port");
  bad("unqualified-search-registries = [\"a\", \"\"]\n", "test.conf:1: an empty name", "empty");
  bad("x = \"open\n", "test.conf:1: a string is not closed", "open string");
  bad("x = \"\"\"multi\"\"\"\n", "multi-line", "multi-line string");
  bad("x = \"\\q\"\n", "unknown escape", "unknown escape");
  bad("x = \"\\u0000\"\n", "not a character", "NUL escape");
  bad("x = \"\\ud800\"\n", "not a character", "surrogate escape");
  bad("\n\n[registries.search]\n", "test.conf:3: [registries.search] is the version 1 format",
      "version 1");
  bad("[[registry]]\ninsecure = true\n", "test.conf:1: a [[registry]] has neither", "no location");
  bad("[[registry]]\nlocation = \"https://a.io\"\n", "no scheme", "a scheme");
  bad("[[registry]]\nprefix = \"*.a.io\"\nlocation = \"b.io\"\n", "cannot have a location",
      "wildcard with a location");
  bad("[[registry]]\nprefix = \"*.a.io/x\"\n", "of the form", "wildcard with a path");
  bad("[[registry.mirror]]\nlocation = \"a.io\"\n", "comes before any", "mirror first");
  bad("[[registry]]\nlocation = \"a.io\"\n[[registry.mirror]]\ninsecure = true\n", "no location",
      "mirror without location");
  bad("[[registry]]\nlocation = \"a.io\"\ninsecure = \"yes\"\n", "true or false", "a string bool");
  bad("[[registry]]\nlocation = 5\n", "must be a string", "a number location");
  bad("x = 1 y\n", "after a value", "text after a value");
  bad("x = [1 2]\n", "separated by ','", "array without commas");
  bad("x = [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\n",
      "nested more than", "deep nesting");
  bad("= 1\n", "a key is missing", "no key");
  bad("[[registry]]\nlocation = \"a.io\"\ninsecure = true\ninsecure = false\n",
      "test.conf:4: \"insecure\" is given twice", "a key twice in one table");
  c = parse("[[registry]]\nlocation = \"a.io\"\n[[registry]]\nlocation = \"b.io\"\n", &err);
  tap_ok(c != NULL, "the same key in two tables is fine");
  lbx_regconf_free(c);
  return tap_done();
}
