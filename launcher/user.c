/* -u/--user: names resolved in the box's own /etc/passwd and /etc/group,
 * parsed here rather than through NSS, which would load the host's
 * modules into a process that already sees only the box. */
#include "launcher.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The box's file, opened so that the box cannot make it hang or flood
 * the reader: a regular file (not a fifo, not a device), at most 4 MiB,
 * read through a memory stream. */
static FILE *
open_box_file(const char *path)
{
  _cleanup_close_ int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > (4 << 20))
    return NULL;
  size_t n = (size_t)st.st_size;
  char *buf = lbx_xmalloc(n + 1);
  ssize_t got = lbx_read_all(fd, buf, n);
  if (got < 0) {
    free(buf);
    return NULL;
  }
  buf[got] = '\0';
  FILE *f = fmemopen(NULL, (size_t)got + 1, "w+");
  if (!f) {
    free(buf);
    return NULL;
  }
  fwrite(buf, 1, (size_t)got, f);
  free(buf);
  rewind(f);
  return f;
}

/* Splits a colon-separated line in place into at most max fields. */
static int
split(char *line, char **f, int max)
{
  line[strcspn(line, "\n")] = '\0';
  int n = 0;
  char *p = line;
  while (n < max && p)
    f[n++] = strsep(&p, ":");
  return n;
}

static bool
numeric(const char *s, unsigned long *out)
{
  if (!*s || strspn(s, "0123456789") != strlen(s) || strlen(s) > 10)
    return false;
  *out = strtoul(s, NULL, 10);
  return *out <= 0xfffffffeUL;
}

/* Finds a passwd line (name:pw:uid:gid:gecos:home:shell) by name, or by
 * uid when name is NULL. */
static bool
passwd_find(const char *name, unsigned long id, lbx_user *u)
{
  _cleanup_fclose_ FILE *f = open_box_file("/etc/passwd");
  char line[1024];
  while (f && fgets(line, sizeof line, f)) {
    char *v[7];
    unsigned long uid, gid;
    if (split(line, v, 7) < 6 || !numeric(v[2], &uid))
      continue;
    if (name ? strcmp(v[0], name) != 0 : uid != id)
      continue;
    u->uid = (uid_t)uid;
    u->gid = numeric(v[3], &gid) ? (gid_t)gid : 0;
    snprintf(u->home, sizeof u->home, "%s", *v[5] ? v[5] : "/");
    return true;
  }
  return false;
}

/* group lines: name:pw:gid:member,member */
static bool
group_find(const char *name, unsigned long *gid)
{
  _cleanup_fclose_ FILE *f = open_box_file("/etc/group");
  char line[4096];
  while (f && fgets(line, sizeof line, f)) {
    char *v[4];
    if (split(line, v, 4) >= 3 && strcmp(v[0], name) == 0)
      return numeric(v[2], gid);
  }
  return false;
}

/* Supplementary groups: every group that lists the user's name. */
static void
groups_of(const char *user, lbx_user *u)
{
  _cleanup_fclose_ FILE *f = open_box_file("/etc/group");
  char line[4096];
  while (f && fgets(line, sizeof line, f) && u->ngroups < LBX_ARRAY_SIZE(u->groups)) {
    char *v[4];
    unsigned long g;
    if (split(line, v, 4) < 4 || !numeric(v[2], &g) || (gid_t)g == u->gid)
      continue;
    for (char *save = NULL, *m = strtok_r(v[3], ",", &save); m; m = strtok_r(NULL, ",", &save))
      if (strcmp(m, user) == 0) {
        u->groups[u->ngroups++] = (gid_t)g;
        break;
      }
  }
}

int
lbx_user_resolve(const char *spec, lbx_user *u, char *msg, size_t msglen)
{
  memset(u, 0, sizeof *u);
  snprintf(u->home, sizeof u->home, "/");
  if (!spec || !*spec)
    spec = "0";
  char buf[256];
  snprintf(buf, sizeof buf, "%s", spec);
  char *group = strchr(buf, ':');
  if (group)
    *group++ = '\0';
  unsigned long id;
  if (numeric(buf, &id)) {
    /* a uid needs no passwd entry; one, when present, gives gid and home */
    if (!passwd_find(NULL, id, u)) {
      u->uid = (uid_t)id;
      u->gid = 0;
    }
  } else if (!passwd_find(buf, 0, u)) {
    snprintf(msg, msglen, "unable to find user %s: no matching entries in passwd file", buf);
    return -ENOENT;
  } else {
    groups_of(buf, u);
  }
  if (group) {
    unsigned long g;
    if (!numeric(group, &g) && !group_find(group, &g)) {
      snprintf(msg, msglen, "unable to find group %s: no matching entries in group file", group);
      return -ENOENT;
    }
    u->gid = (gid_t)g;
  }
  return 0;
}
