// runtime/model_state.h — the host copy of everything a trained network is:
// parameters, BN running statistics and the optimizer's state, over one
// ParamTable's flat layout (params.h). Checkpoints save and load it; a
// backend works on it in place (cpu) or keeps a device copy that it uploads
// from and downloads to it (cuda).
#ifndef NAO_MODEL_STATE_H
#define NAO_MODEL_STATE_H

#include "compiler/params.h"
#include "runtime/optim.h"
#include "runtime/rng.h"

typedef struct {
  const ParamTable *table;
  float *params;     // (table->n_trainable)
  float *buffers;    // (table->n_buffer)
  SgdState sgd;      // momentum buffers and which exist
} ModelState;

// Zeroed arrays, no momentum buffers.
void model_state_init(ModelState *m, const ParamTable *t);
void model_state_free(ModelState *m);
// Parameters and buffers by the init rules (param_init.h); forgets momentum.
void model_state_init_weights(ModelState *m, Rng *rng);

#endif
