// runtime/param_init.c — the init rules of param_init.h.
#include "runtime/param_init.h"

#include <math.h>

#include "compiler/util.h"

void param_init_entry(const ParamInfo *p, float *dst, Rng *rng) {
  double fan_in = p->fan_in > 0 ? p->fan_in : 1;
  switch (p->init) {
    case PINIT_KAIMING_NORMAL: {
      double std = sqrt(2.0 / fan_in);  // gain sqrt(2) (ReLU), fan_in mode
      for (size_t i = 0; i < p->numel; i++) dst[i] = (float)(rng_normal(rng) * std);
      break;
    }
    case PINIT_LINEAR_BIAS: {
      double bound = 1.0 / sqrt(fan_in);
      for (size_t i = 0; i < p->numel; i++)
        dst[i] = (float)((2.0 * rng_uniform(rng) - 1.0) * bound);
      break;
    }
    case PINIT_ONES:
      for (size_t i = 0; i < p->numel; i++) dst[i] = 1.0f;
      break;
    case PINIT_ZEROS:
      for (size_t i = 0; i < p->numel; i++) dst[i] = 0.0f;
      break;
    default:
      nao_internal("parameter '%s' has unknown init rule %d", p->name, (int)p->init);
  }
}

void param_init_all(const ParamTable *t, float *params, float *buffers, Rng *rng) {
  for (int i = 0; i < t->n; i++) {
    const ParamInfo *p = &t->items[i];
    param_init_entry(p, (p->trainable ? params : buffers) + p->offset, rng);
  }
}
