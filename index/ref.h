/* Image references as Podman and containers/image parse them:
 * [domain[:port]/]path[:tag][@algo:hex], docker.io as the default domain,
 * "library/" for one-part names on docker.io, "latest" when neither a tag
 * nor a digest is given. */
#ifndef LBX_REF_H
#define LBX_REF_H

#include <stdbool.h>

#include "../store/error.h"

typedef struct lbx_ref {
  char *domain;    /* "docker.io", "quay.io", "localhost:5000", ... */
  char *path;      /* "library/busybox", "org/img" */
  char *tag;       /* NULL when only a digest was given */
  char *digest;    /* "sha256:<hex>" or NULL */
  bool short_name; /* no domain was written */
} lbx_ref;

enum {
  /* Short names get "localhost" as their domain and no "library/": what
   * Podman does for names it makes itself (tag, import, commit). */
  LBX_REF_LOCAL = 1 << 0,
};

/* Parses s; -1 with *err naming s and what is wrong with it. */
int lbx_ref_parse(const char *s, unsigned flags, lbx_ref **out, lbx_err **err);
void lbx_ref_free(lbx_ref *r);
static inline void
lbx_ref_freep(lbx_ref **r)
{
  lbx_ref_free(*r);
}
/* "domain/path" (newly allocated). */
char *lbx_ref_name(const lbx_ref *r);
/* "domain/path:tag", "domain/path@digest" or "domain/path:tag@digest". */
char *lbx_ref_string(const lbx_ref *r);

#endif
