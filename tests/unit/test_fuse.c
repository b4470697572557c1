// tests/unit/test_fuse.c — the fusion decisions themselves (compiler/fuse.c):
// BN statistics in the epilogue of a generated producer, ReLU and BN apply
// never stored when only generated kernels read them, one ReLU for several
// convolutions, the node's add written straight into its concat slice with
// the ReLU the next convolutions need, BN backward's sums in the kernel that
// finishes dy, depthwise data and filter gradients in one kernel, and far
// fewer kernels than ops on a lowered NAONet.
#include <stdio.h>
#include <string.h>

#include "compiler/emit_cuda.h"
#include "compiler/fuse.h"
#include "tests/unit/emu_nets.h"

static int failures;

#define CHECK(cond, ...)                                   \
  do {                                                     \
    if (!(cond)) {                                         \
      fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
      fprintf(stderr, __VA_ARGS__);                        \
      fputc('\n', stderr);                                 \
      failures++;                                          \
    }                                                      \
  } while (0)

static int tensor_named(const FusePlan *fp, const char *name) {
  for (int t = 0; t < fp->n_tensors; t++)
    if (strcmp(fp->tensors[t].name, name) == 0) return t;
  return -1;
}

static int node_named(const IrGraph *g, const char *name) {
  for (int i = 0; i < g->n_nodes; i++)
    if (strcmp(g->nodes[i].name, name) == 0) return i;
  return -1;
}

// The live group running op kind `k` of node `node`, or -1.
static int group_of(const FusePlan *fp, int node, FuseOpKind k) {
  for (int s = 0; s < fp->n_sched; s++) {
    const FuseGroup *G = &fp->groups[fp->sched[s]];
    for (int i = 0; i < G->n_ops; i++) {
      const FuseOp *o = &fp->ops[G->ops[i]];
      if (o->node == node && o->kind == k) return fp->sched[s];
    }
  }
  return -1;
}

static int plan(const EmuNet *net, TG *t, FusePlan *fp, int no_fuse) {
  emu_net_make(net, t);
  FuseOptions fo = {.no_fuse = no_fuse};
  char err[512];
  if (fuse_build(&t->g, &fo, fp, err, sizeof err)) {
    fprintf(stderr, "%s: %s\n", net->name, err);
    failures++;
    return -1;
  }
  return 0;
}

static void test_epilogue(void) {
  TG t;
  FusePlan fp;
  if (plan(emu_net_find("epilogue"), &t, &fp, 0)) return;
  const IrGraph *g = &t.g;
  int dw = node_named(g, "dw.1"), bn = node_named(g, "dw.2"), pool = node_named(g, "pool");
  int pbn = node_named(g, "pool.bn"), sum = node_named(g, "sum"), sbn = node_named(g, "sum.bn");
  CHECK(group_of(&fp, dw, FOP_CONV_DW) == group_of(&fp, bn, FOP_BN_STATS),
        "BN statistics in the depthwise convolution's epilogue");
  CHECK(group_of(&fp, pool, FOP_POOL) == group_of(&fp, pbn, FOP_BN_STATS),
        "BN statistics of ReLU(pool) in the pool's epilogue");
  CHECK(group_of(&fp, sum, FOP_DEF) == group_of(&fp, sbn, FOP_BN_STATS),
        "BN statistics in the kernel that computes the sum");
  CHECK(!fp.stored[tensor_named(&fp, "dw.0:out")], "the input ReLU is not stored");
  CHECK(!fp.stored[tensor_named(&fp, "dw.2:out")], "the BN output is not stored");
  CHECK(!fp.stored[tensor_named(&fp, "pool.relu:out")], "ReLU(pool) is not stored");
  int ra = tensor_named(&fp, "conv_a.0:out"), rb = tensor_named(&fp, "conv_b.0:out");
  CHECK(fuse_canon(&fp, rb) == ra && fp.stored[ra] && !fp.stored[rb],
        "one stored ReLU for both convolutions");
  // backward: both convolutions' contributions to the gradient of ReLU's
  // input and that BN's backward sums in one kernel
  int b1 = node_named(g, "conv_a.0:bwd"), b2 = node_named(g, "conv_b.0:bwd");
  int bb = node_named(g, "pool.bn:bwd");
  CHECK(b1 >= 0 && b2 >= 0 && bb >= 0, "backward nodes");
  CHECK(group_of(&fp, b1, FOP_DEF) == group_of(&fp, b2, FOP_DEF) &&
            group_of(&fp, b1, FOP_DEF) == group_of(&fp, bb, FOP_BNB_REDUCE),
        "the gradient's contributions and the BN backward sums in one kernel");
  int pbw = node_named(g, "pool:bwd"), bnb = node_named(g, "dw.2:bwd");
  CHECK(group_of(&fp, pbw, FOP_POOL_BWD) == group_of(&fp, bnb, FOP_BNB_REDUCE),
        "BN backward sums in the pool backward's epilogue");
  fuse_free(&fp);
  tg_free(&t);
}

static void test_cell(void) {
  TG t;
  FusePlan fp;
  if (plan(emu_net_find("cell"), &t, &fp, 0)) return;
  const IrGraph *g = &t.g;
  int add = node_named(g, "cells.0.node2"), relu = node_named(g, "cells.0.ops.2.x_op.0");
  int gadd = group_of(&fp, add, FOP_DEF);
  CHECK(gadd >= 0 && gadd == group_of(&fp, relu, FOP_DEF),
        "the node's add and the ReLU of its next convolution in one kernel");
  int h2 = tensor_named(&fp, "cells.0.node2");
  CHECK(fp.tensors[h2].view_of >= 0 && fp.stored[h2], "the add writes its concat slice");
  const char *inlined[] = {"cells.0.ops.0.x_op.op.7:out", "cells.0.ops.0.x_dp:out",
                           "cells.0.ops.0.y_dp:out", "cells.0.ops.0.x_op.op.0:out",
                           "cells.0.ops.0.x_op.op.4:out"};
  for (size_t i = 0; i < sizeof inlined / sizeof *inlined; i++)
    CHECK(!fp.stored[tensor_named(&fp, inlined[i])], "%s is not stored", inlined[i]);
  int dwd = node_named(g, "cells.0.ops.0.x_op.op.5:bwd_data");
  int dwf = node_named(g, "cells.0.ops.0.x_op.op.5:bwd_filter");
  CHECK(group_of(&fp, dwd, FOP_CONV_DW_DATA) == group_of(&fp, dwf, FOP_CONV_DW_FILTER),
        "depthwise data and filter gradients in one kernel");
  fuse_free(&fp);
  tg_free(&t);
}

// A lowered NAONet-B (project lowering and autodiff): no BN output, drop-path
// output or mask is stored, and fusion runs far fewer kernels than ops.
static void test_lowered(void) {
  NetSpec ns;
  netspec_init(&ns);
  netspec_apply_dataset(&ns, DATASET_CIFAR10);
  char err[512];
  CHECK(netspec_parse_arch(&ns, "0 1 0 2 0 1 2 2 1 3 0 2 4 0 1 3 2 1 0 3 1 1 1 0 2 1 2 4 1 0 2 3 3 1 2 2 0 2 0 2",
                           err, sizeof err) == 0, "%s", err);
  ns.channels = 8;
  ns.layers = 2;
  ParamTable pt;
  params_init(&pt);
  IrGraph train, eval;
  if (emit_cuda_lower(&ns, 0.0f, 1, &pt, &train, &eval, err, sizeof err)) {
    CHECK(0, "%s", err);
  } else {
    FusePlan fused, plain;
    FuseOptions on = {0}, off = {.no_fuse = 1};
    CHECK(fuse_build(&train, &on, &fused, err, sizeof err) == 0, "%s", err);
    CHECK(fuse_build(&train, &off, &plain, err, sizeof err) == 0, "%s", err);
    int gen_fused = 0, gen_plain = 0;
    for (int s = 0; s < fused.n_sched; s++) gen_fused += fused.groups[fused.sched[s]].kind != FG_LIB;
    for (int s = 0; s < plain.n_sched; s++) gen_plain += plain.groups[plain.sched[s]].kind != FG_LIB;
    printf("naonet-b F=8 N=2 training: %d generated kernels fused, %d unfused\n", gen_fused,
           gen_plain);
    CHECK(2 * gen_fused < gen_plain, "fusion at least halves the kernels (%d vs %d)", gen_fused,
          gen_plain);
    int stored_bn = 0, stored_dp = 0;
    for (int i = 0; i < train.n_fwd_nodes; i++) {
      const IrNode *n = &train.nodes[i];
      if (n->kind == IR_BN && fused.stored[n->out[0]]) stored_bn++;
      if (n->kind == IR_DROPPATH && (fused.stored[n->out[0]] || fused.stored[n->out[1]])) stored_dp++;
    }
    CHECK(stored_bn == 0, "%d BN outputs stored", stored_bn);
    CHECK(stored_dp == 0, "%d drop-path outputs or masks stored", stored_dp);
    fuse_free(&fused);
    fuse_free(&plain);
  }
  ir_free(&train);
  ir_free(&eval);
  params_free(&pt);
}

int main(void) {
  test_epilogue();
  test_cell();
  test_lowered();
  if (failures) {
    fprintf(stderr, "%d failures\n", failures);
    return 1;
  }
  return 0;
}
