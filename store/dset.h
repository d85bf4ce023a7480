/* A set of sha256 digests: open addressing, the digest's first bytes as the
 * hash (a sha256 is already uniformly spread). */
#ifndef LBX_DSET_H
#define LBX_DSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct lbx_dset {
  size_t cap, n;
  uint8_t (*slots)[32];
  bool *used;
} lbx_dset;

bool lbx_dset_has(const lbx_dset *s, const uint8_t d[32]);
/* true if d was not in the set before */
bool lbx_dset_add(lbx_dset *s, const uint8_t d[32]);
void lbx_dset_clear(lbx_dset *s);

#endif
