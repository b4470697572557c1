// compiler/lower_cell.c — one cell of the network (NAO-SPEC.md §1a.2):
// MaybeCalibrateSize, the nodes (two branches summed), the loose ends
// concatenated (FinalCombine).
//
// Module paths (the reference's): cells.i.maybe_calibrate_size.{relu,
// preprocess_x, preprocess_y}, cells.i.ops.b.{x_op, x_id_fact_reduce, y_op,
// y_id_fact_reduce}, cells.i.final_combine.ops.k. The sum of a node is named
// after its module (cells.i.ops.b), the concatenation after FinalCombine
// (cells.i.final_combine); drop-path, not a module, gets a ':' name
// (cells.i.ops.b:x_drop_path).
//
// Shapes and the calibration kinds come from the NetCellLayout; the emitted
// states and the output are checked against it.
#include "compiler/lower_internal.h"
#include "compiler/ops.h"

static const NetCell *cell_arch(const LowerCtx *c, const NetCellLayout *cl) {
  return &c->ns->cell[cl->reduction ? CELL_REDUCTION : CELL_NORMAL];
}

static int branch_stride(const NetCellLayout *cl, int in_id) {
  return cl->reduction && in_id < 2 ? 2 : 1;
}

static int is_identity(int op) { return nao_op_info(op)->kind == NAO_OPK_IDENTITY; }

// ---------------------------------------------------------------- calibration

static void calib_seq(const NetCellLayout *cl, int cin, LowerSeq *s) {
  IrConvAttr a = lower_conv_attr(cin, cl->c, 1, 1, 1, 1, 0, 0, 1);
  s->n = 0;
  lseq_relu(s, "relu");
  lseq_conv(s, "conv", &a);
  lseq_bn(s, "bn", cl->c);
}

static void calib_declare_one(LowerCtx *c, const NetCellLayout *cl, CalibKind kind, int cin,
                              const char *which) {
  char module[IR_NAME_MAX];
  lower_name(module, sizeof module, "cells.%d.maybe_calibrate_size.%s", cl->index, which);
  LowerSeq s;
  if (kind == CALIB_CONV) {
    calib_seq(cl, cin, &s);
    lseq_declare(c, module, &s);
  } else if (kind == CALIB_FR) {
    lower_fr_declare(c, module, cin, cl->c);
  }
}

static int calib_emit_one(LowerCtx *c, const NetCellLayout *cl, CalibKind kind, int x,
                          const char *which) {
  char module[IR_NAME_MAX];
  lower_name(module, sizeof module, "cells.%d.maybe_calibrate_size.%s", cl->index, which);
  LowerSeq s;
  if (kind == CALIB_CONV) {
    calib_seq(cl, c->g->tensors[x].c, &s);
    return lseq_emit(c, module, &s, x);
  }
  if (kind == CALIB_FR) {  // MaybeCalibrateSize's own ReLU, then FR
    char relu[IR_NAME_MAX];
    lower_name(relu, sizeof relu, "cells.%d.maybe_calibrate_size.relu", cl->index);
    x = lower_emit_relu(c, relu, x);
    return lower_fr_emit(c, module, x, cl->c);
  }
  return x;
}

void lower_calib_declare(LowerCtx *c, const NetCellLayout *cl) {
  calib_declare_one(c, cl, cl->calib0, cl->in0.c, "preprocess_x");
  calib_declare_one(c, cl, cl->calib1, cl->in1.c, "preprocess_y");
}

void lower_calib_emit(LowerCtx *c, const NetCellLayout *cl, int s0, int s1, int states[2]) {
  lower_check_shape(c, s0, cl->in0, cl->index, "input 0");
  lower_check_shape(c, s1, cl->in1, cl->index, "input 1");
  states[0] = calib_emit_one(c, cl, cl->calib0, s0, "preprocess_x");
  states[1] = calib_emit_one(c, cl, cl->calib1, s1, "preprocess_y");
  lower_check_shape(c, states[0], cl->state, cl->index, "calibrated input 0");
  lower_check_shape(c, states[1], cl->state, cl->index, "calibrated input 1");
}

int lower_drop_path(LowerCtx *c, const NetCellLayout *cl, int b, char side, int x) {
  if (c->opt.mode != IR_MODE_TRAIN || !(c->ns->drop_path_keep < 1)) return x;
  char module[IR_NAME_MAX];
  lower_name(module, sizeof module, "cells.%d.ops.%d:%c_drop_path", cl->index, b, side);
  return lower_emit_droppath(c, module, x, (float)c->ns->drop_path_keep, cl->index, c->L->n_cells);
}

// ---------------------------------------------------------------- branches

static void branch_declare(LowerCtx *c, const NetCellLayout *cl, int b, char side, int in_id,
                           int op) {
  char module[IR_NAME_MAX];
  int s = branch_stride(cl, in_id);
  LowerSeq seq;
  lower_op_seq(op, cl->c, s, &seq);
  lower_name(module, sizeof module, "cells.%d.ops.%d.%c_op", cl->index, b, side);
  lseq_declare(c, module, &seq);
  if (is_identity(op) && s == 2) {
    lower_name(module, sizeof module, "cells.%d.ops.%d.%c_id_fact_reduce", cl->index, b, side);
    lower_fr_declare(c, module, cl->state.c, cl->c);
  }
}

// [op] (+ FR for identity at stride 2) (+ drop-path in training).
static int branch_emit(LowerCtx *c, const NetCellLayout *cl, int b, char side, int in_id, int op,
                       int x) {
  char module[IR_NAME_MAX];
  int s = branch_stride(cl, in_id);
  LowerSeq seq;
  lower_op_seq(op, cl->c, s, &seq);
  lower_name(module, sizeof module, "cells.%d.ops.%d.%c_op", cl->index, b, side);
  x = lseq_emit(c, module, &seq, x);
  if (is_identity(op) && s == 2) {
    lower_name(module, sizeof module, "cells.%d.ops.%d.%c_id_fact_reduce", cl->index, b, side);
    x = lower_fr_emit(c, module, x, cl->c);
  }
  return lower_drop_path(c, cl, b, side, x);
}

// ---------------------------------------------------------------- cells

// State_dict order: ops (per node x_op, x_id_fact_reduce, y_op,
// y_id_fact_reduce), maybe_calibrate_size (x, y), final_combine.
void lower_cell_declare(LowerCtx *c, int i) {
  const NetCellLayout *cl = &c->L->cell[i];
  const NetCell *arch = cell_arch(c, cl);
  for (int b = 0; b < arch->n_nodes; b++) {
    const NetNode *n = &arch->node[b];
    branch_declare(c, cl, b, 'x', n->x_in, n->x_op);
    branch_declare(c, cl, b, 'y', n->y_in, n->y_op);
  }
  lower_calib_declare(c, cl);
  char module[IR_NAME_MAX];
  for (int k = 0, j = 0; k < cl->n_concat; k++) {
    if (!cl->concat_fr[k]) continue;
    lower_name(module, sizeof module, "cells.%d.final_combine.ops.%d", i, j++);
    lower_fr_declare(c, module, cl->state.c, cl->c);
  }
}

void lower_check_shape(const LowerCtx *c, int t, NetShape s, int i, const char *what) {
  const IrTensor *x = &c->g->tensors[t];
  if (x->c != s.c || x->h != s.h || x->w != s.w)
    nao_internal("cell %d: %s is %dx%dx%d, the layout says %dx%dx%d", i, what, x->c, x->h, x->w,
                 s.c, s.h, s.w);
}

static int cell_output(LowerCtx *c, const NetCellLayout *cl, const int *states) {
  char module[IR_NAME_MAX];
  int parts[NAO_MAX_STATES];
  for (int k = 0, j = 0; k < cl->n_concat; k++) {
    parts[k] = states[cl->concat[k]];
    if (cl->concat_fr[k]) {  // a loose input of a reduction cell: FR, no ReLU
      lower_name(module, sizeof module, "cells.%d.final_combine.ops.%d", cl->index, j++);
      parts[k] = lower_fr_emit(c, module, parts[k], cl->c);
    }
  }
  if (cl->n_concat == 1) return parts[0];
  lower_name(module, sizeof module, "cells.%d.final_combine", cl->index);
  return lower_emit_concat(c, module, parts, cl->n_concat);
}

int lower_cell_emit(LowerCtx *c, int i, int s0, int s1) {
  const NetCellLayout *cl = &c->L->cell[i];
  const NetCell *arch = cell_arch(c, cl);
  int states[NAO_MAX_STATES];
  lower_calib_emit(c, cl, s0, s1, states);
  for (int b = 0; b < arch->n_nodes; b++) {
    const NetNode *n = &arch->node[b];
    int xy[2];
    xy[0] = branch_emit(c, cl, b, 'x', n->x_in, n->x_op, states[n->x_in]);
    xy[1] = branch_emit(c, cl, b, 'y', n->y_in, n->y_op, states[n->y_in]);
    char module[IR_NAME_MAX];
    lower_name(module, sizeof module, "cells.%d.ops.%d", i, b);
    states[b + 2] = lower_emit_add(c, module, xy, 2);
  }
  int out = cell_output(c, cl, states);
  lower_check_shape(c, out, cl->out, i, "output");
  return out;
}
