/* The tar reader against archives built byte by byte here (every header
 * kind, pax and GNU extensions, hostile and truncated input), read through
 * a source that hands out a few bytes at a time and through one that hands
 * out everything, and, when GNU tar is installed, against its output. */
#include "index/tar.h"
#include "tap.h"

#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>

/* ---- archive builder ---- */

typedef struct buf {
  uint8_t *d;
  size_t n, cap;
} buf;

static void
put(buf *b, const void *p, size_t n)
{
  if (b->n + n > b->cap) {
    b->cap = (b->n + n) * 2 + 1024;
    b->d = lbx_xrealloc(b->d, b->cap);
  }
  if (n)
    memcpy(b->d + b->n, p, n);
  b->n += n;
}

static void
pad(buf *b)
{
  static const uint8_t zero[512];
  put(b, zero, (512 - b->n % 512) % 512);
}

static void
end(buf *b)
{
  static const uint8_t zero[1024];
  put(b, zero, sizeof zero);
}

enum fmt { F_USTAR, F_GNU, F_V7 };

typedef struct hspec {
  const char *name, *link, *prefix, *uname, *gname;
  char type;
  unsigned mode, uid, gid, devmajor, devminor;
  uint64_t size;
  int64_t mtime;
  enum fmt fmt;
  bool b256_size, b256_uid, b256_mtime; /* GNU base-256 numbers */
  bool signed_sum, bad_sum;
  const char *raw_size; /* a literal size field */
} hspec;

static void
octal(uint8_t *f, size_t len, uint64_t v)
{
  char tmp[32];
  snprintf(tmp, sizeof tmp, "%0*llo", (int)len - 1, (unsigned long long)v);
  memcpy(f, tmp, len - 1);
  f[len - 1] = '\0';
}

static void
b256(uint8_t *f, size_t len, int64_t v)
{
  uint64_t u = (uint64_t)v;
  for (size_t i = len; i-- > 0;) {
    f[i] = (uint8_t)u;
    u = v < 0 ? (u >> 8) | 0xff00000000000000ull : u >> 8;
  }
  f[0] |= 0x80;
}

static void
header(buf *b, const hspec *s)
{
  uint8_t h[512] = {0};
  if (s->name)
    memcpy(h, s->name, strnlen(s->name, 100));
  octal(h + 100, 8, s->mode);
  if (s->b256_uid) {
    b256(h + 108, 8, s->uid);
    b256(h + 116, 8, s->gid);
  } else {
    octal(h + 108, 8, s->uid);
    octal(h + 116, 8, s->gid);
  }
  if (s->raw_size)
    memcpy(h + 124, s->raw_size, strnlen(s->raw_size, 12));
  else if (s->b256_size)
    b256(h + 124, 12, (int64_t)s->size);
  else
    octal(h + 124, 12, s->size);
  if (s->b256_mtime)
    b256(h + 136, 12, s->mtime);
  else
    octal(h + 136, 12, (uint64_t)s->mtime);
  h[156] = (uint8_t)s->type;
  if (s->link)
    memcpy(h + 157, s->link, strnlen(s->link, 100));
  if (s->fmt == F_USTAR)
    memcpy(h + 257,
           "ustar\0"
           "00",
           8);
  else if (s->fmt == F_GNU)
    memcpy(h + 257, "ustar  \0", 8);
  if (s->fmt != F_V7) {
    if (s->uname)
      memcpy(h + 265, s->uname, strlen(s->uname));
    if (s->gname)
      memcpy(h + 297, s->gname, strlen(s->gname));
    octal(h + 329, 8, s->devmajor);
    octal(h + 337, 8, s->devminor);
  }
  if (s->prefix)
    memcpy(h + 345, s->prefix, strnlen(s->prefix, 155));
  memset(h + 148, ' ', 8);
  long sum = 0;
  for (int i = 0; i < 512; i++)
    sum += s->signed_sum ? (signed char)h[i] : h[i];
  if (s->bad_sum)
    sum++;
  snprintf((char *)h + 148, 8, "%06lo", (unsigned long)sum);
  h[155] = ' ';
  put(b, h, 512);
}

static void
file(buf *b, hspec s, const char *data)
{
  if (data && !s.size && !s.raw_size)
    s.size = strlen(data);
  header(b, &s);
  if (data) {
    put(b, data, strlen(data));
    pad(b);
  }
}

static int
ndigits(size_t n)
{
  int d = 1;
  while (n >= 10) {
    n /= 10;
    d++;
  }
  return d;
}

/* One "LEN key=value\n" record; value may hold any byte. */
static void
rec(buf *r, const char *key, const void *val, size_t vlen)
{
  size_t body = strlen(key) + vlen + 3, len = body + 1;
  while ((size_t)ndigits(len) + body != len)
    len = body + (size_t)ndigits(len);
  char num[32];
  snprintf(num, sizeof num, "%zu ", len);
  put(r, num, strlen(num));
  put(r, key, strlen(key));
  put(r, "=", 1);
  put(r, val, vlen);
  put(r, "\n", 1);
}

static void
rec_s(buf *r, const char *key, const char *val)
{
  rec(r, key, val, strlen(val));
}

static void
pax(buf *b, char type, const char *name, buf *recs)
{
  header(b, &(hspec){.name = name, .type = type, .mode = 0644, .size = recs->n});
  put(b, recs->d, recs->n);
  pad(b);
  free(recs->d);
  *recs = (buf){0};
}

static void
gnu_long(buf *b, char type, const char *s)
{
  header(b, &(hspec){.name = "././@LongLink", .type = type, .fmt = F_GNU, .size = strlen(s) + 1});
  put(b, s, strlen(s) + 1);
  pad(b);
}

static char *
repeat(const char *unit, int times)
{
  buf b = {0};
  for (int i = 0; i < times; i++)
    put(&b, unit, strlen(unit));
  put(&b, "", 1);
  return (char *)b.d;
}

/* ---- sources ---- */

enum { BIG, SMALL };

typedef struct src {
  const uint8_t *d;
  size_t n, pos;
  int mode;
  unsigned k;
  unsigned calls;
} src;

static ssize_t
src_read(void *ctx, void *out, size_t len, lbx_err **err)
{
  (void)err;
  src *s = ctx;
  s->calls++;
  size_t left = s->n - s->pos;
  size_t n = s->mode == SMALL ? 1 + s->k++ % 7 : left;
  if (n > len)
    n = len;
  if (n > left)
    n = left;
  if (n)
    memcpy(out, s->d + s->pos, n);
  s->pos += n;
  return (ssize_t)n;
}

static ssize_t
src_fail(void *ctx, void *out, size_t len, lbx_err **err)
{
  (void)ctx, (void)out, (void)len;
  return lbx_error(err, EIO, "layer x: gzip: corrupt data");
}

/* ---- dumping ---- */

static void
esc(buf *o, const uint8_t *p, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    char tmp[8];
    if (p[i] > ' ' && p[i] < 0x7f && p[i] != '\\')
      put(o, &p[i], 1);
    else {
      snprintf(tmp, sizeof tmp, "\\x%02x", p[i]);
      put(o, tmp, 4);
    }
  }
}

static void putf(buf *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void
putf(buf *o, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  char *s;
  if (vasprintf(&s, fmt, ap) < 0)
    abort();
  va_end(ap);
  put(o, s, strlen(s));
  free(s);
}

enum rmode { READ_ALL, READ_NONE, READ_SOME };

/* One line per entry; " d=DATA" ends the line when data is read. On error,
 * *errmsg gets the message and the lines so far are returned. */
static char *
dump_src(lbx_read_fn fn, src *s, enum rmode rm, char **errmsg)
{
  _cleanup_(lbx_tar_freep) lbx_tar *t = lbx_tar_new("test.tar", fn, s);
  _cleanup_error_ lbx_err *err = NULL;
  buf o = {0};
  const lbx_tar_entry *e;
  int r;
  *errmsg = NULL;
  static const char tc[] = "?fdlhcbp";
  while ((r = lbx_tar_next(t, &e, &err)) > 0) {
    putf(&o, "%c ", tc[e->type]);
    esc(&o, (const uint8_t *)e->path, strlen(e->path));
    if (e->linkname) {
      put(&o, " -> ", 4);
      esc(&o, (const uint8_t *)e->linkname, strlen(e->linkname));
    }
    putf(&o, " m=%o o=%llu", e->mode, (unsigned long long)e->offset);
    if (e->size)
      putf(&o, " s=%llu", (unsigned long long)e->size);
    if (e->uid || e->gid)
      putf(&o, " id=%u/%u", e->uid, e->gid);
    if (e->uname || e->gname)
      putf(&o, " n=%s/%s", e->uname ? e->uname : "-", e->gname ? e->gname : "-");
    if (e->mtime_sec || e->mtime_nsec)
      putf(&o, " t=%lld.%09u", (long long)e->mtime_sec, e->mtime_nsec);
    if (e->type == LBX_TAR_CHR || e->type == LBX_TAR_BLK)
      putf(&o, " dev=%u,%u", e->devmajor, e->devminor);
    for (size_t i = 0; i < e->nxattrs; i++) {
      putf(&o, " x:%s=", e->xattrs[i].name);
      esc(&o, e->xattrs[i].value, e->xattrs[i].len);
    }
    if (rm != READ_NONE) {
      uint8_t tmp[5000];
      buf data = {0};
      ssize_t n;
      size_t want = rm == READ_SOME ? 3 : SIZE_MAX, got = 0;
      /* vary read sizes: odd small ones, then large */
      size_t sizes[] = {1, 3, 511, 5000, 2};
      unsigned k = 0;
      while (got < want && (n = lbx_tar_read(t, tmp, sizes[k++ % 5], &err)) > 0) {
        put(&data, tmp, (size_t)n);
        got += (size_t)n;
      }
      if (err) {
        free(data.d);
        break;
      }
      if (rm == READ_ALL && e->type == LBX_TAR_REG) {
        if (data.n != e->size)
          putf(&o, " SHORT");
        put(&o, " d=", 3);
        esc(&o, data.d, data.n);
      }
      free(data.d);
    }
    put(&o, "\n", 1);
  }
  if (r == 0 && !err) {
    /* the end stays the end */
    if (lbx_tar_next(t, &e, &err) != 0 || e)
      putf(&o, "END NOT STICKY\n");
  }
  if (err)
    *errmsg = lbx_xstrdup(err->msg);
  else if (r < 0)
    *errmsg = lbx_xstrdup("-1 without an error");
  put(&o, "", 1);
  return (char *)o.d;
}

static char *
dump(const buf *a, int mode, enum rmode rm, char **errmsg)
{
  src s = {.d = a->d, .n = a->n, .mode = mode};
  return dump_src(src_read, &s, rm, errmsg);
}

/* expected without the " d=..." ends of lines */
static char *
strip_data(const char *s)
{
  buf o = {0};
  while (*s) {
    const char *nl = strchr(s, '\n');
    size_t len = nl ? (size_t)(nl - s) : strlen(s);
    const char *d = strstr(s, " d=");
    size_t keep = d && d < s + len ? (size_t)(d - s) : len;
    put(&o, s, keep);
    if (nl)
      put(&o, "\n", 1);
    s += len + (nl ? 1 : 0);
  }
  put(&o, "", 1);
  return (char *)o.d;
}

/* Reads a in every way and compares with want. */
static void
check(const char *what, buf *a, const char *want)
{
  _cleanup_free_ char *nodata = strip_data(want);
  struct {
    int mode;
    enum rmode rm;
    const char *label;
  } ways[] = {
      {BIG, READ_ALL, "big chunks"},
      {SMALL, READ_ALL, "small chunks"},
      {BIG, READ_NONE, "big, data skipped"},
      {SMALL, READ_SOME, "small, data partly read"},
  };
  for (size_t i = 0; i < LBX_ARRAY_SIZE(ways); i++) {
    char *msg;
    _cleanup_free_ char *got = dump(a, ways[i].mode, ways[i].rm, &msg);
    tap_is_str(msg, NULL, "%s (%s): no error", what, ways[i].label);
    tap_is_str(got, ways[i].rm == READ_ALL ? want : nodata, "%s (%s): entries", what,
               ways[i].label);
    free(msg);
  }
  free(a->d);
  *a = (buf){0};
}

/* Reads a (both chunkings) and expects an error containing every given
 * fragment. */
static void
check_err_n(const char *what, buf *a, size_t cut, const char *const *frags)
{
  size_t n = cut ? cut : a->n;
  buf c = {.d = a->d, .n = n};
  for (int mode = BIG; mode <= SMALL; mode++) {
    for (enum rmode rm = READ_ALL; rm <= READ_NONE; rm++) {
      char *msg;
      free(dump(&c, mode, rm, &msg));
      bool ok = msg != NULL;
      for (const char *const *f = frags; ok && *f; f++)
        ok = strstr(msg, *f) != NULL;
      tap_ok(ok, "%s (%s, %s): error", what, mode == BIG ? "big" : "small",
             rm == READ_ALL ? "read" : "skip");
      if (!ok)
        printf("#   got \"%s\"\n", msg ? msg : "(no error)");
      free(msg);
    }
  }
}

#define check_err(what, a, cut, ...)                                                               \
  check_err_n(what, a, cut, (const char *const[]){__VA_ARGS__, NULL})

/* ---- tests ---- */

static void
test_types(void)
{
  buf a = {0};
  file(&a,
       (hspec){.name = "hello.txt",
               .type = '0',
               .mode = 0100755,
               .uid = 1000,
               .gid = 100,
               .uname = "alice",
               .gname = "users",
               .mtime = 1700000000},
       "hello");
  file(&a, (hspec){.name = "dir/", .type = '5', .mode = 0755}, NULL);
  file(&a, (hspec){.name = "sym", .type = '2', .mode = 0777, .link = "hello.txt"}, NULL);
  file(&a, (hspec){.name = "hard", .type = '1', .mode = 0644, .link = "hello.txt"}, NULL);
  file(&a, (hspec){.name = "null", .type = '3', .mode = 0666, .devmajor = 1, .devminor = 3}, NULL);
  file(&a, (hspec){.name = "sda", .type = '4', .mode = 0660, .devmajor = 8, .devminor = 0}, NULL);
  file(&a, (hspec){.name = "fifo", .type = '6', .mode = 0600}, NULL);
  file(&a, (hspec){.name = "contig", .type = '7', .mode = 04755}, "c");
  file(&a, (hspec){.name = "old", .type = '\0', .mode = 0644}, "");
  file(&a, (hspec){.name = "olddir/", .type = '\0', .mode = 0755}, NULL);
  /* data after a directory is skipped, not exposed */
  file(&a, (hspec){.name = "fatdir", .type = '5', .mode = 0755, .size = 3}, "xyz");
  file(&a, (hspec){.name = "last", .type = '0', .mode = 0644}, "0123456789");
  end(&a);
  check("ustar types", &a,
        "f hello.txt m=755 o=512 s=5 id=1000/100 n=alice/users t=1700000000.000000000 d=hello\n"
        "d dir/ m=755 o=1536\n"
        "l sym -> hello.txt m=777 o=2048\n"
        "h hard -> hello.txt m=644 o=2560\n"
        "c null m=666 o=3072 dev=1,3\n"
        "b sda m=660 o=3584 dev=8,0\n"
        "p fifo m=600 o=4096\n"
        "f contig m=4755 o=4608 s=1 d=c\n"
        "f old m=644 o=5632 d=\n"
        "d olddir/ m=755 o=6144\n"
        "d fatdir m=755 o=6656\n"
        "f last m=644 o=7680 s=10 d=0123456789\n");

  /* GNU and V7 headers; GNU keeps atime in the prefix area: not a prefix */
  file(&a,
       (hspec){.name = "g",
               .type = '0',
               .mode = 0644,
               .fmt = F_GNU,
               .uname = "root",
               .prefix = "\x30\x30\x31"},
       "G");
  file(&a, (hspec){.name = "v7", .type = '0', .mode = 0644, .fmt = F_V7, .uname = "ignored"}, "V");
  end(&a);
  check("gnu and v7 headers", &a, "f g m=644 o=512 s=1 n=root/- d=G\nf v7 m=644 o=1536 s=1 d=V\n");

  /* ustar prefix joined with the name */
  _cleanup_free_ char *pre = repeat("p", 155);
  _cleanup_free_ char *nm = repeat("n", 100);
  file(&a, (hspec){.name = "file", .prefix = "a/b/c", .type = '0', .mode = 0644}, "x");
  file(&a, (hspec){.name = nm, .prefix = pre, .type = '5', .mode = 0755}, NULL);
  end(&a);
  _cleanup_free_ char *want =
      lbx_xasprintf("f a/b/c/file m=644 o=512 s=1 d=x\nd %s/%s m=755 o=1536\n", pre, nm);
  check("ustar prefix", &a, want);

  /* signed checksums (bytes >= 0x80 in the name) are accepted */
  file(&a, (hspec){.name = "caf\xc3\xa9", .type = '0', .mode = 0644, .signed_sum = true}, "s");
  file(&a, (hspec){.name = "caf\xc3\xa9 2", .type = '0', .mode = 0644}, "u");
  end(&a);
  check("signed and unsigned checksums", &a,
        "f caf\\xc3\\xa9 m=644 o=512 s=1 d=s\nf caf\\xc3\\xa9\\x202 m=644 o=1536 s=1 d=u\n");
}

static void
test_gnu_long(void)
{
  buf a = {0};
  _cleanup_free_ char *n150 = repeat("abcde/", 25);
  n150[strlen(n150) - 1] = 'x';
  _cleanup_free_ char *n300 = repeat("0123456789", 30);
  _cleanup_free_ char *l400 = repeat("L", 400);
  gnu_long(&a, 'L', n150);
  file(&a, (hspec){.name = "truncated-name", .type = '0', .mode = 0644, .fmt = F_GNU}, "one");
  gnu_long(&a, 'L', n300);
  gnu_long(&a, 'K', l400);
  file(&a, (hspec){.name = "short", .link = "short-link", .type = '2', .mode = 0777, .fmt = F_GNU},
       NULL);
  /* the long name applied once only */
  file(&a, (hspec){.name = "plain", .type = '0', .mode = 0644, .fmt = F_GNU}, NULL);
  /* a later 'L' replaces an earlier one */
  gnu_long(&a, 'L', "first");
  gnu_long(&a, 'L', "second");
  file(&a, (hspec){.name = "x", .type = '1', .link = "t", .mode = 0644, .fmt = F_GNU}, NULL);
  end(&a);
  _cleanup_free_ char *want = lbx_xasprintf("f %s m=644 o=1536 s=3 d=one\n"
                                            "l %s -> %s m=777 o=4608\n"
                                            "f plain m=644 o=5120 d=\n"
                                            "h second -> t m=644 o=7680\n",
                                            n150, n300, l400);
  check("gnu long names", &a, want);
}

static void
test_pax(void)
{
  buf a = {0}, r = {0};
  _cleanup_free_ char *n300 = repeat("d/", 150);
  _cleanup_free_ char *want = NULL;

  rec_s(&r, "path", n300);
  rec_s(&r, "linkpath", "pax-target");
  rec_s(&r, "uid", "3000000000");
  rec_s(&r, "gid", "4294967295");
  rec_s(&r, "uname", "paxuser");
  rec_s(&r, "gname", "paxgroup");
  rec_s(&r, "mtime", "1700000000.123456789");
  rec_s(&r, "atime", "1.5");
  rec_s(&r, "comment", "ignored");
  pax(&a, 'x', "./PaxHeaders/x", &r);
  file(&a,
       (hspec){.name = "hdr-name",
               .link = "hdr-link",
               .type = '2',
               .mode = 0777,
               .uid = 1,
               .gid = 2,
               .uname = "u",
               .gname = "g",
               .mtime = 5},
       NULL);
  /* size from pax wins over the header's (garbage) size field */
  rec_s(&r, "size", "7");
  rec_s(&r, "mtime", "-1.5");
  rec(&r, "SCHILY.xattr.user.bin", "a\0b\n=c", 6);
  rec_s(&r, "SCHILY.xattr.security.capability", "");
  rec_s(&r, "LIBARCHIVE.xattr.user.b%3Dx", "aGVsbG8");
  pax(&a, 'x', "./PaxHeaders/f", &r);
  file(&a, (hspec){.name = "f", .type = '0', .mode = 0600, .raw_size = "garbage!"}, NULL);
  put(&a, "payload", 7);
  pad(&a);
  /* whole-second negative, and more than nine fraction digits */
  rec_s(&r, "mtime", "-7");
  pax(&a, 'x', "p", &r);
  file(&a, (hspec){.name = "neg", .type = '0', .mode = 0644}, NULL);
  rec_s(&r, "mtime", "12.0000000019");
  pax(&a, 'x', "p", &r);
  file(&a, (hspec){.name = "frac", .type = '0', .mode = 0644}, NULL);
  end(&a);
  want = lbx_xasprintf("l %s -> pax-target m=777 o=1536 id=3000000000/4294967295 "
                       "n=paxuser/paxgroup t=1700000000.123456789\n"
                       "f f m=600 o=3072 s=7 t=-2.500000000 x:user.bin=a\\x00b\\x0a=c "
                       "x:security.capability= x:user.b=x=hello d=payload\n"
                       "f neg m=644 o=5120 t=-7.000000000 d=\n"
                       "f frac m=644 o=6656 t=12.000000001 d=\n",
                       n300);
  check("pax per-file records", &a, want);

  /* global records apply to every following entry; a file's empty value
   * removes the global one for that file */
  rec_s(&r, "uname", "global");
  rec_s(&r, "mtime", "99");
  rec_s(&r, "SCHILY.xattr.user.g", "G");
  pax(&a, 'g', "pax_global_header", &r);
  file(&a, (hspec){.name = "one", .type = '0', .mode = 0644, .uname = "hdr"}, NULL);
  rec_s(&r, "uname", "");
  rec_s(&r, "SCHILY.xattr.user.g", "own");
  pax(&a, 'x', "p", &r);
  file(&a, (hspec){.name = "two", .type = '0', .mode = 0644, .uname = "hdr"}, NULL);
  rec_s(&r, "mtime", "");
  pax(&a, 'g', "pax_global_header", &r);
  file(&a, (hspec){.name = "three", .type = '0', .mode = 0644, .mtime = 3}, NULL);
  end(&a);
  check("pax global records", &a,
        "f one m=644 o=1536 n=global/- t=99.000000000 x:user.g=G d=\n"
        "f two m=644 o=3072 n=hdr/- t=99.000000000 x:user.g=own d=\n"
        "f three m=644 o=4608 n=global/- t=3.000000000 x:user.g=G d=\n");

  /* pax beats GNU long names; 'X' is the old spelling of 'x' */
  gnu_long(&a, 'L', "gnu-name");
  rec_s(&r, "path", "pax-name");
  pax(&a, 'X', "p", &r);
  file(&a, (hspec){.name = "hdr", .type = '0', .mode = 0644}, NULL);
  /* records padded with NULs */
  rec_s(&r, "path", "padded");
  put(&r, "\0\0\0", 3);
  pax(&a, 'x', "p", &r);
  file(&a, (hspec){.name = "hdr", .type = '0', .mode = 0644}, NULL);
  end(&a);
  check("pax over gnu", &a, "f pax-name m=644 o=2560 d=\nf padded m=644 o=4096 d=\n");
}

static void
test_base256(void)
{
  buf a = {0};
  file(&a,
       (hspec){.name = "b",
               .type = '0',
               .mode = 0644,
               .b256_size = true,
               .b256_uid = true,
               .uid = 4294967295u,
               .gid = 70000,
               .b256_mtime = true,
               .mtime = -86400},
       "12345");
  file(&a,
       (hspec){.name = "c",
               .type = '0',
               .mode = 0644,
               .fmt = F_GNU,
               .b256_mtime = true,
               .mtime = 1LL << 40},
       NULL);
  end(&a);
  check("base-256 numbers", &a,
        "f b m=644 o=512 s=5 id=4294967295/70000 t=-86400.000000000 d=12345\n"
        "f c m=644 o=1536 t=1099511627776.000000000 d=\n");

  /* a 1 TiB size, then the archive ends */
  file(
      &a,
      (hspec){.name = "huge.img", .type = '0', .mode = 0644, .b256_size = true, .size = 1ULL << 40},
      NULL);
  put(&a, "some data", 9);
  check_err("base-256 huge size, short data", &a, 0, "test.tar: entry \"huge.img\"",
            "unexpected end of archive");
  free(a.d);
  a = (buf){0};

  /* a negative size */
  file(&a,
       (hspec){.name = "neg", .type = '0', .mode = 0644, .b256_size = true, .size = (uint64_t)-5},
       NULL);
  end(&a);
  check_err("negative size", &a, 0, "entry \"neg\": invalid size field");
  free(a.d);
}

static void
test_refused(void)
{
  buf a = {0}, r = {0};
  file(&a, (hspec){.name = "ok", .type = '0', .mode = 0644}, "ok");
  file(&a, (hspec){.name = "sparse.img", .type = 'S', .mode = 0644, .fmt = F_GNU, .size = 512},
       NULL);
  end(&a);
  check_err("gnu sparse", &a, 0, "test.tar: entry \"sparse.img\": sparse files are not supported");
  free(a.d);
  a = (buf){0};

  gnu_long(&a, 'L', "long/sparse/name");
  file(&a, (hspec){.name = "x", .type = 'S', .mode = 0644, .fmt = F_GNU}, NULL);
  end(&a);
  check_err("gnu sparse with long name", &a, 0,
            "entry \"long/sparse/name\": sparse files are not supported");
  free(a.d);
  a = (buf){0};

  /* GNU sparse 1.0: the real name is in GNU.sparse.name */
  rec_s(&r, "GNU.sparse.major", "1");
  rec_s(&r, "GNU.sparse.minor", "0");
  rec_s(&r, "GNU.sparse.name", "var/lib/disk.img");
  rec_s(&r, "GNU.sparse.realsize", "1048576");
  pax(&a, 'x', "./GNUSparseFile.0/disk.img", &r);
  file(&a, (hspec){.name = "./GNUSparseFile.0/disk.img", .type = '0', .mode = 0644}, "map");
  end(&a);
  check_err("pax sparse 1.0", &a, 0, "entry \"var/lib/disk.img\": sparse files are not supported");
  free(a.d);
  a = (buf){0};

  /* GNU sparse 0.0 */
  rec_s(&r, "GNU.sparse.size", "1048576");
  rec_s(&r, "GNU.sparse.numblocks", "1");
  rec_s(&r, "path", "disk0.img");
  pax(&a, 'x', "p", &r);
  file(&a, (hspec){.name = "disk0.img", .type = '0', .mode = 0644}, NULL);
  end(&a);
  check_err("pax sparse 0.0", &a, 0, "entry \"disk0.img\": sparse files are not supported");
  free(a.d);
  a = (buf){0};

  const struct {
    char type;
    const char *msg;
  } bad[] = {
      {'V', "volume headers (type 'V') are not supported"},
      {'M', "multi-volume archives (type 'M')"},
      {'N', "multi-volume archives (type 'N')"},
      {'D', "unknown entry type 'D'"},
      {'Z', "unknown entry type 'Z'"},
      {'\x01', "unknown entry type 0x01"},
  };
  for (size_t i = 0; i < LBX_ARRAY_SIZE(bad); i++) {
    file(&a, (hspec){.name = "odd", .type = bad[i].type, .mode = 0644}, NULL);
    end(&a);
    char what[32];
    snprintf(what, sizeof what, "type 0x%02x", bad[i].type);
    check_err(what, &a, 0, "test.tar: entry \"odd\": ", bad[i].msg);
    free(a.d);
    a = (buf){0};
  }
}

static void
test_truncated(void)
{
  buf a = {0}, r = {0};
  file(&a, (hspec){.name = "first", .type = '0', .mode = 0644}, "1234567890"); /* 0..1024 */
  rec_s(&r, "path", "paxed-name");
  rec_s(&r, "uname", "u");
  pax(&a, 'x', "./PaxHeaders/paxed", &r);                                       /* 1024..2048 */
  file(&a, (hspec){.name = "second", .type = '0', .mode = 0644}, "abcdefghij"); /* 2048..3072 */
  /* complete archive, checked once */
  buf full = {0};
  put(&full, a.d, a.n);
  end(&full);
  check(
      "truncation base", &full,
      "f first m=644 o=512 s=10 d=1234567890\nf paxed-name m=644 o=2560 s=10 n=u/- d=abcdefghij\n");

  check_err("cut in the first header", &a, 100,
            "unexpected end of archive in the header at offset 0");
  check_err("cut in data", &a, 515, "entry \"first\": unexpected end of archive");
  check_err("cut in padding", &a, 600, "entry \"first\": unexpected end of archive");
  check_err("cut in the pax header block", &a, 1100,
            "unexpected end of archive in the header at offset 1024");
  check_err("cut in pax data", &a, 1540, "entry \"./PaxHeaders/paxed\": unexpected end of archive");
  check_err("cut after pax data", &a, 2048,
            "entry \"paxed-name\": unexpected end of archive in the header");
  check_err("cut in the header after pax", &a, 2100,
            "entry \"paxed-name\": unexpected end of archive");
  check_err("cut in second data", &a, 2565, "entry \"paxed-name\": unexpected end of archive");

  /* ends that are fine: EOF on a block boundary, one zero block, one zero
   * block and part of another */
  buf c = {0};
  put(&c, a.d, 1024);
  check("eof on a block boundary", &c, "f first m=644 o=512 s=10 d=1234567890\n");
  put(&c, a.d, 1024);
  end(&c);
  c.n -= 512;
  check("one zero block", &c, "f first m=644 o=512 s=10 d=1234567890\n");
  put(&c, a.d, 1024);
  end(&c);
  c.n -= 300;
  check("one and a half zero blocks", &c, "f first m=644 o=512 s=10 d=1234567890\n");
  check("empty archive", &c, "");

  /* an extended header, then the end */
  gnu_long(&c, 'L', "dangling");
  end(&c);
  check_err("end after a long name", &c, 0,
            "entry \"dangling\": unexpected end of archive after an extended header");
  free(c.d);
  c = (buf){0};

  /* a zero block followed by more headers is not an end */
  put(&c, a.d, 1024);
  end(&c);
  c.n -= 512;
  put(&c, a.d, 1024);
  check_err("zero block then data", &c, 0, "zero block followed by data at offset 1024");
  free(c.d);
  free(a.d);
}

static void
test_hostile(void)
{
  buf a = {0}, r = {0};
  /* garbage */
  for (int i = 0; i < 2048; i++)
    put(&a, &(uint8_t){(uint8_t)(i * 131 + 7)}, 1);
  check_err("garbage", &a, 0, "test.tar: bad tar header checksum at offset 0");
  free(a.d);
  a = (buf){0};

  file(&a, (hspec){.name = "ok", .type = '0', .mode = 0644}, "ok");
  file(&a, (hspec){.name = "bad", .type = '0', .mode = 0644, .bad_sum = true}, "bad");
  check_err("bad checksum", &a, 0, "bad tar header checksum at offset 1024");
  free(a.d);
  a = (buf){0};

  put(&a, "this is not a tar archive\n", 26);
  check_err("text", &a, 0, "unexpected end of archive in the header at offset 0");
  free(a.d);
  a = (buf){0};

  /* a pax header claiming 2 GiB: refused before reading or allocating */
  header(&a, &(hspec){.name = "big-pax", .type = 'x', .mode = 0644, .size = 2ULL << 30});
  put(&a, "20 path=whatever\n", 17);
  check_err("huge pax header", &a, 0, "entry \"big-pax\": 'x' header of 2147483648 bytes exceeds");
  free(a.d);
  a = (buf){0};

  header(&a, &(hspec){.name = "././@LongLink",
                      .type = 'L',
                      .fmt = F_GNU,
                      .size = 1ULL << 50,
                      .b256_size = true});
  check_err("huge long name", &a, 0, "'L' header of 1125899906842624 bytes exceeds");
  free(a.d);
  a = (buf){0};

  /* records that lie about their length */
  const char *bad_recs[] = {
      "999999 path=x\n", "5 path=x\n",    "13 path=abc\nX",
      "x path=y\n",      "12 pathabcd\n", "9 =value\n",
  };
  for (size_t i = 0; i < LBX_ARRAY_SIZE(bad_recs); i++) {
    put(&r, bad_recs[i], strlen(bad_recs[i]));
    pax(&a, 'x', "bad-rec", &r);
    file(&a, (hspec){.name = "f", .type = '0', .mode = 0644}, NULL);
    end(&a);
    char what[40];
    snprintf(what, sizeof what, "bad pax record %zu", i);
    check_err(what, &a, 0, "entry \"bad-rec\": ", "pax");
    free(a.d);
    a = (buf){0};
  }

  const struct {
    const char *key, *val;
    size_t len;
  } bad_vals[] = {
      {"size", "12x", 3},        {"size", "99999999999999999999", 20},
      {"size", "-1", 2},         {"uid", "4294967296", 10},
      {"mtime", "1.2.3", 5},     {"mtime", "--1", 3},
      {"mtime", ".5", 2},        {"path", "a\0b", 3},
      {"uname", "\0", 1},        {"LIBARCHIVE.xattr.user.x", "!!", 2},
      {"SCHILY.xattr.", "v", 1},
  };
  for (size_t i = 0; i < LBX_ARRAY_SIZE(bad_vals); i++) {
    rec(&r, bad_vals[i].key, bad_vals[i].val, bad_vals[i].len);
    pax(&a, 'x', "bad-val", &r);
    file(&a, (hspec){.name = "f", .type = '0', .mode = 0644}, NULL);
    end(&a);
    char what[64];
    snprintf(what, sizeof what, "bad pax value %s", bad_vals[i].key);
    check_err(what, &a, 0, "entry \"bad-val\": ");
    free(a.d);
    a = (buf){0};
  }

  /* names with control bytes are printed on one line */
  file(&a, (hspec){.name = "evil\nname", .type = 'Q', .mode = 0644}, NULL);
  end(&a);
  check_err("control bytes in names", &a, 0, "entry \"evil?name\": unknown entry type 'Q'");
  free(a.d);
  a = (buf){0};

  /* invalid numeric header fields */
  file(&a, (hspec){.name = "f", .type = '0', .mode = 0644, .raw_size = "12x"}, NULL);
  end(&a);
  check_err("bad size field", &a, 0, "entry \"f\": invalid size field");
  free(a.d);
  a = (buf){0};

  /* the source's own error comes through */
  src s = {0};
  char *msg;
  free(dump_src(src_fail, &s, READ_ALL, &msg));
  tap_is_str(msg, "layer x: gzip: corrupt data", "source errors pass through");
  free(msg);
}

static void
test_big(void)
{
  const size_t n = 3 * 1024 * 1024 + 123;
  buf a = {0};
  file(&a, (hspec){.name = "small", .type = '0', .mode = 0644}, "tiny");
  header(&a, &(hspec){.name = "big", .type = '0', .mode = 0644, .size = n});
  size_t data_at = a.n;
  for (size_t i = 0; i < n; i++)
    put(&a, &(uint8_t){(uint8_t)(i * 7 + i / 4096)}, 1);
  pad(&a);
  file(&a, (hspec){.name = "after", .type = '0', .mode = 0644}, "z");
  end(&a);

  for (int mode = BIG; mode <= SMALL; mode++) {
    src s = {.d = a.d, .n = a.n, .mode = mode};
    _cleanup_(lbx_tar_freep) lbx_tar *t = lbx_tar_new("big.tar", src_read, &s);
    _cleanup_error_ lbx_err *err = NULL;
    const lbx_tar_entry *e;
    const char *m = mode == BIG ? "big" : "small";
    tap_is_int(lbx_tar_next(t, &e, &err), 1, "%s: first entry", m);
    tap_is_int(lbx_tar_next(t, &e, &err), 1, "%s: big entry (small one skipped)", m);
    tap_is_int(e->size, n, "%s: big size", m);
    tap_is_int(e->offset, data_at, "%s: big offset", m);
    _cleanup_free_ uint8_t *got = lbx_xmalloc(n + 10);
    size_t off = 0;
    ssize_t r;
    size_t chunk = mode == BIG ? 1024 * 1024 : 4093;
    while ((r = lbx_tar_read(t, got + off, chunk, &err)) > 0)
      off += (size_t)r;
    tap_is_int(r, 0, "%s: read to the end", m);
    tap_ok(off == n && memcmp(got, a.d + data_at, n) == 0, "%s: big data intact", m);
    tap_is_int(lbx_tar_read(t, got, 10, &err), 0, "%s: read after the end gives 0", m);
    if (mode == BIG)
      tap_ok(s.calls < 20, "big reads bypass the buffer (%u source calls)", s.calls);
    tap_is_int(lbx_tar_next(t, &e, &err), 1, "%s: entry after big", m);
    tap_is_str(e->path, "after", "%s: its name", m);
    tap_is_int(lbx_tar_next(t, &e, &err), 0, "%s: end", m);
    tap_ok(err == NULL, "%s: no error", m);
  }
  free(a.d);
}

static void
test_clean_path(void)
{
  const char *ok[][2] = {
      {"./a", "a"},
      {"/a", "a"},
      {"a//b", "a/b"},
      {"a/./b", "a/b"},
      {"a/", "a"},
      {".", ""},
      {"", ""},
      {"/", ""},
      {"./", ""},
      {"//./a/b/", "a/b"},
      {"..a/b..", "..a/b.."},
      {"a/.../b", "a/.../b"},
  };
  for (size_t i = 0; i < LBX_ARRAY_SIZE(ok); i++) {
    _cleanup_free_ char *out = NULL;
    _cleanup_error_ lbx_err *err = NULL;
    tap_is_int(lbx_tar_clean_path(ok[i][0], &out, &err), 0, "clean \"%s\"", ok[i][0]);
    tap_is_str(out, ok[i][1], "clean \"%s\" is \"%s\"", ok[i][0], ok[i][1]);
  }
  const char *bad[] = {"../x", "a/../b", "a/..", "..", "/../a", "a/./../b"};
  for (size_t i = 0; i < LBX_ARRAY_SIZE(bad); i++) {
    _cleanup_free_ char *out = NULL;
    _cleanup_error_ lbx_err *err = NULL;
    tap_is_int(lbx_tar_clean_path(bad[i], &out, &err), -1, "refuse \"%s\"", bad[i]);
    _cleanup_free_ char *want = lbx_xasprintf("path \"%s\"", bad[i]);
    tap_ok(err && strstr(err->msg, want) && strstr(err->msg, ".."), "error names \"%s\": %s",
           bad[i], err ? err->msg : "(none)");
  }
}

/* GNU tar's own output, in both of its main formats. */
static void
test_gnu_tar(void)
{
  if (system("tar --version >/dev/null 2>&1") != 0) {
    tap_ok(1, "# SKIP GNU tar not installed");
    return;
  }
  char dir[] = "/tmp/lbx-tar-XXXXXX";
  if (!mkdtemp(dir)) {
    tap_ok(0, "mkdtemp");
    return;
  }
  _cleanup_free_ char *longdir = lbx_xasprintf(
      "%s/t/%s", dir, "0123456789012345678901234567890123456789012345678901234567890123456789");
  _cleanup_free_ char *longname = repeat("f", 200);
  _cleanup_free_ char *setup =
      lbx_xasprintf("set -e; mkdir -p %s; cd %s/t; printf hello > %s/%s; ln -s %s/%s sym; "
                    "ln %s/%s hard; mkdir -p empty; chmod 0750 empty",
                    longdir, dir, longdir, longname, longdir, longname, longdir, longname);
  tap_is_int(system(setup), 0, "make a tree for GNU tar");
  const char *formats[] = {"gnu", "posix"};
  for (size_t i = 0; i < 2; i++) {
    _cleanup_free_ char *cmd = lbx_xasprintf(
        "tar -C %s/t --format=%s --sort=name --owner=0 --group=0 --numeric-owner --mtime=@1234 "
        "-cf - .",
        dir, formats[i]);
    FILE *p = popen(cmd, "r");
    buf a = {0};
    char tmp[65536];
    size_t n;
    while (p && (n = fread(tmp, 1, sizeof tmp, p)) > 0)
      put(&a, tmp, n);
    tap_ok(p && pclose(p) == 0, "GNU tar --format=%s", formats[i]);
    for (int mode = BIG; mode <= SMALL; mode++) {
      char *msg;
      _cleanup_free_ char *got = dump(&a, mode, READ_ALL, &msg);
      tap_is_str(msg, NULL, "GNU tar %s: read without error", formats[i]);
      _cleanup_free_ char *path = lbx_xasprintf("./%s/%s", strrchr(longdir, '/') + 1, longname);
      _cleanup_free_ char *fline = lbx_xasprintf("\nf %s m=", path);
      tap_ok(strstr(got, fline) && strstr(got, "d=hello\n"), "GNU tar %s: long name and data",
             formats[i]);
      _cleanup_free_ char *sline = lbx_xasprintf("l ./sym -> %s/%s", longdir, longname);
      tap_ok(strstr(got, sline) != NULL, "GNU tar %s: long symlink target", formats[i]);
      _cleanup_free_ char *hline = lbx_xasprintf("h ./hard -> %s m=", path);
      tap_ok(strstr(got, hline) != NULL, "GNU tar %s: hardlink", formats[i]);
      tap_ok(strstr(got, "d ./empty/ m=750") != NULL, "GNU tar %s: directory", formats[i]);
      if (!msg && !(strstr(got, fline) && strstr(got, sline) && strstr(got, hline)))
        printf("# %s\n", got);
      free(msg);
    }
    free(a.d);
  }
  _cleanup_free_ char *rm = lbx_xasprintf("rm -rf %s", dir);
  if (system(rm) != 0)
    tap_ok(0, "rm -rf %s", dir);
}

int
main(void)
{
  test_types();
  test_gnu_long();
  test_pax();
  test_base256();
  test_refused();
  test_truncated();
  test_hostile();
  test_big();
  test_clean_path();
  test_gnu_tar();
  return tap_done();
}
