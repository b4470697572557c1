// tests/unit/test_cpu_eltwise.c — element-wise kernels and masks: relu and its
// backward, n-ary add, copy / accumulate, mask multiply (per element and per
// sample), dropout and drop-path masks (the contract formula of rng.h
// recomputed here, kept fractions, reproducibility, the drop-path keep
// schedule), with strided views, samples longer than one task chunk, and bit
// identity on 1, 2 and 3 threads.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/util.h"
#include "runtime/cpu_kernels.h"
#include "runtime/rng.h"
#include "tests/unit/cpu_testutil.h"

enum { N = 3, NUMEL = 20000 };  // NUMEL > one task chunk

static void check_relu(ThreadPool *tp) {
  for (int acc = 0; acc < 2; acc++) {
    CputView x = cput_view(N, NUMEL, 3, 101), y = cput_view(N, NUMEL, 1, 102);
    CputView dy = cput_view(N, NUMEL, 2, 103), dx = cput_view(N, NUMEL, 0, 104);
    double *yd = xmalloc(sizeof(double) * N * NUMEL), *dxd = xmalloc(sizeof(double) * N * NUMEL);
    float *got = xmalloc(sizeof(float) * N * NUMEL);
    for (int n = 0; n < N; n++)
      for (int i = 0; i < NUMEL; i++) {
        double v = x.p[n * x.ss + i];
        yd[n * NUMEL + i] = v > 0 ? v : 0;
        dxd[n * NUMEL + i] = (acc ? dx.p[n * dx.ss + i] : 0) + (v > 0 ? dy.p[n * dy.ss + i] : 0);
      }
    cpu_relu_fwd(tp, N, NUMEL, x.p, x.ss, y.p, y.ss);
    cpu_relu_bwd(tp, N, NUMEL, y.p, y.ss, dy.p, dy.ss, dx.p, dx.ss, acc);
    cput_view_get(&y, got);
    cput_close("relu", got, yd, N * NUMEL, 1e-30, 0);  // exact
    cput_view_get(&dx, got);
    cput_close("relu backward", got, dxd, N * NUMEL, 1e-7, 1e-7);
    CPUT_CHECK(cput_view_gaps_intact(&y) && cput_view_gaps_intact(&dx), "relu: gaps written");
    free(got);
    free(dxd);
    free(yd);
    cput_view_free(&dx);
    cput_view_free(&dy);
    cput_view_free(&y);
    cput_view_free(&x);
  }
}

static void check_add_copy(ThreadPool *tp) {
  for (int n_in = 1; n_in <= 4; n_in++)
    for (int acc = 0; acc < 2; acc++) {
      CputView in[4], y = cput_view(N, NUMEL, 2, 110);
      const float *p[4];
      size_t ss[4];
      for (int k = 0; k < n_in; k++) {
        in[k] = cput_view(N, NUMEL, (size_t)k, 111 + (uint64_t)k);
        p[k] = in[k].p;
        ss[k] = in[k].ss;
      }
      double *want = xmalloc(sizeof(double) * N * NUMEL);
      float *got = xmalloc(sizeof(float) * N * NUMEL);
      for (int n = 0; n < N; n++)
        for (int i = 0; i < NUMEL; i++) {
          double s = acc ? y.p[n * y.ss + i] : 0;
          for (int k = 0; k < n_in; k++) s += in[k].p[n * in[k].ss + i];
          want[n * NUMEL + i] = s;
        }
      cpu_add(tp, N, NUMEL, n_in, p, ss, y.p, y.ss, acc);
      cput_view_get(&y, got);
      char what[64];
      snprintf(what, sizeof what, "add of %d%s", n_in, acc ? " (accumulate)" : "");
      cput_close(what, got, want, N * NUMEL, 1e-6, 1e-6);
      CPUT_CHECK(cput_view_gaps_intact(&y), "%s: gaps written", what);
      if (n_in == 1) {  // copy / accumulate
        float *before = xmalloc(sizeof(float) * N * NUMEL);
        cput_view_get(&y, before);
        cpu_copy(tp, N, NUMEL, in[0].p, in[0].ss, y.p, y.ss, acc);
        cput_view_get(&y, got);
        for (int n = 0; n < N; n++)
          for (int i = 0; i < NUMEL; i++)
            want[n * NUMEL + i] = (acc ? before[n * NUMEL + i] : 0) + in[0].p[n * in[0].ss + i];
        cput_close(acc ? "accumulate" : "copy", got, want, N * NUMEL, 1e-6, 1e-6);
        free(before);
      }
      free(got);
      free(want);
      for (int k = 0; k < n_in; k++) cput_view_free(&in[k]);
      cput_view_free(&y);
    }
}

static void check_mask_mul(ThreadPool *tp) {
  for (int per_sample = 0; per_sample < 2; per_sample++)
    for (int acc = 0; acc < 2; acc++) {
      size_t mn = per_sample ? 1 : NUMEL;
      CputView x = cput_view(N, NUMEL, 1, 121), m = cput_view(N, mn, 2, 122), y = cput_view(N, NUMEL, 3, 123);
      double *want = xmalloc(sizeof(double) * N * NUMEL);
      float *got = xmalloc(sizeof(float) * N * NUMEL);
      for (int n = 0; n < N; n++)
        for (int i = 0; i < NUMEL; i++)
          want[n * NUMEL + i] = (acc ? y.p[n * y.ss + i] : 0) +
                                (double)x.p[n * x.ss + i] * m.p[n * m.ss + (per_sample ? 0 : (size_t)i)];
      cpu_mask_mul(tp, N, NUMEL, x.p, x.ss, m.p, mn, m.ss, y.p, y.ss, acc);
      cput_view_get(&y, got);
      cput_close(per_sample ? "mask multiply per sample" : "mask multiply", got, want, N * NUMEL, 1e-7, 1e-6);
      CPUT_CHECK(cput_view_gaps_intact(&y), "mask multiply: gaps written");
      free(got);
      free(want);
      cput_view_free(&y);
      cput_view_free(&m);
      cput_view_free(&x);
    }
}

static void check_dropout(ThreadPool *const *tp) {
  const float keep = 0.8f;
  const uint64_t key = cpu_mask_key(7, 123, 45);
  CPUT_CHECK(key == cpu_mask_key(7, 123, 45), "mask key not a function of its arguments");
  CPUT_CHECK(key != cpu_mask_key(7, 124, 45) && key != cpu_mask_key(7, 123, 46) &&
                 key != cpu_mask_key(8, 123, 45),
             "mask keys of different steps, nodes or seeds coincide");
  CputView x = cput_view(N, NUMEL, 2, 131);
  float *y[3], *m[3];
  for (int t = 0; t < 3; t++) {
    y[t] = xmalloc(sizeof(float) * N * NUMEL);
    m[t] = xmalloc(sizeof(float) * N * (NUMEL + 5));
    cpu_dropout_fwd(tp[t], N, NUMEL, x.p, x.ss, y[t], NUMEL, m[t], NUMEL + 5, keep, key);
  }
  size_t kept = 0, wrong = 0;
  for (int n = 0; n < N; n++)
    for (int i = 0; i < NUMEL; i++) {
      uint64_t idx = (uint64_t)n * NUMEL + (uint64_t)i;
      float want = rng_hash_uniform(key, idx) < keep ? 1.0f / keep : 0.0f;
      float mv = m[0][n * (NUMEL + 5) + i];
      kept += mv != 0;
      wrong += mv != want || y[0][n * NUMEL + i] != x.p[n * x.ss + i] * want;
    }
  CPUT_CHECK(wrong == 0, "dropout: %zu mask or output elements differ from the contract", wrong);
  double frac = (double)kept / (N * NUMEL);
  CPUT_CHECK(fabs(frac - keep) < 0.01, "dropout kept %.4f, expected about %.2f", frac, keep);
  for (int t = 1; t < 3; t++) {
    CPUT_CHECK(memcmp(y[0], y[t], sizeof(float) * N * NUMEL) == 0, "dropout output differs on %d threads", t + 1);
    for (int n = 0; n < N; n++)
      CPUT_CHECK(memcmp(m[0] + n * (NUMEL + 5), m[t] + n * (NUMEL + 5), sizeof(float) * NUMEL) == 0,
                 "dropout mask differs on %d threads", t + 1);
  }
  // keep = 1: the identity.
  cpu_dropout_fwd(tp[1], N, NUMEL, x.p, x.ss, y[1], NUMEL, m[1], NUMEL + 5, 1.0f, key);
  size_t off = 0;
  for (int n = 0; n < N; n++)
    for (int i = 0; i < NUMEL; i++)
      off += m[1][n * (NUMEL + 5) + i] != 1.0f || y[1][n * NUMEL + i] != x.p[n * x.ss + i];
  CPUT_CHECK(off == 0, "dropout with keep 1 changed %zu elements", off);
  for (int t = 0; t < 3; t++) {
    free(m[t]);
    free(y[t]);
  }
  cput_view_free(&x);
}

static void check_droppath(ThreadPool *tp) {
  // The schedule: 1 - (t+1)/T * (i+1)/n_cells * (1-keep), never below keep.
  CPUT_CHECK(fabsf(cpu_droppath_keep(0.8f, 3, 8, 99, 200) - 0.95f) < 1e-6f, "schedule mid-run");
  CPUT_CHECK(fabsf(cpu_droppath_keep(0.8f, 7, 8, 199, 200) - 0.8f) < 1e-6f, "schedule at the end");
  CPUT_CHECK(fabsf(cpu_droppath_keep(0.6f, 0, 20, 0, 1000) - (float)(1 - 0.001 * 0.05 * 0.4)) < 1e-7f,
             "schedule at step 0");
  CPUT_CHECK(cpu_droppath_keep(0.8f, 7, 8, 999, 100) == 0.8f, "schedule past T must clamp");
  CPUT_CHECK(cpu_droppath_keep(0.8f, 2, 8, 5, 0) == 0.8f, "schedule without T");
  enum { S = 2000, E = 37 };
  const float keep = 0.7f;
  const uint64_t key = cpu_mask_key(1, 2, 3);
  CputView x = cput_view(S, E, 3, 141), y = cput_view(S, E, 1, 142), m = cput_view(S, 1, 2, 143);
  cpu_droppath_fwd(tp, S, E, x.p, x.ss, y.p, y.ss, m.p, m.ss, keep, key);
  size_t kept = 0, wrong = 0;
  for (int n = 0; n < S; n++) {
    float want = rng_hash_uniform(key, (uint64_t)n) < keep ? 1.0f / keep : 0.0f;
    kept += want != 0;
    wrong += m.p[n * m.ss] != want;
    for (int i = 0; i < E; i++) wrong += y.p[n * y.ss + i] != x.p[n * x.ss + i] * want;
  }
  CPUT_CHECK(wrong == 0, "drop-path: %zu values differ from the contract", wrong);
  CPUT_CHECK(fabs((double)kept / S - keep) < 0.04, "drop-path kept %.3f of samples, expected about %.2f",
             (double)kept / S, keep);
  CPUT_CHECK(cput_view_gaps_intact(&y) && cput_view_gaps_intact(&m), "drop-path: gaps written");
  cput_view_free(&m);
  cput_view_free(&y);
  cput_view_free(&x);
}

int main(void) {
  ThreadPool *tp[3];
  for (int t = 0; t < 3; t++) tp[t] = tp_create(t + 1);
  check_relu(tp[1]);
  check_add_copy(tp[2]);
  check_mask_mul(tp[1]);
  check_dropout(tp);
  check_droppath(tp[2]);
  for (int t = 0; t < 3; t++) tp_destroy(tp[t]);
  if (cput_failures) {
    fprintf(stderr, "test_cpu_eltwise: %d failures\n", cput_failures);
    return 1;
  }
  printf("test_cpu_eltwise: ok\n");
  return 0;
}
