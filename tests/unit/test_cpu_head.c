// tests/unit/test_cpu_head.c — the classifier and the loss, and the optimizer's
// array kernels: linear forward / backward (bias or not, accumulate, views,
// more than one GEMM block) and label-smoothed cross-entropy (against a float64
// loop whose gradient is itself checked by central differences; large logits;
// bad labels) against naive loops; SGD with momentum and weight decay
// (PyTorch's first-step rule), the squared norm, the clipping factor and
// scaling; bit identity on 1, 2 and 3 threads.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/util.h"
#include "runtime/cpu_kernels.h"
#include "tests/unit/cpu_testutil.h"

static void check_linear_case(ThreadPool *const *tp, int n, int d, int k, int bias) {
  for (int acc = 0; acc < 2; acc++) {
    CputView x = cput_view(n, (size_t)d, 3, 201), y = cput_view(n, (size_t)k, 2, 202);
    CputView dy = cput_view(n, (size_t)k, 1, 203), dx = cput_view(n, (size_t)d, 4, 204);
    size_t wn = (size_t)k * d;
    float *w = xmalloc(sizeof(float) * wn), *b = xmalloc(sizeof(float) * k);
    float *dw = xmalloc(sizeof(float) * wn), *db = xmalloc(sizeof(float) * k);
    cput_fill(w, wn, 205, -1, 1);
    cput_fill(b, (size_t)k, 206, -1, 1);
    cput_fill(dw, wn, 207, -1, 1);
    cput_fill(db, (size_t)k, 208, -1, 1);
    double *yd = xmalloc(sizeof(double) * n * k), *dxd = xmalloc(sizeof(double) * n * d);
    double *dwd = xmalloc(sizeof(double) * wn), *dbd = xmalloc(sizeof(double) * k);
    for (int i = 0; i < n; i++)
      for (int j = 0; j < k; j++) {
        double s = (acc ? y.p[i * y.ss + j] : 0) + (bias ? b[j] : 0);
        for (int f = 0; f < d; f++) s += (double)x.p[i * x.ss + f] * w[(size_t)j * d + f];
        yd[i * k + j] = s;
      }
    for (int i = 0; i < n; i++)
      for (int f = 0; f < d; f++) {
        double s = acc ? dx.p[i * dx.ss + f] : 0;
        for (int j = 0; j < k; j++) s += (double)dy.p[i * dy.ss + j] * w[(size_t)j * d + f];
        dxd[i * d + f] = s;
      }
    for (int j = 0; j < k; j++) {
      dbd[j] = acc ? db[j] : 0;
      for (int i = 0; i < n; i++) dbd[j] += dy.p[i * dy.ss + j];
      for (int f = 0; f < d; f++) {
        double s = acc ? dw[(size_t)j * d + f] : 0;
        for (int i = 0; i < n; i++) s += (double)dy.p[i * dy.ss + j] * x.p[i * x.ss + f];
        dwd[(size_t)j * d + f] = s;
      }
    }
    cpu_linear_fwd(tp[1], n, d, k, x.p, x.ss, w, bias ? b : NULL, y.p, y.ss, acc);
    cpu_linear_bwd(tp[2], n, d, k, x.p, x.ss, dy.p, dy.ss, w, dx.p, dx.ss, acc, dw, acc,
                   bias ? db : NULL, acc);
    float *got = xmalloc(sizeof(float) * (size_t)n * (d > k ? d : k));
    char what[96];
    snprintf(what, sizeof what, "linear %dx%d->%d%s%s", n, d, k, bias ? " bias" : "", acc ? " acc" : "");
    cput_view_get(&y, got);
    cput_close(what, got, yd, (size_t)n * k, 1e-5 * (1 + cput_maxabs(yd, (size_t)n * k)), 1e-5);
    cput_view_get(&dx, got);
    cput_close(what, got, dxd, (size_t)n * d, 1e-5 * (1 + cput_maxabs(dxd, (size_t)n * d)), 1e-5);
    cput_close(what, dw, dwd, wn, 1e-5 * (1 + cput_maxabs(dwd, wn)), 1e-5);
    if (bias) cput_close(what, db, dbd, (size_t)k, 1e-5, 1e-5);
    CPUT_CHECK(cput_view_gaps_intact(&y) && cput_view_gaps_intact(&dx), "%s: gaps written", what);
    free(got);
    free(dbd);
    free(dwd);
    free(dxd);
    free(yd);
    free(db);
    free(dw);
    free(b);
    free(w);
    cput_view_free(&dx);
    cput_view_free(&dy);
    cput_view_free(&y);
    cput_view_free(&x);
  }
}

// ---------------------------------------------------------------- cross-entropy
static double ref_xent(int n, int k, const double *z, const int32_t *lab, double eps, double weight) {
  double total = 0;
  for (int i = 0; i < n; i++) {
    double m = -INFINITY, se = 0;
    for (int j = 0; j < k; j++) m = fmax(m, z[i * k + j]);
    for (int j = 0; j < k; j++) se += exp(z[i * k + j] - m);
    for (int j = 0; j < k; j++) {
      double q = eps / k + (j == lab[i] ? 1 - eps : 0);
      total -= q * (z[i * k + j] - m - log(se));
    }
  }
  return weight * total / n;
}

static void check_xent_case(ThreadPool *tp, int n, int k, double eps, double weight, double scale) {
  CputView z = cput_view(n, (size_t)k, 2, 211), sm = cput_view(n, (size_t)k, 1, 212);
  CputView dl = cput_view(n, (size_t)k, 3, 213);
  int32_t lab[16 * 2];  // labels at stride 2
  for (int i = 0; i < n; i++) {
    lab[2 * i] = (i * 5 + 3) % k;
    lab[2 * i + 1] = -99;
    for (int j = 0; j < k; j++) z.p[i * z.ss + j] *= (float)scale;
  }
  double *zd = xmalloc(sizeof(double) * n * k), *gd = xmalloc(sizeof(double) * n * k);
  int32_t labd[16];
  cput_view_get_d(&z, zd);
  for (int i = 0; i < n; i++) labd[i] = lab[2 * i];
  double loss_ref = ref_xent(n, k, zd, labd, eps, weight);
  for (size_t i = 0; i < (size_t)n * k; i++) {  // the reference gradient by central differences
    double h = 1e-5 * (1 + fabs(zd[i])), keep = zd[i];
    zd[i] = keep + h;
    double lp = ref_xent(n, k, zd, labd, eps, weight);
    zd[i] = keep - h;
    double lm = ref_xent(n, k, zd, labd, eps, weight);
    zd[i] = keep;
    gd[i] = (lp - lm) / (2 * h);
  }
  float loss = 0;
  int bad = cpu_xent_fwd(n, k, z.p, z.ss, lab, 2, (float)eps, (float)weight, &loss, sm.p, sm.ss);
  CPUT_CHECK(bad == -1, "xent: label check returned %d", bad);
  CPUT_CHECK(fabs(loss - loss_ref) < 1e-5 * (1 + fabs(loss_ref)), "xent loss %.9g, expected %.9g", loss, loss_ref);
  bad = cpu_xent_bwd(tp, n, k, sm.p, sm.ss, lab, 2, (float)eps, (float)weight, dl.p, dl.ss, 0);
  float *got = xmalloc(sizeof(float) * n * k);
  cput_view_get(&dl, got);
  char what[96];
  snprintf(what, sizeof what, "xent gradient (n %d, k %d, eps %g, weight %g, scale %g)", n, k, eps, weight, scale);
  cput_close(what, got, gd, (size_t)n * k, 1e-6, 1e-4);
  CPUT_CHECK(cput_view_gaps_intact(&sm) && cput_view_gaps_intact(&dl), "%s: gaps written", what);
  // Accumulate: dl += the same gradient.
  cpu_xent_bwd(tp, n, k, sm.p, sm.ss, lab, 2, (float)eps, (float)weight, dl.p, dl.ss, 1);
  for (size_t i = 0; i < (size_t)n * k; i++) gd[i] = 2.0 * got[i];
  cput_view_get(&dl, got);
  cput_close("xent gradient (accumulate)", got, gd, (size_t)n * k, 1e-7, 1e-6);
  // A label outside [0, k) is reported by sample, and nothing is written.
  lab[2 * (n - 1)] = k;
  float loss2 = 12345;
  CPUT_CHECK(cpu_xent_fwd(n, k, z.p, z.ss, lab, 2, 0, 1, &loss2, NULL, 0) == n - 1 && loss2 == 12345,
             "xent: a bad label was not reported");
  CPUT_CHECK(cpu_xent_bwd(tp, n, k, sm.p, sm.ss, lab, 2, 0, 1, dl.p, dl.ss, 0) == n - 1,
             "xent backward: a bad label was not reported");
  free(got);
  free(gd);
  free(zd);
  cput_view_free(&dl);
  cput_view_free(&sm);
  cput_view_free(&z);
}

// ---------------------------------------------------------------- optimizer
static void check_optim(ThreadPool *const *tp) {
  const size_t n = 150001;  // three chunks, the last short
  float *p0 = xmalloc(sizeof(float) * n), *g = xmalloc(sizeof(float) * n);
  cput_fill(p0, n, 221, -1, 1);
  cput_fill(g, n, 222, -0.1f, 0.1f);
  const float lr = 0.05f, mom = 0.9f, wd = 3e-4f;
  float *p[3], *buf[3];
  for (int t = 0; t < 3; t++) {
    p[t] = xmalloc(sizeof(float) * n);
    buf[t] = xmalloc(sizeof(float) * n);
    memcpy(p[t], p0, sizeof(float) * n);
    for (int step = 0; step < 3; step++) cpu_sgd_step(tp[t], p[t], g, buf[t], n, lr, mom, wd, step == 0);
  }
  double worst = 0;
  for (size_t i = 0; i < n; i++) {  // three steps of the reference, in double
    double pp = p0[i], b = 0;
    for (int step = 0; step < 3; step++) {
      double d = g[i] + wd * pp;
      b = step == 0 ? d : mom * b + d;
      pp -= lr * b;
    }
    worst = fmax(worst, fabs(pp - p[0][i]) / (1e-6 + 1e-5 * fabs(pp)));
    worst = fmax(worst, fabs(b - buf[0][i]) / (1e-6 + 1e-5 * fabs(b)));
  }
  CPUT_CHECK(worst <= 1, "sgd: error %.3g of tolerance", worst);
  double s[3];
  for (int t = 0; t < 3; t++) s[t] = cpu_sumsq(tp[t], g, n);
  double want = 0;
  for (size_t i = 0; i < n; i++) want += (double)g[i] * g[i];
  CPUT_CHECK(fabs(s[0] - want) < 1e-6 * want, "sumsq %.12g, expected %.12g", s[0], want);
  for (int t = 1; t < 3; t++) {
    CPUT_CHECK(s[t] == s[0], "sumsq differs on %d threads", t + 1);
    CPUT_CHECK(memcmp(p[t], p[0], sizeof(float) * n) == 0, "sgd differs on %d threads", t + 1);
  }
  CPUT_CHECK(cpu_clip_coef(10.0, 5.0f) == (float)(5.0 / (10.0 + 1e-6)), "clip coefficient above the limit");
  CPUT_CHECK(cpu_clip_coef(3.0, 5.0f) == 1.0f && cpu_clip_coef(5.0, 5.0f) < 1.0f,
             "clip coefficient below / at the limit (PyTorch: max_norm / (norm + 1e-6), at most 1)");
  cpu_scale(tp[2], p[1], n, 0.25f);
  size_t bad = 0;
  for (size_t i = 0; i < n; i++) bad += p[1][i] != p[0][i] * 0.25f;
  CPUT_CHECK(bad == 0, "scale changed %zu values wrongly", bad);
  for (int t = 0; t < 3; t++) {
    free(buf[t]);
    free(p[t]);
  }
  free(g);
  free(p0);
}

int main(void) {
  ThreadPool *tp[3];
  for (int t = 0; t < 3; t++) tp[t] = tp_create(t + 1);
  cpu_blas_single_thread();
  check_linear_case(tp, 5, 37, 11, 1);
  check_linear_case(tp, 4, 200, 130, 1);  // several blocks of dx, dw and y
  check_linear_case(tp, 3, 9, 4, 0);
  check_xent_case(tp[1], 6, 7, 0.0, 1.0, 1.0);
  check_xent_case(tp[2], 5, 10, 0.1, 0.4, 3.0);
  check_xent_case(tp[1], 4, 3, 0.1, 1.0, 1000.0);  // logits of +-1000: no overflow
  check_optim(tp);
  for (int t = 0; t < 3; t++) tp_destroy(tp[t]);
  if (cput_failures) {
    fprintf(stderr, "test_cpu_head: %d failures\n", cput_failures);
    return 1;
  }
  printf("test_cpu_head: ok\n");
  return 0;
}
