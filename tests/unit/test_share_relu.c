// tests/unit/test_share_relu.c — ir_share_relus and ir_dead_nodes
// (compiler/share_relu.c), and the plans and executions of shared graphs.
//
//  - Hand-built graphs: which duplicate ReLUs are merged (same input, same aux
//    flag) and which are not (another input, the auxiliary head, an output
//    that is a concat's slice or the logits); refusal after autodiff; which
//    nodes are dead (an unread conv and, in turn, the ReLU only it read) and
//    which are not (unread BN and drop-path: side effects; graph outputs).
//  - NAONet-A cells lowered for CIFAR-10 (train mode, aux head, dropout and
//    drop-path mid-schedule), with and without the pass: the reference
//    interpreter (double precision) gives the same loss, logits, parameter
//    gradients and running statistics up to reassociated sums (the gradient
//    of a state now adds the consumers' input gradients before the ReLU
//    backward instead of after it); the shared graph's plan runs fewer ReLU
//    steps in a smaller arena and matches the interpreter bit for bit
//    (pc_plan_matches_ref); and the CPU backend gives both graphs the same loss
//    and gradients within float rounding.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/autodiff.h"
#include "compiler/lower.h"
#include "compiler/netspec.h"
#include "compiler/plan.h"
#include "runtime/exec_cpu.h"
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

static int count_kind(const IrGraph *g, IrKind k, const unsigned char *skip) {
  int n = 0;
  for (int i = 0; i < g->n_nodes; i++) n += g->nodes[i].kind == k && !(skip && skip[i]);
  return n;
}

// ---------------------------------------------------------------- hand-built

// x -> relu a -> conv1, x -> relu b -> conv2 (b duplicates a), x -> relu c
// (aux) -> conv3, y = relu d of another tensor; their sum -> gap -> linear.
static void test_merge_rules(void) {
  char err[256] = "";
  G x;
  g_init(&x, IR_MODE_TRAIN);
  IrGraph *g = &x.g;
  int in = gb_input(g, 4, 6, 6);
  gb_labels(g);
  int s = gb_conv_sq(g, "stem", in, 4, 3, 1, 1, 1);
  int a = gb_relu(g, "a", s), b = gb_relu(g, "b", s);
  int c1 = gb_conv_sq(g, "c1", a, 4, 3, 1, 1, 1), c2 = gb_conv_sq(g, "c2", b, 4, 1, 1, 0, 1);
  int rc_ = gb_relu(g, "c", s);
  g->nodes[g->tensors[rc_].producer].aux = 1;
  int c3 = gb_conv_sq(g, "c3", rc_, 4, 1, 1, 0, 1);
  g->nodes[g->tensors[c3].producer].aux = 1;
  int d = gb_relu(g, "d", c1);
  int e = gb_relu(g, "e", c1);  // duplicate of d, and read twice
  int sum_in[5] = {c2, c3, d, e, e};
  int sum = gb_add(g, "sum", 5, sum_in);
  g->logits = gb_linear(g, "fc", gb_gap(g, "gap", sum), 3);
  gb_xent(g, "xent", g->logits, 0, 1);
  gb_finish(g);
  int n_nodes = g->n_nodes;
  int merged = ir_share_relus(g, err, sizeof err);
  T_CHECK(merged == 2, "merged %d ReLUs (want b into a, e into d): %s", merged, err);
  T_CHECK(g->n_nodes == n_nodes, "nodes were added or removed: %d -> %d", n_nodes, g->n_nodes);
  const IrNode *nc2 = &g->nodes[g->tensors[c2].producer];
  T_CHECK(nc2->in[0] == a, "c2 reads tensor %d, not a's output %d", nc2->in[0], a);
  const IrNode *nc3 = &g->nodes[g->tensors[c3].producer];
  T_CHECK(nc3->in[0] == rc_, "the aux head's ReLU was merged");
  const IrNode *ns = &g->nodes[g->tensors[sum].producer];
  T_CHECK(ns->in[2] == d && ns->in[3] == d && ns->in[4] == d, "sum reads %d %d %d, want d = %d",
          ns->in[2], ns->in[3], ns->in[4], d);
  T_CHECK(ir_verify(g, err, sizeof err) == 0, "verify after sharing: %s", err);
  unsigned char *dead = ir_dead_nodes(g);
  int n_dead = 0;
  for (int i = 0; i < g->n_nodes; i++) n_dead += dead[i];
  T_CHECK(n_dead == 2 && dead[g->tensors[b].producer] && dead[g->tensors[e].producer],
          "dead nodes: %d (want b and e)", n_dead);
  free(dead);
  T_CHECK(ir_share_relus(g, err, sizeof err) == 0, "a second pass merges nothing");
  T_CHECK(ir_autodiff(g, err, sizeof err) == 0, "autodiff: %s", err);
  T_CHECK(ir_share_relus(g, err, sizeof err) < 0 && strstr(err, "backward"),
          "after autodiff the pass refuses: %s", err);
  T_CHECK(pc_plan_matches_ref(g, 1, 3, 5, &(RefRun){0}, err, sizeof err) == 0, "plan: %s", err);
  g_free(&x);
}

// ReLU outputs that must stay: a concat's slice (after ir_concat_to_views),
// the logits.
static void test_kept_outputs(void) {
  char err[256] = "";
  G x;
  g_init(&x, IR_MODE_EVAL);
  IrGraph *g = &x.g;
  int in = gb_input(g, 4, 4, 4);
  int s = gb_conv_sq(g, "stem", in, 4, 3, 1, 1, 1);
  int p = gb_relu(g, "p", s), q = gb_relu(g, "q", s);
  int parts[2] = {p, q};
  int cat = gb_concat(g, "cat", 2, parts);
  int lg = gb_linear(g, "fc", gb_gap(g, "gap", cat), 8);
  g->logits = gb_relu(g, "out", lg);
  int r = gb_relu(g, "r", lg);  // duplicates the logits' ReLU: its reader moves
  g->aux_logits = gb_linear(g, "fc2", r, 3);
  gb_finish(g);
  T_CHECK(ir_concat_to_views(g, err, sizeof err) == 2, "both ReLU outputs become slices: %s", err);
  int merged = ir_share_relus(g, err, sizeof err);
  // q's output is a slice of cat: it must be written, so q stays; r is merged
  // into "out" (fc2 reads the logits tensor; r's output is no graph output).
  T_CHECK(merged == 1, "merged %d (want r only): %s", merged, err);
  unsigned char *dead = ir_dead_nodes(g);
  T_CHECK(!dead[g->tensors[q].producer] && !dead[g->tensors[g->logits].producer] &&
              dead[g->tensors[r].producer],
          "dead: q %d, logits relu %d, r %d", dead[g->tensors[q].producer],
          dead[g->tensors[g->logits].producer], dead[g->tensors[r].producer]);
  free(dead);
  T_CHECK(pc_plan_matches_ref(g, 1, 2, 9, &(RefRun){0}, err, sizeof err) == 0, "plan: %s", err);
  g_free(&x);
}

// Unread nodes: a conv and the ReLU only it reads die; BN and drop-path (side
// effects) do not.
static void test_dead_nodes(void) {
  G x;
  g_init(&x, IR_MODE_TRAIN);
  IrGraph *g = &x.g;
  int in = gb_input(g, 3, 4, 4);
  gb_labels(g);
  int s = gb_conv_sq(g, "stem", in, 4, 3, 1, 1, 1);
  int r = gb_relu(g, "r", s);
  int unread = gb_conv_sq(g, "unread", r, 4, 1, 1, 0, 1);
  int bn = gb_bn(g, "bn", s, 1, 1);
  int dp = gb_droppath(g, "dp", s, 0.5f, 0, 2);
  g->logits = gb_linear(g, "fc", gb_gap(g, "gap", s), 3);
  gb_xent(g, "xent", g->logits, 0, 1);
  gb_finish(g);
  unsigned char *dead = ir_dead_nodes(g);
  T_CHECK(dead[g->tensors[unread].producer] && dead[g->tensors[r].producer],
          "the unread conv and its ReLU are dead");
  T_CHECK(!dead[g->tensors[bn].producer] && !dead[g->tensors[dp].producer],
          "BN and drop-path are kept (running statistics, masks)");
  T_CHECK(!dead[g->tensors[s].producer] && !dead[g->tensors[g->logits].producer],
          "live nodes are kept");
  int n_dead = 0;
  for (int i = 0; i < g->n_nodes; i++) n_dead += dead[i];
  T_CHECK(n_dead == 2, "%d dead nodes, want 2", n_dead);
  free(dead);
  Plan p;
  char err[256];
  PlanOptions po = {1};
  T_CHECK(plan_build(g, &po, &p, err, sizeof err) == 0 && plan_verify(g, &p, err, sizeof err) == 0,
          "plan: %s", err);
  T_CHECK(p.n_steps == g->n_nodes - 2 && p.loc[unread].region == LOC_NONE &&
              p.loc[r].region == LOC_NONE,
          "the plan leaves the dead nodes out and gives their outputs no storage");
  plan_free(&p);
  g_free(&x);
}

// ---------------------------------------------------------------- NAONet-A

static const char *const naonet_a =
    "0 7 1 15 2 8 1 7 0 6 1 7 0 8 4 7 1 5 0 7 0 7 1 13 0 6 0 14 0 9 1 10 0 14 2 6 1 11 0 7";

static void lower_a(G *x, int share) {
  char err[512];
  NetSpec ns;
  netspec_init(&ns);
  netspec_apply_dataset(&ns, DATASET_CIFAR10);
  ns.channels = 4;
  ns.layers = 1;
  ns.aux_weight = 0.4;
  ns.drop_path_keep = 0.8;
  ns.dropout_keep = 0.6;
  T_CHECK(netspec_parse_arch(&ns, naonet_a, err, sizeof err) == 0, "%s", err);
  g_init(x, IR_MODE_TRAIN);
  LowerOptions lo;
  lower_options_init(&lo, IR_MODE_TRAIN);
  int rc = lower_network(&ns, &lo, &x->pt, &x->g, err, sizeof err);
  T_CHECK(rc == 0, "lower: %s", err);
  if (share) {
    int before = count_kind(&x->g, IR_RELU, NULL);
    int merged = ir_share_relus(&x->g, err, sizeof err);
    printf("NAONet-A F=4 N=1: %d of %d ReLUs shared\n", merged, before);
    T_CHECK(merged >= 10, "only %d ReLUs shared: %s", merged, err);
  }
  T_CHECK(ir_verify(&x->g, err, sizeof err) == 0, "verify: %s", err);
  T_CHECK(ir_concat_to_views(&x->g, err, sizeof err) >= 0, "views: %s", err);
  T_CHECK(ir_autodiff(&x->g, err, sizeof err) == 0, "autodiff: %s", err);
}

static double rel_diff(const double *a, const double *b, size_t n) {
  double m = 0, scale = 0;
  for (size_t j = 0; j < n; j++) scale = fmax(scale, fabs(a[j]));
  for (size_t j = 0; j < n; j++) m = fmax(m, fabs(a[j] - b[j]));
  return scale > 0 ? m / scale : m;
}

// Runs both graphs through the reference interpreter on the same values.
static void compare_ref(const G *a, const G *b, const RefRun *run) {
  char err[256];
  const int batch = 3;
  RefState sa, sb;
  ref_init(&sa, &a->g, batch);
  ref_init(&sb, &b->g, batch);
  gb_random_params(&a->g, &sa, 21);
  gb_random_data(&a->g, &sa, 22);
  gb_random_params(&b->g, &sb, 21);
  gb_random_data(&b->g, &sb, 22);
  T_CHECK(ref_run(&sa, run, 0, a->g.n_nodes, err, sizeof err) == 0, "ref a: %s", err);
  T_CHECK(ref_run(&sb, run, 0, b->g.n_nodes, err, sizeof err) == 0, "ref b: %s", err);
  double la = *ref_at(&sa, a->g.loss, 0, 0), lb = *ref_at(&sb, b->g.loss, 0, 0);
  T_CHECK(la == lb, "losses differ: %.17g %.17g", la, lb);
  size_t nl = (size_t)batch * 10;
  double *va = xmalloc(sizeof(double) * nl), *vb = xmalloc(sizeof(double) * nl);
  ref_read(&sa, a->g.logits, va);
  ref_read(&sb, b->g.logits, vb);
  T_CHECK(memcmp(va, vb, sizeof(double) * nl) == 0, "logits differ");
  // Gradients: the same sums in another association, in double: 1e-12 of the
  // largest gradient is ~1e4 ulps of slack, a missing or doubled
  // contribution is off by whole gradients.
  double dg = rel_diff(sa.grads, sb.grads, a->pt.n_trainable);
  T_CHECK(dg < 1e-12, "parameter gradients differ by %.3g (relative to the largest)", dg);
  T_CHECK(memcmp(sa.buffers, sb.buffers, sizeof(double) * a->pt.n_buffer) == 0,
          "running statistics differ");
  printf("NAONet-A reference: same loss %.9f and logits, gradients within %.2g\n", la, dg);
  free(va);
  free(vb);
  ref_free(&sa);
  ref_free(&sb);
}

// Runs a graph on the CPU backend; returns its loss, fills grads.
static float run_cpu(const G *x, const Plan *p, const float *params, float *grads) {
  char err[256];
  const int batch = 4;
  CpuExec *ex = cpu_exec_create(&x->g, p, batch, 2, err, sizeof err);
  T_CHECK(ex != NULL, "cpu_exec_create: %s", err);
  if (!ex) return NAN;
  float *buffers = xmalloc(sizeof(float) * (x->pt.n_buffer + 1));
  for (int i = 0; i < x->pt.n; i++) {
    const ParamInfo *pi = &x->pt.items[i];
    if (!pi->trainable)
      for (size_t j = 0; j < pi->numel; j++) buffers[pi->offset + j] = pi->init == PINIT_ONES;
  }
  const IrTensor *in = &x->g.tensors[x->g.input];
  size_t nx = (size_t)batch * in->c * in->h * in->w;
  float *img = xmalloc(sizeof(float) * nx);
  for (size_t j = 0; j < nx; j++) img[j] = (float)sin(0.37 * (double)j);
  int32_t labels[4] = {1, 7, 3, 0};
  cpu_exec_set_input(ex, img, batch);
  cpu_exec_set_labels(ex, labels, batch);
  RunState rs = {300, 1000, 17, 1};
  T_CHECK(cpu_exec_run(ex, batch, &rs, (float *)params, grads, buffers) == 0, "run: %s",
          cpu_exec_error(ex));
  float loss = cpu_exec_loss(ex);
  cpu_exec_free(ex);
  free(img);
  free(buffers);
  return loss;
}

static void test_naonet_a(void) {
  char err[512];
  G a, b;
  lower_a(&a, 0);
  lower_a(&b, 1);
  T_CHECK(a.g.n_fwd_nodes == b.g.n_fwd_nodes,
          "forward node counts differ: %d, %d (masks are keyed by index)", a.g.n_fwd_nodes,
          b.g.n_fwd_nodes);
  RefRun run = {.step = 300, .total_steps = 1000, .seed = 17};
  compare_ref(&a, &b, &run);
  T_CHECK(pc_plan_matches_ref(&b.g, 1, 3, 5, &run, err, sizeof err) == 0, "plan: %s", err);
  Plan pa, pb;
  PlanOptions po = {1};
  T_CHECK(plan_build(&a.g, &po, &pa, err, sizeof err) == 0, "%s", err);
  T_CHECK(plan_build(&b.g, &po, &pb, err, sizeof err) == 0, "%s", err);
  int relu_a = 0, relu_b = 0;
  for (int k = 0; k < pa.n_steps; k++) relu_a += a.g.nodes[pa.steps[k]].kind == IR_RELU;
  for (int k = 0; k < pb.n_steps; k++) relu_b += b.g.nodes[pb.steps[k]].kind == IR_RELU;
  printf("plan: ReLU steps %d -> %d, arena %zu -> %zu floats per image\n", relu_a, relu_b,
         pa.arena_per_image, pb.arena_per_image);
  T_CHECK(relu_b < relu_a && pb.arena_per_image < pa.arena_per_image,
          "sharing saves neither steps nor memory");
  // The CPU backend: same loss and gradients within float rounding.
  size_t np = a.pt.n_trainable;
  float *params = xmalloc(sizeof(float) * np);
  float *ga = xmalloc(sizeof(float) * np), *gbuf = xmalloc(sizeof(float) * np);
  for (size_t j = 0; j < np; j++) params[j] = (float)(0.3 * sin(1.3 * (double)j + 0.5));
  float la = run_cpu(&a, &pa, params, ga), lb = run_cpu(&b, &pb, params, gbuf);
  double m = 0, scale = 0;
  for (size_t j = 0; j < np; j++) {
    scale = fmax(scale, fabs(ga[j]));
    m = fmax(m, fabs((double)ga[j] - gbuf[j]));
  }
  // Float sums in another order: a few ulps of the largest terms.
  T_CHECK(isfinite(la) && fabsf(la - lb) <= 1e-5f * fabsf(la) && m <= 1e-4 * scale,
          "cpu: loss %.9g vs %.9g, gradients differ by %.3g of %.3g", la, lb, m, scale);
  printf("cpu backend: loss %.7f vs %.7f, gradients within %.2g of the largest\n", la, lb,
         scale > 0 ? m / scale : m);
  free(params);
  free(ga);
  free(gbuf);
  plan_free(&pa);
  plan_free(&pb);
  g_free(&a);
  g_free(&b);
}

int main(void) {
  test_merge_rules();
  test_kept_outputs();
  test_dead_nodes();
  test_naonet_a();
  if (t_failures) fprintf(stderr, "%d checks failed\n", t_failures);
  return t_failures != 0;
}
