/* Store: layer transactions are all-or-nothing, contents are stored once,
 * images and names, gc, and what a killed writer leaves behind. */
#include "store/store.h"
#include "tap.h"

#include <openssl/evp.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>

static void
sha(const void *d, size_t n, uint8_t out[32])
{
  EVP_Digest(d, n, out, NULL, EVP_sha256(), NULL);
}

/* How many files (what find -type f names), or entries of any kind, are
 * under root/sub. */
static int
count_under(const char *root, const char *sub, bool files_only)
{
  char cmd[600];
  snprintf(cmd, sizeof cmd, "find '%s/%s' -mindepth 1 %s | wc -l", root, sub,
           files_only ? "-type f" : "");
  FILE *f = popen(cmd, "r");
  int n = -1;
  if (fscanf(f, "%d", &n) != 1)
    n = -1;
  pclose(f);
  return n;
}

static int
count_files(const char *root)
{
  return count_under(root, "blobs", true);
}

struct collected {
  int n;
  char paths[8][64];
};

static int
collect(void *ctx, const lbx_entry *e)
{
  struct collected *c = ctx;
  if (c->n < 8)
    snprintf(c->paths[c->n], 64, "%s", e->path);
  c->n++;
  return 0;
}

static const char *DIFF = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

/* One layer with a small file (inline) and a big one (blob file). */
static int
write_layer(lbx_store *s, const char *diff_id, const char *small, size_t bign, bool commit)
{
  lbx_err *err = NULL;
  lbx_layer_tx *tx;
  if (lbx_layer_tx_begin(s, &tx, &err) < 0)
    return -1;
  uint8_t d1[32], d2[32];
  sha(small, strlen(small), d1);
  char *big = malloc(bign);
  for (size_t i = 0; i < bign; i++)
    big[i] = (char)(i * 7 + (unsigned char)small[0]);
  sha(big, bign, d2);
  if (!lbx_layer_tx_has_blob(tx, d1, strlen(small)))
    lbx_layer_tx_put_inline(tx, d1, small, strlen(small));
  if (!lbx_layer_tx_has_blob(tx, d2, bign))
    lbx_layer_tx_put_data(tx, d2, big, bign);
  free(big);
  lbx_entry dir = {.path = "etc", .type = LBX_T_DIR, .mode = 0755};
  lbx_entry f1 = {
      .path = "etc/small", .type = LBX_T_REG, .mode = 0644, .size = strlen(small), .digest = d1};
  lbx_entry f2 = {.path = "etc/big",
                  .type = LBX_T_REG,
                  .mode = 0600,
                  .size = bign,
                  .digest = d2,
                  .uid = 1000,
                  .gid = 1000,
                  .mtime_ns = 1700000000123456789LL};
  lbx_layer_tx_add_entry(tx, &dir);
  lbx_layer_tx_add_entry(tx, &f1);
  lbx_layer_tx_add_entry(tx, &f2);
  int r = 0;
  if (commit)
    r = lbx_layer_tx_commit(tx, diff_id, 10240, NULL, NULL, 0, &err);
  lbx_layer_tx_free(tx);
  if (err) {
    printf("# %s\n", err->msg);
    lbx_error_free(err);
  }
  return r;
}

/* Checks a spilled layer's entries as they come back: the i-th has path
 * "dNNNNNN/<i padded>", size i, and the huge one its 6 MiB path. */
struct spill_check {
  int n, bad;
  size_t huge_len;
};

static int
spill_entry(void *ctx, const lbx_entry *e)
{
  struct spill_check *c = ctx;
  int i = c->n++;
  if (i == 1000) {
    c->huge_len = strlen(e->path);
    if (e->link == NULL || strcmp(e->link, "target") != 0 || e->xattrs_len != 5)
      c->bad++;
    return 0;
  }
  char want[128];
  snprintf(want, sizeof want, "d%06d/%0100d", i / 1000, i);
  if (strcmp(e->path, want) != 0 || e->size != (uint64_t)i || e->link != NULL || e->xattrs)
    c->bad++;
  return 0;
}

/* 60,000 entries of ~120 bytes are past the few MiB a transaction keeps in
 * memory: the rows go to an unlinked file in tmp/ and come back in order,
 * one of them (a 6 MiB path) bigger than the read-back buffer. */
static void
spilled_layer(lbx_store *s, const char *root)
{
  const char *diff = "sha256:5555555555555555555555555555555555555555555555555555555555555555";
  lbx_err *err = NULL;
  lbx_layer_tx *tx;
  tap_ok(lbx_layer_tx_begin(s, &tx, &err) == 0, "spill: transaction begins");
  size_t hlen = 6u << 20;
  char *huge = malloc(hlen + 1);
  memset(huge, 'h', hlen);
  huge[hlen] = '\0';
  int r = 0;
  for (int i = 0; i < 60000 && r == 0; i++) {
    char path[128];
    snprintf(path, sizeof path, "d%06d/%0100d", i / 1000, i);
    lbx_entry e = {.path = path, .type = LBX_T_REG, .mode = 0644, .size = (uint64_t)i};
    if (i == 1000)
      e = (lbx_entry){.path = huge,
                      .type = LBX_T_SYMLINK,
                      .mode = 0777,
                      .link = "target",
                      .xattrs = "x\0yz",
                      .xattrs_len = 5};
    r = lbx_layer_tx_add_entry(tx, &e);
  }
  free(huge);
  tap_is_int(r, 0, "spill: 60,000 entries added");
  tap_is_int(count_under(root, "tmp", true), 0, "spill: the rows file has no name in tmp/");
  tap_ok(lbx_layer_tx_commit(tx, diff, 1, NULL, NULL, 0, &err) == 0, "spill: committed%s%s",
         err ? ": " : "", err ? err->msg : "");
  lbx_layer_tx_free(tx);
  struct spill_check c = {0};
  lbx_store_layer_entries(s, diff, spill_entry, &c, &err);
  tap_is_int(c.n, 60000, "spill: every entry read back");
  tap_is_int(c.bad, 0, "spill: each in order with its fields");
  tap_is_int((int)c.huge_len, (int)hlen, "spill: the record bigger than the buffer is whole");
  lbx_error_free(err);
}

static int
build_fail(void *ctx, lbx_chain_writer *w, lbx_err **err)
{
  (void)ctx;
  lbx_node root = {.ino = 1, .type = LBX_T_DIR, .mode = 0755, .nlink = 2};
  lbx_chain_writer_node(w, &root);
  return lbx_error(err, EINVAL, "simulated failure while building the tree");
}

static int
build_ok(void *ctx, lbx_chain_writer *w, lbx_err **err)
{
  (void)ctx;
  (void)err;
  lbx_node root = {.ino = 1, .type = LBX_T_DIR, .mode = 0755, .nlink = 2};
  lbx_node f = {.ino = 2, .type = LBX_T_REG, .mode = 0644, .nlink = 1, .size = 5};
  if (lbx_chain_writer_node(w, &root) < 0 || lbx_chain_writer_node(w, &f) < 0 ||
      lbx_chain_writer_dirent(w, 1, "hello", 2) < 0)
    return -1;
  return 0;
}

int
main(void)
{
  char root[] = "/tmp/lbx-test-store-XXXXXX";
  if (!mkdtemp(root))
    return 1;
  lbx_err *err = NULL;

  /* an error is one line, whatever text a registry or a parser put in it */
  lbx_error(&err, EBADMSG, "auth file %s: %s", "/x", "invalid escape near '\"a\\\n'\x1b[2J");
  lbx_error_prefix(&err, "pull \"%s\"", "a\rb");
  tap_is_str(err ? err->msg : NULL, "pull \"a?b\": auth file /x: invalid escape near '\"a\\?'?[2J",
             "control bytes in a message become '?'");
  lbx_error_free(err);
  err = NULL;

  lbx_store *s;
  tap_ok(lbx_store_open(root, 0, &s, &err) == 0, "store opens and is created");
  struct stat st;
  tap_ok(stat(root, &st) == 0 && (st.st_mode & 0777) == 0700, "store dir is 0700");

  /* an aborted transaction leaves no rows */
  tap_ok(write_layer(s, DIFF, "hello", 100000, false) == 0, "uncommitted layer written");
  tap_is_int(lbx_store_has_layer(s, DIFF), 0, "uncommitted layer is not visible");
  lbx_df df;
  lbx_store_df(s, &df, &err);
  tap_is_int(df.blobs, 0, "uncommitted blobs are not visible");

  /* a committed one is whole */
  tap_ok(write_layer(s, DIFF, "hello", 100000, true) == 0, "layer committed");
  tap_is_int(lbx_store_has_layer(s, DIFF), 1, "committed layer is visible");
  struct collected c = {0};
  lbx_store_layer_entries(s, DIFF, collect, &c, &err);
  tap_is_int(c.n, 3, "layer has its 3 entries");
  tap_is_str(c.paths[2], "etc/big", "entries keep archive order");
  lbx_store_df(s, &df, &err);
  tap_is_int(df.blobs, 2, "two distinct contents");
  tap_is_int(df.inline_blobs, 1, "the small one is inline");
  tap_is_int(df.logical_bytes, 100005, "logical bytes count file content");

  /* the same contents in a second layer are stored once */
  const char *DIFF2 = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
  tap_ok(write_layer(s, DIFF2, "hello", 100000, true) == 0, "second layer committed");
  lbx_store_df(s, &df, &err);
  tap_is_int(df.blobs, 2, "shared contents stored once");
  tap_is_int(df.stored_bytes, 100005, "stored bytes count each content once");
  tap_is_int(df.logical_bytes, 200010, "logical bytes count both layers");
  tap_is_int(count_files(root), 1, "one blob file on disk");

  uint8_t d[32];
  sha("hello", 5, d);
  int fd;
  void *data;
  size_t len;
  tap_ok(lbx_store_blob_open(s, d, &fd, &data, &len) == 0 && fd < 0 && len == 5 &&
             memcmp(data, "hello", 5) == 0,
         "inline content reads back");
  free(data);

  /* an image whose tree build fails leaves no image and no chain */
  lbx_image_layer layers[] = {{DIFF, DIFF, "application/vnd.oci.image.layer.v1.tar", 10}};
  const char *cfg = "{\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}";
  lbx_image_info info = {.id = "aaaabbbbccccddddeeeeffff0000111122223333444455556666777788889999",
                         .config = cfg,
                         .config_len = strlen(cfg),
                         .digest =
                             "sha256:"
                             "1212121212121212121212121212121212121212121212121212121212121212",
                         .chain_id = DIFF,
                         .nlayers = 1,
                         .layers = layers};
  const char *names[] = {"docker.io/library/x:latest"};
  tap_ok(lbx_store_image_commit(s, &info, build_fail, NULL, names, 1, &err) < 0,
         "image commit fails when the tree build fails");
  tap_ok(err && strstr(err->msg, "simulated failure"), "the error says why: %s",
         err ? err->msg : "");
  lbx_error_free(err);
  err = NULL;
  tap_is_int(lbx_store_has_chain(s, DIFF), 0, "no chain left behind");
  char id[LBX_DIGEST_HEX];
  tap_is_int(lbx_store_image_by_name(s, names[0], id), 0, "no name left behind");

  tap_ok(lbx_store_image_commit(s, &info, build_ok, NULL, names, 1, &err) == 0, "image commits");
  tap_is_int(lbx_store_image_by_name(s, names[0], id), 1, "name resolves");
  tap_is_str(id, info.id, "to the image");
  tap_is_int(lbx_store_image_by_id(s, "aaaab", id), 1, "short ID resolves");
  lbx_chain *ch;
  uint64_t ino = 0;
  tap_ok(lbx_chain_open(s, DIFF, &ch, &err) == 0 && lbx_chain_lookup(ch, 1, "hello", &ino) == 0 &&
             ino == 2,
         "lookup in the chain finds the node");
  lbx_node_buf nb = {0};
  tap_ok(lbx_chain_getattr(ch, 2, &nb) == 0 && nb.n.size == 5 && nb.n.type == LBX_T_REG,
         "getattr reads the node");
  tap_is_int(lbx_chain_lookup(ch, 1, "nope", &ino), -ENOENT, "missing name is ENOENT");
  lbx_node_buf_clear(&nb);
  lbx_chain_close(ch);

  /* a writer killed mid-layer: its blob files may exist, its rows do not */
  const char *DIFF3 = "sha256:3333333333333333333333333333333333333333333333333333333333333333";
  pid_t pid = fork();
  if (pid == 0) {
    lbx_store *s2;
    if (lbx_store_open(root, 0, &s2, NULL) < 0)
      _exit(2);
    lbx_layer_tx *tx;
    lbx_layer_tx_begin(s2, &tx, NULL);
    char big[50000];
    memset(big, 'k', sizeof big);
    uint8_t dk[32];
    sha(big, sizeof big, dk);
    lbx_layer_tx_put_data(tx, dk, big, sizeof big);
    _exit(0); /* as if killed before commit */
  }
  int status;
  waitpid(pid, &status, 0);
  tap_is_int(lbx_store_has_layer(s, DIFF3), 0, "killed writer's layer is not visible");
  tap_is_int(count_files(root), 2, "its blob file is on disk until gc");
  lbx_gc_stats gs;
  tap_ok(lbx_store_gc(s, &gs, &err) == 0, "gc runs");
  tap_is_int(count_files(root), 1, "gc removed the orphan file");
  tap_is_int(lbx_store_has_layer(s, DIFF), 1, "gc kept the layer an image uses");
  tap_is_int(lbx_store_has_layer(s, DIFF2), 0, "gc dropped the layer no image uses");

  /* a torn blob file without a row (a crash mid-write): the next layer with
   * that content puts its whole bytes over it, and leaves nothing in tmp/ */
  {
    char big[50000], hex[65], path[512];
    memset(big, 't', sizeof big);
    uint8_t dt[32];
    sha(big, sizeof big, dt);
    for (int i = 0; i < 32; i++)
      snprintf(hex + 2 * i, 3, "%02x", dt[i]);
    snprintf(path, sizeof path, "%s/blobs/sha256/%.2s", root, hex);
    mkdir(path, 0700);
    snprintf(path, sizeof path, "%s/blobs/sha256/%.2s/%s", root, hex, hex);
    FILE *f = fopen(path, "w");
    fputs("torn", f);
    fclose(f);
    lbx_layer_tx *tx;
    const char *DIFF5 = "sha256:5555555555555555555555555555555555555555555555555555555555555555";
    tap_ok(lbx_layer_tx_begin(s, &tx, &err) == 0 &&
               lbx_layer_tx_put_data(tx, dt, big, sizeof big) == 0 &&
               lbx_layer_tx_commit(tx, DIFF5, 1, NULL, NULL, 0, &err) == 0,
           "a layer whose content is a torn file commits");
    lbx_layer_tx_free(tx);
    struct stat bst;
    int sr = stat(path, &bst);
    tap_ok(sr == 0 && bst.st_size == (off_t)sizeof big && (bst.st_mode & 0777) == 0444,
           "the torn file was replaced by the whole content, mode 0444 (size %lld)",
           (long long)bst.st_size);
    tap_is_int(count_under(root, "tmp", false), 0, "nothing left in tmp/");
  }

  /* digests: the manifest's, one more added (a list's), both kept over a
   * schema-3 store's migration (which had only images.digest) */
  const char *LIST = "sha256:3434343434343434343434343434343434343434343434343434343434343434";
  tap_ok(lbx_store_image_add_digest(s, info.id, LIST, &err) == 0, "a list digest is added");
  tap_ok(lbx_store_image_by_digest(s, LIST, id) == 1 && strcmp(id, info.id) == 0,
         "the list digest finds the image");
  lbx_store_close(s);
  {
    char dbp[256];
    snprintf(dbp, sizeof dbp, "%s/store.db", root);
    sqlite3 *old;
    sqlite3_open(dbp, &old);
    tap_ok(sqlite3_exec(old, "DROP TABLE image_digests; PRAGMA user_version = 3", NULL, NULL,
                        NULL) == SQLITE_OK,
           "store set back to schema 3");
    sqlite3_close(old);
  }
  tap_ok(lbx_store_open(root, 0, &s, &err) == 0, "a schema-3 store opens (migrated)");
  tap_ok(lbx_store_image_by_digest(s, info.digest, id) == 1 && strcmp(id, info.id) == 0,
         "the manifest digest still finds the image after the migration");

  /* deleting the image frees everything */
  tap_ok(lbx_store_image_delete(s, info.id, &err) == 0, "image deleted");
  tap_is_int(lbx_store_image_by_digest(s, info.digest, id), 0, "its digests went with it");
  tap_ok(lbx_store_gc(s, &gs, &err) == 0, "gc runs again");
  lbx_store_df(s, &df, &err);
  tap_is_int(df.blobs, 0, "no blobs left");
  tap_is_int(df.layers, 0, "no layers left");
  tap_is_int(count_files(root), 0, "no blob files left");

  spilled_layer(s, root);
  lbx_store_close(s);

  /* reopening keeps the schema; a newer schema is refused */
  tap_ok(lbx_store_open(root, 0, &s, &err) == 0, "store reopens");
  lbx_store_close(s);
  char dbpath[256];
  snprintf(dbpath, sizeof dbpath, "%s/store.db", root);
  sqlite3 *db;
  sqlite3_open(dbpath, &db);
  sqlite3_exec(db, "PRAGMA user_version = 999", NULL, NULL, NULL);
  sqlite3_close(db);
  tap_ok(lbx_store_open(root, 0, &s, &err) < 0 && err && strstr(err->msg, "newer"),
         "a newer schema is refused: %s", err ? err->msg : "");
  lbx_error_free(err);

  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
  if (system(cmd) != 0)
    return 1;
  return tap_done();
}
