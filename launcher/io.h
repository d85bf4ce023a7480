/* launcher/io.h: a box's output log and the caller's terminal.
 *
 * The log is one file per box (boxes/<id>/ctr.log) in the k8s-file format
 * Podman writes ("2026-11-23T17:07:26.123456789Z stdout F text"): one line
 * per line of output, "F" for a full line, "P" for a piece of a line that
 * was too long (or unfinished when the box ended). The supervisor holds an
 * exclusive flock on the log for its whole life: a reader that can take a
 * shared lock knows nobody writes any more (that is how `logs -f` ends). */
#ifndef LBX_IO_H
#define LBX_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <termios.h>

#include "../store/error.h"

enum lbx_log_stream { LBX_STDOUT = 1, LBX_STDERR = 2 };

typedef struct lbx_logw lbx_logw;
/* Opens (appends to, creates 0600) the log and takes the exclusive lock;
 * EBUSY (with a message naming the file) when another process holds it. */
int lbx_logw_open(const char *path, lbx_logw **out, lbx_err **err);
/* Adds output of a stream; whole lines are written at once, a line's tail
 * waits for its end (a tail over 16 KiB goes out as a "P" record). Write
 * errors are counted, not fatal: a full disk must not stop the box. */
void lbx_logw_write(lbx_logw *w, enum lbx_log_stream stream, const void *buf, size_t n);
/* Writes what waits (as "P" records), releases the lock, frees. NULL-safe. */
void lbx_logw_close(lbx_logw *w);

typedef struct lbx_logs_opts {
  int64_t since_ns; /* records before this time are skipped; 0: all */
  int64_t until_ns; /* records after it are skipped; 0: none */
  long tail;        /* only the last N lines; -1: all */
  bool follow;      /* wait for more until the writer's lock is free */
  bool timestamps;  /* prefix each line with its RFC 3339 time */
} lbx_logs_opts;
/* Prints the log's records to out (stdout records) and err (stderr
 * records), joining "P" pieces with their line. A missing log file prints
 * nothing. */
int lbx_logs_print(const char *path, const lbx_logs_opts *o, FILE *out, FILE *err_out,
                   lbx_err **err);

/* Parses a --since/--until value: RFC 3339 time ("2026-11-23T17:07:26Z",
 * fractions and offsets allowed), a Unix time ("1700000000[.5]"), or a
 * duration before now ("10m", "1h30m", "45s"). -EINVAL if it is none. */
int lbx_parse_time(const char *s, int64_t now_ns, int64_t *out_ns);

/* The caller's terminal in raw mode for a box's pty, and back. */
int lbx_term_raw(int fd, struct termios *saved);
void lbx_term_restore(int fd, const struct termios *saved);

#endif
