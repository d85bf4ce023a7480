#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <stdarg.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

void
lbx_hex(const uint8_t *bin, size_t n, char *out)
{
  static const char digits[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = digits[bin[i] >> 4];
    out[2 * i + 1] = digits[bin[i] & 15];
  }
  out[2 * n] = '\0';
}

static int
hexval(char c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  return -1; /* digests are lowercase by spec */
}

int
lbx_unhex(const char *hex, size_t n, uint8_t *out)
{
  for (size_t i = 0; i < n; i++) {
    int hi = hexval(hex[2 * i]), lo = hi < 0 ? -1 : hexval(hex[2 * i + 1]);
    if (hi < 0 || lo < 0)
      return -EINVAL;
    out[i] = (uint8_t)(hi << 4 | lo);
  }
  return 0;
}

int
lbx_digest_parse(const char *s, uint8_t out[LBX_DIGEST_LEN], int allow_bare)
{
  if (strncmp(s, "sha256:", 7) == 0)
    s += 7;
  else if (!allow_bare)
    return -EINVAL;
  if (strlen(s) != 64)
    return -EINVAL;
  return lbx_unhex(s, LBX_DIGEST_LEN, out);
}

static void *
oom(void)
{
  fputs("lazybox: out of memory\n", stderr);
  abort();
}

void *
lbx_xmalloc(size_t n)
{
  void *p = malloc(n ? n : 1);
  return p ? p : oom();
}

void *
lbx_xcalloc(size_t n, size_t m)
{
  void *p = calloc(n ? n : 1, m ? m : 1);
  return p ? p : oom();
}

void *
lbx_xrealloc(void *p, size_t n)
{
  void *q = realloc(p, n ? n : 1);
  return q ? q : oom();
}

char *
lbx_xstrdup(const char *s)
{
  char *p = strdup(s);
  return p ? p : oom();
}

char *
lbx_xstrndup(const char *s, size_t n)
{
  char *p = strndup(s, n);
  return p ? p : oom();
}

char *
lbx_xasprintf(const char *fmt, ...)
{
  va_list ap;
  char *s;
  va_start(ap, fmt);
  int r = vasprintf(&s, fmt, ap);
  va_end(ap);
  return r < 0 ? oom() : s;
}

ssize_t
lbx_read_all(int fd, void *buf, size_t n)
{
  size_t done = 0;
  while (done < n) {
    ssize_t r = read(fd, (char *)buf + done, n - done);
    if (r < 0) {
      if (errno == EINTR)
        continue;
      return -errno;
    }
    if (r == 0)
      break;
    done += (size_t)r;
  }
  return (ssize_t)done;
}

int
lbx_write_all(int fd, const void *buf, size_t n)
{
  size_t done = 0;
  while (done < n) {
    ssize_t r = write(fd, (const char *)buf + done, n - done);
    if (r < 0) {
      if (errno == EINTR)
        continue;
      return -errno;
    }
    done += (size_t)r;
  }
  return 0;
}

void
lbx_strv_free(char **v)
{
  for (size_t i = 0; v && v[i]; i++)
    free(v[i]);
  free(v);
}

void
lbx_strv_freep(char ***v)
{
  lbx_strv_free(*v);
}

int
lbx_mkdir_p(const char *path, mode_t mode)
{
  /* The whole path usually exists (every command opens the store's dirs):
   * one call then, not one per component. */
  if (mkdir(path, mode) == 0 || errno == EEXIST)
    return 0;
  if (errno != ENOENT)
    return -errno;
  _cleanup_free_ char *p = lbx_xstrdup(path);
  for (char *s = p + 1; *s; s++) {
    if (*s != '/')
      continue;
    *s = '\0';
    if (mkdir(p, mode) < 0 && errno != EEXIST)
      return -errno;
    *s = '/';
  }
  if (mkdir(p, mode) < 0 && errno != EEXIST)
    return -errno;
  return 0;
}

int
lbx_read_file(const char *path, size_t max, char **out, size_t *len)
{
  _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return -errno;
  struct stat st;
  if (fstat(fd, &st) < 0)
    return -errno;
  if ((size_t)st.st_size > max)
    return -EFBIG;
  _cleanup_free_ char *buf = lbx_xmalloc((size_t)st.st_size + 1);
  ssize_t n = lbx_read_all(fd, buf, (size_t)st.st_size);
  if (n < 0)
    return (int)n;
  buf[n] = '\0';
  if (len)
    *len = (size_t)n;
  *out = steal_pointer(&buf);
  return 0;
}

int64_t
lbx_now_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int
cmp_names(const void *a, const void *b)
{
  return strcmp(*(char *const *)a, *(char *const *)b);
}

bool
lbx_has_suffix(const char *s, const char *suffix)
{
  size_t l = strlen(s), n = strlen(suffix);
  return l > n && strcmp(s + l - n, suffix) == 0;
}

static bool
ends_with_one(const char *name, const char *const *suffixes)
{
  for (; *suffixes; suffixes++)
    if (lbx_has_suffix(name, *suffixes))
      return true;
  return false;
}

int
lbx_dir_names(const char *dir, const char *const *suffixes, char ***out)
{
  _cleanup_(lbx_closedirp) DIR *d = opendir(dir);
  if (!d)
    return -errno;
  char **v = lbx_xcalloc(1, sizeof *v);
  size_t n = 0;
  struct dirent *de;
  while ((de = readdir(d)))
    if (de->d_type != DT_DIR && ends_with_one(de->d_name, suffixes)) {
      v = lbx_xrealloc(v, (n + 2) * sizeof *v);
      v[n++] = lbx_xstrdup(de->d_name);
      v[n] = NULL;
    }
  qsort(v, n, sizeof *v, cmp_names);
  *out = v;
  return 0;
}
