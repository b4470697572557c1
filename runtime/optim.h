// runtime/optim.h — SGD over the flat parameter arrays, as torch.optim.SGD
// with torch.nn.utils.clip_grad_norm_ does it (NAO-SPEC §1d).
//
// One step, given the gradients of the parameters a graph writes (`active`,
// from ir_grad_params_written; the others are skipped entirely, as PyTorch
// skips parameters whose .grad is None: no clipping share, no weight decay,
// no momentum):
//   norm = sqrt(sum over active gradients of g^2)        (double, fixed order)
//   if clip > 0: g *= min(1, clip / (norm + 1e-6))
//   d = g + wd * p;  buf = has_buf ? momentum * buf + d : d;  p -= lr * buf
// has_buf is per ParamTable entry: a buffer exists once the entry took a step
// (torch creates momentum_buffer on the first step a parameter has a grad).
// Results do not depend on the thread count (cpu_kernels.h).
#ifndef NAO_OPTIM_H
#define NAO_OPTIM_H

#include <stddef.h>

#include "compiler/params.h"
#include "runtime/threadpool.h"

typedef struct {
  double lr, momentum, weight_decay, grad_clip;  // grad_clip <= 0: no clipping
} SgdHyper;

typedef struct {
  const ParamTable *table;
  float *momentum;          // (table->n_trainable) momentum buffers, flat like the params
  unsigned char *has_buf;   // (table->n) entry p's buffer exists
} SgdState;

void sgd_state_init(SgdState *s, const ParamTable *t);  // no buffers yet
void sgd_state_free(SgdState *s);

// Global L2 norm of the active gradients (before clipping).
double sgd_grad_norm(const SgdState *s, ThreadPool *tp, const unsigned char *active,
                     const float *grads);
// One step: clips grads in place, updates params and momentum. Returns the
// norm before clipping (non-finite when a gradient is).
double sgd_step(SgdState *s, ThreadPool *tp, const unsigned char *active, float *params,
                float *grads, const SgdHyper *h);

#endif
