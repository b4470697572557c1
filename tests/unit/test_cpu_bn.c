// tests/unit/test_cpu_bn.c — batch normalisation kernels against naive float64
// loops: training forward (output, saved statistics, running update with the
// unbiased variance), evaluation forward, both backward modes (the textbook
// chain-rule formula, itself checked by central differences), accumulate on
// and off, strided views, a large mean, and bit-identical results on 1, 2 and
// 3 threads.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/util.h"
#include "runtime/cpu_kernels.h"
#include "tests/unit/cpu_testutil.h"

typedef struct {
  int n, c, hw;
  double eps, mom;
} Bn;

static double at(const Bn *b, const double *x, int n, int c, int i) {
  return x[((size_t)n * b->c + c) * b->hw + i];
}

// Training forward in double: y, batch mean and biased variance.
static void ref_fwd(const Bn *b, const double *x, const double *g, const double *be, double *y,
                    double *mean, double *var) {
  const double M = (double)b->n * b->hw;
  for (int c = 0; c < b->c; c++) {
    double s = 0, q = 0;
    for (int n = 0; n < b->n; n++)
      for (int i = 0; i < b->hw; i++) s += at(b, x, n, c, i);
    mean[c] = s / M;
    for (int n = 0; n < b->n; n++)
      for (int i = 0; i < b->hw; i++) q += pow(at(b, x, n, c, i) - mean[c], 2);
    var[c] = q / M;
    for (int n = 0; n < b->n; n++)
      for (int i = 0; i < b->hw; i++)
        y[((size_t)n * b->c + c) * b->hw + i] =
            (at(b, x, n, c, i) - mean[c]) / sqrt(var[c] + b->eps) * g[c] + be[c];
  }
}

// Training backward, the textbook chain rule through mean and variance.
static void ref_bwd(const Bn *b, const double *x, const double *dy, const double *g, double *dx,
                    double *dg, double *dbe) {
  const double M = (double)b->n * b->hw;
  double *y = xmalloc(sizeof(double) * (size_t)b->n * b->c * b->hw);
  double *mean = xmalloc(sizeof(double) * b->c), *var = xmalloc(sizeof(double) * b->c);
  double *zero = xcalloc((size_t)b->c, sizeof(double));
  ref_fwd(b, x, g, zero, y, mean, var);
  for (int c = 0; c < b->c; c++) {
    double is = 1 / sqrt(var[c] + b->eps), dvar = 0, dmean = 0, sdx = 0;
    dg[c] = dbe[c] = 0;
    for (int n = 0; n < b->n; n++)
      for (int i = 0; i < b->hw; i++) {
        double d = at(b, dy, n, c, i), xm = at(b, x, n, c, i) - mean[c];
        dg[c] += d * xm * is;
        dbe[c] += d;
        dvar += d * g[c] * xm * -0.5 * pow(var[c] + b->eps, -1.5);
        dmean += -d * g[c] * is;
        sdx += -2 * xm / M;
      }
    dmean += dvar * sdx;
    for (int n = 0; n < b->n; n++)
      for (int i = 0; i < b->hw; i++) {
        double xm = at(b, x, n, c, i) - mean[c];
        dx[((size_t)n * b->c + c) * b->hw + i] =
            at(b, dy, n, c, i) * g[c] * is + dvar * 2 * xm / M + dmean / M;
      }
  }
  free(zero);
  free(var);
  free(mean);
  free(y);
}

// Central differences of L = sum dy * y(x) confirm ref_bwd (double, tiny case).
static void check_ref_bwd_by_differences(void) {
  Bn b = {2, 2, 3, 1e-5, 0.1};
  size_t N = 12;
  double x[12], dy[12], g[2] = {1.3, -0.7}, be[2] = {0.2, 0.1}, dx[12], dg[2], dbe[2];
  float xf[12], dyf[12];
  cput_fill(xf, N, 1, -1, 1);
  cput_fill(dyf, N, 2, -1, 1);
  for (size_t i = 0; i < N; i++) {
    x[i] = xf[i];
    dy[i] = dyf[i];
  }
  ref_bwd(&b, x, dy, g, dx, dg, dbe);
  double y[12], mean[2], var[2];
  for (size_t i = 0; i < N; i++) {
    double h = 1e-6, l[2];
    for (int s = 0; s < 2; s++) {
      double keep = x[i];
      x[i] = keep + (s ? -h : h);
      ref_fwd(&b, x, g, be, y, mean, var);
      l[s] = 0;
      for (size_t j = 0; j < N; j++) l[s] += dy[j] * y[j];
      x[i] = keep;
    }
    double fd = (l[0] - l[1]) / (2 * h);
    CPUT_CHECK(fabs(fd - dx[i]) < 1e-5 * (1 + fabs(fd)), "reference dx[%zu] %.9g vs differences %.9g", i, dx[i], fd);
  }
}

typedef struct {
  Bn b;
  CpuBnShape s;
  size_t numel;
  ThreadPool *tp[3];
} Env;

static void to_d(const float *a, double *d, size_t n) {
  for (size_t i = 0; i < n; i++) d[i] = a[i];
}

static void check_train(Env *e, float shift, int acc) {
  const Bn *b = &e->b;
  const size_t N = (size_t)b->n * e->numel, C = (size_t)b->c;
  CputView x = cput_view(b->n, e->numel, 3, 51), y = cput_view(b->n, e->numel, 2, 52);
  for (int n = 0; n < b->n; n++)
    for (size_t i = 0; i < e->numel; i++) x.p[n * x.ss + i] += shift;
  float g[64], be[64], rm[64], rv[64], mean[64], invstd[64];
  cput_fill(g, C, 53, 0.5f, 1.5f);
  cput_fill(be, C, 54, -0.5f, 0.5f);
  cput_fill(rm, C, 55, -0.2f, 0.2f);
  cput_fill(rv, C, 56, 0.5f, 1.5f);
  double *xd = xmalloc(sizeof(double) * N), *yd = xmalloc(sizeof(double) * N);
  double gd[64], bd[64], md[64], vd[64], want[64];
  cput_view_get_d(&x, xd);
  to_d(g, gd, C);
  to_d(be, bd, C);
  ref_fwd(b, xd, gd, bd, yd, md, vd);
  float rm0[64], rv0[64];
  memcpy(rm0, rm, sizeof rm);
  memcpy(rv0, rv, sizeof rv);
  cpu_bn_fwd_train(e->tp[1], &e->s, x.p, x.ss, g, be, y.p, y.ss, mean, invstd, rm, rv);
  float *got = xmalloc(sizeof(float) * N);
  cput_view_get(&y, got);
  cput_close("bn train: y", got, yd, N, 1e-5, 1e-5);
  cput_close("bn train: mean", mean, md, C, 1e-6 * (1 + fabs(shift)), 1e-6);
  for (size_t c = 0; c < C; c++) want[c] = 1 / sqrt(vd[c] + b->eps);
  cput_close("bn train: invstd", invstd, want, C, 0, 2e-5);
  const double M = (double)b->n * b->hw;
  for (size_t c = 0; c < C; c++) want[c] = 0.9 * rm0[c] + 0.1 * md[c];
  cput_close("bn train: running mean", rm, want, C, 1e-6 * (1 + fabs(shift)), 1e-6);
  for (size_t c = 0; c < C; c++) want[c] = 0.9 * rv0[c] + 0.1 * vd[c] * M / (M - 1);
  cput_close("bn train: running var", rv, want, C, 1e-6, 2e-5);
  CPUT_CHECK(cput_view_gaps_intact(&x) && cput_view_gaps_intact(&y), "bn train: gaps written");
  // Backward with the saved statistics.
  CputView dy = cput_view(b->n, e->numel, 1, 57), dx = cput_view(b->n, e->numel, 4, 58);
  double *dyd = xmalloc(sizeof(double) * N), *dxd = xmalloc(sizeof(double) * N);
  double dgd[64], dbd[64];
  float dg[64], db[64];
  cput_fill(dg, C, 59, -1, 1);
  cput_fill(db, C, 60, -1, 1);
  cput_view_get_d(&dy, dyd);
  ref_bwd(b, xd, dyd, gd, dxd, dgd, dbd);
  if (acc) {
    float *old = xmalloc(sizeof(float) * N);
    cput_view_get(&dx, old);
    for (size_t i = 0; i < N; i++) dxd[i] += old[i];
    for (size_t c = 0; c < C; c++) {
      dgd[c] += dg[c];
      dbd[c] += db[c];
    }
    free(old);
  }
  cpu_bn_bwd_train(e->tp[1], &e->s, x.p, x.ss, dy.p, dy.ss, g, mean, invstd, dx.p, dx.ss, acc, dg,
                   db, acc);
  cput_view_get(&dx, got);
  cput_close("bn train: dx", got, dxd, N, 1e-4 * (1 + cput_maxabs(dxd, N)), 1e-4);
  cput_close("bn train: dgamma", dg, dgd, C, 1e-4 * (1 + cput_maxabs(dgd, C)), 1e-4);
  cput_close("bn train: dbeta", db, dbd, C, 1e-5 * (1 + cput_maxabs(dbd, C)), 1e-5);
  CPUT_CHECK(cput_view_gaps_intact(&dy) && cput_view_gaps_intact(&dx), "bn bwd: gaps written");
  free(dxd);
  free(dyd);
  cput_view_free(&dx);
  cput_view_free(&dy);
  free(got);
  free(yd);
  free(xd);
  cput_view_free(&y);
  cput_view_free(&x);
}

static void check_eval(Env *e, int acc) {
  const Bn *b = &e->b;
  const size_t N = (size_t)b->n * e->numel, C = (size_t)b->c;
  CputView x = cput_view(b->n, e->numel, 2, 61), y = cput_view(b->n, e->numel, 0, 62);
  CputView dy = cput_view(b->n, e->numel, 3, 63), dx = cput_view(b->n, e->numel, 1, 64);
  float g[64], be[64], rm[64], rv[64], dg[64], db[64];
  cput_fill(g, C, 65, 0.5f, 1.5f);
  cput_fill(be, C, 66, -0.5f, 0.5f);
  cput_fill(rm, C, 67, -0.5f, 0.5f);
  cput_fill(rv, C, 68, 0.2f, 2.0f);
  cput_fill(dg, C, 69, -1, 1);
  cput_fill(db, C, 70, -1, 1);
  double *yd = xmalloc(sizeof(double) * N), *dxd = xmalloc(sizeof(double) * N);
  double dgd[64], dbd[64];
  float *old = xmalloc(sizeof(float) * N), *got = xmalloc(sizeof(float) * N);
  cput_view_get(&dx, old);
  for (size_t c = 0; c < C; c++) {
    dgd[c] = acc ? dg[c] : 0;
    dbd[c] = acc ? db[c] : 0;
  }
  for (int n = 0; n < b->n; n++)
    for (size_t c = 0; c < C; c++)
      for (int i = 0; i < b->hw; i++) {
        size_t d = ((size_t)n * C + c) * b->hw + i, v = n * x.ss + c * b->hw + i;
        double is = 1 / sqrt((double)rv[c] + b->eps), xh = ((double)x.p[v] - rm[c]) * is;
        yd[d] = xh * g[c] + be[c];
        double gy = dy.p[n * dy.ss + c * b->hw + i];
        dxd[d] = (acc ? old[d] : 0) + gy * g[c] * is;
        dgd[c] += gy * xh;
        dbd[c] += gy;
      }
  cpu_bn_fwd_eval(e->tp[2], &e->s, x.p, x.ss, g, be, rm, rv, y.p, y.ss);
  cput_view_get(&y, got);
  cput_close("bn eval: y", got, yd, N, 1e-5, 1e-5);
  cpu_bn_bwd_eval(e->tp[2], &e->s, x.p, x.ss, dy.p, dy.ss, g, rm, rv, dx.p, dx.ss, acc, dg, db, acc);
  cput_view_get(&dx, got);
  cput_close("bn eval: dx", got, dxd, N, 1e-5, 1e-5);
  cput_close("bn eval: dgamma", dg, dgd, C, 1e-5 * (1 + cput_maxabs(dgd, C)), 1e-5);
  cput_close("bn eval: dbeta", db, dbd, C, 1e-5 * (1 + cput_maxabs(dbd, C)), 1e-5);
  CPUT_CHECK(cput_view_gaps_intact(&y) && cput_view_gaps_intact(&dx), "bn eval: gaps written");
  free(got);
  free(old);
  free(dxd);
  free(yd);
  cput_view_free(&dx);
  cput_view_free(&dy);
  cput_view_free(&y);
  cput_view_free(&x);
}

static void check_threads(Env *e) {
  const size_t N = (size_t)e->b.n * e->numel, C = (size_t)e->b.c;
  float *x = xmalloc(sizeof(float) * N), *dy = xmalloc(sizeof(float) * N);
  cput_fill(x, N, 71, -2, 3);
  cput_fill(dy, N, 72, -1, 1);
  float g[64], be[64];
  cput_fill(g, C, 73, 0.5f, 1.5f);
  cput_fill(be, C, 74, -1, 1);
  float *out[3];
  size_t per = 2 * N + 6 * C;
  for (int t = 0; t < 3; t++) {
    float *o = out[t] = xcalloc(per, sizeof(float));
    float *rm = o + 2 * N + 4 * C, *rv = rm + C;
    for (size_t c = 0; c < C; c++) rv[c] = 1;
    cpu_bn_fwd_train(e->tp[t], &e->s, x, e->numel, g, be, o, e->numel, o + 2 * N, o + 2 * N + C, rm, rv);
    cpu_bn_bwd_train(e->tp[t], &e->s, x, e->numel, dy, e->numel, g, o + 2 * N, o + 2 * N + C,
                     o + N, e->numel, 0, o + 2 * N + 2 * C, o + 2 * N + 3 * C, 0);
  }
  for (int t = 1; t < 3; t++)
    CPUT_CHECK(memcmp(out[0], out[t], sizeof(float) * per) == 0, "bn: results differ on %d threads", t + 1);
  for (int t = 0; t < 3; t++) free(out[t]);
  free(dy);
  free(x);
}

int main(void) {
  static const int shapes[][3] = {{3, 4, 15}, {2, 3, 1}, {5, 7, 37}, {4, 64, 64}, {1, 2, 9}};
  Env e;
  for (int t = 0; t < 3; t++) e.tp[t] = tp_create(t + 1);
  check_ref_bwd_by_differences();
  for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
    Bn b = {shapes[k][0], shapes[k][1], shapes[k][2], 1e-5, 0.1};
    e.b = b;
    CpuBnShape s = {b.n, b.c, b.hw, 1e-5f, 0.1f};
    e.s = s;
    e.numel = (size_t)b.c * b.hw;
    for (int acc = 0; acc < 2; acc++) {
      check_train(&e, 0.0f, acc);
      check_eval(&e, acc);
    }
    check_train(&e, 100.0f, 0);  // a large mean: the variance must stay accurate
    check_threads(&e);
  }
  for (int t = 0; t < 3; t++) tp_destroy(e.tp[t]);
  if (cput_failures) {
    fprintf(stderr, "test_cpu_bn: %d failures\n", cput_failures);
    return 1;
  }
  printf("test_cpu_bn: ok\n");
  return 0;
}
