// compiler/lower_ws.c — the NAO-WS weight-sharing supernet (NAO-SPEC.md §1c,
// NASWSNetworkCIFAR) restricted to one architecture.
//
// The declaration walk registers every weight of the supernet (every op of the
// 5-op space, for every possible input id of every node and branch) in the
// supernet's state_dict order, so the graphs of all architectures share one
// ParamTable; the emission walk uses only what the architecture picks:
//  - sep 3x3 / 5x5 (`WSSepConv`): weight set j = the branch's input id:
//    W1_depthwise.j, W1_pointwise.j, bn1 (WSBN: weight.j, bias.j, one shared
//    running mean/var), W2_depthwise.j, W2_pointwise.j, bn2; stride on dw1;
//  - avg 3x3 (padding not counted) and max 3x3, pad 1: x_avg_pool, x_max_pool;
//  - identity: at stride 2 FactorizedReduce x_id_reduce_1 (input 0) or
//    x_id_reduce_2 (input 1); the y branch uses its own y_id_reduce_*
//    (decision O5; the reference uses the x branch's);
//  - cell end: loose ends (reduction cells: inputs 0/1 through fac_1/fac_2),
//    then WSReLUConvBN: ReLU, a 1x1 conv whose weight is the channel concat
//    of the blocks w.id of the concatenated ids, BN. Lowered as
//    sum_k conv1x1(ReLU(state_k), w.id_k), then BN: the same function
//    without materialising the concat or the concatenated weight.
// Every cell outputs c channels, so the shapes (and the calibration kinds)
// differ from the ordinary network's: ws_layout() derives them from
// netspec_layout()'s spatial sizes.
// Only the CIFAR stem exists (the reference's ImageNet supernet is broken,
// O6); only ops 0-4.
#include <stdio.h>
#include <string.h>

#include "compiler/lower_internal.h"
#include "compiler/ops.h"

// ---------------------------------------------------------------- layout

static int ws_check(const NetSpec *ns, char *err, size_t errlen) {
  if (ns->stem != STEM_CIFAR) {
    snprintf(err, errlen, "the weight-sharing supernet has the CIFAR stem only (the reference's ImageNet supernet does not run, NAO-SPEC O6)");
    return -1;
  }
  for (int k = 0; k < 2; k++)
    for (int b = 0; b < ns->cell[k].n_nodes; b++) {
      const NetNode *n = &ns->cell[k].node[b];
      if (n->x_op > NAO_OP_IDENTITY || n->y_op > NAO_OP_IDENTITY) {
        snprintf(err, errlen, "%s cell, node %d: op %d is not in the supernet's 5-op space (0 to 4)",
                 k ? "reduction" : "normal", b + 2, n->x_op > NAO_OP_IDENTITY ? n->x_op : n->y_op);
        return -1;
      }
    }
  return 0;
}

// The ordinary layout's sizes and loose ends with every cell's output at c
// channels; the calibration kinds follow from the new input channels.
static int ws_layout(const NetSpec *ns, NetLayout *L, char *err, size_t errlen) {
  if (ws_check(ns, err, errlen) != 0) return -1;
  if (netspec_layout(ns, L, err, errlen) != LAYOUT_OK) return -1;
  NetShape s0 = L->stem0, s1 = L->stem1;
  for (int i = 0; i < L->n_cells; i++) {
    NetCellLayout *cl = &L->cell[i];
    cl->in0 = s0;
    cl->in1 = s1;
    if (s0.h != s1.h || s0.w != s1.w)
      cl->calib0 = CALIB_FR;
    else
      cl->calib0 = s0.c != cl->c ? CALIB_CONV : CALIB_NONE;
    cl->calib1 = s1.c != cl->c ? CALIB_CONV : CALIB_NONE;
    cl->state = (NetShape){s1.h, s1.w, cl->c};
    cl->out.c = cl->c;
    s0 = s1;
    s1 = cl->out;
  }
  L->final = s1;
  if (L->has_aux) L->aux_in = L->cell[L->aux_cell].out;
  return 0;
}

// ---------------------------------------------------------------- declaration

static void decl_list(LowerCtx *c, const char *module, const char *list, int n, int ndim,
                      const int *dims, int trainable, ParamInit init, int fan_in) {
  char name[PARAM_NAME_MAX];
  for (int j = 0; j < n; j++) {
    lower_name(name, sizeof name, "%s.%s.%d", module, list, j);
    params_get(c->params, name, ndim, dims, trainable, init, fan_in, c->aux);
  }
}

// WSBN: its own buffers first, then the ParameterLists weight.j, bias.j.
static void decl_wsbn(LowerCtx *c, const char *module, int ch, int n) {
  char name[PARAM_NAME_MAX];
  lower_name(name, sizeof name, "%s.running_mean", module);
  params_get(c->params, name, 1, &ch, 0, PINIT_ZEROS, 0, c->aux);
  lower_name(name, sizeof name, "%s.running_var", module);
  params_get(c->params, name, 1, &ch, 0, PINIT_ONES, 0, c->aux);
  decl_list(c, module, "weight", n, 1, &ch, 1, PINIT_ONES, 0);
  decl_list(c, module, "bias", n, 1, &ch, 1, PINIT_ZEROS, 0);
}

static void decl_wssep(LowerCtx *c, const char *module, int ch, int k, int n) {
  int dw[4] = {ch, 1, k, k}, pw[4] = {ch, ch, 1, 1};
  char sub[IR_NAME_MAX];
  for (int half = 1; half <= 2; half++) {
    char list[16];
    lower_name(list, sizeof list, "W%d_depthwise", half);
    decl_list(c, module, list, n, 4, dw, 1, PINIT_KAIMING_NORMAL, k * k);
    lower_name(list, sizeof list, "W%d_pointwise", half);
    decl_list(c, module, list, n, 4, pw, 1, PINIT_KAIMING_NORMAL, ch);
    lower_name(sub, sizeof sub, "%s.bn%d", module, half);
    decl_wsbn(c, sub, ch, n);
  }
}

// Node b: per branch x then y: avg, max (no parameters), sep 3x3, sep 5x5,
// and in reduction cells the two identity FRs.
static void ws_node_declare(LowerCtx *c, const NetCellLayout *cl, int b) {
  char module[IR_NAME_MAX];
  for (int side = 0; side < 2; side++) {
    char sd = side ? 'y' : 'x';
    lower_name(module, sizeof module, "cells.%d.ops.%d.%c_sep_conv_3", cl->index, b, sd);
    decl_wssep(c, module, cl->c, 3, b + 2);
    lower_name(module, sizeof module, "cells.%d.ops.%d.%c_sep_conv_5", cl->index, b, sd);
    decl_wssep(c, module, cl->c, 5, b + 2);
    if (!cl->reduction) continue;
    for (int r = 1; r <= 2; r++) {
      lower_name(module, sizeof module, "cells.%d.ops.%d.%c_id_reduce_%d", cl->index, b, sd, r);
      lower_fr_declare(c, module, cl->state.c, cl->c);
    }
  }
}

// State_dict order of a supernet cell: ops, maybe_calibrate_size,
// [fac_1, fac_2], final_combine_conv (w.0..w.B+1, then bn).
static void ws_cell_declare(LowerCtx *c, int i) {
  const NetCellLayout *cl = &c->L->cell[i];
  int nodes = c->ns->cell[cl->reduction].n_nodes;
  for (int b = 0; b < nodes; b++) ws_node_declare(c, cl, b);
  lower_calib_declare(c, cl);
  char module[IR_NAME_MAX];
  if (cl->reduction)
    for (int r = 1; r <= 2; r++) {
      lower_name(module, sizeof module, "cells.%d.fac_%d", i, r);
      lower_fr_declare(c, module, cl->state.c, cl->c);
    }
  int w[4] = {cl->c, cl->c, 1, 1};
  lower_name(module, sizeof module, "cells.%d.final_combine_conv", i);
  decl_list(c, module, "w", nodes + 2, 4, w, 1, PINIT_KAIMING_NORMAL, cl->c);
  lower_name(module, sizeof module, "cells.%d.final_combine_conv.bn", i);
  lower_declare_bn(c, module, cl->c);
}

// ---------------------------------------------------------------- emission

static int list_param(LowerCtx *c, const char *module, const char *list, int j, int ndim,
                      const int *dims) {
  char leaf[32];
  lower_name(leaf, sizeof leaf, "%s.%d", list, j);
  return lower_use_param(c, module, leaf, ndim, dims);
}

static int ws_bn(LowerCtx *c, const char *module, int x, int j) {
  int ch = c->g->tensors[x].c, p[4];
  p[0] = list_param(c, module, "weight", j, 1, &ch);
  p[1] = list_param(c, module, "bias", j, 1, &ch);
  p[2] = lower_use_param(c, module, "running_mean", 1, &ch);
  p[3] = lower_use_param(c, module, "running_var", 1, &ch);
  return lower_emit_bn_p(c, module, x, p);
}

// WSSepConv with weight set j: ReLU dw(stride s) pw WSBN ReLU dw pw WSBN.
static int ws_sep(LowerCtx *c, const char *module, int x, int k, int s, int j) {
  int ch = c->g->tensors[x].c;
  int dw[4] = {ch, 1, k, k}, pw[4] = {ch, ch, 1, 1};
  char name[IR_NAME_MAX], list[16];
  for (int half = 1; half <= 2; half++) {
    int st = half == 1 ? s : 1;
    IrConvAttr da = lower_conv_attr(ch, ch, k, k, st, st, k / 2, k / 2, ch);
    IrConvAttr pa = lower_conv_attr(ch, ch, 1, 1, 1, 1, 0, 0, 1);
    lower_name(name, sizeof name, "%s.relu%d", module, half);
    x = lower_emit_relu(c, name, x);
    lower_name(list, sizeof list, "W%d_depthwise", half);
    lower_name(name, sizeof name, "%s.%s.%d", module, list, j);
    x = lower_emit_conv_p(c, name, x, &da, list_param(c, module, list, j, 4, dw));
    lower_name(list, sizeof list, "W%d_pointwise", half);
    lower_name(name, sizeof name, "%s.%s.%d", module, list, j);
    x = lower_emit_conv_p(c, name, x, &pa, list_param(c, module, list, j, 4, pw));
    lower_name(name, sizeof name, "%s.bn%d", module, half);
    x = ws_bn(c, name, x, j);
  }
  return x;
}

static int ws_branch(LowerCtx *c, const NetCellLayout *cl, int b, char side, int in, int op,
                     int x) {
  char module[IR_NAME_MAX];
  int s = cl->reduction && in < 2 ? 2 : 1;
  if (op == NAO_OP_SEP3X3 || op == NAO_OP_SEP5X5) {
    int k = op == NAO_OP_SEP3X3 ? 3 : 5;
    lower_name(module, sizeof module, "cells.%d.ops.%d.%c_sep_conv_%d", cl->index, b, side, k);
    x = ws_sep(c, module, x, k, s, in);
  } else if (op == NAO_OP_AVG3X3 || op == NAO_OP_MAX3X3) {
    IrPoolAttr a = {.is_max = op == NAO_OP_MAX3X3, .kh = 3, .kw = 3, .sh = s, .sw = s,
                    .pt = 1, .pl = 1, .pb = 1, .pr = 1, .pad_counted = 0};
    lower_name(module, sizeof module, "cells.%d.ops.%d.%c_%s_pool", cl->index, b, side,
               a.is_max ? "max" : "avg");
    x = lower_emit_pool(c, module, x, &a);
  } else if (s == 2) {  // identity at stride 2: this branch's FR for input 0 or 1
    lower_name(module, sizeof module, "cells.%d.ops.%d.%c_id_reduce_%d", cl->index, b, side, in + 1);
    x = lower_fr_emit(c, module, x, cl->c);
  }
  return lower_drop_path(c, cl, b, side, x);
}

// Loose ends (fac_1/fac_2 for inputs of a reduction cell), then
// WSReLUConvBN as a sum of per-state 1x1 convs.
static int ws_cell_output(LowerCtx *c, const NetCellLayout *cl, const int *states) {
  char module[IR_NAME_MAX], name[IR_NAME_MAX];
  int parts[NAO_MAX_STATES];
  int w[4] = {cl->c, cl->c, 1, 1};
  IrConvAttr a = lower_conv_attr(cl->c, cl->c, 1, 1, 1, 1, 0, 0, 1);
  lower_name(module, sizeof module, "cells.%d.final_combine_conv", cl->index);
  for (int k = 0; k < cl->n_concat; k++) {
    int id = cl->concat[k], x = states[id];
    if (cl->concat_fr[k]) {
      lower_name(name, sizeof name, "cells.%d.fac_%d", cl->index, id + 1);
      x = lower_fr_emit(c, name, x, cl->c);
    }
    lower_name(name, sizeof name, "%s.relu:%d", module, id);
    x = lower_emit_relu(c, name, x);
    lower_name(name, sizeof name, "%s.w.%d", module, id);
    parts[k] = lower_emit_conv_p(c, name, x, &a, list_param(c, module, "w", id, 4, w));
  }
  int x = parts[0];
  if (cl->n_concat > 1) {
    lower_name(name, sizeof name, "%s:sum", module);
    x = lower_emit_add(c, name, parts, cl->n_concat);
  }
  lower_name(name, sizeof name, "%s.bn", module);
  return lower_emit_bn(c, name, x);
}

static int ws_cell_emit(LowerCtx *c, int i, int s0, int s1) {
  const NetCellLayout *cl = &c->L->cell[i];
  const NetCell *arch = &c->ns->cell[cl->reduction];
  int states[NAO_MAX_STATES];
  lower_calib_emit(c, cl, s0, s1, states);
  for (int b = 0; b < arch->n_nodes; b++) {
    const NetNode *n = &arch->node[b];
    int xy[2];
    xy[0] = ws_branch(c, cl, b, 'x', n->x_in, n->x_op, states[n->x_in]);
    xy[1] = ws_branch(c, cl, b, 'y', n->y_in, n->y_op, states[n->y_in]);
    char module[IR_NAME_MAX];
    lower_name(module, sizeof module, "cells.%d.ops.%d", i, b);
    states[b + 2] = lower_emit_add(c, module, xy, 2);
  }
  int out = ws_cell_output(c, cl, states);
  lower_check_shape(c, out, cl->out, i, "output");
  return out;
}

// ---------------------------------------------------------------- entry points

static const LowerFamily ws_family = {ws_layout, ws_cell_declare, ws_cell_emit};

int lower_ws_declare_params(const NetSpec *ns, ParamTable *params, char *err, size_t errlen) {
  return lower_run(ns, NULL, params, NULL, &ws_family, err, errlen);
}

int lower_ws_network(const NetSpec *ns, const LowerOptions *opt, ParamTable *params, IrGraph *g,
                     char *err, size_t errlen) {
  return lower_run(ns, opt, params, g, &ws_family, err, errlen);
}
