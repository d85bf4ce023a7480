/* Reference parsing against the behaviour of Podman (containers/image):
 * each row is what `podman pull NAME` would resolve NAME to, or why it
 * refuses it. */
#include "index/ref.h"
#include "store/util.h"
#include "tests/unit/tap.h"

#include <stdbool.h>
#include <string.h>

#define H64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define D64 "sha256:" H64
#define T129                                                                                       \
  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" \
  "a"                                                                                              \
  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define T128                                                                                       \
  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" \
  "a"                                                                                              \
  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
/* "docker.io/library/" (18) + 4 * 51 + 33 = 255, the longest name allowed */
#define C50 "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghij"
#define LONG255 "library/" C50 "/" C50 "/" C50 "/" C50 "/abcdefghijabcdefghijabcdefghijabc"

typedef struct {
  const char *in;
  unsigned flags;
  /* on success: */
  const char *domain, *path, *tag, *digest;
  bool short_name;
  const char *string;
  /* on failure (domain == NULL): a piece of the message */
  const char *why;
} row;

#define OK(in, fl, dom, path, tag, dig, sn, str)                                                   \
  {                                                                                                \
    in, fl, dom, path, tag, dig, sn, str, NULL                                                     \
  }
#define BAD(in, fl, why)                                                                           \
  {                                                                                                \
    in, fl, NULL, NULL, NULL, NULL, false, NULL, why                                               \
  }
#define L LBX_REF_LOCAL

static const row rows[] = {
    /* Docker Hub shorthands */
    OK("busybox", 0, "docker.io", "library/busybox", "latest", NULL, true,
       "docker.io/library/busybox:latest"),
    OK("busybox:1.36", 0, "docker.io", "library/busybox", "1.36", NULL, true,
       "docker.io/library/busybox:1.36"),
    OK("library/busybox", 0, "docker.io", "library/busybox", "latest", NULL, true,
       "docker.io/library/busybox:latest"),
    OK("docker.io/busybox", 0, "docker.io", "library/busybox", "latest", NULL, false,
       "docker.io/library/busybox:latest"),
    OK("docker.io/library/busybox:musl", 0, "docker.io", "library/busybox", "musl", NULL, false,
       "docker.io/library/busybox:musl"),
    OK("index.docker.io/busybox", 0, "docker.io", "library/busybox", "latest", NULL, false,
       "docker.io/library/busybox:latest"),
    OK("index.docker.io/foo/bar", 0, "docker.io", "foo/bar", "latest", NULL, false,
       "docker.io/foo/bar:latest"),
    OK("foo/bar", 0, "docker.io", "foo/bar", "latest", NULL, true, "docker.io/foo/bar:latest"),
    OK("foo/bar/baz:1", 0, "docker.io", "foo/bar/baz", "1", NULL, true, "docker.io/foo/bar/baz:1"),
    /* a name without '/' is never a registry, even one that looks like it */
    OK("localhost", 0, "docker.io", "library/localhost", "latest", NULL, true,
       "docker.io/library/localhost:latest"),
    OK("localhost:5000", 0, "docker.io", "library/localhost", "5000", NULL, true,
       "docker.io/library/localhost:5000"),
    OK("foo.com", 0, "docker.io", "library/foo.com", "latest", NULL, true,
       "docker.io/library/foo.com:latest"),
    /* other registries */
    OK("quay.io/org/img:tag", 0, "quay.io", "org/img", "tag", NULL, false, "quay.io/org/img:tag"),
    OK("quay.io/img", 0, "quay.io", "img", "latest", NULL, false, "quay.io/img:latest"),
    OK("localhost/foo", 0, "localhost", "foo", "latest", NULL, false, "localhost/foo:latest"),
    OK("localhost:5000/foo/bar:v1", 0, "localhost:5000", "foo/bar", "v1", NULL, false,
       "localhost:5000/foo/bar:v1"),
    OK("127.0.0.1:5000/debian:bookworm", 0, "127.0.0.1:5000", "debian", "bookworm", NULL, false,
       "127.0.0.1:5000/debian:bookworm"),
    OK("sub.domain.com:443/a/b/c", 0, "sub.domain.com:443", "a/b/c", "latest", NULL, false,
       "sub.domain.com:443/a/b/c:latest"),
    OK("My-Registry.Example.COM/app", 0, "My-Registry.Example.COM", "app", "latest", NULL, false,
       "My-Registry.Example.COM/app:latest"),
    OK("[::1]:5000/foo", 0, "[::1]:5000", "foo", "latest", NULL, false, "[::1]:5000/foo:latest"),
    OK("[fe80::1]/foo:x", 0, "[fe80::1]", "foo", "x", NULL, false, "[fe80::1]/foo:x"),
    OK("host:5000/x", 0, "host:5000", "x", "latest", NULL, false, "host:5000/x:latest"),
    /* path separators */
    OK("org/a.b_c__d-e---f", 0, "docker.io", "org/a.b_c__d-e---f", "latest", NULL, true,
       "docker.io/org/a.b_c__d-e---f:latest"),
    /* a '.' in the first component makes it a registry */
    OK("a.b/c", 0, "a.b", "c", "latest", NULL, false, "a.b/c:latest"),
    OK("0/1", 0, "docker.io", "0/1", "latest", NULL, true, "docker.io/0/1:latest"),
    /* tags */
    OK("img:_x.Y-z", 0, "docker.io", "library/img", "_x.Y-z", NULL, true,
       "docker.io/library/img:_x.Y-z"),
    OK("img:" T128, 0, "docker.io", "library/img", T128, NULL, true, "docker.io/library/img:" T128),
    /* a hex tag is a tag (git commit ids), not a digest */
    OK("app:0123456789abcdef0123456789abcdef01234567", 0, "docker.io", "library/app",
       "0123456789abcdef0123456789abcdef01234567", NULL, true,
       "docker.io/library/app:0123456789abcdef0123456789abcdef01234567"),
    /* digests */
    OK("img@" D64, 0, "docker.io", "library/img", NULL, D64, true, "docker.io/library/img@" D64),
    OK("img:tag@" D64, 0, "docker.io", "library/img", "tag", D64, true,
       "docker.io/library/img:tag@" D64),
    OK("quay.io/a/b@" D64, 0, "quay.io", "a/b", NULL, D64, false, "quay.io/a/b@" D64),
    OK("localhost:5000/a@" D64, 0, "localhost:5000", "a", NULL, D64, false,
       "localhost:5000/a@" D64),
    OK("img@sha512:" H64 H64, 0, "docker.io", "library/img", NULL, "sha512:" H64 H64, true,
       "docker.io/library/img@sha512:" H64 H64),
    OK("img@multihash+base58:ABCDEF0123456789abcdef0123456789", 0, "docker.io", "library/img", NULL,
       "multihash+base58:ABCDEF0123456789abcdef0123456789", true,
       "docker.io/library/img@multihash+base58:ABCDEF0123456789abcdef0123456789"),
    /* names Podman makes itself */
    OK("foo", L, "localhost", "foo", "latest", NULL, true, "localhost/foo:latest"),
    OK("foo/bar", L, "localhost", "foo/bar", "latest", NULL, true, "localhost/foo/bar:latest"),
    OK("foo:1", L, "localhost", "foo", "1", NULL, true, "localhost/foo:1"),
    OK("docker.io/foo", L, "docker.io", "library/foo", "latest", NULL, false,
       "docker.io/library/foo:latest"),
    OK("quay.io/x/y:z", L, "quay.io", "x/y", "z", NULL, false, "quay.io/x/y:z"),
    /* exactly 255 bytes of name is fine: 18 + 237 */
    OK(LONG255, 0, "docker.io", LONG255, "latest", NULL, true, "docker.io/" LONG255 ":latest"),

    BAD("", 0, "empty reference"),
    BAD("UPPER", 0, "repository name must be lowercase"),
    BAD("Foo/bar", 0, "repository name must be lowercase"),
    BAD("quay.io/Org/img", 0, "repository name must be lowercase"),
    BAD("busybox:", 0, "missing tag after ':'"),
    BAD("busybox@", 0, "missing digest after '@'"),
    BAD("busybox:1@", 0, "missing digest after '@'"),
    BAD("img@sha256:0123", 0, "sha256 digest must be 64 lowercase hex characters"),
    BAD("img@sha256:" H64 "0", 0, "sha256 digest must be 64 lowercase hex characters"),
    BAD("img@sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef", 0,
        "sha256 digest must be 64 lowercase hex characters"),
    BAD("a@sha256:zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz", 0,
        "sha256 digest must be 64 lowercase hex characters"),
    BAD("img@foo:0123", 0, "at least 32 hex characters"),
    BAD("img@" H64, 0, "digest must be algorithm:hex"),
    BAD("img@SHA256:" H64, 0, "invalid digest algorithm"),
    BAD("img@sha256+:" H64, 0, "invalid digest algorithm"),
    BAD("img@:" H64, 0, "invalid digest algorithm"),
    BAD("img@" D64 "@" D64, 0, "sha256 digest must be"),
    BAD("::", 0, "invalid character ':' in repository name"),
    BAD("foo:bar/baz", 0, "invalid port"),
    BAD("a/b:c/d", 0, "invalid character ':' in repository name"),
    BAD(":tag", 0, "missing repository name"),
    BAD("@" D64, 0, "missing repository name"),
    BAD("name with spaces", 0, "invalid character ' ' in repository name"),
    BAD("img:" T129, 0, "tag longer than 128 characters"),
    BAD("img:-x", 0, "invalid character '-' in tag"),
    BAD("img:a/b", 0, "invalid port in registry \"img:a\""),
    BAD("a//b", 0, "empty path component"),
    BAD("a/", 0, "empty path component"),
    BAD("/a", 0, "empty path component"),
    BAD("quay.io/", 0, "empty path component"),
    BAD("-a", 0, "must begin and end with a letter or digit"),
    BAD("a-", 0, "must begin and end with a letter or digit"),
    BAD("a..b", 0, "invalid separator \"..\""),
    BAD("a___b", 0, "invalid separator \"___\""),
    BAD("a.-b", 0, "invalid separator \".-\""),
    BAD("quay..io/a", 0, "empty component in registry host"),
    BAD("-quay.io/a", 0, "begins or ends with '-'"),
    BAD("quay_x.io/a", 0, "invalid character '_' in registry"),
    BAD("localhost:/a", 0, "invalid port"),
    BAD("localhost:50x/a", 0, "invalid port"),
    BAD("[::1/a", 0, "invalid IPv6 address"),
    BAD("[]:5000/a", 0, "invalid IPv6 address"),
    BAD("[::g]/a", 0, "invalid IPv6 address"),
    /* image IDs are looked up by the caller, never parsed as names */
    BAD(D64, 0, "an image ID is not a reference"),
    BAD(H64, 0, "an image ID is not a reference"),
    BAD(LONG255 "d", 0, "name longer than 255 characters"),
    BAD("quay.io/" C50 "/" C50 "/" C50 "/" C50 "/" C50 "/x", L, "name longer than 255 characters"),
    BAD("a\nb", 0, "invalid character '\\x0a'"),
    /* parts of the input quoted in the reason are escaped too (found by fuzz-ref) */
    BAD("i.or.i\n/m", 0, "invalid character '\\x0a' in registry \"i.or.i\\x0a\""),
    BAD("[::\n]/a", 0, "invalid IPv6 address in registry \"[::\\x0a]\""),
    BAD("localhost:5\n/a", 0, "invalid port in registry \"localhost:5\\x0a\""),
    BAD("a.b\x80/c", 0, "invalid character '\\x80' in registry \"a.b\\x80\""),
};

static void
check_row(const row *t)
{
  lbx_ref *r = NULL;
  _cleanup_error_ lbx_err *err = NULL;
  int rc = lbx_ref_parse(t->in, t->flags, &r, &err);
  if (!t->domain) {
    tap_is_int(rc, -1, "rejects \"%s\"", t->in);
    if (rc == 0 || !err) {
      lbx_ref_free(r);
      return;
    }
    tap_is_int(err->code, EINVAL, "  code EINVAL");
    bool why = strstr(err->msg, t->why) && strncmp(err->msg, "invalid reference \"", 19) == 0;
    tap_ok(why, "  says: %s", err->msg);
    tap_ok(!strchr(err->msg, '\n'), "  on one line");
    return;
  }
  tap_is_int(rc, 0, "parses \"%s\"%s", t->in, t->flags & LBX_REF_LOCAL ? " (local)" : "");
  if (rc < 0) {
    printf("#   %s\n", err ? err->msg : "(no error)");
    return;
  }
  tap_is_str(r->domain, t->domain, "  domain");
  tap_is_str(r->path, t->path, "  path");
  tap_is_str(r->tag, t->tag, "  tag");
  tap_is_str(r->digest, t->digest, "  digest");
  tap_is_int(r->short_name, t->short_name, "  short_name");
  _cleanup_free_ char *s = lbx_ref_string(r);
  tap_is_str(s, t->string, "  string");
  _cleanup_free_ char *name = lbx_ref_name(r);
  _cleanup_free_ char *want_name = lbx_xasprintf("%s/%s", t->domain, t->path);
  tap_is_str(name, want_name, "  name");
  /* the canonical string parses back to itself */
  _cleanup_(lbx_ref_freep) lbx_ref *again = NULL;
  _cleanup_free_ char *s2 = NULL;
  if (lbx_ref_parse(s, 0, &again, NULL) == 0)
    s2 = lbx_ref_string(again);
  tap_is_str(s2, s, "  round-trips");
  lbx_ref_free(r);
}

int
main(void)
{
  for (size_t i = 0; i < LBX_ARRAY_SIZE(rows); i++)
    check_row(&rows[i]);

  /* A NULL err is allowed (a caller that only wants yes or no). */
  lbx_ref *r = NULL;
  tap_is_int(lbx_ref_parse("A", 0, &r, NULL), -1, "NULL err is fine");
  tap_ok(r == NULL, "out untouched on failure");
  lbx_ref_free(NULL);

  /* Long garbage is cut in the message. */
  char big[2000];
  memset(big, 'X', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  _cleanup_error_ lbx_err *err = NULL;
  tap_is_int(lbx_ref_parse(big, 0, &r, &err), -1, "rejects 2000 characters");
  tap_ok(err && strlen(err->msg) < 400, "  message stays short");
  return tap_done();
}
