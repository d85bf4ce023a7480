/* lbx-dump-tree ROOT IMAGE [--no-owner] [--no-devices]: prints an image's
 * merged tree from the store in the format of tests/system/dumptree.py, with
 * each file's sha256 computed from the stored content (not the recorded
 * digest), so the comparison checks the blobs too. */
#include "index/index.h"

#include "store/crypto.h"
#include <string.h>
#include <sys/sysmacros.h>

struct line {
  char *path;
  char *text;
};

struct walk {
  lbx_store *s;
  lbx_chain *c;
  struct line *lines;
  size_t n;
  bool no_owner, no_devices;
  int failed;
};

static void
esc(FILE *f, const char *s)
{
  for (const unsigned char *p = (const unsigned char *)s; *p; p++)
    if (*p >= 0x21 && *p <= 0x7e && *p != '\\')
      fputc(*p, f);
    else
      fprintf(f, "\\x%02x", *p);
}

static void
content_hash(struct walk *w, const lbx_node *n, char hex[LBX_DIGEST_HEX])
{
  int fd;
  void *data;
  size_t len;
  uint8_t md[LBX_DIGEST_LEN];
  strcpy(hex, "MISSING");
  if (lbx_store_blob_open(w->s, n->digest, &fd, &data, &len) < 0) {
    w->failed = 1;
    return;
  }
  lbx_sha256 *ctx = lbx_sha256_new();
  if (fd >= 0) {
    char buf[65536];
    ssize_t r;
    while ((r = read(fd, buf, sizeof buf)) > 0)
      lbx_sha256_update(ctx, buf, (size_t)r);
    close(fd);
  } else {
    lbx_sha256_update(ctx, data, len);
    free(data);
  }
  lbx_sha256_final(ctx, md);
  lbx_sha256_free(ctx);
  lbx_hex(md, LBX_DIGEST_LEN, hex);
}

struct dir_ctx {
  struct walk *w;
  const char *prefix;
  char **names;
  uint64_t *inos;
  size_t n;
};

static int
collect(void *ctx, const char *name, uint64_t ino)
{
  struct dir_ctx *d = ctx;
  d->names = realloc(d->names, (d->n + 1) * sizeof *d->names);
  d->inos = realloc(d->inos, (d->n + 1) * sizeof *d->inos);
  d->names[d->n] = strdup(name);
  d->inos[d->n++] = ino;
  return 0;
}

static void
walk_dir(struct walk *w, uint64_t dir, const char *prefix)
{
  struct dir_ctx d = {w, prefix, NULL, NULL, 0};
  lbx_chain_readdir(w->c, dir, NULL, collect, &d);
  for (size_t i = 0; i < d.n; i++) {
    char *path = lbx_xasprintf("%s/%s", prefix, d.names[i]);
    lbx_node_buf nb = {0};
    if (lbx_chain_getattr(w->c, d.inos[i], &nb) < 0) {
      fprintf(stderr, "getattr %s failed\n", path);
      w->failed = 1;
      continue;
    }
    const lbx_node *n = &nb.n;
    static const char types[] = {[LBX_T_REG] = 'f', [LBX_T_DIR] = 'd', [LBX_T_SYMLINK] = 'l',
                                 [LBX_T_CHR] = 'c', [LBX_T_BLK] = 'b', [LBX_T_FIFO] = 'p'};
    bool dev = n->type == LBX_T_CHR || n->type == LBX_T_BLK;
    if (!(dev && w->no_devices)) {
      char *text;
      size_t tlen;
      FILE *f = open_memstream(&text, &tlen);
      esc(f, path);
      fprintf(f, "\t%c\t%04o\t", types[n->type], n->type == LBX_T_SYMLINK ? 0777 : n->mode);
      if (w->no_owner)
        fprintf(f, "-\t-\t");
      else
        fprintf(f, "%u\t%u\t", n->uid, n->gid);
      fprintf(f, "%u\t%llu\t%lld\t", n->type == LBX_T_REG ? n->nlink : 0,
              (unsigned long long)(n->type == LBX_T_REG ? n->size : 0),
              (long long)(n->type == LBX_T_SYMLINK ? 0 : n->mtime_ns / 1000000000));
      if (n->type == LBX_T_SYMLINK)
        esc(f, n->link ? n->link : "");
      else if (dev)
        fprintf(f, "%u:%u", major(n->rdev), minor(n->rdev));
      else
        fputc('-', f);
      if (n->type == LBX_T_REG) {
        char hex[LBX_DIGEST_HEX];
        content_hash(w, n, hex);
        fprintf(f, "\t%s\n", hex);
      } else {
        fputs("\t-\n", f);
      }
      fclose(f);
      w->lines = realloc(w->lines, (w->n + 1) * sizeof *w->lines);
      w->lines[w->n++] = (struct line){lbx_xstrdup(path), text};
    }
    if (n->type == LBX_T_DIR)
      walk_dir(w, d.inos[i], path);
    lbx_node_buf_clear(&nb);
    free(path);
    free(d.names[i]);
  }
  free(d.names);
  free(d.inos);
}

static int
by_path(const void *a, const void *b)
{
  return strcmp(((const struct line *)a)->path, ((const struct line *)b)->path);
}

int
main(int argc, char **argv)
{
  struct walk w = {0};
  const char *pos[2] = {0};
  int npos = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--no-owner") == 0)
      w.no_owner = true;
    else if (strcmp(argv[i], "--no-devices") == 0)
      w.no_devices = true;
    else if (npos < 2)
      pos[npos++] = argv[i];
  }
  if (npos != 2) {
    fprintf(stderr, "usage: lbx-dump-tree ROOT IMAGE [--no-owner] [--no-devices]\n");
    return 2;
  }
  lbx_err *err = NULL;
  char id[LBX_DIGEST_HEX];
  lbx_image_row row;
  if (lbx_store_open(pos[0], 0, &w.s, &err) < 0 || lbx_image_resolve(w.s, pos[1], id, &err) < 0 ||
      lbx_store_image_get(w.s, id, &row, NULL, NULL, &err) < 0 ||
      lbx_chain_open(w.s, row.chain_id, &w.c, &err) < 0) {
    fprintf(stderr, "lbx-dump-tree: %s\n", err->msg);
    return 1;
  }
  walk_dir(&w, 1, "");
  qsort(w.lines, w.n, sizeof *w.lines, by_path);
  for (size_t i = 0; i < w.n; i++) {
    fputs(w.lines[i].text, stdout);
    free(w.lines[i].text);
    free(w.lines[i].path);
  }
  free(w.lines);
  free(row.chain_id);
  for (char **p = row.names; p && *p; p++)
    free(*p);
  free(row.names);
  lbx_chain_close(w.c);
  lbx_store_close(w.s);
  return w.failed;
}
