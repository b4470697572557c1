// compiler/autodiff.h — reverse-mode differentiation of an IrGraph, and the
// pass that turns concatenations into views.
//
// Order of the passes on a training graph (docs/autodiff-and-plan.md):
//   lower -> [ir_share_relus] -> ir_concat_to_views -> ir_autodiff -> plan_build
// ir_concat_to_views may also run after ir_autodiff (the gradients are the
// same either way); plan_build accepts graphs with or without it.
//
// Invariants both passes keep:
//  - nodes stay in a valid execution order (every node after the writers of
//    what it reads); ir_autodiff only appends, ir_concat_to_views inserts copy
//    nodes before the concat they serve and renumbers every stored node index;
//  - a view is always a view of a root tensor (view_of never points at a view:
//    views of views are flattened, offsets added);
//  - a tensor is written by one node, later nodes only add to it (accumulate
//    bit set), and nothing writes a tensor after its first reader ran, except
//    those adds, which all come before any reader of the sum.
#ifndef NAO_AUTODIFF_H
#define NAO_AUTODIFF_H

#include <stddef.h>

#include "compiler/ir.h"

// Appends the backward pass of g's forward nodes [0, n_fwd_nodes): the
// gradient of g->loss (seed 1; the loss is the XENT outputs, written into
// g->loss directly or summed into it by ADD nodes) with respect to every
// trainable parameter that reaches the loss, written into the gradient slots of
// those parameters (accumulate bits when a parameter serves several nodes), and
// the activation gradients that computation needs, no others (none for the
// input image, none for tensors that do not depend on a parameter).
// g must be a forward graph (n_nodes == n_fwd_nodes) with a loss. Returns 0, or
// -1 with a message (g is then left with its forward nodes only).
int ir_autodiff(IrGraph *g, char *err, size_t errlen);

// Marks in written[p] (g->params->n entries, zeroed by the caller) the
// trainable parameters whose gradient slot some node of g writes. The slots of
// other parameters are left untouched by a training step.
void ir_grad_params_written(const IrGraph *g, unsigned char *written);

// Makes every concat input that only the concat consumes a channel view of the
// concat's output (its producer then writes straight into the slice), and gives
// every other input a copy node (IR_ACCUM, no accumulate bit) into its slice,
// placed just before the concat. Afterwards every CONCAT node is in place (see
// below): backends skip it. Returns the number of inputs made views (>= 0), or
// -1 with a message.
int ir_concat_to_views(IrGraph *g, char *err, size_t errlen);

// 1 when every input k of CONCAT node `node` is the channel slice of its output
// that the concat would write (a view of the same root at the output's offset
// plus the channels of inputs 0..k-1): executing the node changes nothing.
int ir_concat_in_place(const IrGraph *g, int node);

// Makes every reader of a ReLU whose input another, earlier ReLU already
// rectifies (same input tensor, same aux flag) read that earlier ReLU's output
// instead. The duplicates stay in the graph, unread: the plan leaves them out
// (ir_dead_nodes). Values, losses and gradients are unchanged. Forward graphs
// only (before ir_autodiff). Returns the number of ReLUs made redundant
// (>= 0), or -1 with a message.
int ir_share_relus(IrGraph *g, char *err, size_t errlen);

// Nodes a plan leaves out because nothing observes what they compute: nodes
// of side-effect-free kinds (conv, relu, add, concat, pool, gap, linear,
// accum; no accumulate bit) whose outputs are roots no node reads, no view
// refers to and that are none of the graph's well-known tensors; then, in turn,
// the nodes only those read. Returns a mask of g->n_nodes bytes (1: dead) to
// free.
unsigned char *ir_dead_nodes(const IrGraph *g);

// Checks what every pass indexes with: node counts within IR_MAX_*, tensor and
// parameter indices in range, views of existing tensors, no view cycles.
// Returns 0, or -1 naming the node or tensor (a malformed graph is refused, not
// crashed on).
int ir_check_indices(const IrGraph *g, char *err, size_t errlen);

// The root of tensor t (t itself, or the tensor it is a view of) and t's first
// channel within it.
int ir_root(const IrGraph *g, int t);
int ir_root_offset(const IrGraph *g, int t);

#endif
