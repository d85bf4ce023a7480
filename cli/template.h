/* --format TEMPLATE: the part of Go's text/template that scripts written
 * for Podman use (`podman inspect -f '{{.State.Pid}}'`, `podman ps
 * --format '{{.ID}} {{.Names}}'`), evaluated over JSON values.
 *
 * Supported: text; {{.Field.Field}}, {{.}} and {{$}}; string and integer
 * literals; the functions json, index, len, join, upper, lower and split;
 * pipelines (a | f: a is f's last argument); {{if}}, {{else}}, {{else if}},
 * {{range}}, {{with}}, {{else with}}, {{end}}; comments; the trim markers
 * {{- and -}}. Not: variables ($name), methods with arguments.
 * A field an object lacks prints "<no value>", as a Go map's missing key
 * does; `index` of a key a map lacks is "", as Podman's string maps give.
 * "table " before the template: a header line, and the template's spaces
 * (outside actions) and tabs separate columns aligned by lbx_table_print. The escapes \t and \n in
 * the template are a tab and a newline, as Podman reads them. */
#ifndef LBX_TEMPLATE_H
#define LBX_TEMPLATE_H

#include <jansson.h>
#include <stdbool.h>

#include "store/error.h"

typedef struct lbx_template lbx_template;

/* 0, or -1 with *err: `format "SRC": REASON`. */
int lbx_template_parse(const char *src, lbx_template **out, lbx_err **err);
void lbx_template_free(lbx_template *t);
static inline void
lbx_template_freep(lbx_template **t)
{
  lbx_template_free(*t);
}
/* Whether the source started with "table" (the header is wanted). */
bool lbx_template_is_table(const lbx_template *t);
/* The header line of a table: each field's last name, in capitals and
 * split at its words ("CreatedAt": "CREATED AT"), unless renames (pairs of
 * field and header, NULL-terminated; may be NULL) names it otherwise. */
char *lbx_template_header(const lbx_template *t, const char *const *renames);

/* The text for one value of dot: a new string, or NULL with *err. */
char *lbx_template_render(const lbx_template *t, json_t *dot, lbx_err **err);

/* Prints lines (NULL-terminated) with their tab-separated columns padded
 * to a common width, as Go's tabwriter does for Podman's tables. */
void lbx_table_print(char **lines);

#endif
