/* The box log in Podman's k8s-file format, times as users write them, and
 * the terminal's raw mode. */
#include "io.h"
#include "../store/util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>

/* The longest text of one record: a longer line goes out in pieces, so a
 * reader never needs more than this (plus the header) to hold a record. */
#define LOG_PIECE_MAX 16384
/* "2026-11-23T17:07:26.123456789Z stdout F " */
#define LOG_HEADER_MAX 64
/* A reader drops a "record" longer than this: not written by lbx_logw. */
#define LOG_LINE_MAX (1024 * 1024)
/* How often `logs -f` looks for more output. */
#define FOLLOW_POLL_MS 100

#define NS_PER_S INT64_C(1000000000)

/* ---- times ---- */

/* Formats ns as RFC 3339 in UTC: with all nine fraction digits (the log's
 * fixed-width form) or, trimmed, as Go's RFC3339Nano (what `podman logs -t`
 * prints). */
static void
format_time(int64_t ns, bool trim, char out[LOG_HEADER_MAX])
{
  time_t t = (time_t)(ns / NS_PER_S);
  long frac = (long)(ns % NS_PER_S);
  if (frac < 0) {
    frac += NS_PER_S;
    t--;
  }
  struct tm tm;
  gmtime_r(&t, &tm);
  int n = snprintf(out, LOG_HEADER_MAX, "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900,
                   tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  if (!trim || frac) {
    n += snprintf(out + n, LOG_HEADER_MAX - (size_t)n, ".%09ld", frac);
    while (trim && out[n - 1] == '0')
      n--;
  }
  snprintf(out + n, LOG_HEADER_MAX - (size_t)n, "Z");
}

static bool
is_digit(char c)
{
  return c >= '0' && c <= '9';
}

/* Exactly n digits at *p (before end). */
static bool
take_digits(const char **p, const char *end, int n, int *out)
{
  int v = 0;
  for (int i = 0; i < n; i++, (*p)++) {
    if (*p >= end || !is_digit(**p))
      return false;
    v = v * 10 + (**p - '0');
  }
  *out = v;
  return true;
}

static bool
take_char(const char **p, const char *end, char c)
{
  if (*p >= end || **p != c)
    return false;
  (*p)++;
  return true;
}

/* A fraction's digits as nanoseconds; digits past the ninth are dropped. */
static int64_t
take_fraction(const char **p, const char *end)
{
  int64_t v = 0;
  int n = 0;
  for (; *p < end && is_digit(**p); (*p)++)
    if (n < 9) {
      v = v * 10 + (**p - '0');
      n++;
    }
  for (; n < 9; n++)
    v *= 10;
  return v;
}

static int
days_in_month(int year, int month)
{
  static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  return month == 2 && leap ? 29 : days[month - 1];
}

static int
seconds_to_ns(int64_t sec, int64_t frac, int64_t *out)
{
  int64_t ns;
  if (__builtin_mul_overflow(sec, NS_PER_S, &ns) || __builtin_add_overflow(ns, frac, out))
    return -EINVAL;
  return 0;
}

/* RFC 3339 ("2026-11-23T17:07:26.5+02:00"). With local_ok, as Podman's
 * --since does, also a date alone or a time without zone, both meaning
 * local time; the log's own times must be complete. */
static int
parse_rfc3339(const char *s, size_t len, bool local_ok, int64_t *out)
{
  const char *p = s, *end = s + len;
  struct tm tm = {0};
  int year, mon, day, hour = 0, min = 0, sec = 0;
  int64_t frac = 0;
  if (!take_digits(&p, end, 4, &year) || !take_char(&p, end, '-') ||
      !take_digits(&p, end, 2, &mon) || !take_char(&p, end, '-') || !take_digits(&p, end, 2, &day))
    return -EINVAL;
  if (mon < 1 || mon > 12 || day < 1 || day > days_in_month(year, mon))
    return -EINVAL;
  bool has_time = p < end;
  if (has_time) {
    /* RFC 3339 allows 't' and, in its note, a space for the 'T' */
    if (*p != 'T' && *p != 't' && *p != ' ')
      return -EINVAL;
    p++;
    if (!take_digits(&p, end, 2, &hour) || !take_char(&p, end, ':') ||
        !take_digits(&p, end, 2, &min) || !take_char(&p, end, ':') ||
        !take_digits(&p, end, 2, &sec))
      return -EINVAL;
    if (hour > 23 || min > 59 || sec > 59)
      return -EINVAL;
    if (take_char(&p, end, '.')) {
      if (p >= end || !is_digit(*p))
        return -EINVAL;
      frac = take_fraction(&p, end);
    }
  }
  tm.tm_year = year - 1900;
  tm.tm_mon = mon - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = min;
  tm.tm_sec = sec;
  int64_t t;
  if (p == end) {
    if (!local_ok)
      return -EINVAL;
    tm.tm_isdst = -1;
    t = (int64_t)mktime(&tm);
  } else if (has_time && (*p == 'Z' || *p == 'z') && p + 1 == end) {
    t = (int64_t)timegm(&tm);
  } else if (has_time && (*p == '+' || *p == '-')) {
    int sign = *p++ == '-' ? -1 : 1, oh, om;
    if (!take_digits(&p, end, 2, &oh) || !take_char(&p, end, ':') ||
        !take_digits(&p, end, 2, &om) || p != end || oh > 23 || om > 59)
      return -EINVAL;
    t = (int64_t)timegm(&tm) - sign * (oh * 3600 + om * 60);
  } else {
    return -EINVAL;
  }
  return seconds_to_ns(t, frac, out);
}

/* Unix seconds with an optional fraction ("1700000000.5"). */
static int
parse_unix(const char *s, int64_t *out)
{
  const char *p = s, *end = s + strlen(s);
  int64_t sec = 0, frac = 0;
  if (!is_digit(*p))
    return -EINVAL;
  for (; is_digit(*p); p++)
    if (__builtin_mul_overflow(sec, 10, &sec) || __builtin_add_overflow(sec, *p - '0', &sec))
      return -EINVAL;
  if (*p == '.') {
    p++;
    if (!is_digit(*p))
      return -EINVAL;
    frac = take_fraction(&p, end);
  }
  if (p != end)
    return -EINVAL;
  return seconds_to_ns(sec, frac, out);
}

/* A Go duration ("1h30m", "1.5h", "500ms", "-10s"), as Podman accepts. */
static int
parse_duration(const char *s, int64_t *out)
{
  static const struct {
    const char *name;
    int64_t ns;
  } units[] = {
      {"ns", 1},           {"us", 1000},    {"\u00b5s", 1000},    {"\u03bcs", 1000},
      {"ms", 1000 * 1000}, {"s", NS_PER_S}, {"m", 60 * NS_PER_S}, {"h", 3600 * NS_PER_S},
  };
  const char *p = s;
  bool neg = *p == '-';
  if (*p == '-' || *p == '+')
    p++;
  if (strcmp(p, "0") == 0) {
    *out = 0;
    return 0;
  }
  if (!*p)
    return -EINVAL;
  int64_t total = 0;
  while (*p) {
    int64_t whole = 0, frac = 0;
    const char *start = p;
    for (; is_digit(*p); p++)
      if (__builtin_mul_overflow(whole, 10, &whole) ||
          __builtin_add_overflow(whole, *p - '0', &whole))
        return -EINVAL;
    if (*p == '.') {
      p++;
      frac = take_fraction(&p, p + strlen(p));
    }
    if (p == start || (p == start + 1 && *start == '.'))
      return -EINVAL; /* no number */
    size_t ulen = strcspn(p, "0123456789.");
    int64_t unit = 0;
    for (size_t i = 0; i < LBX_ARRAY_SIZE(units); i++)
      if (strlen(units[i].name) == ulen && strncmp(p, units[i].name, ulen) == 0)
        unit = units[i].ns;
    if (!unit)
      return -EINVAL; /* Go requires a unit after every number but "0" */
    p += ulen;
    int64_t v;
    /* the fraction (in ns of the unit) scaled in floating point: the
     * product overflows 64 bits, and a duration needs no more precision */
    int64_t fv = (int64_t)((double)frac / (double)NS_PER_S * (double)unit);
    if (__builtin_mul_overflow(whole, unit, &v) || __builtin_add_overflow(v, fv, &v) ||
        __builtin_add_overflow(total, v, &total))
      return -EINVAL;
  }
  *out = neg ? -total : total;
  return 0;
}

int
lbx_parse_time(const char *s, int64_t now_ns, int64_t *out_ns)
{
  if (!s || !*s)
    return -EINVAL;
  if (parse_rfc3339(s, strlen(s), true, out_ns) == 0 || parse_unix(s, out_ns) == 0)
    return 0;
  int64_t d;
  if (parse_duration(s, &d) < 0 || __builtin_sub_overflow(now_ns, d, out_ns))
    return -EINVAL;
  return 0;
}

/* ---- writer ---- */

struct tail {
  size_t len;
  char buf[LOG_PIECE_MAX];
};

struct lbx_logw {
  int fd;
  unsigned long write_errors; /* records lost or cut short; the box runs on */
  struct tail tail[2];        /* an unfinished line per stream */
  char rec[LOG_HEADER_MAX + LOG_PIECE_MAX + 1];
};

int
lbx_logw_open(const char *path, lbx_logw **out, lbx_err **err)
{
  /* CLOEXEC: a box's process that inherited the fd would hold the lock
   * (it belongs to the open file) and `logs -f` would never end */
  _cleanup_close_ int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
  if (fd < 0)
    return lbx_error_errno(err, errno, "log %s", path);
  if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
    if (errno == EWOULDBLOCK)
      return lbx_error(err, EBUSY, "log %s is in use: another process writes it", path);
    return lbx_error_errno(err, errno, "log %s: lock", path);
  }
  lbx_logw *w = lbx_xcalloc(1, sizeof *w);
  w->fd = steal_fd(&fd);
  *out = w;
  return 0;
}

/* One record, a then b as its text (at most LOG_PIECE_MAX together), in
 * one write(): with O_APPEND it lands whole even beside another writer. */
static void
put_record(lbx_logw *w, enum lbx_log_stream stream, char tag, const char *a, size_t alen,
           const char *b, size_t blen)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  char when[LOG_HEADER_MAX];
  format_time((int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec, false, when);
  int h = snprintf(w->rec, LOG_HEADER_MAX, "%s %s %c ", when,
                   stream == LBX_STDERR ? "stderr" : "stdout", tag);
  size_t n = (size_t)h;
  if (alen)
    memcpy(w->rec + n, a, alen);
  n += alen;
  if (blen)
    memcpy(w->rec + n, b, blen);
  n += blen;
  w->rec[n++] = '\n';
  ssize_t r;
  do
    r = write(w->fd, w->rec, n);
  while (r < 0 && errno == EINTR);
  if (r != (ssize_t)n)
    w->write_errors++;
  /* a short write (a full disk) leaves a record without its newline; the
   * next record would be glued to it, so end it (the reader skips it) */
  if (r > 0 && (size_t)r < n && write(w->fd, "\n", 1) != 1)
    w->write_errors++;
}

void
lbx_logw_write(lbx_logw *w, enum lbx_log_stream stream, const void *buf, size_t n)
{
  if (!w || (stream != LBX_STDOUT && stream != LBX_STDERR))
    return;
  struct tail *t = &w->tail[stream - 1];
  const char *p = buf;
  while (n > 0) {
    const char *nl = memchr(p, '\n', n);
    size_t seg = nl ? (size_t)(nl - p) : n;
    /* more than a piece's worth: a "P" record of exactly LOG_PIECE_MAX */
    while (t->len + seg > LOG_PIECE_MAX) {
      size_t take = LOG_PIECE_MAX - t->len;
      put_record(w, stream, 'P', t->buf, t->len, p, take);
      t->len = 0;
      p += take;
      seg -= take;
      n -= take;
    }
    if (nl) {
      put_record(w, stream, 'F', t->buf, t->len, p, seg);
      t->len = 0;
      p += seg + 1;
      n -= seg + 1;
    } else {
      memcpy(t->buf + t->len, p, seg);
      t->len += seg;
      n = 0;
    }
  }
}

void
lbx_logw_close(lbx_logw *w)
{
  if (!w)
    return;
  /* what the box printed last without a newline: a "P" without its "F",
   * so the reader prints it without a newline too */
  for (int s = LBX_STDOUT; s <= LBX_STDERR; s++)
    if (w->tail[s - 1].len)
      put_record(w, (enum lbx_log_stream)s, 'P', w->tail[s - 1].buf, w->tail[s - 1].len, NULL, 0);
  close(w->fd); /* releases the lock: followers stop */
  free(w);
}

/* ---- reader ---- */

struct line {
  int stream;
  bool open_end; /* the box's last output had no newline */
  int64_t ns;
  size_t len;
  char *text;
};

struct piece {
  char *buf;
  size_t len, cap;
  int64_t ns;
};

struct reader {
  const lbx_logs_opts *o;
  FILE *out, *err_out, *last;
  struct piece pending[2]; /* "P" texts waiting for their line's end */
  bool collecting;         /* keeping lines for --tail, up to the first end of file */
  struct line *kept;
  size_t nkept, kept_cap;
};

static void
piece_add(struct piece *p, const char *s, size_t n)
{
  if (p->len + n > p->cap) {
    p->cap = (p->len + n) * 2;
    p->buf = lbx_xrealloc(p->buf, p->cap);
  }
  if (n)
    memcpy(p->buf + p->len, s, n);
  p->len += n;
}

static void
print_line(struct reader *r, int stream, int64_t ns, const char *text, size_t len, bool open_end)
{
  FILE *f = stream == LBX_STDERR ? r->err_out : r->out;
  /* both may be one terminal: keep the log's order across them */
  if (r->last && r->last != f)
    fflush(r->last);
  r->last = f;
  if (r->o->timestamps) {
    char when[LOG_HEADER_MAX];
    format_time(ns, true, when);
    fprintf(f, "%s ", when);
  }
  fwrite(text, 1, len, f);
  if (!open_end)
    fputc('\n', f);
  if (r->o->follow)
    fflush(f);
}

static void
print_kept(struct reader *r)
{
  size_t first =
      r->o->tail >= 0 && r->nkept > (size_t)r->o->tail ? r->nkept - (size_t)r->o->tail : 0;
  for (size_t i = 0; i < r->nkept; i++) {
    struct line *l = &r->kept[i];
    if (i >= first)
      print_line(r, l->stream, l->ns, l->text, l->len, l->open_end);
    free(l->text);
  }
  free(r->kept);
  r->kept = NULL;
  r->nkept = r->kept_cap = 0;
  r->collecting = false;
}

static void
emit_line(struct reader *r, int stream, int64_t ns, const char *text, size_t len, bool open_end)
{
  const lbx_logs_opts *o = r->o;
  if ((o->since_ns && ns < o->since_ns) || (o->until_ns && ns > o->until_ns))
    return;
  if (!r->collecting) {
    print_line(r, stream, ns, text, len, open_end);
    return;
  }
  if (o->tail == 0)
    return;
  size_t tail = (size_t)o->tail;
  /* drop what --tail will not print now and then, not at every line */
  if (r->nkept >= 2 * tail + 64) {
    size_t drop = r->nkept - tail;
    for (size_t i = 0; i < drop; i++)
      free(r->kept[i].text);
    memmove(r->kept, r->kept + drop, tail * sizeof *r->kept);
    r->nkept = tail;
  }
  if (r->nkept == r->kept_cap) {
    r->kept_cap = r->kept_cap ? r->kept_cap * 2 : 16;
    r->kept = lbx_xrealloc(r->kept, r->kept_cap * sizeof *r->kept);
  }
  char *copy = lbx_xmalloc(len + 1); /* not strndup: output may hold NULs */
  memcpy(copy, text, len);
  r->kept[r->nkept++] = (struct line){stream, open_end, ns, len, copy};
}

/* "<time> <stdout|stderr> <F|P>[:more tags] <text>"; anything else is
 * skipped. */
static void
on_record(struct reader *r, const char *s, size_t n)
{
  const char *end = s + n, *sp = memchr(s, ' ', n);
  int64_t ns;
  if (!sp || parse_rfc3339(s, (size_t)(sp - s), false, &ns) < 0)
    return;
  const char *p = sp + 1;
  int stream;
  if (end - p >= 7 && memcmp(p, "stdout ", 7) == 0)
    stream = LBX_STDOUT;
  else if (end - p >= 7 && memcmp(p, "stderr ", 7) == 0)
    stream = LBX_STDERR;
  else
    return;
  p += 7;
  const char *tag_end = memchr(p, ' ', (size_t)(end - p));
  if (!tag_end)
    tag_end = end;
  if (p == tag_end || (*p != 'F' && *p != 'P') || (tag_end - p > 1 && p[1] != ':'))
    return;
  bool partial = *p == 'P';
  const char *text = tag_end < end ? tag_end + 1 : end;
  size_t len = (size_t)(end - text);
  struct piece *pc = &r->pending[stream - 1];
  if (partial) {
    piece_add(pc, text, len);
    pc->ns = ns;
  } else if (pc->len) {
    /* the line's time is its last record's, as in Podman */
    piece_add(pc, text, len);
    emit_line(r, stream, ns, pc->buf, pc->len, false);
    pc->len = 0;
  } else {
    emit_line(r, stream, ns, text, len, false);
  }
}

/* Lines whose end never came (the box ended, or this is all there is). */
static void
flush_pending(struct reader *r)
{
  for (int s = LBX_STDOUT; s <= LBX_STDERR; s++) {
    struct piece *pc = &r->pending[s - 1];
    if (pc->len)
      emit_line(r, s, pc->ns, pc->buf, pc->len, true);
    pc->len = 0;
  }
}

static void
reader_free(struct reader *r)
{
  for (size_t i = 0; i < r->nkept; i++)
    free(r->kept[i].text);
  free(r->kept);
  free(r->pending[0].buf);
  free(r->pending[1].buf);
}

int
lbx_logs_print(const char *path, const lbx_logs_opts *o, FILE *out, FILE *err_out, lbx_err **err)
{
  _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0)
    return errno == ENOENT ? 0 : lbx_error_errno(err, errno, "log %s", path);
  struct reader r = {.o = o, .out = out, .err_out = err_out, .collecting = o->tail >= 0};
  /* final: this end of file is the last (not following, or the writer is gone) */
  bool final = !o->follow, skipping = false;
  size_t cap = 65536, len = 0;
  _cleanup_free_ char *buf = lbx_xmalloc(cap);
  int rc = 0;
  for (;;) {
    if (cap - len < 4096) {
      cap *= 2;
      buf = lbx_xrealloc(buf, cap);
    }
    ssize_t k = read(fd, buf + len, cap - len);
    if (k < 0 && errno == EINTR)
      continue;
    if (k < 0) {
      rc = lbx_error_errno(err, errno, "log %s", path);
      break;
    }
    if (k > 0) {
      len += (size_t)k;
      size_t start = 0;
      const char *nl;
      while ((nl = memchr(buf + start, '\n', len - start))) {
        size_t end = (size_t)(nl - buf);
        if (!skipping)
          on_record(&r, buf + start, end - start);
        skipping = false;
        start = end + 1;
      }
      len -= start;
      memmove(buf, buf + start, len);
      if (len > LOG_LINE_MAX) {
        skipping = true; /* not a record of ours: drop it up to its newline */
        len = 0;
      }
      continue;
    }
    /* end of file; bytes left in buf are a record still being written or
     * cut short: left out */
    if (final) {
      flush_pending(&r);
      if (r.collecting)
        print_kept(&r);
      break;
    }
    if (o->until_ns && lbx_now_ns() > o->until_ns) {
      final = true; /* nothing written from now on can be shown */
      continue;
    }
    /* the writer holds LOCK_EX for its whole life: a shared lock means it
     * is gone; read once more to the end for what it wrote last */
    if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
      flock(fd, LOCK_UN);
      final = true;
      continue;
    }
    if (errno != EWOULDBLOCK && errno != EINTR) {
      rc = lbx_error_errno(err, errno, "log %s: lock", path);
      break;
    }
    /* the writer lives: --tail of what is there (a line it is still
     * writing is not there yet), then the rest as it comes */
    if (r.collecting)
      print_kept(&r);
    if (ferror(out) || ferror(err_out))
      break;
    poll(NULL, 0, FOLLOW_POLL_MS);
  }
  reader_free(&r);
  bool flush_failed = fflush(out) != 0 || fflush(err_out) != 0;
  int flush_errno = flush_failed ? errno : EIO;
  if (rc == 0 && (flush_failed || ferror(out) || ferror(err_out)))
    rc = lbx_error_errno(err, flush_errno, "log %s: writing the output", path);
  return rc;
}

/* ---- terminal ---- */

int
lbx_term_raw(int fd, struct termios *saved)
{
  if (tcgetattr(fd, saved) < 0)
    return -errno; /* ENOTTY: not a terminal, nothing to do */
  /* cfmakeraw, as crun and Podman (x/term MakeRaw) do: no echo, no line
   * editing, no signals from keys, no output processing; the box's own
   * terminal does all that */
  struct termios raw = *saved;
  cfmakeraw(&raw);
  int r;
  do
    r = tcsetattr(fd, TCSADRAIN, &raw);
  while (r < 0 && errno == EINTR);
  return r < 0 ? -errno : 0;
}

void
lbx_term_restore(int fd, const struct termios *saved)
{
  if (!saved)
    return;
  int saved_errno = errno, r; /* ENOTTY and the like are no news to a caller restoring */
  do
    r = tcsetattr(fd, TCSADRAIN, saved);
  while (r < 0 && errno == EINTR);
  errno = saved_errno;
}
