// search/ctl_net_f64.c — the controller's math in double, for the gradient
// checks (central differences need double). Same source as ctl_net_f32.c.
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/util.h"
#include "search/ctl_net.h"

#define CTL_REAL double
#define CTL_SFX(x) x##_f64
#define CTL_GEMV cblas_dgemv
#define CTL_GEMM cblas_dgemm
#define CTL_EXP exp
#define CTL_TANH tanh
#define CTL_SQRT sqrt
#define CTL_LOG log
#define CTL_VEXP vexp_f64
#define CTL_VSIGMOID vsigmoid_f64
#define CTL_VTANH vtanh_f64
#define CTL_LSTM_CELL lstm_cell_f64

// libm, element by element: the gradient checks want exact functions, not speed.
static void vexp_f64(double *x, size_t n) {
  for (size_t i = 0; i < n; i++) x[i] = exp(x[i]);
}
static void vsigmoid_f64(double *x, size_t n) {
  for (size_t i = 0; i < n; i++) x[i] = 1 / (1 + exp(-x[i]));
}
static void vtanh_f64(double *x, size_t n) {
  for (size_t i = 0; i < n; i++) x[i] = tanh(x[i]);
}
static void lstm_cell_f64(int h, double *g, const double *cp, double *c, double *tc, double *hh) {
  vsigmoid_f64(g, 2 * (size_t)h);
  vtanh_f64(g + 2 * h, (size_t)h);
  vsigmoid_f64(g + 3 * h, (size_t)h);
  for (int j = 0; j < h; j++) tc[j] = c[j] = g[h + j] * (cp ? cp[j] : 0) + g[j] * g[2 * h + j];
  vtanh_f64(tc, (size_t)h);
  for (int j = 0; j < h; j++) hh[j] = g[3 * h + j] * tc[j];
}

#include "search/ctl_blocks.inc"
#include "search/ctl_model.inc"
