// runtime/cpu_conv.c — dense convolutions (groups == 1) through OpenBLAS sgemm.
//
// Per sample, y[co][oh*ow] = w[co][ci*kh*kw] . col[ci*kh*kw][oh*ow]:
//  - 1x1, stride 1, no padding ("pointwise"): the input is the column matrix,
//    one GEMM per sample, no copy;
//  - anything else (k x k, 1 x k, k x 1, strided 1x1 of a factorized reduce,
//    negative pads): im2col into a per-thread buffer, in blocks of output rows
//    so one block (CONV_BLOCK_FLOATS) stays in the L2 cache, one GEMM a block.
// The backward data pass is the transposed GEMM into a column buffer followed
// by col2im (pointwise: one GEMM straight into dx, beta = 1 to accumulate).
// The backward filter pass sums per-sample GEMMs into CONV_FILTER_CHUNKS
// partial sums fixed by the batch size, then adds the partials in chunk order,
// so the result does not depend on the thread count.
//
// Threads: forward and backward data run one task per sample, each with a
// single-threaded GEMM (cpu_blas_single_thread); docs/cpu-backend.md has the
// measurements behind this choice. Grouped and depthwise convolutions live in
// cpu_conv_direct.c.
#include <cblas.h>
#include <string.h>

#include "compiler/util.h"
#include "runtime/cpu_conv_internal.h"
#include "runtime/cpu_kernels.h"
#include "runtime/cpu_util.h"

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O3")
#endif

enum {
  CONV_BLOCK_FLOATS = 32768,  // im2col floats per block: 128 KiB
  CONV_FILTER_CHUNKS = 16,    // partial sums of the filter gradient
};

void openblas_set_num_threads(int);

void cpu_blas_single_thread(void) { openblas_set_num_threads(1); }

static int conv_pointwise(const CpuConvShape *s) {
  return s->kh == 1 && s->kw == 1 && s->sh == 1 && s->sw == 1 && s->pt == 0 && s->pl == 0 &&
         s->oh == s->h && s->ow == s->w;
}

static size_t conv_k(const CpuConvShape *s) {
  return (size_t)(s->ci / s->groups) * (size_t)s->kh * (size_t)s->kw;
}

// Output rows per im2col block.
static int conv_block_rows(const CpuConvShape *s) {
  size_t per_row = conv_k(s) * (size_t)s->ow;
  size_t rows = per_row ? CONV_BLOCK_FLOATS / per_row : 1;
  if (rows < 1) rows = 1;
  return rows > (size_t)s->oh ? s->oh : (int)rows;
}

static size_t conv_col_floats(const CpuConvShape *s) {
  return conv_k(s) * (size_t)conv_block_rows(s) * (size_t)s->ow;
}

static int conv_filter_chunks(const CpuConvShape *s) { return cpu_min(s->n, CONV_FILTER_CHUNKS); }

size_t cpu_conv_ws_floats(const CpuConvShape *s, CpuConvOp op, int threads) {
  if (threads < 1) threads = 1;
  if (s->groups != 1) return cpu_conv_direct_ws_floats(s, op, threads);
  size_t col = conv_pointwise(s) ? 0 : conv_col_floats(s) * (size_t)threads;
  if (op != CPU_CONV_BWD_FILTER) return col;
  size_t wn = (size_t)s->co * conv_k(s);
  return col + wn * (size_t)conv_filter_chunks(s);
}

// ---------------------------------------------------------------- im2col / col2im
// col[(c*kh + ky)*kw + kx][(oy - oy0)*ow + ox] = x[c][oy*sh - pt + ky][ox*sw - pl + kx]
// for oy in [oy0, oy0 + nr); zero outside the image.
static void conv_im2col(const CpuConvShape *s, const float *restrict x, int oy0, int nr,
                        float *restrict col) {
  const int ow = s->ow, cols = nr * ow;
  for (int c = 0; c < s->ci; c++)
    for (int ky = 0; ky < s->kh; ky++)
      for (int kx = 0; kx < s->kw; kx++) {
        float *dst = col + (size_t)((c * s->kh + ky) * s->kw + kx) * (size_t)cols;
        int lo, hi;
        cpu_valid_range(s->pl, kx, s->sw, s->w, ow, &lo, &hi);
        for (int r = 0; r < nr; r++) {
          float *d = dst + (size_t)r * (size_t)ow;
          int iy = (oy0 + r) * s->sh - s->pt + ky;
          if (iy < 0 || iy >= s->h || lo == hi) {
            memset(d, 0, sizeof(float) * (size_t)ow);
            continue;
          }
          const float *src = x + ((size_t)c * (size_t)s->h + (size_t)iy) * (size_t)s->w;
          const int off = kx - s->pl;  // src[ox*sw + off] is the input of output ox
          memset(d, 0, sizeof(float) * (size_t)lo);
          if (s->sw == 1) {
            memcpy(d + lo, src + lo + off, sizeof(float) * (size_t)(hi - lo));
          } else {
            for (int ox = lo; ox < hi; ox++) d[ox] = src[ox * s->sw + off];
          }
          memset(d + hi, 0, sizeof(float) * (size_t)(ow - hi));
        }
      }
}

// dx[c][oy*sh - pt + ky][ox*sw - pl + kx] += col[...] for the in-image cells.
static void conv_col2im(const CpuConvShape *s, const float *restrict col, int oy0, int nr,
                        float *restrict dx) {
  const int ow = s->ow, cols = nr * ow;
  for (int c = 0; c < s->ci; c++)
    for (int ky = 0; ky < s->kh; ky++)
      for (int kx = 0; kx < s->kw; kx++) {
        const float *src = col + (size_t)((c * s->kh + ky) * s->kw + kx) * (size_t)cols;
        int lo, hi;
        cpu_valid_range(s->pl, kx, s->sw, s->w, ow, &lo, &hi);
        if (lo == hi) continue;
        for (int r = 0; r < nr; r++) {
          int iy = (oy0 + r) * s->sh - s->pt + ky;
          if (iy < 0 || iy >= s->h) continue;
          float *d = dx + ((size_t)c * (size_t)s->h + (size_t)iy) * (size_t)s->w;
          const float *sr = src + (size_t)r * (size_t)ow;
          const int off = kx - s->pl;
          if (s->sw == 1) {
            for (int ox = lo; ox < hi; ox++) d[ox + off] += sr[ox];
          } else {
            for (int ox = lo; ox < hi; ox++) d[ox * s->sw + off] += sr[ox];
          }
        }
      }
}

// ---------------------------------------------------------------- tasks
typedef struct {
  const CpuConvShape *s;
  const float *in;  // x (fwd, filter) or dy (data)
  size_t in_ss;
  const float *in2;  // dy (filter)
  size_t in2_ss;
  const float *w;
  float *out;  // y, dx, or the filter partials
  size_t out_ss;
  int accumulate;
  float *col;  // per-thread column buffers
  size_t col_floats;
  int rows;  // output rows per block
} ConvCtx;

static void conv_fwd_task(void *vctx, int n, int thread) {
  const ConvCtx *c = vctx;
  const CpuConvShape *s = c->s;
  const float *x = c->in + (size_t)n * c->in_ss;
  float *y = c->out + (size_t)n * c->out_ss;
  const int ohw = s->oh * s->ow, K = (int)conv_k(s);
  const float beta = c->accumulate ? 1.0f : 0.0f;
  if (!c->col) {  // pointwise: y[co][hw] = w[co][ci] x[ci][hw]
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, s->co, ohw, s->ci, 1.0f, c->w, s->ci, x,
                ohw, beta, y, ohw);
    return;
  }
  float *col = c->col + (size_t)thread * c->col_floats;
  for (int oy0 = 0; oy0 < s->oh; oy0 += c->rows) {
    int nr = cpu_min(c->rows, s->oh - oy0), cols = nr * s->ow;
    conv_im2col(s, x, oy0, nr, col);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, s->co, cols, K, 1.0f, c->w, K, col, cols,
                beta, y + (size_t)oy0 * (size_t)s->ow, ohw);
  }
}

static void conv_bwd_data_task(void *vctx, int n, int thread) {
  const ConvCtx *c = vctx;
  const CpuConvShape *s = c->s;
  const float *dy = c->in + (size_t)n * c->in_ss;
  float *dx = c->out + (size_t)n * c->out_ss;
  const int ohw = s->oh * s->ow, K = (int)conv_k(s);
  if (!c->col) {  // pointwise: dx[ci][hw] (+)= w^T[ci][co] dy[co][hw]
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, s->ci, ohw, s->co, 1.0f, c->w, s->ci, dy,
                ohw, c->accumulate ? 1.0f : 0.0f, dx, ohw);
    return;
  }
  if (!c->accumulate) memset(dx, 0, sizeof(float) * (size_t)s->ci * (size_t)s->h * (size_t)s->w);
  float *col = c->col + (size_t)thread * c->col_floats;
  for (int oy0 = 0; oy0 < s->oh; oy0 += c->rows) {
    int nr = cpu_min(c->rows, s->oh - oy0), cols = nr * s->ow;
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, cols, s->co, 1.0f, c->w, K,
                dy + (size_t)oy0 * (size_t)s->ow, ohw, 0.0f, col, cols);
    conv_col2im(s, col, oy0, nr, dx);
  }
}

// Partial filter gradient of chunk `chunk` of the batch.
static void conv_bwd_filter_task(void *vctx, int chunk, int thread) {
  const ConvCtx *c = vctx;
  const CpuConvShape *s = c->s;
  const int ohw = s->oh * s->ow, K = (int)conv_k(s), nch = conv_filter_chunks(s);
  float *part = c->out + (size_t)chunk * (size_t)s->co * (size_t)K;
  int n0 = (int)((long long)s->n * chunk / nch), n1 = (int)((long long)s->n * (chunk + 1) / nch);
  float beta = 0.0f;
  float *col = c->col ? c->col + (size_t)thread * c->col_floats : NULL;
  for (int n = n0; n < n1; n++) {
    const float *x = c->in + (size_t)n * c->in_ss;
    const float *dy = c->in2 + (size_t)n * c->in2_ss;
    if (!col) {  // pointwise: part[co][ci] += dy[co][hw] x^T[hw][ci]
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, s->co, s->ci, ohw, 1.0f, dy, ohw, x,
                  ohw, beta, part, s->ci);
      beta = 1.0f;
      continue;
    }
    for (int oy0 = 0; oy0 < s->oh; oy0 += c->rows) {
      int nr = cpu_min(c->rows, s->oh - oy0), cols = nr * s->ow;
      conv_im2col(s, x, oy0, nr, col);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, s->co, K, cols, 1.0f,
                  dy + (size_t)oy0 * (size_t)s->ow, ohw, col, cols, beta, part, K);
      beta = 1.0f;
    }
  }
}

typedef struct {
  const float *part;  // nch partials of wn floats
  int nch;
  size_t wn;
  float *dw;
  int accumulate;
} ConvReduceCtx;

static void conv_reduce_task(void *vctx, int t, int thread) {
  (void)thread;
  const ConvReduceCtx *c = vctx;
  size_t i0 = (size_t)t * CPU_CHUNK, i1 = i0 + CPU_CHUNK < c->wn ? i0 + CPU_CHUNK : c->wn;
  float *restrict dw = c->dw;
  if (!c->accumulate)
    for (size_t i = i0; i < i1; i++) dw[i] = 0.0f;
  for (int k = 0; k < c->nch; k++) {
    const float *restrict p = c->part + (size_t)k * c->wn;
    for (size_t i = i0; i < i1; i++) dw[i] += p[i];
  }
}

// ---------------------------------------------------------------- entry points
static ConvCtx conv_ctx(const CpuConvShape *s, float *ws, int need_col) {
  ConvCtx c;
  memset(&c, 0, sizeof c);
  c.s = s;
  c.rows = conv_block_rows(s);
  if (need_col && !conv_pointwise(s)) {
    c.col = ws;
    c.col_floats = conv_col_floats(s);
  }
  return c;
}

void cpu_conv_fwd(ThreadPool *tp, const CpuConvShape *s, const float *x, size_t x_ss,
                  const float *w, float *y, size_t y_ss, int accumulate, float *ws) {
  if (s->groups != 1) {
    cpu_conv_direct_fwd(tp, s, x, x_ss, w, y, y_ss, accumulate);
    return;
  }
  ConvCtx c = conv_ctx(s, ws, 1);
  c.in = x;
  c.in_ss = x_ss;
  c.w = w;
  c.out = y;
  c.out_ss = y_ss;
  c.accumulate = accumulate;
  tp_run(tp, s->n, conv_fwd_task, &c);
}

void cpu_conv_bwd_data(ThreadPool *tp, const CpuConvShape *s, const float *dy, size_t dy_ss,
                       const float *w, float *dx, size_t dx_ss, int accumulate, float *ws) {
  if (s->groups != 1) {
    cpu_conv_direct_bwd_data(tp, s, dy, dy_ss, w, dx, dx_ss, accumulate);
    return;
  }
  ConvCtx c = conv_ctx(s, ws, 1);
  c.in = dy;
  c.in_ss = dy_ss;
  c.w = w;
  c.out = dx;
  c.out_ss = dx_ss;
  c.accumulate = accumulate;
  tp_run(tp, s->n, conv_bwd_data_task, &c);
}

void cpu_conv_bwd_filter(ThreadPool *tp, const CpuConvShape *s, const float *x, size_t x_ss,
                         const float *dy, size_t dy_ss, float *dw, int accumulate, float *ws) {
  if (s->groups != 1) {
    cpu_conv_direct_bwd_filter(tp, s, x, x_ss, dy, dy_ss, dw, accumulate, ws);
    return;
  }
  const int nch = conv_filter_chunks(s);
  const size_t wn = (size_t)s->co * conv_k(s);
  if (s->n <= 0) {
    if (!accumulate) memset(dw, 0, sizeof(float) * wn);
    return;
  }
  // ws: [nch partials of wn][per-thread column buffers]
  ConvCtx c = conv_ctx(s, ws + wn * (size_t)nch, 1);
  c.in = x;
  c.in_ss = x_ss;
  c.in2 = dy;
  c.in2_ss = dy_ss;
  c.out = ws;
  tp_run(tp, nch, conv_bwd_filter_task, &c);
  ConvReduceCtx r = {ws, nch, wn, dw, accumulate};
  tp_run(tp, (int)cpu_div_up(wn, CPU_CHUNK), conv_reduce_task, &r);
}
