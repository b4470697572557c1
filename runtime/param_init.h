// runtime/param_init.h — initial values of a network's parameters and buffers.
//
// The reference's init_parameters (NAO-SPEC §1a.7) with the rule each
// ParamTable entry carries (params.h):
//   PINIT_KAIMING_NORMAL  N(0, 2 / fan_in): conv and linear weights
//   PINIT_LINEAR_BIAS     U(-1/sqrt(fan_in), 1/sqrt(fan_in)): linear biases
//   PINIT_ONES / _ZEROS   BN gamma and running var / BN beta and running mean
// Entries are drawn in table order (the state_dict order) from one Rng, so a
// seed gives the same network whatever else the run does.
#ifndef NAO_PARAM_INIT_H
#define NAO_PARAM_INIT_H

#include "compiler/params.h"
#include "runtime/rng.h"

// Fills params (t->n_trainable floats) and buffers (t->n_buffer floats).
void param_init_all(const ParamTable *t, float *params, float *buffers, Rng *rng);
// One entry into dst (its numel floats).
void param_init_entry(const ParamInfo *p, float *dst, Rng *rng);

#endif
