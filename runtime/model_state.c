// runtime/model_state.c — allocation and initialisation of a ModelState.
#include "runtime/model_state.h"

#include <stdlib.h>
#include <string.h>

#include "compiler/util.h"
#include "runtime/param_init.h"

void model_state_init(ModelState *m, const ParamTable *t) {
  m->table = t;
  m->params = xcalloc(t->n_trainable ? t->n_trainable : 1, sizeof(float));
  m->buffers = xcalloc(t->n_buffer ? t->n_buffer : 1, sizeof(float));
  sgd_state_init(&m->sgd, t);
}

void model_state_free(ModelState *m) {
  free(m->params);
  free(m->buffers);
  sgd_state_free(&m->sgd);
  memset(m, 0, sizeof *m);
}

void model_state_init_weights(ModelState *m, Rng *rng) {
  param_init_all(m->table, m->params, m->buffers, rng);
  memset(m->sgd.momentum, 0, (m->table->n_trainable ? m->table->n_trainable : 1) * sizeof(float));
  memset(m->sgd.has_buf, 0, (size_t)m->table->n + 1);
}
