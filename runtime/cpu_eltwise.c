// runtime/cpu_eltwise.c — element-wise kernels: relu and its backward, n-ary
// add, copy / accumulate, mask multiply, dropout and drop-path masks.
//
// Every kernel splits its n samples of `numel` floats into tasks of at most
// CPU_CHUNK floats of one sample (sample strides differ between operands when
// some are channel slices). Element-wise work has no reductions, so results
// never depend on the split. Masks come from the counter-based hash of
// runtime/rng.h: element i of a mask is a pure function of (key, i).
#include <math.h>
#include <string.h>

#include "runtime/cpu_kernels.h"
#include "runtime/cpu_util.h"
#include "runtime/rng.h"

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O3")
#endif

typedef enum { EW_RELU, EW_RELU_BWD, EW_ADD, EW_COPY, EW_MASK, EW_DROPOUT, EW_DROPPATH } EwOp;

typedef struct {
  EwOp op;
  size_t numel, chunks;  // floats per sample, tasks per sample
  int n_in;
  const float *const *in;  // n_in inputs
  const size_t *in_ss;
  const float *a, *b;  // the first two inputs, when not n-ary
  size_t a_ss, b_ss;
  size_t mask_numel;  // EW_MASK: numel or 1
  float *y;
  size_t y_ss;
  float *mask;  // dropout / drop-path output mask
  size_t mask_ss;
  int accumulate;
  float keep;
  uint64_t key;
} EwCtx;

static void ew_store(float *restrict y, const float *restrict v, size_t len, int accumulate) {
  if (accumulate) {
    for (size_t i = 0; i < len; i++) y[i] += v[i];
  } else {
    memcpy(y, v, sizeof(float) * len);
  }
}

static void ew_add(const EwCtx *c, int n, size_t i0, size_t len, float *restrict y) {
  const float *restrict x0 = c->in[0] + (size_t)n * c->in_ss[0] + i0;
  if (c->n_in == 1) {
    ew_store(y, x0, len, c->accumulate);
    return;
  }
  const float *restrict x1 = c->in[1] + (size_t)n * c->in_ss[1] + i0;
  if (c->accumulate) {
    // y + (x0 + x1 + ...): the sum first, as in the written case.
    if (c->n_in == 2) {
      for (size_t i = 0; i < len; i++) y[i] += x0[i] + x1[i];
      return;
    }
  } else {
    for (size_t i = 0; i < len; i++) y[i] = x0[i] + x1[i];
    for (int k = 2; k < c->n_in; k++) {
      const float *restrict xk = c->in[k] + (size_t)n * c->in_ss[k] + i0;
      for (size_t i = 0; i < len; i++) y[i] += xk[i];
    }
    return;
  }
  // Accumulating three or more inputs: sum in blocks on the stack, then add.
  float buf[256];
  for (size_t b0 = 0; b0 < len; b0 += 256) {
    size_t bl = len - b0 < 256 ? len - b0 : 256;
    for (size_t i = 0; i < bl; i++) buf[i] = x0[b0 + i] + x1[b0 + i];
    for (int k = 2; k < c->n_in; k++) {
      const float *restrict xk = c->in[k] + (size_t)n * c->in_ss[k] + i0 + b0;
      for (size_t i = 0; i < bl; i++) buf[i] += xk[i];
    }
    for (size_t i = 0; i < bl; i++) y[b0 + i] += buf[i];
  }
}

static void ew_dropout(const EwCtx *c, int n, size_t i0, size_t len, const float *restrict x,
                       float *restrict y) {
  float *restrict m = c->mask + (size_t)n * c->mask_ss + i0;
  const float inv = c->keep >= 1.0f ? 1.0f : 1.0f / c->keep;
  const uint64_t base = (uint64_t)n * c->numel + i0;
  for (size_t i = 0; i < len; i++) {
    float u = rng_hash_uniform(c->key, base + i);
    m[i] = c->keep >= 1.0f || u < c->keep ? inv : 0.0f;
  }
  for (size_t i = 0; i < len; i++) y[i] = x[i] * m[i];
}

static void ew_task(void *vctx, int t, int thread) {
  (void)thread;
  const EwCtx *c = vctx;
  const int n = (int)((size_t)t / c->chunks);
  const size_t i0 = ((size_t)t % c->chunks) * CPU_CHUNK;
  const size_t len = c->numel - i0 < CPU_CHUNK ? c->numel - i0 : CPU_CHUNK;
  float *restrict y = c->y + (size_t)n * c->y_ss + i0;
  const float *restrict a = c->a ? c->a + (size_t)n * c->a_ss + i0 : NULL;
  const float *restrict b = c->b ? c->b + (size_t)n * c->b_ss + i0 : NULL;
  switch (c->op) {
    case EW_RELU:
      for (size_t i = 0; i < len; i++) y[i] = a[i] < 0.0f ? 0.0f : a[i];
      break;
    case EW_RELU_BWD:  // a = forward output, b = dy; b read unconditionally: a select, no branch
      if (c->accumulate) {
        for (size_t i = 0; i < len; i++) {
          const float g = b[i];
          y[i] += a[i] > 0.0f ? g : 0.0f;
        }
      } else {
        for (size_t i = 0; i < len; i++) {
          const float g = b[i];
          y[i] = a[i] > 0.0f ? g : 0.0f;
        }
      }
      break;
    case EW_ADD:
      ew_add(c, n, i0, len, y);
      break;
    case EW_COPY:
      ew_store(y, a, len, c->accumulate);
      break;
    case EW_MASK:  // a = x, b = mask (per element, or one per sample)
      if (c->mask_numel == 1) {
        const float m = c->b[(size_t)n * c->b_ss];
        if (c->accumulate) {
          for (size_t i = 0; i < len; i++) y[i] += a[i] * m;
        } else {
          for (size_t i = 0; i < len; i++) y[i] = a[i] * m;
        }
      } else if (c->accumulate) {
        for (size_t i = 0; i < len; i++) y[i] += a[i] * b[i];
      } else {
        for (size_t i = 0; i < len; i++) y[i] = a[i] * b[i];
      }
      break;
    case EW_DROPOUT:
      ew_dropout(c, n, i0, len, a, y);
      break;
    case EW_DROPPATH: {  // the mask is drawn by the caller
      const float m = c->mask[(size_t)n * c->mask_ss];
      for (size_t i = 0; i < len; i++) y[i] = a[i] * m;
      break;
    }
  }
}

static void ew_run(ThreadPool *tp, EwCtx *c, int n) {
  if (n <= 0 || c->numel == 0) return;
  c->chunks = cpu_div_up(c->numel, CPU_CHUNK);
  tp_run(tp, (int)((size_t)n * c->chunks), ew_task, c);
}

static EwCtx ew_ctx(EwOp op, size_t numel, const float *a, size_t a_ss, float *y, size_t y_ss,
                    int accumulate) {
  EwCtx c;
  memset(&c, 0, sizeof c);
  c.op = op;
  c.numel = numel;
  c.a = a;
  c.a_ss = a_ss;
  c.y = y;
  c.y_ss = y_ss;
  c.accumulate = accumulate;
  return c;
}

void cpu_relu_fwd(ThreadPool *tp, int n, size_t numel, const float *x, size_t x_ss, float *y,
                  size_t y_ss) {
  EwCtx c = ew_ctx(EW_RELU, numel, x, x_ss, y, y_ss, 0);
  ew_run(tp, &c, n);
}

void cpu_relu_bwd(ThreadPool *tp, int n, size_t numel, const float *y, size_t y_ss,
                  const float *dy, size_t dy_ss, float *dx, size_t dx_ss, int accumulate) {
  EwCtx c = ew_ctx(EW_RELU_BWD, numel, y, y_ss, dx, dx_ss, accumulate);
  c.b = dy;
  c.b_ss = dy_ss;
  ew_run(tp, &c, n);
}

void cpu_add(ThreadPool *tp, int n, size_t numel, int n_in, const float *const *x,
             const size_t *x_ss, float *y, size_t y_ss, int accumulate) {
  EwCtx c = ew_ctx(EW_ADD, numel, NULL, 0, y, y_ss, accumulate);
  c.n_in = n_in;
  c.in = x;
  c.in_ss = x_ss;
  ew_run(tp, &c, n);
}

void cpu_copy(ThreadPool *tp, int n, size_t numel, const float *x, size_t x_ss, float *y,
              size_t y_ss, int accumulate) {
  EwCtx c = ew_ctx(EW_COPY, numel, x, x_ss, y, y_ss, accumulate);
  ew_run(tp, &c, n);
}

void cpu_mask_mul(ThreadPool *tp, int n, size_t numel, const float *x, size_t x_ss,
                  const float *mask, size_t mask_numel, size_t mask_ss, float *y, size_t y_ss,
                  int accumulate) {
  EwCtx c = ew_ctx(EW_MASK, numel, x, x_ss, y, y_ss, accumulate);
  c.b = mask;
  c.b_ss = mask_ss;
  c.mask_numel = mask_numel;
  ew_run(tp, &c, n);
}

// ---------------------------------------------------------------- masks
uint64_t cpu_mask_key(uint64_t seed, long long step, int node) {
  return rng_mix64(rng_mix64(rng_mix64(seed) ^ (uint64_t)step) ^ (uint64_t)(uint32_t)node);
}

float cpu_droppath_keep(float keep, int cell, int n_cells, long long t, long long total) {
  if (total <= 0 || n_cells <= 0) return keep;
  double k = 1.0 - ((double)(t + 1) / (double)total) * ((double)(cell + 1) / (double)n_cells) *
                       (1.0 - (double)keep);
  return k < (double)keep ? keep : (float)k;
}

void cpu_dropout_fwd(ThreadPool *tp, int n, size_t numel, const float *x, size_t x_ss, float *y,
                     size_t y_ss, float *mask, size_t mask_ss, float keep, uint64_t key) {
  EwCtx c = ew_ctx(EW_DROPOUT, numel, x, x_ss, y, y_ss, 0);
  c.mask = mask;
  c.mask_ss = mask_ss;
  c.keep = keep;
  c.key = key;
  ew_run(tp, &c, n);
}

void cpu_droppath_fwd(ThreadPool *tp, int n, size_t numel, const float *x, size_t x_ss, float *y,
                      size_t y_ss, float *mask, size_t mask_ss, float keep, uint64_t key) {
  const float inv = keep >= 1.0f ? 1.0f : 1.0f / keep;
  for (int i = 0; i < n; i++)
    mask[(size_t)i * mask_ss] =
        keep >= 1.0f || rng_hash_uniform(key, (uint64_t)i) < keep ? inv : 0.0f;
  EwCtx c = ew_ctx(EW_DROPPATH, numel, x, x_ss, y, y_ss, 0);
  c.mask = mask;
  c.mask_ss = mask_ss;
  ew_run(tp, &c, n);
}
