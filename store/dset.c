#include "dset.h"
#include "util.h"

#include <string.h>

static size_t
slot(const lbx_dset *s, const uint8_t d[32])
{
  uint64_t h;
  memcpy(&h, d, sizeof h);
  size_t i = (size_t)h & (s->cap - 1);
  while (s->used[i] && memcmp(s->slots[i], d, 32) != 0)
    i = (i + 1) & (s->cap - 1);
  return i;
}

bool
lbx_dset_has(const lbx_dset *s, const uint8_t d[32])
{
  return s->n && s->used[slot(s, d)];
}

bool
lbx_dset_add(lbx_dset *s, const uint8_t d[32])
{
  if ((s->n + 1) * 2 > s->cap) {
    lbx_dset old = *s;
    s->cap = old.cap ? old.cap * 2 : 256;
    s->slots = lbx_xcalloc(s->cap, 32);
    s->used = lbx_xcalloc(s->cap, sizeof(bool));
    s->n = 0;
    for (size_t i = 0; i < old.cap; i++)
      if (old.used[i])
        lbx_dset_add(s, old.slots[i]);
    free(old.slots);
    free(old.used);
  }
  size_t i = slot(s, d);
  if (s->used[i])
    return false;
  memcpy(s->slots[i], d, 32);
  s->used[i] = true;
  s->n++;
  return true;
}

void
lbx_dset_clear(lbx_dset *s)
{
  free(s->slots);
  free(s->used);
  memset(s, 0, sizeof *s);
}
