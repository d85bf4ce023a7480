#include "pipe.h"

#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#define CHUNK (1u << 20)
#define NCHUNKS 4

struct chunk {
  char *data;
  size_t len;
};

struct lbx_pipe {
  lbx_stream *st;
  pthread_t thread;
  bool started;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  struct chunk ring[NCHUNKS];
  size_t head, count; /* the consumer reads ring[head]; count chunks are full */
  size_t pos;         /* read position in ring[head] */
  bool eof, cancel;
  lbx_err *err; /* the producer's */
};

static void *
produce(void *arg)
{
  lbx_pipe *p = arg;
  for (;;) {
    pthread_mutex_lock(&p->mu);
    while (p->count == NCHUNKS && !p->cancel)
      pthread_cond_wait(&p->cv, &p->mu);
    bool cancel = p->cancel;
    struct chunk *c = &p->ring[(p->head + p->count) % NCHUNKS];
    pthread_mutex_unlock(&p->mu);
    if (cancel)
      return NULL;

    /* Fill the chunk outside the lock: this is the work being overlapped. */
    size_t got = 0;
    lbx_err *err = NULL;
    ssize_t n = 1;
    while (got < CHUNK && (n = lbx_stream_read(p->st, c->data + got, CHUNK - got, &err)) > 0)
      got += (size_t)n;
    c->len = got;

    pthread_mutex_lock(&p->mu);
    if (got)
      p->count++;
    if (n <= 0) {
      p->eof = true;
      p->err = err;
    }
    pthread_cond_broadcast(&p->cv);
    bool done = p->eof;
    pthread_mutex_unlock(&p->mu);
    if (done)
      return NULL;
  }
}

int
lbx_pipe_start(lbx_stream *st, lbx_pipe **out, lbx_err **err)
{
  lbx_pipe *p = lbx_xcalloc(1, sizeof *p);
  p->st = st;
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->cv, NULL);
  for (size_t i = 0; i < NCHUNKS; i++)
    p->ring[i].data = lbx_xmalloc(CHUNK);
  int r = pthread_create(&p->thread, NULL, produce, p);
  if (r != 0) {
    lbx_pipe_free(p);
    return lbx_error_errno(err, r, "starting a decompression thread");
  }
  p->started = true;
  *out = p;
  return 0;
}

ssize_t
lbx_pipe_read(void *ctx, void *buf, size_t len, lbx_err **err)
{
  lbx_pipe *p = ctx;
  pthread_mutex_lock(&p->mu);
  while (p->count == 0 && !p->eof)
    pthread_cond_wait(&p->cv, &p->mu);
  if (p->count == 0) {
    /* the producer has finished: its error (once), or the end */
    lbx_err *e = p->err;
    p->err = NULL;
    pthread_mutex_unlock(&p->mu);
    if (e) {
      if (err && !*err)
        *err = e;
      else
        lbx_error_free(e);
      return -1;
    }
    return 0;
  }
  struct chunk *c = &p->ring[p->head];
  pthread_mutex_unlock(&p->mu);

  /* ring[head] stays ours until we hand it back below */
  size_t n = c->len - p->pos < len ? c->len - p->pos : len;
  memcpy(buf, c->data + p->pos, n);
  p->pos += n;
  if (p->pos == c->len) {
    pthread_mutex_lock(&p->mu);
    p->pos = 0;
    p->head = (p->head + 1) % NCHUNKS;
    p->count--;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
  }
  return (ssize_t)n;
}

int
lbx_pipe_finish(lbx_pipe *p, lbx_err **err)
{
  _cleanup_free_ char *sink = lbx_xmalloc(65536);
  ssize_t n;
  while ((n = lbx_pipe_read(p, sink, 65536, err)) > 0)
    ;
  if (p->started) {
    pthread_join(p->thread, NULL);
    p->started = false;
  }
  return n < 0 ? -1 : 0;
}

void
lbx_pipe_free(lbx_pipe *p)
{
  if (!p)
    return;
  if (p->started) {
    pthread_mutex_lock(&p->mu);
    p->cancel = true;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->thread, NULL);
  }
  lbx_error_free(p->err);
  for (size_t i = 0; i < NCHUNKS; i++)
    free(p->ring[i].data);
  pthread_mutex_destroy(&p->mu);
  pthread_cond_destroy(&p->cv);
  free(p);
}
