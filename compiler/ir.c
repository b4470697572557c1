// compiler/ir.c — building and querying IrGraphs (ir.h).
#include "compiler/ir.h"

#include <stdlib.h>
#include <string.h>

void ir_init(IrGraph *g, ParamTable *params, IrMode mode) {
  memset(g, 0, sizeof *g);
  g->params = params;
  g->mode = mode;
  g->input = g->labels = g->logits = g->aux_logits = g->loss = -1;
}

void ir_free(IrGraph *g) {
  free(g->nodes);
  free(g->tensors);
  g->nodes = NULL;
  g->tensors = NULL;
  g->n_nodes = g->n_tensors = g->cap_nodes = g->cap_tensors = 0;
}

int ir_add_tensor(IrGraph *g, IrTensorKind kind, int c, int h, int w, const char *name) {
  if (g->n_tensors == g->cap_tensors) {
    g->cap_tensors = g->cap_tensors ? 2 * g->cap_tensors : 256;
    g->tensors = xrealloc(g->tensors, sizeof *g->tensors * (size_t)g->cap_tensors);
  }
  IrTensor *t = &g->tensors[g->n_tensors];
  memset(t, 0, sizeof *t);
  size_t n = strlen(name);
  if (n >= IR_NAME_MAX) n = IR_NAME_MAX - 1;
  memcpy(t->name, name, n);
  t->kind = kind;
  t->c = c;
  t->h = h;
  t->w = w;
  t->producer = -1;
  t->view_of = -1;
  t->grad_of = -1;
  return g->n_tensors++;
}

int ir_add_node(IrGraph *g, const IrNode *node) {
  if (g->n_nodes == g->cap_nodes) {
    g->cap_nodes = g->cap_nodes ? 2 * g->cap_nodes : 256;
    g->nodes = xrealloc(g->nodes, sizeof *g->nodes * (size_t)g->cap_nodes);
  }
  NAO_ASSERT(node->n_in <= IR_MAX_IN && node->n_out <= IR_MAX_OUT && node->n_param <= IR_MAX_PARAM);
  int id = g->n_nodes++;
  g->nodes[id] = *node;
  for (int k = 0; k < node->n_out; k++) {
    NAO_ASSERT(node->out[k] >= 0 && node->out[k] < g->n_tensors);
    if (!(node->accumulate & (1 << k))) g->tensors[node->out[k]].producer = id;
  }
  return id;
}

static const char *const kind_names[IR_KIND_COUNT] = {
    [IR_INPUT] = "input",
    [IR_LABELS] = "labels",
    [IR_CONV] = "conv",
    [IR_BN] = "bn",
    [IR_RELU] = "relu",
    [IR_ADD] = "add",
    [IR_CONCAT] = "concat",
    [IR_POOL] = "pool",
    [IR_GAP] = "gap",
    [IR_LINEAR] = "linear",
    [IR_DROPOUT] = "dropout",
    [IR_DROPPATH] = "droppath",
    [IR_XENT] = "xent",
    [IR_CONV_BWD_DATA] = "conv_bwd_data",
    [IR_CONV_BWD_FILTER] = "conv_bwd_filter",
    [IR_BN_BWD] = "bn_bwd",
    [IR_RELU_BWD] = "relu_bwd",
    [IR_POOL_BWD] = "pool_bwd",
    [IR_GAP_BWD] = "gap_bwd",
    [IR_LINEAR_BWD] = "linear_bwd",
    [IR_MASK_BWD] = "mask_bwd",
    [IR_XENT_BWD] = "xent_bwd",
    [IR_ACCUM] = "accum",
};

const char *ir_kind_name(IrKind kind) {
  if ((int)kind < 0 || kind >= IR_KIND_COUNT || !kind_names[kind]) return "?";
  return kind_names[kind];
}

size_t ir_tensor_numel(const IrTensor *t) { return (size_t)t->c * (size_t)t->h * (size_t)t->w; }

long long ir_macs(const IrGraph *g, int exclude_aux) {
  long long macs = 0;
  for (int i = 0; i < g->n_fwd_nodes; i++) {
    const IrNode *n = &g->nodes[i];
    if (exclude_aux && n->aux) continue;
    if (n->kind == IR_CONV) {
      const IrTensor *y = &g->tensors[n->out[0]];
      const IrConvAttr *c = &n->a.conv;
      macs += (long long)y->c * y->h * y->w * (c->cin / c->groups) * c->kh * c->kw;
    } else if (n->kind == IR_LINEAR) {
      const IrTensor *x = &g->tensors[n->in[0]], *y = &g->tensors[n->out[0]];
      macs += (long long)ir_tensor_numel(x) * y->c;
    }
  }
  return macs;
}
