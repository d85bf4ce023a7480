/* Unit tests of index/tree.c: layers described in a small text language,
 * merged, emitted and compared as a sorted text dump. */
#include "../../index/tree.h"
#include "../../store/util.h"
#include "tap.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the dump: one line per name, "path type mode nlink [->link]" ---- */

struct dump {
  lbx_node *nodes; /* by ino - 1; link copied */
  size_t nnodes;
  int inos_in_order; /* every ino was the next number */
  struct {
    uint64_t parent, ino;
    char *name;
  } * dents;
  size_t ndents;
};

static int
dump_node(void *ctx, const lbx_node *n)
{
  struct dump *d = ctx;
  if (n->ino != d->nnodes + 1)
    d->inos_in_order = 0;
  d->nodes = lbx_xrealloc(d->nodes, (d->nnodes + 1) * sizeof *d->nodes);
  d->nodes[d->nnodes] = *n;
  d->nodes[d->nnodes].link = n->link ? lbx_xstrdup(n->link) : NULL;
  d->nodes[d->nnodes].digest = NULL;
  d->nodes[d->nnodes].xattrs = NULL;
  d->nnodes++;
  return 0;
}

static int
dump_dirent(void *ctx, uint64_t parent, const char *name, uint64_t ino)
{
  struct dump *d = ctx;
  d->dents = lbx_xrealloc(d->dents, (d->ndents + 1) * sizeof *d->dents);
  d->dents[d->ndents].parent = parent;
  d->dents[d->ndents].ino = ino;
  d->dents[d->ndents].name = lbx_xstrdup(name);
  d->ndents++;
  return 0;
}

static void
dump_free(struct dump *d)
{
  for (size_t i = 0; i < d->nnodes; i++)
    free((char *)d->nodes[i].link);
  for (size_t i = 0; i < d->ndents; i++)
    free(d->dents[i].name);
  free(d->nodes);
  free(d->dents);
  memset(d, 0, sizeof *d);
}

static int
dump_collect(lbx_tree *t, struct dump *d)
{
  memset(d, 0, sizeof *d);
  d->inos_in_order = 1;
  return lbx_tree_emit(t, dump_node, dump_dirent, d);
}

static char
type_char(uint32_t type)
{
  switch (type) {
  case LBX_T_REG:
    return 'f';
  case LBX_T_DIR:
    return 'd';
  case LBX_T_SYMLINK:
    return 'l';
  case LBX_T_CHR:
    return 'c';
  case LBX_T_BLK:
    return 'b';
  case LBX_T_FIFO:
    return 'p';
  default:
    return '?';
  }
}

static int
line_cmp(const void *a, const void *b)
{
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The path of every ino ("" for the root); a hardlinked file gets one of its names. */
static char **
dump_paths(const struct dump *d)
{
  char **paths = lbx_xcalloc(d->nnodes + 1, sizeof *paths);
  paths[1] = lbx_xstrdup("");
  int progress = 1;
  while (progress) {
    progress = 0;
    for (size_t i = 0; i < d->ndents; i++) {
      uint64_t p = d->dents[i].parent, c = d->dents[i].ino;
      if (p <= d->nnodes && c <= d->nnodes && paths[p] && !paths[c]) {
        paths[c] = lbx_xasprintf("%s/%s", paths[p], d->dents[i].name);
        progress = 1;
      }
    }
  }
  return paths;
}

static char *
dump_text(const struct dump *d)
{
  char **paths = dump_paths(d);
  size_t n = d->ndents + 1;
  char **lines = lbx_xcalloc(n, sizeof *lines);
  for (size_t i = 0; i < n; i++) {
    uint64_t ino = i == 0 ? 1 : d->dents[i - 1].ino;
    const char *path = "/";
    char *own = NULL;
    if (i > 0) {
      uint64_t p = d->dents[i - 1].parent;
      own =
          lbx_xasprintf("%s/%s", p <= d->nnodes && paths[p] ? paths[p] : "?", d->dents[i - 1].name);
      path = own;
    }
    const lbx_node *nd = ino >= 1 && ino <= d->nnodes ? &d->nodes[ino - 1] : NULL;
    if (!nd) {
      lines[i] = lbx_xasprintf("%s ? bad ino %llu", path, (unsigned long long)ino);
    } else if (nd->type == LBX_T_SYMLINK) {
      lines[i] = lbx_xasprintf("%s %c %o %u ->%s", path, type_char(nd->type), nd->mode, nd->nlink,
                               nd->link ? nd->link : "(null)");
    } else {
      lines[i] = lbx_xasprintf("%s %c %o %u", path, type_char(nd->type), nd->mode, nd->nlink);
    }
    free(own);
  }
  qsort(lines, n, sizeof *lines, line_cmp);
  size_t len = 1;
  for (size_t i = 0; i < n; i++)
    len += strlen(lines[i]) + 1;
  char *out = lbx_xcalloc(1, len);
  for (size_t i = 0; i < n; i++) {
    if (i)
      strcat(out, "\n");
    strcat(out, lines[i]);
    free(lines[i]);
  }
  free(lines);
  for (size_t i = 0; i <= d->nnodes; i++)
    free(paths[i]);
  free(paths);
  return out;
}

/* The ino of a path ("/a/b"), 0 if absent. */
static uint64_t
dump_ino(const struct dump *d, const char *path)
{
  char **paths = dump_paths(d);
  uint64_t found = 0;
  if (strcmp(path, "/") == 0)
    found = 1;
  for (size_t i = 0; !found && i < d->ndents; i++) {
    uint64_t p = d->dents[i].parent;
    if (p > d->nnodes || !paths[p])
      continue;
    char *full = lbx_xasprintf("%s/%s", paths[p], d->dents[i].name);
    if (strcmp(full, path) == 0)
      found = d->dents[i].ino;
    free(full);
  }
  for (size_t i = 0; i <= d->nnodes; i++)
    free(paths[i]);
  free(paths);
  return found;
}

/* ---- the layer language ----
 * Tokens separated by spaces; "|" starts the next layer. An entry is
 * T:PATH[@MODE][=LINK] with T one of f d l h c b p (file, dir, symlink,
 * hardlink, char dev, block dev, fifo). */

static int
apply_spec(lbx_tree *t, const char *spec, lbx_err **err)
{
  char *copy = lbx_xstrdup(spec), *save = NULL;
  int r = 0;
  lbx_tree_begin_layer(t);
  for (char *tok = strtok_r(copy, " ", &save); tok && r == 0; tok = strtok_r(NULL, " ", &save)) {
    if (strcmp(tok, "|") == 0) {
      lbx_tree_begin_layer(t);
      continue;
    }
    lbx_entry e = {0};
    switch (tok[0]) {
    case 'f':
      e.type = LBX_T_REG, e.mode = 0644;
      break;
    case 'd':
      e.type = LBX_T_DIR, e.mode = 0755;
      break;
    case 'l':
      e.type = LBX_T_SYMLINK, e.mode = 0777;
      break;
    case 'h':
      e.type = LBX_T_HARDLINK, e.mode = 0644;
      break;
    case 'c':
      e.type = LBX_T_CHR, e.mode = 0666;
      break;
    case 'b':
      e.type = LBX_T_BLK, e.mode = 0660;
      break;
    case 'p':
      e.type = LBX_T_FIFO, e.mode = 0600;
      break;
    default:
      abort();
    }
    char *path = tok + 2;
    char *eq = strchr(path, '=');
    if (eq) {
      *eq = '\0';
      e.link = eq + 1;
    }
    char *at = strchr(path, '@');
    if (at) {
      *at = '\0';
      e.mode = (uint32_t)strtoul(at + 1, NULL, 8);
    }
    e.path = path;
    r = lbx_tree_apply(t, &e, err);
  }
  free(copy);
  return r;
}

/* The dump of a spec, or "ERR: message". */
static char *
run_spec(const char *spec)
{
  _cleanup_(lbx_tree_freep) lbx_tree *t = lbx_tree_new();
  _cleanup_error_ lbx_err *err = NULL;
  if (apply_spec(t, spec, &err) < 0)
    return lbx_xasprintf("ERR: %s", err ? err->msg : "(no message)");
  struct dump d;
  if (dump_collect(t, &d) != 0)
    return lbx_xstrdup("emit failed");
  char *out = dump_text(&d);
  if (!d.inos_in_order || d.nnodes != lbx_tree_count(t)) {
    free(out);
    out = lbx_xasprintf("inos out of order or count %zu != %llu", d.nnodes,
                        (unsigned long long)lbx_tree_count(t));
  }
  dump_free(&d);
  return out;
}

static const struct {
  const char *name, *spec, *want;
} cases[] = {
    {"file deleted by a later layer", "d:etc f:etc/a f:etc/b | f:etc/.wh.a",
     "/ d 755 3\n/etc d 755 2\n/etc/b f 644 1"},
    {"dir deleted with its subtree", "d:a d:a/b f:a/b/c f:x | f:.wh.a", "/ d 755 2\n/x f 644 1"},
    {"dir replaced by a file, then by a dir again", "d:a f:a/x d:a/y | f:a | d:a",
     "/ d 755 3\n/a d 755 2"},
    {"file over a dir in the same layer", "d:a f:a/x f:a", "/ d 755 2\n/a f 644 1"},
    {"dir over a file", "f:a | d:a@700", "/ d 755 3\n/a d 700 2"},
    {"dir over a dir keeps children", "d:a f:a/x | d:a@700", "/ d 755 3\n/a d 700 2\n/a/x f 644 1"},
    {"file over a file", "f:a | f:a@600", "/ d 755 2\n/a f 600 1"},
    {"opaque dir", "d:a f:a/old d:a/od f:a/od/z | f:a/new1 f:a/.wh..wh..opq f:a/new2",
     "/ d 755 3\n/a d 755 2\n/a/new1 f 644 1\n/a/new2 f 644 1"},
    {"opaque dir keeps a subdir this layer restated",
     "d:a d:a/s f:a/s/old | d:a/s@700 f:a/s/new f:a/.wh..wh..opq",
     "/ d 755 3\n/a d 755 3\n/a/s d 700 2\n/a/s/new f 644 1"},
    {"opaque dir keeps a lower subdir this layer filled, as implicit",
     "d:a d:a/s@700 f:a/s/old | f:a/s/new f:a/.wh..wh..opq",
     "/ d 755 3\n/a d 755 3\n/a/s d 755 2\n/a/s/new f 644 1"},
    {"opaque marker of a missing dir makes it", "f:x | f:a/.wh..wh..opq",
     "/ d 755 3\n/a d 755 2\n/x f 644 1"},
    {"opaque root", "f:x d:y | f:.wh..wh..opq f:z", "/ d 755 2\n/z f 644 1"},
    {"re-created in a later layer", "f:a@600 | f:.wh.a | f:a@640", "/ d 755 2\n/a f 640 1"},
    {"whiteout then re-create in one layer", "f:a@600 | f:.wh.a f:a@640", "/ d 755 2\n/a f 640 1"},
    {"re-create then whiteout in one layer", "f:a@600 | f:a@640 f:.wh.a", "/ d 755 2\n/a f 640 1"},
    {"whiteout of a dir this layer restated", "d:a f:a/x | d:a@700 f:a/y f:.wh.a",
     "/ d 755 3\n/a d 700 2\n/a/y f 644 1"},
    {"whiteout of a dir before this layer re-made it", "d:a f:a/x | f:.wh.a d:a@700 f:a/y",
     "/ d 755 3\n/a d 700 2\n/a/y f 644 1"},
    {"whiteout of a lower dir this layer only filled", "d:a@700 f:a/x | f:a/y f:.wh.a",
     "/ d 755 3\n/a d 755 2\n/a/y f 644 1"},
    {"whiteout of a deep lower dir keeps this layer's files",
     "d:a d:a/b d:a/b/c f:a/b/c/f d:a/b/k f:a/b/k/g | f:a/b/c/new f:.wh.a",
     "/ d 755 3\n/a d 755 3\n/a/b d 755 3\n/a/b/c d 755 2\n/a/b/c/new f 644 1"},
    {"whiteout of a name this layer added", "f:x | f:n f:.wh.n",
     "/ d 755 2\n/n f 644 1\n/x f 644 1"},
    {"whiteout of a missing name", "f:a | f:.wh.zz f:x/.wh.y", "/ d 755 3\n/a f 644 1\n/x d 755 2"},
    {"hardlink within a layer", "f:a h:b=a", "/ d 755 2\n/a f 644 2\n/b f 644 2"},
    {"hardlink across layers", "d:d f:d/a | h:b=d/a",
     "/ d 755 3\n/b f 644 2\n/d d 755 2\n/d/a f 644 2"},
    {"hardlink target deleted later", "f:a h:b=a | f:.wh.a", "/ d 755 2\n/b f 644 1"},
    {"hardlink target replaced later", "f:a h:b=a | f:a@600", "/ d 755 2\n/a f 600 1\n/b f 644 1"},
    {"hardlink over its own other name", "f:a h:b=a h:b=a h:a=a",
     "/ d 755 2\n/a f 644 2\n/b f 644 2"},
    {"hardlink replacing the dir holding its target", "d:d f:d/x h:d=d/x", "/ d 755 2\n/d f 644 1"},
    {"hardlink of a symlink", "l:s=/etc h:t=s", "/ d 755 2\n/s l 777 2 ->/etc\n/t l 777 2 ->/etc"},
    {"hardlink of a whiteout-deleted name", "f:a | f:.wh.a h:b=a",
     "ERR: \"b\": hardlink target \"a\" does not exist"},
    {"hardlink to a missing name", "f:a h:b=nope",
     "ERR: \"b\": hardlink target \"nope\" does not exist"},
    {"hardlink to a dir", "d:d h:x/b=d", "ERR: \"x/b\": hardlink target \"d\" is a directory"},
    {"hardlink to the root", "h:b=", "ERR: \"b\": hardlink target \"\" is a directory"},
    {"hardlink through a symlink", "d:etc f:etc/passwd l:e=etc h:b=e/passwd",
     "ERR: \"b\": hardlink target \"e/passwd\" does not exist"},
    {"file under a symlink", "l:a=/etc f:a/passwd",
     "ERR: \"a/passwd\": parent \"a\" is not a directory"},
    {"file under a lower symlink, deeper", "d:x l:x/y=/ | f:x/y/z/w",
     "ERR: \"x/y/z/w\": parent \"x/y\" is not a directory"},
    {"whiteout under a symlink", "l:a=/etc | f:a/.wh.passwd",
     "ERR: \"a/.wh.passwd\": parent \"a\" is not a directory"},
    {"opaque marker under a file", "f:a | f:a/.wh..wh..opq",
     "ERR: \"a/.wh..wh..opq\": parent \"a\" is not a directory"},
    {"whiteout of ..", "f:a | f:.wh..", "ERR: \".wh..\": whiteout of an invalid name"},
    {"whiteout of ...", "f:a | f:d/.wh...", "ERR: \"d/.wh...\": whiteout of an invalid name"},
    {"whiteout of nothing", "f:a | f:.wh.", "ERR: \".wh.\": whiteout of an invalid name"},
    {"dot-dot component", "f:a/../b", "ERR: \"a/../b\": invalid path"},
    {"empty component", "f:a//b", "ERR: \"a//b\": invalid path"},
    {"absolute path", "f:/b", "ERR: \"/b\": invalid path"},
    {"implicit parents", "f:a/b/c", "/ d 755 3\n/a d 755 3\n/a/b d 755 2\n/a/b/c f 644 1"},
    {"implicit parent restated later", "f:a/b d:a@700", "/ d 755 3\n/a d 700 2\n/a/b f 644 1"},
    {"root metadata", "f:x d:@700", "/ d 700 2\n/x f 644 1"},
    {"root as a file", "f:", "ERR: \"\": the root must be a directory"},
    {"AUFS metadata ignored",
     "f:.wh..wh.plnk d:.wh..wh.orph f:.wh..wh.plnk/1234 f:d/.wh..wh.aufs f:a",
     "/ d 755 2\n/a f 644 1"},
    {"special files", "c:dev/null p:dev/fifo b:dev/sda l:dev/fd=/proc/self/fd",
     "/ d 755 3\n/dev d 755 2\n/dev/fd l 777 1 ->/proc/self/fd\n/dev/fifo p 600 1\n/dev/null c 666 "
     "1\n/dev/sda b 660 1"},
    {"nlink of dirs counts subdirs", "d:a d:a/b d:a/c f:a/f d:d",
     "/ d 755 4\n/a d 755 4\n/a/b d 755 2\n/a/c d 755 2\n/a/f f 644 1\n/d d 755 2"},
};

static void
test_cases(void)
{
  for (size_t i = 0; i < LBX_ARRAY_SIZE(cases); i++) {
    char *got = run_spec(cases[i].spec);
    tap_is_str(got, cases[i].want, "%s", cases[i].name);
    free(got);
  }
}

static void
test_hardlink_ino(void)
{
  _cleanup_(lbx_tree_freep) lbx_tree *t = lbx_tree_new();
  _cleanup_error_ lbx_err *err = NULL;
  tap_is_int(apply_spec(t, "d:d f:d/a h:b=d/a | h:d/c=b", &err), 0, "hardlinks apply");
  struct dump d;
  dump_collect(t, &d);
  uint64_t a = dump_ino(&d, "/d/a"), b = dump_ino(&d, "/b"), c = dump_ino(&d, "/d/c");
  tap_ok(a && a == b && b == c, "hardlinked names share one ino (%llu %llu %llu)",
         (unsigned long long)a, (unsigned long long)b, (unsigned long long)c);
  tap_is_int(d.nnodes, 3, "a hardlinked node is emitted once");
  tap_is_int(lbx_tree_count(t), 3, "count counts nodes, not names");
  tap_is_int(d.ndents, 4, "every name is a dirent");
  /* b sorts before d: the node takes its ino at b, its first name in BFS. */
  tap_is_int(b, 2, "ino assigned at the first name in BFS order");
  tap_is_int(d.nodes[b - 1].nlink, 3, "nlink 3");
  dump_free(&d);
}

static void
test_stable_inos(void)
{
  const char *specs[] = {
      "f:b/x f:a d:b d:c/y f:c/y/z",
      "d:c/y f:c/y/z f:a d:b f:b/x",
      "f:c/y/z f:b/x f:a f:q | f:.wh.q",
  };
  const char *paths[] = {"/", "/a", "/b", "/c", "/b/x", "/c/y", "/c/y/z"};
  for (size_t s = 0; s < LBX_ARRAY_SIZE(specs); s++) {
    _cleanup_(lbx_tree_freep) lbx_tree *t = lbx_tree_new();
    _cleanup_error_ lbx_err *err = NULL;
    apply_spec(t, specs[s], &err);
    struct dump d;
    dump_collect(t, &d);
    int ok = d.inos_in_order && d.nnodes == 7;
    for (size_t i = 0; i < LBX_ARRAY_SIZE(paths); i++)
      ok = ok && dump_ino(&d, paths[i]) == i + 1;
    tap_ok(ok, "inos are BFS in sorted order (spec %zu)", s);
    /* Emitting twice gives the same numbers. */
    struct dump d2;
    dump_collect(t, &d2);
    int same = d2.nnodes == d.nnodes && d2.ndents == d.ndents;
    for (size_t i = 0; same && i < d.ndents; i++)
      same = d.dents[i].parent == d2.dents[i].parent && d.dents[i].ino == d2.dents[i].ino &&
             strcmp(d.dents[i].name, d2.dents[i].name) == 0;
    tap_ok(same, "a second emit is identical (spec %zu)", s);
    dump_free(&d);
    dump_free(&d2);
  }

  /* Bytewise order: uppercase and high bytes. */
  _cleanup_(lbx_tree_freep) lbx_tree *t = lbx_tree_new();
  _cleanup_error_ lbx_err *err = NULL;
  apply_spec(t, "f:\xc3\xa9 f:b f:B f:a", &err);
  struct dump d;
  dump_collect(t, &d);
  int ok = dump_ino(&d, "/B") == 2 && dump_ino(&d, "/a") == 3 && dump_ino(&d, "/b") == 4 &&
           dump_ino(&d, "/\xc3\xa9") == 5;
  tap_ok(ok, "names sort bytewise");
  dump_free(&d);
}

struct meta_ctx {
  int ok_file, ok_root, ok_dev;
  uint8_t want_digest[32];
};

static int
meta_node(void *ctx, const lbx_node *n)
{
  struct meta_ctx *m = ctx;
  if (n->ino == 1) {
    m->ok_root = n->mode == 0711 && n->uid == 3 && n->gid == 4 && n->mtime_ns == 99 && !n->xattrs;
  } else if (n->type == LBX_T_REG) {
    size_t pos = 0, vlen;
    const char *name;
    const void *value;
    int r1 = lbx_xattrs_next(n->xattrs, n->xattrs_len, &pos, &name, &value, &vlen);
    int good = r1 == 1 && strcmp(name, "user.a") == 0 && vlen == 3 && memcmp(value, "one", 3) == 0;
    int r2 = lbx_xattrs_next(n->xattrs, n->xattrs_len, &pos, &name, &value, &vlen);
    good = good && r2 == 1 && strcmp(name, "security.capability") == 0 && vlen == 2;
    good = good && lbx_xattrs_next(n->xattrs, n->xattrs_len, &pos, &name, &value, &vlen) == 0;
    m->ok_file = good && n->digest && memcmp(n->digest, m->want_digest, 32) == 0 &&
                 n->size == 12345 && n->uid == 1000 && n->gid == 100 && n->mode == 04755 &&
                 n->mtime_ns == 1700000000123456789LL && n->nlink == 1 && !n->link;
  } else if (n->type == LBX_T_CHR) {
    m->ok_dev = n->rdev == 0x0103 && !n->digest && !n->xattrs;
  }
  return 0;
}

static void
test_metadata(void)
{
  _cleanup_(lbx_tree_freep) lbx_tree *t = lbx_tree_new();
  _cleanup_error_ lbx_err *err = NULL;
  struct meta_ctx m = {0};
  for (int i = 0; i < 32; i++)
    m.want_digest[i] = (uint8_t)(i * 7 + 1);

  lbx_tree_begin_layer(t);
  char path[64];
  uint8_t digest[32];
  memcpy(digest, m.want_digest, 32);
  uint8_t *xa = NULL;
  size_t xalen = 0;
  lbx_xattrs_append(&xa, &xalen, "user.a", "one", 3);
  lbx_xattrs_append(&xa, &xalen, "security.capability", "\x01\x02", 2);
  strcpy(path, "usr/bin/ping");
  lbx_entry e = {
      .path = path,
      .type = LBX_T_REG,
      .mode = 04755,
      .uid = 1000,
      .gid = 100,
      .size = 12345,
      .mtime_ns = 1700000000123456789LL,
      .digest = digest,
      .xattrs = xa,
      .xattrs_len = xalen,
  };
  tap_is_int(lbx_tree_apply(t, &e, &err), 0, "file with xattrs applies");
  /* The caller reuses its memory. */
  memset(xa, 'X', xalen);
  free(xa);
  memset(digest, 0, sizeof digest);
  strcpy(path, "usr/bin/zzzz");

  lbx_entry dev = {.path = "dev/null", .type = LBX_T_CHR, .mode = 0666, .rdev = 0x0103};
  tap_is_int(lbx_tree_apply(t, &dev, &err), 0, "device applies");
  lbx_tree_begin_layer(t);
  uint8_t *rx = NULL;
  size_t rxlen = 0;
  lbx_xattrs_append(&rx, &rxlen, "user.root", "1", 1);
  lbx_entry root = {.path = "", .type = LBX_T_DIR, .mode = 0700, .xattrs = rx, .xattrs_len = rxlen};
  tap_is_int(lbx_tree_apply(t, &root, &err), 0, "root entry applies");
  free(rx);
  /* Restating the root replaces its metadata, xattrs included. */
  lbx_entry root2 = {
      .path = "", .type = LBX_T_DIR, .mode = 040711, .uid = 3, .gid = 4, .mtime_ns = 99};
  tap_is_int(lbx_tree_apply(t, &root2, &err), 0, "root entry again");

  tap_is_int(lbx_tree_emit(t, meta_node, NULL, &m), 0, "emit without a dirent callback");
  tap_ok(m.ok_file, "metadata, digest and xattrs are copies");
  tap_ok(m.ok_root, "root metadata from the \"\" entry, mode masked to 07777");
  tap_ok(m.ok_dev, "rdev kept");

  struct dump d;
  dump_collect(t, &d);
  tap_ok(dump_ino(&d, "/usr/bin/ping") != 0 && dump_ino(&d, "/usr/bin/zzzz") == 0,
         "the path was copied");
  dump_free(&d);

  lbx_entry bad = {.path = "x", .type = 42};
  tap_is_int(lbx_tree_apply(t, &bad, &err), -1, "unknown type refused");
  tap_ok(err && err->code == EINVAL, "with EINVAL");
}

static int
stop_at_3(void *ctx, const lbx_node *n)
{
  (void)ctx;
  return n->ino == 3 ? 42 : 0;
}

static int
stop_dirent(void *ctx, uint64_t parent, const char *name, uint64_t ino)
{
  (void)parent, (void)name, (void)ino;
  return ++*(int *)ctx == 2 ? -7 : 0;
}

static void
test_abort(void)
{
  _cleanup_(lbx_tree_freep) lbx_tree *t = lbx_tree_new();
  _cleanup_error_ lbx_err *err = NULL;
  apply_spec(t, "f:a f:b d:c f:c/d", &err);
  tap_is_int(lbx_tree_emit(t, stop_at_3, NULL, NULL), 42, "node callback stops the walk");
  int n = 0;
  tap_is_int(lbx_tree_emit(t, NULL, stop_dirent, &n), -7, "dirent callback stops the walk");
  tap_is_int(n, 2, "no call after the stop");
  struct dump d;
  dump_collect(t, &d);
  tap_ok(d.inos_in_order && d.nnodes == 5, "an aborted emit leaves numbering intact");
  dump_free(&d);
}

static int
count_node(void *ctx, const lbx_node *n)
{
  (void)n;
  ((uint64_t *)ctx)[0]++;
  return 0;
}

static int
count_dirent(void *ctx, uint64_t parent, const char *name, uint64_t ino)
{
  (void)parent, (void)name, (void)ino;
  ((uint64_t *)ctx)[1]++;
  return 0;
}

static void
test_many_in_one_dir(void)
{
  /* Deleting from the middle of probe runs, then finding every survivor. */
  _cleanup_(lbx_tree_freep) lbx_tree *t = lbx_tree_new();
  _cleanup_error_ lbx_err *err = NULL;
  char path[64], link[64];
  int n = 20000, r = 0;
  lbx_tree_begin_layer(t);
  for (int i = 0; i < n && r == 0; i++) {
    snprintf(path, sizeof path, "d/f%d", i);
    lbx_entry e = {.path = path, .type = LBX_T_REG, .mode = 0644};
    r = lbx_tree_apply(t, &e, &err);
  }
  lbx_tree_begin_layer(t);
  for (int i = 1; i < n && r == 0; i += 2) {
    snprintf(path, sizeof path, "d/.wh.f%d", i);
    lbx_entry e = {.path = path, .type = LBX_T_REG};
    r = lbx_tree_apply(t, &e, &err);
  }
  tap_is_int(lbx_tree_count(t), 2 + n / 2, "half the names whited out");
  lbx_tree_begin_layer(t);
  for (int i = 0; i < n && r == 0; i += 2) {
    snprintf(path, sizeof path, "h%d", i);
    snprintf(link, sizeof link, "d/f%d", i);
    lbx_entry e = {.path = path, .link = link, .type = LBX_T_HARDLINK};
    r = lbx_tree_apply(t, &e, &err);
  }
  tap_is_int(r, 0, "every survivor is still found %s", err ? err->msg : "");
  snprintf(link, sizeof link, "d/f%d", 1);
  lbx_entry e = {.path = "x", .link = link, .type = LBX_T_HARDLINK};
  tap_is_int(lbx_tree_apply(t, &e, &err), -1, "a whited-out name is gone");
  uint64_t c[2] = {0, 0};
  lbx_tree_emit(t, count_node, count_dirent, c);
  tap_is_int(c[0], 2 + n / 2, "nodes emitted");
  tap_is_int(c[1], 1 + n, "dirents emitted");
}

static void
test_deep(void)
{
  _cleanup_(lbx_tree_freep) lbx_tree *t = lbx_tree_new();
  _cleanup_error_ lbx_err *err = NULL;
  int depth = 5000, r = 0;
  char *path = lbx_xcalloc(1, 2 * (size_t)depth + 8);
  lbx_tree_begin_layer(t);
  for (int i = 0; i < depth && r == 0; i++) {
    strcat(path, i ? "/a" : "a");
    lbx_entry e = {.path = path, .type = LBX_T_DIR, .mode = 0755};
    r = lbx_tree_apply(t, &e, &err);
  }
  strcat(path, "/f");
  lbx_entry f = {.path = path, .type = LBX_T_REG, .mode = 0644};
  r = r ? r : lbx_tree_apply(t, &f, &err);
  tap_is_int(r, 0, "a %d-level tree applies", depth);
  tap_is_int(lbx_tree_count(t), depth + 2, "all levels counted");
  uint64_t c[2] = {0, 0};
  lbx_tree_emit(t, count_node, count_dirent, c);
  tap_is_int(c[0], depth + 2, "all levels emitted");
  lbx_tree_begin_layer(t);
  lbx_entry wh = {.path = "a/.wh.a", .type = LBX_T_REG};
  tap_is_int(lbx_tree_apply(t, &wh, &err), 0, "whiteout of the deep subtree");
  tap_is_int(lbx_tree_count(t), 2, "deep subtree gone");
  free(path);
  /* The rest is freed by lbx_tree_free without recursion. */
}

static void
test_big_layer(void)
{
  _cleanup_(lbx_tree_freep) lbx_tree *t = lbx_tree_new();
  _cleanup_error_ lbx_err *err = NULL;
  char path[96];
  int ndirs = 200, nfiles = 1000, r = 0;
  uint8_t digest[32] = {1};
  lbx_tree_begin_layer(t);
  for (int d = 0; d < ndirs && r == 0; d++) {
    snprintf(path, sizeof path, "usr/share/d%03d", d);
    lbx_entry e = {.path = path, .type = LBX_T_DIR, .mode = 0755};
    r = lbx_tree_apply(t, &e, &err);
    for (int f = 0; f < nfiles && r == 0; f++) {
      snprintf(path, sizeof path, "usr/share/d%03d/file-%05d.txt", d, f);
      lbx_entry fe = {.path = path, .type = LBX_T_REG, .mode = 0644, .size = 100, .digest = digest};
      r = lbx_tree_apply(t, &fe, &err);
    }
  }
  tap_is_int(r, 0, "200k entries apply");
  tap_is_int(lbx_tree_count(t), 3 + ndirs + ndirs * nfiles, "200k nodes");

  lbx_tree_begin_layer(t);
  for (int d = 0; d < 50 && r == 0; d++) {
    snprintf(path, sizeof path, "usr/share/.wh.d%03d", d);
    lbx_entry e = {.path = path, .type = LBX_T_REG};
    r = lbx_tree_apply(t, &e, &err);
  }
  for (int d = 50; d < 100 && r == 0; d++) {
    snprintf(path, sizeof path, "usr/share/d%03d/.wh..wh..opq", d);
    lbx_entry e = {.path = path, .type = LBX_T_REG};
    r = lbx_tree_apply(t, &e, &err);
    snprintf(path, sizeof path, "usr/share/d%03d/new", d);
    lbx_entry n = {.path = path, .type = LBX_T_REG, .mode = 0644};
    r = r ? r : lbx_tree_apply(t, &n, &err);
  }
  tap_is_int(r, 0, "whiteouts and opaque dirs apply");
  uint64_t want = 3 + (ndirs - 50) + (ndirs - 100) * nfiles + 50;
  tap_is_int(lbx_tree_count(t), want, "count after the second layer");
  uint64_t c[2] = {0, 0};
  tap_is_int(lbx_tree_emit(t, count_node, count_dirent, c), 0, "emit");
  tap_is_int(c[0], want, "nodes emitted");
  tap_is_int(c[1], want - 1, "dirents emitted");
}

int
main(void)
{
  test_cases();
  test_hardlink_ino();
  test_stable_inos();
  test_metadata();
  test_abort();
  test_many_in_one_dir();
  test_deep();
  test_big_layer();
  return tap_done();
}
