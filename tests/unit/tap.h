/* A minimal TAP producer for the C unit tests (meson's protocol: 'tap'). */
#ifndef LBX_TAP_H
#define LBX_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tap_n, tap_failed;

static inline void tap_ok(int cond, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline void
tap_ok(int cond, const char *fmt, ...)
{
  va_list ap;
  char desc[1024];
  va_start(ap, fmt);
  vsnprintf(desc, sizeof desc, fmt, ap);
  va_end(ap);
  printf("%sok %d - ", cond ? "" : "not ", ++tap_n);
  /* a description is one TAP line: control bytes are escaped */
  for (const unsigned char *p = (const unsigned char *)desc; *p; p++)
    if (*p < 0x20 || *p == 0x7f)
      printf("\\x%02x", *p);
    else
      putchar(*p);
  putchar('\n');
  if (!cond)
    tap_failed++;
  fflush(stdout);
}

#define tap_is_int(got, want, ...)                                                                 \
  do {                                                                                             \
    long long g_ = (long long)(got), w_ = (long long)(want);                                       \
    tap_ok(g_ == w_, __VA_ARGS__);                                                                 \
    if (g_ != w_)                                                                                  \
      printf("#   got %lld, want %lld\n", g_, w_);                                                 \
  } while (0)

#define tap_is_str(got, want, ...)                                                                 \
  do {                                                                                             \
    const char *g_ = (got), *w_ = (want);                                                          \
    int eq_ = (g_ && w_) ? strcmp(g_, w_) == 0 : g_ == w_;                                         \
    tap_ok(eq_, __VA_ARGS__);                                                                      \
    if (!eq_)                                                                                      \
      printf("#   got \"%s\", want \"%s\"\n", g_ ? g_ : "(null)", w_ ? w_ : "(null)");             \
  } while (0)

static inline int
tap_done(void)
{
  printf("1..%d\n", tap_n);
  return tap_failed ? 1 : 0;
}

#endif
