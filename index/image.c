/* Images: the config's checks, the chain's merged tree, and finding a local
 * image by what a user typed. */
#include "index.h"
#include "ref.h"
#include "tree.h"

#include <jansson.h>
#include "../store/crypto.h"
#include <string.h>
#include <time.h>

/* jansson's own json_decrefp, as json_auto_t uses it */
#define _cleanup_json_ __attribute__((cleanup(json_decrefp)))

static void
sha256_hex(const void *data, size_t len, char out[LBX_DIGEST_HEX])
{
  uint8_t md[LBX_DIGEST_LEN];
  lbx_sha256_buf(data, len, md);
  lbx_hex(md, LBX_DIGEST_LEN, out);
}

void
lbx_chain_id(const char *const *diff_ids, size_t n, char out[LBX_DIGEST_STR])
{
  out[0] = '\0';
  for (size_t i = 0; i < n; i++) {
    if (i == 0) {
      snprintf(out, LBX_DIGEST_STR, "%s", diff_ids[0]);
      continue;
    }
    _cleanup_free_ char *joined = lbx_xasprintf("%s %s", out, diff_ids[i]);
    char hex[LBX_DIGEST_HEX];
    sha256_hex(joined, strlen(joined), hex);
    snprintf(out, LBX_DIGEST_STR, "sha256:%s", hex);
  }
}

/* RFC 3339 with optional fraction and zone, as image configs write it. */
static int64_t
parse_time(const char *s)
{
  struct tm tm = {0};
  const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
  if (!p)
    return 0;
  int64_t ns = 0;
  if (*p == '.') {
    int64_t scale = 100000000;
    for (p++; *p >= '0' && *p <= '9'; p++, scale /= 10)
      ns += (*p - '0') * scale;
  }
  int64_t off = 0;
  if (*p == '+' || *p == '-') {
    int hh = 0, mm = 0;
    if (sscanf(p + 1, "%2d:%2d", &hh, &mm) >= 1)
      off = (hh * 3600 + mm * 60) * (*p == '-' ? -1 : 1);
  }
  int64_t sec = (int64_t)timegm(&tm) - off;
  if (sec > INT64_MAX / 1000000000 - 1 || sec < INT64_MIN / 1000000000 + 1)
    return 0; /* beyond 1677..2262: shown as unknown */
  return sec * 1000000000 + ns;
}

struct build_ctx {
  lbx_store *s;
  lbx_tree *tree;
  lbx_err **err;
  const char *layer;
};

static int
apply_entry(void *ctx, const lbx_entry *e)
{
  struct build_ctx *b = ctx;
  if (lbx_tree_apply(b->tree, e, b->err) < 0) {
    lbx_error_prefix(b->err, "layer %s", b->layer);
    return -1;
  }
  return 0;
}

static int
emit_node(void *ctx, const lbx_node *n)
{
  return lbx_chain_writer_node(ctx, n);
}

static int
emit_dirent(void *ctx, uint64_t parent, const char *name, uint64_t ino)
{
  return lbx_chain_writer_dirent(ctx, parent, name, ino);
}

static int
write_tree(void *ctx, lbx_chain_writer *w, lbx_err **err)
{
  struct build_ctx *b = ctx;
  if (!b->tree)
    return lbx_error(err, EAGAIN, "the layer chain's tree was removed meanwhile; try again");
  int r = lbx_tree_emit(b->tree, emit_node, emit_dirent, w);
  if (r != 0)
    return lbx_error_errno(err, r < 0 ? -r : EIO, "writing the merged tree");
  return 0;
}

int
lbx_image_add(lbx_store *s, const char *config, size_t config_len, const char *manifest,
              size_t manifest_len, const lbx_image_layer *layers, size_t nlayers,
              const char *const *names, size_t nnames, char id[LBX_DIGEST_HEX], lbx_err **err)
{
  sha256_hex(config, config_len, id);
  json_error_t jerr;
  _cleanup_json_ json_t *cfg = json_loadb(config, config_len, 0, &jerr);
  if (!cfg || !json_is_object(cfg))
    return lbx_error(err, EBADMSG, "image config sha256:%s: not valid JSON: %s", id, jerr.text);
  json_t *diff_ids = json_object_get(json_object_get(cfg, "rootfs"), "diff_ids");
  if (!json_is_array(diff_ids))
    return lbx_error(err, EBADMSG, "image config sha256:%s: no rootfs.diff_ids", id);
  if (json_array_size(diff_ids) != nlayers)
    return lbx_error(err, EBADMSG, "image config sha256:%s: it lists %zu layers, the manifest %zu",
                     id, json_array_size(diff_ids), nlayers);
  _cleanup_free_ const char **ids = lbx_xcalloc(nlayers, sizeof *ids);
  for (size_t i = 0; i < nlayers; i++) {
    const char *d = json_string_value(json_array_get(diff_ids, i));
    if (!d || strcmp(d, layers[i].diff_id) != 0)
      return lbx_error(err, EBADMSG,
                       "image config sha256:%s: layer %zu: the config says diff_id %s, the "
                       "layer has %s",
                       id, i + 1, d ? d : "(none)", layers[i].diff_id);
    ids[i] = d;
  }
  char chain_id[LBX_DIGEST_STR];
  lbx_chain_id(ids, nlayers, chain_id);
  if (nlayers == 0)
    snprintf(chain_id, sizeof chain_id, "sha256:%s",
             "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  const char *created = json_string_value(json_object_get(cfg, "created"));

  struct build_ctx b = {s, NULL, err, NULL};
  _cleanup_(lbx_tree_freep) lbx_tree *tree = NULL;
  int has = lbx_store_has_chain(s, chain_id);
  if (has < 0)
    return lbx_error_errno(err, -has, "store %s: looking up chain %s", lbx_store_root(s), chain_id);
  if (!has) {
    /* Built outside the store's write transaction: reading the layers'
     * entries takes the store, the commit below then only writes. */
    tree = lbx_tree_new();
    b.tree = tree;
    for (size_t i = 0; i < nlayers; i++) {
      lbx_tree_begin_layer(tree);
      b.layer = ids[i];
      int r = lbx_store_layer_entries(s, ids[i], apply_entry, &b, err);
      if (r != 0)
        return -1;
    }
  }
  char mdigest[LBX_DIGEST_STR] = "";
  if (manifest) {
    char hex[LBX_DIGEST_HEX];
    sha256_hex(manifest, manifest_len, hex);
    snprintf(mdigest, sizeof mdigest, "sha256:%s", hex);
  }
  lbx_image_info info = {
      .id = id,
      .digest = manifest ? mdigest : NULL,
      .config = config,
      .config_len = config_len,
      .manifest = manifest,
      .manifest_len = manifest_len,
      .chain_id = chain_id,
      .created_ns = created ? parse_time(created) : 0,
      .nlayers = nlayers,
      .layers = layers,
  };
  return lbx_store_image_commit(s, &info, write_tree, &b, names, nnames, err);
}

static bool
looks_like_id(const char *s)
{
  size_t n = strlen(s);
  return n >= 3 && n <= 64 && strspn(s, "0123456789abcdef") == n;
}

int
lbx_image_resolve(lbx_store *s, const char *name, char id[LBX_DIGEST_HEX], lbx_err **err)
{
  const char *hex = strncmp(name, "sha256:", 7) == 0 ? name + 7 : name;
  if (looks_like_id(hex)) {
    int r = lbx_store_image_by_id(s, hex, id);
    if (r == -EEXIST)
      return lbx_error(err, EEXIST, "image ID \"%s\" is ambiguous: give more of it", name);
    if (r > 0)
      return 0;
    if (hex != name)
      return lbx_error(err, ENOENT, "image %s: no such image", name);
  }
  _cleanup_(lbx_ref_freep) lbx_ref *ref = NULL;
  if (lbx_ref_parse(name, 0, &ref, err) < 0)
    return -1;
  if (ref->digest) {
    /* name@digest: the image whose manifest has that digest */
    int r = lbx_store_image_by_digest(s, ref->digest, id);
    if (r > 0)
      return 0;
    return lbx_error(err, ENOENT, "image %s: no image with manifest digest %s", name, ref->digest);
  }
  _cleanup_free_ char *full = lbx_ref_string(ref);
  if (lbx_store_image_by_name(s, full, id) > 0)
    return 0;
  if (!ref->short_name)
    return lbx_error(err, ENOENT, "image %s: no such image", name);
  /* A short name: Podman tries the name as written under localhost/, then
   * under any registry. */
  _cleanup_(lbx_ref_freep) lbx_ref *local = NULL;
  if (lbx_ref_parse(name, LBX_REF_LOCAL, &local, NULL) == 0) {
    _cleanup_free_ char *lname = lbx_ref_string(local);
    if (lbx_store_image_by_name(s, lname, id) > 0)
      return 0;
  }
  char **names = NULL;
  size_t n = 0;
  lbx_store_names_matching(s, local ? local->path : ref->path, ref->tag, &names, &n);
  int r = -1;
  if (n == 1 && lbx_store_image_by_name(s, names[0], id) > 0)
    r = 0;
  else if (n > 1)
    lbx_error(err, EEXIST, "image %s is ambiguous: it matches %s and %s", name, names[0], names[1]);
  else
    lbx_error(err, ENOENT, "image %s: no such image", name);
  for (size_t i = 0; i < n; i++)
    free(names[i]);
  free(names);
  return r;
}
