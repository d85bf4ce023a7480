/* `import`: a plain rootfs tarball becomes a one-layer image whose config
 * we write, with Dockerfile-style changes applied to it. */
#include "index.h"
#include "ref.h"

#include <fcntl.h>
#include <jansson.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>

/* jansson's own json_decrefp, as json_auto_t uses it */
#define _cleanup_json_ __attribute__((cleanup(json_decrefp)))

static const char *
host_arch(void)
{
#if defined(__x86_64__)
  return "amd64";
#elif defined(__aarch64__)
  return "arm64";
#elif defined(__i386__)
  return "386";
#elif defined(__arm__)
  return "arm";
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  return "ppc64le";
#elif defined(__s390x__)
  return "s390x";
#elif defined(__riscv) && __riscv_xlen == 64
  return "riscv64";
#else
  return "unknown";
#endif
}

/* CMD and ENTRYPOINT: a JSON array (exec form) or a string run by /bin/sh -c. */
static json_t *
command_value(const char *v)
{
  json_t *arr = NULL;
  if (v[0] == '[') {
    arr = json_loads(v, 0, NULL);
    bool ok = json_is_array(arr);
    size_t i;
    json_t *x;
    json_array_foreach(arr, i, x) ok = ok && json_is_string(x);
    if (ok)
      return arr;
    json_decref(arr);
  }
  return json_pack("[s s s]", "/bin/sh", "-c", v);
}

static int
apply_change(json_t *cfg, const char *change, lbx_err **err)
{
  size_t klen = strcspn(change, " =\t");
  if (change[klen] == '\0')
    return lbx_error(err, EINVAL, "--change \"%s\": expected INSTRUCTION VALUE", change);
  _cleanup_free_ char *key = lbx_xstrndup(change, klen);
  for (char *c = key; *c; c++)
    if (*c >= 'a' && *c <= 'z')
      *c = (char)(*c - 'a' + 'A');
  const char *v = change + klen + 1;
  while (*v == ' ' || *v == '\t')
    v++;
  if (strcmp(key, "CMD") == 0 || strcmp(key, "ENTRYPOINT") == 0) {
    json_object_set_new(cfg, strcmp(key, "CMD") == 0 ? "Cmd" : "Entrypoint", command_value(v));
  } else if (strcmp(key, "ENV") == 0) {
    /* "ENV K=V" or the older "ENV K V" */
    _cleanup_free_ char *kv = NULL;
    if (!strchr(v, '=')) {
      size_t n = strcspn(v, " \t");
      const char *rest = v + n;
      while (*rest == ' ' || *rest == '\t')
        rest++;
      kv = lbx_xasprintf("%.*s=%s", (int)n, v, rest);
    } else {
      kv = lbx_xstrdup(v);
    }
    json_t *env = json_object_get(cfg, "Env");
    if (!env) {
      env = json_array();
      json_object_set_new(cfg, "Env", env);
    }
    size_t nlen = strcspn(kv, "=");
    size_t i;
    json_t *x;
    json_array_foreach(env, i, x)
    {
      const char *old = json_string_value(x);
      if (old && strncmp(old, kv, nlen + 1) == 0) {
        json_array_remove(env, i);
        break;
      }
    }
    json_array_append_new(env, json_string(kv));
  } else if (strcmp(key, "WORKDIR") == 0) {
    json_object_set_new(cfg, "WorkingDir", json_string(v));
  } else if (strcmp(key, "USER") == 0) {
    json_object_set_new(cfg, "User", json_string(v));
  } else if (strcmp(key, "STOPSIGNAL") == 0) {
    json_object_set_new(cfg, "StopSignal", json_string(v));
  } else if (strcmp(key, "EXPOSE") == 0 || strcmp(key, "VOLUME") == 0) {
    const char *field = key[0] == 'E' ? "ExposedPorts" : "Volumes";
    json_t *obj = json_object_get(cfg, field);
    if (!obj) {
      obj = json_object();
      json_object_set_new(cfg, field, obj);
    }
    _cleanup_free_ char *item = lbx_xstrdup(v);
    if (key[0] == 'E' && !strchr(item, '/')) {
      char *with = lbx_xasprintf("%s/tcp", item);
      free(item);
      item = with;
    }
    json_object_set_new(obj, item, json_object());
  } else if (strcmp(key, "LABEL") == 0) {
    const char *eq = strchr(v, '=');
    if (!eq)
      return lbx_error(err, EINVAL, "--change \"%s\": LABEL needs KEY=VALUE", change);
    json_t *labels = json_object_get(cfg, "Labels");
    if (!labels) {
      labels = json_object();
      json_object_set_new(cfg, "Labels", labels);
    }
    _cleanup_free_ char *k = lbx_xstrndup(v, (size_t)(eq - v));
    json_object_set_new(labels, k, json_string(eq + 1));
  } else {
    return lbx_error(err, EINVAL,
                     "--change \"%s\": unsupported instruction %s (CMD, ENTRYPOINT, ENV, EXPOSE, "
                     "LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR)",
                     change, key);
  }
  return 0;
}

struct fd_reader {
  int fd;
  const char *name;
};

static ssize_t
fd_read(void *ctx, void *buf, size_t len, lbx_err **err)
{
  struct fd_reader *r = ctx;
  for (;;) {
    ssize_t n = read(r->fd, buf, len);
    if (n >= 0)
      return n;
    if (errno != EINTR)
      return lbx_error_errno(err, errno, "%s: read", r->name);
  }
}

int
lbx_import(lbx_store *s, const char *path, const char *name, const char *const *changes,
           size_t nchanges, const char *message, char id[LBX_DIGEST_HEX], lbx_err **err)
{
  _cleanup_json_ json_t *ccfg = json_object();
  for (size_t i = 0; i < nchanges; i++)
    if (apply_change(ccfg, changes[i], err) < 0)
      return -1;
  _cleanup_free_ char *full = NULL;
  if (name) {
    _cleanup_(lbx_ref_freep) lbx_ref *ref = NULL;
    if (lbx_ref_parse(name, LBX_REF_LOCAL, &ref, err) < 0)
      return -1;
    if (ref->digest)
      return lbx_error(err, EINVAL, "image name \"%s\": a digest cannot be given to an import",
                       name);
    full = lbx_ref_string(ref);
  }

  bool is_stdin = strcmp(path, "-") == 0;
  _cleanup_close_ int fd = is_stdin ? dup(0) : open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return lbx_error_errno(err, errno, "%s", path);
  struct fd_reader rd = {fd, is_stdin ? "standard input" : path};
  lbx_layer_src src = {rd.name, fd_read, &rd, NULL, NULL, 0, 0};
  lbx_layer_result res;
  if (lbx_store_lock(s, false, err) < 0)
    return -1;
  int r = lbx_index_layer(s, &src, &res, err);
  if (r < 0) {
    lbx_store_unlock(s);
    return -1; /* the indexer's errors already name the file */
  }

  char created[64];
  time_t now = time(NULL);
  struct tm tm;
  gmtime_r(&now, &tm);
  strftime(created, sizeof created, "%Y-%m-%dT%H:%M:%SZ", &tm);
  json_t *history = json_pack("{s:s, s:s}", "created", created, "created_by", "lazybox import");
  if (message)
    json_object_set_new(history, "comment", json_string(message));
  _cleanup_json_ json_t *cfg =
      json_pack("{s:s, s:s, s:s, s:O, s:{s:s, s:[s]}, s:[o]}", "created", created, "architecture",
                host_arch(), "os", "linux", "config", ccfg, "rootfs", "type", "layers", "diff_ids",
                res.diff_id, "history", history);
  _cleanup_free_ char *text = json_dumps(cfg, JSON_COMPACT | JSON_SORT_KEYS);
  lbx_image_layer layer = {res.diff_id, res.digest, lbx_layer_media_type(res.compression),
                           res.size};
  const char *names[1] = {full};
  r = lbx_image_add(s, text, strlen(text), NULL, 0, &layer, 1, names, full ? 1 : 0, id, err);
  lbx_store_unlock(s);
  if (r < 0)
    return lbx_error_prefix(err, "importing %s", path);
  return 0;
}
