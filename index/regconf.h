/* registries.conf (containers-registries.conf(5), version 2): where a
 * reference is pulled from. Read from $CONTAINERS_REGISTRIES_CONF alone when
 * it is set; else $XDG_CONFIG_HOME/containers/registries.conf and its
 * registries.conf.d/ when that file exists, otherwise
 * /etc/containers/registries.conf, /etc/containers/registries.conf.d/ *.conf
 * and then the user's registries.conf.d/ *.conf, in name order (a later
 * file's unqualified-search-registries replaces the earlier list, its
 * [[registry]] replaces one with the same prefix, its aliases add to or
 * replace earlier ones; "" cancels an alias). Known keys:
 * unqualified-search-registries; [[registry]] prefix, location, insecure,
 * blocked, mirror-by-digest-only; [[registry.mirror]] location, insecure,
 * pull-from-mirror; [aliases]. Other keys and tables are read and ignored,
 * as containers/image ignores what it does not use. */
#ifndef LBX_REGCONF_H
#define LBX_REGCONF_H

#include <stdbool.h>
#include <stddef.h>

#include "../store/error.h"

typedef struct lbx_regconf lbx_regconf;

/* 0 with *out (an empty configuration when no file exists), -1 with *err
 * naming the file, line and reason. */
int lbx_regconf_load(lbx_regconf **out, lbx_err **err);
/* Parses one file's text into c (the fuzz target's entry; load uses it). */
int lbx_regconf_parse(lbx_regconf *c, const char *path, const char *text, lbx_err **err);
lbx_regconf *lbx_regconf_new(void);
void lbx_regconf_free(lbx_regconf *c);
static inline void
lbx_regconf_freep(lbx_regconf **c)
{
  lbx_regconf_free(*c);
}

/* unqualified-search-registries, in order (n may be 0). */
const char *const *lbx_regconf_search(const lbx_regconf *c, size_t *n);
/* The [aliases] value of a short name ("alpine", "library/alpine"), or NULL. */
const char *lbx_regconf_alias(const lbx_regconf *c, const char *name);

/* insecure = true of the [[registry]] whose prefix matches host longest
 * (for `login`, which names only a host). */
bool lbx_regconf_insecure(const lbx_regconf *c, const char *host);

/* One place to pull a repository from: "host[:port]" and the repository
 * path there, and whether TLS may be skipped (insecure = true). */
typedef struct lbx_endpoint {
  char *host;
  char *repo;
  bool insecure;
  bool mirror;
} lbx_endpoint;

/* Where to pull name ("domain/path", docker.io's library/ included) from:
 * its [[registry]]'s mirrors that apply (by_digest: the reference names a
 * digest), then the registry itself, rewritten by the longest matching
 * prefix; with no match, the name as it is. -1 with *err (EACCES) when the
 * matching registry is blocked, or when a rewritten name is not a valid
 * one. */
int lbx_regconf_endpoints(const lbx_regconf *c, const char *name, bool by_digest,
                          lbx_endpoint **eps, size_t *n, lbx_err **err);
void lbx_endpoints_free(lbx_endpoint *eps, size_t n);

#endif
