// tests/unit/emu_graph.h — building small IR graphs by hand for the CUDA
// emitter's tests, with a test-only reverse pass (tg_backward) so training
// graphs need not be written node by node.
//
// tg_backward follows ir.h's contract and exercises both ways a gradient may
// be summed: every second extra contribution is written by its node with the
// accumulate bit, the others go through a temporary and an IR_ACCUM node; the
// gradient of a concatenation's input is a channel slice (view) of the
// concatenation's gradient. It is not the project's autodiff
// (compiler/autodiff.c); it only makes test graphs.
#ifndef NAO_TEST_EMU_GRAPH_H
#define NAO_TEST_EMU_GRAPH_H

#include "compiler/ir.h"
#include "compiler/params.h"

typedef struct {
  IrGraph g;
  ParamTable pt;
  int n_fwd;
} TG;

void tg_init(TG *t, IrMode mode);
void tg_free(TG *t);
int tg_act(TG *t, int c, int h, int w, const char *name);
int tg_node(TG *t, IrKind kind, const char *name, int n_in, const int *in, int n_out,
            const int *out, int n_param, const int *param);
int tg_input(TG *t, int c, int h, int w);
int tg_labels(TG *t);
// Convolution, weight [cout, cin/groups, kh, kw]; pads may be negative.
int tg_conv(TG *t, const char *name, int x, int cout, int kh, int kw, int sh, int sw, int pt,
            int pl, int pb, int pr, int groups);
int tg_conv_out(TG *t, const char *name, int x, int y, int kh, int kw, int sh, int sw, int pt,
                int pl, int pb, int pr, int groups);  // into an existing tensor (a slice)
int tg_bn(TG *t, const char *name, int x);           // batch stats in TRAIN mode
int tg_relu(TG *t, const char *name, int x);
int tg_add(TG *t, const char *name, int n, const int *xs);
int tg_concat(TG *t, const char *name, int n, const int *xs, int out);  // out -1: new tensor
int tg_pool(TG *t, const char *name, int x, int is_max, int k, int s, int pt, int pl, int pb,
            int pr, int counted);
int tg_gap(TG *t, const char *name, int x);
int tg_linear(TG *t, const char *name, int x, int k);
int tg_droppath(TG *t, const char *name, int x, float keep, int cell, int n_cells);
int tg_dropout(TG *t, const char *name, int x, float keep);
int tg_xent(TG *t, const char *name, int logits, int labels, float smoothing, float weight);
// Adds the backward pass of every forward node (graph must end in a loss).
void tg_backward(TG *t);

#endif
