/* The merged tree: the input is a program of small operations (start a
 * layer, apply an entry of some type at a path made of a few names from a
 * small alphabet that includes whiteouts and opaque markers, emit). Every
 * emit is checked for consistency: inode numbers 1..n each once, directory
 * entries naming emitted nodes under directories, link counts that match
 * the names, every node reachable, the same result twice. */
#include "fuzz.h"
#include "index/tree.h"

#include <stdbool.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const names[] = {
    "a",  "b", "c", "dd",  ".wh.a", ".wh.b",  ".wh.dd", ".wh..wh..opq", ".wh..wh.plnk",
    "..", ".", "",  "a b", ".wh.",  ".wh...", "\xff",
};
#define NNAMES (sizeof names / sizeof names[0])

struct in {
  const uint8_t *d;
  size_t n, pos;
};

static uint8_t
next(struct in *in)
{
  return in->pos < in->n ? in->d[in->pos++] : 0;
}

/* A path of 1..4 names joined by '/'; now and then a leading or double '/'. */
static void
make_path(struct in *in, char *out, size_t cap)
{
  uint8_t b = next(in);
  size_t ncomp = 1 + b % 4, o = 0;
  if (b & 0x40)
    out[o++] = '/';
  for (size_t i = 0; i < ncomp; i++) {
    const char *c = names[next(in) % NNAMES];
    size_t l = strlen(c);
    if (i && o + 1 < cap)
      out[o++] = '/';
    if (i && (b & 0x80) && o + 1 < cap)
      out[o++] = '/';
    if (o + l < cap) {
      memcpy(out + o, c, l);
      o += l;
    }
  }
  out[o] = '\0';
}

/* ---- emit checks ---- */

#define MAXN 4096
struct emitted {
  uint64_t n;          /* nodes seen */
  uint32_t type[MAXN]; /* by ino */
  uint32_t nlink[MAXN];
  uint32_t refs[MAXN];    /* dirents naming it */
  uint32_t subdirs[MAXN]; /* dirents under it naming directories */
  uint64_t hash;          /* of everything emitted, to compare two emits */
};

static uint64_t
mix(uint64_t h, uint64_t v)
{
  return (h ^ v) * 0x100000001b3ULL;
}

static int
on_node(void *ctx, const lbx_node *n)
{
  struct emitted *e = ctx;
  FUZZ_CHECK(n->ino == e->n + 1);
  FUZZ_CHECK(n->type != LBX_T_HARDLINK && n->type >= LBX_T_REG && n->type <= LBX_T_FIFO);
  FUZZ_CHECK((n->mode & ~07777u) == 0);
  FUZZ_CHECK(n->nlink >= 1);
  FUZZ_CHECK((n->link != NULL) == (n->type == LBX_T_SYMLINK));
  FUZZ_CHECK(n->type != LBX_T_DIR || !n->digest);
  e->n++;
  if (n->ino < MAXN) {
    e->type[n->ino] = n->type;
    e->nlink[n->ino] = n->nlink;
  }
  e->hash = mix(mix(mix(e->hash, n->ino), n->type), n->nlink);
  e->hash = mix(mix(e->hash, n->mode), n->size);
  return 0;
}

static int
on_dirent(void *ctx, uint64_t parent, const char *name, uint64_t ino)
{
  struct emitted *e = ctx;
  FUZZ_CHECK(parent >= 1 && parent <= e->n && ino >= 2 && ino <= e->n);
  FUZZ_CHECK(*name && !strchr(name, '/') && strcmp(name, ".") != 0 && strcmp(name, "..") != 0);
  if (parent < MAXN && ino < MAXN) {
    FUZZ_CHECK(e->type[parent] == LBX_T_DIR);
    e->refs[ino]++;
    if (e->type[ino] == LBX_T_DIR)
      e->subdirs[parent]++;
  }
  e->hash = mix(mix(e->hash, parent), ino);
  for (const char *c = name; *c; c++)
    e->hash = mix(e->hash, (uint8_t)*c);
  return 0;
}

static void
check_emit(lbx_tree *t)
{
  static struct emitted a, b;
  memset(&a, 0, sizeof a);
  FUZZ_CHECK(lbx_tree_emit(t, on_node, on_dirent, &a) == 0);
  FUZZ_CHECK(a.n == lbx_tree_count(t));
  FUZZ_CHECK(a.type[1] == LBX_T_DIR && a.refs[1] == 0);
  for (uint64_t i = 2; i <= a.n && i < MAXN; i++) {
    FUZZ_CHECK(a.refs[i] >= 1); /* reachable */
    if (a.type[i] == LBX_T_DIR)
      FUZZ_CHECK(a.refs[i] == 1);
    else
      FUZZ_CHECK(a.nlink[i] == a.refs[i]);
  }
  for (uint64_t i = 1; i <= a.n && i < MAXN; i++)
    if (a.type[i] == LBX_T_DIR)
      FUZZ_CHECK(a.nlink[i] == 2 + a.subdirs[i]);
  /* numbering is per emit and stable */
  memset(&b, 0, sizeof b);
  FUZZ_CHECK(lbx_tree_emit(t, on_node, on_dirent, &b) == 0);
  FUZZ_CHECK(a.hash == b.hash && a.n == b.n);
}

/* ---- the program ---- */

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  struct in in = {data, size, 0};
  lbx_tree *t = lbx_tree_new();
  static const uint8_t digest[LBX_DIGEST_LEN] = {1, 2, 3};
  uint8_t *xattrs = NULL;
  size_t xlen = 0;
  lbx_xattrs_append(&xattrs, &xlen, "user.x", "v", 1);
  int emits = 0;
  lbx_tree_begin_layer(t);
  while (in.pos < in.n) {
    uint8_t op = next(&in);
    if (op % 16 == 0) {
      lbx_tree_begin_layer(t);
      continue;
    }
    if (op % 16 == 15) {
      if (emits++ < 4)
        check_emit(t);
      continue;
    }
    static const uint32_t types[] = {
        LBX_T_REG,
        LBX_T_REG,
        LBX_T_DIR,
        LBX_T_DIR,
        LBX_T_DIR,
        LBX_T_SYMLINK,
        LBX_T_HARDLINK,
        LBX_T_HARDLINK,
        LBX_T_CHR,
        LBX_T_BLK,
        LBX_T_FIFO,
        LBX_T_REG,
        0,
        99,
    };
    uint32_t type = types[(op % 16 - 1) % (sizeof types / sizeof types[0])];
    char path[128], link[128];
    make_path(&in, path, sizeof path);
    if (op % 16 == 12 && (op & 0x10))
      path[0] = '\0'; /* the root itself */
    lbx_entry e = {
        .path = path,
        .type = type,
        .mode = (uint32_t)next(&in) << 4 | (op >> 4),
        .uid = op >> 5,
        .size = type == LBX_T_REG ? op : 0,
        .mtime_ns = op,
        .digest = type == LBX_T_REG && (op & 0x20) ? digest : NULL,
        .xattrs = (op & 0x40) ? xattrs : NULL,
        .xattrs_len = (op & 0x40) ? xlen : 0,
    };
    if (type == LBX_T_SYMLINK) {
      e.link = names[next(&in) % NNAMES];
    } else if (type == LBX_T_HARDLINK) {
      make_path(&in, link, sizeof link);
      e.link = (op & 0x80) ? NULL : link;
    }
    lbx_err *err = NULL;
    if (lbx_tree_apply(t, &e, &err) < 0) {
      FUZZ_CHECK(err && err->msg);
      lbx_error_free(err);
    } else {
      FUZZ_CHECK(!err);
    }
  }
  check_emit(t);
  free(xattrs);
  lbx_tree_free(t);
  return 0;
}
