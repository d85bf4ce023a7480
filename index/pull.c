/* `pull`: reference -> manifest (-> platform manifest) -> config -> layers
 * streamed into lbx_index_layers -> lbx_image_add. */
#include "pull.h"
#include "auth.h"
#include "ref.h"
#include "regconf.h"

#include <jansson.h>
#include "../store/crypto.h"
#include <pthread.h>
#include <string.h>
#include <sys/utsname.h>

#define _cleanup_json_ __attribute__((cleanup(json_decrefp)))
#define CONFIG_MAX (16u << 20)
#define RING_SIZE (1u << 20) /* per layer: what a download may run ahead of indexing */
#define MAX_JOBS 6
#define BLOB_RETRIES 6 /* tries without progress before a layer's transfer gives up */

#define MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"

/* Progress calls, one at a time. */
struct report {
  lbx_pull_fn fn;
  void *ctx;
  pthread_mutex_t mu;
};

static void
report(struct report *rp, enum lbx_pull_event ev, const char *what, uint64_t done, uint64_t total)
{
  if (!rp->fn)
    return;
  pthread_mutex_lock(&rp->mu);
  rp->fn(rp->ctx, ev, what, done, total);
  pthread_mutex_unlock(&rp->mu);
}

static void
sha256_str(const void *data, size_t len, char out[LBX_DIGEST_STR])
{
  uint8_t md[LBX_DIGEST_LEN];
  lbx_sha256_buf(data, len, md);
  memcpy(out, "sha256:", 7);
  lbx_hex(md, LBX_DIGEST_LEN, out + 7);
}

static int
check_digest(const char *what, const char *digest, const char *data, size_t len, lbx_err **err)
{
  char got[LBX_DIGEST_STR];
  sha256_str(data, len, got);
  if (strcmp(got, digest) != 0)
    return lbx_error(err, EBADMSG, "%s %s: digest mismatch: the data received has digest %s", what,
                     digest, got);
  return 0;
}

/* A descriptor's digest: sha256 only, as the store keys everything by it. */
static const char *
desc_digest(json_t *desc, const char *what, lbx_err **err)
{
  const char *d = json_string_value(json_object_get(desc, "digest"));
  uint8_t bin[LBX_DIGEST_LEN];
  if (!d || lbx_digest_parse(d, bin, 0) < 0) {
    lbx_error(err, EPROTONOSUPPORT, "%s: unsupported or malformed digest \"%.80s\"", what,
              d ? d : "");
    return NULL;
  }
  return d;
}

/* ---- platforms ---- */

static const char *
norm_arch(const char *a)
{
  static const char *const alias[][2] = {
      {"x86_64", "amd64"}, {"x86-64", "amd64"}, {"aarch64", "arm64"},
      {"armhf", "arm"},    {"armel", "arm"},    {"i386", "386"},
  };
  for (size_t i = 0; i < LBX_ARRAY_SIZE(alias); i++)
    if (strcmp(a, alias[i][0]) == 0)
      return alias[i][1];
  return a;
}

int
lbx_platform_parse(const char *s, char **os, char **arch, char **variant, lbx_err **err)
{
  const char *a = strchr(s, '/');
  if (!a || a == s || !a[1])
    return lbx_error(err, EINVAL, "platform \"%s\": expected OS/ARCH[/VARIANT]", s);
  const char *v = strchr(a + 1, '/');
  if (v && (!v[1] || strchr(v + 1, '/')))
    return lbx_error(err, EINVAL, "platform \"%s\": expected OS/ARCH[/VARIANT]", s);
  *os = lbx_xstrndup(s, (size_t)(a - s));
  _cleanup_free_ char *ar = v ? lbx_xstrndup(a + 1, (size_t)(v - a - 1)) : lbx_xstrdup(a + 1);
  *arch = lbx_xstrdup(norm_arch(ar));
  *variant = v ? lbx_xstrdup(v + 1) : NULL;
  return 0;
}

static void
host_platform(char **os, char **arch, char **variant)
{
  struct utsname u;
  *os = lbx_xstrdup("linux");
  *variant = NULL;
#if defined(__x86_64__)
  (void)u;
  *arch = lbx_xstrdup("amd64");
#elif defined(__aarch64__)
  (void)u;
  *arch = lbx_xstrdup("arm64");
  *variant = lbx_xstrdup("v8");
#elif defined(__arm__)
  (void)u;
  *arch = lbx_xstrdup("arm");
#if defined(__ARM_ARCH) && __ARM_ARCH >= 7
  *variant = lbx_xstrdup("v7");
#elif defined(__ARM_ARCH) && __ARM_ARCH == 6
  *variant = lbx_xstrdup("v6");
#else
  *variant = lbx_xstrdup("v5");
#endif
#else
  *arch = lbx_xstrdup(uname(&u) == 0 ? norm_arch(u.machine) : "unknown");
#endif
}

/* The variants to try, best first, as containers/image's WantedPlatforms:
 * an ARM variant falls back to older compatible ones, then to an entry that
 * names no variant. NULL-terminated; "" means any variant. */
static void
wanted_variants(const char *arch, const char *variant, const char *out[6])
{
  size_t n = 0;
  if (variant && strcmp(arch, "arm") == 0) {
    static const char *const arm[] = {"v8", "v7", "v6", "v5"};
    bool on = false;
    for (size_t i = 0; i < LBX_ARRAY_SIZE(arm); i++) {
      on = on || strcmp(arm[i], variant) == 0;
      if (on)
        out[n++] = arm[i];
    }
    if (!on)
      out[n++] = variant;
  } else if (variant) {
    out[n++] = variant;
  }
  if (strcmp(arch, "arm64") == 0 && (!variant || strcmp(variant, "v8") == 0) && n == 0)
    out[n++] = "v8";
  out[n++] = ""; /* any */
  out[n] = NULL;
}

static json_t *
select_platform(json_t *manifests, const char *os, const char *arch, const char *variant)
{
  const char *wanted[6];
  wanted_variants(arch, variant, wanted);
  for (size_t w = 0; wanted[w]; w++) {
    size_t i;
    json_t *d;
    json_array_foreach(manifests, i, d)
    {
      json_t *p = json_object_get(d, "platform");
      const char *dos = json_string_value(json_object_get(p, "os"));
      const char *darch = json_string_value(json_object_get(p, "architecture"));
      const char *dvar = json_string_value(json_object_get(p, "variant"));
      if (!dos || !darch || strcmp(dos, os) != 0 || strcmp(norm_arch(darch), arch) != 0)
        continue;
      /* "" takes an entry without a variant, or (for a host or --platform
       * without one) any variant */
      if (wanted[w][0] ? (dvar && strcmp(dvar, wanted[w]) == 0) : (!dvar || !*dvar || !variant))
        return d;
    }
  }
  return NULL;
}

/* ---- layer downloads: a thread per layer filling a ring the indexer drains ---- */

struct dl {
  lbx_registry *reg;
  struct report *rp;
  const char *digest;
  uint64_t size;
  pthread_t th;
  bool started;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  uint8_t *ring;
  size_t head, len; /* unread bytes: ring[head .. head+len) modulo RING_SIZE */
  bool done, closed;
  lbx_err *err;
  uint64_t received;
};

static int
dl_sink(void *ctx, const void *buf, size_t len)
{
  struct dl *d = ctx;
  const uint8_t *p = buf;
  pthread_mutex_lock(&d->mu);
  if (d->size && d->received + len > d->size) {
    lbx_error(&d->err, EBADMSG, "layer %s: the registry sent more than the %llu bytes it should",
              d->digest, (unsigned long long)d->size);
    pthread_mutex_unlock(&d->mu);
    return -1;
  }
  while (len > 0) {
    while (d->len == RING_SIZE && !d->closed)
      pthread_cond_wait(&d->cv, &d->mu);
    if (d->closed) {
      pthread_mutex_unlock(&d->mu);
      return -1;
    }
    size_t tail = (d->head + d->len) % RING_SIZE;
    size_t room = RING_SIZE - d->len;
    size_t chunk = RING_SIZE - tail < room ? RING_SIZE - tail : room;
    if (chunk > len)
      chunk = len;
    memcpy(d->ring + tail, p, chunk);
    d->len += chunk;
    d->received += chunk;
    p += chunk;
    len -= chunk;
    pthread_cond_broadcast(&d->cv);
  }
  uint64_t got = d->received;
  pthread_mutex_unlock(&d->mu);
  report(d->rp, LBX_PULL_BLOB_BYTES, d->digest, got, d->size);
  return 0;
}

static void *
dl_thread(void *arg)
{
  struct dl *d = arg;
  int fails = 0;
  for (;;) {
    pthread_mutex_lock(&d->mu);
    uint64_t from = d->received;
    bool closed = d->closed;
    pthread_mutex_unlock(&d->mu);
    if (closed)
      break;
    bool transient = false;
    lbx_err *e = NULL;
    int rc = lbx_registry_blob_stream(d->reg, d->digest, from, dl_sink, d, &transient, &e);
    pthread_mutex_lock(&d->mu);
    if (rc == 0) {
      d->done = true;
      if (d->size && d->received != d->size && !d->err)
        lbx_error(&d->err, EBADMSG, "layer %s: the registry sent %llu of %llu bytes", d->digest,
                  (unsigned long long)d->received, (unsigned long long)d->size);
      pthread_cond_broadcast(&d->cv);
      pthread_mutex_unlock(&d->mu);
      lbx_error_free(e);
      report(d->rp, LBX_PULL_BLOB_DONE, d->digest, d->received, d->size);
      break;
    }
    bool progressed = d->received > from;
    closed = d->closed || d->err; /* the sink stopped the transfer */
    pthread_mutex_unlock(&d->mu);
    if (progressed)
      fails = 0;
    if (!closed && transient && ++fails < BLOB_RETRIES) {
      lbx_error_free(e);
      report(d->rp, LBX_PULL_BLOB_RETRY, d->digest, d->received, d->size);
      usleep((useconds_t)(250000u << (fails - 1))); /* 0.25 s .. 4 s */
      continue;
    }
    pthread_mutex_lock(&d->mu);
    if (!d->err) {
      d->err = e ? e : NULL;
      if (!d->err)
        lbx_error(&d->err, EIO, "layer %s: transfer stopped", d->digest);
    } else {
      lbx_error_free(e);
    }
    pthread_cond_broadcast(&d->cv);
    pthread_mutex_unlock(&d->mu);
    break;
  }
  return NULL;
}

static ssize_t
dl_read(void *ctx, void *buf, size_t len, lbx_err **err)
{
  struct dl *d = ctx;
  pthread_mutex_lock(&d->mu);
  if (!d->started) {
    d->ring = lbx_xmalloc(RING_SIZE);
    if (pthread_create(&d->th, NULL, dl_thread, d) != 0) {
      pthread_mutex_unlock(&d->mu);
      return lbx_error(err, EAGAIN, "layer %s: cannot start a download thread", d->digest);
    }
    d->started = true;
  }
  while (d->len == 0 && !d->done && !d->err)
    pthread_cond_wait(&d->cv, &d->mu);
  if (d->len == 0 && d->err) {
    /* the message stays for the caller that reads it last */
    lbx_error(err, d->err->code, "%s", d->err->msg);
    pthread_mutex_unlock(&d->mu);
    return -1;
  }
  size_t n = d->len < len ? d->len : len;
  size_t first = RING_SIZE - d->head < n ? RING_SIZE - d->head : n;
  memcpy(buf, d->ring + d->head, first);
  memcpy((uint8_t *)buf + first, d->ring, n - first);
  d->head = (d->head + n) % RING_SIZE;
  d->len -= n;
  pthread_cond_broadcast(&d->cv);
  pthread_mutex_unlock(&d->mu);
  return (ssize_t)n;
}

static void
dl_stop(struct dl *d)
{
  pthread_mutex_lock(&d->mu);
  d->closed = true;
  pthread_cond_broadcast(&d->cv);
  bool started = d->started;
  pthread_mutex_unlock(&d->mu);
  if (started)
    pthread_join(d->th, NULL);
  free(d->ring);
  lbx_error_free(d->err);
  pthread_mutex_destroy(&d->mu);
  pthread_cond_destroy(&d->cv);
}

/* ---- one image ---- */

struct pull_ctx {
  lbx_store *s;
  lbx_registry *reg;
  const lbx_ref *ref;
  const char *refstr;
  const lbx_pull_opts *o;
  struct report *rp;
};

/* Indexes the layers not in the store, then records the image. */
static int
pull_layers(struct pull_ctx *c, json_t *layers, json_t *diff_ids, const char *cfg_digest,
            const char *config, size_t config_len, const char *manifest, size_t manifest_len,
            char id[LBX_DIGEST_HEX], lbx_err **err)
{
  size_t n = json_array_size(layers);
  _cleanup_free_ lbx_image_layer *il = lbx_xcalloc(n ? n : 1, sizeof *il);
  _cleanup_free_ struct dl *dls = lbx_xcalloc(n ? n : 1, sizeof *dls);
  _cleanup_free_ lbx_layer_src *srcs = lbx_xcalloc(n ? n : 1, sizeof *srcs);
  size_t nsrc = 0;
  for (size_t i = 0; i < n; i++) {
    json_t *l = json_array_get(layers, i);
    const char *digest = desc_digest(l, "layer", err);
    if (!digest)
      return lbx_error_prefix(err, "manifest: layer %zu", i + 1);
    const char *mt = json_string_value(json_object_get(l, "mediaType"));
    if (!mt || !lbx_layer_media_type_known(mt))
      return lbx_error(err, EPROTONOSUPPORT, "layer %s: unsupported media type %s", digest,
                       mt ? mt : "(none)");
    json_int_t sz = json_integer_value(json_object_get(l, "size"));
    const char *diff_id = json_string_value(json_array_get(diff_ids, i));
    uint8_t bin[LBX_DIGEST_LEN];
    if (!diff_id || lbx_digest_parse(diff_id, bin, 0) < 0)
      return lbx_error(err, EBADMSG, "image config: layer %zu: malformed diff_id", i + 1);
    il[i] = (lbx_image_layer){diff_id, digest, mt, sz > 0 ? (uint64_t)sz : 0};

    int has = lbx_store_has_layer(c->s, diff_id);
    if (has == 0) {
      char known[LBX_DIGEST_STR];
      has = lbx_store_layer_by_digest(c->s, digest, known);
      if (has > 0 && strcmp(known, diff_id) != 0)
        has = 0; /* indexed as something else: let the download tell */
    }
    if (has < 0)
      return lbx_error_errno(err, -has, "store %s", lbx_store_root(c->s));
    bool dup = false;
    for (size_t j = 0; j < i && !dup; j++)
      dup = strcmp(il[j].diff_id, diff_id) == 0;
    if (has || dup) {
      report(c->rp, LBX_PULL_BLOB_SKIP, digest, 0, il[i].size);
      continue;
    }
    struct dl *d = &dls[nsrc];
    *d = (struct dl){.reg = c->reg, .rp = c->rp, .digest = digest, .size = il[i].size};
    pthread_mutex_init(&d->mu, NULL);
    pthread_cond_init(&d->cv, NULL);
    srcs[nsrc] = (lbx_layer_src){digest, dl_read, d, digest, diff_id, il[i].size, 0};
    nsrc++;
  }
  int rc = 0;
  if (nsrc) {
    _cleanup_free_ lbx_layer_result *res = lbx_xcalloc(nsrc, sizeof *res);
    rc = lbx_index_layers(c->s, srcs, nsrc, nsrc < MAX_JOBS ? (unsigned)nsrc : MAX_JOBS, res, err);
  }
  for (size_t i = 0; i < nsrc; i++)
    dl_stop(&dls[i]);
  if (rc < 0)
    return -1;
  report(c->rp, LBX_PULL_CONFIG, cfg_digest, config_len, config_len);
  report(c->rp, LBX_PULL_WRITING, NULL, 0, 0);
  _cleanup_free_ char *name = c->ref->tag ? lbx_ref_string(c->ref) : NULL;
  if (name && c->ref->digest) {
    /* "x:tag@digest": the tag names the image, as Podman does */
    free(name);
    name = lbx_xasprintf("%s/%s:%s", c->ref->domain, c->ref->path, c->ref->tag);
  } else if (!name && c->ref->digest) {
    /* "x@digest" names it too, as in Podman's store: without a name the
     * image would count as dangling, and `system prune` would take it */
    name = lbx_xasprintf("%s/%s@%s", c->ref->domain, c->ref->path, c->ref->digest);
  }
  const char *names[1] = {name};
  return lbx_image_add(c->s, config, config_len, manifest, manifest_len, il, n, names, name ? 1 : 0,
                       id, err);
}

static int
fetch_manifest(struct pull_ctx *c, const char *ref, const char *want_digest, char **body,
               size_t *len, json_t **json, const char **type, lbx_err **err)
{
  _cleanup_free_ char *ctype = NULL, *hdigest = NULL;
  if (lbx_registry_manifest(c->reg, ref, body, len, &ctype, &hdigest, err) < 0)
    return -1;
  if (want_digest && check_digest("manifest", want_digest, *body, *len, err) < 0)
    return -1;
  if (!want_digest && hdigest && strncmp(hdigest, "sha256:", 7) == 0 &&
      check_digest("manifest", hdigest, *body, *len, err) < 0)
    return -1;
  json_error_t jerr;
  *json = json_loadb(*body, *len, 0, &jerr);
  if (!*json || !json_is_object(*json))
    return lbx_error(err, EBADMSG, "manifest %s: not a JSON object: %s", ref, jerr.text);
  const char *mt = json_string_value(json_object_get(*json, "mediaType"));
  if (!mt)
    mt = ctype;
  if (!mt)
    mt = json_object_get(*json, "manifests") ? MT_OCI_INDEX : MT_OCI_MANIFEST;
  static const char *const ok[] = {MT_OCI_INDEX, MT_OCI_MANIFEST, MT_DOCKER_LIST,
                                   MT_DOCKER_MANIFEST};
  for (size_t i = 0; i < LBX_ARRAY_SIZE(ok); i++)
    if (strcmp(mt, ok[i]) == 0) {
      *type = ok[i];
      return 0;
    }
  return lbx_error(err, EPROTONOSUPPORT, "manifest %s: unsupported media type %s%s", ref, mt,
                   strstr(mt, "manifest.v1") ? " (Docker schema 1)" : "");
}

static bool
is_list(const char *type)
{
  return strcmp(type, MT_OCI_INDEX) == 0 || strcmp(type, MT_DOCKER_LIST) == 0;
}

static int
pull_one(struct pull_ctx *c, char id[LBX_DIGEST_HEX], lbx_err **err)
{
  const lbx_ref *ref = c->ref;
  _cleanup_free_ char *body = NULL;
  size_t len;
  _cleanup_json_ json_t *m = NULL;
  const char *type;
  if (fetch_manifest(c, ref->digest ? ref->digest : ref->tag, ref->digest, &body, &len, &m, &type,
                     err) < 0)
    return -1;
  char list_digest[LBX_DIGEST_STR] = "";
  if (is_list(type)) {
    /* recorded with the image: name@<this digest> then finds it here */
    sha256_str(body, len, list_digest);
    json_t *list = json_object_get(m, "manifests");
    _cleanup_free_ char *os = NULL, *arch = NULL, *variant = NULL;
    if (c->o->platform) {
      if (lbx_platform_parse(c->o->platform, &os, &arch, &variant, err) < 0)
        return -1;
    } else {
      host_platform(&os, &arch, &variant);
    }
    json_t *d = json_is_array(list) ? select_platform(list, os, arch, variant) : NULL;
    if (!d)
      return lbx_error(err, ENOENT, "no image for platform %s/%s%s%s in the manifest list", os,
                       arch, variant ? "/" : "", variant ? variant : "");
    const char *digest = desc_digest(d, "manifest list entry", err);
    if (!digest)
      return -1;
    _cleanup_free_ char *dig = lbx_xstrdup(digest);
    json_decref(m);
    m = NULL;
    free(body);
    body = NULL;
    if (fetch_manifest(c, dig, dig, &body, &len, &m, &type, err) < 0)
      return -1;
    if (is_list(type))
      return lbx_error(err, EPROTONOSUPPORT, "manifest %s: a list inside a list", dig);
  }
  json_t *cfgd = json_object_get(m, "config");
  const char *cfg_digest = desc_digest(cfgd, "manifest: config", err);
  if (!cfg_digest)
    return -1;
  const char *cmt = json_string_value(json_object_get(cfgd, "mediaType"));
  if (cmt && strcmp(cmt, "application/vnd.oci.image.config.v1+json") != 0 &&
      strcmp(cmt, "application/vnd.docker.container.image.v1+json") != 0)
    return lbx_error(err, EPROTONOSUPPORT,
                     "config %s: unsupported media type %s (not a container image)", cfg_digest,
                     cmt);
  json_t *layers = json_object_get(m, "layers");
  if (!json_is_array(layers))
    return lbx_error(err, EBADMSG, "the manifest has no layers list");
  _cleanup_free_ char *config = NULL;
  size_t config_len;
  if (lbx_registry_blob(c->reg, cfg_digest, CONFIG_MAX, &config, &config_len, err) < 0)
    return -1;
  if (check_digest("config", cfg_digest, config, config_len, err) < 0)
    return -1;
  _cleanup_json_ json_t *cfg = json_loadb(config, config_len, 0, NULL);
  json_t *diff_ids = json_object_get(json_object_get(cfg, "rootfs"), "diff_ids");
  if (!json_is_array(diff_ids) || json_array_size(diff_ids) != json_array_size(layers))
    return lbx_error(err, EBADMSG, "config %s lists %zu layers, the manifest %zu", cfg_digest,
                     json_array_size(diff_ids), json_array_size(layers));
  report(c->rp, LBX_PULL_SOURCE, NULL, 0, 0);
  if (lbx_store_lock(c->s, false, err) < 0)
    return -1;
  int rc = pull_layers(c, layers, diff_ids, cfg_digest, config, config_len, body, len, id, err);
  if (rc == 0 && *list_digest)
    rc = lbx_store_image_add_digest(c->s, id, list_digest, err);
  lbx_store_unlock(c->s);
  return rc;
}

/* "alpine:3", "library/alpine@sha256:..." -> "alpine", "library/alpine":
 * the short name as [aliases] keys name it */
static char *
short_stem(const char *name)
{
  size_t n = strcspn(name, "@");
  const char *slash = memrchr(name, '/', n);
  const char *colon =
      memchr(slash ? slash : name, ':', n - (size_t)((slash ? slash : name) - name));
  return lbx_xstrndup(name, colon ? (size_t)(colon - name) : n);
}

/* candidates' work; may leave *out partly filled on failure */
static int
candidates_of(const lbx_regconf *conf, const char *name, lbx_ref ***out, size_t *n, lbx_err **err)
{
  _cleanup_(lbx_ref_freep) lbx_ref *ref = NULL;
  if (lbx_ref_parse(name, 0, &ref, err) < 0)
    return -1;
  *out = lbx_xcalloc(1, sizeof **out);
  *n = 0;
  if (!ref->short_name) {
    (*out)[(*n)++] = steal_pointer(&ref);
    return 0;
  }
  _cleanup_free_ char *stem = short_stem(name);
  const char *alias = lbx_regconf_alias(conf, stem);
  if (alias) {
    /* the alias names the repository; the tag or digest is the caller's */
    _cleanup_free_ char *full = ref->digest
                                    ? lbx_xasprintf("%s@%s", alias, ref->digest)
                                    : lbx_xasprintf("%s:%s", alias, ref->tag ? ref->tag : "latest");
    /* regconf checked the alias names a registry; the caller's tag may
     * still make the whole too long */
    lbx_ref *r = NULL;
    if (lbx_ref_parse(full, 0, &r, err) < 0)
      return lbx_error_prefix(err, "registries.conf alias %s", stem);
    (*out)[(*n)++] = r;
    return 0;
  }
  size_t nregs = 0;
  const char *const *regs = lbx_regconf_search(conf, &nregs);
  if (nregs == 0) {
    (*out)[(*n)++] = steal_pointer(&ref);
    return 0;
  }
  for (size_t i = 0; i < nregs; i++) {
    _cleanup_free_ char *full = lbx_xasprintf("%s/%s", regs[i], name);
    lbx_ref *r = NULL;
    if (lbx_ref_parse(full, 0, &r, err) < 0)
      return lbx_error_prefix(err, "unqualified-search-registries entry \"%s\"", regs[i]);
    *out = lbx_xrealloc(*out, (*n + 1) * sizeof **out);
    (*out)[(*n)++] = r;
  }
  return 0;
}

static void
refs_free(lbx_ref **v, size_t n)
{
  for (size_t i = 0; i < n; i++)
    lbx_ref_free(v[i]);
  free(v);
}

/* The references to try for name: itself, or for a short name one per
 * search registry. On failure nothing is left allocated. */
static int
candidates(const lbx_regconf *conf, const char *name, lbx_ref ***out, size_t *n, lbx_err **err)
{
  int r = candidates_of(conf, name, out, n, err);
  if (r < 0) {
    refs_free(*out, *n);
    *out = NULL;
    *n = 0;
  }
  return r;
}

/* ref from where registries.conf says: its mirrors that apply, then its
 * registry (the name as it is when no [[registry]] matches). The error is
 * the registry's; mirrors are fallbacks that may lack the image. */
static int
pull_endpoints(lbx_store *s, const lbx_regconf *conf, const lbx_ref *ref, const char *refstr,
               const lbx_pull_opts *o, struct report *rp, char id[LBX_DIGEST_HEX], lbx_err **err)
{
  _cleanup_free_ char *full = lbx_xasprintf("%s/%s", ref->domain, ref->path);
  lbx_endpoint *eps = NULL;
  size_t neps = 0;
  if (lbx_regconf_endpoints(conf, full, ref->digest != NULL, &eps, &neps, err) < 0)
    return -1;
  int rc = -1;
  size_t mirrors_failed = 0;
  for (size_t j = 0; j < neps && rc < 0; j++) {
    lbx_registry_opts ro = o->reg;
    /* --tls-verify=true outranks a registry's insecure = true */
    ro.insecure = o->reg.insecure || (eps[j].insecure && !o->reg.tls_verify);
    /* --creds are the registry's: a mirror elsewhere gets its own from the
     * auth file, never these (containers/image does the same) */
    if (eps[j].mirror && strcmp(eps[j].host, ref->domain) != 0)
      ro.user = ro.pass = NULL;
    lbx_err *e = NULL;
    _cleanup_(lbx_registry_freep) lbx_registry *reg = NULL;
    if (lbx_registry_open(eps[j].host, eps[j].repo, &ro, &reg, &e) == 0) {
      struct pull_ctx c = {s, reg, ref, refstr, o, rp};
      rc = pull_one(&c, id, &e);
    }
    if (rc == 0 || j + 1 < neps) {
      mirrors_failed += rc < 0;
      lbx_error_free(e);
      continue;
    }
    if (mirrors_failed)
      lbx_error_prefix(&e, "%zu mirror%s failed, then the registry", mirrors_failed,
                       mirrors_failed > 1 ? "s" : "");
    *err = e;
  }
  lbx_endpoints_free(eps, neps);
  return rc;
}

int
lbx_pull(lbx_store *s, const char *name, const lbx_pull_opts *o, char id[LBX_DIGEST_HEX],
         char **pulled, lbx_err **err)
{
  if (o->platform) {
    _cleanup_free_ char *os = NULL, *arch = NULL, *variant = NULL;
    if (lbx_platform_parse(o->platform, &os, &arch, &variant, err) < 0)
      return -1;
  }
  _cleanup_(lbx_regconf_freep) lbx_regconf *conf = NULL;
  if (lbx_regconf_load(&conf, err) < 0)
    return -1;
  lbx_ref **refs = NULL;
  size_t n = 0;
  if (candidates(conf, name, &refs, &n, err) < 0)
    return -1;
  struct report rp = {o->progress, o->progress_ctx, PTHREAD_MUTEX_INITIALIZER};
  int rc = -1;
  lbx_err *first = NULL;
  for (size_t i = 0; i < n && rc < 0; i++) {
    _cleanup_free_ char *refstr = lbx_ref_string(refs[i]);
    report(&rp, LBX_PULL_TRYING, refstr, 0, 0);
    lbx_err *e = NULL;
    rc = pull_endpoints(s, conf, refs[i], refstr, o, &rp, id, &e);
    if (rc == 0) {
      if (pulled)
        *pulled = steal_pointer(&refstr);
      break;
    }
    lbx_error_prefix(&e, "%s", refstr);
    if (!first)
      first = e;
    else
      lbx_error_free(e);
  }
  refs_free(refs, n);
  if (rc == 0) {
    lbx_error_free(first);
  } else {
    if (n > 1)
      lbx_error_prefix(&first, "%s: tried %zu search registries, the first said", name, n);
    if (err && !*err)
      *err = first;
    else
      lbx_error_free(first);
  }
  return rc;
}
