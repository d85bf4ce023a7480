/* inflate-hash FILE...: the bare cost lazybox's indexing is measured
 * against: read each layer blob, sha256 it, decompress it (ISA-L for gzip,
 * zstd) and sha256 the output, discarding the bytes. Same stream code as
 * the indexer, without the tar reader and the store. */
#include "index/stream.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>

int
main(int argc, char **argv)
{
  static char buf[1 << 20];
  unsigned flags = 0;
  int first = 1;
  if (argc > 1 && strcmp(argv[1], "--zlib") == 0) {
    flags = LBX_STREAM_ZLIB;
    first = 2;
  }
  for (int i = first; i < argc; i++) {
    int fd = open(argv[i], O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      perror(argv[i]);
      return 1;
    }
    lbx_fd_source src = {fd, 0, UINT64_MAX, 0, argv[i]};
    lbx_stream *s = lbx_stream_new(argv[i], lbx_fd_source_read, &src, flags);
    lbx_err *err = NULL;
    ssize_t n;
    while ((n = lbx_stream_read(s, buf, sizeof buf, &err)) > 0)
      ;
    char d[LBX_DIGEST_STR], diff[LBX_DIGEST_STR];
    if (n < 0 || lbx_stream_finish(s, d, diff, &err) < 0) {
      fprintf(stderr, "inflate-hash: %s\n", err->msg);
      return 1;
    }
    printf("%s %s %s\n", argv[i], d, diff);
    lbx_stream_free(s);
    close(fd);
  }
  return 0;
}
