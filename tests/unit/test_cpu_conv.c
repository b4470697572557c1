// tests/unit/test_cpu_conv.c — the CPU convolution kernels against naive
// float64 loops: forward, backward data, backward filter; dense (GEMM paths:
// pointwise, im2col in one and many blocks, strided 1x1), asymmetric kernels,
// negative pads, grouped and depthwise; accumulate on and off; inputs and
// outputs as strided views (whose gaps must stay untouched); results
// bit-identical on 1, 2 and 3 threads; and the adjoint identities
// <conv(x), dy> = <x, bwd_data(dy)> = <w, bwd_filter(x, dy)> in double. Every
// case runs with the portable path and with the AVX2 path.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/util.h"
#include "runtime/cpu_conv_internal.h"
#include "runtime/cpu_kernels.h"
#include "tests/unit/cpu_testutil.h"

typedef struct {
  const char *name;
  int n, ci, h, w, co, kh, kw, sh, sw, pt, pl, pb, pr, groups;
} ConvCase;

static const ConvCase cases[] = {
    {"pointwise 1x1", 3, 5, 7, 6, 4, 1, 1, 1, 1, 0, 0, 0, 0, 1},
    // 1x1 products (cpu_conv_pw_avx2.c): 63 pixels (a masked vector), 13
    // outputs (a partial tile of 4), 7 and 5 inputs (partial filter tiles of 3),
    // 484 pixels (6 packed blocks of 96), a batch whose filter pass groups samples
    {"pointwise 48->13 @9x7", 3, 48, 9, 7, 13, 1, 1, 1, 1, 0, 0, 0, 0, 1},
    {"pointwise 7->6 @22x22 (blocks of 96 pixels)", 2, 7, 22, 22, 6, 1, 1, 1, 1, 0, 0, 0, 0, 1},
    {"pointwise batch 21 (samples grouped in the filter pass)", 21, 5, 4, 3, 3, 1, 1, 1, 1, 0, 0, 0, 0, 1},
    {"1x1 s2 crop 16->8 @16 (FR path 2, blocks)", 4, 16, 16, 16, 8, 1, 1, 2, 2, -1, -1, 1, 1, 1},
    {"1x1 s(1,2) padded", 2, 3, 5, 8, 5, 1, 1, 1, 2, 1, 0, 1, 0, 1},
    {"3x3 s1 p1", 2, 3, 9, 8, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1},
    // Winograd F(2x2, 3x3) (cpu_conv_wino_avx2.c): 16 columns of tiles (stores
    // of whole rows), 11 (rows of tiles padded to 16), 7 and 4 tiles a row
    // (samples side by side: 8 and 2),
    // odd sizes (cut tiles), other pads, a batch of 20 whose filter chunks
    // split groups of 8, blocks of tiles of the forward pass
    {"winograd 8->8 @32x32", 2, 8, 32, 32, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1},
    {"winograd 16->12 @9x13 (7 tiles a row)", 3, 16, 9, 13, 12, 3, 3, 1, 1, 1, 1, 1, 1, 1},
    {"winograd 12->9 @8x8 (4 tiles a row)", 5, 12, 8, 8, 9, 3, 3, 1, 1, 1, 1, 1, 1, 1},
    {"winograd 8->9 @5x22 (11 tiles a row, padded to 16)", 2, 8, 5, 22, 9, 3, 3, 1, 1, 1, 1, 1, 1, 1},
    {"winograd valid 8->10 @10x7", 2, 8, 10, 7, 10, 3, 3, 1, 1, 0, 0, 0, 0, 1},
    {"winograd pads (2,0) 9->8 @6x11", 2, 9, 6, 11, 8, 3, 3, 1, 1, 2, 0, 0, 2, 1},
    {"winograd batch 20 @6x6", 20, 8, 6, 6, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1},
    {"winograd 64->64 @8x8", 3, 64, 8, 8, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1},
    {"3x3 s2 p1 odd", 2, 4, 9, 7, 3, 3, 3, 2, 2, 1, 1, 1, 1, 1},
    {"1x7 p(0,3)", 2, 3, 6, 11, 4, 1, 7, 1, 1, 0, 3, 0, 3, 1},
    {"7x1 s(2,1) p(3,0)", 2, 3, 11, 5, 2, 7, 1, 2, 1, 3, 0, 3, 0, 1},
    {"1x3 s(1,2)", 2, 3, 6, 9, 3, 1, 3, 1, 2, 0, 1, 0, 1, 1},
    {"1x1 s2 crop (FR path 2)", 3, 6, 8, 8, 4, 1, 1, 2, 2, -1, -1, 1, 1, 1},
    {"1x1 s2 odd (FR path 1)", 2, 5, 9, 9, 3, 1, 1, 2, 2, 0, 0, 0, 0, 1},
    {"3x3 negative pads", 2, 2, 10, 9, 3, 3, 3, 1, 1, -1, -2, 1, 0, 1},
    {"3x3 s2 negative pads", 2, 3, 10, 9, 4, 3, 3, 2, 2, -1, 0, 1, 1, 1},
    {"5x5 s2 p2", 2, 3, 9, 10, 2, 5, 5, 2, 2, 2, 2, 2, 2, 1},
    {"3x3 two im2col blocks", 2, 64, 18, 32, 2, 3, 3, 1, 1, 1, 1, 1, 1, 1},
    {"3x3 s2 two im2col blocks", 2, 64, 40, 64, 2, 3, 3, 2, 2, 1, 1, 0, 0, 1},
    {"1x3 wider than the image", 2, 2, 3, 2, 3, 1, 5, 1, 1, 0, 2, 0, 2, 1},
    {"2x2 valid (aux head)", 3, 8, 2, 2, 5, 2, 2, 1, 1, 0, 0, 0, 0, 1},
    {"depthwise 3x3 s1", 2, 6, 8, 9, 6, 3, 3, 1, 1, 1, 1, 1, 1, 6},
    {"depthwise 5x5 s2", 2, 4, 11, 10, 4, 5, 5, 2, 2, 2, 2, 2, 2, 4},
    {"depthwise 3x3 width 13", 3, 5, 6, 13, 5, 3, 3, 1, 1, 1, 1, 1, 1, 5},
    {"depthwise 5x5 s2 crop", 2, 3, 9, 9, 3, 5, 5, 2, 2, -1, 1, 1, 2, 3},
    {"grouped 3->2 per group", 2, 6, 7, 6, 4, 3, 3, 1, 1, 1, 1, 1, 1, 2},
    {"grouped s2 negative pad", 2, 4, 9, 8, 6, 3, 3, 2, 2, -1, 1, 0, 1, 2},
    {"batch 20 (uneven filter chunks)", 20, 3, 5, 5, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1},
    {"batch 1", 1, 3, 6, 6, 2, 3, 3, 1, 1, 1, 1, 1, 1, 1},
};

static CpuConvShape shape_of(const ConvCase *c) {
  CpuConvShape s = {c->n, c->ci, c->h, c->w, c->co, (c->h + c->pt + c->pb - c->kh) / c->sh + 1,
                    (c->w + c->pl + c->pr - c->kw) / c->sw + 1, c->kh, c->kw, c->sh, c->sw, c->pt,
                    c->pl, c->groups, CPU_CONV_AUTO};
  return s;
}

// Visits every (sample, out channel, out pixel, in channel, tap) with an
// in-image input: the one loop the three references share.
#define FOR_TAPS(s, BODY)                                                                \
  for (int n = 0; n < (s)->n; n++)                                                       \
    for (int oc = 0; oc < (s)->co; oc++)                                                 \
      for (int oy = 0; oy < (s)->oh; oy++)                                               \
        for (int ox = 0; ox < (s)->ow; ox++)                                             \
          for (int icl = 0; icl < (s)->ci / (s)->groups; icl++)                          \
            for (int ky = 0; ky < (s)->kh; ky++)                                         \
              for (int kx = 0; kx < (s)->kw; kx++) {                                     \
                int iy = oy * (s)->sh - (s)->pt + ky, ix = ox * (s)->sw - (s)->pl + kx;  \
                if (iy < 0 || iy >= (s)->h || ix < 0 || ix >= (s)->w) continue;          \
                int ic = oc / ((s)->co / (s)->groups) * ((s)->ci / (s)->groups) + icl;   \
                size_t xi = (((size_t)n * (s)->ci + ic) * (s)->h + iy) * (s)->w + ix;    \
                size_t yi = (((size_t)n * (s)->co + oc) * (s)->oh + oy) * (s)->ow + ox;  \
                size_t wi = (((size_t)oc * ((s)->ci / (s)->groups) + icl) * (s)->kh + ky) * (s)->kw + kx; \
                BODY;                                                                    \
              }

static void ref_fwd(const CpuConvShape *s, const double *x, const double *w, double *y) {
  FOR_TAPS(s, y[yi] += x[xi] * w[wi]);
}
static void ref_bwd_data(const CpuConvShape *s, const double *dy, const double *w, double *dx) {
  FOR_TAPS(s, dx[xi] += dy[yi] * w[wi]);
}
static void ref_bwd_filter(const CpuConvShape *s, const double *x, const double *dy, double *dw) {
  FOR_TAPS(s, dw[wi] += x[xi] * dy[yi]);
}

static double dot_fd(const float *a, const double *b, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
  return s;
}

typedef struct {
  CpuConvShape s;
  size_t xn, yn, wn;  // per-sample x / y floats, weight floats
  float *ws;
  ThreadPool *tp[3];
} Env;

static void check_fwd(Env *e, const char *name, int acc) {
  const CpuConvShape *s = &e->s;
  CputView x = cput_view(s->n, e->xn, 5, 11), y = cput_view(s->n, e->yn, 3, 12);
  float *w = xmalloc(sizeof(float) * e->wn);
  cput_fill(w, e->wn, 13, -1, 1);
  double *xd = xcalloc((size_t)s->n * e->xn, sizeof(double)), *wd = xcalloc(e->wn, sizeof(double));
  double *yd = xcalloc((size_t)s->n * e->yn, sizeof(double));
  cput_view_get_d(&x, xd);
  for (size_t i = 0; i < e->wn; i++) wd[i] = w[i];
  if (acc) cput_view_get_d(&y, yd);
  ref_fwd(s, xd, wd, yd);
  cpu_conv_fwd(e->tp[1], s, x.p, x.ss, w, y.p, y.ss, acc, e->ws);
  float *got = xmalloc(sizeof(float) * (size_t)s->n * e->yn);
  cput_view_get(&y, got);
  char what[160];
  snprintf(what, sizeof what, "%s: forward%s", name, acc ? " (accumulate)" : "");
  size_t ny = (size_t)s->n * e->yn;
  cput_close(what, got, yd, ny, 1e-5 * (1 + cput_maxabs(yd, ny)), 1e-5);
  CPUT_CHECK(cput_view_gaps_intact(&x) && cput_view_gaps_intact(&y), "%s: gaps written", what);
  free(got);
  free(yd);
  free(wd);
  free(xd);
  free(w);
  cput_view_free(&y);
  cput_view_free(&x);
}

static void check_bwd_data(Env *e, const char *name, int acc) {
  const CpuConvShape *s = &e->s;
  CputView dy = cput_view(s->n, e->yn, 2, 21), dx = cput_view(s->n, e->xn, 4, 22);
  float *w = xmalloc(sizeof(float) * e->wn);
  cput_fill(w, e->wn, 23, -1, 1);
  double *dyd = xcalloc((size_t)s->n * e->yn, sizeof(double)), *wd = xcalloc(e->wn, sizeof(double));
  double *dxd = xcalloc((size_t)s->n * e->xn, sizeof(double));
  cput_view_get_d(&dy, dyd);
  for (size_t i = 0; i < e->wn; i++) wd[i] = w[i];
  if (acc) cput_view_get_d(&dx, dxd);
  ref_bwd_data(s, dyd, wd, dxd);
  cpu_conv_bwd_data(e->tp[1], s, dy.p, dy.ss, w, dx.p, dx.ss, acc, e->ws);
  float *got = xmalloc(sizeof(float) * (size_t)s->n * e->xn);
  cput_view_get(&dx, got);
  char what[160];
  snprintf(what, sizeof what, "%s: backward data%s", name, acc ? " (accumulate)" : "");
  size_t nx = (size_t)s->n * e->xn;
  cput_close(what, got, dxd, nx, 1e-5 * (1 + cput_maxabs(dxd, nx)), 1e-5);
  CPUT_CHECK(cput_view_gaps_intact(&dy) && cput_view_gaps_intact(&dx), "%s: gaps written", what);
  free(got);
  free(dxd);
  free(wd);
  free(dyd);
  free(w);
  cput_view_free(&dx);
  cput_view_free(&dy);
}

static void check_bwd_filter(Env *e, const char *name, int acc) {
  const CpuConvShape *s = &e->s;
  CputView x = cput_view(s->n, e->xn, 1, 31), dy = cput_view(s->n, e->yn, 6, 32);
  float *dw = xmalloc(sizeof(float) * e->wn);
  cput_fill(dw, e->wn, 33, -1, 1);
  double *xd = xcalloc((size_t)s->n * e->xn, sizeof(double));
  double *dyd = xcalloc((size_t)s->n * e->yn, sizeof(double)), *dwd = xcalloc(e->wn, sizeof(double));
  cput_view_get_d(&x, xd);
  cput_view_get_d(&dy, dyd);
  if (acc)
    for (size_t i = 0; i < e->wn; i++) dwd[i] = dw[i];
  ref_bwd_filter(s, xd, dyd, dwd);
  cpu_conv_bwd_filter(e->tp[1], s, x.p, x.ss, dy.p, dy.ss, dw, acc, e->ws);
  char what[160];
  snprintf(what, sizeof what, "%s: backward filter%s", name, acc ? " (accumulate)" : "");
  cput_close(what, dw, dwd, e->wn, 1e-5 * (1 + cput_maxabs(dwd, e->wn)), 1e-5);
  CPUT_CHECK(cput_view_gaps_intact(&x) && cput_view_gaps_intact(&dy), "%s: gaps written", what);
  free(dwd);
  free(dyd);
  free(xd);
  free(dw);
  cput_view_free(&dy);
  cput_view_free(&x);
}

// The three kernels on 1, 2 and 3 threads give the same bits; and the adjoint
// identities hold (a check of the backward against the forward alone).
static void check_threads_and_adjoint(Env *e, const char *name) {
  const CpuConvShape *s = &e->s;
  size_t nx = (size_t)s->n * e->xn, ny = (size_t)s->n * e->yn;
  float *x = xmalloc(sizeof(float) * nx), *dy = xmalloc(sizeof(float) * ny);
  float *w = xmalloc(sizeof(float) * e->wn);
  cput_fill(x, nx, 41, -1, 1);
  cput_fill(dy, ny, 42, -1, 1);
  cput_fill(w, e->wn, 43, -1, 1);
  float *y[3], *dx[3], *dw[3];
  for (int t = 0; t < 3; t++) {
    y[t] = xmalloc(sizeof(float) * ny);
    dx[t] = xmalloc(sizeof(float) * nx);
    dw[t] = xmalloc(sizeof(float) * e->wn);
    cpu_conv_fwd(e->tp[t], s, x, e->xn, w, y[t], e->yn, 0, e->ws);
    cpu_conv_bwd_data(e->tp[t], s, dy, e->yn, w, dx[t], e->xn, 0, e->ws);
    cpu_conv_bwd_filter(e->tp[t], s, x, e->xn, dy, e->yn, dw[t], 0, e->ws);
  }
  for (int t = 1; t < 3; t++) {
    CPUT_CHECK(memcmp(y[0], y[t], sizeof(float) * ny) == 0, "%s: forward differs on %d threads", name, t + 1);
    CPUT_CHECK(memcmp(dx[0], dx[t], sizeof(float) * nx) == 0, "%s: bwd data differs on %d threads", name, t + 1);
    CPUT_CHECK(memcmp(dw[0], dw[t], sizeof(float) * e->wn) == 0, "%s: bwd filter differs on %d threads", name, t + 1);
  }
  double *dyd = xmalloc(sizeof(double) * ny), *xd = xmalloc(sizeof(double) * nx);
  double *wd = xmalloc(sizeof(double) * e->wn);
  for (size_t i = 0; i < ny; i++) dyd[i] = dy[i];
  for (size_t i = 0; i < nx; i++) xd[i] = x[i];
  for (size_t i = 0; i < e->wn; i++) wd[i] = w[i];
  double a = dot_fd(y[0], dyd, ny), b = dot_fd(dx[0], xd, nx), c = dot_fd(dw[0], wd, e->wn);
  double scale = 1e-4 * (1 + fabs(a));
  CPUT_CHECK(fabs(a - b) < scale && fabs(a - c) < scale, "%s: adjoint identities %.9g %.9g %.9g", name, a, b, c);
  for (int t = 0; t < 3; t++) {
    free(y[t]);
    free(dx[t]);
    free(dw[t]);
  }
  free(wd);
  free(xd);
  free(dyd);
  free(w);
  free(dy);
  free(x);
}

int main(void) {
  Env e;
  memset(&e, 0, sizeof e);
  cpu_blas_single_thread();
  for (int t = 0; t < 3; t++) e.tp[t] = tp_create(t + 1);
  static const char *const algo_name[] = {"auto", "portable", "avx2", "winograd"};
  for (int algo = CPU_CONV_PORTABLE; algo <= CPU_CONV_WINOGRAD; algo++)
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
      const ConvCase *c = &cases[k];
      char name[128];
      snprintf(name, sizeof name, "%s [%s]", c->name, algo_name[algo]);
      e.s = shape_of(c);
      e.s.algo = algo;
      e.xn = (size_t)c->ci * c->h * c->w;
      e.yn = (size_t)c->co * e.s.oh * e.s.ow;
      e.wn = (size_t)c->co * (c->ci / c->groups) * c->kh * c->kw;
      size_t ws = 0;
      for (int op = 0; op < 3; op++) {
        size_t need = cpu_conv_ws_floats(&e.s, (CpuConvOp)op, 3);
        ws = need > ws ? need : ws;
      }
      e.ws = xmalloc(sizeof(double) * (ws + 1));  // doubles: aligned for the direct filter pass
      for (int acc = 0; acc < 2; acc++) {
        check_fwd(&e, name, acc);
        check_bwd_data(&e, name, acc);
        check_bwd_filter(&e, name, acc);
      }
      check_threads_and_adjoint(&e, name);
      free(e.ws);
    }
  for (int t = 0; t < 3; t++) tp_destroy(e.tp[t]);
  if (cput_failures) {
    fprintf(stderr, "test_cpu_conv: %d failures\n", cput_failures);
    return 1;
  }
  printf("test_cpu_conv: %zu shapes ok with the portable, the AVX2 and the Winograd paths%s\n",
         sizeof cases / sizeof cases[0],
         cpu_conv_direct_avx2_available() ? "" : " (no AVX2 here: both portable)");
  return 0;
}
