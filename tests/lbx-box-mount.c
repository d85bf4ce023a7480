/* lbx-box-mount ROOT IMAGE UPPER WORK DIR: serves IMAGE read-write at DIR
 * with UPPER/WORK as the box's directories, in the foreground, until
 * unmounted. The test harness for fs/box.c until boxes (the launcher) use
 * it; not installed. */
#include "fs/fs.h"
#include "index/index.h"

#include <stdio.h>

int
main(int argc, char **argv)
{
  if (argc != 6) {
    fprintf(stderr, "usage: lbx-box-mount ROOT IMAGE UPPER WORK DIR\n");
    return 2;
  }
  lbx_err *err = NULL;
  lbx_store *s;
  char id[LBX_DIGEST_HEX];
  lbx_image_row row;
  if (lbx_store_open(argv[1], 0, &s, &err) < 0 || lbx_image_resolve(s, argv[2], id, &err) < 0 ||
      lbx_store_image_get(s, id, &row, NULL, NULL, &err) < 0) {
    fprintf(stderr, "lbx-box-mount: %s\n", err->msg);
    return 1;
  }
  lbx_store_close(s);
  lbx_boxfs_opts o = {
      .store_root = argv[1],
      .chain_id = row.chain_id,
      .fsname = id,
      .mountpoint = argv[5],
      .upper = argv[3],
      .work = argv[4],
      .debug = getenv("LBX_BOX_DEBUG") != NULL,
  };
  lbx_boxfs *b;
  if (lbx_boxfs_mount(&o, &b, &err) < 0 || lbx_boxfs_serve(b, &err) < 0) {
    fprintf(stderr, "lbx-box-mount: %s\n", err->msg);
    return 1;
  }
  lbx_boxfs_free(b);
  lbx_image_row_clear(&row);
  return 0;
}
