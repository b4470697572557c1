// tests/unit/graph_builders.h — hand-built IrGraphs for the autodiff, gradient
// check and plan tests: one call per IR node (shapes computed, parameters
// registered in the graph's ParamTable under "NAME.weight" etc.), a few
// composites in the shape of the reference network's modules, and random
// values for parameters, inputs and labels.
//
// Every builder returns the index of its output tensor. Forward nodes get
// fwd = -1. gb_finish marks the nodes built so far as the forward pass.
#ifndef NAO_TESTS_GRAPH_BUILDERS_H
#define NAO_TESTS_GRAPH_BUILDERS_H

#include <stdint.h>

#include "compiler/ir.h"
#include "tests/unit/ir_ref.h"

int gb_input(IrGraph *g, int c, int h, int w);
int gb_labels(IrGraph *g);
int gb_conv(IrGraph *g, const char *name, int x, int cout, int kh, int kw, int sh, int sw,
            int pt, int pl, int pb, int pr, int groups);
// Square kernel, same stride both ways, symmetric padding.
int gb_conv_sq(IrGraph *g, const char *name, int x, int cout, int k, int s, int pad, int groups);
// Batch statistics (with mean/invstd outputs) when batch_stats, else running.
int gb_bn(IrGraph *g, const char *name, int x, int batch_stats, int update_running);
int gb_relu(IrGraph *g, const char *name, int x);
int gb_add(IrGraph *g, const char *name, int n, const int *xs);
int gb_concat(IrGraph *g, const char *name, int n, const int *xs);
int gb_pool(IrGraph *g, const char *name, int x, int is_max, int kh, int kw, int sh, int sw,
            int pt, int pl, int pb, int pr, int pad_counted);
int gb_gap(IrGraph *g, const char *name, int x);
int gb_linear(IrGraph *g, const char *name, int x, int k);
int gb_dropout(IrGraph *g, const char *name, int x, float keep);
int gb_droppath(IrGraph *g, const char *name, int x, float keep, int cell, int n_cells);
// XENT of logits against g->labels; its loss is g->loss (created by the first
// XENT, added to by later ones: accumulate bit on output 0). Returns the loss.
int gb_xent(IrGraph *g, const char *name, int logits, float smoothing, float weight);
// XENT with its own loss tensor (for sums of losses built with gb_add).
int gb_xent_own(IrGraph *g, const char *name, int logits, float smoothing, float weight);
void gb_finish(IrGraph *g);

// ---------------------------------------------------------------- composites
// ReLU -> conv k x k (stride s, pad k/2) -> BN.
int gb_relu_conv_bn(IrGraph *g, const char *name, int x, int cout, int k, int s, int train);
// FactorizedReduce (NAO-SPEC 1a.4): 1x1 s2 on x and on x cropped by one row and
// column (negative pads), concat, BN.
int gb_fr(IrGraph *g, const char *name, int x, int cout, int train);
// Separable conv: ReLU, depthwise k x k (stride s), pointwise, BN, twice.
int gb_sep(IrGraph *g, const char *name, int x, int k, int s, int train);

// ---------------------------------------------------------------- networks
// graph_nets.c: small networks in the shape of NAO's (NAO-SPEC 1a): a stem
// (conv + BN, 3c channels), cells with two inputs, calibration (ReLU-conv-BN,
// or FR when sizes differ), nodes adding two branches (sep conv, identity,
// pools of every flavour, 1x3+3x1, conv 3x3; drop-path on every branch in
// training), the concatenation of loose ends (with FR of a larger unused
// input in reduction cells), an auxiliary head after the last reduction
// cell (training), GAP, dropout, classifier, label-smoothed cross-entropy.
typedef struct {
  int train;          // training mode: batch statistics, dropout, drop-path, aux head
  int aux;            // auxiliary head (training only)
  int c;              // channels of the first cells
  int hw;             // input height = width (even, >= 8)
  int n_cells;
  unsigned reduce;    // bit i: cell i is a reduction cell
  int classes;
  float drop_keep;    // dropout before the classifier (training)
  float path_keep;    // drop-path keep probability (training)
} GbNet;

void gb_net_defaults(GbNet *o);
// Builds the forward graph (gb_finish included).
void gb_nao_net(IrGraph *g, const GbNet *o);

// ---------------------------------------------------------------- values
// Random values by each parameter's init kind (perturbed so that gamma is not
// 1 and beta, running mean not 0; running var in [1, 1.5)).
void gb_random_params(const IrGraph *g, RefState *s, uint64_t seed);
// Standard normal input and uniform labels in [0, K) for the graph's input
// and labels tensors (K: the logits' channels).
void gb_random_data(const IrGraph *g, RefState *s, uint64_t seed);

#endif
