/* Image references: the docker/distribution grammar, then the normalization
 * containers/image applies for Podman (docker.io, library/, latest). */
#include "ref.h"
#include "../store/util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define NAME_MAX_LEN 255 /* distribution's NameTotalLengthMax, on the normalized name */
#define TAG_MAX_LEN 128
#define DIGEST_HEX_MIN 32 /* the grammar wants at least 128 bits */
#define QUOTE_MAX 200     /* longer inputs are cut in messages to keep them readable */

/* Why a part was rejected; filled by the checkers, which then return -1. */
typedef struct why {
  char msg[200];
} why;

static int reject(why *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int
reject(why *w, const char *fmt, ...)
{
  char raw[sizeof w->msg];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(raw, sizeof raw, fmt, ap);
  va_end(ap);
  /* Reasons quote parts of the input as they are: escape what quote()
   * escapes, so a pasted newline cannot split the message. */
  size_t o = 0;
  for (const unsigned char *p = (const unsigned char *)raw; *p && o + 5 < sizeof w->msg; p++) {
    if (*p < 0x20 || *p >= 0x7f)
      o += (size_t)snprintf(w->msg + o, sizeof w->msg - o, "\\x%02x", *p);
    else
      w->msg[o++] = (char)*p;
  }
  w->msg[o] = '\0';
  return -1;
}

static bool
is_lower_alnum(char c)
{
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool
is_alnum(char c)
{
  return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

static bool
is_digit(char c)
{
  return c >= '0' && c <= '9';
}

static bool
is_hex(char c, bool lower_only)
{
  return is_digit(c) || (c >= 'a' && c <= 'f') || (!lower_only && c >= 'A' && c <= 'F');
}

/* Messages must stay on one line and the input may hold anything (a newline
 * pasted from a script), so it is escaped and cut before being quoted. */
static char *
quote(const char *s, size_t n)
{
  size_t cut = n > QUOTE_MAX ? QUOTE_MAX : n;
  char *out = lbx_xmalloc(cut * 4 + 4);
  char *p = out;
  for (size_t i = 0; i < cut; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\') {
      *p++ = '\\';
      *p++ = (char)c;
    } else if (c < 0x20 || c >= 0x7f) {
      p += sprintf(p, "\\x%02x", c);
    } else {
      *p++ = (char)c;
    }
  }
  if (cut < n)
    p = stpcpy(p, "...");
  *p = '\0';
  return out;
}

/* A character named in a message, printable or not: "' '" or "'\x0a'". */
static const char *
show_char(char c, char buf[8])
{
  unsigned char u = (unsigned char)c;
  if (u < 0x20 || u >= 0x7f || u == '\'')
    snprintf(buf, 8, "'\\x%02x'", u);
  else
    snprintf(buf, 8, "'%c'", u);
  return buf;
}

static int
fail(lbx_err **err, const char *input, const char *reason)
{
  _cleanup_free_ char *q = quote(input, strlen(input));
  return lbx_error(err, EINVAL, "invalid reference \"%s\": %s", q, reason);
}

/* host [':' port], host being DNS-like components, an IPv4 address (which
 * has the same shape) or a bracketed IPv6 address. Case is kept: registries
 * are matched as written, as containers/image does. */
static int
check_domain(const char *d, size_t n, why *w)
{
  size_t i = 0;
  if (d[0] == '[') {
    while (i + 1 < n && d[i + 1] != ']') {
      char c = d[i + 1];
      if (!is_hex(c, false) && c != ':')
        return reject(w, "invalid IPv6 address in registry \"%.*s\"", (int)n, d);
      i++;
    }
    if (i == 0 || i + 1 >= n)
      return reject(w, "invalid IPv6 address in registry \"%.*s\"", (int)n, d);
    i += 2; /* the brackets */
  } else {
    for (;;) {
      size_t start = i;
      while (i < n && (is_alnum(d[i]) || d[i] == '-'))
        i++;
      if (i == start)
        return reject(w, "empty component in registry host \"%.*s\"", (int)n, d);
      if (d[start] == '-' || d[i - 1] == '-')
        return reject(w, "registry host component \"%.*s\" begins or ends with '-'",
                      (int)(i - start), d + start);
      if (i < n && d[i] == '.') {
        i++;
        continue;
      }
      break;
    }
  }
  if (i < n && d[i] == ':') {
    size_t start = ++i;
    while (i < n && is_digit(d[i]))
      i++;
    if (i == start || i < n)
      return reject(w, "invalid port in registry \"%.*s\"", (int)n, d);
  }
  if (i < n) {
    char cb[8];
    return reject(w, "invalid character %s in registry \"%.*s\"", show_char(d[i], cb), (int)n, d);
  }
  return 0;
}

/* One path component: [a-z0-9]+ joined by '.', '_', '__' or any run of '-'. */
static int
check_component(const char *c, size_t n, why *w)
{
  if (n == 0)
    return reject(w, "empty path component in repository name");
  for (size_t i = 0; i < n; i++) {
    if (!is_lower_alnum(c[i]) && !strchr("._-", c[i])) {
      char cb[8];
      return reject(w, "invalid character %s in repository name", show_char(c[i], cb));
    }
  }
  if (!is_lower_alnum(c[0]) || !is_lower_alnum(c[n - 1]))
    return reject(w, "path component \"%.*s\" must begin and end with a letter or digit", (int)n,
                  c);
  size_t i = 0;
  while (i < n) {
    while (i < n && is_lower_alnum(c[i]))
      i++;
    if (i == n)
      break;
    size_t sep = i;
    if (c[i] == '.') {
      i++;
    } else if (c[i] == '_') {
      i++;
      if (i < n && c[i] == '_')
        i++;
    } else {
      while (i < n && c[i] == '-')
        i++;
    }
    /* Separators never touch: "a._b" and "a___b" are out. */
    if (!is_lower_alnum(c[i]))
      return reject(w, "invalid separator \"%.*s\" in path component \"%.*s\"", (int)(i - sep + 1),
                    c + sep, (int)n, c);
  }
  return 0;
}

static int
check_path(const char *p, size_t n, why *w)
{
  /* Said first and on its own: the one mistake people make most. */
  for (size_t i = 0; i < n; i++)
    if (p[i] >= 'A' && p[i] <= 'Z')
      return reject(w, "repository name must be lowercase");
  size_t start = 0;
  for (size_t i = 0; i <= n; i++) {
    if (i < n && p[i] != '/')
      continue;
    if (check_component(p + start, i - start, w) < 0)
      return -1;
    start = i + 1;
  }
  return 0;
}

static int
check_tag(const char *t, why *w)
{
  size_t n = strlen(t);
  if (n == 0)
    return reject(w, "missing tag after ':'");
  if (n > TAG_MAX_LEN)
    return reject(w, "tag longer than %d characters", TAG_MAX_LEN);
  for (size_t i = 0; i < n; i++) {
    char c = t[i];
    if (is_alnum(c) || c == '_' || (i > 0 && (c == '.' || c == '-')))
      continue;
    char cb[8];
    return reject(w, "invalid character %s in tag", show_char(c, cb));
  }
  return 0;
}

/* The hex length the registries' algorithms fix; others only need 128 bits. */
static size_t
known_hex_len(const char *algo, size_t n)
{
  static const struct {
    const char *name;
    size_t hex;
  } known[] = {{"sha256", 64}, {"sha384", 96}, {"sha512", 128}};
  for (size_t i = 0; i < LBX_ARRAY_SIZE(known); i++)
    if (strlen(known[i].name) == n && memcmp(known[i].name, algo, n) == 0)
      return known[i].hex;
  return 0;
}

static int
check_digest(const char *d, why *w)
{
  if (!*d)
    return reject(w, "missing digest after '@'");
  const char *colon = strchr(d, ':');
  if (!colon)
    return reject(w, "digest must be algorithm:hex");
  size_t an = (size_t)(colon - d);
  /* algorithm: [a-z0-9]+ joined by single '+', '.', '_' or '-' */
  bool want_alnum = true;
  for (size_t i = 0; i < an; i++) {
    if (is_lower_alnum(d[i])) {
      want_alnum = false;
    } else if (!want_alnum && strchr("+._-", d[i])) {
      want_alnum = true;
    } else {
      return reject(w, "invalid digest algorithm \"%.*s\"", (int)an, d);
    }
  }
  if (an == 0 || want_alnum)
    return reject(w, "invalid digest algorithm \"%.*s\"", (int)an, d);
  const char *hex = colon + 1;
  size_t hn = strlen(hex), fixed = known_hex_len(d, an);
  bool hex_ok = fixed ? hn == fixed : hn >= DIGEST_HEX_MIN;
  for (size_t i = 0; hex_ok && i < hn; i++)
    hex_ok = is_hex(hex[i], fixed != 0);
  if (!hex_ok && fixed)
    return reject(w, "%.*s digest must be %zu lowercase hex characters", (int)an, d, fixed);
  if (!hex_ok)
    return reject(w, "digest must have at least %d hex characters", DIGEST_HEX_MIN);
  return 0;
}

/* A bare image ID ("sha256:<hex>" or 64 hex digits) would otherwise parse as
 * the name "sha256" with a tag, or as a Docker Hub name; it is never meant
 * as one, and the caller looks IDs up before parsing. */
static bool
is_image_id(const char *s)
{
  /* Only the fixed-length algorithms: "app:<40 hex>" is a git-commit tag. */
  const char *colon = strchr(s, ':');
  why w;
  if (colon && known_hex_len(s, (size_t)(colon - s)) && check_digest(s, &w) == 0)
    return true;
  if (strlen(s) != 64)
    return false;
  for (size_t i = 0; i < 64; i++)
    if (!is_hex(s[i], true))
      return false;
  return true;
}

void
lbx_ref_free(lbx_ref *r)
{
  if (!r)
    return;
  free(r->domain);
  free(r->path);
  free(r->tag);
  free(r->digest);
  free(r);
}

int
lbx_ref_parse(const char *s, unsigned flags, lbx_ref **out, lbx_err **err)
{
  if (!s || !*s)
    return lbx_error(err, EINVAL, "invalid reference \"\": empty reference");
  if (is_image_id(s))
    return fail(err, s, "an image ID is not a reference");

  /* name[:tag][@digest]: '@' cannot occur before the digest, and a ':' is a
   * tag only after the last '/', else it is the registry's port. */
  const char *at = strchr(s, '@');
  size_t name_tag_len = at ? (size_t)(at - s) : strlen(s);
  _cleanup_free_ char *name = lbx_xstrndup(s, name_tag_len);
  _cleanup_free_ char *tag = NULL;
  char *colon = strrchr(name, ':'), *slash = strrchr(name, '/');
  if (colon && (!slash || colon > slash)) {
    tag = lbx_xstrdup(colon + 1);
    *colon = '\0';
  }

  why w;
  if (!*name)
    return fail(err, s, "missing repository name");

  /* The first component is a registry only if it looks like a host, so
   * "foo/bar" stays a Docker Hub name. */
  const char *path = name;
  size_t domain_len = 0;
  char *first_slash = strchr(name, '/');
  if (first_slash) {
    size_t n = (size_t)(first_slash - name);
    if (memchr(name, '.', n) || memchr(name, ':', n) ||
        (n == strlen("localhost") && memcmp(name, "localhost", n) == 0)) {
      domain_len = n;
      path = first_slash + 1;
    }
  }
  if (domain_len && check_domain(name, domain_len, &w) < 0)
    return fail(err, s, w.msg);
  if (check_path(path, strlen(path), &w) < 0)
    return fail(err, s, w.msg);
  if (tag && check_tag(tag, &w) < 0)
    return fail(err, s, w.msg);
  if (at && check_digest(at + 1, &w) < 0)
    return fail(err, s, w.msg);

  _cleanup_(lbx_ref_freep) lbx_ref *r = lbx_xcalloc(1, sizeof *r);
  r->short_name = domain_len == 0;
  if (r->short_name)
    r->domain = lbx_xstrdup(flags & LBX_REF_LOCAL ? "localhost" : "docker.io");
  else if (domain_len == strlen("index.docker.io") &&
           memcmp(name, "index.docker.io", domain_len) == 0)
    r->domain = lbx_xstrdup("docker.io"); /* the legacy name of the same registry */
  else
    r->domain = lbx_xstrndup(name, domain_len);
  /* Official images live under library/ on Docker Hub. */
  if (strcmp(r->domain, "docker.io") == 0 && !strchr(path, '/'))
    r->path = lbx_xasprintf("library/%s", path);
  else
    r->path = lbx_xstrdup(path);
  if (strlen(r->domain) + 1 + strlen(r->path) > NAME_MAX_LEN) {
    snprintf(w.msg, sizeof w.msg, "name longer than %d characters", NAME_MAX_LEN);
    return fail(err, s, w.msg);
  }
  r->tag = steal_pointer(&tag);
  r->digest = at ? lbx_xstrdup(at + 1) : NULL;
  if (!r->tag && !r->digest)
    r->tag = lbx_xstrdup("latest");
  *out = steal_pointer(&r);
  return 0;
}

char *
lbx_ref_name(const lbx_ref *r)
{
  return lbx_xasprintf("%s/%s", r->domain, r->path);
}

char *
lbx_ref_string(const lbx_ref *r)
{
  return lbx_xasprintf("%s/%s%s%s%s%s", r->domain, r->path, r->tag ? ":" : "", r->tag ? r->tag : "",
                       r->digest ? "@" : "", r->digest ? r->digest : "");
}
