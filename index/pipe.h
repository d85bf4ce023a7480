/* Decompression on its own thread: a producer reads an lbx_stream into a
 * small ring of chunks, the tar reader consumes them. On a layer this
 * overlaps inflate + two sha256 passes with tar parsing, content hashing
 * and blob writes, which otherwise run one after the other on one core. */
#ifndef LBX_PIPE_H
#define LBX_PIPE_H

#include "stream.h"

typedef struct lbx_pipe lbx_pipe;

/* Starts the producer over st (which the pipe reads to its end). */
int lbx_pipe_start(lbx_stream *st, lbx_pipe **out, lbx_err **err);
/* An lbx_read_fn over the decompressed bytes; ctx is the pipe. */
ssize_t lbx_pipe_read(void *ctx, void *buf, size_t len, lbx_err **err);
/* Reads what the consumer left (archive padding), waits for the producer
 * and reports its error, if any. The stream is then at its end. */
int lbx_pipe_finish(lbx_pipe *p, lbx_err **err);
/* Stops the producer (if still running) and frees the pipe. */
void lbx_pipe_free(lbx_pipe *p);
static inline void
lbx_pipe_freep(lbx_pipe **p)
{
  lbx_pipe_free(*p);
}

#endif
