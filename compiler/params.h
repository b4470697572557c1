// compiler/params.h — the named parameters and buffers of one or many networks.
//
// A ParamTable maps state_dict names ("cells.0.ops.0.x_op.op.1.weight", the
// reference implementation's names, NAO-SPEC.md §1a.8) to shapes and to offsets
// in two flat float arrays: trainable parameters (so that the optimizer, the
// gradient norm and the all-reduce each see one array) and buffers (BN running
// statistics). Entries are appended in the order the lowering meets them, which
// is the reference state_dict order. Offsets never change once given, so many
// graphs can share one table (weight sharing) and the table may grow.
#ifndef NAO_PARAMS_H
#define NAO_PARAMS_H

#include <stddef.h>

enum { PARAM_NAME_MAX = 128 };

typedef enum {
  PINIT_KAIMING_NORMAL,  // std = sqrt(2 / fan_in): every conv and linear weight
  PINIT_LINEAR_BIAS,     // U(-1/sqrt(fan_in), 1/sqrt(fan_in)): PyTorch's default
  PINIT_ONES,            // BN weight (gamma), BN running_var
  PINIT_ZEROS,           // BN bias (beta), BN running_mean
} ParamInit;

typedef struct {
  char name[PARAM_NAME_MAX];
  int ndim;
  int dims[4];
  size_t numel;
  int trainable;     // 0: a buffer (BN running statistics)
  size_t offset;     // in floats, into the trainable array or the buffer array
  ParamInit init;
  int fan_in;        // for the kaiming and bias inits
  int aux;           // part of the auxiliary head
} ParamInfo;

typedef struct {
  ParamInfo *items;
  int n, cap;
  size_t n_trainable;  // floats in the trainable array
  size_t n_buffer;     // floats in the buffer array
  int *hash;           // open addressing over items by name; -1 empty
  int hash_cap;
} ParamTable;

void params_init(ParamTable *t);
void params_free(ParamTable *t);
// Returns the index of `name`, adding it when new. An existing entry must have
// the same shape and kind; a mismatch is an internal error (the lowering is
// deterministic, so it can only be a bug).
int params_get(ParamTable *t, const char *name, int ndim, const int *dims, int trainable,
               ParamInit init, int fan_in, int aux);
int params_find(const ParamTable *t, const char *name);  // -1 when absent
// Trainable parameters, auxiliary head included or not.
size_t params_count(const ParamTable *t, int include_aux);

#endif
