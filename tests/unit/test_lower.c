// tests/unit/test_lower.c — the lowering's structure (compiler/lower*.c).
//
// Expected attributes are written from NAO-SPEC.md §1a.3-1a.5 here, not taken
// from compiler/ops.c: every op id's pool/conv attributes at stride 1 and 2,
// FactorizedReduce's two convs, the aux head, BN modes and counts, drop-path
// and dropout presence, the loss, the shared parameter table, unique node
// names, and ir_verify on many random networks in both modes.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/emit_stats.h"
#include "compiler/ir.h"
#include "compiler/lower.h"
#include "compiler/netspec.h"
#include "compiler/params.h"

static int failures;
#define CHECK(cond, ...)                                           \
  do {                                                             \
    if (!(cond)) {                                                 \
      failures++;                                                  \
      fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
      fprintf(stderr, __VA_ARGS__);                                \
      fputc('\n', stderr);                                         \
    }                                                              \
  } while (0)

// ---------------------------------------------------------------- helpers

typedef struct {
  NetSpec ns;
  ParamTable pt;
  IrGraph g;
} Net;

static void spec(NetSpec *ns, DatasetPreset d, int f, int n, double aux, const char *arch) {
  netspec_init(ns);
  netspec_apply_dataset(ns, d);
  ns->channels = f;
  ns->layers = n;
  ns->aux_weight = aux;
  char err[256];
  if (netspec_parse_arch(ns, arch, err, sizeof err) != 0) {
    fprintf(stderr, "bad test arch \"%s\": %s\n", arch, err);
    exit(1);
  }
}

static int build(Net *net, IrMode mode) {
  LowerOptions opt;
  lower_options_init(&opt, mode);
  ir_init(&net->g, &net->pt, mode);
  char err[256];
  int rc = lower_network(&net->ns, &opt, &net->pt, &net->g, err, sizeof err);
  if (rc != 0) fprintf(stderr, "lower_network: %s\n", err);
  return rc;
}

static const IrNode *find(const IrGraph *g, const char *name) {
  for (int i = 0; i < g->n_nodes; i++)
    if (strcmp(g->nodes[i].name, name) == 0) return &g->nodes[i];
  return NULL;
}

static int count_kind(const IrGraph *g, IrKind k) {
  int n = 0;
  for (int i = 0; i < g->n_nodes; i++) n += g->nodes[i].kind == k;
  return n;
}

static const IrTensor *out0(const IrGraph *g, const IrNode *n) { return &g->tensors[n->out[0]]; }

// ---------------------------------------------------------------- pools

typedef struct {
  int op, is_max, k, pt, pb, counted;
} PoolWant;

// NAO-SPEC §1a.3: pads are (top/left, bottom/right); ops 10/13 pad right and
// bottom by 1 with zeros that take part.
static const PoolWant pools[] = {
    {2, 0, 3, 1, 1, 0},  {3, 1, 3, 1, 1, 0},  {10, 1, 2, 0, 1, 1}, {11, 1, 3, 1, 1, 0},
    {12, 1, 5, 2, 2, 0}, {13, 0, 2, 0, 1, 1}, {14, 0, 3, 1, 1, 1}, {15, 0, 5, 2, 2, 1},
};

// Normal cell: node 2 = op(in0) + identity(in1); reduction cell: node 2 =
// op(in0) (stride 2) + op(in1), node 3 = op(in2) (stride 1) + identity(in2).
static void test_pool(const PoolWant *w) {
  char arch[128];
  snprintf(arch, sizeof arch, "0 %d 1 4 0 4 2 4  0 %d 1 %d 2 %d 2 4", w->op, w->op, w->op, w->op);
  Net net = {0};
  spec(&net.ns, DATASET_CIFAR10, 8, 1, 0, arch);
  params_init(&net.pt);
  CHECK(build(&net, IR_MODE_EVAL) == 0, "op %d", w->op);
  const char *names[3] = {"cells.0.ops.0.x_op", "cells.1.ops.0.x_op", "cells.1.ops.1.x_op"};
  int strides[3] = {1, 2, 1};
  for (int k = 0; k < 3; k++) {
    const IrNode *n = find(&net.g, names[k]);
    CHECK(n && n->kind == IR_POOL, "op %d: no pool node %s", w->op, names[k]);
    if (!n || n->kind != IR_POOL) continue;
    const IrPoolAttr *a = &n->a.pool;
    CHECK(a->is_max == w->is_max && a->kh == w->k && a->kw == w->k && a->pt == w->pt &&
              a->pl == w->pt && a->pb == w->pb && a->pr == w->pb && a->pad_counted == w->counted,
          "op %d %s: attrs", w->op, names[k]);
    CHECK(a->sh == strides[k] && a->sw == strides[k], "op %d %s: stride %d", w->op, names[k], a->sh);
    const IrTensor *x = &net.g.tensors[n->in[0]], *y = out0(&net.g, n);
    CHECK(y->h * strides[k] == x->h && y->w * strides[k] == x->w && y->c == x->c,
          "op %d %s: %dx%d -> %dx%d", w->op, names[k], x->h, x->w, y->h, y->w);
  }
  ir_free(&net.g);
  params_free(&net.pt);
}

// ---------------------------------------------------------------- convs

static void check_conv_io(const IrGraph *g, const char *name, int kh, int kw, int sh, int sw,
                          int ph, int pw, int groups, int cin, int cout) {
  const IrNode *n = find(g, name);
  CHECK(n && n->kind == IR_CONV, "no conv %s", name);
  if (!n || n->kind != IR_CONV) return;
  const IrConvAttr *a = &n->a.conv;
  CHECK(a->kh == kh && a->kw == kw && a->sh == sh && a->sw == sw, "%s: k=%dx%d s=%dx%d", name,
        a->kh, a->kw, a->sh, a->sw);
  CHECK(a->pt == ph && a->pb == ph && a->pl == pw && a->pr == pw, "%s: pad %d,%d,%d,%d", name,
        a->pt, a->pl, a->pb, a->pr);
  CHECK(a->groups == groups && a->cin == cin && a->cout == cout, "%s: groups %d, %d -> %d", name,
        a->groups, a->cin, a->cout);
  const IrTensor *x = &g->tensors[n->in[0]];
  CHECK(x->c == cin, "%s: input has %d channels", name, x->c);
}

static void check_conv(const IrGraph *g, const char *name, int kh, int kw, int sh, int sw,
                       int ph, int pw, int groups, int c) {
  check_conv_io(g, name, kh, kw, sh, sw, ph, pw, groups, c, c);
}

// Reduction cell (c = 16 at F = 8): node 2 = op(in0, stride 2) + identity(in1,
// stride 2 -> FR); the normal cell uses the op at stride 1.
static void test_convs(void) {
  static const struct {
    int op, k, pair, sep;
  } ops[] = {{0, 3, 0, 1}, {1, 5, 0, 1}, {6, 1, 0, 0}, {7, 3, 0, 0}, {8, 3, 1, 0}, {9, 7, 1, 0}};
  for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
    int op = ops[i].op, k = ops[i].k, p = k / 2;
    char arch[128], name[128];
    snprintf(arch, sizeof arch, "0 %d 1 4  0 %d 1 4", op, op);
    Net net = {0};
    spec(&net.ns, DATASET_CIFAR10, 8, 1, 0, arch);
    params_init(&net.pt);
    CHECK(build(&net, IR_MODE_TRAIN) == 0, "op %d", op);
    for (int cell = 0; cell < 2; cell++) {
      int s = cell ? 2 : 1, c = cell ? 16 : 8;
      const char *base = cell ? "cells.1.ops.0.x_op" : "cells.0.ops.0.x_op";
      if (ops[i].sep) {
        snprintf(name, sizeof name, "%s.op.1", base);
        check_conv(&net.g, name, k, k, s, s, p, p, c, c);  // depthwise, strided
        snprintf(name, sizeof name, "%s.op.2", base);
        check_conv(&net.g, name, 1, 1, 1, 1, 0, 0, 1, c);
        snprintf(name, sizeof name, "%s.op.5", base);
        check_conv(&net.g, name, k, k, 1, 1, p, p, c, c);
        snprintf(name, sizeof name, "%s.op.6", base);
        check_conv(&net.g, name, 1, 1, 1, 1, 0, 0, 1, c);
      } else if (ops[i].pair) {
        snprintf(name, sizeof name, "%s.ops.1", base);
        check_conv(&net.g, name, 1, k, 1, s, 0, p, 1, c);  // (1xk), stride (1,s)
        snprintf(name, sizeof name, "%s.ops.4", base);
        check_conv(&net.g, name, k, 1, s, 1, p, 0, 1, c);  // (kx1), stride (s,1)
      } else {
        snprintf(name, sizeof name, "%s.ops.1", base);
        check_conv(&net.g, name, k, k, s, s, p, p, 1, c);
      }
      snprintf(name, sizeof name, "%s.%s.0", base, ops[i].sep ? "op" : "ops");
      const IrNode *relu = find(&net.g, name);
      CHECK(relu && relu->kind == IR_RELU, "op %d: %s starts with ReLU", op, base);
    }
    ir_free(&net.g);
    params_free(&net.pt);
  }
}

// FactorizedReduce: path1 1x1 stride 2 pad 0; path2 1x1 stride 2 with the
// first row/col skipped (pt = pl = -1) and a zero row/col added (pb = pr = 1);
// concat then BN; no ReLU inside (an identity branch at stride 2).
static void test_fr(void) {
  Net net = {0};
  spec(&net.ns, DATASET_CIFAR10, 8, 1, 0, "0 4 1 4  0 4 1 4");
  params_init(&net.pt);
  CHECK(build(&net, IR_MODE_EVAL) == 0, "fr net");
  const char *m = "cells.1.ops.0.x_id_fact_reduce";
  char name[128];
  snprintf(name, sizeof name, "%s.path1.1", m);
  const IrNode *p1 = find(&net.g, name);
  snprintf(name, sizeof name, "%s.path2.1", m);
  const IrNode *p2 = find(&net.g, name);
  snprintf(name, sizeof name, "%s.bn", m);
  const IrNode *b = find(&net.g, name);
  CHECK(p1 && p2 && b, "FR nodes");
  if (p1 && p2 && b) {
    const IrConvAttr *a = &p1->a.conv, *c = &p2->a.conv;
    CHECK(a->kh == 1 && a->sh == 2 && a->sw == 2 && !a->pt && !a->pl && !a->pb && !a->pr &&
              a->cin == 16 && a->cout == 8,
          "path1 attrs");
    CHECK(c->kh == 1 && c->sh == 2 && c->pt == -1 && c->pl == -1 && c->pb == 1 && c->pr == 1 &&
              c->cin == 16 && c->cout == 8,
          "path2 attrs");
    CHECK(p1->in[0] == p2->in[0], "both paths read the same input");
    CHECK(net.g.tensors[p1->in[0]].producer >= 0 &&
              net.g.nodes[net.g.tensors[p1->in[0]].producer].kind != IR_RELU,
          "no ReLU before an identity FR");
    const IrNode *cat = &net.g.nodes[net.g.tensors[b->in[0]].producer];
    CHECK(cat->kind == IR_CONCAT && cat->n_in == 2 && cat->in[0] == p1->out[0] &&
              cat->in[1] == p2->out[0],
          "[path1, path2] concatenated into the BN");
    CHECK(out0(&net.g, b)->c == 16 && out0(&net.g, b)->h == 16, "FR output 16x16x16");
  }
  // Normal cell 0 of this arch uses both inputs: the single loose end is node 2.
  const IrNode *calib = find(&net.g, "cells.2.maybe_calibrate_size.relu");
  CHECK(calib && calib->kind == IR_RELU, "calibration FR starts with its ReLU");
  ir_free(&net.g);
  params_free(&net.pt);
}

// ---------------------------------------------------------------- whole networks

static const char *const NAONET_A =
    "0 7 1 15 2 8 1 7 0 6 1 7 0 8 4 7 1 5 0 7 0 7 1 13 0 6 0 14 0 9 1 10 0 14 2 6 1 11 0 7";
static const char *const NAONET_B =
    "0 1 0 2 0 1 2 2 1 3 0 2 4 0 1 3 2 1 0 3 1 1 1 0 2 1 2 4 1 0 2 3 3 1 2 2 0 2 0 2";

static int bn_groups(const ParamTable *pt, int aux) {
  int n = 0;
  for (int i = 0; i < pt->n; i++) {
    size_t l = strlen(pt->items[i].name);
    if (l > 13 && !strcmp(pt->items[i].name + l - 13, ".running_mean"))
      n += !pt->items[i].aux || aux;
  }
  return n;
}

static void test_modes(void) {
  Net net = {0};
  spec(&net.ns, DATASET_CIFAR10, 8, 2, 0.4, NAONET_B);
  params_init(&net.pt);
  CHECK(build(&net, IR_MODE_EVAL) == 0, "eval");
  IrGraph eval = net.g;
  int n_params = net.pt.n;
  size_t n_train = net.pt.n_trainable;
  CHECK(build(&net, IR_MODE_TRAIN) == 0, "train");
  IrGraph *train = &net.g;
  CHECK(net.pt.n == n_params && net.pt.n_trainable == n_train, "one table for both modes");
  // BN: one node per BN module; batch statistics only in training.
  CHECK(count_kind(&eval, IR_BN) == bn_groups(&net.pt, 0), "eval BN %d vs %d",
        count_kind(&eval, IR_BN), bn_groups(&net.pt, 0));
  CHECK(count_kind(train, IR_BN) == bn_groups(&net.pt, 1), "train BN %d vs %d",
        count_kind(train, IR_BN), bn_groups(&net.pt, 1));
  for (int i = 0; i < eval.n_nodes; i++)
    if (eval.nodes[i].kind == IR_BN)
      CHECK(!eval.nodes[i].a.bn.batch_stats && eval.nodes[i].n_out == 1, "eval BN %s", eval.nodes[i].name);
  for (int i = 0; i < train->n_nodes; i++)
    if (train->nodes[i].kind == IR_BN)
      CHECK(train->nodes[i].a.bn.batch_stats && train->nodes[i].a.bn.update_running &&
                train->nodes[i].n_out == 3,
            "train BN %s", train->nodes[i].name);
  // Drop-path on both branches of every node (B = 5, 8 cells), dropout once.
  CHECK(count_kind(train, IR_DROPPATH) == 2 * 5 * 8, "droppath %d", count_kind(train, IR_DROPPATH));
  CHECK(count_kind(&eval, IR_DROPPATH) == 0 && count_kind(&eval, IR_DROPOUT) == 0, "eval drops");
  CHECK(count_kind(train, IR_DROPOUT) == 1, "dropout");
  const IrNode *dp = find(train, "cells.6.ops.4:y_drop_path");
  CHECK(dp && dp->a.drop.cell == 6 && dp->a.drop.n_cells == 8 && dp->a.drop.keep == 0.8f,
        "drop-path attrs");
  // Aux head: training only, after cell 2N+1 = 5; its MACs are excluded.
  CHECK(eval.aux_logits < 0 && train->aux_logits >= 0, "aux logits");
  const IrNode *pool = find(train, "auxiliary_head.avg_pool");
  CHECK(pool && !pool->a.pool.is_max && pool->a.pool.kh == 5 && pool->a.pool.sh == 3 &&
            pool->a.pool.pt == 0 && pool->a.pool.pb == 0 && pool->aux,
        "aux pool 5x5 stride 3 pad 0");
  const IrNode *r1 = find(train, "auxiliary_head.relu1");
  CHECK(r1 && strcmp(train->nodes[train->tensors[r1->in[0]].producer].name, "cells.5.final_combine") == 0,
        "aux head reads cell 5's output");
  CHECK(ir_macs(train, 1) == ir_macs(&eval, 1) && ir_macs(train, 0) > ir_macs(train, 1),
        "aux MACs excluded");
  // Loss: main weight 1 + aux weight 0.4, summed.
  CHECK(count_kind(train, IR_XENT) == 2 && train->loss >= 0 && train->labels >= 0, "two losses");
  const IrNode *ax = find(train, "auxiliary_head:xent");
  CHECK(ax && ax->a.xent.weight == 0.4f && ax->in[0] == train->aux_logits, "aux loss");
  const IrNode *sum = &train->nodes[train->tensors[train->loss].producer];
  CHECK(sum->kind == IR_ADD && sum->n_in == 2, "loss is the sum");
  // Every parameter is used by the training graph; the eval graph leaves the aux head out.
  int *used = calloc((size_t)net.pt.n, sizeof(int));
  for (int i = 0; i < train->n_nodes; i++)
    for (int k = 0; k < train->nodes[i].n_param; k++) used[train->nodes[i].param[k]]++;
  for (int p = 0; p < net.pt.n; p++) CHECK(used[p] == 1, "%s used %d times", net.pt.items[p].name, used[p]);
  free(used);
  // Unique node names (each serves one module).
  for (int i = 0; i < train->n_nodes; i++)
    for (int j = i + 1; j < train->n_nodes; j++)
      CHECK(strcmp(train->nodes[i].name, train->nodes[j].name) != 0, "name %s twice", train->nodes[i].name);
  ir_free(&eval);
  ir_free(train);
  params_free(&net.pt);
}

static void test_imagenet(void) {
  Net net = {0};
  spec(&net.ns, DATASET_IMAGENET, 42, 4, 0.4, NAONET_A);
  params_init(&net.pt);
  CHECK(build(&net, IR_MODE_TRAIN) == 0, "imagenet");
  check_conv_io(&net.g, "stem0.0", 3, 3, 2, 2, 1, 1, 1, 3, 21);
  check_conv_io(&net.g, "stem0.3", 3, 3, 2, 2, 1, 1, 1, 21, 42);
  check_conv_io(&net.g, "stem1.1", 3, 3, 2, 2, 1, 1, 1, 42, 42);
  const IrNode *s1 = find(&net.g, "stem1.0");
  CHECK(s1 && s1->kind == IR_RELU, "stem1 starts with ReLU");
  const IrNode *pool = find(&net.g, "auxiliary_head.avg_pool");
  CHECK(pool && pool->a.pool.sh == 2, "ImageNet aux pool stride 2");
  CHECK(net.g.tensors[pool->in[0]].h == 7, "aux head on 7x7");
  CHECK(out0(&net.g, find(&net.g, "classifier"))->c == 1000, "1000 classes");
  char err[256];
  CHECK(ir_verify(&net.g, err, sizeof err) == 0, "%s", err);
  ir_free(&net.g);
  params_free(&net.pt);
}

// The fashion-mnist preset (decision O4): 1 channel, CIFAR stem, aux pool stride 2 on 7x7.
static void test_fashion(void) {
  Net net = {0};
  spec(&net.ns, DATASET_FASHION_MNIST, 8, 1, 0.4, NAONET_B);
  params_init(&net.pt);
  CHECK(build(&net, IR_MODE_TRAIN) == 0, "fashion");
  check_conv_io(&net.g, "stem.0", 3, 3, 1, 1, 1, 1, 1, 1, 24);
  const IrNode *pool = find(&net.g, "auxiliary_head.avg_pool");
  CHECK(pool && pool->a.pool.sh == 2 && net.g.tensors[pool->in[0]].h == 7, "aux 7x7 stride 2");
  ir_free(&net.g);
  params_free(&net.pt);
}

// A spec without a valid layout is an error with netspec_layout's message.
static void test_bad_layout(void) {
  Net net = {0};
  spec(&net.ns, DATASET_NONE, 8, 1, 0.4, NAONET_B);
  net.ns.in_channels = 3;
  net.ns.in_height = net.ns.in_width = 48;  // aux head on 12x12: pools to 3x3
  net.ns.classes = 10;
  params_init(&net.pt);
  LowerOptions opt;
  lower_options_init(&opt, IR_MODE_TRAIN);
  ir_init(&net.g, &net.pt, IR_MODE_TRAIN);
  char err[256] = "";
  CHECK(lower_network(&net.ns, &opt, &net.pt, &net.g, err, sizeof err) == -1, "bad layout accepted");
  CHECK(strstr(err, "auxiliary head") != NULL, "message: %s", err);
  CHECK(net.g.n_nodes == 0 && net.pt.n == 0, "nothing built");
  ir_free(&net.g);
  // Settings out of range: a message naming the setting, nothing built.
  spec(&net.ns, DATASET_CIFAR10, 8, 1, 0.4, NAONET_B);
  const struct {
    double *field;
    double value;
    const char *msg;
  } bad[] = {{&net.ns.drop_path_keep, 0.0, "drop-path keep"},
             {&net.ns.dropout_keep, 1.5, "dropout keep"},
             {&net.ns.aux_weight, -1, "auxiliary loss weight"}};
  for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
    double keep = *bad[k].field;
    *bad[k].field = bad[k].value;
    ir_init(&net.g, &net.pt, IR_MODE_TRAIN);
    CHECK(lower_network(&net.ns, &opt, &net.pt, &net.g, err, sizeof err) == -1 &&
              strstr(err, bad[k].msg),
          "%s: %s", bad[k].msg, err);
    CHECK(net.g.n_nodes == 0 && net.pt.n == 0, "nothing built");
    *bad[k].field = keep;
  }
  opt.label_smoothing = 1.0f;
  CHECK(lower_network(&net.ns, &opt, &net.pt, &net.g, err, sizeof err) == -1 &&
            strstr(err, "label smoothing"),
        "smoothing: %s", err);
  params_free(&net.pt);
}

// The published figures (NAO-SPEC §1e) through emit_stats.
static void test_stats(void) {
  NetSpec ns;
  spec(&ns, DATASET_CIFAR10, 36, 6, 0.4, NAONET_B);
  NetStats st;
  char err[256];
  CHECK(stats_compute(&ns, &st, err, sizeof err) == 0, "%s", err);
  CHECK(st.params == 3379296 && st.params_no_aux == 2921302 && st.macs == 462002400,
        "NAONet-B: %lld %lld %lld", st.params, st.params_no_aux, st.macs);
  spec(&ns, DATASET_IMAGENET, 42, 4, 0.4, NAONET_A);
  CHECK(stats_compute(&ns, &st, err, sizeof err) == 0, "%s", err);
  CHECK(st.params == 12603855 && st.params_no_aux == 11353831 && st.macs == 1243996992,
        "NAONet-A: %lld %lld %lld", st.params, st.params_no_aux, st.macs);
  StrBuf sb = {0};
  CHECK(emit_stats(&ns, &sb, err, sizeof err) == 0, "%s", err);
  CHECK(sb.data && strstr(sb.data, "\"params\": 12603855,") && strstr(sb.data, "\"macs\": 1243996992,"),
        "json: %s", sb.data ? sb.data : "(null)");
  sb_free(&sb);
}

// ---------------------------------------------------------------- random networks

static unsigned rnd(unsigned *s) {
  *s = *s * 1103515245u + 12345u;
  return (*s >> 16) & 0x7fff;
}

static void random_arch(unsigned *s, int nodes, int lo, int hi, char *out, size_t n) {
  size_t len = 0;
  for (int c = 0; c < 2; c++)
    for (int b = 0; b < nodes; b++)
      for (int k = 0; k < 2; k++)
        len += (size_t)snprintf(out + len, n - len, "%u %u ", rnd(s) % (unsigned)(b + 2),
                                (unsigned)lo + rnd(s) % (unsigned)(hi - lo + 1));
}

static void test_random(void) {
  unsigned seed = 12345;
  const DatasetPreset presets[3] = {DATASET_CIFAR10, DATASET_IMAGENET, DATASET_FASHION_MNIST};
  const int vocab[3][2] = {{0, 4}, {5, 15}, {0, 15}};
  int graphs = 0;
  for (int r = 0; r < 60; r++) {
    char arch[512];
    int nodes = 1 + (int)(rnd(&seed) % 6);
    const int *v = vocab[r % 3];
    random_arch(&seed, nodes, v[0], v[1], arch, sizeof arch);
    Net net = {0};
    spec(&net.ns, presets[(r / 3) % 3], 2 + 2 * (int)(rnd(&seed) % 4), (int)(rnd(&seed) % 3),
         r % 2 ? 0.4 : 0, arch);
    net.ns.drop_path_keep = r % 4 < 2 ? 0.7 : 1.0;
    params_init(&net.pt);
    for (int m = 0; m < 2; m++) {
      if (build(&net, m ? IR_MODE_TRAIN : IR_MODE_EVAL) != 0) {
        failures++;
        fprintf(stderr, "random net %d (%s) failed to lower\n", r, arch);
        continue;
      }
      char err[512];
      CHECK(ir_verify(&net.g, err, sizeof err) == 0, "net %d %s mode %d: %s", r, arch, m, err);
      CHECK(net.g.n_fwd_nodes == net.g.n_nodes && net.g.logits >= 0, "net %d", r);
      ir_free(&net.g);
      graphs++;
    }
    params_free(&net.pt);
  }
  CHECK(graphs == 120, "%d graphs verified", graphs);
}

int main(void) {
  for (size_t i = 0; i < sizeof pools / sizeof pools[0]; i++) test_pool(&pools[i]);
  test_convs();
  test_fr();
  test_modes();
  test_imagenet();
  test_fashion();
  test_bad_layout();
  test_stats();
  test_random();
  if (failures) {
    fprintf(stderr, "test_lower: %d failures\n", failures);
    return 1;
  }
  printf("test_lower: ok\n");
  return 0;
}
