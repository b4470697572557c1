// search/ctl_net_f32.c — the controller's math in float32: what the search runs.
// The code is ctl_blocks.inc and ctl_model.inc, shared with ctl_net_f64.c
// (the double instance the gradient checks use); see ctl_net.h.
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/util.h"
#include "search/ctl_net.h"
#include "search/ctl_vmath.h"

#define CTL_REAL float
#define CTL_SFX(x) x##_f32
#define CTL_GEMV cblas_sgemv
#define CTL_GEMM cblas_sgemm
#define CTL_EXP expf
#define CTL_TANH tanhf
#define CTL_SQRT sqrtf
#define CTL_LOG logf
#define CTL_VEXP ctl_vexp_f32
#define CTL_VSIGMOID ctl_vsigmoid_f32
#define CTL_VTANH ctl_vtanh_f32
#define CTL_LSTM_CELL ctl_lstm_cell_f32
#include "search/ctl_blocks.inc"
#include "search/ctl_model.inc"
