/* `load`: the input is an archive file (a docker-archive or an OCI layout
 * tar, possibly gzip'd or zstd'd), loaded into a scratch store. Covers the
 * archive scan, member links, manifest.json / index.json / manifest /
 * config JSON, layer indexing and the image record. Slow (SQLite and files
 * per input) but the real path; the store is emptied after every input. */
#include "fuzz.h"
#include "index/index.h"

#include <fcntl.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static lbx_store *store;
static char archive[4200];

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (!store) {
    store = fuzz_store();
    snprintf(archive, sizeof archive, "%s/input.tar", fuzz_root);
  }
  int fd = open(archive, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  FUZZ_CHECK(fd >= 0);
  FUZZ_CHECK(lbx_write_all(fd, data, size) == 0);
  close(fd);

  char **names = NULL;
  size_t n = 0;
  lbx_err *err = NULL;
  if (lbx_load(store, archive, &names, &n, &err) < 0) {
    FUZZ_CHECK(err && err->msg && !names && n == 0);
    lbx_error_free(err);
  } else {
    FUZZ_CHECK(!err && n >= 1);
    for (size_t i = 0; i < n; i++) {
      char id[LBX_DIGEST_HEX];
      lbx_err *e2 = NULL;
      if (lbx_image_resolve(store, names[i], id, &e2) < 0) {
        fprintf(stderr, "loaded %s but cannot find it: %s\n", names[i], e2->msg);
        abort();
      }
      free(names[i]);
    }
    free(names);
  }
  fuzz_drop_images(store);
  lbx_gc_stats st;
  FUZZ_CHECK(lbx_store_gc(store, &st, NULL) == 0);
  return 0;
}
