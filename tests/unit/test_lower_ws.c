// tests/unit/test_lower_ws.c — the weight-sharing supernet (compiler/lower_ws.c).
//
// One ParamTable serves every architecture; each branch uses the weight set of
// its input id; identities at stride 2 use the branch's own FR (decision O5);
// the cell end uses fac_1/fac_2 and one 1x1 block per concatenated state; the
// scoring pass (decision O7) normalises with batch statistics and updates no
// running statistics; errors for the ImageNet stem and 11-op archs; the
// supernet's size at the search defaults (NAO-SPEC §1c: 7,387,350).
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

static void spec(NetSpec *ns, int f, int n, double aux, const char *arch) {
  netspec_init(ns);
  ns->channels = f;
  ns->layers = n;
  ns->aux_weight = aux;
  ns->drop_path_keep = 0.9;
  ns->dropout_keep = 1.0;
  char err[256];
  if (netspec_parse_arch(ns, arch, err, sizeof err) != 0) {
    fprintf(stderr, "bad test arch: %s\n", err);
    exit(1);
  }
}

static int lower(const NetSpec *ns, IrMode mode, int scoring, ParamTable *pt, IrGraph *g,
                 char *err, size_t errlen) {
  LowerOptions opt;
  lower_options_init(&opt, mode);
  opt.bn_batch_stats = scoring;
  ir_init(g, pt, mode);
  return lower_ws_network(ns, &opt, pt, g, err, errlen);
}

static const IrNode *find(const IrGraph *g, const char *name) {
  for (int i = 0; i < g->n_nodes; i++)
    if (strcmp(g->nodes[i].name, name) == 0) return &g->nodes[i];
  return NULL;
}

static const char *pname(const IrGraph *g, const IrNode *n, int k) {
  return g->params->items[n->param[k]].name;
}

static unsigned rnd(unsigned *s) {
  *s = *s * 1103515245u + 12345u;
  return (*s >> 16) & 0x7fff;
}

static void random_arch(unsigned *s, char *out, size_t n) {
  size_t len = 0;
  for (int c = 0; c < 2; c++)
    for (int b = 0; b < 5; b++)
      for (int k = 0; k < 2; k++)
        len += (size_t)snprintf(out + len, n - len, "%u %u ", rnd(s) % (unsigned)(b + 2), rnd(s) % 5u);
}

// Many archs, one table: it never grows after the first; every graph verifies
// in train, eval and scoring modes; every cell outputs c channels.
static void test_shared_table(void) {
  ParamTable pt;
  params_init(&pt);
  unsigned seed = 77;
  int n_first = -1;
  for (int r = 0; r < 12; r++) {
    char arch[512], err[512];
    random_arch(&seed, arch, sizeof arch);
    NetSpec ns;
    spec(&ns, 4, 2, 0.4, arch);
    for (int m = 0; m < 3; m++) {
      IrGraph g;
      int rc = lower(&ns, m ? IR_MODE_TRAIN : IR_MODE_EVAL, m == 2 ? 0 : m == 0, &pt, &g, err,
                     sizeof err);
      CHECK(rc == 0, "%s", err);
      if (rc == 0) {
        CHECK(ir_verify(&g, err, sizeof err) == 0, "arch %s mode %d: %s", arch, m, err);
        if (n_first < 0) n_first = pt.n;
        CHECK(pt.n == n_first, "the table grew to %d from %d", pt.n, n_first);
        for (int i = 0; i < 3 * ns.layers + 2; i++) {
          char name[64];
          snprintf(name, sizeof name, "cells.%d.final_combine_conv.bn", i);
          const IrNode *bn = find(&g, name);
          int c = ns.channels << (i >= ns.layers) << (i >= 2 * ns.layers + 1);
          CHECK(bn && g.tensors[bn->out[0]].c == c, "cell %d outputs %d channels", i, c);
        }
      }
      ir_free(&g);
    }
  }
  params_free(&pt);
}

// Normal cell: node 2 = sep3(in1) + identity(in0); node 3 = sep5(in2) + max(in1);
// node 4 = avg(in3) + sep3(in3). Reduction: node 2 = identity(in0) + identity(in1)
// (both stride 2: x_id_reduce_1, y_id_reduce_2), node 3 = sep3(in1) + avg(in2),
// node 4 = sep5(in0) + max(in3); the loose end of both cells is node 4.
static void test_selection(void) {
  const char *arch = "1 0 0 4 2 1 1 3 3 2 3 0  0 4 1 4 1 0 2 2 0 1 3 3";
  NetSpec ns;
  spec(&ns, 4, 1, 0, arch);
  ParamTable pt;
  params_init(&pt);
  IrGraph g;
  char err[512];
  CHECK(lower(&ns, IR_MODE_TRAIN, 0, &pt, &g, err, sizeof err) == 0, "%s", err);
  const IrNode *n = find(&g, "cells.0.ops.0.x_sep_conv_3.W1_depthwise.1");
  CHECK(n && !strcmp(pname(&g, n, 0), "cells.0.ops.0.x_sep_conv_3.W1_depthwise.1"), "input 1's dw");
  n = find(&g, "cells.0.ops.1.x_sep_conv_5.bn2");
  CHECK(n && !strcmp(pname(&g, n, 0), "cells.0.ops.1.x_sep_conv_5.bn2.weight.2") &&
            !strcmp(pname(&g, n, 1), "cells.0.ops.1.x_sep_conv_5.bn2.bias.2") &&
            !strcmp(pname(&g, n, 2), "cells.0.ops.1.x_sep_conv_5.bn2.running_mean"),
        "WSBN of input 2: per-id affine, shared statistics");
  n = find(&g, "cells.0.ops.2.y_sep_conv_3.W2_pointwise.3");
  CHECK(n != NULL, "y branch on input 3");
  n = find(&g, "cells.1.ops.0.x_id_reduce_1.path2.1");
  CHECK(n && n->a.conv.pt == -1, "x identity on input 0 at stride 2: x_id_reduce_1");
  CHECK(find(&g, "cells.1.ops.0.y_id_reduce_2.bn") != NULL, "y identity on input 1: y_id_reduce_2 (O5)");
  CHECK(find(&g, "cells.1.ops.0.x_id_reduce_2.bn") == NULL, "unused FRs are not emitted");
  n = find(&g, "cells.1.ops.1.x_sep_conv_3.W1_depthwise.1");
  CHECK(n && n->a.conv.sh == 2 && n->a.conv.groups == 8, "stride 2 on dw1 of input 1");
  n = find(&g, "cells.1.ops.1.x_sep_conv_3.W2_depthwise.1");
  CHECK(n && n->a.conv.sh == 1, "stride 1 on dw2");
  n = find(&g, "cells.1.ops.1.y_avg_pool");
  CHECK(n && n->a.pool.sh == 1 && !n->a.pool.pad_counted && !n->a.pool.is_max, "avg on a node: stride 1");
  n = find(&g, "cells.1.ops.2.y_max_pool");
  CHECK(n && n->a.pool.is_max && n->a.pool.sh == 1, "max");
  // One loose end (node 4): a single block, no sum.
  CHECK(find(&g, "cells.0.final_combine_conv.w.4") && !find(&g, "cells.0.final_combine_conv:sum"),
        "one block for one loose end");
  ir_free(&g);
  // Reduction cells with a loose input: fac_1 (input 0) or fac_2 (input 1),
  // and a block per concatenated state, summed.
  for (int loose = 0; loose < 2; loose++) {
    NetSpec ns2;
    spec(&ns2, 4, 1, 0, loose ? "0 0 1 0 2 0 2 0  0 2 0 3 2 1 2 0" : "0 0 1 0 2 0 2 0  1 2 1 3 2 1 2 0");
    CHECK(lower(&ns2, IR_MODE_EVAL, 0, &pt, &g, err, sizeof err) == 0, "%s", err);
    char name[64];
    snprintf(name, sizeof name, "cells.1.fac_%d.bn", loose + 1);
    CHECK(find(&g, name) != NULL, "loose input %d through %s", loose, name);
    snprintf(name, sizeof name, "cells.1.fac_%d.bn", 2 - loose);
    CHECK(find(&g, name) == NULL, "no %s", name);
    n = find(&g, "cells.1.final_combine_conv:sum");
    CHECK(n && n->n_in == 2, "sum of two blocks");
    snprintf(name, sizeof name, "cells.1.final_combine_conv.w.%d", loose);
    CHECK(find(&g, name) && find(&g, "cells.1.final_combine_conv.w.3"), "blocks w.%d and w.3", loose);
    snprintf(name, sizeof name, "cells.1.final_combine_conv.relu:%d", loose);
    CHECK(find(&g, name) != NULL, "ReLU per block");
    CHECK(ir_verify(&g, err, sizeof err) == 0, "%s", err);
    ir_free(&g);
  }
  params_free(&pt);
}

static void test_modes(void) {
  NetSpec ns;
  spec(&ns, 4, 1, 0.4, "0 0 1 1 2 2 1 3 0 4 3 0 2 1 1 4 0 2 5 3  0 4 1 4 2 0 1 1 0 2 3 3 4 1 0 4 2 3 5 0");
  ParamTable pt;
  params_init(&pt);
  char err[512];
  for (int m = 0; m < 3; m++) {
    IrGraph g;
    IrMode mode = m == 1 ? IR_MODE_TRAIN : IR_MODE_EVAL;
    CHECK(lower(&ns, mode, m == 2, &pt, &g, err, sizeof err) == 0, "%s", err);
    int bn = 0, bad = 0, dp = 0;
    for (int i = 0; i < g.n_nodes; i++) {
      const IrNode *n = &g.nodes[i];
      if (n->kind == IR_DROPPATH) dp++;
      if (n->kind != IR_BN) continue;
      bn++;
      int want_batch = m != 0, want_update = m == 1;
      bad += n->a.bn.batch_stats != want_batch || n->a.bn.update_running != want_update;
    }
    CHECK(bn > 0 && bad == 0, "mode %d: %d of %d BN nodes in the wrong mode", m, bad, bn);
    CHECK(dp == (m == 1 ? 2 * 5 * 5 : 0), "mode %d: %d drop-paths", m, dp);
    CHECK((g.aux_logits >= 0) == (m == 1), "mode %d: aux head only in training", m);
    CHECK(ir_verify(&g, err, sizeof err) == 0, "mode %d: %s", m, err);
    ir_free(&g);
  }
  params_free(&pt);
}

static void test_errors_and_size(void) {
  NetSpec ns;
  char err[512] = "";
  ParamTable pt;
  params_init(&pt);
  spec(&ns, 4, 1, 0, "0 7 1 4  0 4 1 4");
  CHECK(lower_ws_declare_params(&ns, &pt, err, sizeof err) == -1 && strstr(err, "5-op space"),
        "op 7: %s", err);
  spec(&ns, 4, 1, 0, "0 0 1 4  0 4 1 4");
  netspec_apply_dataset(&ns, DATASET_IMAGENET);
  CHECK(lower_ws_declare_params(&ns, &pt, err, sizeof err) == -1 && strstr(err, "CIFAR stem"),
        "imagenet: %s", err);
  CHECK(pt.n == 0, "nothing declared");
  spec(&ns, 20, 3, 0, "0 0 1 1 2 2 1 3 0 4 3 0 2 1 1 4 0 2 5 3  0 4 1 4 2 0 1 1 0 2 3 3 4 1 0 4 2 3 5 0");
  CHECK(lower_ws_declare_params(&ns, &pt, err, sizeof err) == 0, "%s", err);
  CHECK(params_count(&pt, 1) == 7387350, "supernet C=20 N=3: %zu parameters", params_count(&pt, 1));
  params_free(&pt);
}

int main(void) {
  test_shared_table();
  test_selection();
  test_modes();
  test_errors_and_size();
  if (failures) {
    fprintf(stderr, "test_lower_ws: %d failures\n", failures);
    return 1;
  }
  printf("test_lower_ws: ok\n");
  return 0;
}
