/* What a box runs: its settings (kept as JSON in its row at create time)
 * merged with its image's config, Podman's rules. start hands this to the
 * launcher; exec and inspect read it too. */
#include "plan.h"

#include <string.h>

/* JSON array of strings -> NULL-terminated vector (appended to v). */
static char **
strv_append(char **v, size_t *n, json_t *arr)
{
  size_t i;
  json_t *x;
  json_array_foreach(arr, i, x)
  {
    if (!json_is_string(x))
      continue;
    v = lbx_xrealloc(v, (*n + 2) * sizeof *v);
    v[(*n)++] = lbx_xstrdup(json_string_value(x));
    v[*n] = NULL;
  }
  return v;
}

/* Image env, then the box's: a later KEY= wins. */
char **
lbx_plan_merge_env(json_t *image_env, json_t *box_env, json_t *more)
{
  json_t *all = json_array();
  if (json_is_array(image_env))
    json_array_extend(all, image_env);
  if (json_is_array(box_env))
    json_array_extend(all, box_env);
  if (json_is_array(more))
    json_array_extend(all, more);
  char **v = NULL;
  size_t n = 0;
  size_t i;
  json_t *x;
  json_array_foreach(all, i, x)
  {
    const char *kv = json_string_value(x);
    if (!kv || !strchr(kv, '='))
      continue;
    size_t klen = (size_t)(strchr(kv, '=') - kv);
    size_t k;
    for (k = 0; k < n; k++)
      if (strncmp(v[k], kv, klen + 1) == 0)
        break;
    if (k < n) {
      free(v[k]);
      v[k] = lbx_xstrdup(kv);
      continue;
    }
    v = lbx_xrealloc(v, (n + 2) * sizeof *v);
    v[n++] = lbx_xstrdup(kv);
    v[n] = NULL;
  }
  json_decref(all);
  if (!v)
    v = lbx_xcalloc(1, sizeof *v);
  return v;
}

void
lbx_plan_clear(struct plan *p)
{
  json_decref(p->box);
  json_decref(p->image);
  lbx_strv_free(p->argv);
  lbx_strv_free(p->env);
  free(p->chain_id);
}

int
lbx_plan_make(lbx_store *s, const lbx_box_row *box, struct plan *p, lbx_err **err)
{
  memset(p, 0, sizeof *p);
  p->box = json_loads(box->config, 0, NULL);
  if (!json_is_object(p->box))
    return lbx_error(err, EINVAL, "box %s: its settings are not valid JSON", box->name);
  lbx_image_row row = {0};
  _cleanup_free_ char *cfg = NULL;
  size_t len = 0;
  if (lbx_store_image_get(s, box->image, &row, &cfg, &len, err) < 0)
    return -1;
  p->chain_id = steal_pointer(&row.chain_id);
  lbx_image_row_clear(&row);
  json_t *whole = json_loadb(cfg, len, 0, NULL);
  p->image = json_incref(json_object_get(whole, "config"));
  json_decref(whole);
  if (!p->image)
    p->image = json_object();
  /* Podman's rule: --entrypoint replaces the image's and drops its Cmd */
  size_t n = 0;
  json_t *ep = json_object_get(p->box, "Entrypoint");
  json_t *cmd = json_object_get(p->box, "Cmd");
  if (json_is_string(ep)) {
    json_t *one = json_pack("[s]", json_string_value(ep));
    if (*json_string_value(ep))
      p->argv = strv_append(p->argv, &n, one);
    json_decref(one);
  } else {
    p->argv = strv_append(p->argv, &n, json_object_get(p->image, "Entrypoint"));
  }
  if (json_array_size(cmd) > 0)
    p->argv = strv_append(p->argv, &n, cmd);
  else if (!json_is_string(ep))
    p->argv = strv_append(p->argv, &n, json_object_get(p->image, "Cmd"));
  if (n == 0)
    return lbx_error(err, EINVAL, "box %s: no command: the image has none, and none was given",
                     box->name);
  p->env =
      lbx_plan_merge_env(json_object_get(p->image, "Env"), json_object_get(p->box, "Env"), NULL);
  p->workdir = json_string_value(json_object_get(p->box, "WorkingDir"));
  if (!p->workdir || !*p->workdir)
    p->workdir = json_string_value(json_object_get(p->image, "WorkingDir"));
  p->user = json_string_value(json_object_get(p->box, "User"));
  if (!p->user || !*p->user)
    p->user = json_string_value(json_object_get(p->image, "User"));
  return 0;
}
