// compiler/share_relu.c — one ReLU per tensor (ir_share_relus) and the nodes a
// plan may leave out because nothing reads what they compute (ir_dead_nodes).
//
// Every conv op of the reference starts with its own ReLU, so a state read by
// four conv ops is rectified four times, and the four results are kept for the
// backward pass. ir_share_relus makes every reader of such a duplicate read the
// first ReLU of the same tensor instead; the duplicates are then dead: their
// outputs have no reader. The computation is unchanged (ReLU is a pure
// function of its input), so is every value, loss and gradient; the backward
// pass gets one ReLU backward per tensor, the consumers' input gradients
// accumulated into its dy.
//
// Nodes are never removed or renumbered: node indices key the dropout and
// drop-path masks (cpu_mask_key), which must not change. Instead the plan
// leaves dead nodes out of its steps (plan_build uses ir_dead_nodes), so their
// outputs get no storage and they cost nothing; the reference interpreter,
// which runs every node, still computes them, harmlessly.
#include <stdio.h>
#include <stdlib.h>

#include "compiler/autodiff.h"

// The tensor is something a caller reads after a run (not only nodes).
static int well_known(const IrGraph *g, int t) {
  return t == g->input || t == g->labels || t == g->logits || t == g->aux_logits || t == g->loss;
}

// Output t of a node may be dropped: a root that no view refers to and no
// caller reads.
static int droppable_tensor(const IrGraph *g, const int *viewed, int t) {
  return g->tensors[t].view_of < 0 && !viewed[t] && !well_known(g, t);
}

// Kinds whose only effect is writing their outputs (no parameter gradients,
// no running statistics, no masks for later nodes).
static int pure_kind(IrKind k) {
  switch (k) {
    case IR_CONV:
    case IR_RELU:
    case IR_ADD:
    case IR_CONCAT:
    case IR_POOL:
    case IR_GAP:
    case IR_LINEAR:
    case IR_ACCUM:
      return 1;
    default:
      return 0;
  }
}

static int *view_counts(const IrGraph *g) {
  int *viewed = xcalloc((size_t)g->n_tensors + 1, sizeof(int));
  for (int t = 0; t < g->n_tensors; t++)
    if (g->tensors[t].view_of >= 0) viewed[g->tensors[t].view_of]++;
  return viewed;
}

int ir_share_relus(IrGraph *g, char *err, size_t errlen) {
  if (ir_check_indices(g, err, errlen) < 0) return -1;
  if (g->n_nodes != g->n_fwd_nodes) {
    snprintf(err, errlen, "share relus: the graph already has backward nodes (%d nodes, %d forward)",
             g->n_nodes, g->n_fwd_nodes);
    return -1;
  }
  int *viewed = view_counts(g);
  int *writers = xcalloc((size_t)g->n_tensors + 1, sizeof(int));
  int *readers = xcalloc((size_t)g->n_tensors + 1, sizeof(int));
  int *first = xmalloc(sizeof(int) * ((size_t)g->n_tensors + 1));  // per input: its first relu
  for (int t = 0; t < g->n_tensors; t++) first[t] = -1;
  for (int i = 0; i < g->n_nodes; i++) {
    for (int k = 0; k < g->nodes[i].n_out; k++) writers[g->nodes[i].out[k]]++;
    for (int k = 0; k < g->nodes[i].n_in; k++) readers[g->nodes[i].in[k]]++;
  }
  int merged = 0;
  for (int i = 0; i < g->n_nodes; i++) {
    const IrNode *n = &g->nodes[i];
    if (n->kind != IR_RELU || n->n_in != 1 || n->n_out != 1 || n->accumulate) continue;
    const int x = n->in[0], y = n->out[0];
    const int j = first[x];
    if (j < 0) {
      first[x] = i;
      continue;
    }
    if (g->nodes[j].aux != n->aux || writers[y] != 1 || readers[y] == 0 ||
        !droppable_tensor(g, viewed, y))
      continue;  // (no readers: already made redundant)
    const int y0 = g->nodes[j].out[0];
    for (int r = i + 1; r < g->n_nodes; r++)
      for (int k = 0; k < g->nodes[r].n_in; k++)
        if (g->nodes[r].in[k] == y) g->nodes[r].in[k] = y0;
    readers[y0] += readers[y];
    readers[y] = 0;
    merged++;
  }
  free(first);
  free(readers);
  free(writers);
  free(viewed);
  return merged;
}

unsigned char *ir_dead_nodes(const IrGraph *g) {
  unsigned char *dead = xcalloc((size_t)g->n_nodes + 1, 1);
  int *viewed = view_counts(g);
  int *readers = xcalloc((size_t)g->n_tensors + 1, sizeof(int));
  for (int i = 0; i < g->n_nodes; i++) {
    const IrNode *n = &g->nodes[i];
    for (int k = 0; k < n->n_in; k++) readers[n->in[k]]++;
    for (int k = 0; k < n->n_out; k++)  // adding to a tensor reads it
      if (n->accumulate & (1 << k)) readers[n->out[k]]++;
  }
  // Backwards, so that the inputs of a dead node may die in turn.
  for (int i = g->n_nodes - 1; i >= 0; i--) {
    const IrNode *n = &g->nodes[i];
    if (!pure_kind(n->kind) || n->accumulate || ir_concat_in_place(g, i)) continue;
    int is_dead = n->n_out > 0;
    for (int k = 0; k < n->n_out && is_dead; k++)
      is_dead = readers[n->out[k]] == 0 && droppable_tensor(g, viewed, n->out[k]);
    if (!is_dead) continue;
    dead[i] = 1;
    for (int k = 0; k < n->n_in; k++) readers[n->in[k]]--;
  }
  free(readers);
  free(viewed);
  return dead;
}
