/* The box log: what the writer puts in the file (record by record), what
 * the reader makes of it (joined lines, filters, --tail, timestamps, hostile
 * lines), following a log another process writes until it closes, the time
 * values --since/--until take, and the terminal's raw mode. */
#include "launcher/io.h"
#include "store/util.h"
#include "tap.h"

#include <fcntl.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#define S INT64_C(1000000000)
/* 2026-11-23T17:07:26Z */
#define T0 INT64_C(1795453646)

typedef struct text {
  char *d;
  size_t n;
} text;

static text
file_text(FILE *f)
{
  text t = {0};
  fflush(f);
  long n = ftell(f);
  t.d = lbx_xmalloc((size_t)n + 1);
  rewind(f);
  t.n = fread(t.d, 1, (size_t)n, f);
  t.d[t.n] = '\0';
  return t;
}

static text
read_path(const char *path)
{
  text t = {0};
  if (lbx_read_file(path, 1 << 24, &t.d, &t.n) < 0)
    t.d = lbx_xstrdup("(unreadable)");
  return t;
}

static void
is_text(text got, const char *want, size_t wlen, const char *what)
{
  bool eq = got.n == wlen && memcmp(got.d, want, wlen) == 0;
  tap_ok(eq, "%s", what);
  if (!eq)
    printf("#   got %zu bytes \"%.200s\", want %zu bytes \"%.200s\"\n", got.n, got.d, wlen, want);
}

/* Prints path's log with o; *out and *err get what went to each stream. */
static int
print_log(const char *path, lbx_logs_opts o, text *out, text *err_text)
{
  FILE *fo = tmpfile(), *fe = tmpfile();
  lbx_err *err = NULL;
  int rc = lbx_logs_print(path, &o, fo, fe, &err);
  if (rc < 0)
    printf("# lbx_logs_print: %s\n", err ? err->msg : "(no error)");
  lbx_error_free(err);
  *out = file_text(fo);
  *err_text = file_text(fe);
  fclose(fo);
  fclose(fe);
  return rc;
}

static const lbx_logs_opts ALL = {.tail = -1};

/* Checks one printout against what each stream should show. */
static void
check_print(const char *path, lbx_logs_opts o, const char *want_out, size_t out_len,
            const char *want_err, const char *what)
{
  text out, err;
  int rc = print_log(path, o, &out, &err);
  tap_is_int(rc, 0, "%s: prints", what);
  char desc[256];
  snprintf(desc, sizeof desc, "%s: stdout", what);
  is_text(out, want_out, out_len, desc);
  snprintf(desc, sizeof desc, "%s: stderr", what);
  is_text(err, want_err, strlen(want_err), desc);
  free(out.d);
  free(err.d);
}

static void
W(lbx_logw *w, enum lbx_log_stream s, const char *str)
{
  lbx_logw_write(w, s, str, strlen(str));
}

/* ---- the writer's records ---- */

struct rec {
  char when[64], stream[8], tag;
  const char *text;
  size_t len;
};

/* Splits a log into records; returns how many (at most max). */
static size_t
split_records(text t, struct rec *r, size_t max)
{
  size_t n = 0;
  const char *p = t.d, *end = t.d + t.n;
  while (p < end && n < max) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    if (!nl)
      nl = end;
    const char *s1 = memchr(p, ' ', (size_t)(nl - p));
    struct rec *x = &r[n++];
    memset(x, 0, sizeof *x);
    if (s1 && nl - s1 > 10 && s1 - p < 64) {
      memcpy(x->when, p, (size_t)(s1 - p));
      memcpy(x->stream, s1 + 1, 6);
      x->tag = s1[8];
      x->text = s1 + 10;
      x->len = (size_t)(nl - x->text);
    }
    p = nl + 1;
  }
  return n;
}

static void
test_writer(const char *dir, char *big, size_t bign)
{
  _cleanup_free_ char *path = lbx_xasprintf("%s/ctr.log", dir);
  lbx_err *err = NULL;
  lbx_logw *w = NULL, *w2 = NULL;
  tap_is_int(lbx_logw_open(path, &w, &err), 0, "writer opens a new log");
  struct stat st;
  tap_ok(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600, "log is created 0600");
  tap_ok(lbx_logw_open(path, &w2, &err) < 0 && w2 == NULL, "a second writer is refused");
  tap_ok(err && err->code == EBUSY, "... with EBUSY");
  tap_ok(err && strstr(err->msg, path), "... naming the log (%s)", err ? err->msg : "");
  lbx_error_free(err);
  err = NULL;

  int64_t before = lbx_now_ns();
  W(w, LBX_STDOUT, "one\ntwo\npar");
  W(w, LBX_STDERR, "e1\n");
  W(w, LBX_STDOUT, "tial\n");
  lbx_logw_write(w, LBX_STDOUT, "nul\0byte\n", 9);
  for (size_t i = 0; i < bign; i += 1000)
    lbx_logw_write(w, LBX_STDOUT, big + i, bign - i < 1000 ? bign - i : 1000);
  W(w, LBX_STDOUT, "\n");
  W(w, LBX_STDOUT, "tail");
  W(w, LBX_STDERR, "etail");
  text t = read_path(path);
  struct rec r[16];
  size_t n = split_records(t, r, 16);
  tap_ok(n == 8 && r[7].tag == 'F', "unfinished lines wait for their end (%zu records)", n);
  free(t.d);
  lbx_logw_close(w);
  int64_t after = lbx_now_ns();

  tap_is_int(lbx_logw_open(path, &w2, &err), 0, "the lock goes with the writer");
  lbx_logw_close(w2);
  lbx_logw_close(NULL);

  /* record by record */
  static const struct {
    const char *stream;
    char tag;
    const char *text; /* NULL: check the length only */
    size_t len;
  } want[] = {
      {"stdout", 'F', "one", 3},     {"stdout", 'F', "two", 3},       {"stderr", 'F', "e1", 2},
      {"stdout", 'F', "partial", 7}, {"stdout", 'F', "nul\0byte", 8}, {"stdout", 'P', NULL, 16384},
      {"stdout", 'P', NULL, 16384},  {"stdout", 'F', NULL, 7232},     {"stdout", 'P', "tail", 4},
      {"stderr", 'P', "etail", 5},
  };
  t = read_path(path);
  n = split_records(t, r, 16);
  tap_is_int(n, LBX_ARRAY_SIZE(want), "log has one record per line and piece");
  tap_ok(t.n && t.d[t.n - 1] == '\n', "the last record is complete");
  bool times_ok = true;
  for (size_t i = 0; i < n && i < LBX_ARRAY_SIZE(want); i++) {
    tap_ok(strcmp(r[i].stream, want[i].stream) == 0 && r[i].tag == want[i].tag &&
               r[i].len == want[i].len &&
               (!want[i].text || memcmp(r[i].text, want[i].text, want[i].len) == 0),
           "record %zu is \"%s %c\" with %zu bytes of text", i + 1, want[i].stream, want[i].tag,
           want[i].len);
    int64_t ns;
    size_t wl = strlen(r[i].when);
    /* the fixed-width form: 2026-11-23T17:07:26.123456789Z */
    if (wl != 30 || r[i].when[19] != '.' || r[i].when[29] != 'Z' ||
        lbx_parse_time(r[i].when, 0, &ns) < 0 || ns < before - S || ns > after + S)
      times_ok = false;
  }
  tap_ok(times_ok, "every record has its UTC write time with nine fraction digits");
  tap_ok(n >= 8 && memcmp(r[5].text, big, 16384) == 0 &&
             memcmp(r[6].text, big + 16384, 16384) == 0 &&
             memcmp(r[7].text, big + 32768, 7232) == 0,
         "the long line's pieces are its bytes in order");
  free(t.d);

  /* the reader joins it back */
  size_t outn = 25 + bign + 5;
  char *want_out = lbx_xmalloc(outn);
  memcpy(want_out, "one\ntwo\npartial\nnul\0byte\n", 25);
  memcpy(want_out + 25, big, bign);
  memcpy(want_out + 25 + bign, "\ntail", 5);
  check_print(path, ALL, want_out, outn, "e1\netail", "round trip");
  lbx_logs_opts o = ALL;
  o.tail = 3;
  check_print(path, o, want_out + 25, bign + 5, "etail", "--tail 3 (the long line, two tails)");
  o.tail = 1;
  check_print(path, o, "", 0, "etail", "--tail 1");
  o.tail = 0;
  check_print(path, o, "", 0, "", "--tail 0");
  /* following a log nobody writes any more ends at its end */
  o.tail = 2;
  o.follow = true;
  check_print(path, o, "tail", 4, "etail", "--follow --tail 2 of a finished log");
  free(want_out);
}

/* ---- the reader on a log written by hand ---- */

static void
test_reader(const char *dir)
{
  _cleanup_free_ char *path = lbx_xasprintf("%s/hand.log", dir);
  FILE *f = fopen(path, "w");
  fputs("2026-11-23T17:00:00Z stdout F a\n"
        "garbage line\n"
        "\n"
        "2026-11-23T17:00:01.5Z stderr F b\n"
        "2026-11-23T17:00:02.000000001Z stdout P c1\n"
        "2026-11-23T17:00:02Z stdout X bad tag\n"
        "2026-11-23T17:00:02Z stdin F bad stream\n"
        "2026-11-23 stdout F no time of day\n"
        "2026-11-23T17:00:02 stdout F no zone\n"
        "not-a-time stdout F bad\n"
        "2026-11-23T17:00:02Z stdout\n"
        "2026-11-23T19:00:03+02:00 stdout F:x c2\n"
        "2026-11-23T17:00:04Z stdout F \n"
        "2026-11-23T17:00:06.000120000Z stdout F last\n"
        "2026-11-23T17:00:07Z stdout F cut short",
        f);
  fclose(f);
  check_print(path, ALL, "a\nc1c2\n\nlast\n", 13, "b\n", "hand-written log, bad lines skipped");
  lbx_logs_opts o = ALL;
  o.since_ns = (T0 - 446 + 1) * S + S / 2; /* 17:00:01.5 */
  check_print(path, o, "c1c2\n\nlast\n", 11, "b\n", "--since takes the line at that time");
  o = ALL;
  o.until_ns = (T0 - 446 + 3) * S; /* 17:00:03 */
  check_print(path, o, "a\nc1c2\n", 7, "b\n",
              "--until takes the line at that time (a joined line has its last piece's time)");
  o.since_ns = (T0 - 446 + 2) * S;
  o.until_ns = (T0 - 446 + 4) * S;
  check_print(path, o, "c1c2\n\n", 6, "", "--since with --until");
  o = ALL;
  o.since_ns = (T0 - 446 + 1) * S + S / 2;
  o.tail = 2;
  check_print(path, o, "\nlast\n", 6, "", "--tail counts the lines --since leaves");
  o = ALL;
  o.timestamps = true;
  const char *ts = "2026-11-23T17:00:00Z a\n"
                   "2026-11-23T17:00:03Z c1c2\n"
                   "2026-11-23T17:00:04Z \n"
                   "2026-11-23T17:00:06.00012Z last\n";
  check_print(path, o, ts, strlen(ts), "2026-11-23T17:00:01.5Z b\n",
              "--timestamps: RFC3339Nano in UTC before each line");

  _cleanup_free_ char *missing = lbx_xasprintf("%s/none.log", dir);
  check_print(missing, ALL, "", 0, "", "a missing log");
  text out, err;
  tap_ok(print_log(dir, ALL, &out, &err) < 0, "a log that cannot be read is an error");
  free(out.d);
  free(err.d);
}

/* ---- follow ---- */

static void
test_follow(const char *dir)
{
  _cleanup_free_ char *path = lbx_xasprintf("%s/follow.log", dir);
  int sync[2];
  if (pipe(sync) < 0)
    return;
  pid_t pid = fork();
  if (pid == 0) {
    close(sync[0]);
    lbx_logw *w;
    if (lbx_logw_open(path, &w, NULL) < 0)
      _exit(1);
    for (int i = 0; i < 5; i++) {
      char line[32];
      snprintf(line, sizeof line, "old %d\n", i);
      W(w, LBX_STDOUT, line);
    }
    /* the parent's first read of the log: from then on lines are new */
    int in = inotify_init1(IN_CLOEXEC);
    inotify_add_watch(in, path, IN_ACCESS);
    if (write(sync[1], "x", 1) != 1)
      _exit(1);
    char ev[4096];
    if (read(in, ev, sizeof ev) <= 0)
      _exit(1);
    usleep(100 * 1000);
    for (int i = 0; i < 5; i++) {
      char line[32];
      snprintf(line, sizeof line, "line %d\n", i);
      W(w, LBX_STDOUT, line);
      if (i == 2)
        W(w, LBX_STDERR, "warn\n");
      usleep(50 * 1000);
    }
    W(w, LBX_STDOUT, "end");
    usleep(300 * 1000);
    lbx_logw_close(w);
    _exit(0);
  }
  close(sync[1]);
  char c;
  tap_ok(pid > 0 && read(sync[0], &c, 1) == 1, "a child process writes a log");
  close(sync[0]);
  lbx_logs_opts o = ALL;
  o.follow = true;
  o.tail = 2;
  int64_t t0 = lbx_now_ns();
  const char *want = "old 3\nold 4\nline 0\nline 1\nline 2\nline 3\nline 4\nend";
  check_print(path, o, want, strlen(want), "warn\n", "--follow --tail 2 while it writes");
  int64_t ms = (lbx_now_ns() - t0) / 1000000;
  tap_ok(ms >= 600, "following ended only when the writer closed (%lld ms)", (long long)ms);
  int status = 0;
  tap_ok(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
         "the writing child exited cleanly");
}

/* ---- times ---- */

static void
test_times(void)
{
  static const struct {
    const char *s;
    int64_t ns; /* for durations: before now */
  } good[] = {
      {"2026-11-23T17:07:26Z", T0 * S},
      {"2026-11-23T17:07:26.123456789Z", T0 * S + 123456789},
      {"2026-11-23T17:07:26.1234567891Z", T0 * S + 123456789},
      {"2026-11-23t17:07:26.5z", T0 * S + S / 2},
      {"2026-11-23 17:07:26Z", T0 * S},
      {"2026-11-23T19:07:26+02:00", T0 * S},
      {"2026-11-23T11:37:26.25-05:30", T0 * S + S / 4},
      {"2028-02-29T00:00:00Z", INT64_C(1835395200) * S},
      {"1700000000", INT64_C(1700000000) * S},
      {"1700000000.5", INT64_C(1700000000) * S + S / 2},
      {"0", 0},
  };
  static const struct {
    const char *s;
    int64_t ago;
  } dur[] = {
      {"10m", 600 * S},  {"1h30m", 5400 * S}, {"45s", 45 * S},       {"500ms", S / 2},
      {"2h", 7200 * S},  {"1.5h", 5400 * S},  {"300us", 300 * 1000}, {"1m0.5s", 60 * S + S / 2},
      {"-10s", -10 * S}, {"7ns", 7},
  };
  static const char *bad[] = {
      "",
      "abc",
      "10x",
      "1h30",
      "2026-13-01",
      "2026-02-30",
      "2026-02-29",
      "2026-11-23T25:00:00Z",
      "2026-11-23T17:07:26+0200",
      "2026-11-23T17:07Z",
      "17:07:26",
      "1.2.3",
      "10m ",
      " 10m",
      "99999999999999999999",
      "1e9",
      "h",
      ".",
      "5.",
      "3000-01-01T00:00:00Z",
      "2026-11-23T17:07:26.Z",
      "2026-11-23X17:07:26Z",
      "2026-11-23T17:07:26Z+",
      "--10s",
  };
  int64_t now = T0 * S + 42;
  for (size_t i = 0; i < LBX_ARRAY_SIZE(good); i++) {
    int64_t v = -1;
    int rc = lbx_parse_time(good[i].s, now, &v);
    tap_ok(rc == 0 && v == good[i].ns, "time \"%s\"", good[i].s);
    if (rc != 0 || v != good[i].ns)
      printf("#   rc %d, got %lld, want %lld\n", rc, (long long)v, (long long)good[i].ns);
  }
  for (size_t i = 0; i < LBX_ARRAY_SIZE(dur); i++) {
    int64_t v = -1;
    int rc = lbx_parse_time(dur[i].s, now, &v);
    tap_ok(rc == 0 && v == now - dur[i].ago, "duration \"%s\" before now", dur[i].s);
    if (rc != 0 || v != now - dur[i].ago)
      printf("#   rc %d, got %lld, want %lld\n", rc, (long long)v, (long long)(now - dur[i].ago));
  }
  for (size_t i = 0; i < LBX_ARRAY_SIZE(bad); i++) {
    int64_t v = 7;
    tap_is_int(lbx_parse_time(bad[i], now, &v), -EINVAL, "\"%s\" is refused", bad[i]);
  }
  /* a date, or a time without zone, is local time (as in Podman) */
  setenv("TZ", "UTC0", 1);
  tzset();
  int64_t v = 0;
  tap_ok(lbx_parse_time("2026-11-23", now, &v) == 0 && v == INT64_C(1795392000) * S,
         "a date alone is midnight (TZ=UTC0)");
  setenv("TZ", "EST5", 1);
  tzset();
  tap_ok(lbx_parse_time("2026-11-23", now, &v) == 0 && v == (INT64_C(1795392000) + 5 * 3600) * S,
         "a date alone is local midnight (TZ=EST5)");
  tap_ok(lbx_parse_time("2026-11-23T17:07:26.5", now, &v) == 0 && v == (T0 + 5 * 3600) * S + S / 2,
         "a time without zone is local (TZ=EST5)");
  unsetenv("TZ");
  tzset();
}

/* ---- terminal ---- */

static void
test_term(void)
{
  int p[2];
  struct termios saved;
  if (pipe(p) == 0) {
    tap_is_int(lbx_term_raw(p[0], &saved), -ENOTTY, "raw mode on a pipe: ENOTTY");
    close(p[0]);
    close(p[1]);
  }
  int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  const char *name = m >= 0 && grantpt(m) == 0 && unlockpt(m) == 0 ? ptsname(m) : NULL;
  int t = name ? open(name, O_RDWR | O_NOCTTY | O_CLOEXEC) : -1;
  if (t < 0) {
    tap_ok(1, "# SKIP no pseudo-terminal here");
    if (m >= 0)
      close(m);
    return;
  }
  struct termios now;
  tap_is_int(lbx_term_raw(t, &saved), 0, "raw mode on a pty");
  tap_ok(saved.c_lflag & ICANON, "the saved mode is the cooked one");
  tap_ok(tcgetattr(t, &now) == 0 && !(now.c_lflag & (ICANON | ECHO | ISIG)) &&
             !(now.c_oflag & OPOST) && !(now.c_iflag & ICRNL) && now.c_cc[VMIN] == 1,
         "raw: no line editing, echo, signals or output processing");
  lbx_term_restore(t, &saved);
  tap_ok(tcgetattr(t, &now) == 0 && (now.c_lflag & (ICANON | ECHO)) == (ICANON | ECHO) &&
             now.c_oflag == saved.c_oflag && now.c_iflag == saved.c_iflag,
         "restored to the saved mode");
  close(t);
  close(m);
}

int
main(void)
{
  char dir[] = "/tmp/lbx-test-logs-XXXXXX";
  if (!mkdtemp(dir))
    return 1;
  size_t bign = 40000;
  char *big = lbx_xmalloc(bign);
  for (size_t i = 0; i < bign; i++)
    big[i] = (char)('a' + (i * 7 + i / 26) % 26);
  test_writer(dir, big, bign);
  test_reader(dir);
  test_follow(dir);
  test_times();
  test_term();
  free(big);
  _cleanup_free_ char *rm = lbx_xasprintf("rm -rf '%s'", dir);
  if (system(rm) != 0)
    printf("# could not remove %s\n", dir);
  return tap_done();
}
