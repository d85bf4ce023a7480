/* Small helpers every module shares: cleanup attributes, ownership transfer,
 * hex digests. Kept header-only where inlining matters. */
#ifndef LBX_UTIL_H
#define LBX_UTIL_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <unistd.h>
#include <dirent.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _cleanup_free_ _cleanup_(lbx_freep)
#define _cleanup_close_ _cleanup_(lbx_closep)
#define _cleanup_fclose_ _cleanup_(lbx_fclosep)
#define _cleanup_closedir_ _cleanup_(lbx_closedirp)

#define LBX_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static inline void
lbx_freep(void *p)
{
  free(*(void **)p);
}

/* Closing keeps errno: cleanup runs on error paths that are about to report it. */
static inline void
lbx_closep(int *fd)
{
  if (*fd >= 0) {
    int saved = errno;
    close(*fd);
    errno = saved;
  }
}

static inline void
lbx_fclosep(FILE **f)
{
  if (*f) {
    int saved = errno;
    fclose(*f);
    errno = saved;
  }
}

static inline void
lbx_closedirp(DIR **d)
{
  if (*d) {
    int saved = errno;
    closedir(*d);
    errno = saved;
  }
}

/* Hands an owned pointer out of a cleanup scope. */
static inline void *
lbx_steal_pointer_(void *pp)
{
  void **p = pp;
  void *v = *p;
  *p = NULL;
  return v;
}
#define steal_pointer(pp) ((__typeof__(*(pp)))lbx_steal_pointer_(pp))

static inline int
steal_fd(int *fd)
{
  int v = *fd;
  *fd = -1;
  return v;
}

#define LBX_DIGEST_LEN 32           /* sha256 bytes */
#define LBX_DIGEST_HEX (64 + 1)     /* hex + NUL */
#define LBX_DIGEST_STR (7 + 64 + 1) /* "sha256:" + hex + NUL */

void lbx_hex(const uint8_t *bin, size_t n, char *out);
/* Parses "sha256:<64 hex>" (or bare hex if allow_bare); 0 or -EINVAL. */
int lbx_digest_parse(const char *s, uint8_t out[LBX_DIGEST_LEN], int allow_bare);
int lbx_unhex(const char *hex, size_t n, uint8_t *out);

/* Allocation that cannot fail: out-of-memory aborts, like GLib's g_malloc. */
void *lbx_xmalloc(size_t n);
void *lbx_xcalloc(size_t n, size_t m);
void *lbx_xrealloc(void *p, size_t n);
char *lbx_xstrdup(const char *s);
char *lbx_xstrndup(const char *s, size_t n);
char *lbx_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Full read/write, retrying on EINTR and short counts; -errno on failure. */
ssize_t lbx_read_all(int fd, void *buf, size_t n);
int lbx_write_all(int fd, const void *buf, size_t n);
/* mkdir -p with the given mode for the created components. */
int lbx_mkdir_p(const char *path, mode_t mode);
/* A NULL-terminated vector of strings, and the strings. */
void lbx_strv_free(char **v);
void lbx_strv_freep(char ***v);
/* Reads a whole file (at most max bytes) into a NUL-terminated buffer. */
int lbx_read_file(const char *path, size_t max, char **out, size_t *len);
/* Whether s ends with suffix and has something before it. */
bool lbx_has_suffix(const char *s, const char *suffix);

/* The names in dir that end with one of suffixes (a NULL-terminated list),
 * directories left out, sorted: 0 with *out a NULL-terminated vector (maybe
 * empty), or -errno. */
int lbx_dir_names(const char *dir, const char *const *suffixes, char ***out);

int64_t lbx_now_ns(void);

#endif
