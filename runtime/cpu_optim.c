// runtime/cpu_optim.c — the optimizer's array kernels over the flat parameter,
// gradient and momentum arrays (params.h): SGD with momentum and weight decay
// (PyTorch semantics), the squared global L2 norm, and scaling for clipping.
//
// Arrays are split into chunks fixed by their length alone (at most
// OPT_MAX_CHUNKS, at least OPT_MIN_CHUNK floats each); the norm sums each chunk
// in double and the chunks in order, so it does not depend on the thread count.
#include <string.h>

#include "runtime/cpu_kernels.h"
#include "runtime/cpu_util.h"

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O3")
#endif

enum { OPT_MIN_CHUNK = 65536, OPT_MAX_CHUNKS = 256 };

typedef struct {
  size_t n, chunk;
  float *p;
  const float *g;
  float *buf;
  float lr, momentum, wd, s;
  int first;
  double *partial;
} OptCtx;

static size_t opt_chunk(size_t n) {
  size_t c = cpu_div_up(n, OPT_MAX_CHUNKS);
  return c < OPT_MIN_CHUNK ? OPT_MIN_CHUNK : c;
}

static void opt_range(const OptCtx *c, int t, size_t *i0, size_t *i1) {
  *i0 = (size_t)t * c->chunk;
  *i1 = *i0 + c->chunk < c->n ? *i0 + c->chunk : c->n;
}

static void sgd_task(void *vctx, int t, int thread) {
  (void)thread;
  const OptCtx *c = vctx;
  size_t i0, i1;
  opt_range(c, t, &i0, &i1);
  float *restrict p = c->p, *restrict buf = c->buf;
  const float *restrict g = c->g;
  const float lr = c->lr, mom = c->momentum, wd = c->wd;
  if (c->first) {
    for (size_t i = i0; i < i1; i++) {
      float d = g[i] + wd * p[i];
      buf[i] = d;
      p[i] -= lr * d;
    }
  } else {
    for (size_t i = i0; i < i1; i++) {
      float d = g[i] + wd * p[i];
      float b = mom * buf[i] + d;
      buf[i] = b;
      p[i] -= lr * b;
    }
  }
}

void cpu_sgd_step(ThreadPool *tp, float *p, const float *g, float *buf, size_t n, float lr,
                  float momentum, float wd, int first) {
  OptCtx c;
  memset(&c, 0, sizeof c);
  c.n = n;
  c.chunk = opt_chunk(n);
  c.p = p;
  c.g = g;
  c.buf = buf;
  c.lr = lr;
  c.momentum = momentum;
  c.wd = wd;
  c.first = first;
  tp_run(tp, (int)cpu_div_up(n, c.chunk), sgd_task, &c);
}

static void sumsq_task(void *vctx, int t, int thread) {
  (void)thread;
  const OptCtx *c = vctx;
  size_t i0, i1;
  opt_range(c, t, &i0, &i1);
  double s = 0.0;
  for (size_t b = i0; b < i1; b += 1024) {  // float lanes over 1024, double across
    size_t len = i1 - b < 1024 ? i1 - b : 1024;
    s += cpu_dot8(c->g + b, c->g + b, len);
  }
  c->partial[t] = s;
}

double cpu_sumsq(ThreadPool *tp, const float *x, size_t n) {
  double partial[OPT_MAX_CHUNKS];
  OptCtx c;
  memset(&c, 0, sizeof c);
  c.n = n;
  c.chunk = opt_chunk(n);
  c.g = x;
  c.partial = partial;
  int chunks = (int)cpu_div_up(n, c.chunk);
  tp_run(tp, chunks, sumsq_task, &c);
  double s = 0.0;
  for (int t = 0; t < chunks; t++) s += partial[t];
  return s;
}

float cpu_clip_coef(double norm, float max_norm) {
  double coef = (double)max_norm / (norm + 1e-6);
  return coef < 1.0 ? (float)coef : 1.0f;
}

static void scale_task(void *vctx, int t, int thread) {
  (void)thread;
  const OptCtx *c = vctx;
  size_t i0, i1;
  opt_range(c, t, &i0, &i1);
  float *restrict p = c->p;
  for (size_t i = i0; i < i1; i++) p[i] *= c->s;
}

void cpu_scale(ThreadPool *tp, float *x, size_t n, float s) {
  OptCtx c;
  memset(&c, 0, sizeof c);
  c.n = n;
  c.chunk = opt_chunk(n);
  c.p = x;
  c.s = s;
  tp_run(tp, (int)cpu_div_up(n, c.chunk), scale_task, &c);
}
