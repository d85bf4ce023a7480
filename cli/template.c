/* A subset of Go's text/template over jansson values (see template.h). The
 * source is parsed once into a tree of nodes and evaluated per value. */
#include "template.h"
#include "store/util.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

enum arg_kind { ARG_FIELD, ARG_ROOT, ARG_STRING, ARG_INT, ARG_FUNC };

struct arg {
  enum arg_kind kind;
  char **path; /* ARG_FIELD (from dot) and ARG_ROOT (from $): field names */
  size_t npath;
  char *str; /* ARG_STRING: the value; ARG_FUNC: the name */
  long long num;
};

struct cmd {
  struct arg *args;
  size_t nargs;
};

struct pipe {
  struct cmd *cmds;
  size_t ncmds;
};

enum node_kind { N_TEXT, N_ACTION, N_IF, N_RANGE, N_WITH };

struct list {
  struct node *v;
  size_t n;
};

struct node {
  enum node_kind kind;
  char *text;
  struct pipe pipe;
  struct list body, alt; /* N_IF, N_RANGE, N_WITH: then and else */
};

struct lbx_template {
  char *src; /* as given, for messages */
  bool table;
  struct list root;
};

static const char *const funcs[] = {"json",  "index", "len",   "join",
                                    "upper", "lower", "split", NULL};

/* ---- freeing ---- */

static void list_free(struct list *l);

static void
pipe_free(struct pipe *p)
{
  for (size_t i = 0; i < p->ncmds; i++) {
    for (size_t j = 0; j < p->cmds[i].nargs; j++) {
      struct arg *a = &p->cmds[i].args[j];
      for (size_t k = 0; k < a->npath; k++)
        free(a->path[k]);
      free(a->path);
      free(a->str);
    }
    free(p->cmds[i].args);
  }
  free(p->cmds);
}

static void
list_free(struct list *l)
{
  for (size_t i = 0; i < l->n; i++) {
    free(l->v[i].text);
    pipe_free(&l->v[i].pipe);
    list_free(&l->v[i].body);
    list_free(&l->v[i].alt);
  }
  free(l->v);
}

void
lbx_template_free(lbx_template *t)
{
  if (!t)
    return;
  list_free(&t->root);
  free(t->src);
  free(t);
}

/* ---- parsing ---- */

struct parser {
  const char *s; /* the source with \t and \n escapes applied */
  size_t pos;
  const char *orig;
  lbx_err **err;
  bool trim_next; /* the last action ended with -}} */
  int depth;      /* of {{if}}, {{range}}, {{with}}: bounded, the parser recurses */
  /* "{{else if P}}" or "{{else with P}}" just read: the kind and where P is */
  enum node_kind chain_kind;
  size_t chain_b, chain_e;
};

/* The one message of a template's errors, parsing's or evaluating's. */
static int verr(lbx_err **err, const char *src, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
static int
verr(lbx_err **err, const char *src, const char *fmt, va_list ap)
{
  char msg[300];
  vsnprintf(msg, sizeof msg, fmt, ap);
  return lbx_error(err, EINVAL, "format \"%s\": %s", src, msg);
}

static int perr(struct parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int
perr(struct parser *p, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  int r = verr(p->err, p->orig, fmt, ap);
  va_end(ap);
  return r;
}

static struct node *
add_node(struct list *l, enum node_kind kind)
{
  l->v = lbx_xrealloc(l->v, (l->n + 1) * sizeof *l->v);
  struct node *n = &l->v[l->n++];
  memset(n, 0, sizeof *n);
  n->kind = kind;
  return n;
}

static void
skip_space(const char *s, size_t *i, size_t end)
{
  while (*i < end && isspace((unsigned char)s[*i]))
    (*i)++;
}

/* Reads a quoted or raw string literal at s[*i]; a new string, or NULL. */
static char *
read_string(const char *s, size_t *i, size_t end)
{
  char q = s[(*i)++];
  size_t cap = 16, n = 0;
  char *out = lbx_xmalloc(cap);
  while (*i < end && s[*i] != q) {
    char c = s[(*i)++];
    if (c == '\\' && q == '"' && *i < end) {
      char e = s[(*i)++];
      c = e == 'n' ? '\n' : e == 't' ? '\t' : e;
    }
    if (n + 2 > cap)
      out = lbx_xrealloc(out, cap *= 2);
    out[n++] = c;
  }
  if (*i >= end) {
    free(out);
    return NULL;
  }
  (*i)++;
  out[n] = '\0';
  return out;
}

static bool
is_ident(char c)
{
  return isalnum((unsigned char)c) || c == '_';
}

/* One argument of a command. */
static int
parse_arg(struct parser *p, const char *s, size_t *i, size_t end, struct arg *a)
{
  memset(a, 0, sizeof *a);
  char c = s[*i];
  if (c == '"' || c == '`') {
    a->kind = ARG_STRING;
    if (!(a->str = read_string(s, i, end)))
      return perr(p, "a string is not closed");
    return 0;
  }
  if (isdigit((unsigned char)c) ||
      (c == '-' && *i + 1 < end && isdigit((unsigned char)s[*i + 1]))) {
    char *e;
    a->kind = ARG_INT;
    errno = 0;
    a->num = strtoll(s + *i, &e, 10);
    *i = (size_t)(e - s);
    return errno == ERANGE ? perr(p, "a number is out of range") : 0;
  }
  if (c == '$' && *i + 1 < end && is_ident(s[*i + 1]))
    return perr(p, "variables ($name) are not supported; $ alone is the whole value");
  if (c == '.' || c == '$') {
    a->kind = c == '$' ? ARG_ROOT : ARG_FIELD;
    if (c == '$')
      (*i)++;
    /* ".": dot itself; ".A.B": fields */
    while (*i < end && s[*i] == '.') {
      (*i)++;
      size_t b = *i;
      while (*i < end && is_ident(s[*i]))
        (*i)++;
      if (*i == b) {
        if (a->kind == ARG_FIELD && a->npath == 0 &&
            (*i >= end || isspace((unsigned char)s[*i]) || s[*i] == '|'))
          return 0; /* "." */
        return perr(p, "a field name is missing after \".\"");
      }
      a->path = lbx_xrealloc(a->path, (a->npath + 1) * sizeof *a->path);
      a->path[a->npath++] = lbx_xstrndup(s + b, *i - b);
    }
    return 0;
  }
  if (is_ident(c)) {
    size_t b = *i;
    while (*i < end && is_ident(s[*i]))
      (*i)++;
    a->kind = ARG_FUNC;
    a->str = lbx_xstrndup(s + b, *i - b);
    for (const char *const *f = funcs; *f; f++)
      if (strcmp(*f, a->str) == 0)
        return 0;
    return perr(p, "function \"%s\" is not supported (json, index, len, join, upper, lower, split)",
                a->str);
  }
  char what[2] = {c, '\0'};
  return perr(p, "unexpected \"%s\" in an action", what);
}

/* A pipeline: commands separated by '|', each a list of arguments. */
static int
parse_pipe(struct parser *p, const char *s, size_t i, size_t end, struct pipe *out)
{
  memset(out, 0, sizeof *out);
  skip_space(s, &i, end);
  if (i >= end)
    return perr(p, "an action is empty");
  for (;;) {
    out->cmds = lbx_xrealloc(out->cmds, (out->ncmds + 1) * sizeof *out->cmds);
    struct cmd *c = &out->cmds[out->ncmds++];
    memset(c, 0, sizeof *c);
    while (i < end && s[i] != '|') {
      c->args = lbx_xrealloc(c->args, (c->nargs + 1) * sizeof *c->args);
      /* counted first: what a failed parse allocated is freed with it */
      if (parse_arg(p, s, &i, end, &c->args[c->nargs++]) < 0)
        return -1;
      skip_space(s, &i, end);
    }
    if (c->nargs == 0)
      return perr(p, "a pipeline has an empty command");
    if (c->args[0].kind != ARG_FUNC && c->nargs > 1)
      return perr(p, "only a function takes arguments");
    if (i >= end)
      return 0;
    i++; /* '|' */
    skip_space(s, &i, end);
  }
}

static bool
keyword(const char *s, size_t b, size_t e, const char *kw, size_t *after)
{
  size_t n = strlen(kw);
  if (e - b < n || strncmp(s + b, kw, n) != 0 || (e - b > n && is_ident(s[b + n])))
    return false;
  *after = b + n;
  return true;
}

static int parse_block(struct parser *p, enum node_kind kind, struct list *body, struct list *alt);

/* Parses nodes into l until "end", "else", "else-chain" ({{else if}} or
 * {{else with}}: p->chain_* say what follows) (*stop says which) or the
 * end of the source (*stop NULL). */
static int
parse_list(struct parser *p, struct list *l, const char **stop)
{
  const char *s = p->s;
  size_t len = strlen(s);
  *stop = NULL;
  while (p->pos < len) {
    const char *open = strstr(s + p->pos, "{{");
    size_t tb = p->pos, te = open ? (size_t)(open - s) : len;
    bool trim_before =
        open && open[2] == '-' && open + 3 < s + len && isspace((unsigned char)open[3]);
    if (p->trim_next)
      while (tb < te && isspace((unsigned char)s[tb]))
        tb++;
    p->trim_next = false;
    size_t te2 = te;
    if (trim_before)
      while (te2 > tb && isspace((unsigned char)s[te2 - 1]))
        te2--;
    if (te2 > tb)
      add_node(l, N_TEXT)->text = lbx_xstrndup(s + tb, te2 - tb);
    if (!open) {
      p->pos = len;
      break;
    }
    size_t b = te + 2 + (trim_before ? 2 : 0), e = b;
    /* a comment ends at its own "*" "/", whatever it holds */
    if (strncmp(s + b, "/*", 2) == 0) {
      const char *close = strstr(s + b + 2, "*/");
      size_t c = close ? (size_t)(close - s) + 2 : len;
      if (c + 2 <= len && strncmp(s + c, "}}", 2) == 0) {
        p->pos = c + 2;
        continue;
      }
      if (c + 4 <= len && strncmp(s + c, " -}}", 4) == 0) {
        p->pos = c + 4;
        p->trim_next = true;
        continue;
      }
      return perr(p, "a comment is not closed by \"*"
                     "/}}\"");
    }
    /* the action's end: the first "}}" outside a string */
    while (e < len && strncmp(s + e, "}}", 2) != 0) {
      if (s[e] == '"' || s[e] == '`') {
        char *lit = read_string(s, &e, len);
        if (!lit)
          return perr(p, "a string is not closed");
        free(lit);
      } else {
        e++;
      }
    }
    if (e >= len)
      return perr(p, "\"{{\" is not closed by \"}}\"");
    p->pos = e + 2;
    size_t ae = e;
    if (ae >= b + 2 && s[ae - 1] == '-' && isspace((unsigned char)s[ae - 2])) {
      p->trim_next = true;
      ae -= 2;
    }
    skip_space(s, &b, ae);
    while (ae > b && isspace((unsigned char)s[ae - 1]))
      ae--;
    size_t after;
    if (keyword(s, b, ae, "end", &after) && after == ae) {
      *stop = "end";
      return 0;
    }
    if (keyword(s, b, ae, "else", &after)) {
      *stop = "else";
      if (after == ae)
        return 0;
      skip_space(s, &after, ae);
      if (keyword(s, after, ae, "if", &p->chain_b))
        p->chain_kind = N_IF;
      else if (keyword(s, after, ae, "with", &p->chain_b))
        p->chain_kind = N_WITH;
      else
        return perr(p, "{{else}} is followed by something other than \"if\" or \"with\"");
      p->chain_e = ae;
      *stop = "else-chain";
      return 0;
    }
    enum node_kind kind = N_ACTION;
    if (keyword(s, b, ae, "if", &after))
      kind = N_IF;
    else if (keyword(s, b, ae, "range", &after))
      kind = N_RANGE;
    else if (keyword(s, b, ae, "with", &after))
      kind = N_WITH;
    else
      after = b;
    struct node *n = add_node(l, kind);
    if (parse_pipe(p, s, after, ae, &n->pipe) < 0)
      return -1;
    if (kind == N_ACTION)
      continue;
    struct list body = {0}, alt = {0};
    int r = parse_block(p, kind, &body, &alt);
    l->v[l->n - 1].body = body;
    l->v[l->n - 1].alt = alt;
    if (r < 0)
      return -1;
  }
  return 0;
}

/* The lists of an {{if}}, {{range}} or {{with}}: its body, and what follows
 * {{else}}, through its {{end}}. As in Go, "{{else if P}}" in an {{if}} (and
 * "{{else with P}}" in a {{with}}) is an {{if P}} alone in the else list that
 * ends at the same {{end}}. */
static int
parse_block(struct parser *p, enum node_kind kind, struct list *body, struct list *alt)
{
  const char *why;
  if (++p->depth > 100)
    return perr(p, "{{if}}, {{range}} and {{with}} nest more than 100 deep");
  int r = parse_list(p, body, &why);
  if (r == 0 && why && strcmp(why, "else") == 0) {
    r = parse_list(p, alt, &why);
    if (r == 0 && why && strncmp(why, "else", 4) == 0)
      r = perr(p, "a second {{else}}");
  } else if (r == 0 && why && strcmp(why, "else-chain") == 0 && p->chain_kind != kind) {
    r = perr(p, p->chain_kind == N_IF ? "{{else if}} outside an {{if}}"
                                      : "{{else with}} outside a {{with}}");
  } else if (r == 0 && why && strcmp(why, "else-chain") == 0) {
    struct node *n = add_node(alt, kind);
    r = parse_pipe(p, p->s, p->chain_b, p->chain_e, &n->pipe);
    if (r == 0) {
      struct list b2 = {0}, a2 = {0};
      r = parse_block(p, kind, &b2, &a2);
      alt->v[alt->n - 1].body = b2;
      alt->v[alt->n - 1].alt = a2;
      why = "end"; /* or r < 0 */
    }
  }
  p->depth--;
  if (r < 0)
    return -1;
  if (!why)
    return perr(p, "{{if}}, {{range}} or {{with}} has no {{end}}");
  return 0;
}

int
lbx_template_parse(const char *src, lbx_template **out, lbx_err **err)
{
  _cleanup_(lbx_template_freep) lbx_template *t = lbx_xcalloc(1, sizeof *t);
  t->src = lbx_xstrdup(src);
  const char *s = src;
  if (strncmp(s, "table", 5) == 0 && (s[5] == '\0' || isspace((unsigned char)s[5]))) {
    t->table = true;
    s += 5;
    while (isspace((unsigned char)*s))
      s++;
  }
  /* Podman's escapes, outside actions too: a shell passes them as typed */
  size_t n = strlen(s);
  _cleanup_free_ char *text = lbx_xmalloc(n + 1);
  size_t k = 0;
  int depth = 0; /* inside {{ }}: "table"'s spaces stay spaces there */
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '{' && s[i + 1] == '{')
      depth++;
    else if (s[i] == '}' && s[i + 1] == '}' && depth > 0)
      depth--;
    if (s[i] == '\\' && (s[i + 1] == 't' || s[i + 1] == 'n')) {
      text[k++] = s[i + 1] == 't' ? '\t' : '\n';
      i++;
    } else if (t->table && depth == 0 && s[i] == ' ') {
      /* Podman: "table {{.ID}} {{.Names}}" has columns, as with \t */
      text[k++] = '\t';
    } else {
      text[k++] = s[i];
    }
  }
  text[k] = '\0';
  struct parser p = {.s = text, .orig = src, .err = err};
  const char *stop;
  if (parse_list(&p, &t->root, &stop) < 0)
    return -1;
  if (stop)
    return lbx_error(err, EINVAL, "format \"%s\": {{%s}} without {{if}}, {{range}} or {{with}}",
                     src,
                     strcmp(stop, "else-chain") != 0 ? stop
                     : p.chain_kind == N_IF          ? "else if"
                                                     : "else with");
  *out = steal_pointer(&t);
  return 0;
}

bool
lbx_template_is_table(const lbx_template *t)
{
  return t->table;
}

/* ---- evaluating ---- */

/* Strings are made with the _nocheck calls: a template's bytes need not be
 * UTF-8, and jansson refuses what is not. */
struct val {
  json_t *j;    /* owned; NULL with missing */
  bool missing; /* a field the object does not have: "<no value>" */
};

struct out {
  char *buf;
  size_t len, cap;
};

static void
put(struct out *o, const char *s, size_t n)
{
  if (o->len + n + 1 > o->cap) {
    o->cap = (o->len + n + 1) * 2;
    o->buf = lbx_xrealloc(o->buf, o->cap);
  }
  memcpy(o->buf + o->len, s, n);
  o->len += n;
  o->buf[o->len] = '\0';
}

static void
puts_(struct out *o, const char *s)
{
  put(o, s, strlen(s));
}

static const char *
type_name(const json_t *j)
{
  switch (json_typeof(j)) {
  case JSON_OBJECT:
    return "object";
  case JSON_ARRAY:
    return "array";
  case JSON_STRING:
    return "string";
  case JSON_INTEGER:
  case JSON_REAL:
    return "number";
  case JSON_TRUE:
  case JSON_FALSE:
    return "bool";
  default:
    return "null";
  }
}

static int
cmp_keys(const void *a, const void *b)
{
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* An object's keys, sorted as Go prints a map's. */
static const char **
sorted_keys(json_t *obj, size_t *n)
{
  *n = json_object_size(obj);
  const char **keys = lbx_xcalloc(*n + 1, sizeof *keys);
  size_t k = 0;
  const char *key;
  json_t *v;
  json_object_foreach(obj, key, v)
  {
    (void)v;
    keys[k++] = key;
  }
  qsort(keys, k, sizeof *keys, cmp_keys);
  return keys;
}

/* Go's %v of a value. */
static void
format(struct out *o, json_t *j)
{
  char num[64];
  if (!j) {
    puts_(o, "<nil>");
    return;
  }
  switch (json_typeof(j)) {
  case JSON_STRING:
    put(o, json_string_value(j), json_string_length(j));
    break;
  case JSON_INTEGER:
    snprintf(num, sizeof num, "%lld", (long long)json_integer_value(j));
    puts_(o, num);
    break;
  case JSON_REAL:
    /* the shortest digits that read back the same, as Go's %v */
    for (int prec = 1; prec <= 17; prec++) {
      snprintf(num, sizeof num, "%.*g", prec, json_real_value(j));
      if (strtod(num, NULL) == json_real_value(j))
        break;
    }
    puts_(o, num);
    break;
  case JSON_TRUE:
    puts_(o, "true");
    break;
  case JSON_FALSE:
    puts_(o, "false");
    break;
  case JSON_NULL:
    puts_(o, "<nil>");
    break;
  case JSON_ARRAY: {
    puts_(o, "[");
    for (size_t i = 0; i < json_array_size(j); i++) {
      if (i)
        puts_(o, " ");
      format(o, json_array_get(j, i));
    }
    puts_(o, "]");
    break;
  }
  case JSON_OBJECT: {
    size_t n;
    _cleanup_free_ const char **keys = sorted_keys(j, &n);
    puts_(o, "map[");
    for (size_t i = 0; i < n; i++) {
      if (i)
        puts_(o, " ");
      puts_(o, keys[i]);
      puts_(o, ":");
      format(o, json_object_get(j, keys[i]));
    }
    puts_(o, "]");
    break;
  }
  }
}

static char *
format_str(json_t *j)
{
  struct out o = {0};
  format(&o, j);
  return o.buf ? o.buf : lbx_xstrdup("");
}

static bool
truth(const struct val *v)
{
  if (v->missing || !v->j)
    return false;
  switch (json_typeof(v->j)) {
  case JSON_STRING:
    return json_string_length(v->j) > 0;
  case JSON_INTEGER:
    return json_integer_value(v->j) != 0;
  case JSON_REAL:
    return json_real_value(v->j) != 0;
  case JSON_TRUE:
    return true;
  case JSON_ARRAY:
    return json_array_size(v->j) > 0;
  case JSON_OBJECT:
    return json_object_size(v->j) > 0;
  default:
    return false;
  }
}

struct ctx {
  const lbx_template *t;
  json_t *root;
  lbx_err **err;
};

static int eerr(struct ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int
eerr(struct ctx *c, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  int r = verr(c->err, c->t->src, fmt, ap);
  va_end(ap);
  return r;
}

static int
eval_arg(struct ctx *c, const struct arg *a, json_t *dot, struct val *out)
{
  out->missing = false;
  switch (a->kind) {
  case ARG_STRING:
    out->j = json_string_nocheck(a->str);
    return 0;
  case ARG_INT:
    out->j = json_integer(a->num);
    return 0;
  case ARG_FUNC:
    return eerr(c, "a function cannot be an argument: %s", a->str);
  case ARG_FIELD:
  case ARG_ROOT:
    break;
  }
  json_t *j = a->kind == ARG_ROOT ? c->root : dot;
  for (size_t i = 0; i < a->npath; i++) {
    if (!json_is_object(j)) {
      if (json_is_null(j)) {
        out->j = NULL; /* a field of nothing: nothing, as a nil map gives */
        out->missing = true;
        return 0;
      }
      return eerr(c, "can't evaluate field %s in a %s", a->path[i], type_name(j));
    }
    json_t *next = json_object_get(j, a->path[i]);
    /* Podman's Go field is ID where its JSON says Id: both work there */
    if (!next && strcmp(a->path[i], "ID") == 0)
      next = json_object_get(j, "Id");
    j = next;
    if (!j) {
      out->j = NULL;
      out->missing = true;
      return 0;
    }
  }
  out->j = json_incref(j);
  return 0;
}

static void
val_clear(struct val *v)
{
  json_decref(v->j);
  v->j = NULL;
}

static void
vals_clear(struct val *v, size_t n)
{
  for (size_t i = 0; i < n; i++)
    val_clear(&v[i]);
}

static int
call(struct ctx *c, const char *f, struct val *args, size_t n, struct val *out)
{
  out->missing = false;
  out->j = NULL;
  if (strcmp(f, "json") == 0) {
    if (n != 1)
      return eerr(c, "json takes one argument");
    json_t *j = args[0].j ? args[0].j : json_null();
    char *text = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!args[0].j)
      json_decref(j);
    out->j = json_string_nocheck(text ? text : "null");
    free(text);
    return 0;
  }
  if (strcmp(f, "index") == 0) {
    if (n < 2)
      return eerr(c, "index takes a value and one key or more");
    json_t *j = args[0].j;
    for (size_t i = 1; i < n && j; i++) {
      json_t *k = args[i].j;
      if (json_is_object(j) && json_is_string(k)) {
        j = json_object_get(j, json_string_value(k));
      } else if (json_is_array(j) && json_is_integer(k)) {
        json_int_t x = json_integer_value(k);
        if (x < 0 || (size_t)x >= json_array_size(j))
          return eerr(c, "index out of range");
        j = json_array_get(j, (size_t)x);
      } else if (json_is_null(j)) {
        j = NULL;
      } else {
        return eerr(c, "can't index a %s with a %s", type_name(j),
                    k ? type_name(k) : "missing value");
      }
    }
    /* a key a map lacks: the zero value of Podman's map[string]string */
    out->j = j ? json_incref(j) : json_string_nocheck("");
    return 0;
  }
  if (strcmp(f, "len") == 0) {
    if (n != 1)
      return eerr(c, "len takes one value");
    json_t *j = args[0].j;
    if (!j || json_is_null(j)) {
      out->j = json_integer(0); /* a nil slice or map */
      return 0;
    }
    size_t len = json_is_string(j)   ? json_string_length(j)
                 : json_is_array(j)  ? json_array_size(j)
                 : json_is_object(j) ? json_object_size(j)
                                     : (size_t)-1;
    if (len == (size_t)-1)
      return eerr(c, "len of a %s", type_name(j));
    out->j = json_integer((json_int_t)len);
    return 0;
  }
  if (strcmp(f, "join") == 0) {
    /* join LIST SEP, as Podman's; LIST may come last, from a pipeline */
    if (n != 2)
      return eerr(c, "join takes a list and a separator");
    json_t *list = json_is_array(args[0].j) ? args[0].j : args[1].j;
    json_t *sep = json_is_array(args[0].j) ? args[1].j : args[0].j;
    if (!json_is_array(list) || !json_is_string(sep))
      return eerr(c, "join takes a list and a separator");
    struct out o = {0};
    for (size_t i = 0; i < json_array_size(list); i++) {
      if (i)
        puts_(&o, json_string_value(sep));
      format(&o, json_array_get(list, i));
    }
    out->j = json_string_nocheck(o.buf ? o.buf : "");
    free(o.buf);
    return 0;
  }
  if (strcmp(f, "upper") == 0 || strcmp(f, "lower") == 0) {
    if (n != 1)
      return eerr(c, "%s takes one value", f);
    _cleanup_free_ char *s = args[0].j ? format_str(args[0].j) : lbx_xstrdup("<no value>");
    for (char *p = s; *p; p++)
      *p = (char)(f[0] == 'u' ? toupper((unsigned char)*p) : tolower((unsigned char)*p));
    out->j = json_string_nocheck(s);
    return 0;
  }
  /* split STRING SEP */
  if (n != 2 || !json_is_string(args[0].j) || !json_is_string(args[1].j) ||
      json_string_length(args[1].j) == 0)
    return eerr(c, "split takes a string and a separator");
  const char *s = json_string_value(args[0].j), *sep = json_string_value(args[1].j);
  size_t sl = strlen(sep);
  json_t *arr = json_array();
  for (;;) {
    const char *hit = strstr(s, sep);
    json_array_append_new(arr, hit ? json_stringn_nocheck(s, (size_t)(hit - s))
                                   : json_string_nocheck(s));
    if (!hit)
      break;
    s = hit + sl;
  }
  out->j = arr;
  return 0;
}

static int
eval_pipe(struct ctx *c, const struct pipe *p, json_t *dot, struct val *out)
{
  struct val prev = {0};
  bool have_prev = false;
  for (size_t i = 0; i < p->ncmds; i++) {
    const struct cmd *cmd = &p->cmds[i];
    if (cmd->args[0].kind != ARG_FUNC) {
      if (have_prev) {
        val_clear(&prev);
        return eerr(c, "only a function can follow \"|\"");
      }
      if (eval_arg(c, &cmd->args[0], dot, &prev) < 0)
        return -1;
      have_prev = true;
      continue;
    }
    size_t n = cmd->nargs - 1 + (have_prev ? 1 : 0);
    struct val *args = lbx_xcalloc(n + 1, sizeof *args);
    int r = 0;
    for (size_t k = 1; k < cmd->nargs && r == 0; k++)
      r = eval_arg(c, &cmd->args[k], dot, &args[k - 1]);
    if (have_prev)
      args[n - 1] = prev; /* moved */
    have_prev = false;
    struct val res = {0};
    if (r == 0)
      r = call(c, cmd->args[0].str, args, n, &res);
    vals_clear(args, n);
    free(args);
    if (r < 0)
      return -1;
    prev = res;
    have_prev = true;
  }
  *out = prev;
  return 0;
}

static int run_list(struct ctx *c, const struct list *l, json_t *dot, struct out *o);

static int
run_node(struct ctx *c, const struct node *n, json_t *dot, struct out *o)
{
  if (n->kind == N_TEXT) {
    puts_(o, n->text);
    return 0;
  }
  struct val v = {0};
  if (eval_pipe(c, &n->pipe, dot, &v) < 0)
    return -1;
  int r = 0;
  switch (n->kind) {
  case N_ACTION:
    if (v.missing)
      puts_(o, "<no value>");
    else
      format(o, v.j);
    break;
  case N_IF:
    r = run_list(c, truth(&v) ? &n->body : &n->alt, dot, o);
    break;
  case N_WITH:
    r = truth(&v) ? run_list(c, &n->body, v.j, o) : run_list(c, &n->alt, dot, o);
    break;
  case N_RANGE:
    if (v.missing || !v.j || json_is_null(v.j) ||
        (json_is_array(v.j) && json_array_size(v.j) == 0) ||
        (json_is_object(v.j) && json_object_size(v.j) == 0)) {
      r = run_list(c, &n->alt, dot, o);
    } else if (json_is_array(v.j)) {
      for (size_t i = 0; i < json_array_size(v.j) && r == 0; i++)
        r = run_list(c, &n->body, json_array_get(v.j, i), o);
    } else if (json_is_object(v.j)) {
      size_t k;
      _cleanup_free_ const char **keys = sorted_keys(v.j, &k);
      for (size_t i = 0; i < k && r == 0; i++)
        r = run_list(c, &n->body, json_object_get(v.j, keys[i]), o);
    } else {
      r = eerr(c, "range can't iterate over a %s", type_name(v.j));
    }
    break;
  case N_TEXT:
    break;
  }
  val_clear(&v);
  return r;
}

static int
run_list(struct ctx *c, const struct list *l, json_t *dot, struct out *o)
{
  for (size_t i = 0; i < l->n; i++)
    if (run_node(c, &l->v[i], dot, o) < 0)
      return -1;
  return 0;
}

char *
lbx_template_render(const lbx_template *t, json_t *dot, lbx_err **err)
{
  struct ctx c = {t, dot, err};
  struct out o = {0};
  if (run_list(&c, &t->root, dot, &o) < 0) {
    free(o.buf);
    return NULL;
  }
  return o.buf ? o.buf : lbx_xstrdup("");
}

/* ---- tables ---- */

/* "CreatedAt" -> "CREATED AT", as Podman's headers read */
static void
header_name(struct out *o, const char *field)
{
  for (const char *p = field; *p; p++) {
    if (p != field && isupper((unsigned char)*p) && islower((unsigned char)p[-1]))
      puts_(o, " ");
    char ch = (char)toupper((unsigned char)*p);
    put(o, &ch, 1);
  }
}

char *
lbx_template_header(const lbx_template *t, const char *const *renames)
{
  struct out o = {0};
  for (size_t i = 0; i < t->root.n; i++) {
    const struct node *n = &t->root.v[i];
    if (n->kind == N_TEXT) {
      puts_(&o, n->text);
      continue;
    }
    if (n->kind != N_ACTION)
      continue;
    /* the last field named in the pipeline's first command */
    const struct cmd *cmd = &n->pipe.cmds[0];
    const char *name = NULL;
    for (size_t k = 0; k < cmd->nargs; k++)
      if (cmd->args[k].npath)
        name = cmd->args[k].path[cmd->args[k].npath - 1];
    const char *renamed = NULL;
    for (const char *const *r = renames; name && r && *r; r += 2)
      if (strcmp(*r, name) == 0)
        renamed = r[1];
    if (renamed)
      puts_(&o, renamed);
    else if (name)
      header_name(&o, name);
    else if (cmd->args[0].kind == ARG_FUNC)
      header_name(&o, cmd->args[0].str);
  }
  return o.buf ? o.buf : lbx_xstrdup("");
}

void
lbx_table_print(char **lines)
{
  /* Podman's tabwriter: cells at least 12 wide, 2 spaces of padding */
  enum { MIN_WIDTH = 12, PADDING = 2 };
  size_t *width = NULL, ncol = 0;
  for (char **l = lines; *l; l++) {
    size_t col = 0;
    for (const char *p = *l;; col++) {
      const char *tab = strchr(p, '\t');
      if (!tab)
        break;
      if (col >= ncol) {
        width = lbx_xrealloc(width, (col + 1) * sizeof *width);
        width[ncol++] = MIN_WIDTH;
      }
      size_t w = (size_t)(tab - p) + PADDING;
      if (w > width[col])
        width[col] = w;
      p = tab + 1;
    }
  }
  for (char **l = lines; *l; l++) {
    size_t col = 0;
    const char *p = *l;
    for (const char *tab; (tab = strchr(p, '\t')); p = tab + 1, col++)
      printf("%.*s%*s", (int)(tab - p), p, (int)(width[col] - (size_t)(tab - p)), "");
    printf("%s\n", p);
  }
  free(width);
}
