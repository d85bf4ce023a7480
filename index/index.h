/* index/: turning layers and whole images into store rows. The public face
 * of the module for cli/ (registry pulls, a later issue, feed the same
 * lbx_index_layer path). */
#ifndef LBX_INDEX_H
#define LBX_INDEX_H

#include <stdbool.h>
#include <stdint.h>

#include "../store/store.h"
#include "stream.h"

/* One layer to index, as bytes from a source. */
typedef struct lbx_layer_src {
  const char *name; /* what errors call the layer: its digest or file name */
  lbx_read_fn read;
  void *ctx;
  const char *digest;    /* expected compressed digest, or NULL */
  const char *diff_id;   /* expected diff_id, or NULL */
  uint64_t size;         /* expected compressed size, or 0 for unknown */
  unsigned stream_flags; /* LBX_STREAM_* */
} lbx_layer_src;

typedef struct lbx_layer_result {
  char digest[LBX_DIGEST_STR];  /* of the bytes read */
  char diff_id[LBX_DIGEST_STR]; /* of the uncompressed tar */
  enum lbx_compression compression;
  uint64_t size; /* compressed bytes read */
} lbx_layer_result;

/* Whether a manifest's layer media type is one lazybox can index (OCI and
 * Docker tar layers, plain, gzip or zstd, distributable or not). */
bool lbx_layer_media_type_known(const char *mt);
/* The OCI media type of a layer read with that compression. */
const char *lbx_layer_media_type(enum lbx_compression c);

/* Reads the layer through the tar reader into a store transaction and
 * commits it. Checks the digests given in src; a mismatch names both. */
int lbx_index_layer(lbx_store *s, const lbx_layer_src *src, lbx_layer_result *res, lbx_err **err);

/* Indexes several layers at once, on up to `jobs` threads (0: one per CPU).
 * On failure the first error is returned; layers that succeeded stay. */
int lbx_index_layers(lbx_store *s, const lbx_layer_src *srcs, size_t n, unsigned jobs,
                     lbx_layer_result *res, lbx_err **err);

/* The OCI ChainID of a list of diff_ids. */
void lbx_chain_id(const char *const *diff_ids, size_t n, char out[LBX_DIGEST_STR]);

/* Records an image whose layers are all indexed: builds (or reuses) the
 * chain's merged tree and names the image. config is the config JSON; its
 * rootfs.diff_ids must match the layers' diff_ids. id receives the hex
 * sha256 of config. */
int lbx_image_add(lbx_store *s, const char *config, size_t config_len, const char *manifest,
                  size_t manifest_len, const lbx_image_layer *layers, size_t nlayers,
                  const char *const *names, size_t nnames, char id[LBX_DIGEST_HEX], lbx_err **err);

/* Finds a local image by name (as Podman matches short names), full or
 * short ID, or name@digest. */
int lbx_image_resolve(lbx_store *s, const char *name, char id[LBX_DIGEST_HEX], lbx_err **err);

/* `load`: a docker-archive tarball or an OCI image layout (directory or
 * tar). names receives what was loaded ("docker.io/library/x:tag", or
 * "sha256:<id>" for an image without a name). */
int lbx_load(lbx_store *s, const char *path, char ***names, size_t *nnames, lbx_err **err);

/* `import`: a plain rootfs tarball (gzip, zstd or plain; "-" = stdin) as a
 * one-layer image, with Dockerfile-style changes ("CMD /bin/sh",
 * "ENV A=B", "CMD=/bin/sh", ...). name may be NULL. */
int lbx_import(lbx_store *s, const char *path, const char *name, const char *const *changes,
               size_t nchanges, const char *message, char id[LBX_DIGEST_HEX], lbx_err **err);

#endif
