// compiler/ir.h — the network IR: a DAG of primitive tensor ops with static shapes.
//
// One IrGraph holds the forward ops of a network (lowered from a NetSpec by
// lower.c) and, after autodiff.c, the backward ops that compute the gradient of
// the loss with respect to every trainable parameter, in the same IR. Nodes are
// stored in a valid execution order (every node after the producers of its
// inputs); passes append, they never reorder in place.
//
// Conventions every pass relies on:
//  - Activations are float32 NCHW. Shapes are per sample (c, h, w); the batch N
//    is a run-time value, so one graph serves every batch size. A tensor is
//    `batched` (N copies) or not (per-channel statistics, the loss).
//  - A tensor may be a channel slice of another (view_of >= 0): concatenation
//    then costs nothing, each part is written into its slice.
//  - Parameters are not tensors: nodes name them by index into the ParamTable
//    (params.h), which may be shared by many graphs (weight sharing). Backward
//    nodes write parameter gradients into the gradient slot of those indices.
//  - Everything is plain data in fixed-size fields (no pointers inside nodes or
//    tensors), so naoc can print a graph as C initializers into net.cu.
//
// The per-kind contract (inputs, params, outputs) is the table below; the
// kernels of every backend implement exactly it.
#ifndef NAO_IR_H
#define NAO_IR_H

#include <stddef.h>

#include "compiler/params.h"
#include "compiler/util.h"

enum {
  IR_MAX_IN = 20,     // a concat takes up to B+2 inputs
  IR_MAX_OUT = 3,
  IR_MAX_PARAM = 4,
  IR_NAME_MAX = 112,
};

// in / param / out per kind. "g(p)": the gradient of parameter p is written
// (added to when the node's accumulate flag is set).
typedef enum {
  // ------------------------------------------------ forward
  IR_INPUT,      // -                           -> out0 images (C,H,W)
  IR_LABELS,     // -                           -> out0 labels (1,1,1) int32, batched
  IR_CONV,       // in0 x; param0 w [Co,Ci/g,kh,kw]          -> out0 y
  IR_BN,         // in0 x; params gamma beta mean var        -> out0 y; batch stats:
                 //   out1 mean (C), out2 invstd (C), unbatched; updates mean/var when attr says
  IR_RELU,       // in0 x                                    -> out0 y
  IR_ADD,        // in0..in(n-1), same shape                 -> out0 sum
  IR_CONCAT,     // in0..in(n-1), same h,w                   -> out0 channel concat
  IR_POOL,       // in0 x                                    -> out0 y
  IR_GAP,        // in0 x (C,H,W)                            -> out0 (C,1,1)
  IR_LINEAR,     // in0 x (flattened to C*H*W); param0 w [K,CHW], param1 b [K] -> out0 (K,1,1)
  IR_DROPOUT,    // in0 x                                    -> out0 y, out1 mask (0 or 1/keep, x's shape)
  IR_DROPPATH,   // in0 x                                    -> out0 y, out1 mask (1,1,1) per sample
  IR_XENT,       // in0 logits (K,1,1), in1 labels           -> out0 loss (1) unbatched,
                 //   out1 softmax (K,1,1); loss = weight * mean_n CE(label smoothing)
  // ------------------------------------------------ backward
  IR_CONV_BWD_DATA,   // in0 dy; param0 w                    -> out0 dx
  IR_CONV_BWD_FILTER, // in0 x, in1 dy; param0 w             -> g(w)
  IR_BN_BWD,          // in0 x, in1 dy, [in2 mean, in3 invstd: batch stats];
                      //   params gamma beta mean var          -> out0 dx, g(gamma), g(beta)
  IR_RELU_BWD,        // in0 y (the forward output), in1 dy  -> out0 dx
  IR_POOL_BWD,        // in0 x, in1 y, in2 dy                -> out0 dx
  IR_GAP_BWD,         // in0 dy (C,1,1)                      -> out0 dx (C,H,W)
  IR_LINEAR_BWD,      // in0 x, in1 dy; param0 w, param1 b   -> [out0 dx], g(w), g(b)
  IR_MASK_BWD,        // in0 mask, in1 dy                    -> out0 dx = dy * mask (dropout, drop-path)
  IR_XENT_BWD,        // in0 softmax, in1 labels             -> out0 dlogits
  IR_ACCUM,           // in0 g                               -> out0 (+)= g: a gradient contribution
  IR_KIND_COUNT
} IrKind;

typedef enum {
  IR_T_ACT,     // batched float32 (N, c, h, w)
  IR_T_LABELS,  // batched int32 (N)
  IR_T_STAT,    // unbatched float32 (c): per-channel statistics
  IR_T_SCALAR,  // unbatched float32 (1): a loss
} IrTensorKind;

typedef struct {
  char name[IR_NAME_MAX];  // readable: "cells.3.ops.1.x_op:relu_out", "grad:cells.3..."
  IrTensorKind kind;
  int c, h, w;             // per sample (STAT: c values; SCALAR: 1,1,1)
  int producer;            // node index; -1 while unset
  int view_of;             // -1, or the tensor this is a channel slice of
  int chan_offset;         // first channel within view_of
  int grad_of;             // for gradients: the forward tensor this is the gradient of; else -1
} IrTensor;

typedef struct {
  int kh, kw, sh, sw;
  int pt, pl, pb, pr;      // padding top/left/bottom/right; may be negative (a crop):
                           //   input row = out_row * sh - pt + ky, outside reads 0
  int groups;
  int cin, cout;
} IrConvAttr;

typedef struct {
  int is_max;
  int kh, kw, sh, sw;
  int pt, pl, pb, pr;
  int pad_counted;         // 1: padded cells are zeros that take part (max sees 0,
                           //   average divides by kh*kw); 0: they are ignored
                           //   (max: -inf, average: divide by the in-image count)
} IrPoolAttr;

typedef struct {
  float eps, momentum;     // 1e-5, 0.1
  int batch_stats;         // 1: normalise with the batch's statistics (training)
  int update_running;      // 1: running mean/var += momentum * (batch - running), var unbiased
} IrBnAttr;

typedef struct {
  float keep;              // dropout: keep probability
  int cell, n_cells;       // drop-path: the cell index i and 3N+2; keep at step t of T:
                           //   max(keep, 1 - (t+1)/T * (i+1)/n_cells * (1 - keep))
} IrDropAttr;

typedef struct {
  float smoothing;         // label smoothing epsilon (0: plain cross-entropy)
  float weight;            // 1 for the main head, the aux weight for the auxiliary head
} IrXentAttr;

typedef struct {
  IrKind kind;
  char name[IR_NAME_MAX];  // the module it serves: "cells.3.ops.1.x_op.op.1" (dw conv)
  int n_in, n_out, n_param;
  int in[IR_MAX_IN];
  int out[IR_MAX_OUT];
  int param[IR_MAX_PARAM];
  int accumulate;          // bit k set: output k (or, for parameter gradients,
                           //   bit IR_MAX_OUT + k: g(param k)) is added to, not written
  int fwd;                 // backward nodes: the forward node served; else -1
  int aux;                 // 1: part of the auxiliary head (excluded from MACs)
  union {
    IrConvAttr conv;
    IrPoolAttr pool;
    IrBnAttr bn;
    IrDropAttr drop;
    IrXentAttr xent;
  } a;
} IrNode;

typedef enum { IR_MODE_EVAL = 0, IR_MODE_TRAIN = 1 } IrMode;

typedef struct {
  IrMode mode;             // TRAIN: batch-stat BN, aux head, dropout, drop-path
  int has_loss;            // the graph ends in a loss (labels input, XENT nodes)
  int n_nodes, cap_nodes;
  IrNode *nodes;
  int n_tensors, cap_tensors;
  IrTensor *tensors;
  ParamTable *params;      // not owned: may be shared between graphs
  // Well-known tensors (-1 when absent).
  int input, labels, logits, aux_logits, loss;
  int n_fwd_nodes;         // nodes [0, n_fwd_nodes) are the forward pass
} IrGraph;

// ---------------------------------------------------------------- building
void ir_init(IrGraph *g, ParamTable *params, IrMode mode);
void ir_free(IrGraph *g);
int ir_add_tensor(IrGraph *g, IrTensorKind kind, int c, int h, int w, const char *name);
// Appends a node; sets the producer of its outputs. Returns its index.
int ir_add_node(IrGraph *g, const IrNode *node);

// ---------------------------------------------------------------- queries
const char *ir_kind_name(IrKind kind);       // "conv", "bn_bwd", ...
size_t ir_tensor_numel(const IrTensor *t);   // per sample for batched tensors
// Multiply-accumulates of one sample: conv and linear nodes of the forward
// pass, auxiliary head excluded when exclude_aux.
long long ir_macs(const IrGraph *g, int exclude_aux);
// Human-readable dump, one node a line (naoc --emit ir).
void ir_dump(const IrGraph *g, StrBuf *out);
// Checks the invariants above (shapes agree with each kind's contract, order,
// views in range). Returns 0, or -1 with a message. Used by tests and in debug.
int ir_verify(const IrGraph *g, char *err, size_t errlen);

#endif
