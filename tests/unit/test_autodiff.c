// tests/unit/test_autodiff.c — the structure ir_autodiff and ir_concat_to_views
// produce: which gradients exist (none for the input image, none for tensors
// without a parameter upstream, none for branches that miss the loss), the
// write-then-add discipline, aliasing of add and concat gradients exactly
// where it is safe, backward node inputs per kind, the renumbering of the
// concat pass, and the errors. The numbers themselves are checked by the
// gradient checks (test_gradcheck_*.c).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/autodiff.h"
#include "compiler/plan.h"
#include "tests/unit/graph_builders.h"
#include "tests/unit/ref_check.h"

static int t_failures;

typedef struct {
  ParamTable pt;
  IrGraph g;
} G;

static void g_init(G *x, IrMode mode) {
  params_init(&x->pt);
  ir_init(&x->g, &x->pt, mode);
}

static void g_free(G *x) {
  ir_free(&x->g);
  params_free(&x->pt);
}

static int grad_of(const IrGraph *g, int t) {
  for (int u = 0; u < g->n_tensors; u++)
    if (g->tensors[u].grad_of == t) return u;
  return -1;
}

static int count_kind(const IrGraph *g, IrKind k) {
  int n = 0;
  for (int i = g->n_fwd_nodes; i < g->n_nodes; i++) n += g->nodes[i].kind == k;
  return n;
}

// The forward kind a backward kind serves.
static int serves(IrKind b, IrKind f) {
  switch (b) {
  case IR_CONV_BWD_DATA:
  case IR_CONV_BWD_FILTER: return f == IR_CONV;
  case IR_BN_BWD: return f == IR_BN;
  case IR_RELU_BWD: return f == IR_RELU;
  case IR_POOL_BWD: return f == IR_POOL;
  case IR_GAP_BWD: return f == IR_GAP;
  case IR_LINEAR_BWD: return f == IR_LINEAR;
  case IR_MASK_BWD: return f == IR_DROPOUT || f == IR_DROPPATH;
  case IR_XENT_BWD: return f == IR_XENT;
  case IR_ACCUM: return f == IR_ADD || f == IR_CONCAT || f == IR_ACCUM;
  default: return 0;
  }
}

// Invariants every differentiated graph must keep (autodiff.h).
static void check_invariants(const IrGraph *g, const char *what) {
  for (int t = 0; t < g->n_tensors; t++) {
    const IrTensor *x = &g->tensors[t];
    if (x->view_of >= 0)
      T_CHECK(g->tensors[x->view_of].view_of < 0 &&
                  x->chan_offset + x->c <= g->tensors[x->view_of].c,
              "%s: view %s is not flat or out of range", what, x->name);
    int first_w = -1, last_w = -1, first_r = g->n_nodes;
    for (int i = 0; i < g->n_nodes; i++) {
      const IrNode *n = &g->nodes[i];
      for (int k = 0; k < n->n_out; k++)
        if (n->out[k] == t) {
          int adds = (n->accumulate >> k) & 1;
          T_CHECK(adds == (first_w >= 0), "%s: %s: write %d of %s %s the accumulate bit", what,
                  n->name, first_w >= 0 ? 2 : 1, x->name, adds ? "has" : "lacks");
          if (first_w < 0) first_w = i;
          last_w = i;
        }
      for (int k = 0; k < n->n_in; k++)
        if (n->in[k] == t && i < first_r) first_r = i;
    }
    T_CHECK(first_r == g->n_nodes || last_w < first_r || (first_w < 0 && x->view_of >= 0) ||
                first_w < 0,
            "%s: %s is read before its last write", what, x->name);
    T_CHECK(first_w < 0 || g->tensors[t].producer == first_w, "%s: producer of %s is %d, not %d",
            what, x->name, g->tensors[t].producer, first_w);
  }
  unsigned char *seen = xcalloc((size_t)g->params->n + 1, 1);
  for (int i = g->n_fwd_nodes; i < g->n_nodes; i++) {
    const IrNode *n = &g->nodes[i];
    T_CHECK(n->fwd >= 0 && n->fwd < g->n_fwd_nodes && serves(n->kind, g->nodes[n->fwd].kind),
            "%s: backward node %d (%s) serves node %d", what, i, ir_kind_name(n->kind), n->fwd);
    int np = n->kind == IR_CONV_BWD_FILTER ? 1 : (n->kind == IR_BN_BWD || n->kind == IR_LINEAR_BWD) ? 2 : 0;
    for (int k = 0; k < np; k++) {
      int adds = (n->accumulate >> (IR_MAX_OUT + k)) & 1;
      T_CHECK(adds == seen[n->param[k]], "%s: gradient of %s: accumulate bit %d", what,
              g->params->items[n->param[k]].name, adds);
      seen[n->param[k]] = 1;
    }
  }
  free(seen);
  T_CHECK(g->input < 0 || grad_of(g, g->input) < 0, "%s: the input image has a gradient", what);
}

static int differentiate(IrGraph *g, const char *what) {
  char err[256];
  int rc = ir_autodiff(g, err, sizeof err);
  T_CHECK(rc == 0, "%s: %s", what, err);
  if (rc < 0) return rc;
  check_invariants(g, what);
  Plan p;
  PlanOptions po = {1};
  T_CHECK(plan_build(g, &po, &p, err, sizeof err) == 0 && plan_verify(g, &p, err, sizeof err) == 0,
          "%s: plan: %s", what, err);
  plan_free(&p);
  return rc;
}

// ---------------------------------------------------------------- which gradients

static void test_needed_gradients(void) {
  G x;
  g_init(&x, IR_MODE_TRAIN);
  IrGraph *g = &x.g;
  int in = gb_input(g, 3, 6, 6);
  gb_labels(g);
  int pooled = gb_pool(g, "pool", in, 1, 3, 3, 1, 1, 1, 1, 1, 1, 0);  // no parameter upstream
  int conv = gb_conv_sq(g, "conv", in, 3, 3, 1, 1, 1);
  int dead = gb_conv_sq(g, "dead", conv, 3, 3, 1, 1, 1);           // reaches no loss
  gb_relu(g, "dead_relu", dead);
  int parts[2] = {pooled, conv};
  int cat = gb_concat(g, "cat", 2, parts);
  g->logits = gb_linear(g, "fc", cat, 4);
  gb_xent(g, "xent", g->logits, 0, 1);
  gb_finish(g);
  int n_fwd = g->n_nodes;
  if (differentiate(g, "needed") == 0) {
    T_CHECK(grad_of(g, pooled) < 0, "a tensor without parameters upstream got a gradient");
    T_CHECK(grad_of(g, dead) < 0, "a tensor that misses the loss got a gradient");
    T_CHECK(grad_of(g, conv) >= 0 && grad_of(g, cat) >= 0, "needed gradients are missing");
    T_CHECK(count_kind(g, IR_CONV_BWD_DATA) == 0, "a conv on the input image computes dx");
    T_CHECK(count_kind(g, IR_CONV_BWD_FILTER) == 1, "one filter gradient expected");
    for (int i = n_fwd; i < g->n_nodes; i++)
      T_CHECK(strncmp(g->nodes[i].name, "dead", 4) != 0, "backward node for the dead branch");
    unsigned char written[16] = {0};
    ir_grad_params_written(g, written);
    T_CHECK(written[params_find(&x.pt, "conv.weight")] && !written[params_find(&x.pt, "dead.weight")] &&
                written[params_find(&x.pt, "fc.weight")] && written[params_find(&x.pt, "fc.bias")],
            "parameter gradients written");
    // The concat's conv part has one consumer: its gradient is a slice of dcat.
    int gc = grad_of(g, conv), gcat = grad_of(g, cat);
    T_CHECK(g->tensors[gc].view_of == gcat && g->tensors[gc].chan_offset == 3,
            "concat part gradient: view of %d at %d", g->tensors[gc].view_of,
            g->tensors[gc].chan_offset);
    // Finite differences agree, and the dead weight's difference quotient is 0.
    RefState s;
    ref_init(&s, g, 2);
    gb_random_params(g, &s, 1);
    gb_random_data(g, &s, 2);
    FdOptions o;
    fd_defaults(&o);
    FdStats st;
    RefRun run = {.total_steps = 1};
    char err[256];
    T_CHECK(fd_check(g, &s, &run, NULL, 0, &o, &st, err, sizeof err) == 0, "%s", err);
    T_CHECK(st.zero_checked > 0, "the dead branch's weight was not checked");
    ref_free(&s);
  }
  g_free(&x);
}

// ---------------------------------------------------------------- add / accumulation

static void test_add_alias(void) {
  G x;
  g_init(&x, IR_MODE_TRAIN);
  IrGraph *g = &x.g;
  int in = gb_input(g, 3, 4, 4);
  gb_labels(g);
  int a = gb_conv_sq(g, "a", in, 3, 3, 1, 1, 1);
  int ra = gb_relu(g, "ra", a);                   // consumed by the add only
  int b = gb_conv_sq(g, "b", in, 3, 3, 1, 1, 1);  // consumed by the add and by c
  int ab[2] = {ra, b};
  int sum = gb_add(g, "sum", 2, ab);
  int c = gb_conv_sq(g, "c", b, 3, 1, 1, 0, 1);
  int sc[2] = {sum, c};
  int top = gb_add(g, "top", 2, sc);
  g->logits = gb_linear(g, "fc", top, 4);
  gb_xent(g, "xent", g->logits, 0, 1);
  gb_finish(g);
  if (differentiate(g, "add") == 0) {
    int gsum = grad_of(g, sum), gtop = grad_of(g, top), gra = grad_of(g, ra), gb = grad_of(g, b);
    // sum's only consumer is top: its gradient aliases dtop; ra's aliases dsum -> dtop.
    T_CHECK(g->tensors[gsum].view_of == gtop && g->tensors[gsum].chan_offset == 0,
            "dsum should be a view of dtop");
    T_CHECK(g->tensors[gra].view_of == gtop && g->tensors[gra].chan_offset == 0,
            "dra should be a (flattened) view of dtop");
    // b has two consumers: a real tensor, written once and added to once.
    T_CHECK(g->tensors[gb].view_of < 0, "db must not alias");
    int writes = 0, adds = 0;
    for (int i = g->n_fwd_nodes; i < g->n_nodes; i++)
      if (g->nodes[i].n_out && g->nodes[i].out[0] == gb) {
        writes++;
        adds += g->nodes[i].accumulate & 1;
      }
    T_CHECK(writes == 2 && adds == 1, "db: %d writes, %d adds", writes, adds);
    T_CHECK(count_kind(g, IR_ACCUM) == 1, "one accum (db from dsum), got %d", count_kind(g, IR_ACCUM));
  }
  g_free(&x);
}

// ---------------------------------------------------------------- per-kind inputs

static const IrNode *bwd_of(const IrGraph *g, int fwd, IrKind kind) {
  for (int i = g->n_fwd_nodes; i < g->n_nodes; i++)
    if (g->nodes[i].fwd == fwd && g->nodes[i].kind == kind) return &g->nodes[i];
  return NULL;
}

static int node_named(const IrGraph *g, const char *name, IrKind kind) {
  for (int i = 0; i < g->n_fwd_nodes; i++)
    if (g->nodes[i].kind == kind && strcmp(g->nodes[i].name, name) == 0) return i;
  return -1;
}

static void test_kind_inputs(int train) {
  G x;
  g_init(&x, train ? IR_MODE_TRAIN : IR_MODE_EVAL);
  IrGraph *g = &x.g;
  int in = gb_input(g, 3, 4, 4);
  gb_labels(g);
  int y = gb_conv_sq(g, "conv", in, 4, 3, 1, 1, 1);
  y = gb_bn(g, "bn", y, train, train);
  y = gb_relu(g, "relu", y);
  y = gb_pool(g, "pool", y, 1, 3, 3, 1, 1, 1, 1, 1, 1, 0);
  y = gb_gap(g, "gap", y);
  if (train) y = gb_dropout(g, "drop", y, 0.5f);
  g->logits = gb_linear(g, "fc", y, 3);
  gb_xent(g, "xent", g->logits, 0.1f, 0.4f);
  gb_finish(g);
  if (differentiate(g, train ? "kinds, train" : "kinds, eval") < 0) {
    g_free(&x);
    return;
  }
  int bn = node_named(g, "bn", IR_BN), relu = node_named(g, "relu", IR_RELU);
  int pool = node_named(g, "pool", IR_POOL), xent = node_named(g, "xent", IR_XENT);
  const IrNode *b = bwd_of(g, bn, IR_BN_BWD);
  T_CHECK(b && b->n_in == (train ? 4 : 2) && b->in[0] == g->nodes[bn].in[0] &&
              (!train || (b->in[2] == g->nodes[bn].out[1] && b->in[3] == g->nodes[bn].out[2])) &&
              b->a.bn.batch_stats == train && b->n_param == 4,
          "bn_bwd inputs (train %d)", train);
  b = bwd_of(g, relu, IR_RELU_BWD);
  T_CHECK(b && b->in[0] == g->nodes[relu].out[0], "relu_bwd reads the forward output");
  b = bwd_of(g, pool, IR_POOL_BWD);
  T_CHECK(b && b->n_in == 3 && b->in[0] == g->nodes[pool].in[0] && b->in[1] == g->nodes[pool].out[0] &&
              b->a.pool.is_max == 1,
          "pool_bwd reads x, y, dy");
  b = bwd_of(g, xent, IR_XENT_BWD);
  T_CHECK(b && b->n_in == 2 && b->in[0] == g->nodes[xent].out[1] && b->in[1] == g->labels &&
              b->a.xent.weight == 0.4f && b->a.xent.smoothing == 0.1f && b->out[0] == grad_of(g, g->logits),
          "xent_bwd reads the softmax and the labels, keeps the attributes");
  if (train) {
    int drop = node_named(g, "drop", IR_DROPOUT);
    b = bwd_of(g, drop, IR_MASK_BWD);
    T_CHECK(b && b->in[0] == g->nodes[drop].out[1], "mask_bwd reads the saved mask");
  }
  const IrNode *lin = bwd_of(g, node_named(g, "fc", IR_LINEAR), IR_LINEAR_BWD);
  T_CHECK(lin && lin->n_out == 1, "linear_bwd computes dx for the gap output");
  g_free(&x);
}

// ---------------------------------------------------------------- errors

static void test_errors(void) {
  char err[256];
  G x;
  g_init(&x, IR_MODE_EVAL);
  IrGraph *g = &x.g;
  int in = gb_input(g, 3, 4, 4);
  g->logits = gb_linear(g, "fc", in, 3);
  gb_finish(g);
  T_CHECK(ir_autodiff(g, err, sizeof err) < 0 && strstr(err, "no loss"), "no loss: %s", err);
  g_free(&x);

  g_init(&x, IR_MODE_TRAIN);
  in = gb_input(g, 3, 4, 4);
  gb_labels(g);
  int y = gb_conv_sq(g, "conv", in, 3, 3, 1, 1, 1);
  y = gb_bn(g, "bn", y, 1, 1);
  g->logits = gb_linear(g, "fc", y, 3);
  gb_xent(g, "xent", g->logits, 0, 1);
  gb_finish(g);
  x.pt.items[params_find(&x.pt, "bn.weight")].trainable = 0;  // a frozen BN scale
  int nn = g->n_nodes, nt = g->n_tensors;
  T_CHECK(ir_autodiff(g, err, sizeof err) < 0 && strstr(err, "gamma"), "frozen gamma: %s", err);
  T_CHECK(g->n_nodes == nn && g->n_tensors == nt, "a failed autodiff changed the graph");
  x.pt.items[params_find(&x.pt, "bn.weight")].trainable = 1;
  T_CHECK(ir_autodiff(g, err, sizeof err) == 0, "%s", err);
  T_CHECK(ir_autodiff(g, err, sizeof err) < 0 && strstr(err, "already"), "twice: %s", err);
  g_free(&x);

  // A loss that reaches g->loss through something other than a sum.
  g_init(&x, IR_MODE_TRAIN);
  in = gb_input(g, 3, 4, 4);
  gb_labels(g);
  y = gb_conv_sq(g, "conv", in, 3, 3, 1, 1, 1);
  g->logits = gb_linear(g, "fc", y, 3);
  int l = gb_xent_own(g, "xent", g->logits, 0, 1);
  IrNode acc;
  memset(&acc, 0, sizeof acc);
  acc.kind = IR_RELU;
  snprintf(acc.name, sizeof acc.name, "bad");
  acc.fwd = -1;
  acc.n_in = acc.n_out = 1;
  acc.in[0] = l;
  acc.out[0] = g->loss = ir_add_tensor(g, IR_T_SCALAR, 1, 1, 1, "loss");
  ir_add_node(g, &acc);
  gb_finish(g);
  T_CHECK(ir_autodiff(g, err, sizeof err) < 0 && strstr(err, "xent"), "relu of a loss: %s", err);
  g_free(&x);

  // Malformed graphs are refused by every pass, not crashed on.
  g_init(&x, IR_MODE_TRAIN);
  in = gb_input(g, 3, 4, 4);
  gb_labels(g);
  y = gb_conv_sq(g, "conv", in, 3, 3, 1, 1, 1);
  g->logits = gb_linear(g, "fc", y, 3);
  gb_xent(g, "xent", g->logits, 0, 1);
  gb_finish(g);
  g->nodes[2].in[0] = g->n_tensors + 5;
  T_CHECK(ir_autodiff(g, err, sizeof err) < 0 && strstr(err, "node 2"), "bad index: %s", err);
  T_CHECK(ir_concat_to_views(g, err, sizeof err) < 0, "concat pass on a bad index");
  Plan p;
  PlanOptions po = {1};
  T_CHECK(plan_build(g, &po, &p, err, sizeof err) < 0, "plan_build on a bad index");
  g->nodes[2].in[0] = in;
  g->tensors[y].view_of = y;  // a view of itself
  T_CHECK(ir_autodiff(g, err, sizeof err) < 0 && strstr(err, "view"), "view cycle: %s", err);
  g_free(&x);
}

// ---------------------------------------------------------------- concat as views

static void test_concat_views(void) {
  char err[256];
  G x;
  g_init(&x, IR_MODE_TRAIN);
  IrGraph *g = &x.g;
  int in = gb_input(g, 2, 4, 4);
  gb_labels(g);
  int a = gb_conv_sq(g, "a", in, 3, 3, 1, 1, 1);  // sole consumer: the inner concat
  int b = gb_conv_sq(g, "b", in, 2, 1, 1, 0, 1);  // consumed by the inner concat and by d
  int ab[2] = {a, b};
  int inner = gb_concat(g, "inner", 2, ab);       // 5 channels, only in the outer concat
  int d = gb_conv_sq(g, "d", b, 1, 1, 1, 0, 1);
  int parts[4] = {in, inner, d, d};               // the image, a nested concat, d twice
  int outer = gb_concat(g, "outer", 4, parts);    // 2 + 5 + 1 + 1 = 9 channels
  g->logits = gb_linear(g, "fc", outer, 3);
  gb_xent(g, "xent", g->logits, 0, 1);
  gb_finish(g);
  int n_fwd = g->n_fwd_nodes;
  int views = ir_concat_to_views(g, err, sizeof err);
  T_CHECK(views == 2, "views made: %d (%s)", views, err);  // a into inner, inner into outer
  // a: channels 0..2 of inner, which is channels 2..6 of outer: flattened to outer at 2.
  T_CHECK(g->tensors[a].view_of == outer && g->tensors[a].chan_offset == 2, "a at %d of %d",
          g->tensors[a].chan_offset, g->tensors[a].view_of);
  T_CHECK(g->tensors[inner].view_of == outer && g->tensors[inner].chan_offset == 2, "inner");
  T_CHECK(g->tensors[b].view_of < 0 && g->tensors[in].view_of < 0 && g->tensors[d].view_of < 0,
          "shared parts, the image and a repeated part stay tensors");
  T_CHECK(g->n_fwd_nodes == n_fwd + 4, "copies for b, the image and d twice: %d new nodes",
          g->n_fwd_nodes - n_fwd);
  for (int i = 0; i < g->n_nodes; i++) {
    if (g->nodes[i].kind != IR_CONCAT) continue;
    T_CHECK(ir_concat_in_place(g, i), "concat %s is not in place", g->nodes[i].name);
    // Its copies sit right before it (or before the previous copy).
    for (int k = 0; k < g->nodes[i].n_in; k++) {
      int t = g->nodes[i].in[k], p = g->tensors[t].producer;
      T_CHECK(p >= 0 && p < i && g->nodes[p].out[0] == t, "producer of %s", g->tensors[t].name);
    }
  }
  // b's copy lands at channels 3..4 of inner = 5..6 of outer.
  int inner_node = node_named(g, "inner", IR_CONCAT);
  int bc = g->nodes[inner_node].in[1];
  T_CHECK(g->tensors[bc].view_of == outer && g->tensors[bc].chan_offset == 5 &&
              g->nodes[g->tensors[bc].producer].kind == IR_ACCUM &&
              g->nodes[g->tensors[bc].producer].in[0] == b && g->nodes[g->tensors[bc].producer].accumulate == 0,
          "copy of b into its slice");
  T_CHECK(ir_concat_to_views(g, err, sizeof err) == 0 && g->n_fwd_nodes == n_fwd + 4,
          "the pass is idempotent");
  if (differentiate(g, "concat views") == 0) {
    int pc = 0;
    for (int b2 = 1; b2 <= 3; b2 += 2) {
      RefRun run = {.total_steps = 1};
      pc |= pc_plan_matches_ref(g, 1, b2, 4, &run, err, sizeof err);
    }
    T_CHECK(pc == 0, "plan: %s", err);
  }
  g_free(&x);
}

static void test_concat_views_after_autodiff(void) {
  char err[256];
  G x;
  g_init(&x, IR_MODE_TRAIN);
  GbNet o;
  gb_net_defaults(&o);
  gb_nao_net(&x.g, &o);
  IrGraph *g = &x.g;
  if (differentiate(g, "net") < 0) {
    g_free(&x);
    return;
  }
  int n_bwd = g->n_nodes - g->n_fwd_nodes;
  int views = ir_concat_to_views(g, err, sizeof err);
  T_CHECK(views > 0, "views: %d %s", views, err);
  T_CHECK(g->n_nodes - g->n_fwd_nodes == n_bwd, "backward nodes stay backward nodes");
  check_invariants(g, "net, views after autodiff");
  g_free(&x);
}

static void test_concat_errors(void) {
  char err[256];
  G x;
  g_init(&x, IR_MODE_EVAL);
  IrGraph *g = &x.g;
  int in = gb_input(g, 2, 4, 4);
  int a = gb_conv_sq(g, "a", in, 3, 3, 1, 1, 1);
  int ab[2] = {a, a};
  int cat = gb_concat(g, "cat", 2, ab);
  g->tensors[cat].c = 7;  // should be 6
  gb_finish(g);
  int nn = g->n_nodes;
  T_CHECK(ir_concat_to_views(g, err, sizeof err) < 0 && strstr(err, "channels"), "%s", err);
  T_CHECK(g->n_nodes == nn && g->tensors[a].view_of < 0, "a failed pass changed the graph");
  g_free(&x);
}

int main(void) {
  test_needed_gradients();
  test_add_alias();
  test_kind_inputs(1);
  test_kind_inputs(0);
  test_errors();
  test_concat_views();
  test_concat_views_after_autodiff();
  test_concat_errors();
  if (t_failures) {
    fprintf(stderr, "test_autodiff: %d checks failed\n", t_failures);
    return 1;
  }
  printf("test_autodiff: ok\n");
  return 0;
}
