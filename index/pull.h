/* `pull`: an image from a registry into the store. The manifest (a list or
 * index picks the platform), the config, then every layer not indexed yet,
 * streamed from the registry straight into the indexing path, several at
 * once, resumed with range requests after an interruption. */
#ifndef LBX_PULL_H
#define LBX_PULL_H

#include "index.h"
#include "registry.h"

enum lbx_pull_event {
  LBX_PULL_TRYING,     /* what: the reference tried ("docker.io/library/x:tag") */
  LBX_PULL_SOURCE,     /* manifest and config read; layers come next */
  LBX_PULL_BLOB_SKIP,  /* what: layer digest, already in the store */
  LBX_PULL_BLOB_BYTES, /* what: layer digest; done of total bytes (total 0: unknown) */
  LBX_PULL_BLOB_RETRY, /* what: layer digest; interrupted, resuming at done */
  LBX_PULL_BLOB_DONE,  /* what: layer digest, every byte received */
  LBX_PULL_CONFIG,     /* what: config digest */
  LBX_PULL_WRITING,    /* recording the image */
};

/* Called from several threads, never two at once. */
typedef void (*lbx_pull_fn)(void *ctx, enum lbx_pull_event ev, const char *what, uint64_t done,
                            uint64_t total);

typedef struct lbx_pull_opts {
  lbx_registry_opts reg;
  const char *platform; /* "os/arch[/variant]", NULL for this host's */
  lbx_pull_fn progress; /* may be NULL */
  void *progress_ctx;
} lbx_pull_opts;

/* Pulls name (a reference as Podman takes it; a short name is tried under
 * registries.conf's unqualified-search-registries, else docker.io). id gets
 * the image ID; *pulled (may be NULL) the full reference that worked. The
 * image is named by that reference when it has a tag; `name@digest` finds
 * it by the digest of the image manifest that was stored (for a manifest
 * list, the manifest of the chosen platform). */
int lbx_pull(lbx_store *s, const char *name, const lbx_pull_opts *o, char id[LBX_DIGEST_HEX],
             char **pulled, lbx_err **err);

/* Parses "os/arch[/variant]" (arch aliases such as x86_64 accepted). */
int lbx_platform_parse(const char *s, char **os, char **arch, char **variant, lbx_err **err);

#endif
