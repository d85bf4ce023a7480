/* `load`: docker-archive tarballs (docker save) and OCI image layouts, as a
 * directory or as a tar. Both are read in place: an archive is scanned once
 * for its member offsets, then each member is read with pread. */
#include "index.h"
#include "ref.h"
#include "tar.h"
#include "../store/dset.h"

#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include "../store/crypto.h"
#include <string.h>
#include <sys/stat.h>

#define JSON_MAX (16u << 20) /* manifests and configs are small; refuse absurd ones */

/* jansson's own json_decrefp, as json_auto_t uses it */
#define _cleanup_json_ __attribute__((cleanup(json_decrefp)))

struct member {
  char *path;
  char *link; /* symlink target, resolved against the member's dir */
  uint64_t off, size;
};

/* Where image files come from: a directory, or members of a tar file. */
struct bundle {
  const char *name; /* the path the user gave, for errors */
  int dirfd;        /* directory bundles */
  int fd;           /* archive bundles */
  struct member *m;
  size_t n;
};

static void
bundle_clear(struct bundle *b)
{
  if (b->dirfd >= 0)
    close(b->dirfd);
  if (b->fd >= 0)
    close(b->fd);
  for (size_t i = 0; i < b->n; i++) {
    free(b->m[i].path);
    free(b->m[i].link);
  }
  free(b->m);
}

/* Joins a link target to the directory dir[0..dirlen) and folds "." and
 * ".." lexically inside the archive's namespace; NULL if it climbs out. */
static char *
resolve_member(const char *dir, size_t dirlen, const char *target)
{
  _cleanup_free_ char *joined =
      dirlen ? lbx_xasprintf("%.*s/%s", (int)dirlen, dir, target) : lbx_xstrdup(target);
  char *out = lbx_xmalloc(strlen(joined) + 1);
  size_t n = 0;
  char *save = NULL;
  for (char *c = strtok_r(joined, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
    if (strcmp(c, ".") == 0)
      continue;
    if (strcmp(c, "..") == 0) {
      if (n == 0) {
        free(out);
        return NULL;
      }
      while (n > 0 && out[n - 1] != '/')
        n--;
      if (n > 0)
        n--; /* the separator */
      continue;
    }
    if (n)
      out[n++] = '/';
    memcpy(out + n, c, strlen(c));
    n += strlen(c);
  }
  out[n] = '\0';
  return out;
}

static int
scan_archive(struct bundle *b, lbx_err **err)
{
  lbx_fd_source src = {b->fd, 0, UINT64_MAX, 0, b->name};
  _cleanup_(lbx_tar_freep) lbx_tar *t = lbx_tar_new(b->name, lbx_fd_source_read, &src);
  const lbx_tar_entry *e;
  int r;
  while ((r = lbx_tar_next(t, &e, err)) == 1) {
    if (e->type != LBX_TAR_REG && e->type != LBX_TAR_SYMLINK && e->type != LBX_TAR_HARDLINK)
      continue;
    _cleanup_free_ char *path = NULL;
    if (lbx_tar_clean_path(e->path, &path, err) < 0)
      return -1;
    b->m = lbx_xrealloc(b->m, (b->n + 1) * sizeof *b->m);
    struct member *m = &b->m[b->n++];
    *m = (struct member){steal_pointer(&path), NULL, e->offset, e->size};
    if (e->type == LBX_TAR_SYMLINK || e->type == LBX_TAR_HARDLINK) {
      /* docker save and skopeo link duplicate layers to one copy, with
       * targets such as "<dir>/../<digest>.tar" */
      const char *slash = strrchr(m->path, '/');
      bool relative = e->type == LBX_TAR_SYMLINK && e->linkname[0] != '/';
      if (!(m->link =
                resolve_member(relative && slash ? m->path : "",
                               relative && slash ? (size_t)(slash - m->path) : 0, e->linkname)))
        return lbx_error(err, EINVAL, "%s: link \"%s\" -> \"%s\" leaves the archive", b->name,
                         m->path, e->linkname);
    }
  }
  return r;
}

static const struct member *
find_member(const struct bundle *b, const char *path, int depth)
{
  for (size_t i = 0; i < b->n; i++)
    if (strcmp(b->m[i].path, path) == 0) {
      if (b->m[i].link)
        return depth < 8 ? find_member(b, b->m[i].link, depth + 1) : NULL;
      return &b->m[i];
    }
  return NULL;
}

/* `docker save | gzip` and the like: decompressed once into an unnamed
 * file in the store's tmp/ (gone when closed), then read like any archive. */
static int
decompress_archive(struct bundle *b, const char *tmpdir, lbx_err **err)
{
  unsigned char magic[4] = {0};
  if (pread(b->fd, magic, sizeof magic, 0) < (ssize_t)sizeof magic)
    return 0;
  bool gz = magic[0] == 0x1f && magic[1] == 0x8b;
  bool zst = magic[0] == 0x28 && magic[1] == 0xb5 && magic[2] == 0x2f && magic[3] == 0xfd;
  if (!gz && !zst)
    return 0;
  int out = open(tmpdir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (out < 0)
    return lbx_error_errno(err, errno, "%s: a tmp file in %s to decompress into", b->name, tmpdir);
  lbx_fd_source src = {b->fd, 0, UINT64_MAX, 0, b->name};
  _cleanup_(lbx_stream_freep) lbx_stream *st = lbx_stream_new(b->name, lbx_fd_source_read, &src, 0);
  _cleanup_free_ char *buf = lbx_xmalloc(1u << 20);
  ssize_t n;
  while ((n = lbx_stream_read(st, buf, 1u << 20, err)) > 0) {
    int r = lbx_write_all(out, buf, (size_t)n);
    if (r < 0) {
      close(out);
      return lbx_error_errno(err, -r, "%s: decompressing into %s", b->name, tmpdir);
    }
  }
  if (n < 0) {
    close(out);
    return -1;
  }
  close(b->fd);
  b->fd = out;
  return 0;
}

/* A pipe (`docker save | lazybox load`): copied into an unnamed file in
 * the store's tmp/ first, as an archive is read out of order. */
static int
spool(struct bundle *b, const char *tmpdir, lbx_err **err)
{
  int out = open(tmpdir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (out < 0)
    return lbx_error_errno(err, errno, "%s: a tmp file in %s to copy it into", b->name, tmpdir);
  _cleanup_free_ char *buf = lbx_xmalloc(1u << 20);
  for (;;) {
    ssize_t n = read(b->fd, buf, 1u << 20);
    if (n < 0 && errno == EINTR)
      continue;
    int r = n < 0 ? -errno : n > 0 ? lbx_write_all(out, buf, (size_t)n) : 0;
    if (r < 0) {
      close(out);
      return lbx_error_errno(err, -r, "%s: copying it into %s", b->name, tmpdir);
    }
    if (n == 0)
      break;
  }
  close(b->fd);
  b->fd = out;
  return 0;
}

static int
bundle_open(struct bundle *b, const char *path, const char *tmpdir, lbx_err **err)
{
  bool std_in = strcmp(path, "-") == 0;
  *b = (struct bundle){std_in ? "standard input" : path, -1, -1, NULL, 0};
  int fd = std_in ? fcntl(0, F_DUPFD_CLOEXEC, 3) : open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return lbx_error_errno(err, errno, "%s", b->name);
  struct stat st;
  if (fstat(fd, &st) < 0) {
    close(fd);
    return lbx_error_errno(err, errno, "%s", b->name);
  }
  if (S_ISDIR(st.st_mode)) {
    b->dirfd = fd;
    return 0;
  }
  b->fd = fd;
  if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode) && spool(b, tmpdir, err) < 0)
    return -1;
  if (decompress_archive(b, tmpdir, err) < 0)
    return -1;
  if (scan_archive(b, err) < 0)
    return -1; /* the tar reader's errors name the archive */
  return 0;
}

static bool
bundle_exists(const struct bundle *b, const char *rel)
{
  if (b->dirfd >= 0)
    return faccessat(b->dirfd, rel, F_OK, 0) == 0;
  return find_member(b, rel, 0) != NULL;
}

/* A source over one file of the bundle; *fd_out is set when a new fd was opened. */
static int
bundle_source(const struct bundle *b, const char *rel, uint64_t max, lbx_fd_source *src,
              int *fd_out, lbx_err **err)
{
  *fd_out = -1;
  if (b->dirfd >= 0) {
    /* Names come from digests we validated as hex, so they stay in the
     * layout; O_NONBLOCK so a FIFO planted there cannot hang us. */
    int fd = openat(b->dirfd, rel, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
      return lbx_error_errno(err, errno, "%s: %s", b->name, rel);
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
      close(fd);
      return lbx_error(err, EINVAL, "%s: %s is not a regular file", b->name, rel);
    }
    /* at most the descriptor's size: what follows is not the blob's */
    *src = (lbx_fd_source){fd, 0, max ? max : UINT64_MAX, 0, rel};
    *fd_out = fd;
    return 0;
  }
  const struct member *m = find_member(b, rel, 0);
  if (!m)
    return lbx_error(err, ENOENT, "%s: no member \"%s\" in the archive", b->name, rel);
  *src = (lbx_fd_source){b->fd, m->off, m->size, 0, b->name};
  return 0;
}

static int
bundle_read(const struct bundle *b, const char *rel, char **out, size_t *len, lbx_err **err)
{
  lbx_fd_source src;
  _cleanup_close_ int fd = -1;
  if (bundle_source(b, rel, 0, &src, &fd, err) < 0)
    return -1;
  size_t cap = 4096, n = 0;
  _cleanup_free_ char *buf = lbx_xmalloc(cap + 1);
  for (;;) {
    if (n == cap) {
      if (cap >= JSON_MAX)
        return lbx_error(err, EFBIG, "%s: %s is larger than %u bytes", b->name, rel, JSON_MAX);
      cap *= 2;
      buf = lbx_xrealloc(buf, cap + 1);
    }
    ssize_t r = lbx_fd_source_read(&src, buf + n, cap - n, err);
    if (r < 0)
      return -1;
    if (r == 0)
      break;
    n += (size_t)r;
  }
  buf[n] = '\0';
  *out = steal_pointer(&buf);
  *len = n;
  return 0;
}

static bool
digest_matches(const char *digest, const char *data, size_t len)
{
  uint8_t md[LBX_DIGEST_LEN];
  char hex[LBX_DIGEST_HEX];
  lbx_sha256_buf(data, len, md);
  lbx_hex(md, LBX_DIGEST_LEN, hex);
  return strncmp(digest, "sha256:", 7) == 0 && strcmp(digest + 7, hex) == 0;
}

/* A JSON file of the bundle. what/digest: a blob's kind ("manifest",
 * "config") and the digest that names it, checked before the bytes reach the
 * parser, so damaged or forged content is reported as what it is. */
static json_t *
bundle_json(const struct bundle *b, const char *rel, const char *what, const char *digest,
            char **raw, size_t *rawlen, lbx_err **err)
{
  _cleanup_free_ char *buf = NULL;
  size_t len = 0;
  if (bundle_read(b, rel, &buf, &len, err) < 0)
    return NULL;
  if (digest && !digest_matches(digest, buf, len)) {
    lbx_error(err, EBADMSG, "%s: %s %s: its content does not match the digest", b->name, what,
              digest);
    return NULL;
  }
  json_error_t jerr;
  json_t *j = json_loadb(buf, len, 0, &jerr);
  if (!j) {
    lbx_error(err, EBADMSG, "%s: %s: invalid JSON: %s (line %d)", b->name, rel, jerr.text,
              jerr.line);
    return NULL;
  }
  if (raw) {
    *raw = steal_pointer(&buf);
    *rawlen = len;
  }
  return j;
}

/* "sha256:<hex>" -> "blobs/sha256/<hex>", refusing anything but a digest. */
static char *
blob_rel(const char *digest, lbx_err **err)
{
  uint8_t bin[LBX_DIGEST_LEN];
  if (!digest || lbx_digest_parse(digest, bin, 0) < 0) {
    lbx_error(err, EINVAL, "unsupported or malformed digest \"%s\"", digest ? digest : "");
    return NULL;
  }
  return lbx_xasprintf("blobs/sha256/%s", digest + 7);
}

/* Layer sources that each may own an fd. */
struct layer_set {
  lbx_layer_src *src;
  lbx_fd_source *fds;
  int *owned;
  char **names;
  size_t n;
};

static void
layer_set_clear(struct layer_set *ls)
{
  for (size_t i = 0; i < ls->n; i++) {
    if (ls->owned[i] >= 0)
      close(ls->owned[i]);
    free(ls->names[i]);
  }
  free(ls->src);
  free(ls->fds);
  free(ls->owned);
  free(ls->names);
}

/* Indexes the layers not in the store yet, then records the image. */
static int
add_image(lbx_store *s, const struct bundle *b, const char *config, size_t config_len,
          const char *manifest, size_t manifest_len, const char *const *rels,
          const char *const *digests, const char *const *media, const uint64_t *sizes,
          size_t nlayers, const char *const *names, size_t nnames, char id[LBX_DIGEST_HEX],
          lbx_err **err)
{
  json_error_t jerr;
  _cleanup_json_ json_t *cfg = json_loadb(config, config_len, 0, &jerr);
  json_t *diff_ids = json_object_get(json_object_get(cfg, "rootfs"), "diff_ids");
  if (!json_is_array(diff_ids) || json_array_size(diff_ids) != nlayers)
    return lbx_error(err, EBADMSG, "%s: the image config lists %zu layers, the manifest %zu",
                     b->name, json_array_size(diff_ids), nlayers);

  __attribute__((cleanup(layer_set_clear))) struct layer_set ls = {
      lbx_xcalloc(nlayers, sizeof(lbx_layer_src)), lbx_xcalloc(nlayers, sizeof(lbx_fd_source)),
      lbx_xcalloc(nlayers, sizeof(int)), lbx_xcalloc(nlayers, sizeof(char *)), 0};
  __attribute__((cleanup(lbx_dset_clear))) lbx_dset seen = {0};
  _cleanup_free_ lbx_image_layer *layers = lbx_xcalloc(nlayers, sizeof *layers);
  for (size_t i = 0; i < nlayers; i++) {
    const char *diff_id = json_string_value(json_array_get(diff_ids, i));
    if (!diff_id)
      return lbx_error(err, EBADMSG, "%s: the image config has no diff_id for layer %zu", b->name,
                       i + 1);
    layers[i] = (lbx_image_layer){diff_id, digests[i], media[i], sizes[i]};
    int has = lbx_store_has_layer(s, diff_id);
    if (has < 0)
      return lbx_error_errno(err, -has, "store %s", lbx_store_root(s));
    if (has)
      continue; /* indexed before: not read again */
    uint8_t bin[LBX_DIGEST_LEN];
    if (lbx_digest_parse(diff_id, bin, 0) < 0)
      return lbx_error(err, EBADMSG, "%s: the image config has a malformed diff_id \"%.80s\"",
                       b->name, diff_id);
    if (!lbx_dset_add(&seen, bin))
      continue; /* the same layer twice in one image: indexed once */
    size_t k = ls.n;
    ls.owned[k] = -1;
    if (bundle_source(b, rels[i], sizes[i], &ls.fds[k], &ls.owned[k], err) < 0)
      return -1;
    ls.n++;
    ls.names[k] = lbx_xstrdup(digests[i] ? digests[i] : rels[i]);
    ls.src[k] = (lbx_layer_src){ls.names[k], lbx_fd_source_read, &ls.fds[k], digests[i],
                                diff_id,     sizes[i],           0};
  }
  if (ls.n) {
    _cleanup_free_ lbx_layer_result *res = lbx_xcalloc(ls.n, sizeof *res);
    if (lbx_index_layers(s, ls.src, ls.n, 0, res, err) < 0)
      return lbx_error_prefix(err, "%s", b->name);
  }
  if (lbx_image_add(s, config, config_len, manifest, manifest_len, layers, nlayers, names, nnames,
                    id, err) < 0)
    return lbx_error_prefix(err, "%s", b->name);
  return 0;
}

static void
push_name(char ***names, size_t *n, char *name)
{
  *names = lbx_xrealloc(*names, (*n + 1) * sizeof **names);
  (*names)[(*n)++] = name;
}

static void
free_names(char **v, size_t n)
{
  for (size_t i = 0; i < n; i++)
    free(v[i]);
  free(v);
}

/* docker save: manifest.json lists each image's config, tags and layer files. */
static int
load_docker_archive(lbx_store *s, const struct bundle *b, char ***out, size_t *nout, lbx_err **err)
{
  _cleanup_json_ json_t *manifest = bundle_json(b, "manifest.json", NULL, NULL, NULL, NULL, err);
  if (!manifest)
    return -1;
  if (!json_is_array(manifest) || json_array_size(manifest) == 0)
    return lbx_error(err, EBADMSG, "%s: manifest.json is not a list of images", b->name);
  size_t i;
  json_t *img;
  json_array_foreach(manifest, i, img)
  {
    const char *cfg_rel = json_string_value(json_object_get(img, "Config"));
    json_t *lay = json_object_get(img, "Layers");
    if (!cfg_rel || !json_is_array(lay))
      return lbx_error(err, EBADMSG, "%s: manifest.json entry %zu lacks Config or Layers", b->name,
                       i + 1);
    _cleanup_free_ char *cfg_path = NULL;
    if (lbx_tar_clean_path(cfg_rel, &cfg_path, err) < 0)
      return lbx_error_prefix(err, "%s", b->name);
    _cleanup_free_ char *config = NULL;
    size_t config_len;
    _cleanup_json_ json_t *cfgj = bundle_json(b, cfg_path, NULL, NULL, &config, &config_len, err);
    if (!cfgj)
      return -1;
    size_t n = json_array_size(lay);
    _cleanup_free_ char **rels = lbx_xcalloc(n, sizeof *rels);
    _cleanup_free_ const char **digests = lbx_xcalloc(n, sizeof *digests);
    _cleanup_free_ const char **media = lbx_xcalloc(n, sizeof *media);
    _cleanup_free_ uint64_t *sizes = lbx_xcalloc(n, sizeof *sizes);
    int r = 0;
    for (size_t k = 0; k < n && r == 0; k++) {
      const char *rel = json_string_value(json_array_get(lay, k));
      if (!rel)
        r = lbx_error(err, EBADMSG, "%s: manifest.json: layer %zu is not a path", b->name, k + 1);
      else
        r = lbx_tar_clean_path(rel, &rels[k], err);
      media[k] = "application/vnd.docker.image.rootfs.diff.tar";
    }
    /* Tags as docker save writes them ("busybox:latest") are normalized
     * like any reference. */
    char **names = NULL;
    size_t nnames = 0;
    json_t *tags = json_object_get(img, "RepoTags");
    size_t t;
    json_t *tag;
    json_array_foreach(tags, t, tag)
    {
      lbx_ref *ref = NULL;
      if (r == 0 && json_is_string(tag) &&
          lbx_ref_parse(json_string_value(tag), 0, &ref, err) == 0) {
        push_name(&names, &nnames, lbx_ref_string(ref));
        lbx_ref_free(ref);
      } else if (r == 0) {
        r = lbx_error_prefix(err, "%s: manifest.json", b->name);
      }
    }
    char id[LBX_DIGEST_HEX];
    if (r == 0)
      r = add_image(s, b, config, config_len, NULL, 0, (const char *const *)rels, digests, media,
                    sizes, n, (const char *const *)names, nnames, id, err);
    for (size_t k = 0; k < n; k++)
      free(rels[k]);
    if (r < 0) {
      free_names(names, nnames);
      return -1;
    }
    if (nnames == 0)
      push_name(&names, &nnames, lbx_xasprintf("sha256:%s", id));
    for (size_t k = 0; k < nnames; k++)
      push_name(out, nout, names[k]);
    free(names);
  }
  return 0;
}

static bool
platform_is_host(json_t *desc)
{
  json_t *p = json_object_get(desc, "platform");
  if (!p)
    return true;
  const char *os = json_string_value(json_object_get(p, "os"));
  const char *arch = json_string_value(json_object_get(p, "architecture"));
#if defined(__x86_64__)
  const char *host = "amd64";
#elif defined(__aarch64__)
  const char *host = "arm64";
#else
  const char *host = "";
#endif
  return (!os || strcmp(os, "linux") == 0) && (!arch || strcmp(arch, host) == 0);
}

static int load_oci_manifest(lbx_store *s, const struct bundle *b, json_t *desc, const char *name,
                             char ***out, size_t *nout, int depth, lbx_err **err);

static int
load_oci_index(lbx_store *s, const struct bundle *b, json_t *index, const char *name, char ***out,
               size_t *nout, int depth, lbx_err **err)
{
  json_t *manifests = json_object_get(index, "manifests");
  if (!json_is_array(manifests))
    return lbx_error(err, EBADMSG, "%s: the index has no manifests list", b->name);
  size_t i, loaded = 0;
  json_t *desc;
  json_array_foreach(manifests, i, desc)
  {
    const char *ref = json_string_value(
        json_object_get(json_object_get(desc, "annotations"), "org.opencontainers.image.ref.name"));
    if (depth > 0 && !platform_is_host(desc))
      continue; /* a multi-platform image: this host's variant only */
    if (load_oci_manifest(s, b, desc, ref ? ref : name, out, nout, depth, err) < 0)
      return -1;
    loaded++;
    if (depth > 0)
      break;
  }
  if (!loaded)
    return lbx_error(err, ENOENT, "%s: no manifest for this platform", b->name);
  return 0;
}

/* The name an OCI layout gives an image, or NULL (then it loads unnamed:
 * a name we cannot make sense of is no reason to refuse the image). */
static char *
oci_name(const struct bundle *b, const char *ref)
{
  if (!ref)
    return NULL;
  lbx_ref *r = NULL;
  /* A bare tag (what umoci and skopeo write for "dir:tag"): named after the
   * layout's directory under localhost/, as Podman names local images. */
  bool bare_tag = !strchr(ref, '/') && !strchr(ref, ':') && !strchr(ref, '@');
  char *out = NULL;
  if (bare_tag) {
    _cleanup_free_ char *copy = realpath(b->name, NULL);
    if (!copy)
      return NULL;
    size_t l = strlen(copy);
    while (l > 1 && copy[l - 1] == '/')
      copy[--l] = '\0';
    char *base = basename(copy);
    char *dot = strchr(base, '.');
    if (dot && dot != base)
      *dot = '\0';
    for (char *c = base; *c; c++)
      if (*c >= 'A' && *c <= 'Z')
        *c = (char)(*c - 'A' + 'a');
    _cleanup_free_ char *full = lbx_xasprintf("localhost/%s:%s", base, ref);
    if (lbx_ref_parse(full, LBX_REF_LOCAL, &r, NULL) < 0)
      return NULL;
  } else if (lbx_ref_parse(ref, 0, &r, NULL) < 0) {
    return NULL;
  }
  out = lbx_ref_string(r);
  lbx_ref_free(r);
  return out;
}

static int
load_oci_manifest(lbx_store *s, const struct bundle *b, json_t *desc, const char *name, char ***out,
                  size_t *nout, int depth, lbx_err **err)
{
  const char *digest = json_string_value(json_object_get(desc, "digest"));
  const char *mt = json_string_value(json_object_get(desc, "mediaType"));
  _cleanup_free_ char *rel = blob_rel(digest, err);
  if (!rel)
    return lbx_error_prefix(err, "%s: manifest", b->name);
  _cleanup_free_ char *raw = NULL;
  size_t rawlen;
  _cleanup_json_ json_t *m = bundle_json(b, rel, "manifest", digest, &raw, &rawlen, err);
  if (!m)
    return -1;
  const char *inner = json_string_value(json_object_get(m, "mediaType"));
  if (!mt)
    mt = inner;
  if (json_object_get(m, "manifests")) {
    if (depth >= 4)
      return lbx_error(err, ELOOP, "%s: indexes nested too deep", b->name);
    return load_oci_index(s, b, m, name, out, nout, depth + 1, err);
  }
  if (mt && strcmp(mt, "application/vnd.oci.image.manifest.v1+json") != 0 &&
      strcmp(mt, "application/vnd.docker.distribution.manifest.v2+json") != 0)
    return lbx_error(err, EPROTONOSUPPORT, "%s: manifest %s: unsupported media type %s", b->name,
                     digest, mt);

  json_t *cfgd = json_object_get(m, "config");
  const char *cfg_digest = json_string_value(json_object_get(cfgd, "digest"));
  _cleanup_free_ char *cfg_rel = blob_rel(cfg_digest, err);
  if (!cfg_rel)
    return lbx_error_prefix(err, "%s: manifest %s: config", b->name, digest);
  _cleanup_free_ char *config = NULL;
  size_t config_len;
  _cleanup_json_ json_t *cfgj =
      bundle_json(b, cfg_rel, "config", cfg_digest, &config, &config_len, err);
  if (!cfgj)
    return -1;

  json_t *lay = json_object_get(m, "layers");
  if (!json_is_array(lay))
    return lbx_error(err, EBADMSG, "%s: manifest %s has no layers list", b->name, digest);
  size_t n = json_array_size(lay);
  _cleanup_free_ char **rels = lbx_xcalloc(n, sizeof *rels);
  _cleanup_free_ const char **digests = lbx_xcalloc(n, sizeof *digests);
  _cleanup_free_ const char **media = lbx_xcalloc(n, sizeof *media);
  _cleanup_free_ uint64_t *sizes = lbx_xcalloc(n, sizeof *sizes);
  int r = 0;
  for (size_t k = 0; k < n && r == 0; k++) {
    json_t *l = json_array_get(lay, k);
    digests[k] = json_string_value(json_object_get(l, "digest"));
    media[k] = json_string_value(json_object_get(l, "mediaType"));
    json_t *sz = json_object_get(l, "size");
    sizes[k] =
        json_is_integer(sz) && json_integer_value(sz) > 0 ? (uint64_t)json_integer_value(sz) : 0;
    if (!media[k])
      media[k] = "application/vnd.oci.image.layer.v1.tar";
    if (!lbx_layer_media_type_known(media[k]))
      r = lbx_error(err, EPROTONOSUPPORT, "%s: layer %s: unsupported media type %s", b->name,
                    digests[k] ? digests[k] : "?", media[k]);
    else if (!(rels[k] = blob_rel(digests[k], err)))
      r = lbx_error_prefix(err, "%s: manifest %s: layer %zu", b->name, digest, k + 1);
  }
  _cleanup_free_ char *full = name ? oci_name(b, name) : NULL;
  /* two images of one layout named alike (e.g. both "latest"): the first
   * keeps the name */
  for (size_t k = 0; full && k < *nout; k++)
    if (strcmp((*out)[k], full) == 0) {
      free(full);
      full = NULL;
    }
  char id[LBX_DIGEST_HEX];
  const char *names[1] = {full};
  if (r == 0)
    r = add_image(s, b, config, config_len, raw, rawlen, (const char *const *)rels, digests, media,
                  sizes, n, names, full ? 1 : 0, id, err);
  for (size_t k = 0; k < n; k++)
    free(rels[k]);
  if (r < 0)
    return -1;
  push_name(out, nout, full ? steal_pointer(&full) : lbx_xasprintf("sha256:%s", id));
  return 0;
}

static int
load_oci(lbx_store *s, const struct bundle *b, char ***out, size_t *nout, lbx_err **err)
{
  _cleanup_json_ json_t *layout = bundle_json(b, "oci-layout", NULL, NULL, NULL, NULL, err);
  if (!layout)
    return -1;
  const char *v = json_string_value(json_object_get(layout, "imageLayoutVersion"));
  if (!v || strncmp(v, "1.", 2) != 0)
    return lbx_error(err, EPROTONOSUPPORT, "%s: unsupported OCI layout version %s", b->name,
                     v ? v : "(none)");
  _cleanup_json_ json_t *index = bundle_json(b, "index.json", NULL, NULL, NULL, NULL, err);
  if (!index)
    return -1;
  return load_oci_index(s, b, index, NULL, out, nout, 0, err);
}

int
lbx_load(lbx_store *s, const char *path, char ***names, size_t *nnames, lbx_err **err)
{
  __attribute__((cleanup(bundle_clear))) struct bundle b;
  *names = NULL;
  *nnames = 0;
  _cleanup_free_ char *tmpdir = lbx_xasprintf("%s/tmp", lbx_store_root(s));
  if (bundle_open(&b, path, tmpdir, err) < 0)
    return -1;
  if (lbx_store_lock(s, false, err) < 0)
    return -1;
  int r;
  /* docker save since Docker 25 writes both; its manifest.json has the
   * names (RepoTags), the OCI index only bare tags */
  if (bundle_exists(&b, "manifest.json"))
    r = load_docker_archive(s, &b, names, nnames, err);
  else if (bundle_exists(&b, "oci-layout"))
    r = load_oci(s, &b, names, nnames, err);
  else
    r = lbx_error(err, EINVAL,
                  "%s: neither an OCI image layout (no oci-layout file) nor a docker-archive (no "
                  "manifest.json)",
                  path);
  lbx_store_unlock(s);
  if (r < 0) {
    free_names(*names, *nnames);
    *names = NULL;
    *nnames = 0;
  }
  return r;
}
