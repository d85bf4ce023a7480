/* The merge of a layer chain into one in-memory tree.
 *
 * A directory keeps its children in an open-addressing hash table (linear
 * probing, backward-shift deletion) keyed by a seeded SipHash of the name,
 * so a layer of n entries applies in O(n) expected time whatever names an
 * image chooses. Every name (dent) records the layer that put its node
 * there; a whiteout or opaque marker of layer L removes only what has a
 * lower stamp, which makes the result independent of where in the layer the
 * markers sit (the OCI rule: a layer's whiteouts hide only lower layers).
 *
 * Nothing here follows symlinks: a path component that is not a directory
 * stops the walk with an error. Removal and pruning walk subtrees with an
 * explicit stack, so a deep tree cannot exhaust the C stack. */
#include "tree.h"

#include "../store/util.h"

#include <stdbool.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define WH_PREFIX ".wh."
#define WH_PREFIX_LEN 4
#define WH_META ".wh..wh."
#define WH_META_LEN 8
#define WH_OPAQUE ".wh..wh..opq"

struct tdent;

struct tdir {
  struct tdent **slots; /* cap slots, NULL = free */
  uint32_t cap;         /* 0 or a power of two */
  uint32_t count;
  uint32_t meta_layer; /* layer that last set the metadata (entry or implicit) */
};

/* 80 bytes: a 1M-entry image's tree is mostly these and its names, so
 * fields that never coexist share storage (a device has no size, a symlink
 * no digest) and nodes come from the tree's arena, without malloc's header
 * and rounding. */
struct tnode {
  uint8_t type; /* enum lbx_type, never LBX_T_HARDLINK */
  uint8_t has_digest;
  uint16_t mode; /* 07777 */
  uint32_t uid, gid;
  uint32_t nlink;      /* non-directories: names pointing here */
  uint32_t xattrs_len; /* lbx_tree_apply refuses more */
  uint32_t ino;        /* assigned during emit, 0 otherwise; a tree of 2^32
                          nodes would not fit in memory first */
  uint64_t size_rdev;  /* makedev() for devices, else the size */
  int64_t mtime_ns;
  void *xattrs;
  union {
    uint8_t digest[LBX_DIGEST_LEN]; /* regular files */
    char *link;                     /* symlinks */
    struct tdir dir;                /* directories */
    struct tnode *next_free;        /* on the tree's free list */
  } u;
};

_Static_assert(sizeof(struct tnode) <= 80, "tree nodes grew");

struct tdent {
  struct tnode *node;
  uint32_t hash;
  uint32_t layer; /* layer that put node under this name */
  char name[];
};

/* Nodes and names are carved from chunks freed all at once with the tree.
 * A freed node goes on a free list for the next one; a freed name's bytes
 * stay until the end, so the arena is bounded by the names the layers
 * held, as the rows they came from are. */
#define ARENA_CHUNK (256u << 10)
struct chunk {
  struct chunk *next;
  size_t used, size;
  _Alignas(16) unsigned char mem[];
};

struct lbx_tree {
  struct tnode *root;
  struct chunk *chunks;
  struct tnode *free_nodes;
  uint32_t layer;
  uint64_t nnodes, ndents;
  uint64_t key[2]; /* hash seed */
  /* The directory of the last entry's parent path: entries of a layer
   * come grouped by directory, so most walks are one memcmp. Any removal
   * of a directory bumps gen and invalidates it. */
  uint64_t gen, cache_gen;
  char *cache_path;
  size_t cache_len, cache_cap;
  struct tnode *cache_node;
};

/* A growable stack of nodes for the subtree walks. */
struct nstack {
  struct tnode **v;
  size_t n, cap;
};

static void
nstack_push(struct nstack *s, struct tnode *x)
{
  if (s->n == s->cap) {
    s->cap = s->cap ? s->cap * 2 : 64;
    s->v = lbx_xrealloc(s->v, s->cap * sizeof *s->v);
  }
  s->v[s->n++] = x;
}

/* ---- hashing ---- */

static inline uint64_t
rotl(uint64_t x, int b)
{
  return (x << b) | (x >> (64 - b));
}

#define SIPROUND                                                                                   \
  do {                                                                                             \
    v0 += v1;                                                                                      \
    v1 = rotl(v1, 13);                                                                             \
    v1 ^= v0;                                                                                      \
    v0 = rotl(v0, 32);                                                                             \
    v2 += v3;                                                                                      \
    v3 = rotl(v3, 16);                                                                             \
    v3 ^= v2;                                                                                      \
    v0 += v3;                                                                                      \
    v3 = rotl(v3, 21);                                                                             \
    v3 ^= v0;                                                                                      \
    v2 += v1;                                                                                      \
    v1 = rotl(v1, 17);                                                                             \
    v1 ^= v2;                                                                                      \
    v2 = rotl(v2, 32);                                                                             \
  } while (0)

/* SipHash-1-3: keyed, so an image cannot pick names that collide. */
static uint32_t
name_hash(const lbx_tree *t, const char *s, size_t len)
{
  uint64_t v0 = t->key[0] ^ 0x736f6d6570736575ULL;
  uint64_t v1 = t->key[1] ^ 0x646f72616e646f6dULL;
  uint64_t v2 = t->key[0] ^ 0x6c7967656e657261ULL;
  uint64_t v3 = t->key[1] ^ 0x7465646279746573ULL;
  const uint8_t *p = (const uint8_t *)s;
  size_t left = len;
  while (left >= 8) {
    uint64_t m = 0;
    for (int i = 7; i >= 0; i--)
      m = (m << 8) | p[i];
    v3 ^= m;
    SIPROUND;
    v0 ^= m;
    p += 8;
    left -= 8;
  }
  uint64_t m = (uint64_t)len << 56;
  for (size_t i = 0; i < left; i++)
    m |= (uint64_t)p[i] << (8 * i);
  v3 ^= m;
  SIPROUND;
  v0 ^= m;
  v2 ^= 0xff;
  SIPROUND;
  SIPROUND;
  SIPROUND;
  uint64_t h = v0 ^ v1 ^ v2 ^ v3;
  return (uint32_t)(h ^ (h >> 32));
}

/* ---- directory tables ---- */

static inline int
dent_is(const struct tdent *d, uint32_t hash, const char *name, size_t len)
{
  return d->hash == hash && memcmp(d->name, name, len) == 0 && d->name[len] == '\0';
}

/* The slot holding name, or -1. */
static int64_t
dir_find(const struct tdir *d, const char *name, size_t len, uint32_t hash)
{
  if (d->cap == 0)
    return -1;
  uint32_t mask = d->cap - 1;
  for (uint32_t i = hash & mask;; i = (i + 1) & mask) {
    struct tdent *c = d->slots[i];
    if (!c)
      return -1;
    if (dent_is(c, hash, name, len))
      return i;
  }
}

static void
slots_put(struct tdent **slots, uint32_t cap, struct tdent *c)
{
  uint32_t mask = cap - 1;
  uint32_t i = c->hash & mask;
  while (slots[i])
    i = (i + 1) & mask;
  slots[i] = c;
}

/* The smallest power of two keeping n entries at most 3/4 full. */
static uint32_t
cap_for(uint64_t n)
{
  uint64_t cap = 4;
  while (n > cap / 4 * 3)
    cap *= 2;
  if (cap > (1ULL << 31))
    abort(); /* cannot be reached with the memory of this machine */
  return (uint32_t)cap;
}

static void
dir_resize(struct tdir *d, uint32_t cap)
{
  struct tdent **slots = lbx_xcalloc(cap, sizeof *slots);
  for (uint32_t i = 0; i < d->cap; i++)
    if (d->slots[i])
      slots_put(slots, cap, d->slots[i]);
  free(d->slots);
  d->slots = slots;
  d->cap = cap;
}

static void
dir_insert(struct tdir *d, struct tdent *c)
{
  if ((uint64_t)d->count + 1 > (uint64_t)d->cap / 4 * 3)
    dir_resize(d, cap_for((uint64_t)d->count + 1));
  slots_put(d->slots, d->cap, c);
  d->count++;
}

/* Backward-shift deletion: later members of the probe run move up so that
 * lookups never need tombstones. */
static void
dir_delete_slot(struct tdir *d, uint32_t i)
{
  uint32_t mask = d->cap - 1;
  uint32_t j = i;
  for (;;) {
    j = (j + 1) & mask;
    struct tdent *c = d->slots[j];
    if (!c)
      break;
    uint32_t k = c->hash & mask;
    /* c may stay if its home k lies cyclically in (i, j]. */
    if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
      continue;
    d->slots[i] = c;
    i = j;
  }
  d->slots[i] = NULL;
  d->count--;
}

/* ---- memory ---- */

static void *
arena_alloc(lbx_tree *t, size_t size)
{
  size = (size + 7) & ~(size_t)7;
  struct chunk *c = t->chunks;
  if (!c || c->size - c->used < size) {
    size_t cap = size > ARENA_CHUNK ? size : ARENA_CHUNK;
    c = lbx_xmalloc(sizeof *c + cap);
    c->next = t->chunks;
    c->used = 0;
    c->size = cap;
    t->chunks = c;
  }
  void *p = c->mem + c->used;
  c->used += size;
  return p;
}

/* ---- nodes ---- */

static struct tnode *
node_new(lbx_tree *t, uint32_t type)
{
  struct tnode *n = t->free_nodes;
  if (n)
    t->free_nodes = n->u.next_free;
  else
    n = arena_alloc(t, sizeof *n);
  memset(n, 0, sizeof *n);
  n->type = (uint8_t)type;
  t->nnodes++;
  return n;
}

static void
node_free(lbx_tree *t, struct tnode *n)
{
  if (n->type == LBX_T_DIR) {
    free(n->u.dir.slots);
    t->gen++;
  } else if (n->type == LBX_T_SYMLINK) {
    free(n->u.link);
  }
  free(n->xattrs);
  n->u.next_free = t->free_nodes;
  t->free_nodes = n;
  t->nnodes--;
}

static void
set_implicit_meta(struct tnode *n, uint32_t layer)
{
  n->mode = 0755;
  n->uid = n->gid = 0;
  n->size_rdev = 0;
  n->mtime_ns = 0;
  free(n->xattrs);
  n->xattrs = NULL;
  n->xattrs_len = 0;
  n->u.dir.meta_layer = layer;
}

static struct tnode *
dir_new_implicit(lbx_tree *t)
{
  struct tnode *n = node_new(t, LBX_T_DIR);
  set_implicit_meta(n, t->layer);
  return n;
}

static void
set_meta(lbx_tree *t, struct tnode *n, const lbx_entry *e)
{
  n->mode = (uint16_t)(e->mode & 07777);
  n->uid = e->uid;
  n->gid = e->gid;
  n->size_rdev = n->type == LBX_T_CHR || n->type == LBX_T_BLK ? e->rdev : e->size;
  n->mtime_ns = e->mtime_ns;
  free(n->xattrs);
  n->xattrs = NULL;
  n->xattrs_len = 0;
  if (e->xattrs && e->xattrs_len) {
    n->xattrs = lbx_xmalloc(e->xattrs_len);
    memcpy(n->xattrs, e->xattrs, e->xattrs_len);
    n->xattrs_len = (uint32_t)e->xattrs_len;
  }
  /* a directory keeps its children; anything else is a new node here */
  if (n->type == LBX_T_DIR) {
    n->u.dir.meta_layer = t->layer;
  } else if (n->type == LBX_T_SYMLINK) {
    n->u.link = lbx_xstrdup(e->link ? e->link : "");
  } else if (n->type == LBX_T_REG && e->digest) {
    n->has_digest = 1;
    memcpy(n->u.digest, e->digest, LBX_DIGEST_LEN);
  }
}

static struct tdent *
dent_new(lbx_tree *t, const char *name, size_t len, uint32_t hash, struct tnode *node)
{
  struct tdent *c = arena_alloc(t, sizeof *c + len + 1);
  c->node = node;
  c->hash = hash;
  c->layer = t->layer;
  memcpy(c->name, name, len);
  c->name[len] = '\0';
  t->ndents++;
  return c;
}

/* Drops one name of a non-directory. */
static void
unref_file(lbx_tree *t, struct tnode *n)
{
  if (--n->nlink == 0)
    node_free(t, n);
}

/* Frees a directory and everything below it (names of hardlinked files
 * outside the subtree stay valid). */
static void
free_subtree(lbx_tree *t, struct tnode *root)
{
  struct nstack st = {0};
  nstack_push(&st, root);
  while (st.n) {
    struct tnode *d = st.v[--st.n];
    for (uint32_t i = 0; i < d->u.dir.cap; i++) {
      struct tdent *c = d->u.dir.slots[i];
      if (!c)
        continue;
      if (c->node->type == LBX_T_DIR)
        nstack_push(&st, c->node);
      else
        unref_file(t, c->node);
      t->ndents--;
    }
    node_free(t, d);
  }
  free(st.v);
}

/* Drops a name and what only it kept alive. */
static void
release_dent(lbx_tree *t, struct tdent *c)
{
  if (c->node->type == LBX_T_DIR)
    free_subtree(t, c->node);
  else
    unref_file(t, c->node);
  t->ndents--;
}

/* ---- whiteouts ---- */

/* After its subtree was pruned for layer L: does a lower directory go? It
 * stays when layer L restated it or put something in it. */
static int
pruned_dir_goes(const struct tnode *n, uint32_t layer)
{
  return n->u.dir.count == 0 && n->u.dir.meta_layer < layer;
}

/* A lower directory that stays after pruning now belongs to layer L: with
 * implicit metadata unless L restated it. */
static void
pruned_dir_keep(struct tdent *c, uint32_t layer)
{
  if (c->node->u.dir.meta_layer < layer)
    set_implicit_meta(c->node, layer);
  c->layer = layer;
}

/* Rebuilds one directory's table without what lower layers put there; its
 * lower subdirectories have been pruned already. */
static void
filter_dir(lbx_tree *t, struct tnode *x)
{
  struct tdir *d = &x->u.dir;
  uint32_t layer = t->layer, kept = 0;
  for (uint32_t i = 0; i < d->cap; i++) {
    struct tdent *c = d->slots[i];
    if (!c)
      continue;
    if (c->layer >= layer || (c->node->type == LBX_T_DIR && !pruned_dir_goes(c->node, layer)))
      kept++;
  }
  if (kept != d->count) {
    struct tdent **old = d->slots;
    uint32_t oldcap = d->cap;
    d->cap = kept ? cap_for(kept) : 0;
    if (d->cap > oldcap)
      d->cap = oldcap;
    d->slots = d->cap ? lbx_xcalloc(d->cap, sizeof *d->slots) : NULL;
    d->count = kept;
    for (uint32_t i = 0; i < oldcap; i++) {
      struct tdent *c = old[i];
      if (!c)
        continue;
      if (c->layer >= layer || (c->node->type == LBX_T_DIR && !pruned_dir_goes(c->node, layer)))
        slots_put(d->slots, d->cap, c);
      else
        release_dent(t, c); /* a directory here is empty */
    }
    free(old);
  }
  for (uint32_t i = 0; i < d->cap; i++) {
    struct tdent *c = d->slots[i];
    if (c && c->layer < layer)
      pruned_dir_keep(c, layer);
  }
}

/* Removes from x's subtree everything lower layers put there, keeping what
 * the current layer added (and the directories holding it). */
static void
prune_children(lbx_tree *t, struct tnode *x)
{
  struct nstack todo = {0}, order = {0};
  nstack_push(&todo, x);
  while (todo.n) {
    struct tnode *d = todo.v[--todo.n];
    nstack_push(&order, d);
    for (uint32_t i = 0; i < d->u.dir.cap; i++) {
      struct tdent *c = d->u.dir.slots[i];
      if (c && c->layer < t->layer && c->node->type == LBX_T_DIR)
        nstack_push(&todo, c->node);
    }
  }
  /* A directory is in order after its parent: backwards, children first. */
  while (order.n)
    filter_dir(t, order.v[--order.n]);
  free(todo.v);
  free(order.v);
}

/* ---- paths ---- */

static int
bad_component(const char *s, size_t len)
{
  return len == 0 || (len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.');
}

/* The directory at path[0..plen), made (implicitly, as the current layer)
 * where missing. Refuses a component that exists and is not a directory. */
static struct tnode *
walk_parent(lbx_tree *t, const char *path, size_t plen, lbx_err **err)
{
  if (plen == 0)
    return t->root;
  if (t->cache_node && t->cache_gen == t->gen && t->cache_len == plen &&
      memcmp(t->cache_path, path, plen) == 0)
    return t->cache_node;

  struct tnode *cur = t->root;
  size_t at = 0;
  do {
    const char *name = path + at;
    const char *slash = memchr(name, '/', plen - at);
    size_t len = slash ? (size_t)(slash - name) : plen - at;
    if (bad_component(name, len)) {
      lbx_error(err, EINVAL, "\"%s\": invalid path", path);
      return NULL;
    }
    uint32_t h = name_hash(t, name, len);
    int64_t i = dir_find(&cur->u.dir, name, len, h);
    if (i < 0) {
      struct tnode *n = dir_new_implicit(t);
      dir_insert(&cur->u.dir, dent_new(t, name, len, h, n));
      cur = n;
    } else {
      struct tnode *n = cur->u.dir.slots[i]->node;
      if (n->type != LBX_T_DIR) {
        lbx_error(err, EINVAL, "\"%s\": parent \"%.*s\" is not a directory", path, (int)(at + len),
                  path);
        return NULL;
      }
      cur = n;
    }
    at += len + 1;
  } while (at <= plen); /* "a/" has an empty last component */

  if (plen + 1 > t->cache_cap) {
    t->cache_cap = plen + 1 > 2 * t->cache_cap ? plen + 1 : 2 * t->cache_cap;
    t->cache_path = lbx_xrealloc(t->cache_path, t->cache_cap);
  }
  memcpy(t->cache_path, path, plen);
  t->cache_len = plen;
  t->cache_gen = t->gen;
  t->cache_node = cur;
  return cur;
}

/* The node at path in the current tree without making or following
 * anything, or NULL. */
static struct tnode *
lookup(const lbx_tree *t, const char *path)
{
  struct tnode *cur = t->root;
  const char *p = path;
  while (*p) {
    if (cur->type != LBX_T_DIR)
      return NULL;
    const char *slash = strchr(p, '/');
    size_t len = slash ? (size_t)(slash - p) : strlen(p);
    if (bad_component(p, len))
      return NULL;
    int64_t i = dir_find(&cur->u.dir, p, len, name_hash(t, p, len));
    if (i < 0)
      return NULL;
    cur = cur->u.dir.slots[i]->node;
    p += len;
    if (*p == '/')
      p++;
  }
  return cur;
}

/* ---- public ---- */

lbx_tree *
lbx_tree_new(void)
{
  lbx_tree *t = lbx_xcalloc(1, sizeof *t);
  if (getrandom(t->key, sizeof t->key, GRND_NONBLOCK) != (ssize_t)sizeof t->key) {
    /* Only the resistance to chosen collisions depends on the seed. */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    t->key[0] = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ULL ^ (uint64_t)(uintptr_t)t;
    t->key[1] = (uint64_t)ts.tv_sec * 0xc2b2ae3d27d4eb4fULL ^ (uint64_t)getpid();
  }
  t->root = dir_new_implicit(t);
  return t;
}

void
lbx_tree_free(lbx_tree *t)
{
  if (!t)
    return;
  free_subtree(t, t->root);
  for (struct chunk *c = t->chunks, *next; c; c = next) {
    next = c->next;
    free(c);
  }
  free(t->cache_path);
  free(t);
}

void
lbx_tree_begin_layer(lbx_tree *t)
{
  t->layer++;
}

uint64_t
lbx_tree_count(const lbx_tree *t)
{
  return t->nnodes;
}

static int
apply_whiteout(lbx_tree *t, const lbx_entry *e, size_t plen, const char *base, lbx_err **err)
{
  const char *path = e->path;
  if (strcmp(base, WH_OPAQUE) == 0) {
    struct tnode *dir = walk_parent(t, path, plen, err);
    if (!dir)
      return -1;
    prune_children(t, dir);
    return 0;
  }
  if (strncmp(base, WH_META, WH_META_LEN) == 0)
    return 0; /* AUFS metadata (.wh..wh.plnk, ...): not part of the tree */

  const char *name = base + WH_PREFIX_LEN;
  size_t len = strlen(name);
  if (bad_component(name, len))
    return lbx_error(err, EINVAL, "\"%s\": whiteout of an invalid name", path);
  struct tnode *dir = walk_parent(t, path, plen, err);
  if (!dir)
    return -1;
  int64_t i = dir_find(&dir->u.dir, name, len, name_hash(t, name, len));
  if (i < 0)
    return 0;
  struct tdent *c = dir->u.dir.slots[i];
  if (c->layer >= t->layer)
    return 0; /* this layer's own: only a later layer can hide it */
  if (c->node->type == LBX_T_DIR) {
    prune_children(t, c->node);
    if (!pruned_dir_goes(c->node, t->layer)) {
      pruned_dir_keep(c, t->layer);
      return 0;
    }
  }
  dir_delete_slot(&dir->u.dir, (uint32_t)i);
  release_dent(t, c);
  return 0;
}

static int
apply_hardlink(lbx_tree *t, const lbx_entry *e, struct tnode *dir, const char *name, size_t len,
               lbx_err **err)
{
  const char *target = e->link ? e->link : "";
  struct tnode *n = lookup(t, target);
  if (!n)
    return lbx_error(err, EINVAL, "\"%s\": hardlink target \"%s\" does not exist", e->path, target);
  if (n->type == LBX_T_DIR)
    return lbx_error(err, EINVAL, "\"%s\": hardlink target \"%s\" is a directory", e->path, target);
  n->nlink++; /* held while the old name goes, which may be a name of n */
  uint32_t h = name_hash(t, name, len);
  int64_t i = dir_find(&dir->u.dir, name, len, h);
  if (i >= 0) {
    struct tdent *c = dir->u.dir.slots[i];
    dir_delete_slot(&dir->u.dir, (uint32_t)i);
    release_dent(t, c);
  }
  dir_insert(&dir->u.dir, dent_new(t, name, len, h, n));
  return 0;
}

int
lbx_tree_apply(lbx_tree *t, const lbx_entry *e, lbx_err **err)
{
  const char *path = e->path ? e->path : "";
  switch (e->type) {
  case LBX_T_REG:
  case LBX_T_DIR:
  case LBX_T_SYMLINK:
  case LBX_T_HARDLINK:
  case LBX_T_CHR:
  case LBX_T_BLK:
  case LBX_T_FIFO:
    break;
  default:
    return lbx_error(err, EINVAL, "\"%s\": unknown entry type %u", path, e->type);
  }

  if (e->xattrs_len > UINT32_MAX)
    return lbx_error(err, E2BIG, "\"%s\": %zu bytes of xattrs", path, e->xattrs_len);
  if (*path == '\0') {
    if (e->type != LBX_T_DIR)
      return lbx_error(err, EINVAL, "\"\": the root must be a directory");
    set_meta(t, t->root, e);
    return 0;
  }

  const char *slash = strrchr(path, '/');
  const char *base = slash ? slash + 1 : path;
  size_t plen = slash ? (size_t)(slash - path) : 0;
  size_t len = strlen(base);
  if (bad_component(base, len) || (slash && plen == 0))
    return lbx_error(err, EINVAL, "\"%s\": invalid path", path);

  /* AUFS keeps its metadata (.wh..wh.plnk/, .wh..wh.orph/) at the top. */
  if (strncmp(path, WH_META, WH_META_LEN) == 0 && strcmp(path, WH_OPAQUE) != 0)
    return 0;
  if (strncmp(base, WH_PREFIX, WH_PREFIX_LEN) == 0)
    return apply_whiteout(t, e, plen, base, err);

  struct tnode *dir = walk_parent(t, path, plen, err);
  if (!dir)
    return -1;
  if (e->type == LBX_T_HARDLINK)
    return apply_hardlink(t, e, dir, base, len, err);

  uint32_t h = name_hash(t, base, len);
  int64_t i = dir_find(&dir->u.dir, base, len, h);
  if (i >= 0) {
    struct tdent *c = dir->u.dir.slots[i];
    if (e->type == LBX_T_DIR && c->node->type == LBX_T_DIR) {
      set_meta(t, c->node, e); /* children stay */
      return 0;
    }
    dir_delete_slot(&dir->u.dir, (uint32_t)i);
    release_dent(t, c);
  }
  struct tnode *n = node_new(t, e->type);
  if (n->type != LBX_T_DIR)
    n->nlink = 1;
  set_meta(t, n, e);
  dir_insert(&dir->u.dir, dent_new(t, base, len, h, n));
  return 0;
}

/* ---- emit ---- */

struct emit_dir {
  struct tnode *node;
  size_t start; /* its children: order[start .. start + count) */
  uint32_t count;
};

static int
dent_cmp(const void *a, const void *b)
{
  const struct tdent *x = *(const struct tdent *const *)a;
  const struct tdent *y = *(const struct tdent *const *)b;
  return strcmp(x->name, y->name); /* compares as unsigned char: bytewise */
}

static int
emit_node(struct tnode *n, uint64_t ino, lbx_tree_node_fn fn, void *ctx)
{
  n->ino = (uint32_t)ino;
  bool dev = n->type == LBX_T_CHR || n->type == LBX_T_BLK;
  uint32_t nlink = n->nlink;
  if (n->type == LBX_T_DIR) {
    nlink = 2;
    for (uint32_t i = 0; i < n->u.dir.cap; i++) {
      struct tdent *c = n->u.dir.slots[i];
      if (c && c->node->type == LBX_T_DIR)
        nlink++;
    }
  }
  lbx_node out = {
      .ino = ino,
      .type = n->type,
      .mode = n->mode,
      .uid = n->uid,
      .gid = n->gid,
      .nlink = nlink,
      .size = dev ? 0 : n->size_rdev,
      .mtime_ns = n->mtime_ns,
      .rdev = dev ? n->size_rdev : 0,
      .link = n->type == LBX_T_SYMLINK ? n->u.link : NULL,
      .digest = n->type == LBX_T_REG && n->has_digest ? n->u.digest : NULL,
      .xattrs = n->xattrs,
      .xattrs_len = n->xattrs_len,
  };
  return fn ? fn(ctx, &out) : 0;
}

int
lbx_tree_emit(lbx_tree *t, lbx_tree_node_fn node, lbx_tree_dirent_fn dirent, void *ctx)
{
  _cleanup_free_ struct tdent **order = lbx_xcalloc(t->ndents ? t->ndents : 1, sizeof *order);
  _cleanup_free_ struct emit_dir *dirs = NULL;
  size_t ndirs = 0, dcap = 0, norder = 0;
  uint64_t next = 1;
  int r;

  /* Breadth first; the dirs array is the queue. */
  dirs = lbx_xmalloc((dcap = 64) * sizeof *dirs);
  dirs[ndirs++] = (struct emit_dir){.node = t->root};
  r = emit_node(t->root, next++, node, ctx);
  for (size_t q = 0; r == 0 && q < ndirs; q++) {
    struct tdir *d = &dirs[q].node->u.dir;
    dirs[q].start = norder;
    dirs[q].count = d->count;
    for (uint32_t i = 0; i < d->cap; i++)
      if (d->slots[i])
        order[norder++] = d->slots[i];
    qsort(order + dirs[q].start, d->count, sizeof *order, dent_cmp);
    for (size_t k = dirs[q].start; r == 0 && k < norder; k++) {
      struct tnode *n = order[k]->node;
      if (n->ino)
        continue; /* a further name of a hardlinked file */
      r = emit_node(n, next++, node, ctx);
      if (n->type == LBX_T_DIR) {
        if (ndirs == dcap)
          dirs = lbx_xrealloc(dirs, (dcap *= 2) * sizeof *dirs);
        dirs[ndirs++] = (struct emit_dir){.node = n};
      }
    }
  }

  for (size_t q = 0; r == 0 && q < ndirs; q++)
    for (size_t k = dirs[q].start; r == 0 && k < dirs[q].start + dirs[q].count; k++)
      if (dirent)
        r = dirent(ctx, dirs[q].node->ino, order[k]->name, order[k]->node->ino);

  /* Numbers are per emit: clear them for the next one. */
  t->root->ino = 0;
  for (size_t k = 0; k < norder; k++)
    order[k]->node->ino = 0;
  return r;
}
