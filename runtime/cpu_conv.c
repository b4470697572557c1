// runtime/cpu_conv.c — dense convolutions (groups == 1) through OpenBLAS sgemm.
//
// Per sample, y[co][oh*ow] = w[co][ci*kh*kw] . col[ci*kh*kw][oh*ow]:
//  - 1x1, stride 1, no padding ("pointwise"): the input is the column matrix,
//    one GEMM per sample, no copy;
//  - anything else (k x k, 1 x k, k x 1, strided 1x1 of a factorized reduce,
//    negative pads): im2col into a per-thread buffer, then one GEMM. Samples
//    whose column matrix exceeds CONV_BLOCK_FLOATS are done in blocks of output
//    rows. Stride-1 "same"-width convolutions (all of NAO's k x k, 1 x k, k x 1)
//    take a flat im2col: one shifted copy per (channel, tap).
// Backward data: stride 1 is the forward convolution of dy with the filter
// transposed and flipped (gather + one GEMM into dx, no scatter); strided
// convolutions use the transposed GEMM into a column buffer and col2im
// (pointwise: one GEMM straight into dx, beta = 1 to accumulate).
// Backward filter: per-sample GEMMs summed into CONV_FILTER_CHUNKS partial
// sums fixed by the batch size, then the partials added in chunk order, so the
// result does not depend on the thread count.
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
// Rows of im2col are a few dozen floats: inline copies beat memcpy calls.
#pragma GCC optimize("no-tree-loop-distribute-patterns")
#endif

#ifndef NAO_CONV_BLOCK
#define NAO_CONV_BLOCK 262144  // 1 MiB: measured best of 16 KiB..4 MiB (docs/cpu-backend.md)
#endif
enum {
  CONV_BLOCK_FLOATS = NAO_CONV_BLOCK,  // im2col floats per block
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

// Stride-1 backward data is the forward convolution of dy with the filter
// transposed (ci <-> co) and flipped, padded by k-1-p: input row oy of output
// row iy and tap ky' is iy - (kh-1-pt) + ky' = iy + pt - ky with ky = kh-1-ky'.
// A gather (im2col) and one GEMM straight into dx then replace the GEMM into a
// column buffer and the scatter-add of col2im.
static int conv_bwd_as_fwd(const CpuConvShape *s) {
  return s->sh == 1 && s->sw == 1 && !conv_pointwise(s);
}

static CpuConvShape conv_transposed(const CpuConvShape *s) {
  CpuConvShape t = {s->n, s->co, s->oh, s->ow, s->ci, s->h, s->w, s->kh, s->kw,
                    1, 1, s->kh - 1 - s->pt, s->kw - 1 - s->pl, 1, s->algo};
  return t;
}

// The direct AVX2 kernels serve every pass of k x k, 1 x k and k x 1
// convolutions with strides up to 2; 1x1 convolutions (pointwise or strided,
// as in the factorized reduce) have their own (conv_use_pw): the padded-image
// kernels measured slower than the GEMM there, the 1x1 products faster.
static int conv_use_direct(const CpuConvShape *s, CpuConvOp op) {
  if (s->algo == CPU_CONV_PORTABLE || s->groups != 1 || (s->kh == 1 && s->kw == 1)) return 0;
  if (op == CPU_CONV_FWD || op == CPU_CONV_BWD_FILTER) return cpu_conv_direct_avx2_fits(s);
  if (op != CPU_CONV_BWD_DATA) return 0;
  if (s->sh != 1 || s->sw != 1) return cpu_conv_direct_avx2_bwd_fits(s);
  CpuConvShape t = conv_transposed(s);
  return cpu_conv_direct_avx2_fits(&t);
}

// 1x1 convolutions (pointwise, and the factorized reduce's strided ones) take
// the AVX2 products of cpu_conv_pw_avx2.c on every pass.
static int conv_use_pw(const CpuConvShape *s) {
  return s->algo != CPU_CONV_PORTABLE && cpu_conv_pw_avx2_fits(s);
}

// 3x3 stride-1 convolutions take Winograd's F(2x2, 3x3) (cpu_conv_wino_avx2.c)
// for the forward and backward data passes unless the direct kernels or the
// portable path are asked for; the filter gradient stays direct (faster).
static int conv_use_wino(const CpuConvShape *s, CpuConvOp op) {
  if (s->algo == CPU_CONV_PORTABLE || s->algo == CPU_CONV_AVX2 || op == CPU_CONV_BWD_FILTER)
    return 0;
  if (op == CPU_CONV_FWD) return cpu_conv_wino_avx2_fits(s);
  CpuConvShape t = conv_transposed(s);
  return s->sh == 1 && s->sw == 1 && cpu_conv_wino_avx2_fits(&t);
}

// Floats of the transposed filter, rounded up to keep what follows aligned.
static size_t conv_wt_floats(const CpuConvShape *s) {
  return ((size_t)s->co * conv_k(s) + 15) & ~(size_t)15;
}

size_t cpu_conv_ws_floats(const CpuConvShape *s, CpuConvOp op, int threads) {
  if (threads < 1) threads = 1;
  if (s->groups != 1) return cpu_conv_direct_ws_floats(s, op, threads);
  if (conv_use_wino(s, op)) {
    if (op == CPU_CONV_FWD) return cpu_conv_wino_avx2_ws_floats(s, threads);
    CpuConvShape t = conv_transposed(s);
    return cpu_conv_wino_avx2_ws_floats(&t, threads);
  }
  if (conv_use_pw(s)) {
    size_t w = cpu_conv_pw_avx2_ws_floats(s, op, threads);
    return op == CPU_CONV_BWD_FILTER ? (size_t)s->co * conv_k(s) * (size_t)conv_filter_chunks(s) + w : w;
  }
  if (conv_use_direct(s, op)) {
    if (op == CPU_CONV_FWD) return cpu_conv_direct_avx2_ws_floats(s, threads);
    if (op == CPU_CONV_BWD_DATA && (s->sh != 1 || s->sw != 1))
      return cpu_conv_direct_avx2_bwd_ws_floats(s, threads);
    if (op == CPU_CONV_BWD_FILTER)
      return (size_t)s->co * conv_k(s) * (size_t)conv_filter_chunks(s) +
             cpu_conv_direct_avx2_filter_ws_floats(s, threads, conv_filter_chunks(s));
    CpuConvShape t = conv_transposed(s);
    return cpu_conv_direct_avx2_ws_floats(&t, threads);
  }
  if (op == CPU_CONV_BWD_DATA && conv_bwd_as_fwd(s)) {
    CpuConvShape t = conv_transposed(s);
    return conv_wt_floats(s) + conv_col_floats(&t) * (size_t)threads;
  }
  size_t col = conv_pointwise(s) ? 0 : conv_col_floats(s) * (size_t)threads;
  if (op != CPU_CONV_BWD_FILTER) return col;
  size_t wn = (size_t)s->co * conv_k(s);
  return col + wn * (size_t)conv_filter_chunks(s);
}

// ---------------------------------------------------------------- im2col / col2im
// col[(c*kh + ky)*kw + kx][(oy - oy0)*ow + ox] = x[c][oy*sh - pt + ky][ox*sw - pl + kx]
// for oy in [oy0, oy0 + nr); zero outside the image.
// im2col for stride 1 with ow == w ("same" width): consecutive output rows
// read consecutive input rows, so each (c, ky, kx) block is one flat copy of
// the in-image rows, shifted by the column offset, whose few columns that fall
// outside the image are then zeroed.
static void conv_im2col_flat(const CpuConvShape *s, const float *restrict x, int oy0, int nr,
                             float *restrict col) {
  const int ow = s->ow, cols = nr * ow;
  for (int c = 0; c < s->ci; c++) {
    const float *restrict plane = x + (size_t)c * (size_t)s->h * (size_t)s->w;
    for (int ky = 0; ky < s->kh; ky++) {
      int r0, r1;  // block rows whose input row is in the image
      cpu_valid_range(s->pt - oy0, ky, 1, s->h, nr, &r0, &r1);
      for (int kx = 0; kx < s->kw; kx++) {
        float *restrict d = col + (size_t)((c * s->kh + ky) * s->kw + kx) * (size_t)cols;
        const int off = kx - s->pl;
        const int lo = cpu_min(off < 0 ? -off : 0, ow), hi = cpu_max(lo, cpu_min(ow, s->w - off));
        for (int j = 0; j < r0 * ow; j++) d[j] = 0.0f;
        for (int j = r1 * ow; j < cols; j++) d[j] = 0.0f;
        if (r1 <= r0) continue;
        const long base = (long)(oy0 + r0 - s->pt + ky) * s->w + off;  // input of block element r0*ow
        const int j0 = off < 0 ? -off : 0, j1 = (r1 - r0) * ow - (off > 0 ? off : 0);
        float *restrict dr = d + (size_t)r0 * (size_t)ow;
        for (int j = j0; j < j1; j++) dr[j] = plane[base + j];
        for (int r = r0; r < r1; r++) {
          for (int ox = 0; ox < lo; ox++) d[(size_t)r * ow + ox] = 0.0f;
          for (int ox = hi; ox < ow; ox++) d[(size_t)r * ow + ox] = 0.0f;
        }
      }
    }
  }
}

static void conv_im2col(const CpuConvShape *s, const float *restrict x, int oy0, int nr,
                        float *restrict col) {
  if (s->sw == 1 && s->sh == 1 && s->ow == s->w) {
    conv_im2col_flat(s, x, oy0, nr, col);
    return;
  }
  const int ow = s->ow, cols = nr * ow, sw = s->sw;
  for (int c = 0; c < s->ci; c++)
    for (int ky = 0; ky < s->kh; ky++)
      for (int kx = 0; kx < s->kw; kx++) {
        float *restrict dst = col + (size_t)((c * s->kh + ky) * s->kw + kx) * (size_t)cols;
        int lo, hi;
        cpu_valid_range(s->pl, kx, sw, s->w, ow, &lo, &hi);
        const int off = kx - s->pl;  // input column of output ox: ox*sw + off
        for (int r = 0; r < nr; r++) {
          float *restrict d = dst + (size_t)r * (size_t)ow;
          const int iy = (oy0 + r) * s->sh - s->pt + ky;
          if (iy < 0 || iy >= s->h) {
            for (int ox = 0; ox < ow; ox++) d[ox] = 0.0f;
            continue;
          }
          const float *restrict src = x + ((size_t)c * (size_t)s->h + (size_t)iy) * (size_t)s->w;
          for (int ox = 0; ox < lo; ox++) d[ox] = 0.0f;
          if (sw == 1) {
            for (int ox = lo; ox < hi; ox++) d[ox] = src[ox + off];
          } else {
            for (int ox = lo; ox < hi; ox++) d[ox] = src[ox * sw + off];
          }
          for (int ox = hi; ox < ow; ox++) d[ox] = 0.0f;
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
    cpu_conv_direct_fwd(tp, s, x, x_ss, w, y, y_ss, accumulate, ws);
    return;
  }
  if (conv_use_wino(s, CPU_CONV_FWD)) {
    cpu_conv_wino_avx2_fwd(tp, s, x, x_ss, w, 0, y, y_ss, accumulate, ws);
    return;
  }
  if (conv_use_pw(s)) {
    cpu_conv_pw_avx2(tp, s, CPU_CONV_FWD, x, x_ss, w, y, y_ss, accumulate, ws);
    return;
  }
  if (conv_use_direct(s, CPU_CONV_FWD)) {
    cpu_conv_direct_avx2(tp, s, x, x_ss, w, 0, y, y_ss, accumulate, ws);
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
    cpu_conv_direct_bwd_data(tp, s, dy, dy_ss, w, dx, dx_ss, accumulate, ws);
    return;
  }
  if (conv_use_wino(s, CPU_CONV_BWD_DATA)) {
    CpuConvShape t = conv_transposed(s);
    cpu_conv_wino_avx2_fwd(tp, &t, dy, dy_ss, w, 1, dx, dx_ss, accumulate, ws);
    return;
  }
  if (conv_use_pw(s)) {
    cpu_conv_pw_avx2(tp, s, CPU_CONV_BWD_DATA, dy, dy_ss, w, dx, dx_ss, accumulate, ws);
    return;
  }
  if (conv_use_direct(s, CPU_CONV_BWD_DATA) && (s->sh != 1 || s->sw != 1)) {
    cpu_conv_direct_avx2_bwd(tp, s, dy, dy_ss, w, dx, dx_ss, accumulate, ws);
    return;
  }
  if (conv_use_direct(s, CPU_CONV_BWD_DATA)) {
    CpuConvShape t = conv_transposed(s);
    cpu_conv_direct_avx2(tp, &t, dy, dy_ss, w, 1, dx, dx_ss, accumulate, ws);
    return;
  }
  if (conv_bwd_as_fwd(s)) {
    // wt[ci][co][kh-1-ky][kw-1-kx] = w[co][ci][ky][kx]
    const int kk = s->kh * s->kw;
    for (int o = 0; o < s->co; o++)
      for (int i = 0; i < s->ci; i++)
        for (int k = 0; k < kk; k++)
          ws[((size_t)i * (size_t)s->co + (size_t)o) * (size_t)kk + (size_t)(kk - 1 - k)] =
              w[((size_t)o * (size_t)s->ci + (size_t)i) * (size_t)kk + (size_t)k];
    CpuConvShape t = conv_transposed(s);
    ConvCtx c = conv_ctx(&t, ws + conv_wt_floats(s), 1);
    c.in = dy;
    c.in_ss = dy_ss;
    c.w = ws;
    c.out = dx;
    c.out_ss = dx_ss;
    c.accumulate = accumulate;
    tp_run(tp, s->n, conv_fwd_task, &c);
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
  if (conv_use_pw(s)) {  // ws: [nch partials][the kernel's]
    cpu_conv_pw_avx2_filter(tp, s, x, x_ss, dy, dy_ss, nch, ws, ws + wn * (size_t)nch);
    ConvReduceCtx r = {ws, nch, wn, dw, accumulate};
    tp_run(tp, (int)cpu_div_up(wn, CPU_CHUNK), conv_reduce_task, &r);
    return;
  }
  if (conv_use_direct(s, CPU_CONV_BWD_FILTER)) {  // ws: [nch partials][direct kernel's]
    cpu_conv_direct_avx2_filter(tp, s, x, x_ss, dy, dy_ss, nch, ws, ws + wn * (size_t)nch);
    ConvReduceCtx r = {ws, nch, wn, dw, accumulate};
    tp_run(tp, (int)cpu_div_up(wn, CPU_CHUNK), conv_reduce_task, &r);
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
