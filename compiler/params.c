// compiler/params.c — the ParamTable of params.h: append-only, hashed by name.
#include "compiler/params.h"

#include <stdlib.h>
#include <string.h>

#include "compiler/util.h"

void params_init(ParamTable *t) { memset(t, 0, sizeof *t); }

void params_free(ParamTable *t) {
  free(t->items);
  free(t->hash);
  memset(t, 0, sizeof *t);
}

static unsigned name_hash(const char *s) { return (unsigned)nao_hash64(s, strlen(s), 0); }

static void rehash(ParamTable *t, int cap) {
  free(t->hash);
  t->hash = xmalloc(sizeof(int) * (size_t)cap);
  t->hash_cap = cap;
  for (int i = 0; i < cap; i++) t->hash[i] = -1;
  for (int i = 0; i < t->n; i++) {
    unsigned h = name_hash(t->items[i].name) & (unsigned)(cap - 1);
    while (t->hash[h] >= 0) h = (h + 1) & (unsigned)(cap - 1);
    t->hash[h] = i;
  }
}

int params_find(const ParamTable *t, const char *name) {
  if (!t->hash_cap) return -1;
  unsigned h = name_hash(name) & (unsigned)(t->hash_cap - 1);
  while (t->hash[h] >= 0) {
    if (strcmp(t->items[t->hash[h]].name, name) == 0) return t->hash[h];
    h = (h + 1) & (unsigned)(t->hash_cap - 1);
  }
  return -1;
}

int params_get(ParamTable *t, const char *name, int ndim, const int *dims, int trainable,
               ParamInit init, int fan_in, int aux) {
  NAO_ASSERT(ndim >= 1 && ndim <= 4);
  NAO_ASSERT(strlen(name) < PARAM_NAME_MAX);
  size_t numel = 1;
  for (int d = 0; d < ndim; d++) numel *= (size_t)dims[d];
  int found = params_find(t, name);
  if (found >= 0) {
    const ParamInfo *p = &t->items[found];
    if (p->numel != numel || p->ndim != ndim || p->trainable != trainable ||
        memcmp(p->dims, dims, sizeof(int) * (size_t)ndim) != 0)
      nao_internal("parameter %s requested with two different shapes", name);
    return found;
  }
  if (t->n == t->cap) {
    t->cap = t->cap ? 2 * t->cap : 256;
    t->items = xrealloc(t->items, sizeof *t->items * (size_t)t->cap);
  }
  ParamInfo *p = &t->items[t->n];
  memset(p, 0, sizeof *p);
  memcpy(p->name, name, strlen(name) + 1);
  p->ndim = ndim;
  memcpy(p->dims, dims, sizeof(int) * (size_t)ndim);
  p->numel = numel;
  p->trainable = trainable;
  p->init = init;
  p->fan_in = fan_in;
  p->aux = aux;
  if (trainable) {
    p->offset = t->n_trainable;
    t->n_trainable += numel;
  } else {
    p->offset = t->n_buffer;
    t->n_buffer += numel;
  }
  t->n++;
  if (2 * t->n > t->hash_cap) {
    rehash(t, t->hash_cap ? 2 * t->hash_cap : 512);
  } else {
    unsigned h = name_hash(name) & (unsigned)(t->hash_cap - 1);
    while (t->hash[h] >= 0) h = (h + 1) & (unsigned)(t->hash_cap - 1);
    t->hash[h] = t->n - 1;
  }
  return t->n - 1;
}

size_t params_count(const ParamTable *t, int include_aux) {
  size_t n = 0;
  for (int i = 0; i < t->n; i++)
    if (t->items[i].trainable && (include_aux || !t->items[i].aux)) n += t->items[i].numel;
  return n;
}
