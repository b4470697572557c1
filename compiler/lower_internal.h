// compiler/lower_internal.h — what the lower*.c files share; not a public API.
//
// The lowering runs two walks over the same module descriptions:
//  1. declare: parameters and buffers registered in the reference state_dict
//     order (ctx->g is NULL);
//  2. emit: IR nodes appended in execution order; every parameter a node uses
//     is looked up by name and must have been declared (with the same shape).
// Both walks take their names and shapes from one source, the LowerSeq built
// for a module (lower_ops.c, lower.c), so the two cannot disagree.
//
// Files: lower.c (macro structure, stems, heads, loss, the LowerFamily
// driver), lower_cell.c (cells, calibration, nodes, loose ends), lower_ops.c
// (the 16 ops, FactorizedReduce), lower_emit.c (node emitters, parameter
// helpers, sequences), lower_ws.c (the weight-sharing supernet's cells).
#ifndef NAO_LOWER_INTERNAL_H
#define NAO_LOWER_INTERNAL_H

#include "compiler/ir.h"
#include "compiler/lower.h"
#include "compiler/netspec.h"
#include "compiler/params.h"

enum { LOWER_SEQ_MAX = 12, LOWER_STEP_NAME_MAX = 24 };

typedef struct LowerCtx LowerCtx;
struct LowerCtx {
  const NetSpec *ns;
  const NetLayout *L;
  LowerOptions opt;
  ParamTable *params;
  IrGraph *g;       // NULL during the declaration walk
  int aux;          // what is being lowered belongs to the auxiliary head
  // The cell family: registers cell i's parameters in state_dict order; emits
  // cell i on (s0, s1) and returns its output. lower_cell_* for the networks
  // of an arch; a weight-sharing supernet brings its own.
  void (*cell_declare)(LowerCtx *c, int i);
  int (*cell_emit)(LowerCtx *c, int i, int s0, int s1);
};

// A family of networks: how shapes are inferred and what a cell is. The
// macro structure (stems, the chain of cells, heads, loss) is shared.
typedef struct {
  int (*layout)(const NetSpec *ns, NetLayout *L, char *err, size_t errlen);  // 0 or -1
  void (*cell_declare)(LowerCtx *c, int i);
  int (*cell_emit)(LowerCtx *c, int i, int s0, int s1);
} LowerFamily;

// Declares every parameter of the family's network in state_dict order, then
// (g != NULL) emits the graph. 0, or -1 with the layout's message.
int lower_run(const NetSpec *ns, const LowerOptions *opt, ParamTable *params, IrGraph *g,
              const LowerFamily *fam, char *err, size_t errlen);

// ---------------------------------------------------------------- sequences
// A module that is a straight chain of primitive layers (a stem, an op, a
// ReLUConvBN, the auxiliary head). Step names are module paths relative to
// the sequence's prefix ("op.1", "bn1"); "" names the prefix itself (a pool op
// is the branch module).
typedef enum { LSTEP_RELU, LSTEP_CONV, LSTEP_BN, LSTEP_POOL, LSTEP_LINEAR } LowerStepKind;

typedef struct {
  LowerStepKind kind;
  char name[LOWER_STEP_NAME_MAX];
  IrConvAttr conv;  // CONV
  IrPoolAttr pool;  // POOL
  int ch;           // BN: channels
  int lin_in;       // LINEAR: in features (flattened c*h*w)
  int lin_out;      // LINEAR: out features; the layer has a bias
} LowerStep;

typedef struct {
  int n;
  LowerStep step[LOWER_SEQ_MAX];
} LowerSeq;

void lseq_relu(LowerSeq *s, const char *name);
void lseq_conv(LowerSeq *s, const char *name, const IrConvAttr *a);
void lseq_bn(LowerSeq *s, const char *name, int ch);
void lseq_pool(LowerSeq *s, const char *name, const IrPoolAttr *a);
void lseq_linear(LowerSeq *s, const char *name, int in, int out);
// Registers the sequence's parameters under prefix (declaration walk).
void lseq_declare(LowerCtx *c, const char *prefix, const LowerSeq *s);
// Emits the sequence on x; returns the last output (x itself when empty).
int lseq_emit(LowerCtx *c, const char *prefix, const LowerSeq *s, int x);

// A conv attr with symmetric padding (ph rows top and bottom, pw cols left and right).
IrConvAttr lower_conv_attr(int cin, int cout, int kh, int kw, int sh, int sw, int ph, int pw,
                           int groups);

// ---------------------------------------------------------------- names
// snprintf into a fixed buffer; truncation is an internal error (names are
// bounded by the spec's limits, so it can only be a bug).
void lower_name(char *buf, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
// prefix + "." + suffix, or prefix alone when suffix is "".
void lower_join(char *buf, size_t n, const char *prefix, const char *suffix);

// ---------------------------------------------------------------- parameters
void lower_declare_conv(LowerCtx *c, const char *module, const IrConvAttr *a);
void lower_declare_bn(LowerCtx *c, const char *module, int ch);
void lower_declare_linear(LowerCtx *c, const char *module, int in, int out);
// The index of the declared parameter module.leaf; its shape must be dims.
int lower_use_param(LowerCtx *c, const char *module, const char *leaf, int ndim, const int *dims);

// ---------------------------------------------------------------- node emitters
// Each appends one node named `name` and returns its (first) output tensor.
int lower_new_act(LowerCtx *c, int ch, int h, int w, const char *name);
int lower_emit_relu(LowerCtx *c, const char *name, int x);
int lower_emit_conv(LowerCtx *c, const char *name, int x, const IrConvAttr *a);
int lower_emit_bn(LowerCtx *c, const char *name, int x);
// With explicit parameters (weight sharing: a per-input weight, WSBN).
int lower_emit_conv_p(LowerCtx *c, const char *name, int x, const IrConvAttr *a, int wp);
int lower_emit_bn_p(LowerCtx *c, const char *name, int x, const int p[4]);
int lower_emit_pool(LowerCtx *c, const char *name, int x, const IrPoolAttr *a);
int lower_emit_add(LowerCtx *c, const char *name, const int *xs, int n);
int lower_emit_concat(LowerCtx *c, const char *name, const int *xs, int n);
int lower_emit_gap(LowerCtx *c, const char *name, int x);
int lower_emit_linear(LowerCtx *c, const char *name, int x, int out);
int lower_emit_dropout(LowerCtx *c, const char *name, int x, float keep);
int lower_emit_droppath(LowerCtx *c, const char *name, int x, float keep, int cell, int n_cells);
int lower_emit_xent(LowerCtx *c, const char *name, int logits, int labels, float smoothing,
                    float weight);

// ---------------------------------------------------------------- ops and cells
// The module chain of op `op` on c channels with stride s, step names relative
// to the branch module ("op.1", "ops.2", "" for a pool); empty for identity.
void lower_op_seq(int op, int c, int stride, LowerSeq *seq);
// FactorizedReduce(cin -> cout) under `module` (path1.1, path2.1, bn).
void lower_fr_declare(LowerCtx *c, const char *module, int cin, int cout);
int lower_fr_emit(LowerCtx *c, const char *module, int x, int cout);

// MaybeCalibrateSize of cell i: declare; emit on (s0, s1) into states[0..1].
void lower_calib_declare(LowerCtx *c, const NetCellLayout *cl);
void lower_calib_emit(LowerCtx *c, const NetCellLayout *cl, int s0, int s1, int states[2]);
// Drop-path of a branch output in training (drop_path_keep < 1), else x.
int lower_drop_path(LowerCtx *c, const NetCellLayout *cl, int b, char side, int x);
// Checks tensor t against a layout shape (internal error when they differ).
void lower_check_shape(const LowerCtx *c, int t, NetShape s, int i, const char *what);

void lower_cell_declare(LowerCtx *c, int i);
int lower_cell_emit(LowerCtx *c, int i, int s0, int s1);

#endif
