/* A POSIX tar writer: ustar headers, pax records where ustar falls short.
 * See tarw.h. */
#include "tarw.h"
#include "util.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define BLOCK 512

struct ustar {
  char name[100], mode[8], uid[8], gid[8], size[12], mtime[12], chksum[8], typeflag, linkname[100],
      magic[6], version[2], uname[32], gname[32], devmajor[8], devminor[8], prefix[155], pad[12];
};
_Static_assert(sizeof(struct ustar) == BLOCK, "a ustar header is one block");

/* value in width-1 octal digits and a NUL, if it fits */
static bool
octal(char *field, size_t width, uint64_t value)
{
  char tmp[32];
  int n = snprintf(tmp, sizeof tmp, "%0*llo", (int)(width - 1), (unsigned long long)value);
  if (n < 0 || (size_t)n > width - 1)
    return false;
  memcpy(field, tmp, width); /* with its NUL */
  return true;
}

/* zeros from n bytes written up to the end of their last block */
static int
pad(int fd, uint64_t n)
{
  static const char zero[BLOCK];
  return n % BLOCK ? lbx_write_all(fd, zero, BLOCK - n % BLOCK) : 0;
}

static int
write_blocks(int fd, const void *data, size_t n)
{
  int r = lbx_write_all(fd, data, n);
  return r < 0 ? r : pad(fd, n);
}

/* one "LEN key=value\n" record; LEN counts the whole record, itself too */
static void
pax_record(char **buf, size_t *len, const char *key, const char *value)
{
  size_t body = strlen(key) + strlen(value) + 3; /* " ", "=", "\n" */
  size_t digits = 1;
  while (true) {
    size_t total = body + digits, d = 1;
    for (size_t t = total; t >= 10; t /= 10)
      d++;
    if (d == digits)
      break;
    digits = d;
  }
  char *rec = lbx_xasprintf("%zu %s=%s\n", body + digits, key, value);
  size_t n = strlen(rec);
  *buf = lbx_xrealloc(*buf, *len + n + 1);
  memcpy(*buf + *len, rec, n + 1);
  *len += n;
  free(rec);
}

static void
checksum(struct ustar *h)
{
  memset(h->chksum, ' ', sizeof h->chksum);
  unsigned sum = 0;
  for (size_t i = 0; i < BLOCK; i++)
    sum += ((const unsigned char *)h)[i];
  snprintf(h->chksum, sizeof h->chksum, "%06o", sum); /* six digits, NUL, and a space kept */
  h->chksum[7] = ' ';
}

int
lbx_tarw_header(int fd, const char *name, const struct stat *st, const char *link)
{
  char type;
  uint64_t size = 0;
  switch (st->st_mode & S_IFMT) {
  case S_IFREG:
    type = '0';
    size = (uint64_t)st->st_size;
    break;
  case S_IFDIR:
    type = '5';
    break;
  case S_IFLNK:
    type = '2';
    break;
  case S_IFCHR:
    type = '3';
    break;
  case S_IFBLK:
    type = '4';
    break;
  case S_IFIFO:
    type = '6';
    break;
  default:
    return -EINVAL;
  }
  _cleanup_free_ char *path =
      type == '5' ? lbx_xasprintf("%s%s", name, name[strlen(name) - 1] == '/' ? "" : "/")
                  : lbx_xstrdup(name);
  struct ustar h;
  memset(&h, 0, sizeof h);
  _cleanup_free_ char *pax = NULL;
  size_t paxlen = 0;
  if (strlen(path) <= sizeof h.name)
    memcpy(h.name, path, strlen(path));
  else {
    pax_record(&pax, &paxlen, "path", path);
    memcpy(h.name, path, sizeof h.name); /* what a reader without pax gets */
  }
  if (type == '2') {
    if (strlen(link) <= sizeof h.linkname)
      memcpy(h.linkname, link, strlen(link));
    else
      pax_record(&pax, &paxlen, "linkpath", link);
  }
  char num[32];
  if (!octal(h.size, sizeof h.size, size)) {
    snprintf(num, sizeof num, "%llu", (unsigned long long)size);
    pax_record(&pax, &paxlen, "size", num);
    octal(h.size, sizeof h.size, 0);
  }
  if (!octal(h.uid, sizeof h.uid, st->st_uid)) {
    snprintf(num, sizeof num, "%u", (unsigned)st->st_uid);
    pax_record(&pax, &paxlen, "uid", num);
    octal(h.uid, sizeof h.uid, 0);
  }
  if (!octal(h.gid, sizeof h.gid, st->st_gid)) {
    snprintf(num, sizeof num, "%u", (unsigned)st->st_gid);
    pax_record(&pax, &paxlen, "gid", num);
    octal(h.gid, sizeof h.gid, 0);
  }
  octal(h.mode, sizeof h.mode, st->st_mode & 07777);
  if (st->st_mtim.tv_sec < 0 || !octal(h.mtime, sizeof h.mtime, (uint64_t)st->st_mtim.tv_sec)) {
    /* before 1970 or after 2242 */
    snprintf(num, sizeof num, "%lld", (long long)st->st_mtim.tv_sec);
    pax_record(&pax, &paxlen, "mtime", num);
    octal(h.mtime, sizeof h.mtime, 0);
  }
  h.typeflag = type;
  memcpy(h.magic, "ustar", 6);
  memcpy(h.version, "00", 2);
  if (type == '3' || type == '4') {
    octal(h.devmajor, sizeof h.devmajor, major(st->st_rdev));
    octal(h.devminor, sizeof h.devminor, minor(st->st_rdev));
  }
  if (pax) {
    struct ustar x;
    memset(&x, 0, sizeof x);
    snprintf(x.name, sizeof x.name, "PaxHeaders/%.80s", path);
    octal(x.mode, sizeof x.mode, 0644);
    octal(x.uid, sizeof x.uid, 0);
    octal(x.gid, sizeof x.gid, 0);
    octal(x.size, sizeof x.size, paxlen);
    memcpy(x.mtime, h.mtime, sizeof x.mtime);
    x.typeflag = 'x';
    memcpy(x.magic, "ustar", 6);
    memcpy(x.version, "00", 2);
    checksum(&x);
    int r = write_blocks(fd, &x, sizeof x);
    if (r == 0)
      r = write_blocks(fd, pax, paxlen);
    if (r < 0)
      return r;
  }
  checksum(&h);
  return write_blocks(fd, &h, sizeof h);
}

int
lbx_tarw_data(int fd, int in, uint64_t size, int *read_err)
{
  static char buf[128 * 1024];
  uint64_t left = size;
  while (left > 0) {
    size_t want = left < sizeof buf ? (size_t)left : sizeof buf;
    ssize_t n = read(in, buf, want);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      *read_err = n < 0 ? errno : 0;
      return 1;
    }
    int r = lbx_write_all(fd, buf, (size_t)n);
    if (r < 0)
      return r;
    left -= (uint64_t)n;
  }
  return pad(fd, size);
}

int
lbx_tarw_end(int fd)
{
  static const char zero[2 * BLOCK];
  return lbx_write_all(fd, zero, sizeof zero);
}
