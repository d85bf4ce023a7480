/* registries.conf: a reader of the TOML subset these files use (tables,
 * arrays of tables, strings, booleans, arrays; numbers, dates and inline
 * tables are read and ignored), and the rules containers/image applies to
 * what it finds (longest prefix, mirrors first, blocked registries). */
#include "regconf.h"
#include "auth.h"
#include "ref.h"
#include "../store/util.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define CONF_MAX (1u << 20)
#define DEPTH_MAX 32 /* nested arrays and inline tables; deeper is an error */

enum pull_from { FROM_ALL, FROM_DIGEST, FROM_TAG, FROM_UNSET };

struct mirror {
  char *location;
  bool insecure;
  enum pull_from from;
};

struct reg {
  char *prefix, *location;
  bool insecure, blocked, digest_only;
  struct mirror *mirrors;
  size_t nmirrors;
  const char *path; /* the file that said it (for messages); points into paths */
  int line;
};

struct lbx_regconf {
  char **search;
  size_t nsearch;
  bool search_set;
  struct reg *regs;
  size_t nregs;
  char **alias_k, **alias_v;
  size_t naliases;
  char **paths; /* the files read: messages name them */
  size_t npaths;
};

lbx_regconf *
lbx_regconf_new(void)
{
  return lbx_xcalloc(1, sizeof(lbx_regconf));
}

static void
reg_clear(struct reg *r)
{
  free(r->prefix);
  free(r->location);
  for (size_t i = 0; i < r->nmirrors; i++)
    free(r->mirrors[i].location);
  free(r->mirrors);
  memset(r, 0, sizeof *r);
}

static void
strs_free(char **v, size_t n)
{
  for (size_t i = 0; i < n; i++)
    free(v[i]);
  free(v);
}

void
lbx_regconf_free(lbx_regconf *c)
{
  if (!c)
    return;
  strs_free(c->search, c->nsearch);
  for (size_t i = 0; i < c->nregs; i++)
    reg_clear(&c->regs[i]);
  free(c->regs);
  strs_free(c->alias_k, c->naliases);
  strs_free(c->alias_v, c->naliases);
  strs_free(c->paths, c->npaths);
  free(c);
}

/* ---- the TOML subset ---- */

struct cur {
  const char *p;
  const char *path;
  int line;
  lbx_err **err;
};

static int fail(struct cur *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int
fail(struct cur *c, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  char *msg = NULL;
  if (vasprintf(&msg, fmt, ap) < 0)
    msg = NULL;
  va_end(ap);
  lbx_error(c->err, EBADMSG, "%s:%d: %s", c->path, c->line, msg ? msg : "out of memory");
  free(msg);
  return -1;
}

static void
skip_blank(struct cur *c)
{
  while (*c->p == ' ' || *c->p == '\t')
    c->p++;
}

/* Blanks, newlines and comments: between array elements. */
static void
skip_space(struct cur *c)
{
  for (;;) {
    skip_blank(c);
    if (*c->p == '#')
      c->p = strchrnul(c->p, '\n');
    if (*c->p == '\r' && c->p[1] == '\n')
      c->p++;
    if (*c->p != '\n')
      return;
    c->p++;
    c->line++;
  }
}

/* The end of a line: blanks, a comment, then a newline or the end. */
static int
end_of_line(struct cur *c)
{
  skip_blank(c);
  if (*c->p == '#')
    c->p = strchrnul(c->p, '\n');
  if (*c->p == '\r' && c->p[1] == '\n')
    c->p++;
  if (*c->p == '\n') {
    c->p++;
    c->line++;
    return 0;
  }
  if (*c->p == '\0')
    return 0;
  return fail(c, "unexpected '%c' after a value", *c->p);
}

static void
put_utf8(char *out, size_t *n, unsigned long cp)
{
  if (cp < 0x80) {
    out[(*n)++] = (char)cp;
  } else if (cp < 0x800) {
    out[(*n)++] = (char)(0xc0 | (cp >> 6));
    out[(*n)++] = (char)(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    out[(*n)++] = (char)(0xe0 | (cp >> 12));
    out[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[(*n)++] = (char)(0x80 | (cp & 0x3f));
  } else {
    out[(*n)++] = (char)(0xf0 | (cp >> 18));
    out[(*n)++] = (char)(0x80 | ((cp >> 12) & 0x3f));
    out[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[(*n)++] = (char)(0x80 | (cp & 0x3f));
  }
}

/* A basic "..." or literal '...' string on one line; *out allocated. */
static int
parse_string(struct cur *c, char **out)
{
  char q = *c->p;
  if (c->p[1] == q && c->p[2] == q)
    return fail(c, "multi-line strings are not supported");
  const char *s = ++c->p;
  /* an escape never makes a string longer than its source */
  _cleanup_free_ char *buf = lbx_xmalloc(strcspn(s, "\n") + 1);
  size_t n = 0;
  for (;;) {
    unsigned char ch = (unsigned char)*c->p;
    if (ch == '\0' || ch == '\n')
      return fail(c, "a string is not closed");
    c->p++;
    if (ch == (unsigned char)q)
      break;
    if (ch < 0x20 && ch != '\t')
      return fail(c, "a control character in a string");
    if (ch != '\\' || q == '\'') {
      buf[n++] = (char)ch;
      continue;
    }
    char e = *c->p++;
    const char *simple = strchr("btnfr\"\\", e);
    if (e && simple) {
      static const char map[] = "\b\t\n\f\r\"\\";
      buf[n++] = map[simple - "btnfr\"\\"];
      continue;
    }
    int digits = e == 'u' ? 4 : e == 'U' ? 8 : 0;
    if (!digits)
      return fail(c, "an unknown escape in a string");
    unsigned long cp = 0;
    for (int i = 0; i < digits; i++) {
      char h = *c->p++;
      int v = h >= '0' && h <= '9'   ? h - '0'
              : h >= 'a' && h <= 'f' ? h - 'a' + 10
              : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                     : -1;
      if (v < 0)
        return fail(c, "a bad \\u escape in a string");
      cp = cp << 4 | (unsigned long)v;
    }
    if (cp == 0 || (cp >= 0xd800 && cp < 0xe000) || cp > 0x10ffff)
      return fail(c, "a \\u escape that is not a character");
    put_utf8(buf, &n, cp); /* at most 4 bytes for 6 or 10 of source */
  }
  buf[n] = '\0';
  *out = steal_pointer(&buf);
  return 0;
}

enum vkind { V_STR, V_BOOL, V_STRS, V_OTHER };

struct val {
  enum vkind kind;
  char *s;
  bool b;
  char **strs;
  size_t n;
};

static void
val_clear(struct val *v)
{
  free(v->s);
  strs_free(v->strs, v->n);
  memset(v, 0, sizeof *v);
}

static int parse_value(struct cur *c, struct val *v, int depth);

/* key, a.b, "quoted", 'literal': the dotted parts joined by '.' */
static int
parse_key(struct cur *c, char **out)
{
  _cleanup_free_ char *key = NULL;
  for (;;) {
    skip_blank(c);
    char *part = NULL;
    if (*c->p == '"' || *c->p == '\'') {
      if (parse_string(c, &part) < 0)
        return -1;
    } else {
      size_t n = strspn(c->p, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-");
      if (n == 0)
        return fail(c, "a key is missing");
      part = lbx_xstrndup(c->p, n);
      c->p += n;
    }
    char *joined = key ? lbx_xasprintf("%s.%s", key, part) : lbx_xstrdup(part);
    free(part);
    free(key);
    key = joined;
    skip_blank(c);
    if (*c->p != '.')
      break;
    c->p++;
  }
  *out = steal_pointer(&key);
  return 0;
}

static int
parse_array(struct cur *c, struct val *v, int depth)
{
  c->p++; /* '[' */
  v->kind = V_STRS;
  for (;;) {
    skip_space(c);
    if (*c->p == ']') {
      c->p++;
      return 0;
    }
    struct val e = {0};
    if (parse_value(c, &e, depth + 1) < 0) {
      val_clear(&e); /* a nested array may hold strings already */
      return -1;
    }
    if (e.kind == V_STR && v->kind == V_STRS) {
      v->strs = lbx_xrealloc(v->strs, (v->n + 1) * sizeof *v->strs);
      v->strs[v->n++] = steal_pointer(&e.s);
    } else {
      v->kind = V_OTHER;
    }
    val_clear(&e);
    skip_space(c);
    if (*c->p == ',')
      c->p++;
    else if (*c->p != ']')
      return fail(c, "an array's elements must be separated by ','");
  }
}

/* { k = v, ... }: read, and ignored (no key this reader knows takes one) */
static int
parse_inline_table(struct cur *c, int depth)
{
  c->p++; /* '{' */
  skip_blank(c);
  if (*c->p == '}') {
    c->p++;
    return 0;
  }
  for (;;) {
    _cleanup_free_ char *key = NULL;
    if (parse_key(c, &key) < 0)
      return -1;
    if (*c->p != '=')
      return fail(c, "'=' expected after \"%s\"", key);
    c->p++;
    struct val v = {0};
    int r = parse_value(c, &v, depth + 1);
    val_clear(&v);
    if (r < 0)
      return -1;
    skip_blank(c);
    if (*c->p == '}') {
      c->p++;
      return 0;
    }
    if (*c->p != ',')
      return fail(c, "an inline table's entries must be separated by ','");
    c->p++;
  }
}

static int
parse_value(struct cur *c, struct val *v, int depth)
{
  if (depth > DEPTH_MAX)
    return fail(c, "values nested more than %d deep", DEPTH_MAX);
  skip_blank(c);
  char ch = *c->p;
  if (ch == '"' || ch == '\'') {
    v->kind = V_STR;
    return parse_string(c, &v->s);
  }
  if (ch == '[')
    return parse_array(c, v, depth);
  if (ch == '{') {
    v->kind = V_OTHER;
    return parse_inline_table(c, depth);
  }
  /* true, false, a number or a date: up to the next delimiter */
  size_t n = strcspn(c->p, " \t\r\n#,]}");
  if (n == 0)
    return fail(c, "a value is missing");
  if ((n == 4 && strncmp(c->p, "true", 4) == 0) || (n == 5 && strncmp(c->p, "false", 5) == 0)) {
    v->kind = V_BOOL;
    v->b = n == 4;
  } else {
    v->kind = V_OTHER;
  }
  c->p += n;
  return 0;
}

/* ---- what the keys mean ---- */

/* "a.io/foo/" -> "a.io/foo": containers/image trims a location's slashes */
static void
trim_slashes(char *s)
{
  size_t n = s ? strlen(s) : 0;
  while (n && s[n - 1] == '/')
    s[--n] = '\0';
}

/* An alias names a repository with its registry, no tag or digest: what
 * containers/image accepts as the right-hand side of [aliases]. */
static bool
alias_ok(const char *v)
{
  _cleanup_(lbx_ref_freep) lbx_ref *ref = NULL;
  lbx_err *e = NULL;
  bool ok = lbx_ref_parse(v, 0, &ref, &e) == 0 && !ref->short_name && !ref->digest &&
            !strpbrk(strrchr(v, '/') ? strrchr(v, '/') : v, ":@");
  lbx_error_free(e);
  return ok;
}

enum table { T_TOP, T_REGISTRY, T_MIRROR, T_ALIASES, T_OTHER };

static int
want_str(struct cur *c, const char *key, struct val *v, char **dst)
{
  if (v->kind != V_STR)
    return fail(c, "%s must be a string", key);
  free(*dst);
  *dst = steal_pointer(&v->s);
  return 0;
}

static int
want_bool(struct cur *c, const char *key, const struct val *v, bool *dst)
{
  if (v->kind != V_BOOL)
    return fail(c, "%s must be true or false", key);
  *dst = v->b;
  return 0;
}

static void
alias_set(lbx_regconf *c, const char *k, const char *v)
{
  for (size_t i = 0; i < c->naliases; i++)
    if (strcmp(c->alias_k[i], k) == 0) {
      free(c->alias_v[i]);
      c->alias_v[i] = lbx_xstrdup(v);
      return;
    }
  c->alias_k = lbx_xrealloc(c->alias_k, (c->naliases + 1) * sizeof *c->alias_k);
  c->alias_v = lbx_xrealloc(c->alias_v, (c->naliases + 1) * sizeof *c->alias_v);
  c->alias_k[c->naliases] = lbx_xstrdup(k);
  c->alias_v[c->naliases++] = lbx_xstrdup(v);
}

static int
assign(struct cur *c, lbx_regconf *f, enum table t, const char *key, struct val *v)
{
  struct reg *r = f->nregs ? &f->regs[f->nregs - 1] : NULL;
  struct mirror *m = r && r->nmirrors ? &r->mirrors[r->nmirrors - 1] : NULL;
  switch (t) {
  case T_TOP:
    if (strcmp(key, "unqualified-search-registries") != 0)
      return 0;
    if (v->kind != V_STRS)
      return fail(c, "%s must be an array of strings", key);
    for (size_t i = 0; i < v->n; i++) {
      trim_slashes(v->strs[i]);
      /* "" would make docker.io-less names like "/library/x" */
      if (!*v->strs[i])
        return fail(c, "an empty name in %s", key);
    }
    strs_free(f->search, f->nsearch);
    f->search = steal_pointer(&v->strs);
    f->nsearch = v->n;
    v->n = 0;
    f->search_set = true;
    return 0;
  case T_REGISTRY:
    if (strcmp(key, "prefix") == 0)
      return want_str(c, key, v, &r->prefix);
    if (strcmp(key, "location") == 0)
      return want_str(c, key, v, &r->location);
    if (strcmp(key, "insecure") == 0)
      return want_bool(c, key, v, &r->insecure);
    if (strcmp(key, "blocked") == 0)
      return want_bool(c, key, v, &r->blocked);
    if (strcmp(key, "mirror-by-digest-only") == 0)
      return want_bool(c, key, v, &r->digest_only);
    if (strcmp(key, "mirror") == 0)
      return fail(c, "mirrors as an inline array are not supported: write [[registry.mirror]] "
                     "tables");
    return 0;
  case T_MIRROR:
    if (strcmp(key, "location") == 0)
      return want_str(c, key, v, &m->location);
    if (strcmp(key, "insecure") == 0)
      return want_bool(c, key, v, &m->insecure);
    if (strcmp(key, "pull-from-mirror") == 0) {
      if (v->kind != V_STR)
        return fail(c, "%s must be a string", key);
      if (strcmp(v->s, "all") == 0)
        m->from = FROM_ALL;
      else if (strcmp(v->s, "digest-only") == 0)
        m->from = FROM_DIGEST;
      else if (strcmp(v->s, "tag-only") == 0)
        m->from = FROM_TAG;
      else
        return fail(c, "%s must be \"all\", \"digest-only\" or \"tag-only\"", key);
    }
    return 0;
  case T_ALIASES:
    if (v->kind != V_STR)
      return fail(c, "the alias \"%s\" must be a string", key);
    /* "" cancels an alias an earlier file made */
    if (*v->s && !alias_ok(v->s))
      return fail(c,
                  "the alias \"%s\" = \"%s\" is not a fully qualified name (registry/repository, "
                  "no tag or digest)",
                  key, v->s);
    alias_set(f, key, v->s);
    return 0;
  case T_OTHER:
    return 0;
  }
  return 0;
}

static int
header(struct cur *c, lbx_regconf *f, enum table *t)
{
  bool array = c->p[1] == '[';
  c->p += array ? 2 : 1;
  _cleanup_free_ char *name = NULL;
  if (parse_key(c, &name) < 0)
    return -1;
  if (*c->p != ']' || (array && c->p[1] != ']'))
    return fail(c, "a table header is not closed");
  c->p += array ? 2 : 1;
  if (strncmp(name, "registries.", 11) == 0)
    return fail(c,
                "[%s] is the version 1 format, which is not supported: see "
                "containers-registries.conf(5) for version 2",
                name);
  if (array && strcmp(name, "registry") == 0) {
    f->regs = lbx_xrealloc(f->regs, (f->nregs + 1) * sizeof *f->regs);
    f->regs[f->nregs] = (struct reg){.path = c->path, .line = c->line};
    f->nregs++;
    *t = T_REGISTRY;
  } else if (array && strcmp(name, "registry.mirror") == 0) {
    if (!f->nregs)
      return fail(c, "[[registry.mirror]] comes before any [[registry]]");
    struct reg *r = &f->regs[f->nregs - 1];
    r->mirrors = lbx_xrealloc(r->mirrors, (r->nmirrors + 1) * sizeof *r->mirrors);
    r->mirrors[r->nmirrors++] = (struct mirror){.from = FROM_UNSET};
    *t = T_MIRROR;
  } else if (!array && strcmp(name, "aliases") == 0) {
    *t = T_ALIASES;
  } else {
    *t = T_OTHER;
  }
  return end_of_line(c);
}

static bool
has_scheme(const char *s)
{
  return s && strstr(s, "://");
}

/* What a [[registry]] needs once its table is read. */
static int
check_reg(struct cur *c, struct reg *r)
{
  c->line = r->line;
  trim_slashes(r->prefix);
  trim_slashes(r->location);
  for (size_t i = 0; i < r->nmirrors; i++)
    trim_slashes(r->mirrors[i].location);
  if (!r->prefix && !r->location)
    return fail(c, "a [[registry]] has neither prefix nor location");
  if (has_scheme(r->prefix) || has_scheme(r->location))
    return fail(c, "a [[registry]]'s prefix and location name no scheme (no \"https://\")");
  bool wild = r->prefix && strncmp(r->prefix, "*.", 2) == 0;
  if (wild && strpbrk(r->prefix + 2, "/:@*"))
    return fail(c, "the wildcard prefix \"%s\" must be of the form *.example.com", r->prefix);
  if (wild && r->location && *r->location)
    return fail(c, "the wildcard prefix \"%s\" cannot have a location", r->prefix);
  if (!r->prefix)
    r->prefix = lbx_xstrdup(r->location);
  if (!*r->prefix)
    return fail(c, "a [[registry]] has an empty prefix");
  for (size_t i = 0; i < r->nmirrors; i++) {
    if (r->digest_only && r->mirrors[i].from != FROM_UNSET)
      return fail(c, "\"%s\" sets both mirror-by-digest-only and a mirror's pull-from-mirror",
                  r->prefix);
    if (!r->mirrors[i].location || !*r->mirrors[i].location)
      return fail(c, "a [[registry.mirror]] of \"%s\" has no location", r->prefix);
    if (has_scheme(r->mirrors[i].location))
      return fail(c, "a [[registry.mirror]]'s location names no scheme (no \"https://\")");
  }
  return 0;
}

/* A later file's [[registry]] replaces one with the same prefix. */
static void
merge(lbx_regconf *dst, lbx_regconf *f)
{
  if (f->search_set) {
    strs_free(dst->search, dst->nsearch);
    dst->search = steal_pointer(&f->search);
    dst->nsearch = f->nsearch;
    f->nsearch = 0;
  }
  for (size_t i = 0; i < f->nregs; i++) {
    /* within one file the first table of a prefix counts, as in
     * containers/image; a later file's replaces it */
    bool dup = false;
    for (size_t k = 0; k < i && !dup; k++)
      dup = f->regs[k].prefix && strcmp(f->regs[k].prefix, f->regs[i].prefix) == 0;
    if (dup) {
      reg_clear(&f->regs[i]);
      continue;
    }
    size_t j = 0;
    while (j < dst->nregs && strcmp(dst->regs[j].prefix, f->regs[i].prefix) != 0)
      j++;
    if (j == dst->nregs)
      dst->regs = lbx_xrealloc(dst->regs, (++dst->nregs) * sizeof *dst->regs);
    else
      reg_clear(&dst->regs[j]);
    dst->regs[j] = f->regs[i];
  }
  f->nregs = 0;
  for (size_t i = 0; i < f->naliases; i++)
    alias_set(dst, f->alias_k[i], f->alias_v[i]);
}

int
lbx_regconf_parse(lbx_regconf *c, const char *path, const char *text, lbx_err **err)
{
  c->paths = lbx_xrealloc(c->paths, (c->npaths + 1) * sizeof *c->paths);
  const char *p = c->paths[c->npaths++] = lbx_xstrdup(path);
  lbx_regconf *f = lbx_regconf_new();
  struct cur cu = {text, p, 1, err};
  enum table t = T_TOP;
  /* the keys of the current table: TOML (and containers/image's reader)
   * refuses a key given twice, rather than letting one silently win */
  char **seen = NULL;
  size_t nseen = 0;
  int rc = 0;
  while (rc == 0) {
    skip_space(&cu);
    if (!*cu.p)
      break;
    if (*cu.p == '[') {
      strs_free(seen, nseen);
      seen = NULL;
      nseen = 0;
      rc = header(&cu, f, &t);
      continue;
    }
    char *key = NULL;
    if (parse_key(&cu, &key) < 0) {
      rc = -1;
      break;
    }
    seen = lbx_xrealloc(seen, (nseen + 1) * sizeof *seen);
    seen[nseen++] = key;
    for (size_t i = 0; i + 1 < nseen && rc == 0; i++)
      if (strcmp(seen[i], key) == 0)
        rc = fail(&cu, "\"%s\" is given twice in one table", key);
    if (rc < 0)
      break;
    if (*cu.p != '=') {
      rc = fail(&cu, "'=' expected after \"%s\"", key);
      break;
    }
    cu.p++;
    struct val v = {0};
    rc = parse_value(&cu, &v, 0);
    if (rc == 0)
      rc = assign(&cu, f, t, key, &v);
    if (rc == 0)
      rc = end_of_line(&cu);
    val_clear(&v);
  }
  strs_free(seen, nseen);
  for (size_t i = 0; rc == 0 && i < f->nregs; i++)
    rc = check_reg(&cu, &f->regs[i]);
  if (rc == 0)
    merge(c, f);
  lbx_regconf_free(f);
  return rc;
}

/* ---- files ---- */

/* 1 read, 0 absent, -1 with *err */
static int
read_one(lbx_regconf *c, const char *path, lbx_err **err)
{
  _cleanup_free_ char *text = NULL;
  size_t len;
  int r = lbx_read_file(path, CONF_MAX, &text, &len);
  if (r == -ENOENT || r == -ENOTDIR)
    return 0;
  if (r < 0)
    return lbx_error_errno(err, -r, "registries configuration %s", path);
  if (memchr(text, '\0', len))
    return lbx_error(err, EBADMSG, "registries configuration %s: a NUL byte", path);
  return lbx_regconf_parse(c, path, text, err) < 0 ? -1 : 1;
}

static int
read_dropins(lbx_regconf *c, const char *dir, lbx_err **err)
{
  static const char *const conf[] = {".conf", NULL};
  _cleanup_(lbx_strv_freep) char **names = NULL;
  int r = lbx_dir_names(dir, conf, &names);
  if (r == -ENOENT || r == -ENOTDIR)
    return 0;
  if (r < 0)
    return lbx_error_errno(err, -r, "registries configuration directory %s", dir);
  for (char **name = names; *name; name++) {
    _cleanup_free_ char *p = lbx_xasprintf("%s/%s", dir, *name);
    if (read_one(c, p, err) < 0)
      return -1;
  }
  return 0;
}

int
lbx_regconf_load(lbx_regconf **out, lbx_err **err)
{
  _cleanup_(lbx_regconf_freep) lbx_regconf *c = lbx_regconf_new();
  const char *env = getenv("CONTAINERS_REGISTRIES_CONF");
  if (env && *env) {
    if (read_one(c, env, err) < 0)
      return -1;
    *out = steal_pointer(&c);
    return 0;
  }
  /* the user's file replaces the system's and its drop-ins; the user's
   * drop-ins apply either way (containers/image's choice) */
  _cleanup_free_ char *cfg = lbx_xdg_config_home();
  _cleanup_free_ char *user = cfg ? lbx_xasprintf("%s/containers/registries.conf", cfg) : NULL;
  int r = user ? read_one(c, user, err) : 0;
  if (r == 0 && (read_one(c, "/etc/containers/registries.conf", err) < 0 ||
                 read_dropins(c, "/etc/containers/registries.conf.d", err) < 0))
    return -1;
  if (r < 0)
    return -1;
  if (cfg) {
    _cleanup_free_ char *d = lbx_xasprintf("%s/containers/registries.conf.d", cfg);
    if (read_dropins(c, d, err) < 0)
      return -1;
  }
  *out = steal_pointer(&c);
  return 0;
}

/* ---- queries ---- */

const char *const *
lbx_regconf_search(const lbx_regconf *c, size_t *n)
{
  *n = c->nsearch;
  return (const char *const *)c->search;
}

const char *
lbx_regconf_alias(const lbx_regconf *c, const char *name)
{
  for (size_t i = c->naliases; i-- > 0;)
    if (strcmp(c->alias_k[i], name) == 0)
      return *c->alias_v[i] ? c->alias_v[i] : NULL; /* "" cancelled it */
  return NULL;
}

/* How many bytes of name the prefix matches (0: none). A wildcard
 * "*.example.com" matches hosts under example.com and counts its length. */
static size_t
prefix_match(const char *prefix, const char *name)
{
  if (strncmp(prefix, "*.", 2) == 0) {
    size_t hl = strcspn(name, "/:"); /* the host without its port */
    size_t sl = strlen(prefix + 1);  /* ".example.com" */
    if (hl > sl && strncmp(name + hl - sl, prefix + 1, sl) == 0)
      return strlen(prefix);
    return 0;
  }
  size_t l = strlen(prefix);
  if (strncmp(name, prefix, l) != 0 || (name[l] != '\0' && name[l] != '/'))
    return 0;
  return l;
}

static int
add_endpoint(lbx_endpoint **eps, size_t *n, const char *full, bool insecure, bool mirror,
             const struct reg *r, lbx_err **err)
{
  _cleanup_(lbx_ref_freep) lbx_ref *ref = NULL;
  if (lbx_ref_parse(full, 0, &ref, err) < 0)
    return lbx_error_prefix(err, "%s:%d: \"%s\" (rewritten by the prefix \"%s\")", r->path, r->line,
                            full, r->prefix);
  *eps = lbx_xrealloc(*eps, (*n + 1) * sizeof **eps);
  (*eps)[(*n)++] =
      (lbx_endpoint){lbx_xstrdup(ref->domain), lbx_xstrdup(ref->path), insecure, mirror};
  return 0;
}

static const struct reg *
best_match(const lbx_regconf *c, const char *name, size_t *len)
{
  const struct reg *best = NULL;
  *len = 0;
  for (size_t i = 0; i < c->nregs; i++) {
    size_t l = prefix_match(c->regs[i].prefix, name);
    if (l > *len) {
      *len = l;
      best = &c->regs[i];
    }
  }
  return best;
}

bool
lbx_regconf_insecure(const lbx_regconf *c, const char *host)
{
  size_t len;
  const struct reg *r = best_match(c, host, &len);
  return r && r->insecure;
}

int
lbx_regconf_endpoints(const lbx_regconf *c, const char *name, bool by_digest, lbx_endpoint **eps,
                      size_t *n, lbx_err **err)
{
  *eps = NULL;
  *n = 0;
  size_t best_len;
  const struct reg *best = best_match(c, name, &best_len);
  if (!best) {
    const char *slash = strchr(name, '/');
    *eps = lbx_xcalloc(1, sizeof **eps);
    (*eps)[0].host = slash ? lbx_xstrndup(name, (size_t)(slash - name)) : lbx_xstrdup(name);
    (*eps)[0].repo = lbx_xstrdup(slash ? slash + 1 : "");
    *n = 1;
    return 0;
  }
  if (best->blocked)
    return lbx_error(err, EACCES, "%s: the registry is blocked by %s:%d", name, best->path,
                     best->line);
  /* what follows the match goes after a location; a wildcard matches the
   * host, and its registry keeps the name (it has no location) */
  bool wild = strncmp(best->prefix, "*.", 2) == 0;
  const char *rest = wild ? name + strcspn(name, "/") : name + best_len;
  int rc = 0;
  for (size_t i = 0; i < best->nmirrors && rc == 0; i++) {
    const struct mirror *m = &best->mirrors[i];
    enum pull_from from = m->from != FROM_UNSET ? m->from
                          : best->digest_only   ? FROM_DIGEST
                                                : FROM_ALL;
    if ((from == FROM_DIGEST && !by_digest) || (from == FROM_TAG && by_digest))
      continue;
    _cleanup_free_ char *full = lbx_xasprintf("%s%s", m->location, rest);
    rc = add_endpoint(eps, n, full, m->insecure, true, best, err);
  }
  if (rc == 0) {
    _cleanup_free_ char *full =
        wild || !best->location ? lbx_xstrdup(name) : lbx_xasprintf("%s%s", best->location, rest);
    rc = add_endpoint(eps, n, full, best->insecure, false, best, err);
  }
  if (rc < 0) {
    lbx_endpoints_free(*eps, *n);
    *eps = NULL;
    *n = 0;
  }
  return rc;
}

void
lbx_endpoints_free(lbx_endpoint *eps, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    free(eps[i].host);
    free(eps[i].repo);
  }
  free(eps);
}
