/* The tar reader: the input (after one control byte) is a tar stream; every
 * entry is checked against the reader's promises, its data read in odd-sized
 * pieces, and its path and link name cleaned. */
#include "fuzz.h"
#include "index/tar.h"

#include <stdbool.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_clean(const char *path)
{
  char *out = NULL;
  lbx_err *err = NULL;
  if (lbx_tar_clean_path(path, &out, &err) < 0) {
    FUZZ_CHECK(err && err->msg && !out);
    FUZZ_CHECK(strstr(path, ".."));
    lbx_error_free(err);
    return;
  }
  FUZZ_CHECK(out && !err);
  /* cleaned: no leading or trailing '/', no empty, "." or ".." component */
  size_t n = strlen(out);
  FUZZ_CHECK(n <= strlen(path));
  if (n) {
    FUZZ_CHECK(out[0] != '/' && out[n - 1] != '/');
    FUZZ_CHECK(!strstr(out, "//"));
    for (const char *c = out; c;) {
      const char *s = strchr(c, '/');
      size_t len = s ? (size_t)(s - c) : strlen(c);
      FUZZ_CHECK(!(len == 1 && c[0] == '.'));
      FUZZ_CHECK(!(len == 2 && c[0] == '.' && c[1] == '.'));
      c = s ? s + 1 : NULL;
    }
  }
  /* cleaning is idempotent */
  char *again = NULL;
  FUZZ_CHECK(lbx_tar_clean_path(out, &again, NULL) == 0);
  FUZZ_CHECK(strcmp(out, again) == 0);
  free(again);
  free(out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 1)
    return 0;
  uint8_t ctl = data[0];
  fuzz_src src = {data + 1, size - 1, 0, fuzz_chunk(ctl)};
  /* bit 3: read data or leave it for lbx_tar_next to skip */
  bool read_data = ctl & 8;
  size_t rsize = (ctl >> 4) % 4 == 0 ? 1 : (ctl >> 4) % 4 == 1 ? 100 : 40000;

  lbx_tar *t = lbx_tar_new("fuzz.tar", fuzz_src_read, &src);
  static uint8_t buf[65536];
  const lbx_tar_entry *e;
  lbx_err *err = NULL;
  int r;
  while ((r = lbx_tar_next(t, &e, &err)) == 1) {
    FUZZ_CHECK(e && e->path);
    FUZZ_CHECK(e->type >= LBX_TAR_REG && e->type <= LBX_TAR_FIFO);
    FUZZ_CHECK((e->mode & ~07777u) == 0);
    FUZZ_CHECK(e->type == LBX_TAR_REG || e->size == 0);
    FUZZ_CHECK((e->linkname != NULL) ==
               (e->type == LBX_TAR_SYMLINK || e->type == LBX_TAR_HARDLINK));
    FUZZ_CHECK(e->offset <= src.len);
    for (size_t i = 0; i < e->nxattrs; i++)
      FUZZ_CHECK(e->xattrs[i].name && (e->xattrs[i].value || e->xattrs[i].len == 0));
    check_clean(e->path);
    if (e->linkname)
      check_clean(e->linkname);
    if (!read_data)
      continue;
    uint64_t got = 0;
    ssize_t n;
    while ((n = lbx_tar_read(t, buf, rsize, &err)) > 0) {
      FUZZ_CHECK((size_t)n <= rsize);
      got += (uint64_t)n;
    }
    if (n < 0)
      break;
    FUZZ_CHECK(got == e->size);
  }
  /* an error (from next or from read) always comes with a message */
  FUZZ_CHECK((r == -1) <= (err != NULL));
  FUZZ_CHECK(r != 0 || !err);
  if (err) {
    FUZZ_CHECK(err->msg);
    /* after an error the reader refuses to go on */
    lbx_error_free(err);
    err = NULL;
    FUZZ_CHECK(lbx_tar_next(t, &e, &err) == -1 && err);
    lbx_error_free(err);
  } else {
    FUZZ_CHECK(lbx_tar_next(t, &e, NULL) == 0);
  }
  lbx_tar_free(t);
  return 0;
}
