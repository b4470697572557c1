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

#include "search/ctl_blocks.inc"
#include "search/ctl_model.inc"
