#include "entry.h"
#include "util.h"

#include <string.h>

void
lbx_xattrs_append(uint8_t **buf, size_t *len, const char *name, const void *value, size_t vlen)
{
  size_t nlen = strlen(name) + 1;
  *buf = lbx_xrealloc(*buf, *len + nlen + 4 + vlen);
  uint8_t *p = *buf + *len;
  memcpy(p, name, nlen);
  p += nlen;
  p[0] = (uint8_t)vlen;
  p[1] = (uint8_t)(vlen >> 8);
  p[2] = (uint8_t)(vlen >> 16);
  p[3] = (uint8_t)(vlen >> 24);
  memcpy(p + 4, value, vlen);
  *len += nlen + 4 + vlen;
}

int
lbx_xattrs_next(const void *buf, size_t len, size_t *pos, const char **name, const void **value,
                size_t *vlen)
{
  const uint8_t *b = buf;
  if (*pos >= len)
    return 0;
  const uint8_t *nul = memchr(b + *pos, '\0', len - *pos);
  if (!nul)
    return -EINVAL;
  size_t at = (size_t)(nul - b) + 1;
  if (len - at < 4)
    return -EINVAL;
  size_t v =
      (size_t)b[at] | (size_t)b[at + 1] << 8 | (size_t)b[at + 2] << 16 | (size_t)b[at + 3] << 24;
  if (len - at - 4 < v)
    return -EINVAL;
  *name = (const char *)b + *pos;
  *value = b + at + 4;
  *vlen = v;
  *pos = at + 4 + v;
  return 1;
}
