#include "mounts.h"
#include "../store/util.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* mountinfo escapes space, tab, newline and backslash as \ooo */
static char *
unescape(const char *s)
{
  char *out = lbx_xmalloc(strlen(s) + 1), *o = out;
  while (*s) {
    if (s[0] == '\\' && s[1] >= '0' && s[1] <= '7' && s[2] >= '0' && s[2] <= '7' && s[3] >= '0' &&
        s[3] <= '7') {
      *o++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
      s += 4;
    } else {
      *o++ = *s++;
    }
  }
  *o = '\0';
  return out;
}

/* 64-bit FNV-1a of the store's real path, as 12 hex digits: not a secret,
 * a name for the store in mount sources. */
static void
store_tag(const char *root, char tag[13])
{
  _cleanup_free_ char *real = realpath(root, NULL);
  const char *p = real ? real : root;
  uint64_t h = 0xcbf29ce484222325ull;
  for (; *p; p++)
    h = (h ^ (unsigned char)*p) * 0x100000001b3ull;
  snprintf(tag, 13, "%012llx", (unsigned long long)(h & 0xffffffffffffull));
}

char *
lbx_mount_source(const char *root, const char *id)
{
  char tag[13];
  store_tag(root, tag);
  return lbx_xasprintf("%s@%s", id, tag);
}

int
lbx_mounts_list(const char *root, lbx_mount_ent **out, size_t *n)
{
  char tag[13];
  store_tag(root, tag);
  *out = NULL;
  *n = 0;
  _cleanup_fclose_ FILE *f = fopen("/proc/self/mountinfo", "re");
  if (!f)
    return -errno;
  _cleanup_free_ char *line = NULL;
  size_t cap = 0;
  while (getline(&line, &cap, f) > 0) {
    /* ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS */
    char *save = NULL, *fields[5] = {0};
    char *tok = strtok_r(line, " \n", &save);
    for (int i = 0; tok && i < 5; i++, tok = strtok_r(NULL, " \n", &save))
      fields[i] = tok;
    while (tok && strcmp(tok, "-") != 0)
      tok = strtok_r(NULL, " \n", &save);
    char *fstype = tok ? strtok_r(NULL, " \n", &save) : NULL;
    char *source = fstype ? strtok_r(NULL, " \n", &save) : NULL;
    if (!fields[4] || !source || strcmp(fstype, "fuse.lazybox") != 0)
      continue;
    char *src = unescape(source);
    char *at = strncmp(src, "box:", 4) != 0 ? strchr(src, '@') : NULL;
    if (at && strcmp(at + 1, tag) != 0) {
      free(src); /* another store's */
      continue;
    }
    if (at)
      *at = '\0';
    *out = lbx_xrealloc(*out, (*n + 1) * sizeof **out);
    (*out)[(*n)++] = (lbx_mount_ent){unescape(fields[4]), src};
  }
  return 0;
}

void
lbx_mounts_free(lbx_mount_ent *v, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    free(v[i].dir);
    free(v[i].image);
  }
  free(v);
}

char *
lbx_mounts_base(void)
{
  if (geteuid() == 0)
    return lbx_xstrdup("/run/lazybox/mounts");
  const char *rt = getenv("XDG_RUNTIME_DIR");
  if (rt && rt[0] == '/')
    return lbx_xasprintf("%s/lazybox/mounts", rt);
  /* as Podman does without a runtime dir */
  return lbx_xasprintf("/tmp/lazybox-run-%u/mounts", (unsigned)geteuid());
}
