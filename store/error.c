#include "error.h"
#include "util.h"

#include <stdio.h>
#include <string.h>

/* A message is one line on a terminal: text taken from a registry, a
 * config file or a JSON parser's report (jansson quotes the raw token, a
 * newline included) must not break it in two nor send escape sequences to
 * the user's terminal. Control bytes become '?'. */
static char *
one_line(char *msg)
{
  for (unsigned char *p = (unsigned char *)msg; *p; p++)
    if (*p < 0x20 || *p == 0x7f)
      *p = '?';
  return msg;
}

static int set(lbx_err **err, int code, const char *suffix, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

static int
set(lbx_err **err, int code, const char *suffix, const char *fmt, va_list ap)
{
  if (!err || *err)
    return -1; /* the first error is the one that explains the failure */
  char *msg;
  if (vasprintf(&msg, fmt, ap) < 0)
    msg = NULL;
  lbx_err *e = lbx_xcalloc(1, sizeof *e);
  e->code = code;
  if (msg && suffix) {
    e->msg = lbx_xasprintf("%s: %s", msg, suffix);
    free(msg);
  } else {
    e->msg = msg ? msg : lbx_xstrdup("out of memory");
  }
  one_line(e->msg);
  *err = e;
  return -1;
}

int
lbx_error(lbx_err **err, int code, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  set(err, code, NULL, fmt, ap);
  va_end(ap);
  return -1;
}

int
lbx_error_errno(lbx_err **err, int code, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  set(err, code, strerror(code), fmt, ap);
  va_end(ap);
  return -1;
}

int
lbx_error_prefix(lbx_err **err, const char *fmt, ...)
{
  if (!err || !*err)
    return -1;
  va_list ap;
  va_start(ap, fmt);
  char *ctx;
  int r = vasprintf(&ctx, fmt, ap);
  va_end(ap);
  if (r < 0)
    return -1;
  char *msg = lbx_xasprintf("%s: %s", ctx, (*err)->msg);
  free(ctx);
  free((*err)->msg);
  (*err)->msg = one_line(msg);
  return -1;
}

void
lbx_error_free(lbx_err *e)
{
  if (!e)
    return;
  free(e->msg);
  free(e);
}
