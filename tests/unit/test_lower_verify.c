// tests/unit/test_lower_verify.c — ir_verify catches broken graphs, accepts
// backward nodes that keep ir.h's contract, and ir_dump prints every node.
//
// Each broken graph is a lowered network with one field changed; the check
// asserts both the failure and the part of the message that names the fault.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/ir.h"
#include "compiler/lower.h"
#include "compiler/netspec.h"
#include "compiler/params.h"

static int failures;
#define CHECK(cond, ...)                                                         \
  do {                                                                           \
    if (!(cond)) {                                                               \
      failures++;                                                                \
      fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
      fprintf(stderr, __VA_ARGS__);                                              \
      fputc('\n', stderr);                                                       \
    }                                                                            \
  } while (0)

// The worked example of NAO-SPEC §1a.8: every kind of forward node occurs.
static const char *const ARCH = "0 0 1 8 2 4 0 2  0 4 0 7 2 10 2 13";

typedef struct {
  NetSpec ns;
  ParamTable pt;
  IrGraph g;
} Net;

static void build(Net *net, IrMode mode) {
  netspec_init(&net->ns);
  net->ns.channels = 4;
  net->ns.layers = 1;
  char err[256];
  if (netspec_parse_arch(&net->ns, ARCH, err, sizeof err) != 0) exit(1);
  params_init(&net->pt);
  ir_init(&net->g, &net->pt, mode);
  LowerOptions opt;
  lower_options_init(&opt, mode);
  if (lower_network(&net->ns, &opt, &net->pt, &net->g, err, sizeof err) != 0) {
    fprintf(stderr, "lower_network: %s\n", err);
    exit(1);
  }
}

static void drop(Net *net) {
  ir_free(&net->g);
  params_free(&net->pt);
}

static int find(const IrGraph *g, const char *name) {
  for (int i = 0; i < g->n_nodes; i++)
    if (strcmp(g->nodes[i].name, name) == 0) return i;
  fprintf(stderr, "no node %s\n", name);
  exit(1);
}

static int first_of(const IrGraph *g, IrKind k) {
  for (int i = 0; i < g->n_nodes; i++)
    if (g->nodes[i].kind == k) return i;
  fprintf(stderr, "no %s node\n", ir_kind_name(k));
  exit(1);
}

// ---------------------------------------------------------------- broken graphs

typedef void (*Breaker)(IrGraph *g);

static void b_conv_shape(IrGraph *g) { g->tensors[g->nodes[find(g, "stem.0")].out[0]].h = 31; }
static void b_conv_param(IrGraph *g) {
  int i = find(g, "stem.0");
  g->nodes[i].param[0] = g->nodes[find(g, "stem.1")].param[0];
}
static void b_order(IrGraph *g) {
  int i = find(g, "stem.1");
  g->nodes[i].in[0] = g->logits;
}
static void b_two_writers(IrGraph *g) {
  int i = find(g, "cells.0.ops.0.x_op.op.0");
  g->nodes[i + 1].out[0] = g->nodes[i].out[0];
}
static void b_bn_outputs(IrGraph *g) { g->nodes[find(g, "stem.1")].n_out = 1; }
static void b_concat(IrGraph *g) { g->tensors[g->nodes[find(g, "cells.1.final_combine")].out[0]].c = 17; }
static void b_pool_pad(IrGraph *g) { g->nodes[find(g, "cells.1.ops.1.x_op")].a.pool.pb = 2; }
static void b_view(IrGraph *g) {
  int t = g->nodes[find(g, "cells.1.final_combine.ops.0.bn")].out[0];
  g->tensors[t].view_of = g->nodes[find(g, "cells.1.final_combine")].out[0];
  g->tensors[t].chan_offset = 12;  // 8 channels from 12 of 16
}
static void b_backward_in_fwd(IrGraph *g) { g->nodes[find(g, "stem.0")].kind = IR_CONV_BWD_DATA; }
static void b_mask(IrGraph *g) {
  int i = first_of(g, IR_DROPPATH);
  g->tensors[g->nodes[i].out[1]].c = 4;
}
static void b_labels(IrGraph *g) {
  int i = first_of(g, IR_XENT);
  g->nodes[i].in[1] = g->nodes[i].in[0];
}
static void b_linear(IrGraph *g) {
  int i = find(g, "classifier");
  g->nodes[i].param[0] = g->nodes[find(g, "auxiliary_head.classifier")].param[0];
}
static void b_loss_kind(IrGraph *g) { g->loss = g->logits; }
static void b_accumulate(IrGraph *g) { g->nodes[find(g, "stem.0")].accumulate = 2; }
static void b_conv_attr(IrGraph *g) { g->nodes[find(g, "cells.0.ops.0.x_op.op.1")].a.conv.groups = 3; }
static void b_drop_keep(IrGraph *g) { g->nodes[first_of(g, IR_DROPPATH)].a.drop.keep = 0; }
static void b_update(IrGraph *g) {
  int i = find(g, "stem.1");
  g->nodes[i].a.bn.batch_stats = 0;
  g->nodes[i].n_out = 1;
}

static const struct {
  const char *what;
  Breaker f;
  const char *msg;
} broken[] = {
    {"conv output size", b_conv_shape, "does not match"},
    {"conv weight of another shape", b_conv_param, "stem.1.weight"},
    {"input read before written", b_order, "read before it is written"},
    {"two writers", b_two_writers, "has producer"},
    {"BN without batch statistics outputs", b_bn_outputs, "the contract is 1, 4, 3"},
    {"concat channels", b_concat, "channels"},
    {"pool padding", b_pool_pad, "padding"},
    {"view out of range", b_view, "do not fit"},
    {"backward kind in the forward pass", b_backward_in_fwd, "backward node inside"},
    {"drop-path mask", b_mask, "(1,1,1)"},
    {"labels", b_labels, "labels"},
    {"linear weight", b_linear, "classifier.weight"},
    {"loss kind", b_loss_kind, "loss tensor"},
    {"accumulate flag", b_accumulate, "accumulate"},
    {"groups", b_conv_attr, "groups"},
    {"keep", b_drop_keep, "keep"},
    {"update_running without batch_stats", b_update, "update_running"},
};

static void test_broken(void) {
  for (size_t k = 0; k < sizeof broken / sizeof broken[0]; k++) {
    Net net;
    build(&net, IR_MODE_TRAIN);
    char err[512] = "";
    CHECK(ir_verify(&net.g, err, sizeof err) == 0, "intact graph: %s", err);
    broken[k].f(&net.g);
    int rc = ir_verify(&net.g, err, sizeof err);
    CHECK(rc == -1, "%s: not caught", broken[k].what);
    CHECK(rc != -1 || strstr(err, broken[k].msg), "%s: message \"%s\" lacks \"%s\"",
          broken[k].what, err, broken[k].msg);
    drop(&net);
  }
}

// ---------------------------------------------------------------- backward nodes

static int add_node_acc(IrGraph *g, IrKind kind, int fwd, const int *in, int n_in, const int *out,
                        int n_out, const int *param, int n_param, int accumulate) {
  IrNode n;
  memset(&n, 0, sizeof n);
  n.kind = kind;
  n.accumulate = accumulate;
  snprintf(n.name, sizeof n.name, "grad:%.100s", g->nodes[fwd].name);
  n.fwd = fwd;
  n.n_in = n_in;
  n.n_out = n_out;
  n.n_param = n_param;
  for (int k = 0; k < n_in; k++) n.in[k] = in[k];
  for (int k = 0; k < n_out; k++) n.out[k] = out[k];
  for (int k = 0; k < n_param; k++) n.param[k] = param[k];
  return ir_add_node(g, &n);
}

static int add_node(IrGraph *g, IrKind kind, int fwd, const int *in, int n_in, const int *out,
                    int n_out, const int *param, int n_param) {
  return add_node_acc(g, kind, fwd, in, n_in, out, n_out, param, n_param, 0);
}

static int like(IrGraph *g, int t) {
  const IrTensor *x = &g->tensors[t];
  int id = ir_add_tensor(g, x->kind, x->c, x->h, x->w, "grad");
  g->tensors[id].grad_of = t;
  return id;
}

// Gradient of the main loss down to the last cell: xent_bwd, linear_bwd
// (+ dx), mask_bwd (dropout), gap_bwd, accum; then faulty ones.
static void test_backward(void) {
  Net net;
  build(&net, IR_MODE_TRAIN);
  IrGraph *g = &net.g;
  int xent = find(g, "classifier:xent"), lin = find(g, "classifier"), dr = find(g, "dropout");
  int gap = find(g, "global_pooling"), conv = find(g, "stem.0");
  int dlogits = like(g, g->logits);
  add_node(g, IR_XENT_BWD, xent, (int[]){g->nodes[xent].out[1], g->labels}, 2, &dlogits, 1, NULL, 0);
  int dx = like(g, g->nodes[lin].in[0]);
  add_node(g, IR_LINEAR_BWD, lin, (int[]){g->nodes[lin].in[0], dlogits}, 2, &dx, 1,
           g->nodes[lin].param, 2);
  int dgap = like(g, g->nodes[dr].in[0]);
  add_node(g, IR_MASK_BWD, dr, (int[]){g->nodes[dr].out[1], dx}, 2, &dgap, 1, NULL, 0);
  int dcell = like(g, g->nodes[gap].in[0]);
  add_node(g, IR_GAP_BWD, gap, &dgap, 1, &dcell, 1, NULL, 0);
  int dy = like(g, g->nodes[conv].out[0]);  // stands in for the stem BN's dx
  int dsum = like(g, g->nodes[gap].in[0]);  // a second contribution, added to dsum
  add_node(g, IR_GAP_BWD, gap, &dgap, 1, &dsum, 1, NULL, 0);
  add_node_acc(g, IR_ACCUM, gap, &dcell, 1, &dsum, 1, NULL, 0, 1);
  // dy is never written: a conv_bwd_data reading it must fail.
  char err[512] = "";
  int dx0 = like(g, g->nodes[conv].in[0]);
  int bd = add_node(g, IR_CONV_BWD_DATA, conv, &dy, 1, &dx0, 1, g->nodes[conv].param, 1);
  CHECK(ir_verify(g, err, sizeof err) == -1 && strstr(err, "read before"), "unwritten dy: %s", err);
  g->n_nodes = bd;  // remove it again
  g->tensors[dx0].producer = -1;
  g->n_fwd_nodes = find(g, "loss") + 1;
  CHECK(ir_verify(g, err, sizeof err) == 0, "valid backward nodes: %s", err);
  // A conv_bwd_filter with x of the wrong shape.
  add_node(g, IR_CONV_BWD_FILTER, conv, (int[]){g->nodes[gap].in[0], dcell}, 2, NULL, 0,
           g->nodes[conv].param, 1);
  CHECK(ir_verify(g, err, sizeof err) == -1 && strstr(err, "must have the shape"), "filter: %s", err);
  g->n_nodes--;
  // A backward node whose fwd is the wrong kind.
  add_node(g, IR_GAP_BWD, lin, &dgap, 1, (int[]){like(g, g->nodes[gap].in[0])}, 1, NULL, 0);
  CHECK(ir_verify(g, err, sizeof err) == -1 && strstr(err, "not a forward gap"), "fwd kind: %s", err);
  drop(&net);
}

// ---------------------------------------------------------------- dump

static void test_dump(void) {
  Net net;
  build(&net, IR_MODE_TRAIN);
  StrBuf sb = {0};
  ir_dump(&net.g, &sb);
  int lines = 0;
  for (const char *p = sb.data; *p; p++) lines += *p == '\n';
  CHECK(lines == net.g.n_nodes + 2, "%d lines for %d nodes", lines, net.g.n_nodes);
  const char *want[] = {
      "input  -> t0[3,32,32]",
      "conv            cells.1.ops.0.x_id_fact_reduce.path2.1  ",
      "{cells.1.ops.0.x_id_fact_reduce.path2.1.weight[4,8,1,1]}  k=1x1 stride=2x2 pad=-1,-1,1,1 groups=1",
      "pool            cells.1.ops.1.x_op  ",
      "max k=2x2 stride=1x1 pad=0,0,1,1 pad-counted",
      "avg k=3x3 stride=1x1 pad=1,1,1,1 pad-ignored",
      "eps=1e-05 momentum=0.1 batch-stats update-running",
      "keep=0.8 cell=3/5",
      "avg k=5x5 stride=3x3 pad=0,0,0,0 pad-counted aux",
      "smoothing=0 weight=0.4 aux",
      "keep=0.6\n",
  };
  for (size_t k = 0; k < sizeof want / sizeof want[0]; k++)
    CHECK(strstr(sb.data, want[k]), "dump lacks \"%s\"", want[k]);
  sb_free(&sb);
  drop(&net);
}

int main(void) {
  test_broken();
  test_backward();
  test_dump();
  if (failures) {
    fprintf(stderr, "test_lower_verify: %d failures\n", failures);
    return 1;
  }
  printf("test_lower_verify: ok\n");
  return 0;
}
