#include "cli.h"
#include "template.h"

#include <string.h>
#include <time.h>

char *
lbx_human_size(uint64_t bytes)
{
  /* Decimal units with three significant digits, as Podman prints them
   * (go-units' HumanSizeWithPrecision(size, 3): "1.99 MB", "211 MB"). */
  static const char *const units[] = {"B", "kB", "MB", "GB", "TB", "PB", "EB"};
  double v = (double)bytes;
  size_t u = 0;
  /* 999.5 and up would print as "1e+03" (as go-units does): the next unit */
  while (v >= 999.5 && u + 1 < LBX_ARRAY_SIZE(units)) {
    v /= 1000.0;
    u++;
  }
  return lbx_xasprintf("%.3g %s", v, units[u]);
}

char *
lbx_human_ago(int64_t ns)
{
  if (ns <= 0)
    return lbx_xstrdup("N/A");
  int64_t secs = (lbx_now_ns() - ns) / 1000000000;
  if (secs < 1)
    return lbx_xstrdup("Less than a second ago");
  if (secs == 1)
    return lbx_xstrdup("1 second ago"); /* as go-units says it */
  if (secs < 60)
    return lbx_xasprintf("%lld seconds ago", (long long)secs);
  int64_t mins = secs / 60;
  if (mins == 1)
    return lbx_xstrdup("About a minute ago");
  if (mins < 60)
    return lbx_xasprintf("%lld minutes ago", (long long)mins);
  int64_t hours = mins / 60;
  if (hours == 1)
    return lbx_xstrdup("About an hour ago");
  if (hours < 48)
    return lbx_xasprintf("%lld hours ago", (long long)hours);
  int64_t days = hours / 24;
  if (days < 14)
    return lbx_xasprintf("%lld days ago", (long long)days);
  if (days < 60)
    return lbx_xasprintf("%lld weeks ago", (long long)(days / 7));
  if (days < 730)
    return lbx_xasprintf("%lld months ago", (long long)(days / 30));
  return lbx_xasprintf("%lld years ago", (long long)(days / 365));
}

char *
lbx_rfc3339(int64_t ns)
{
  time_t t = (time_t)(ns / 1000000000);
  long frac = (long)(ns % 1000000000);
  if (frac < 0) {
    frac += 1000000000;
    t--;
  }
  struct tm tm;
  gmtime_r(&t, &tm);
  char buf[64];
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  if (frac)
    return lbx_xasprintf("%s.%09ldZ", buf, frac);
  return lbx_xasprintf("%sZ", buf);
}

bool
lbx_format_is_json(const char *format, lbx_err **err)
{
  if (!format || strcmp(format, "table") == 0)
    return false;
  if (strcmp(format, "json") == 0)
    return true;
  lbx_error(err, EINVAL, "--format \"%s\": supported formats are json and table", format);
  return false;
}

bool
lbx_format_is_template(const char *format)
{
  return format && strcmp(format, "json") != 0 && strcmp(format, "table") != 0;
}

int
lbx_format_print(const char *format, json_t *values, const char *const *renames, lbx_err **err)
{
  _cleanup_(lbx_template_freep) lbx_template *t = NULL;
  if (lbx_template_parse(format, &t, err) < 0)
    return -1;
  /* every value rendered before anything is printed: an error leaves no
   * half output */
  size_t n = json_array_size(values), k = 0, cap = n + 2;
  char **lines = lbx_xcalloc(cap, sizeof *lines);
  bool table = lbx_template_is_table(t);
  char *header = table ? lbx_template_header(t, renames) : NULL;
  int rc = 0;
  for (size_t i = 0; i <= n && rc == 0; i++) {
    char *text = i == 0 ? header : lbx_template_render(t, json_array_get(values, i - 1), err);
    if (i == 0 && !text)
      continue; /* no table */
    if (!text) {
      rc = -1;
      break;
    }
    /* one line per value, as Podman ends each with a newline; a table
     * aligns lines, so a value's own newlines start lines of it */
    size_t len = strlen(text);
    if (len && text[len - 1] == '\n')
      text[len - 1] = '\0';
    char *line = text;
    for (char *nl; table && (nl = strchr(line, '\n')); line = nl + 1) {
      if (k + 2 > cap)
        lines = lbx_xrealloc(lines, (cap *= 2) * sizeof *lines);
      lines[k++] = lbx_xstrndup(line, (size_t)(nl - line));
      lines[k] = NULL;
    }
    if (k + 2 > cap)
      lines = lbx_xrealloc(lines, (cap *= 2) * sizeof *lines);
    lines[k++] = line == text ? text : lbx_xstrdup(line);
    lines[k] = NULL;
    if (line != text)
      free(text);
  }
  if (rc == 0 && table) {
    lbx_table_print(lines);
  } else if (rc == 0) {
    for (size_t i = 0; i < k; i++)
      printf("%s\n", lines[i]);
  }
  lbx_strv_free(lines);
  return rc;
}
