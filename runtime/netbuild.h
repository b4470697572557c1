// runtime/netbuild.h — a NetSpec made runnable: its training and evaluation
// graphs and their plans over one ParamTable.
//
// The pass order of a trainable graph (docs/training.md):
//   NetSpec -> overrides of aux weight / drop-path keep / dropout keep (the
//   recipe's) -> lower_network(TRAIN, with loss, label smoothing) ->
//   ir_concat_to_views -> ir_autodiff -> plan_build.
// The evaluation graph is lowered in EVAL mode with a plain cross-entropy loss
// (the reference's eval loss has no smoothing) and shares the ParamTable, so
// one set of flat arrays (params.h) serves both. Every consumer builds its
// graphs here: nao-train, nao-run, the search's evaluators and the CUDA
// backend, which then agree on names, offsets and node numbers (the masks'
// keys).
//
// Nothing here allocates the parameter arrays or runs anything.
#ifndef NAO_NETBUILD_H
#define NAO_NETBUILD_H

#include <stddef.h>

#include "compiler/ir.h"
#include "compiler/netspec.h"
#include "compiler/params.h"
#include "compiler/plan.h"

typedef struct {
  int train;                // build the TRAIN graph
  int train_grad;           // ... with its backward pass (else forward only)
  int train_loss;           // ... ending in the loss (labels needed); implied by train_grad
  int train_bn_eval;        // ... lowered in EVAL mode (BN running statistics, no aux head,
                            //   dropout or drop-path), its loss and backward as asked: a
                            //   step that does not depend on how a batch is split (tests
                            //   of data parallelism: nao-train --bn-eval)
  float label_smoothing;    // epsilon of the TRAIN graph's cross-entropy
  int eval;                 // build the EVAL graph
  int eval_loss;            // ... ending in a plain cross-entropy loss
  int eval_grad;            // ... with its backward pass (nao-run --grad in eval mode)
  int plan_reuse;           // 1: arena reuse by liveness (0: every tensor stays readable)
  // Overrides of the network's settings; negative: keep the network's.
  double aux_weight, drop_path_keep, dropout_keep;
  int ws;                   // lower on the NAO-WS supernet (lower_ws_network): the table holds
                            //   every supernet weight, the same for every architecture
  int eval_bn_batch_stats;  // EVAL graph: BN on batch statistics, running ones untouched
                            //   (the NAO-WS scoring pass, decision O7)
} NetBuildOptions;

// train + grad + loss, eval + loss, reuse on, no smoothing, no overrides, the
// ordinary network (ws 0).
void netbuild_options_default(NetBuildOptions *o);

typedef struct {
  NetSpec spec;             // the network, overrides applied
  ParamTable params;        // shared by both graphs
  int has_train, has_eval;
  IrGraph train, eval;
  Plan train_plan, eval_plan;
  unsigned char *grad_written;  // (params.n) 1: the train graph writes g(p) (the eval
                                //   graph when only it has a backward pass)
} NetBuild;

// Applies the overrides of o to ns (settings out of range: -1 with a message
// naming the setting).
int netbuild_apply_overrides(NetSpec *ns, const NetBuildOptions *o, char *err, size_t errlen);

// Builds what o asks for. Returns 0, or -1 with a message (the spec has no
// valid layout, a pass refused the graph); nb is then empty (freeing it is
// still fine).
int netbuild_create(const NetSpec *ns, const NetBuildOptions *o, NetBuild *nb, char *err,
                    size_t errlen);
void netbuild_free(NetBuild *nb);

// Node indices of the graph's dropout and drop-path nodes (forward), in order;
// returns their count. out may be NULL to count.
int netbuild_mask_nodes(const IrGraph *g, int *out);

#endif
