/* A box's settings merged with its image's config (plan.c). */
#ifndef LBX_CLI_PLAN_H
#define LBX_CLI_PLAN_H

#include "cli.h"

#include <jansson.h>

struct plan {
  json_t *box, *image; /* the box's settings, the image's "config" */
  char **argv, **env;
  const char *workdir, *user;
  char *chain_id;
};

/* 0, or -1 with *err naming the box (bad settings, no command, its image
 * gone). p is filled either way: lbx_plan_clear it. */
int lbx_plan_make(lbx_store *s, const struct lbx_box_row *box, struct plan *p, lbx_err **err);
void lbx_plan_clear(struct plan *p);
/* KEY=VALUE vector: the image's Env, then the box's, then more (each may
 * be NULL), a later KEY replacing an earlier one. */
char **lbx_plan_merge_env(json_t *image_env, json_t *box_env, json_t *more);

#endif
