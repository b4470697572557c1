// tests/unit/test_ctl_vmath.c — the vectorised exp, sigmoid and tanh of the
// float32 controller against libm in double (relative error for exp, absolute
// for sigmoid and tanh), over a dense grid and the clamped extremes; the
// 4-lane and 8-lane (AVX2) code give bit-identical results; the array tail
// (n not a multiple of the width) is computed like the rest.
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "search/ctl_vmath.h"
#include "tests/unit/ctl_testutil.h"

enum { N = 200003 };  // not a multiple of 4 or 8
static float x[N], a[N], b[N];

static void grid(float lo, float hi) {
  for (int i = 0; i < N; i++) x[i] = lo + (hi - lo) * (float)i / (N - 1);
}

static void check(const char *name, void (*sse)(float *, size_t), void (*f32)(float *, size_t), double (*ref)(double),
                  int relative, double tol) {
  memcpy(a, x, sizeof x), memcpy(b, x, sizeof x);
  sse(a, N);
  f32(b, N);
  CHECK(!memcmp(a, b, sizeof a), "%s: the dispatched code differs from the 4-lane code", name);
  double worst = 0;
  int at = 0;
  for (int i = 0; i < N; i++) {
    double r = ref((double)x[i]), e = fabs((double)a[i] - r) / (relative ? fabs(r) : 1.0);
    if (e > worst) worst = e, at = i;
  }
  printf("%-8s worst %s error %.3g at x = %.6g\n", name, relative ? "relative" : "absolute", worst, x[at]);
  CHECK(worst < tol, "%s: error %.3g at x = %.9g (tolerance %g)", name, worst, x[at], tol);
  float one = x[N - 1], lone = one;  // the last element (in the tail) equals the same value mid-array
  sse(&lone, 1);
  CHECK(lone == a[N - 1], "%s: the tail is computed differently", name);
}

static double sigmoid(double v) { return 1 / (1 + exp(-v)); }

// The fused LSTM cell, for a width with a tail (h = 13) and one without (h = 16),
// with and without a previous cell state: against double, and SSE vs AVX2.
static void check_cell(int h, int with_cp) {
  float g[64], g2[64], cp[16], c[16], tc[16], hh[16], c2[16], tc2[16], hh2[16];
  for (int i = 0; i < 4 * h; i++) g[i] = (float)(6 * sin(1.7 * i + h));
  for (int j = 0; j < h; j++) cp[j] = (float)(2 * cos(0.9 * j));
  memcpy(g2, g, sizeof g);
  ctl_lstm_cell_sse(h, g, with_cp ? cp : NULL, c, tc, hh);
  ctl_lstm_cell_f32(h, g2, with_cp ? cp : NULL, c2, tc2, hh2);
  CHECK(!memcmp(g, g2, sizeof(float) * 4 * h) && !memcmp(hh, hh2, sizeof(float) * h) && !memcmp(c, c2, sizeof(float) * h),
        "cell h=%d: dispatched code differs from the 4-lane code", h);
  double worst = 0;
  for (int j = 0; j < h; j++) {
    double pre[4];
    for (int q = 0; q < 4; q++) pre[q] = 6 * sin(1.7 * (q * h + j) + h);
    double i = sigmoid(pre[0]), f = sigmoid(pre[1]), gg = tanh(pre[2]), o = sigmoid(pre[3]);
    double cv = f * (with_cp ? cp[j] : 0) + i * gg, hv = o * tanh(cv);
    double e[6] = {g[j] - i, g[h + j] - f, g[2 * h + j] - gg, g[3 * h + j] - o, c[j] - cv, hh[j] - hv};
    for (int k = 0; k < 6; k++) worst = fmax(worst, fabs(e[k]));
    CHECK(tc[j] == (float)tc[j] && fabs(tc[j] - tanh(cv)) < 1e-6, "cell h=%d: tanh(c)", h);
  }
  CHECK(worst < 1e-6, "cell h=%d cp=%d: error %.3g against double", h, with_cp, worst);
}

int main(void) {
  grid(-87.0f, 87.5f);  // inside the clamp [-87.34, 88]
  check("exp", ctl_vexp_sse, ctl_vexp_f32, exp, 1, 4e-7);
  grid(-30.0f, 30.0f);
  check("sigmoid", ctl_vsigmoid_sse, ctl_vsigmoid_f32, sigmoid, 0, 3e-7);
  check("tanh", ctl_vtanh_sse, ctl_vtanh_f32, tanh, 0, 5e-7);
  for (int cp = 0; cp < 2; cp++) check_cell(13, cp), check_cell(16, cp);
  float big[4] = {-1e30f, -200.0f, 200.0f, 1e30f};
  ctl_vsigmoid_f32(big, 4);
  CHECK(big[0] < 1e-30f && big[1] < 1e-30f && big[2] == 1.0f && big[3] == 1.0f, "sigmoid extremes %g %g %g %g",
        big[0], big[1], big[2], big[3]);
  float t[3] = {-1e30f, 0.0f, 1e30f};
  ctl_vtanh_f32(t, 3);
  CHECK(t[0] == -1.0f && fabsf(t[1]) < 1e-7f && t[2] == 1.0f, "tanh extremes %g %g %g", t[0], t[1], t[2]);
#if defined(__x86_64__)
  printf("AVX2+FMA on this CPU: %s\n", ctl_have_avx2() ? "yes (the 8-lane code was compared)" : "no");
#endif
  if (t_failures) fprintf(stderr, "%d checks failed\n", t_failures);
  return t_failures ? 1 : 0;
}
