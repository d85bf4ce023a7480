/* Streaming tar reader. The archive is pulled through a 64 KiB buffer;
 * entry data larger than half of it bypasses the buffer so big files cost
 * one copy. Metadata records (pax, GNU long names) are bounded so a hostile
 * header cannot make us allocate what it claims. */
#include "tar.h"

#include <stdarg.h>
#include <stdbool.h>
#include <string.h>

#define BLOCK 512
#define BUF_SIZE (64 * 1024)
/* Reads at least this big go straight to the caller's buffer. */
#define DIRECT_MIN (BUF_SIZE / 2)
/* A pax or GNU long name/link record, and the xattrs kept in one pax set,
 * may not exceed this. Real ones are a few KiB at most. */
#define META_MAX (1024 * 1024)
/* Error messages quote at most this much of a name. */
#define QUOTE_MAX 200

/* Header field offsets and widths (POSIX ustar; GNU shares the first 345). */
enum {
  H_NAME = 0,
  H_MODE = 100,
  H_UID = 108,
  H_GID = 116,
  H_SIZE = 124,
  H_MTIME = 136,
  H_CHKSUM = 148,
  H_TYPE = 156,
  H_LINK = 157,
  H_MAGIC = 257,
  H_UNAME = 265,
  H_GNAME = 297,
  H_DEVMAJOR = 329,
  H_DEVMINOR = 337,
  H_PREFIX = 345,
};

enum pax_field {
  PF_PATH = 1 << 0,
  PF_LINK = 1 << 1,
  PF_SIZE = 1 << 2,
  PF_UID = 1 << 3,
  PF_GID = 1 << 4,
  PF_UNAME = 1 << 5,
  PF_GNAME = 1 << 6,
  PF_MTIME = 1 << 7,
};

/* The values of pax records, per file ('x') or global ('g'). */
typedef struct pax_set {
  unsigned set;   /* fields given a value */
  unsigned unset; /* fields an empty value removed: in 'x', hides the global value */
  char *path, *linkpath, *uname, *gname;
  uint64_t size;
  uint32_t uid, gid;
  int64_t mtime_sec;
  uint32_t mtime_nsec;
  lbx_tar_xattr *xattrs;
  size_t nxattrs, cap, xattr_bytes;
  bool sparse;       /* a GNU.sparse.* key was seen */
  char *sparse_name; /* GNU.sparse.name: the real name of a sparse file */
} pax_set;

enum state { ST_OK, ST_END, ST_FAILED };

struct lbx_tar {
  char *name;
  lbx_read_fn read;
  void *ctx;
  uint8_t *buf;
  size_t bpos, blen;
  bool src_eof;
  uint64_t pos; /* stream bytes consumed so far */
  enum state state;

  bool have_entry;
  lbx_tar_entry ent;
  uint64_t data_left, pad_left;

  pax_set global, local;
  char *long_name, *long_link; /* pending GNU 'L' and 'K' records */
};

/* ---- errors ---- */

/* A copy of s safe to print on one line: control bytes become '?' and long
 * names are cut. */
static char *
quote(const char *s)
{
  size_t n = strnlen(s, QUOTE_MAX + 1);
  bool cut = n > QUOTE_MAX;
  if (cut)
    n = QUOTE_MAX;
  char *q = lbx_xmalloc(n + 4);
  for (size_t i = 0; i < n; i++)
    q[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
  strcpy(q + n, cut ? "..." : "");
  return q;
}

/* Fails the reader for good: -1 with "ARCHIVE: entry "E": MSG" (or without
 * the entry part when entry is NULL). */
static int fail(lbx_tar *t, lbx_err **err, int code, const char *entry, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static int
fail(lbx_tar *t, lbx_err **err, int code, const char *entry, const char *fmt, ...)
{
  t->state = ST_FAILED;
  va_list ap;
  va_start(ap, fmt);
  _cleanup_free_ char *msg = NULL;
  if (vasprintf(&msg, fmt, ap) < 0)
    msg = NULL;
  va_end(ap);
  const char *m = msg ? msg : "out of memory";
  if (entry) {
    _cleanup_free_ char *q = quote(entry);
    return lbx_error(err, code, "%s: entry \"%s\": %s", t->name, q, m);
  }
  return lbx_error(err, code, "%s: %s", t->name, m);
}

/* The source already explained itself; only make sure something is set. */
static int
fail_source(lbx_tar *t, lbx_err **err)
{
  t->state = ST_FAILED;
  return lbx_error(err, EIO, "%s: read error", t->name);
}

/* ---- buffered input ---- */

static int
fill(lbx_tar *t, lbx_err **err)
{
  if (t->src_eof)
    return 0;
  ssize_t n = t->read(t->ctx, t->buf, BUF_SIZE, err);
  if (n < 0)
    return fail_source(t, err);
  if (n == 0) {
    t->src_eof = true;
    return 0;
  }
  t->bpos = 0;
  t->blen = (size_t)n;
  return 1;
}

/* Up to n bytes: > 0, 0 at the end of the source, -1 on error. */
static ssize_t
read_some(lbx_tar *t, uint8_t *dst, size_t n, lbx_err **err)
{
  if (t->bpos == t->blen) {
    if (n >= DIRECT_MIN) {
      if (t->src_eof)
        return 0;
      ssize_t r = t->read(t->ctx, dst, n, err);
      if (r < 0)
        return fail_source(t, err);
      if (r == 0)
        t->src_eof = true;
      t->pos += (uint64_t)r;
      return r;
    }
    int r = fill(t, err);
    if (r <= 0)
      return r;
  }
  size_t k = t->blen - t->bpos;
  if (k > n)
    k = n;
  memcpy(dst, t->buf + t->bpos, k);
  t->bpos += k;
  t->pos += k;
  return (ssize_t)k;
}

/* n bytes unless the source ends first: the count read, or -1. */
static ssize_t
read_full(lbx_tar *t, uint8_t *dst, size_t n, lbx_err **err)
{
  size_t done = 0;
  while (done < n) {
    ssize_t r = read_some(t, dst + done, n - done, err);
    if (r < 0)
      return -1;
    if (r == 0)
      break;
    done += (size_t)r;
  }
  return (ssize_t)done;
}

/* Discards n bytes: 0, 1 if the source ended first, -1 on error. */
static int
skip(lbx_tar *t, uint64_t n, lbx_err **err)
{
  while (n > 0) {
    if (t->bpos == t->blen) {
      int r = fill(t, err);
      if (r <= 0)
        return r < 0 ? -1 : 1;
    }
    size_t k = t->blen - t->bpos;
    if (k > n)
      k = (size_t)n;
    t->bpos += k;
    t->pos += k;
    n -= k;
  }
  return 0;
}

/* ---- numbers ---- */

/* A numeric header field: octal (leading spaces, then digits, then NULs or
 * spaces) or GNU base-256 (high bit of the first byte set, two's
 * complement). -1 if malformed or out of int64 range. */
static int
parse_num(const uint8_t *f, size_t len, int64_t *out)
{
  if (f[0] & 0x80) {
    /* sign-extend the 7 value bits of the first byte */
    int64_t v = (f[0] & 0x40) ? (int64_t)(f[0] | ~0x7f) : (int64_t)(f[0] & 0x7f);
    for (size_t i = 1; i < len; i++) {
      if (v > INT64_MAX / 256 || v < INT64_MIN / 256)
        return -1;
      v = (int64_t)((uint64_t)v << 8) | f[i];
    }
    *out = v;
    return 0;
  }
  size_t i = 0;
  while (i < len && f[i] == ' ')
    i++;
  uint64_t v = 0;
  for (; i < len && f[i] >= '0' && f[i] <= '7'; i++) {
    if (v > (uint64_t)INT64_MAX >> 3)
      return -1;
    v = v << 3 | (uint64_t)(f[i] - '0');
  }
  for (; i < len; i++)
    if (f[i] != ' ' && f[i] != '\0')
      return -1;
  *out = (int64_t)v;
  return 0;
}

/* A pax decimal: digits only, at most max. */
static int
parse_dec(const char *s, size_t len, uint64_t max, uint64_t *out)
{
  if (len == 0)
    return -1;
  uint64_t v = 0;
  for (size_t i = 0; i < len; i++) {
    if (s[i] < '0' || s[i] > '9')
      return -1;
    unsigned d = (unsigned)(s[i] - '0');
    if (v > (max - d) / 10)
      return -1;
    v = v * 10 + d;
  }
  *out = v;
  return 0;
}

/* A pax time: [-]SECONDS[.FRACTION]; digits of the fraction past
 * nanoseconds are dropped. */
static int
parse_time(const char *s, size_t len, int64_t *sec, uint32_t *nsec)
{
  bool neg = len > 0 && s[0] == '-';
  if (neg) {
    s++;
    len--;
  }
  const char *dot = memchr(s, '.', len);
  size_t ilen = dot ? (size_t)(dot - s) : len;
  uint64_t whole;
  if (parse_dec(s, ilen, INT64_MAX - 1, &whole) < 0)
    return -1;
  uint32_t frac = 0;
  if (dot) {
    size_t flen = len - ilen - 1;
    for (size_t i = 0; i < flen; i++) {
      char c = dot[1 + i];
      if (c < '0' || c > '9')
        return -1;
      if (i < 9)
        frac = frac * 10 + (uint32_t)(c - '0');
    }
    for (size_t i = flen; i < 9; i++)
      frac *= 10;
  }
  if (!neg) {
    *sec = (int64_t)whole;
    *nsec = frac;
  } else if (frac == 0) {
    *sec = -(int64_t)whole;
    *nsec = 0;
  } else {
    /* -1.25 is 1.75 seconds before -0 */
    *sec = -(int64_t)whole - 1;
    *nsec = 1000000000u - frac;
  }
  return 0;
}

/* ---- pax records ---- */

static void
xattr_clear(lbx_tar_xattr *x)
{
  free(x->name);
  free(x->value);
}

static void
pax_clear(pax_set *p)
{
  free(p->path);
  free(p->linkpath);
  free(p->uname);
  free(p->gname);
  free(p->sparse_name);
  for (size_t i = 0; i < p->nxattrs; i++)
    xattr_clear(&p->xattrs[i]);
  free(p->xattrs);
  memset(p, 0, sizeof *p);
}

/* Adds or replaces an xattr; takes ownership of name and value. */
static void
xattrs_put(lbx_tar_xattr **arr, size_t *n, size_t *cap, char *name, uint8_t *value, size_t len,
           size_t *bytes)
{
  for (size_t i = 0; i < *n; i++) {
    if (strcmp((*arr)[i].name, name) == 0) {
      if (bytes)
        *bytes -= strlen(name) + (*arr)[i].len;
      xattr_clear(&(*arr)[i]);
      (*arr)[i] = (lbx_tar_xattr){name, value, len};
      if (bytes)
        *bytes += strlen(name) + len;
      return;
    }
  }
  if (*n == *cap) {
    *cap = *cap ? *cap * 2 : 4;
    *arr = lbx_xrealloc(*arr, *cap * sizeof **arr);
  }
  (*arr)[(*n)++] = (lbx_tar_xattr){name, value, len};
  if (bytes)
    *bytes += strlen(name) + len;
}

static int
b64val(unsigned char c)
{
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  if (c == '+')
    return 62;
  if (c == '/')
    return 63;
  return -1;
}

/* Standard base64, padding optional. */
static int
b64_decode(const char *s, size_t len, uint8_t **out, size_t *outlen)
{
  while (len > 0 && s[len - 1] == '=')
    len--;
  _cleanup_free_ uint8_t *o = lbx_xmalloc(len * 3 / 4 + 1);
  size_t n = 0;
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < len; i++) {
    int v = b64val((unsigned char)s[i]);
    if (v < 0)
      return -1;
    acc = acc << 6 | (uint32_t)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      o[n++] = (uint8_t)(acc >> bits);
    }
  }
  *out = steal_pointer(&o);
  *outlen = n;
  return 0;
}

static int
hexdig(char c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* libarchive writes xattr names URL-encoded. */
static char *
percent_decode(const char *s)
{
  char *o = lbx_xmalloc(strlen(s) + 1), *p = o;
  while (*s) {
    int hi, lo;
    if (s[0] == '%' && (hi = hexdig(s[1])) >= 0 && (lo = hexdig(s[2])) >= 0) {
      *p++ = (char)(hi << 4 | lo);
      s += 3;
    } else {
      *p++ = *s++;
    }
  }
  *p = '\0';
  return o;
}

static void
pax_mark(pax_set *p, unsigned bit, bool present)
{
  if (present) {
    p->set |= bit;
    p->unset &= ~bit;
  } else {
    p->set &= ~bit;
    p->unset |= bit;
  }
}

static int
bad_value(lbx_tar *t, lbx_err **err, const char *hname, const char *key, const char *val,
          size_t vlen)
{
  _cleanup_free_ char *v = lbx_xstrndup(val, vlen > 40 ? 40 : vlen);
  _cleanup_free_ char *q = quote(v);
  return fail(t, err, EBADMSG, hname, "invalid pax %s \"%s\"", key, q);
}

/* One "key=value" record; hname names the pax header in errors. */
static int
pax_apply(lbx_tar *t, pax_set *p, const char *key, const char *val, size_t vlen, const char *hname,
          lbx_err **err)
{
  char **str = NULL;
  unsigned bit = 0;
  if (strcmp(key, "path") == 0) {
    str = &p->path, bit = PF_PATH;
  } else if (strcmp(key, "linkpath") == 0) {
    str = &p->linkpath, bit = PF_LINK;
  } else if (strcmp(key, "uname") == 0) {
    str = &p->uname, bit = PF_UNAME;
  } else if (strcmp(key, "gname") == 0) {
    str = &p->gname, bit = PF_GNAME;
  }
  if (str) {
    if (memchr(val, '\0', vlen))
      return fail(t, err, EBADMSG, hname, "pax %s contains a NUL byte", key);
    free(*str);
    *str = vlen ? lbx_xstrndup(val, vlen) : NULL;
    pax_mark(p, bit, vlen > 0);
    return 0;
  }

  uint64_t v;
  if (strcmp(key, "size") == 0 || strcmp(key, "uid") == 0 || strcmp(key, "gid") == 0) {
    bool size = key[0] == 's';
    bit = size ? PF_SIZE : key[0] == 'u' ? PF_UID : PF_GID;
    if (vlen == 0) {
      pax_mark(p, bit, false);
      return 0;
    }
    if (parse_dec(val, vlen, size ? (uint64_t)INT64_MAX : UINT32_MAX, &v) < 0)
      return bad_value(t, err, hname, key, val, vlen);
    if (size)
      p->size = v;
    else if (bit == PF_UID)
      p->uid = (uint32_t)v;
    else
      p->gid = (uint32_t)v;
    pax_mark(p, bit, true);
    return 0;
  }
  if (strcmp(key, "mtime") == 0) {
    if (vlen == 0) {
      pax_mark(p, PF_MTIME, false);
      return 0;
    }
    if (parse_time(val, vlen, &p->mtime_sec, &p->mtime_nsec) < 0)
      return bad_value(t, err, hname, key, val, vlen);
    pax_mark(p, PF_MTIME, true);
    return 0;
  }

  static const char schily[] = "SCHILY.xattr.", libarchive[] = "LIBARCHIVE.xattr.";
  if (strncmp(key, schily, sizeof schily - 1) == 0 || strcmp(key, "RHT.security.selinux") == 0) {
    /* Red Hat's tar writes the SELinux label under its own key */
    const char *name = key[0] == 'R' ? "security.selinux" : key + sizeof schily - 1;
    if (!*name)
      return fail(t, err, EBADMSG, hname, "pax xattr record without a name");
    uint8_t *value = lbx_xmalloc(vlen + 1);
    memcpy(value, val, vlen);
    xattrs_put(&p->xattrs, &p->nxattrs, &p->cap, lbx_xstrdup(name), value, vlen, &p->xattr_bytes);
  } else if (strncmp(key, libarchive, sizeof libarchive - 1) == 0) {
    const char *name = key + sizeof libarchive - 1;
    uint8_t *value;
    size_t len;
    if (!*name)
      return fail(t, err, EBADMSG, hname, "pax xattr record without a name");
    if (b64_decode(val, vlen, &value, &len) < 0)
      return fail(t, err, EBADMSG, hname, "invalid base64 in pax %s", key);
    xattrs_put(&p->xattrs, &p->nxattrs, &p->cap, percent_decode(name), value, len, &p->xattr_bytes);
  } else if (strncmp(key, "GNU.sparse.", 11) == 0) {
    /* refused once the entry's name is known */
    p->sparse = true;
    if (strcmp(key, "GNU.sparse.name") == 0 && !memchr(val, '\0', vlen)) {
      free(p->sparse_name);
      p->sparse_name = lbx_xstrndup(val, vlen);
    }
  }
  /* Other keys (atime, ctime, charset, comment, SCHILY.dev, ACLs...) carry
   * nothing an image needs. */
  if (p->xattr_bytes > META_MAX)
    return fail(t, err, EFBIG, hname, "pax xattrs exceed %d bytes", META_MAX);
  return 0;
}

/* Parses records "LEN key=value\n" of a pax header's data (modified in
 * place; data[len] is writable). */
static int
pax_parse(lbx_tar *t, pax_set *p, char *data, size_t len, const char *hname, lbx_err **err)
{
  size_t off = 0;
  while (off < len) {
    char *rec = data + off;
    size_t left = len - off;
    if (rec[0] == '\0') {
      /* some writers pad the record area with NULs */
      for (size_t i = 0; i < left; i++)
        if (rec[i] != '\0')
          return fail(t, err, EBADMSG, hname, "malformed pax record at byte %zu", off);
      break;
    }
    size_t rlen = 0, i = 0;
    for (; i < left && rec[i] >= '0' && rec[i] <= '9'; i++) {
      rlen = rlen * 10 + (size_t)(rec[i] - '0');
      if (rlen > left)
        return fail(t, err, EBADMSG, hname, "pax record at byte %zu overruns the header", off);
    }
    if (i == 0 || i >= left || rec[i] != ' ' || rlen < i + 3 || rec[rlen - 1] != '\n')
      return fail(t, err, EBADMSG, hname, "malformed pax record at byte %zu", off);
    char *key = rec + i + 1;
    char *end = rec + rlen - 1;
    char *eq = memchr(key, '=', (size_t)(end - key));
    if (!eq || eq == key || memchr(key, '\0', (size_t)(eq - key)))
      return fail(t, err, EBADMSG, hname, "malformed pax record at byte %zu", off);
    *eq = '\0';
    *end = '\0';
    if (pax_apply(t, p, key, eq + 1, (size_t)(end - eq - 1), hname, err) < 0)
      return -1;
    off += rlen;
  }
  return 0;
}

/* ---- headers ---- */

static bool
is_zero(const uint8_t *b, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (b[i])
      return false;
  return true;
}

static bool
checksum_ok(const uint8_t *h)
{
  int64_t want;
  if (parse_num(h + H_CHKSUM, 8, &want) < 0)
    return false;
  /* The standard sums unsigned bytes; old writers summed signed chars. */
  int64_t us = 0, ss = 0;
  for (size_t i = 0; i < BLOCK; i++) {
    uint8_t b = (i >= H_CHKSUM && i < H_CHKSUM + 8) ? ' ' : h[i];
    us += b;
    ss += (signed char)b;
  }
  return want == us || want == ss;
}

static bool
is_posix_ustar(const uint8_t *h)
{
  return memcmp(h + H_MAGIC, "ustar\0", 6) == 0;
}

static bool
is_gnu(const uint8_t *h)
{
  return memcmp(h + H_MAGIC, "ustar  \0", 8) == 0;
}

static char *
field_str(const uint8_t *f, size_t len)
{
  return lbx_xstrndup((const char *)f, strnlen((const char *)f, len));
}

/* name, joined to the ustar prefix when there is one. */
static char *
header_path(const uint8_t *h)
{
  size_t nlen = strnlen((const char *)h + H_NAME, 100);
  size_t plen = 0;
  if (is_posix_ustar(h)) {
    /* star keeps atime/ctime in the prefix's tail and says so with "tar\0" */
    size_t pmax = memcmp(h + 508, "tar\0", 4) == 0 ? 131 : 155;
    plen = strnlen((const char *)h + H_PREFIX, pmax);
  }
  if (plen == 0)
    return lbx_xstrndup((const char *)h + H_NAME, nlen);
  char *p = lbx_xmalloc(plen + 1 + nlen + 1);
  memcpy(p, h + H_PREFIX, plen);
  p[plen] = '/';
  memcpy(p + plen + 1, h + H_NAME, nlen);
  p[plen + 1 + nlen] = '\0';
  return p;
}

/* The data of a metadata header ('x', 'g', 'L', 'K'), NUL-terminated, and
 * the padding after it consumed. */
static int
read_meta(lbx_tar *t, const uint8_t *h, const char *hname, char **out, size_t *outlen,
          lbx_err **err)
{
  int64_t size;
  if (parse_num(h + H_SIZE, 12, &size) < 0 || size < 0)
    return fail(t, err, EBADMSG, hname, "invalid size field in '%c' header", h[H_TYPE]);
  if (size > META_MAX)
    return fail(t, err, EFBIG, hname, "'%c' header of %lld bytes exceeds the %d byte limit",
                h[H_TYPE], (long long)size, META_MAX);
  _cleanup_free_ char *d = lbx_xmalloc((size_t)size + 1);
  ssize_t r = read_full(t, (uint8_t *)d, (size_t)size, err);
  if (r < 0)
    return -1;
  if (r < size)
    return fail(t, err, EBADMSG, hname, "unexpected end of archive");
  d[size] = '\0';
  int s = skip(t, (BLOCK - (uint64_t)size % BLOCK) % BLOCK, err);
  if (s < 0)
    return -1;
  if (s > 0)
    return fail(t, err, EBADMSG, hname, "unexpected end of archive");
  *out = steal_pointer(&d);
  *outlen = (size_t)size;
  return 0;
}

static void
entry_clear(lbx_tar *t)
{
  lbx_tar_entry *e = &t->ent;
  free(e->path);
  free(e->linkname);
  free(e->uname);
  free(e->gname);
  for (size_t i = 0; i < e->nxattrs; i++)
    xattr_clear(&e->xattrs[i]);
  free(e->xattrs);
  memset(e, 0, sizeof *e);
  t->have_entry = false;
}

/* Which pax set supplies a field, if any: the file's own records, else the
 * global ones unless the file's records removed it. */
static const pax_set *
pax_pick(const lbx_tar *t, unsigned bit)
{
  if (t->local.set & bit)
    return &t->local;
  if (!(t->local.unset & bit) && (t->global.set & bit))
    return &t->global;
  return NULL;
}

/* Numeric header field n bytes wide into [min, max]. */
static int
header_num(lbx_tar *t, const uint8_t *f, size_t n, int64_t min, int64_t max, const char *what,
           const char *path, int64_t *out, lbx_err **err)
{
  if (parse_num(f, n, out) < 0 || *out < min || *out > max)
    return fail(t, err, EBADMSG, path, "invalid %s field", what);
  return 0;
}

/* Fills t->ent from a file header and the pending pax/GNU records. */
static int
build_entry(lbx_tar *t, const uint8_t *h, lbx_err **err)
{
  lbx_tar_entry *e = &t->ent;
  const pax_set *p;
  int64_t v;

  if ((p = pax_pick(t, PF_PATH)))
    e->path = lbx_xstrdup(p->path);
  else if (t->long_name)
    e->path = steal_pointer(&t->long_name);
  else
    e->path = header_path(h);
  t->have_entry = true; /* so that clearing frees it */

  char type = (char)h[H_TYPE];
  switch (type) {
  case '0':
  case '\0':
  case '7':
    /* old archives mark directories only by a trailing slash */
    e->type = *e->path && e->path[strlen(e->path) - 1] == '/' ? LBX_TAR_DIR : LBX_TAR_REG;
    break;
  case '1':
    e->type = LBX_TAR_HARDLINK;
    break;
  case '2':
    e->type = LBX_TAR_SYMLINK;
    break;
  case '3':
    e->type = LBX_TAR_CHR;
    break;
  case '4':
    e->type = LBX_TAR_BLK;
    break;
  case '5':
    e->type = LBX_TAR_DIR;
    break;
  case '6':
    e->type = LBX_TAR_FIFO;
    break;
  case 'S':
    return fail(t, err, ENOTSUP, e->path, "sparse files are not supported");
  case 'V':
    return fail(t, err, ENOTSUP, e->path, "volume headers (type 'V') are not supported");
  case 'M':
  case 'N':
    return fail(t, err, ENOTSUP, e->path, "multi-volume archives (type '%c') are not supported",
                type);
  default:
    if (type >= 0x21 && type < 0x7f)
      return fail(t, err, ENOTSUP, e->path, "unknown entry type '%c'", type);
    return fail(t, err, ENOTSUP, e->path, "unknown entry type 0x%02x", (unsigned char)type);
  }
  if (t->local.sparse || t->global.sparse) {
    const char *real = t->local.sparse_name ? t->local.sparse_name : e->path;
    return fail(t, err, ENOTSUP, real, "sparse files are not supported");
  }

  if (e->type == LBX_TAR_SYMLINK || e->type == LBX_TAR_HARDLINK) {
    if ((p = pax_pick(t, PF_LINK)))
      e->linkname = lbx_xstrdup(p->linkpath);
    else if (t->long_link)
      e->linkname = steal_pointer(&t->long_link);
    else
      e->linkname = field_str(h + H_LINK, 100);
  }

  if (header_num(t, h + H_MODE, 8, 0, INT64_MAX, "mode", e->path, &v, err) < 0)
    return -1;
  e->mode = (uint32_t)v & 07777;

  if ((p = pax_pick(t, PF_UID)))
    e->uid = p->uid;
  else if (header_num(t, h + H_UID, 8, 0, UINT32_MAX, "uid", e->path, &v, err) < 0)
    return -1;
  else
    e->uid = (uint32_t)v;
  if ((p = pax_pick(t, PF_GID)))
    e->gid = p->gid;
  else if (header_num(t, h + H_GID, 8, 0, UINT32_MAX, "gid", e->path, &v, err) < 0)
    return -1;
  else
    e->gid = (uint32_t)v;

  bool ustar = is_posix_ustar(h) || is_gnu(h);
  if ((p = pax_pick(t, PF_UNAME)))
    e->uname = lbx_xstrdup(p->uname);
  else if (ustar && h[H_UNAME])
    e->uname = field_str(h + H_UNAME, 32);
  if ((p = pax_pick(t, PF_GNAME)))
    e->gname = lbx_xstrdup(p->gname);
  else if (ustar && h[H_GNAME])
    e->gname = field_str(h + H_GNAME, 32);

  uint64_t size;
  if ((p = pax_pick(t, PF_SIZE)))
    size = p->size;
  else if (header_num(t, h + H_SIZE, 12, 0, INT64_MAX, "size", e->path, &v, err) < 0)
    return -1;
  else
    size = (uint64_t)v;

  if ((p = pax_pick(t, PF_MTIME))) {
    e->mtime_sec = p->mtime_sec;
    e->mtime_nsec = p->mtime_nsec;
  } else if (header_num(t, h + H_MTIME, 12, INT64_MIN, INT64_MAX, "mtime", e->path, &v, err) < 0) {
    return -1;
  } else {
    e->mtime_sec = v;
  }

  if (e->type == LBX_TAR_CHR || e->type == LBX_TAR_BLK) {
    if (header_num(t, h + H_DEVMAJOR, 8, 0, UINT32_MAX, "devmajor", e->path, &v, err) < 0)
      return -1;
    e->devmajor = (uint32_t)v;
    if (header_num(t, h + H_DEVMINOR, 8, 0, UINT32_MAX, "devminor", e->path, &v, err) < 0)
      return -1;
    e->devminor = (uint32_t)v;
  }

  /* global xattrs first, the file's own replace those of the same name */
  size_t cap = 0;
  const pax_set *sets[] = {&t->global, &t->local};
  for (size_t s = 0; s < 2; s++) {
    for (size_t i = 0; i < sets[s]->nxattrs; i++) {
      const lbx_tar_xattr *x = &sets[s]->xattrs[i];
      uint8_t *val = lbx_xmalloc(x->len + 1);
      memcpy(val, x->value, x->len);
      xattrs_put(&e->xattrs, &e->nxattrs, &cap, lbx_xstrdup(x->name), val, x->len, NULL);
    }
  }

  /* Any type may be followed by data (pax allows it for hardlinks, old
   * writers for directories); only regular files expose it. */
  e->size = e->type == LBX_TAR_REG ? size : 0;
  e->offset = t->pos;
  t->data_left = size;
  t->pad_left = (BLOCK - size % BLOCK) % BLOCK;
  return 0;
}

/* Name for errors about a header whose entry is not known yet. */
static const char *
pending_name(const lbx_tar *t)
{
  if (t->local.set & PF_PATH)
    return t->local.path;
  return t->long_name;
}

int
lbx_tar_next(lbx_tar *t, const lbx_tar_entry **out, lbx_err **err)
{
  *out = NULL;
  if (t->state == ST_END)
    return 0;
  if (t->state == ST_FAILED)
    return lbx_error(err, EINVAL, "%s: tar reader used after an error", t->name);

  if (t->have_entry) {
    int r = skip(t, t->data_left + t->pad_left, err);
    if (r < 0)
      return -1;
    if (r > 0)
      return fail(t, err, EBADMSG, t->ent.path, "unexpected end of archive");
    t->data_left = t->pad_left = 0;
    entry_clear(t);
  }

  uint8_t h[BLOCK];
  for (;;) {
    uint64_t hoff = t->pos;
    ssize_t r = read_full(t, h, BLOCK, err);
    if (r < 0)
      return -1;
    bool pending = t->local.set || t->local.unset || t->local.nxattrs || t->local.sparse ||
                   t->long_name || t->long_link;
    if (r == 0 && !pending) {
      t->state = ST_END;
      return 0;
    }
    if (r < BLOCK)
      return fail(t, err, EBADMSG, pending_name(t),
                  "unexpected end of archive in the header at offset %llu",
                  (unsigned long long)hoff);

    if (is_zero(h, BLOCK)) {
      /* the end: a second zero block, or EOF (possibly mid-block: only
       * padding was lost) */
      r = read_full(t, h, BLOCK, err);
      if (r < 0)
        return -1;
      if (!is_zero(h, (size_t)r))
        return fail(t, err, EBADMSG, NULL, "zero block followed by data at offset %llu",
                    (unsigned long long)hoff);
      if (pending)
        return fail(t, err, EBADMSG, pending_name(t),
                    "unexpected end of archive after an extended header");
      t->state = ST_END;
      return 0;
    }

    if (!checksum_ok(h))
      return fail(t, err, EBADMSG, NULL, "bad tar header checksum at offset %llu",
                  (unsigned long long)hoff);

    char type = (char)h[H_TYPE];
    if (type == 'x' || type == 'X' || type == 'g' || type == 'L' || type == 'K') {
      _cleanup_free_ char *hname = header_path(h);
      _cleanup_free_ char *data = NULL;
      size_t len = 0;
      if (read_meta(t, h, hname, &data, &len, err) < 0)
        return -1;
      if (type == 'L' || type == 'K') {
        char **slot = type == 'L' ? &t->long_name : &t->long_link;
        free(*slot);
        *slot = lbx_xstrndup(data, strnlen(data, len));
      } else if (pax_parse(t, type == 'g' ? &t->global : &t->local, data, len, hname, err) < 0) {
        return -1;
      }
      continue;
    }

    int b = build_entry(t, h, err);
    pax_clear(&t->local);
    free(t->long_name);
    free(t->long_link);
    t->long_name = t->long_link = NULL;
    if (b < 0)
      return -1;
    *out = &t->ent;
    return 1;
  }
}

ssize_t
lbx_tar_read(lbx_tar *t, void *buf, size_t len, lbx_err **err)
{
  if (t->state == ST_FAILED)
    return lbx_error(err, EINVAL, "%s: tar reader used after an error", t->name);
  if (!t->have_entry || t->ent.type != LBX_TAR_REG || t->data_left == 0 || len == 0)
    return 0;
  if (len > t->data_left)
    len = (size_t)t->data_left;
  ssize_t r = read_some(t, buf, len, err);
  if (r < 0)
    return -1;
  if (r == 0)
    return fail(t, err, EBADMSG, t->ent.path, "unexpected end of archive");
  t->data_left -= (uint64_t)r;
  return r;
}

lbx_tar *
lbx_tar_new(const char *name, lbx_read_fn read, void *ctx)
{
  lbx_tar *t = lbx_xcalloc(1, sizeof *t);
  t->name = lbx_xstrdup(name);
  t->read = read;
  t->ctx = ctx;
  t->buf = lbx_xmalloc(BUF_SIZE);
  return t;
}

void
lbx_tar_free(lbx_tar *t)
{
  if (!t)
    return;
  entry_clear(t);
  pax_clear(&t->global);
  pax_clear(&t->local);
  free(t->long_name);
  free(t->long_link);
  free(t->buf);
  free(t->name);
  free(t);
}

int
lbx_tar_clean_path(const char *path, char **out, lbx_err **err)
{
  _cleanup_free_ char *res = lbx_xmalloc(strlen(path) + 1);
  size_t o = 0;
  const char *p = path;
  while (*p) {
    while (*p == '/')
      p++;
    const char *s = p;
    while (*p && *p != '/')
      p++;
    size_t len = (size_t)(p - s);
    if (len == 0 || (len == 1 && s[0] == '.'))
      continue;
    if (len == 2 && s[0] == '.' && s[1] == '.') {
      _cleanup_free_ char *q = quote(path);
      return lbx_error(err, EINVAL, "path \"%s\": \"..\" components are not allowed", q);
    }
    if (o)
      res[o++] = '/';
    memcpy(res + o, s, len);
    o += len;
  }
  res[o] = '\0';
  *out = steal_pointer(&res);
  return 0;
}
