// runtime/cpu_conv_direct.c — grouped and depthwise convolutions as direct loops
// (depthwise ones go to cpu_conv_dw_avx2.c where the CPU and shape allow).
//
// One task owns one output plane (forward), one input plane (backward data)
// or one output channel's filter (backward filter), so no two tasks write the
// same float and every sum runs in a fixed order. The inner loops run along a
// row over the range of outputs whose input lies in the image
// (cpu_valid_range), without bounds tests, so they vectorise for stride 1.
// The filter gradient sums each row's dot product in float (eight lanes) and
// the rows in double.
#include <string.h>

#include "runtime/cpu_conv_internal.h"
#include "runtime/cpu_util.h"

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O3")
#endif

size_t cpu_conv_direct_ws_floats(const CpuConvShape *s, CpuConvOp op, int threads) {
  if (cpu_conv_dw_avx2_fits(s, op)) return cpu_conv_dw_avx2_ws_floats(s, op, threads);
  if (op != CPU_CONV_BWD_FILTER) return 0;
  size_t per = (size_t)(s->ci / s->groups) * (size_t)s->kh * (size_t)s->kw;
  return per * 2 * (size_t)threads;  // doubles
}

typedef struct {
  const CpuConvShape *s;
  const float *a;  // x (fwd, filter) or dy (data)
  size_t a_ss;
  const float *b;  // dy (filter)
  size_t b_ss;
  const float *w;
  float *out;
  size_t out_ss;
  int accumulate;
  double *scratch;  // per thread (filter)
} DirectCtx;

// yr[ox] += wv * xr[ox*sw + off] for ox in [lo, hi).
static inline void direct_row_fwd(float *restrict yr, const float *restrict xr, float wv, int lo,
                                  int hi, int sw, int off) {
  if (sw == 1) {
    for (int ox = lo; ox < hi; ox++) yr[ox] += wv * xr[ox + off];
  } else {
    for (int ox = lo; ox < hi; ox++) yr[ox] += wv * xr[ox * sw + off];
  }
}

static void direct_fwd_task(void *vctx, int t, int thread) {
  (void)thread;
  const DirectCtx *c = vctx;
  const CpuConvShape *s = c->s;
  const int n = t / s->co, oc = t % s->co;
  const int cig = s->ci / s->groups, cog = s->co / s->groups, g = oc / cog;
  const size_t hw = (size_t)s->h * (size_t)s->w, ohw = (size_t)s->oh * (size_t)s->ow;
  float *y = c->out + (size_t)n * c->out_ss + (size_t)oc * ohw;
  if (!c->accumulate) memset(y, 0, sizeof(float) * ohw);
  for (int icl = 0; icl < cig; icl++) {
    const float *x = c->a + (size_t)n * c->a_ss + (size_t)(g * cig + icl) * hw;
    const float *wp = c->w + (size_t)(oc * cig + icl) * (size_t)(s->kh * s->kw);
    for (int ky = 0; ky < s->kh; ky++) {
      int ylo, yhi;
      cpu_valid_range(s->pt, ky, s->sh, s->h, s->oh, &ylo, &yhi);
      for (int kx = 0; kx < s->kw; kx++) {
        int lo, hi;
        cpu_valid_range(s->pl, kx, s->sw, s->w, s->ow, &lo, &hi);
        const float wv = wp[ky * s->kw + kx];
        for (int oy = ylo; oy < yhi; oy++) {
          int iy = oy * s->sh - s->pt + ky;
          direct_row_fwd(y + (size_t)oy * (size_t)s->ow, x + (size_t)iy * (size_t)s->w, wv, lo,
                         hi, s->sw, kx - s->pl);
        }
      }
    }
  }
}

// dxr[ox*sw + off] += wv * dyr[ox] for ox in [lo, hi).
static inline void direct_row_bwd(float *restrict dxr, const float *restrict dyr, float wv, int lo,
                                  int hi, int sw, int off) {
  if (sw == 1) {
    for (int ox = lo; ox < hi; ox++) dxr[ox + off] += wv * dyr[ox];
  } else {
    for (int ox = lo; ox < hi; ox++) dxr[ox * sw + off] += wv * dyr[ox];
  }
}

static void direct_bwd_data_task(void *vctx, int t, int thread) {
  (void)thread;
  const DirectCtx *c = vctx;
  const CpuConvShape *s = c->s;
  const int n = t / s->ci, ic = t % s->ci;
  const int cig = s->ci / s->groups, cog = s->co / s->groups, g = ic / cig, icl = ic % cig;
  const size_t hw = (size_t)s->h * (size_t)s->w, ohw = (size_t)s->oh * (size_t)s->ow;
  float *dx = c->out + (size_t)n * c->out_ss + (size_t)ic * hw;
  if (!c->accumulate) memset(dx, 0, sizeof(float) * hw);
  for (int ocl = 0; ocl < cog; ocl++) {
    const int oc = g * cog + ocl;
    const float *dy = c->a + (size_t)n * c->a_ss + (size_t)oc * ohw;
    const float *wp = c->w + (size_t)(oc * cig + icl) * (size_t)(s->kh * s->kw);
    for (int ky = 0; ky < s->kh; ky++) {
      int ylo, yhi;
      cpu_valid_range(s->pt, ky, s->sh, s->h, s->oh, &ylo, &yhi);
      for (int kx = 0; kx < s->kw; kx++) {
        int lo, hi;
        cpu_valid_range(s->pl, kx, s->sw, s->w, s->ow, &lo, &hi);
        const float wv = wp[ky * s->kw + kx];
        for (int oy = ylo; oy < yhi; oy++) {
          int iy = oy * s->sh - s->pt + ky;
          direct_row_bwd(dx + (size_t)iy * (size_t)s->w, dy + (size_t)oy * (size_t)s->ow, wv, lo,
                         hi, s->sw, kx - s->pl);
        }
      }
    }
  }
}

// sum over ox in [lo, hi) of dyr[ox] * xr[ox*sw + off].
static inline float direct_row_dot(const float *restrict dyr, const float *restrict xr, int lo,
                                   int hi, int sw, int off) {
  if (sw == 1) return cpu_dot8(dyr + lo, xr + lo + off, (size_t)(hi - lo));
  float acc = 0.0f;
  for (int ox = lo; ox < hi; ox++) acc += dyr[ox] * xr[ox * sw + off];
  return acc;
}

static void direct_bwd_filter_task(void *vctx, int oc, int thread) {
  const DirectCtx *c = vctx;
  const CpuConvShape *s = c->s;
  const int cig = s->ci / s->groups, cog = s->co / s->groups, g = oc / cog;
  const int kk = s->kh * s->kw;
  const size_t hw = (size_t)s->h * (size_t)s->w, ohw = (size_t)s->oh * (size_t)s->ow;
  double *acc = c->scratch + (size_t)thread * (size_t)(cig * kk);
  for (int i = 0; i < cig * kk; i++) acc[i] = 0.0;
  for (int n = 0; n < s->n; n++) {
    const float *dy = c->b + (size_t)n * c->b_ss + (size_t)oc * ohw;
    for (int icl = 0; icl < cig; icl++) {
      const float *x = c->a + (size_t)n * c->a_ss + (size_t)(g * cig + icl) * hw;
      for (int ky = 0; ky < s->kh; ky++) {
        int ylo, yhi;
        cpu_valid_range(s->pt, ky, s->sh, s->h, s->oh, &ylo, &yhi);
        for (int kx = 0; kx < s->kw; kx++) {
          int lo, hi;
          cpu_valid_range(s->pl, kx, s->sw, s->w, s->ow, &lo, &hi);
          double sum = 0.0;
          for (int oy = ylo; oy < yhi; oy++) {
            int iy = oy * s->sh - s->pt + ky;
            sum += direct_row_dot(dy + (size_t)oy * (size_t)s->ow, x + (size_t)iy * (size_t)s->w,
                                  lo, hi, s->sw, kx - s->pl);
          }
          acc[icl * kk + ky * s->kw + kx] += sum;
        }
      }
    }
  }
  float *dw = c->out + (size_t)oc * (size_t)(cig * kk);
  for (int i = 0; i < cig * kk; i++) dw[i] = c->accumulate ? dw[i] + (float)acc[i] : (float)acc[i];
}

void cpu_conv_direct_fwd(ThreadPool *tp, const CpuConvShape *s, const float *x, size_t x_ss,
                         const float *w, float *y, size_t y_ss, int accumulate, float *ws) {
  if (cpu_conv_dw_avx2_fits(s, CPU_CONV_FWD)) {
    cpu_conv_dw_avx2_fwd(tp, s, 0, x, x_ss, w, y, y_ss, accumulate, ws);
    return;
  }
  DirectCtx c = {s, x, x_ss, NULL, 0, w, y, y_ss, accumulate, NULL};
  tp_run(tp, s->n * s->co, direct_fwd_task, &c);
}

void cpu_conv_direct_bwd_data(ThreadPool *tp, const CpuConvShape *s, const float *dy,
                              size_t dy_ss, const float *w, float *dx, size_t dx_ss,
                              int accumulate, float *ws) {
  if (cpu_conv_dw_avx2_fits(s, CPU_CONV_BWD_DATA)) {
    cpu_conv_dw_avx2_fwd(tp, s, 1, dy, dy_ss, w, dx, dx_ss, accumulate, ws);
    return;
  }
  DirectCtx c = {s, dy, dy_ss, NULL, 0, w, dx, dx_ss, accumulate, NULL};
  tp_run(tp, s->n * s->ci, direct_bwd_data_task, &c);
}

void cpu_conv_direct_bwd_filter(ThreadPool *tp, const CpuConvShape *s, const float *x,
                                size_t x_ss, const float *dy, size_t dy_ss, float *dw,
                                int accumulate, float *ws) {
  if (cpu_conv_dw_avx2_fits(s, CPU_CONV_BWD_FILTER)) {
    cpu_conv_dw_avx2_filter(tp, s, x, x_ss, dy, dy_ss, dw, accumulate, ws);
    return;
  }
  DirectCtx c = {s, x, x_ss, dy, dy_ss, NULL, dw, 0, accumulate, (double *)(void *)ws};
  tp_run(tp, s->co, direct_bwd_filter_task, &c);
}
