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
#define CTL_GEMM cblas_dgemm
#define CTL_EXP exp
#define CTL_TANH tanh
#define CTL_SQRT sqrt
#define CTL_LOG log
#include "search/ctl_blocks.inc"
#include "search/ctl_model.inc"
