// tests/unit/test_cpu_pool.c — pooling and global average pooling against
// naive float64 loops: every IrPoolAttr variant NAO uses (max / average,
// padding counted or ignored, the zero-pad-then-pool 2x2 ops, the auxiliary
// head's 5x5 stride 3), odd sizes, windows larger than the image, rows longer
// than the backward's row buffer; inputs quantised to a few levels so windows
// have ties (the max gradient must go to the first maximum in window order,
// and to nowhere when that is a counted pad); accumulate; strided views; bit
// identity on 1, 2 and 3 threads.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/util.h"
#include "runtime/cpu_kernels.h"
#include "tests/unit/cpu_testutil.h"

typedef struct {
  const char *name;
  int n, c, h, w, kh, kw, sh, sw, pt, pl, pb, pr, is_max, pad_counted;
} PoolCase;

static const PoolCase cases[] = {
    {"max 3x3 s1 p1 (-inf pads)", 2, 3, 7, 9, 3, 3, 1, 1, 1, 1, 1, 1, 1, 0},
    {"max 3x3 s2 p1", 2, 2, 9, 8, 3, 3, 2, 2, 1, 1, 1, 1, 1, 0},
    {"max 5x5 s1 p2", 2, 2, 6, 7, 5, 5, 1, 1, 2, 2, 2, 2, 1, 0},
    {"max 2x2 zero-pad right/bottom s1", 2, 3, 5, 6, 2, 2, 1, 1, 0, 0, 1, 1, 1, 1},
    {"max 2x2 zero-pad right/bottom s2", 2, 3, 7, 6, 2, 2, 2, 2, 0, 0, 1, 1, 1, 1},
    {"max 3x3 counted zero pads", 2, 2, 6, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},
    {"avg 3x3 s1 p1 exclude pads", 2, 3, 7, 9, 3, 3, 1, 1, 1, 1, 1, 1, 0, 0},
    {"avg 3x3 s1 p1 include pads", 2, 3, 7, 9, 3, 3, 1, 1, 1, 1, 1, 1, 0, 1},
    {"avg 3x3 s2 p1 exclude pads", 2, 2, 9, 8, 3, 3, 2, 2, 1, 1, 1, 1, 0, 0},
    {"avg 3x3 s2 p1 include pads", 2, 2, 9, 8, 3, 3, 2, 2, 1, 1, 1, 1, 0, 1},
    {"avg 5x5 s1 p2 include pads", 2, 2, 8, 8, 5, 5, 1, 1, 2, 2, 2, 2, 0, 1},
    {"avg 5x5 s2 p2 include pads", 2, 2, 8, 9, 5, 5, 2, 2, 2, 2, 2, 2, 0, 1},
    {"avg 2x2 zero-pad right/bottom s2", 2, 3, 7, 8, 2, 2, 2, 2, 0, 0, 1, 1, 0, 1},
    {"avg 5x5 s3 (aux head)", 3, 4, 8, 8, 5, 5, 3, 3, 0, 0, 0, 0, 0, 1},
    {"avg 5x5 window larger than image", 2, 2, 3, 3, 5, 5, 1, 1, 2, 2, 2, 2, 0, 0},
    {"max 5x5 window larger than image", 2, 2, 3, 3, 5, 5, 1, 1, 2, 2, 2, 2, 1, 0},
    {"avg 3x3 long rows", 1, 2, 2, 300, 3, 3, 1, 1, 1, 1, 1, 1, 0, 0},
    {"avg 3x3 plane too big to separate", 1, 1, 130, 130, 3, 3, 1, 1, 1, 1, 1, 1, 0, 1},
    {"max 3x3 s2 plane too big to separate", 1, 1, 260, 140, 3, 3, 2, 2, 1, 1, 1, 1, 1, 0},
    {"avg 1x3 one window row", 2, 2, 5, 7, 1, 3, 1, 1, 0, 1, 0, 1, 0, 0},
};

static CpuPoolShape shape_of(const PoolCase *c) {
  CpuPoolShape s = {c->n, c->c, c->h, c->w, (c->h + c->pt + c->pb - c->kh) / c->sh + 1,
                    (c->w + c->pl + c->pr - c->kw) / c->sw + 1, c->kh, c->kw, c->sh, c->sw,
                    c->pt, c->pl, c->is_max, c->pad_counted};
  return s;
}

// One window: the forward value, and where its gradient goes for dy (x index
// or -1 for none) with the divisor.
static double ref_window(const CpuPoolShape *s, const double *x, int oy, int ox, long *arg,
                         int *div) {
  double best = 0, sum = 0;
  int seen = 0, inside_n = 0;
  *arg = -1;
  for (int ky = 0; ky < s->kh; ky++)
    for (int kx = 0; kx < s->kw; kx++) {
      int iy = oy * s->sh - s->pt + ky, ix = ox * s->sw - s->pl + kx;
      int inside = iy >= 0 && iy < s->h && ix >= 0 && ix < s->w;
      if (!inside && !s->pad_counted) continue;
      double v = inside ? x[(long)iy * s->w + ix] : 0.0;
      if (inside) inside_n++;
      sum += v;
      if (!seen || v > best) {
        best = v;
        *arg = inside ? (long)iy * s->w + ix : -1;
      }
      seen = 1;
    }
  *div = s->pad_counted ? s->kh * s->kw : inside_n;
  if (s->is_max) return seen ? best : 0.0;
  return *div ? sum / *div : 0.0;
}

static void ref_pool(const CpuPoolShape *s, const double *x, const double *dy, double *y,
                     double *dx) {
  size_t hw = (size_t)s->h * s->w, ohw = (size_t)s->oh * s->ow;
  for (int p = 0; p < s->n * s->c; p++)
    for (int oy = 0; oy < s->oh; oy++)
      for (int ox = 0; ox < s->ow; ox++) {
        long arg;
        int div;
        const double *xp = x + p * hw;
        size_t o = p * ohw + (size_t)oy * s->ow + ox;
        y[o] = ref_window(s, xp, oy, ox, &arg, &div);
        if (s->is_max) {
          if (arg >= 0) dx[p * hw + arg] += dy[o];
          continue;
        }
        for (int ky = 0; ky < s->kh; ky++)
          for (int kx = 0; kx < s->kw; kx++) {
            int iy = oy * s->sh - s->pt + ky, ix = ox * s->sw - s->pl + kx;
            if (iy >= 0 && iy < s->h && ix >= 0 && ix < s->w) dx[p * hw + (size_t)iy * s->w + ix] += dy[o] / div;
          }
      }
}

static void check_case(const PoolCase *c, ThreadPool *const *tp) {
  CpuPoolShape s = shape_of(c);
  size_t xn = (size_t)c->c * c->h * c->w, yn = (size_t)c->c * s.oh * s.ow;
  size_t NX = xn * c->n, NY = yn * c->n;
  for (int acc = 0; acc < 2; acc++) {
    CputView x = cput_view(c->n, xn, 3, 81), y = cput_view(c->n, yn, 2, 82);
    CputView dy = cput_view(c->n, yn, 1, 83), dx = cput_view(c->n, xn, 5, 84);
    for (int n = 0; n < c->n; n++)  // few levels: ties, and zeros that tie with counted pads
      for (size_t i = 0; i < xn; i++) x.p[n * x.ss + i] = roundf(x.p[n * x.ss + i] * 2) / 2;
    double *xd = xmalloc(sizeof(double) * NX), *dyd = xmalloc(sizeof(double) * NY);
    double *yd = xmalloc(sizeof(double) * NY), *dxd = xcalloc(NX, sizeof(double));
    float *got = xmalloc(sizeof(float) * (NX > NY ? NX : NY));
    cput_view_get_d(&x, xd);
    cput_view_get_d(&dy, dyd);
    if (acc) cput_view_get_d(&dx, dxd);
    ref_pool(&s, xd, dyd, yd, dxd);
    cpu_pool_fwd(tp[1], &s, x.p, x.ss, y.p, y.ss);
    cpu_pool_bwd(tp[1], &s, x.p, x.ss, dy.p, dy.ss, dx.p, dx.ss, acc);
    char what[160];
    snprintf(what, sizeof what, "%s: forward", c->name);
    cput_view_get(&y, got);
    cput_close(what, got, yd, NY, 1e-6, 1e-6);
    snprintf(what, sizeof what, "%s: backward%s", c->name, acc ? " (accumulate)" : "");
    cput_view_get(&dx, got);
    cput_close(what, got, dxd, NX, 1e-6, 1e-6);
    CPUT_CHECK(cput_view_gaps_intact(&x) && cput_view_gaps_intact(&y) &&
                   cput_view_gaps_intact(&dy) && cput_view_gaps_intact(&dx),
               "%s: gaps written", c->name);
    free(got);
    free(dxd);
    free(yd);
    free(dyd);
    free(xd);
    cput_view_free(&dx);
    cput_view_free(&dy);
    cput_view_free(&y);
    cput_view_free(&x);
  }
  // Thread counts.
  float *x = xmalloc(sizeof(float) * NX), *dy = xmalloc(sizeof(float) * NY), *out[3];
  cput_fill(x, NX, 85, -1, 1);
  cput_fill(dy, NY, 86, -1, 1);
  for (int t = 0; t < 3; t++) {
    out[t] = xmalloc(sizeof(float) * (NX + NY));
    cpu_pool_fwd(tp[t], &s, x, xn, out[t], yn);
    cpu_pool_bwd(tp[t], &s, x, xn, dy, yn, out[t] + NY, xn, 0);
  }
  for (int t = 1; t < 3; t++)
    CPUT_CHECK(memcmp(out[0], out[t], sizeof(float) * (NX + NY)) == 0, "%s: differs on %d threads", c->name, t + 1);
  for (int t = 0; t < 3; t++) free(out[t]);
  free(dy);
  free(x);
}

static void check_gap(ThreadPool *tp) {
  const int n = 3, c = 5, hw = 49;
  for (int acc = 0; acc < 2; acc++) {
    CputView x = cput_view(n, (size_t)c * hw, 4, 91), y = cput_view(n, (size_t)c, 2, 92);
    CputView dy = cput_view(n, (size_t)c, 1, 93), dx = cput_view(n, (size_t)c * hw, 3, 94);
    double yd[15], dxd[3 * 5 * 49];
    for (int s = 0; s < n; s++)
      for (int ch = 0; ch < c; ch++) {
        double sum = 0;
        for (int i = 0; i < hw; i++) sum += x.p[s * x.ss + ch * hw + i];
        yd[s * c + ch] = (acc ? y.p[s * y.ss + ch] : 0) + sum / hw;
        for (int i = 0; i < hw; i++)
          dxd[(s * c + ch) * hw + i] = (acc ? dx.p[s * dx.ss + ch * hw + i] : 0) + dy.p[s * dy.ss + ch] / (double)hw;
      }
    cpu_gap_fwd(tp, n, c, hw, x.p, x.ss, y.p, y.ss, acc);
    cpu_gap_bwd(tp, n, c, hw, dy.p, dy.ss, dx.p, dx.ss, acc);
    float got[3 * 5 * 49];
    cput_view_get(&y, got);
    cput_close("gap forward", got, yd, 15, 1e-6, 1e-6);
    cput_view_get(&dx, got);
    cput_close("gap backward", got, dxd, 3 * 5 * 49, 1e-7, 1e-6);
    CPUT_CHECK(cput_view_gaps_intact(&y) && cput_view_gaps_intact(&dx), "gap: gaps written");
    cput_view_free(&dx);
    cput_view_free(&dy);
    cput_view_free(&y);
    cput_view_free(&x);
  }
}

int main(void) {
  ThreadPool *tp[3];
  for (int t = 0; t < 3; t++) tp[t] = tp_create(t + 1);
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) check_case(&cases[k], tp);
  check_gap(tp[1]);
  for (int t = 0; t < 3; t++) tp_destroy(tp[t]);
  if (cput_failures) {
    fprintf(stderr, "test_cpu_pool: %d failures\n", cput_failures);
    return 1;
  }
  printf("test_cpu_pool: %zu pooling shapes and gap ok\n", sizeof cases / sizeof cases[0]);
  return 0;
}
