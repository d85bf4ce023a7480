/* lbx-fsstress: random file operations in a directory, each checked against
 * an in-memory model of what the tree must hold (in the spirit of xfstests'
 * fsx and fsstress). Written for box roots (fs/box.c), where every first
 * change of an image name is a copy-up, but it knows nothing of them: a
 * plain directory must pass too (the control run).
 *
 *   lbx-fsstress [-s SEED] [-n OPS] [-c EVERY] [-o DUMP] [-v] DIR
 *   lbx-fsstress -C DUMP DIR
 *
 * The model starts as a scan of DIR (so image files are in it), then each
 * step picks an operation and names from a small pool, predicts its result
 * (errno included, in the kernel's order of checks) and what the tree holds
 * after it, runs it, and checks the names it touched; every EVERY steps it
 * compares the whole tree (names, types, sizes, contents, link counts, which
 * names share an inode). Choices depend only on the seed and the model, so a
 * seed replays exactly. On a mismatch it prints the seed, the step, the tail
 * of the operation log and the difference, and exits 1. -o writes the final
 * model's description; -C compares a tree with one (after a remount). */
#include "store/util.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#define MAX_SIZE (256u << 10) /* files stay small: holes, but quick checks */
#define MAX_DEPTH 5           /* path components below DIR */
#define LOG_TAIL 24
#define HELD 2 /* files kept open across steps (and renames and unlinks) */

enum { T_REG = 1, T_DIR, T_LNK, T_OTHER };

struct kid;

/* One model inode: a directory's entries, or a file's bytes. */
struct mnode {
  int type;
  unsigned char *data; /* T_REG */
  size_t size;
  char *target;   /* T_LNK */
  unsigned nlink; /* as stat shows it (names outside DIR included) */
  unsigned names; /* names in the model; with held fds, its lifetime */
  unsigned held;
  struct kid *kids; /* T_DIR, unsorted */
  size_t nkids;
};

struct kid {
  char *name;
  struct mnode *n;
};

static struct mnode *root;
static int rootfd = -1;
static const char *rootpath;
static uint64_t seed, rng;
static unsigned long step;
static bool verbose;
static char *oplog[LOG_TAIL];
static char *touched[2];
static size_t ntouched;

static void
touch(const char *path)
{
  touched[ntouched++] = lbx_xstrdup(path);
}

static void
xfree_node(struct mnode *n)
{
  free(n->data);
  free(n->target);
  for (size_t i = 0; i < n->nkids; i++) {
    free(n->kids[i].name);
    struct mnode *c = n->kids[i].n;
    if (--c->names == 0 && !c->held)
      xfree_node(c);
  }
  free(n->kids);
  free(n);
}

/* ---- randomness: splitmix64, one stream per seed ---- */

static uint64_t
rnd64(void)
{
  uint64_t z = (rng += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static size_t
rnd(size_t below)
{
  return below ? (size_t)(rnd64() % below) : 0;
}

/* ---- the log, and failing ---- */

static void __attribute__((format(printf, 1, 2))) logop(const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  char *s = NULL;
  if (vasprintf(&s, fmt, ap) < 0)
    abort();
  va_end(ap);
  free(oplog[step % LOG_TAIL]);
  oplog[step % LOG_TAIL] = lbx_xasprintf("%lu: %s", step, s);
  if (verbose)
    fprintf(stderr, "%s\n", oplog[step % LOG_TAIL]);
  free(s);
}

static void __attribute__((noreturn, format(printf, 1, 2))) die(const char *fmt, ...)
{
  fprintf(stderr, "lbx-fsstress: FAIL seed %" PRIu64 " step %lu in %s\n", seed, step, rootpath);
  fprintf(stderr, "last operations:\n");
  for (unsigned long i = step + 1 > LOG_TAIL ? step + 1 - LOG_TAIL : 0; i <= step; i++)
    if (oplog[i % LOG_TAIL])
      fprintf(stderr, "  %s\n", oplog[i % LOG_TAIL]);
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  fflush(stderr);
  _exit(1); /* mid-step: no leak report of what the step held */
}

/* ---- model paths ("" is DIR, "a/b" below it) ---- */

static struct kid *
find_kid(struct mnode *d, const char *name)
{
  for (size_t i = 0; i < d->nkids; i++)
    if (strcmp(d->kids[i].name, name) == 0)
      return &d->kids[i];
  return NULL;
}

static struct mnode *
m_lookup(const char *path)
{
  struct mnode *n = root;
  _cleanup_free_ char *p = lbx_xstrdup(path);
  for (char *save = NULL, *c = strtok_r(p, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
    struct kid *k = n->type == T_DIR ? find_kid(n, c) : NULL;
    if (!k)
      return NULL;
    n = k->n;
  }
  return n;
}

/* The parent directory of path (which must exist) and the last name. */
static struct mnode *
m_parent(const char *path, const char **base)
{
  const char *slash = strrchr(path, '/');
  *base = slash ? slash + 1 : path;
  _cleanup_free_ char *dir = slash ? strndup(path, (size_t)(slash - path)) : lbx_xstrdup("");
  return m_lookup(dir);
}

static void
m_add(const char *path, struct mnode *n)
{
  const char *base;
  struct mnode *d = m_parent(path, &base);
  d->kids = lbx_xrealloc(d->kids, (d->nkids + 1) * sizeof *d->kids);
  d->kids[d->nkids++] = (struct kid){lbx_xstrdup(base), n};
  n->names++;
}

/* Takes the entry out of its directory; the caller drops or re-adds it. */
static struct mnode *
m_take(const char *path)
{
  const char *base;
  struct mnode *d = m_parent(path, &base);
  struct kid *k = find_kid(d, base);
  struct mnode *n = k->n;
  free(k->name);
  *k = d->kids[--d->nkids];
  n->names--;
  return n;
}

static void
m_drop(struct mnode *n)
{
  if (n->type != T_DIR && n->nlink)
    n->nlink--;
  if (n->names == 0 && !n->held)
    xfree_node(n);
}

static unsigned
depth_of(const char *path)
{
  unsigned d = *path ? 1 : 0;
  for (const char *p = path; *p; p++)
    d += *p == '/';
  return d;
}

static unsigned
height_of(const struct mnode *n)
{
  unsigned h = 0;
  for (size_t i = 0; n->type == T_DIR && i < n->nkids; i++) {
    unsigned c = height_of(n->kids[i].n);
    h = c > h ? c : h;
  }
  return h + 1;
}

/* a is b or an ancestor of b */
static bool
is_prefix(const char *a, const char *b)
{
  size_t l = strlen(a);
  return l == 0 || (strncmp(a, b, l) == 0 && (b[l] == '/' || b[l] == '\0'));
}

static char *
join(const char *dir, const char *name)
{
  return *dir ? lbx_xasprintf("%s/%s", dir, name) : lbx_xstrdup(name);
}

static char *
dirname_of(const char *path)
{
  const char *slash = strrchr(path, '/');
  return slash ? strndup(path, (size_t)(slash - path)) : lbx_xstrdup("");
}

struct paths {
  char **v;
  size_t n;
};

static void
paths_free(struct paths *p)
{
  for (size_t i = 0; i < p->n; i++)
    free(p->v[i]);
  free(p->v);
  p->v = NULL;
  p->n = 0;
}

static void
collect(struct mnode *d, const char *prefix, struct paths *dirs, struct paths *all)
{
  if (dirs) {
    dirs->v = lbx_xrealloc(dirs->v, (dirs->n + 1) * sizeof *dirs->v);
    dirs->v[dirs->n++] = lbx_xstrdup(prefix);
  }
  for (size_t i = 0; i < d->nkids; i++) {
    char *p = join(prefix, d->kids[i].name);
    if (d->kids[i].n->type == T_DIR)
      collect(d->kids[i].n, p, dirs, all);
    all->v = lbx_xrealloc(all->v, (all->n + 1) * sizeof *all->v);
    all->v[all->n++] = p;
  }
}

static const char *const pool[] = {"a", "b", "c", "d", "e", "f", "g", "h"};

/* A path in an existing directory: mostly a name it has, else one from
 * the pool (which may exist too). */
static char *
pick_path(void)
{
  __attribute__((cleanup(paths_free))) struct paths dirs = {0}, all = {0};
  collect(root, "", &dirs, &all);
  const char *d = dirs.v[rnd(dirs.n)];
  struct mnode *dn = m_lookup(d);
  if (dn->nkids && rnd(100) < 60)
    return join(d, dn->kids[rnd(dn->nkids)].name);
  return join(d, pool[rnd(LBX_ARRAY_SIZE(pool))]);
}

/* An existing name of the given type (0: any), else pick_path(). */
static char *
pick_existing(int type)
{
  __attribute__((cleanup(paths_free))) struct paths all = {0};
  collect(root, "", NULL, &all);
  size_t want = 0;
  for (size_t i = 0; i < all.n; i++)
    want += !type || m_lookup(all.v[i])->type == type;
  if (want == 0 || rnd(100) < 15)
    return pick_path();
  size_t k = rnd(want);
  for (size_t i = 0; i < all.n; i++)
    if ((!type || m_lookup(all.v[i])->type == type) && k-- == 0)
      return lbx_xstrdup(all.v[i]);
  return pick_path();
}

/* ---- describing a tree: one line a name, sorted; model and real alike ---- */

static uint64_t
fnv(const unsigned char *p, size_t n)
{
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; i++)
    h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

struct line {
  char *path;
  char *text;
  const void *key; /* model node, or NULL */
  unsigned nlink;
  dev_t dev;
  ino_t ino;
};

struct lines {
  struct line *v;
  size_t n;
};

static void
lines_free(struct lines *l)
{
  for (size_t i = 0; i < l->n; i++) {
    free(l->v[i].path);
    free(l->v[i].text);
  }
  free(l->v);
  memset(l, 0, sizeof *l);
}

static void
add_line(struct lines *l, const char *path, char *text, const void *key, unsigned nlink, dev_t dev,
         ino_t ino)
{
  l->v = lbx_xrealloc(l->v, (l->n + 1) * sizeof *l->v);
  l->v[l->n++] = (struct line){lbx_xstrdup(path), text, key, nlink, dev, ino};
}

static int
cmp_line(const void *a, const void *b)
{
  return strcmp(((const struct line *)a)->path, ((const struct line *)b)->path);
}

/* Sorts, then appends to each line of a name with links the first path
 * of its inode: which names share an inode is part of what is compared. */
static void
finish_lines(struct lines *l)
{
  if (l->n)
    qsort(l->v, l->n, sizeof *l->v, cmp_line);
  for (size_t i = 0; i < l->n; i++) {
    if (l->v[i].nlink < 2)
      continue;
    for (size_t j = 0; j <= i; j++) {
      bool same = l->v[i].key ? l->v[j].key == l->v[i].key
                              : (l->v[j].dev == l->v[i].dev && l->v[j].ino == l->v[i].ino);
      if (same) {
        char *t = lbx_xasprintf("%s as=%s", l->v[i].text, l->v[j].path);
        free(l->v[i].text);
        l->v[i].text = t;
        break;
      }
    }
  }
}

static char *
describe(int type, size_t size, unsigned nlink, uint64_t hash, const char *target)
{
  switch (type) {
  case T_DIR:
    return lbx_xstrdup("d");
  case T_REG:
    return lbx_xasprintf("f size=%zu nlink=%u hash=%016" PRIx64, size, nlink, hash);
  case T_LNK:
    return lbx_xasprintf("l ->%s nlink=%u", target, nlink);
  default:
    return lbx_xasprintf("o nlink=%u", nlink);
  }
}

static void
describe_model(struct mnode *d, const char *prefix, struct lines *l)
{
  for (size_t i = 0; i < d->nkids; i++) {
    _cleanup_free_ char *p = join(prefix, d->kids[i].name);
    struct mnode *n = d->kids[i].n;
    add_line(l, p,
             describe(n->type, n->size, n->nlink, n->type == T_REG ? fnv(n->data, n->size) : 0,
                      n->target),
             n, n->type == T_DIR ? 0 : n->nlink, 0, 0);
    if (n->type == T_DIR)
      describe_model(n, p, l);
  }
}

/* Reads a whole file through a fresh descriptor; -errno. */
static int
read_all(const char *path, unsigned char **data, size_t *size)
{
  _cleanup_close_ int fd = openat(rootfd, path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return -errno;
  struct stat st;
  size_t cap = fstat(fd, &st) == 0 && st.st_size > 0 ? (size_t)st.st_size + 1 : 4096, len = 0;
  unsigned char *buf = lbx_xmalloc(cap);
  for (;;) {
    if (len == cap)
      buf = lbx_xrealloc(buf, cap *= 2);
    ssize_t r = read(fd, buf + len, cap - len);
    if (r < 0) {
      int e = errno;
      free(buf);
      return -e;
    }
    if (r == 0)
      break;
    len += (size_t)r;
  }
  *data = buf;
  *size = len;
  return 0;
}

static char *
real_line(const char *path, const struct stat *st)
{
  if (S_ISDIR(st->st_mode))
    return describe(T_DIR, 0, 0, 0, NULL);
  if (S_ISREG(st->st_mode)) {
    _cleanup_free_ unsigned char *data = NULL;
    size_t size = 0;
    int r = read_all(path, &data, &size);
    if (r < 0)
      return lbx_xasprintf("f unreadable: %s", strerror(-r));
    if (size != (size_t)st->st_size)
      return lbx_xasprintf("f stat size=%jd but read %zu bytes", (intmax_t)st->st_size, size);
    return describe(T_REG, size, (unsigned)st->st_nlink, fnv(data, size), NULL);
  }
  if (S_ISLNK(st->st_mode)) {
    char buf[4096];
    ssize_t n = readlinkat(rootfd, path, buf, sizeof buf - 1);
    buf[n < 0 ? 0 : n] = '\0';
    return describe(T_LNK, 0, (unsigned)st->st_nlink, 0, buf);
  }
  return describe(T_OTHER, 0, (unsigned)st->st_nlink, 0, NULL);
}

static int
cmp_str(const void *a, const void *b)
{
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Lists a real directory, sorted; -errno. */
static int
list_dir(const char *path, struct paths *names)
{
  int fd = openat(rootfd, *path ? path : ".", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return -errno;
  _cleanup_closedir_ DIR *d = fdopendir(fd);
  if (!d) {
    close(fd);
    return -errno;
  }
  struct dirent *de;
  while ((de = readdir(d)))
    if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
      names->v = lbx_xrealloc(names->v, (names->n + 1) * sizeof *names->v);
      names->v[names->n++] = lbx_xstrdup(de->d_name);
    }
  if (names->n)
    qsort(names->v, names->n, sizeof *names->v, cmp_str);
  return 0;
}

static void
describe_real(const char *prefix, struct lines *l)
{
  __attribute__((cleanup(paths_free))) struct paths names = {0};
  int r = list_dir(prefix, &names);
  if (r < 0) {
    add_line(l, prefix, lbx_xasprintf("d unlistable: %s", strerror(-r)), NULL, 0, 0, 0);
    return;
  }
  for (size_t i = 0; i < names.n; i++) {
    _cleanup_free_ char *p = join(prefix, names.v[i]);
    struct stat st;
    if (fstatat(rootfd, p, &st, AT_SYMLINK_NOFOLLOW) < 0) {
      add_line(l, p, lbx_xasprintf("listed, but stat: %s", strerror(errno)), NULL, 0, 0, 0);
      continue;
    }
    add_line(l, p, real_line(p, &st), NULL, S_ISDIR(st.st_mode) ? 0 : (unsigned)st.st_nlink,
             st.st_dev, st.st_ino);
    if (S_ISDIR(st.st_mode))
      describe_real(p, l);
  }
}

/* The first difference of two descriptions, or NULL. */
static char *
diff_lines(const struct lines *want, const struct lines *got)
{
  size_t i = 0, j = 0;
  while (i < want->n || j < got->n) {
    int c = i == want->n ? 1 : j == got->n ? -1 : strcmp(want->v[i].path, got->v[j].path);
    if (c < 0)
      return lbx_xasprintf("missing: %s %s", want->v[i].path, want->v[i].text);
    if (c > 0)
      return lbx_xasprintf("unexpected: %s %s", got->v[j].path, got->v[j].text);
    if (strcmp(want->v[i].text, got->v[j].text) != 0)
      return lbx_xasprintf("%s: want %s, got %s", want->v[i].path, want->v[i].text, got->v[j].text);
    i++;
    j++;
  }
  return NULL;
}

static void
check_tree(void)
{
  __attribute__((cleanup(lines_free))) struct lines want = {0}, got = {0};
  describe_model(root, "", &want);
  describe_real("", &got);
  finish_lines(&want);
  finish_lines(&got);
  _cleanup_free_ char *d = diff_lines(&want, &got);
  if (d)
    die("whole tree: %s", d);
}

/* Checks one path (and its directory's listing) against the model. */
static void
check_path(const char *path)
{
  struct mnode *m = m_lookup(path);
  struct stat st;
  int r = fstatat(rootfd, path, &st, AT_SYMLINK_NOFOLLOW) < 0 ? errno : 0;
  if (!m) {
    if (r != ENOENT)
      die("%s: want no such name, got %s", path, r ? strerror(r) : "one");
  } else {
    if (r)
      die("%s: want one, got %s", path, strerror(r));
    _cleanup_free_ char *want = describe(m->type, m->size, m->nlink,
                                         m->type == T_REG ? fnv(m->data, m->size) : 0, m->target);
    _cleanup_free_ char *got = real_line(path, &st);
    if (strcmp(want, got) != 0)
      die("%s: want %s, got %s", path, want, got);
  }
  _cleanup_free_ char *dir = dirname_of(path);
  struct mnode *d = m_lookup(dir);
  if (!d || d->type != T_DIR)
    return;
  __attribute__((cleanup(paths_free))) struct paths names = {0};
  if ((r = list_dir(dir, &names)) < 0)
    die("%s: cannot list: %s", dir, strerror(-r));
  bool listed = false;
  for (size_t i = 0; i < names.n; i++)
    listed |= strcmp(names.v[i], strrchr(path, '/') ? strrchr(path, '/') + 1 : path) == 0;
  if (names.n != d->nkids || listed != (m != NULL))
    die("%s: listing has %zu names (%s listed), the model %zu", dir[0] ? dir : ".", names.n,
        listed ? "it" : "it not", d->nkids);
}

/* ---- scanning the starting tree ---- */

struct seen {
  dev_t dev;
  ino_t ino;
  struct mnode *n;
};
static struct seen *seen;
static size_t nseen;

static void
scan(const char *prefix)
{
  __attribute__((cleanup(paths_free))) struct paths names = {0};
  int r = list_dir(prefix, &names);
  if (r < 0) {
    fprintf(stderr, "lbx-fsstress: %s/%s: %s\n", rootpath, prefix, strerror(-r));
    exit(2);
  }
  for (size_t i = 0; i < names.n; i++) {
    _cleanup_free_ char *p = join(prefix, names.v[i]);
    struct stat st;
    if (fstatat(rootfd, p, &st, AT_SYMLINK_NOFOLLOW) < 0) {
      fprintf(stderr, "lbx-fsstress: %s/%s: %s\n", rootpath, p, strerror(errno));
      exit(2);
    }
    struct mnode *n = NULL;
    for (size_t j = 0; !S_ISDIR(st.st_mode) && j < nseen; j++)
      if (seen[j].dev == st.st_dev && seen[j].ino == st.st_ino)
        n = seen[j].n;
    if (!n) {
      n = lbx_xcalloc(1, sizeof *n);
      n->nlink = (unsigned)st.st_nlink;
      if (S_ISDIR(st.st_mode)) {
        n->type = T_DIR;
      } else if (S_ISREG(st.st_mode)) {
        n->type = T_REG;
        if ((r = read_all(p, &n->data, &n->size)) < 0) {
          fprintf(stderr, "lbx-fsstress: %s/%s: %s\n", rootpath, p, strerror(-r));
          exit(2);
        }
      } else if (S_ISLNK(st.st_mode)) {
        n->type = T_LNK;
        char buf[4096];
        ssize_t len = readlinkat(rootfd, p, buf, sizeof buf - 1);
        buf[len < 0 ? 0 : len] = '\0';
        n->target = lbx_xstrdup(buf);
      } else {
        n->type = T_OTHER;
      }
      if (!S_ISDIR(st.st_mode)) {
        seen = lbx_xrealloc(seen, (nseen + 1) * sizeof *seen);
        seen[nseen++] = (struct seen){st.st_dev, st.st_ino, n};
      }
    }
    m_add(p, n);
    if (n->type == T_DIR)
      scan(p);
  }
}

/* ---- operations: each predicts, runs, compares errno, updates the model ---- */

static void
expect(const char *what, int want, int got)
{
  if (want != got)
    die("%s: want %s, got %s", what, want ? strerror(want) : "success",
        got ? strerror(got) : "success");
}

static void
fill(unsigned char *p, size_t n)
{
  for (size_t i = 0; i < n; i++)
    p[i] = (unsigned char)(rnd64() | 1); /* never 0: a hole must read as zeros */
}

static void
m_resize(struct mnode *m, size_t size)
{
  if (size > m->size) {
    m->data = lbx_xrealloc(m->data, size ? size : 1);
    memset(m->data + m->size, 0, size - m->size);
  }
  m->size = size;
}

static void
op_create(void)
{
  _cleanup_free_ char *p = pick_path();
  struct mnode *m = m_lookup(p);
  int flags = O_CREAT | O_WRONLY | O_CLOEXEC;
  size_t f = rnd(3);
  flags |= f == 1 ? O_EXCL : f == 2 ? O_TRUNC : 0;
  logop("create %s%s", p, f == 1 ? " O_EXCL" : f == 2 ? " O_TRUNC" : "");
  touch(p);
  if (m && (m->type == T_LNK || m->type == T_OTHER) && !(flags & O_EXCL))
    return; /* would follow the link, or open a fifo */
  if (!m && depth_of(p) > MAX_DEPTH)
    return;
  int want = !m ? 0 : (flags & O_EXCL) ? EEXIST : m->type == T_DIR ? EISDIR : 0;
  int fd = openat(rootfd, p, flags, 0644);
  int got = fd < 0 ? errno : 0;
  if (fd >= 0)
    close(fd);
  expect("create", want, got);
  if (want)
    return;
  if (!m) {
    m = lbx_xcalloc(1, sizeof *m);
    m->type = T_REG;
    m->nlink = 1;
    m_add(p, m);
  } else if (flags & O_TRUNC) {
    m->size = 0;
  }
}

static int
write_full(int fd, const unsigned char *p, size_t n, off_t off)
{
  while (n) {
    ssize_t w = pwrite(fd, p, n, off);
    if (w <= 0)
      return w < 0 ? errno : EIO;
    p += w;
    n -= (size_t)w;
    off += w;
  }
  return 0;
}

/* An offset and length for a write into a file of the given size:
 * mostly inside or just past it, sometimes far past it (a hole). */
static void
pick_range(size_t size, size_t *off, size_t *len)
{
  size_t k = rnd(10);
  *len = 1 + (k < 5 ? rnd(512) : rnd(16384));
  *off = k < 6 ? rnd(size + 1) : k < 9 ? size + rnd(16384) : rnd(MAX_SIZE);
  if (*off + *len > MAX_SIZE)
    *off = MAX_SIZE - *len;
}

static void
op_write(void)
{
  _cleanup_free_ char *p = pick_existing(T_REG);
  struct mnode *m = m_lookup(p);
  size_t off, len;
  pick_range(m && m->type == T_REG ? m->size : 0, &off, &len);
  logop("write %s off=%zu len=%zu", p, off, len);
  touch(p);
  if (m && (m->type == T_LNK || m->type == T_OTHER))
    return;
  int want = !m ? ENOENT : m->type == T_DIR ? EISDIR : 0;
  _cleanup_free_ unsigned char *buf = lbx_xmalloc(len);
  fill(buf, len);
  _cleanup_close_ int fd = openat(rootfd, p, (rnd(2) ? O_WRONLY : O_RDWR) | O_CLOEXEC);
  int got = fd < 0 ? errno : write_full(fd, buf, len, (off_t)off);
  expect("write", want, got);
  if (want)
    return;
  if (off + len > m->size)
    m_resize(m, off + len);
  memcpy(m->data + off, buf, len);
}

static void
op_truncate(void)
{
  _cleanup_free_ char *p = pick_existing(T_REG);
  struct mnode *m = m_lookup(p);
  size_t size = m && m->type == T_REG ? m->size : 0, k = rnd(4);
  size = k == 0 ? 0 : k == 1 ? rnd(size + 1) : k == 2 ? size + rnd(16384) : rnd(MAX_SIZE);
  if (size > MAX_SIZE)
    size = MAX_SIZE;
  bool by_fd = rnd(2);
  logop("truncate %s %zu%s", p, size, by_fd ? " (ftruncate)" : "");
  touch(p);
  if (m && (m->type == T_LNK || m->type == T_OTHER))
    return;
  int want = !m ? ENOENT : m->type == T_DIR ? EISDIR : 0, got;
  if (by_fd) {
    _cleanup_close_ int fd = openat(rootfd, p, O_WRONLY | O_CLOEXEC);
    got = fd < 0 ? errno : ftruncate(fd, (off_t)size) < 0 ? errno : 0;
  } else {
    _cleanup_free_ char *full = lbx_xasprintf("%s/%s", rootpath, p);
    got = truncate(full, (off_t)size) < 0 ? errno : 0;
  }
  expect("truncate", want, got);
  if (!want)
    m_resize(m, size);
}

/* rename(2) and renameat2(2): the errors in the order the kernel checks. */
static void
op_rename(void)
{
  _cleanup_free_ char *a = rnd(100) < 85 ? pick_existing(0) : pick_path();
  _cleanup_free_ char *b = pick_path();
  size_t k = rnd(10);
  unsigned flags = k < 6 ? 0 : k < 8 ? RENAME_NOREPLACE : RENAME_EXCHANGE;
  logop("rename %s %s%s", a, b,
        flags == RENAME_NOREPLACE  ? " NOREPLACE"
        : flags == RENAME_EXCHANGE ? " EXCHANGE"
                                   : "");
  touch(a);
  touch(b);
  struct mnode *ma = m_lookup(a), *mb = m_lookup(b);
  _cleanup_free_ char *pa = dirname_of(a);
  _cleanup_free_ char *pb = dirname_of(b);
  /* lock_rename's trap: the child of the upper parent on the way to the other */
  _cleanup_free_ char *trap = NULL;
  if (strcmp(pa, pb) != 0 && (is_prefix(pa, pb) || is_prefix(pb, pa))) {
    const char *up = is_prefix(pa, pb) ? pa : pb, *down = is_prefix(pa, pb) ? pb : pa;
    const char *rest = down + strlen(up) + (*up ? 1 : 0);
    const char *slash = strchr(rest, '/');
    _cleanup_free_ char *first = slash ? strndup(rest, (size_t)(slash - rest)) : lbx_xstrdup(rest);
    trap = join(up, first);
  }
  int want = 0;
  if (!ma)
    want = ENOENT;
  else if ((flags & RENAME_NOREPLACE) && mb)
    want = EEXIST;
  else if ((flags & RENAME_EXCHANGE) && !mb)
    want = ENOENT;
  else if (trap && strcmp(trap, a) == 0)
    want = EINVAL;
  else if (trap && strcmp(trap, b) == 0)
    want = (flags & RENAME_EXCHANGE) ? EINVAL : ENOTEMPTY;
  else if (ma == mb)
    want = 0; /* one inode (the same name, or hard links): nothing happens */
  else if (mb && !(flags & RENAME_EXCHANGE) && ma->type == T_DIR && mb->type != T_DIR)
    want = ENOTDIR;
  else if (mb && !(flags & RENAME_EXCHANGE) && ma->type != T_DIR && mb->type == T_DIR)
    want = EISDIR;
  else if (mb && !(flags & RENAME_EXCHANGE) && mb->type == T_DIR && mb->nkids)
    want = ENOTEMPTY;
  /* keep the tree shallow: skip moves that would deepen it */
  if (!want && ma != mb &&
      (depth_of(b) + height_of(ma) > MAX_DEPTH + 1 ||
       (flags & RENAME_EXCHANGE && depth_of(a) + height_of(mb) > MAX_DEPTH + 1)))
    return;
  int got = renameat2(rootfd, a, rootfd, b, flags) < 0 ? errno : 0;
  expect("rename", want, got);
  if (want || ma == mb)
    return;
  if (flags & RENAME_EXCHANGE) {
    /* (the parent first: argument order is unspecified) */
    const char *base;
    struct mnode *d = m_parent(a, &base);
    find_kid(d, base)->n = mb;
    d = m_parent(b, &base);
    find_kid(d, base)->n = ma;
    return;
  }
  struct mnode *moved = m_take(a);
  if (mb)
    m_drop(m_take(b));
  m_add(b, moved);
}

static void
op_link(void)
{
  _cleanup_free_ char *a = rnd(100) < 80 ? pick_existing(T_REG) : pick_existing(0);
  _cleanup_free_ char *b = pick_path();
  logop("link %s %s", a, b);
  touch(a);
  touch(b);
  struct mnode *ma = m_lookup(a), *mb = m_lookup(b);
  int want = !ma ? ENOENT : mb ? EEXIST : ma->type == T_DIR ? EPERM : 0;
  int got = linkat(rootfd, a, rootfd, b, 0) < 0 ? errno : 0;
  expect("link", want, got);
  if (want)
    return;
  ma->nlink++;
  m_add(b, ma);
}

static void
op_symlink(void)
{
  _cleanup_free_ char *p = pick_path();
  _cleanup_free_ char *target = lbx_xasprintf("t%zu", rnd(1000));
  logop("symlink %s -> %s", p, target);
  touch(p);
  struct mnode *m = m_lookup(p);
  if (!m && depth_of(p) > MAX_DEPTH)
    return;
  int want = m ? EEXIST : 0;
  expect("symlink", want, symlinkat(target, rootfd, p) < 0 ? errno : 0);
  if (want)
    return;
  m = lbx_xcalloc(1, sizeof *m);
  m->type = T_LNK;
  m->nlink = 1;
  m->target = lbx_xstrdup(target);
  m_add(p, m);
}

static void
op_unlink(void)
{
  _cleanup_free_ char *p = pick_existing(0);
  logop("unlink %s", p);
  touch(p);
  struct mnode *m = m_lookup(p);
  int want = !m ? ENOENT : m->type == T_DIR ? EISDIR : 0;
  expect("unlink", want, unlinkat(rootfd, p, 0) < 0 ? errno : 0);
  if (!want)
    m_drop(m_take(p));
}

static void
op_mkdir(void)
{
  _cleanup_free_ char *p = pick_path();
  logop("mkdir %s", p);
  touch(p);
  struct mnode *m = m_lookup(p);
  if (!m && depth_of(p) > MAX_DEPTH)
    return;
  int want = m ? EEXIST : 0;
  expect("mkdir", want, mkdirat(rootfd, p, 0755) < 0 ? errno : 0);
  if (want)
    return;
  m = lbx_xcalloc(1, sizeof *m);
  m->type = T_DIR;
  m_add(p, m);
}

static void
op_rmdir(void)
{
  _cleanup_free_ char *p = pick_existing(T_DIR);
  logop("rmdir %s", p);
  touch(p);
  struct mnode *m = m_lookup(p);
  int want = !m ? ENOENT : m->type != T_DIR ? ENOTDIR : m->nkids ? ENOTEMPTY : 0;
  expect("rmdir", want, unlinkat(rootfd, p, AT_REMOVEDIR) < 0 ? errno : 0);
  if (!want)
    m_drop(m_take(p));
}

static void
op_fsync(void)
{
  _cleanup_free_ char *p = pick_existing(0);
  struct mnode *m = m_lookup(p);
  bool data = rnd(2);
  logop("%s %s", data ? "fdatasync" : "fsync", p);
  if (m && (m->type == T_LNK || m->type == T_OTHER))
    return;
  int want = m ? 0 : ENOENT;
  _cleanup_close_ int fd =
      openat(rootfd, p, (m && m->type == T_DIR ? O_RDONLY : O_RDWR) | O_CLOEXEC);
  int got = fd < 0 ? errno : (data ? fdatasync(fd) : fsync(fd)) < 0 ? errno : 0;
  expect("fsync", want, got);
}

static void
op_read(void)
{
  _cleanup_free_ char *p = pick_existing(T_REG);
  struct mnode *m = m_lookup(p);
  size_t off, len;
  pick_range(m && m->type == T_REG ? m->size : 0, &off, &len);
  bool map = rnd(2);
  logop("%s %s off=%zu len=%zu", map ? "mmap-read" : "pread", p, off, len);
  if (m && (m->type == T_LNK || m->type == T_OTHER))
    return;
  int want = !m ? ENOENT : 0;
  _cleanup_close_ int fd = openat(rootfd, p, O_RDONLY | O_CLOEXEC);
  expect("open for reading", want, fd < 0 ? errno : 0);
  if (want)
    return;
  if (m->type == T_DIR) {
    char c;
    expect("read of a directory", EISDIR, pread(fd, &c, 1, 0) < 0 ? errno : 0);
    return;
  }
  size_t expect_len = off >= m->size ? 0 : m->size - off < len ? m->size - off : len;
  _cleanup_free_ unsigned char *buf = lbx_xmalloc(len);
  size_t got = 0;
  if (map) {
    if (m->size == 0)
      return;
    void *at = mmap(NULL, m->size, PROT_READ, MAP_SHARED, fd, 0);
    if (at == MAP_FAILED)
      die("mmap %s: %s", p, strerror(errno));
    memcpy(buf, (unsigned char *)at + (off < m->size ? off : m->size), expect_len);
    munmap(at, m->size);
    got = expect_len;
  } else {
    while (got < len) {
      ssize_t r = pread(fd, buf + got, len - got, (off_t)(off + got));
      if (r < 0)
        die("pread %s: %s", p, strerror(errno));
      if (r == 0)
        break;
      got += (size_t)r;
    }
  }
  if (got != expect_len)
    die("read %s: want %zu bytes, got %zu", p, expect_len, got);
  for (size_t i = 0; i < got; i++)
    if (buf[i] != m->data[off + i])
      die("read %s: byte %zu: want %02x, got %02x", p, off + i, m->data[off + i], buf[i]);
}

static void
op_mmap_write(void)
{
  _cleanup_free_ char *p = pick_existing(T_REG);
  struct mnode *m = m_lookup(p);
  if (!m || m->type != T_REG || m->size == 0)
    return;
  size_t off = rnd(m->size), len = 1 + rnd(m->size - off < 8192 ? m->size - off : 8192);
  logop("mmap-write %s off=%zu len=%zu", p, off, len);
  touch(p);
  _cleanup_close_ int fd = openat(rootfd, p, O_RDWR | O_CLOEXEC);
  if (fd < 0)
    die("open %s: %s", p, strerror(errno));
  unsigned char *at = mmap(NULL, m->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (at == MAP_FAILED)
    die("mmap %s: %s", p, strerror(errno));
  fill(m->data + off, len);
  memcpy(at + off, m->data + off, len);
  if (msync(at, m->size, MS_SYNC) < 0)
    die("msync %s: %s", p, strerror(errno));
  munmap(at, m->size);
}

/* Files held open: they must keep working after their names are renamed
 * over or unlinked, and show the writes made through their other names. */
static struct {
  int fd;
  struct mnode *m;
  char *path; /* the name it was opened by, for the log */
} held[HELD];

static void
op_held(void)
{
  size_t i = rnd(HELD);
  if (held[i].fd < 0) {
    _cleanup_free_ char *p = pick_existing(T_REG);
    struct mnode *m = m_lookup(p);
    logop("hold %zu: open %s", i, p);
    if (!m || m->type != T_REG)
      return;
    if ((held[i].fd = openat(rootfd, p, O_RDWR | O_CLOEXEC)) < 0)
      die("open %s: %s", p, strerror(errno));
    held[i].m = m;
    held[i].path = lbx_xstrdup(p);
    m->held++;
    return;
  }
  struct mnode *m = held[i].m;
  size_t k = rnd(10);
  if (k < 4) {
    size_t off, len;
    pick_range(m->size, &off, &len);
    logop("hold %zu (%s): pwrite off=%zu len=%zu", i, held[i].path, off, len);
    _cleanup_free_ unsigned char *buf = lbx_xmalloc(len);
    fill(buf, len);
    expect("held write", 0, write_full(held[i].fd, buf, len, (off_t)off));
    if (off + len > m->size)
      m_resize(m, off + len);
    memcpy(m->data + off, buf, len);
  } else if (k < 6) {
    logop("hold %zu (%s): fstat and read all", i, held[i].path);
    struct stat st;
    if (fstat(held[i].fd, &st) < 0)
      die("fstat: %s", strerror(errno));
    if ((size_t)st.st_size != m->size)
      die("held %s: fstat size %jd, want %zu", held[i].path, (intmax_t)st.st_size, m->size);
    _cleanup_free_ unsigned char *buf = lbx_xmalloc(m->size + 1);
    size_t got = 0;
    ssize_t r;
    while ((r = pread(held[i].fd, buf + got, m->size + 1 - got, (off_t)got)) > 0)
      got += (size_t)r;
    if (r < 0 || got != m->size || (got && memcmp(buf, m->data, got) != 0))
      die("held %s: read %zu bytes (%s), want %zu, %s", held[i].path, got,
          r < 0 ? strerror(errno) : "ok", m->size,
          got == m->size ? "contents differ" : "sizes differ");
  } else if (k < 8) {
    size_t size = rnd(m->size + 4096);
    logop("hold %zu (%s): ftruncate %zu", i, held[i].path, size);
    expect("held ftruncate", 0, ftruncate(held[i].fd, (off_t)size) < 0 ? errno : 0);
    m_resize(m, size);
  } else {
    logop("hold %zu (%s): close", i, held[i].path);
    close(held[i].fd);
    held[i].fd = -1;
    free(held[i].path);
    if (--m->held == 0 && m->names == 0)
      xfree_node(m);
  }
}

/* ---- the run ---- */

/* The names a step changed, and what a renamed directory holds: checked
 * right after it (the rest waits for the whole-tree check). */
static void
check_touched(void)
{
  for (size_t i = 0; i < ntouched; i++) {
    check_path(touched[i]);
    struct mnode *m = m_lookup(touched[i]);
    if (m && m->type == T_DIR) {
      __attribute__((cleanup(paths_free))) struct paths all = {0};
      collect(m, touched[i], NULL, &all);
      for (size_t j = 0; j < all.n; j++)
        check_path(all.v[j]);
    }
    free(touched[i]);
  }
  ntouched = 0;
}

static int
usage(void)
{
  fprintf(stderr, "usage: lbx-fsstress [-s SEED] [-n OPS] [-c EVERY] [-o DUMP] [-v] DIR\n"
                  "       lbx-fsstress -C DUMP DIR\n");
  return 2;
}

static int
check_dump(const char *dump)
{
  _cleanup_fclose_ FILE *f = fopen(dump, "re");
  if (!f) {
    fprintf(stderr, "lbx-fsstress: %s: %s\n", dump, strerror(errno));
    return 2;
  }
  __attribute__((cleanup(lines_free))) struct lines want = {0}, got = {0};
  char *line = NULL;
  size_t cap = 0;
  ssize_t len;
  while ((len = getline(&line, &cap, f)) > 0) {
    line[len - 1] = '\0';
    char *tab = strchr(line, '\t');
    if (!tab)
      continue;
    *tab = '\0';
    add_line(&want, line, lbx_xstrdup(tab + 1), NULL, 0, 0, 0);
  }
  free(line);
  describe_real("", &got);
  finish_lines(&got);
  _cleanup_free_ char *d = diff_lines(&want, &got);
  if (d) {
    fprintf(stderr, "lbx-fsstress: %s differs from %s: %s\n", rootpath, dump, d);
    return 1;
  }
  return 0;
}

int
main(int argc, char **argv)
{
  unsigned long ops = 1000, every = 50;
  const char *out = NULL, *check = NULL;
  int c;
  while ((c = getopt(argc, argv, "s:n:c:o:C:v")) != -1) {
    switch (c) {
    case 's':
      seed = strtoull(optarg, NULL, 0);
      break;
    case 'n':
      ops = strtoul(optarg, NULL, 0);
      break;
    case 'c':
      every = strtoul(optarg, NULL, 0);
      break;
    case 'o':
      out = optarg;
      break;
    case 'C':
      check = optarg;
      break;
    case 'v':
      verbose = true;
      break;
    default:
      return usage();
    }
  }
  if (optind + 1 != argc)
    return usage();
  rootpath = argv[optind];
  rootfd = open(rootpath, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0) {
    fprintf(stderr, "lbx-fsstress: %s: %s\n", rootpath, strerror(errno));
    return 2;
  }
  if (check)
    return check_dump(check);
  rng = seed;
  root = lbx_xcalloc(1, sizeof *root);
  root->type = T_DIR;
  root->names = 1;
  scan("");
  free(seen);
  for (size_t i = 0; i < HELD; i++)
    held[i].fd = -1;
  check_tree();
  for (step = 1; step <= ops; step++) {
    size_t k = rnd(100);
    if (k < 10)
      op_create();
    else if (k < 26)
      op_write();
    else if (k < 33)
      op_truncate();
    else if (k < 46)
      op_rename();
    else if (k < 51)
      op_link();
    else if (k < 54)
      op_symlink();
    else if (k < 62)
      op_unlink();
    else if (k < 69)
      op_mkdir();
    else if (k < 74)
      op_rmdir();
    else if (k < 77)
      op_fsync();
    else if (k < 88)
      op_read();
    else if (k < 92)
      op_mmap_write();
    else
      op_held();
    check_touched();
    if (every && step % every == 0)
      check_tree();
  }
  step--;
  for (size_t i = 0; i < HELD; i++)
    if (held[i].fd >= 0) {
      close(held[i].fd);
      free(held[i].path);
      if (--held[i].m->held == 0 && held[i].m->names == 0)
        xfree_node(held[i].m);
    }
  check_tree();
  if (out) {
    _cleanup_fclose_ FILE *f = fopen(out, "we");
    if (!f) {
      fprintf(stderr, "lbx-fsstress: %s: %s\n", out, strerror(errno));
      return 2;
    }
    __attribute__((cleanup(lines_free))) struct lines want = {0};
    describe_model(root, "", &want);
    finish_lines(&want);
    for (size_t i = 0; i < want.n; i++)
      fprintf(f, "%s\t%s\n", want.v[i].path, want.v[i].text);
    if (fflush(f) != 0)
      return 2;
  }
  printf("lbx-fsstress: seed %" PRIu64 ": %lu operations in %s checked\n", seed, ops, rootpath);
  xfree_node(root);
  for (size_t i = 0; i < LOG_TAIL; i++)
    free(oplog[i]);
  return 0;
}
