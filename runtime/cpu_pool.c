// runtime/cpu_pool.c — max and average pooling (every IrPoolAttr variant), and
// global average pooling, forward and backward.
//
// One task per (sample, channel) plane. Windows are separable: the forward
// takes every input row's horizontal window max / sum once, then combines kh
// of those rows per output row; the average's backward mirrors it (vertical
// sums of dy / divisor, then horizontal scatter). Loops run along rows over
// the outputs whose input is in the image (cpu_valid_range), so they vectorise
// for stride 1. Planes too large for the stack buffer (or windows of one row)
// take the direct per-output-row form. The divisor of an average without
// counted padding is (in-image rows) * (in-image columns) of the window. Max backward scans each window in row-major order
// and routes the gradient to the first maximum; with pad_counted a padded zero
// can be that maximum, and its gradient is dropped (the reference pads with a
// real zero tensor, whose gradient is discarded).
#include <math.h>
#include <string.h>

#include "compiler/util.h"
#include "runtime/cpu_kernels.h"
#include "runtime/cpu_util.h"

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O3")
#endif

enum {
  POOL_SEG = 256,  // output columns per segment of the backward's row buffers
  POOL_MAX_K = 64,  // window rows / columns (the executor checks)
  POOL_SEP_MAX = 16384,  // floats of the separable passes' row buffer (on the stack)
};

typedef struct {
  const CpuPoolShape *s;
  const float *x;
  size_t x_ss;
  const float *dy;
  size_t dy_ss;
  float *y;  // y or dx
  size_t y_ss;
  int accumulate;
  int lo[POOL_MAX_K], hi[POOL_MAX_K];  // per window column: outputs whose input is in the image
} PoolCtx;

static void pool_ctx_init(PoolCtx *c, const CpuPoolShape *s) {
  NAO_ASSERT(s->kh <= POOL_MAX_K && s->kw <= POOL_MAX_K);
  c->s = s;
  for (int kx = 0; kx < s->kw; kx++) cpu_valid_range(s->pl, kx, s->sw, s->w, s->ow, &c->lo[kx], &c->hi[kx]);
}

// In-image taps of the window of output o along one axis.
static inline int pool_taps(int o, int stride, int pad, int k, int in) {
  int i0 = o * stride - pad, i1 = i0 + k;
  if (i0 < 0) i0 = 0;
  if (i1 > in) i1 = in;
  return i1 > i0 ? i1 - i0 : 0;
}

// yr[ox] = max / sum (yr[ox], the window's taps in input row xr) for every ox.
static void pool_row_taps(const PoolCtx *c, const float *restrict xr, float *restrict yr) {
  const CpuPoolShape *s = c->s;
  const int sw = s->sw;
  for (int kx = 0; kx < s->kw; kx++) {
    const int lo = c->lo[kx], hi = c->hi[kx], off = kx - s->pl;
    if (s->is_max) {
      if (sw == 1) {
        for (int ox = lo; ox < hi; ox++) yr[ox] = xr[ox + off] > yr[ox] ? xr[ox + off] : yr[ox];
      } else {
        for (int ox = lo; ox < hi; ox++) yr[ox] = xr[ox * sw + off] > yr[ox] ? xr[ox * sw + off] : yr[ox];
      }
    } else if (sw == 1) {
      for (int ox = lo; ox < hi; ox++) yr[ox] += xr[ox + off];
    } else {
      for (int ox = lo; ox < hi; ox++) yr[ox] += xr[ox * sw + off];
    }
  }
}

static void pool_row_init(const PoolCtx *c, float *restrict yr) {
  const float init = c->s->is_max ? -INFINITY : 0.0f;
  for (int ox = 0; ox < c->s->ow; ox++) yr[ox] = init;
}

// From the window's max / sum over `rows` in-image rows to the output.
static void pool_finish_row(const PoolCtx *c, float *restrict yr, int rows) {
  const CpuPoolShape *s = c->s;
  const int full = s->kh * s->kw;
  for (int ox = 0; ox < s->ow; ox++) {
    int cells = rows * pool_taps(ox, s->sw, s->pl, s->kw, s->w);
    if (s->is_max) {
      if (cells == 0) yr[ox] = 0.0f;  // no in-image cell: all padding (counted or not)
      else if (s->pad_counted && cells < full && yr[ox] < 0.0f) yr[ox] = 0.0f;
    } else {
      int div = s->pad_counted ? full : cells;
      yr[ox] = div ? yr[ox] / (float)div : 0.0f;
    }
  }
}

static void pool_fwd_row(const PoolCtx *c, const float *restrict x, int oy, float *restrict yr) {
  const CpuPoolShape *s = c->s;
  pool_row_init(c, yr);
  int rows = 0;
  for (int ky = 0; ky < s->kh; ky++) {
    int iy = oy * s->sh - s->pt + ky;
    if (iy < 0 || iy >= s->h) continue;
    rows++;
    pool_row_taps(c, x + (size_t)iy * (size_t)s->w, yr);
  }
  pool_finish_row(c, yr, rows);
}

// Separable: every input row's horizontal window results once (r, h x ow),
// then each output row combines kh of them: kh + kw operations an output
// instead of kh * kw. Max is exact in any order; sums round differently.
static void pool_fwd_sep(const PoolCtx *c, const float *restrict x, float *restrict y,
                         float *restrict r) {
  const CpuPoolShape *s = c->s;
  const int ow = s->ow;
  for (int iy = 0; iy < s->h; iy++) {
    pool_row_init(c, r + (size_t)iy * (size_t)ow);
    pool_row_taps(c, x + (size_t)iy * (size_t)s->w, r + (size_t)iy * (size_t)ow);
  }
  for (int oy = 0; oy < s->oh; oy++) {
    float *restrict yr = y + (size_t)oy * (size_t)ow;
    pool_row_init(c, yr);
    int rows = 0;
    for (int ky = 0; ky < s->kh; ky++) {
      int iy = oy * s->sh - s->pt + ky;
      if (iy < 0 || iy >= s->h) continue;
      rows++;
      const float *restrict rr = r + (size_t)iy * (size_t)ow;
      if (s->is_max) {
        for (int ox = 0; ox < ow; ox++) yr[ox] = rr[ox] > yr[ox] ? rr[ox] : yr[ox];
      } else {
        for (int ox = 0; ox < ow; ox++) yr[ox] += rr[ox];
      }
    }
    pool_finish_row(c, yr, rows);
  }
}

static void pool_fwd_task(void *vctx, int t, int thread) {
  (void)thread;
  const PoolCtx *c = vctx;
  const CpuPoolShape *s = c->s;
  const int n = t / s->c, ch = t % s->c;
  const float *x = c->x + (size_t)n * c->x_ss + (size_t)ch * (size_t)s->h * (size_t)s->w;
  float *y = c->y + (size_t)n * c->y_ss + (size_t)ch * (size_t)s->oh * (size_t)s->ow;
  if ((size_t)s->h * (size_t)s->ow <= POOL_SEP_MAX && s->kh > 1) {
    float r[POOL_SEP_MAX];
    pool_fwd_sep(c, x, y, r);
    return;
  }
  for (int oy = 0; oy < s->oh; oy++) pool_fwd_row(c, x, oy, y + (size_t)oy * (size_t)s->ow);
}

void cpu_pool_fwd(ThreadPool *tp, const CpuPoolShape *s, const float *x, size_t x_ss, float *y,
                  size_t y_ss) {
  PoolCtx c;
  pool_ctx_init(&c, s);
  c.x = x;
  c.x_ss = x_ss;
  c.y = y;
  c.y_ss = y_ss;
  tp_run(tp, s->n * s->c, pool_fwd_task, &c);
}

// ---------------------------------------------------------------- backward
// dx[window of (oy, ox)] += dy[ox] / divisor for every in-image cell, outputs
// [o0, o1) of the row.
static void pool_avg_bwd_seg(const PoolCtx *c, const float *restrict dyr, int oy, int o0, int o1,
                             float *restrict dx) {
  const CpuPoolShape *s = c->s;
  const int rows = pool_taps(oy, s->sh, s->pt, s->kh, s->h), sw = s->sw;
  float g[POOL_SEG];
  for (int ox = o0; ox < o1; ox++) {
    int div = s->pad_counted ? s->kh * s->kw : rows * pool_taps(ox, sw, s->pl, s->kw, s->w);
    g[ox - o0] = div ? dyr[ox] / (float)div : 0.0f;
  }
  for (int ky = 0; ky < s->kh; ky++) {
    int iy = oy * s->sh - s->pt + ky;
    if (iy < 0 || iy >= s->h) continue;
    float *dr = dx + (size_t)iy * (size_t)s->w;
    for (int kx = 0; kx < s->kw; kx++) {
      const int lo = cpu_max(c->lo[kx], o0), hi = cpu_min(c->hi[kx], o1), off = kx - s->pl;
      if (sw == 1) {
        for (int ox = lo; ox < hi; ox++) dr[ox + off] += g[ox - o0];
      } else {
        for (int ox = lo; ox < hi; ox++) dr[ox * sw + off] += g[ox - o0];
      }
    }
  }
}

// The gradient of each output of [o0, o1) goes to the first maximum of its
// window: the taps are visited in window order keeping the best value and its
// index (-1: a counted padded zero, -2: nothing yet), a strict > keeping the
// first of equal values.
static void pool_max_bwd_seg(const PoolCtx *c, const float *restrict x, const float *restrict dyr,
                             int oy, int o0, int o1, float *restrict dx) {
  const CpuPoolShape *s = c->s;
  const int sw = s->sw, len = o1 - o0;
  float best[POOL_SEG];
  int arg[POOL_SEG];
  for (int i = 0; i < len; i++) {
    best[i] = -INFINITY;
    arg[i] = -2;
  }
  for (int ky = 0; ky < s->kh; ky++) {
    const int iy = oy * s->sh - s->pt + ky, row_in = iy >= 0 && iy < s->h;
    for (int kx = 0; kx < s->kw; kx++) {
      int lo = row_in ? cpu_max(c->lo[kx], o0) : o1, hi = row_in ? cpu_min(c->hi[kx], o1) : o1;
      if (hi < lo) hi = lo;
      if (s->pad_counted)  // outputs whose tap is a padded zero
        for (int ox = o0; ox < o1; ox++)
          if ((ox < lo || ox >= hi) && (arg[ox - o0] == -2 || 0.0f > best[ox - o0])) {
            best[ox - o0] = 0.0f;
            arg[ox - o0] = -1;
          }
      const float *xr = x + (size_t)(row_in ? iy : 0) * (size_t)s->w;
      const int base = (row_in ? iy : 0) * s->w + kx - s->pl;
      for (int ox = lo; ox < hi; ox++) {
        const float v = xr[ox * sw + kx - s->pl];
        const int better = v > best[ox - o0] || arg[ox - o0] == -2;
        best[ox - o0] = better ? v : best[ox - o0];
        arg[ox - o0] = better ? base + ox * sw : arg[ox - o0];
      }
    }
  }
  for (int i = 0; i < len; i++)
    if (arg[i] >= 0) dx[arg[i]] += dyr[o0 + i];
}

// Separable average backward: v[iy][ox] = sum of g[oy][ox] = dy / divisor over
// the output rows whose window covers input row iy (kh row additions an output),
// then dx[iy][ix] += v[iy][ox] over the columns ox covering ix (kw an input).
static void pool_avg_bwd_sep(const PoolCtx *c, const float *restrict dy, float *restrict dx,
                             float *restrict v) {
  const CpuPoolShape *s = c->s;
  const int ow = s->ow, sw = s->sw;
  for (size_t i = 0; i < (size_t)s->h * (size_t)ow; i++) v[i] = 0.0f;
  float g[POOL_SEG];
  for (int oy = 0; oy < s->oh; oy++) {
    const int rows = pool_taps(oy, s->sh, s->pt, s->kh, s->h);
    const float *restrict dyr = dy + (size_t)oy * (size_t)ow;
    for (int ox = 0; ox < ow; ox++) {
      int div = s->pad_counted ? s->kh * s->kw : rows * pool_taps(ox, sw, s->pl, s->kw, s->w);
      g[ox] = div ? dyr[ox] / (float)div : 0.0f;
    }
    for (int ky = 0; ky < s->kh; ky++) {
      int iy = oy * s->sh - s->pt + ky;
      if (iy < 0 || iy >= s->h) continue;
      float *restrict vr = v + (size_t)iy * (size_t)ow;
      for (int ox = 0; ox < ow; ox++) vr[ox] += g[ox];
    }
  }
  for (int iy = 0; iy < s->h; iy++) {
    const float *restrict vr = v + (size_t)iy * (size_t)ow;
    float *restrict dr = dx + (size_t)iy * (size_t)s->w;
    for (int kx = 0; kx < s->kw; kx++) {
      const int lo = c->lo[kx], hi = c->hi[kx], off = kx - s->pl;
      if (sw == 1) {
        for (int ox = lo; ox < hi; ox++) dr[ox + off] += vr[ox];
      } else {
        for (int ox = lo; ox < hi; ox++) dr[ox * sw + off] += vr[ox];
      }
    }
  }
}

static void pool_bwd_task(void *vctx, int t, int thread) {
  (void)thread;
  const PoolCtx *c = vctx;
  const CpuPoolShape *s = c->s;
  const int n = t / s->c, ch = t % s->c;
  const size_t hw = (size_t)s->h * (size_t)s->w, ohw = (size_t)s->oh * (size_t)s->ow;
  const float *x = c->x + (size_t)n * c->x_ss + (size_t)ch * hw;
  const float *dy = c->dy + (size_t)n * c->dy_ss + (size_t)ch * ohw;
  float *dx = c->y + (size_t)n * c->y_ss + (size_t)ch * hw;
  if (!c->accumulate) memset(dx, 0, sizeof(float) * hw);
  if (!s->is_max && s->kh > 1 && s->ow <= POOL_SEG && (size_t)s->h * (size_t)s->ow <= POOL_SEP_MAX) {
    float v[POOL_SEP_MAX];
    pool_avg_bwd_sep(c, dy, dx, v);
    return;
  }
  for (int oy = 0; oy < s->oh; oy++) {
    const float *dyr = dy + (size_t)oy * (size_t)s->ow;
    for (int o0 = 0; o0 < s->ow; o0 += POOL_SEG) {
      const int o1 = cpu_min(o0 + POOL_SEG, s->ow);
      if (s->is_max) pool_max_bwd_seg(c, x, dyr, oy, o0, o1, dx);
      else pool_avg_bwd_seg(c, dyr, oy, o0, o1, dx);
    }
  }
}

void cpu_pool_bwd(ThreadPool *tp, const CpuPoolShape *s, const float *x, size_t x_ss,
                  const float *dy, size_t dy_ss, float *dx, size_t dx_ss, int accumulate) {
  PoolCtx c;
  pool_ctx_init(&c, s);
  c.x = x;
  c.x_ss = x_ss;
  c.dy = dy;
  c.dy_ss = dy_ss;
  c.y = dx;
  c.y_ss = dx_ss;
  c.accumulate = accumulate;
  tp_run(tp, s->n * s->c, pool_bwd_task, &c);
}

// ---------------------------------------------------------------- global average pool
typedef struct {
  int c, hw;
  const float *a;
  size_t a_ss;
  float *b;
  size_t b_ss;
  int accumulate;
} GapCtx;

static void gap_fwd_task(void *vctx, int n, int thread) {
  (void)thread;
  const GapCtx *g = vctx;
  const float *x = g->a + (size_t)n * g->a_ss;
  float *y = g->b + (size_t)n * g->b_ss;
  for (int ch = 0; ch < g->c; ch++) {
    float m = cpu_sum8(x + (size_t)ch * (size_t)g->hw, (size_t)g->hw) / (float)g->hw;
    y[ch] = g->accumulate ? y[ch] + m : m;
  }
}

void cpu_gap_fwd(ThreadPool *tp, int n, int c, int hw, const float *x, size_t x_ss, float *y,
                 size_t y_ss, int accumulate) {
  GapCtx g = {c, hw, x, x_ss, y, y_ss, accumulate};
  tp_run(tp, n, gap_fwd_task, &g);
}

static void gap_bwd_task(void *vctx, int n, int thread) {
  (void)thread;
  const GapCtx *g = vctx;
  const float *dy = g->a + (size_t)n * g->a_ss;
  float *dx = g->b + (size_t)n * g->b_ss;
  for (int ch = 0; ch < g->c; ch++) {
    const float v = dy[ch] / (float)g->hw;
    float *restrict d = dx + (size_t)ch * (size_t)g->hw;
    if (g->accumulate) {
      for (int i = 0; i < g->hw; i++) d[i] += v;
    } else {
      for (int i = 0; i < g->hw; i++) d[i] = v;
    }
  }
}

void cpu_gap_bwd(ThreadPool *tp, int n, int c, int hw, const float *dy, size_t dy_ss, float *dx,
                 size_t dx_ss, int accumulate) {
  GapCtx g = {c, hw, dy, dy_ss, dx, dx_ss, accumulate};
  tp_run(tp, n, gap_bwd_task, &g);
}
