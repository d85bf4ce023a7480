/* The error object of user-facing code (index/, launcher/, cli/).
 * A failing function returns -1 (or NULL) and fills *err with errno and a
 * message that names the thing; callers add context with lbx_error_prefix
 * on the way up; cli/ prints it once. Hot paths (store/, fs/) return -errno
 * instead and their callers turn that into an lbx_err. */
#ifndef LBX_ERROR_H
#define LBX_ERROR_H

#include <stdarg.h>

typedef struct lbx_err {
  int code;  /* errno value, or 0 when no errno applies */
  char *msg; /* one line, no trailing newline */
} lbx_err;

/* Sets *err (if err is non-NULL and *err is still NULL) and returns -1. */
int lbx_error(lbx_err **err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Like lbx_error with code=errno and ": strerror(errno)" appended. */
int lbx_error_errno(lbx_err **err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prepends "context: " to an existing error; returns -1. */
int lbx_error_prefix(lbx_err **err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void lbx_error_free(lbx_err *e);
static inline void
lbx_error_freep(lbx_err **e)
{
  lbx_error_free(*e);
}
#define _cleanup_error_ __attribute__((cleanup(lbx_error_freep)))

#endif
