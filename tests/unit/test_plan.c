// tests/unit/test_plan.c — plan_build, plan_verify and plan_stats.
//
// The key check: a graph executed through its plan (the reference kernels,
// every tensor at the plan's address in one NaN-filled arena, views and
// accumulations included) gives exactly what it gives with separate storage,
// for batch 1 and 3 (ref_check.c). Besides: plan_verify accepts every plan
// built here and rejects corrupted ones; reuse saves memory on deep graphs;
// views, labels and statistics land where plan.h says.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

static int build_plan(const IrGraph *g, int reuse, Plan *p) {
  char err[256];
  PlanOptions o = {reuse};
  if (plan_build(g, &o, p, err, sizeof err) < 0) {
    T_CHECK(0, "plan_build: %s", err);
    return -1;
  }
  int rc = plan_verify(g, p, err, sizeof err);
  T_CHECK(rc == 0, "plan_verify: %s", err);
  return rc;
}

// ---------------------------------------------------------------- a deep chain

// input -> depth x (conv 3x3 -> bn -> relu) -> gap -> linear -> xent.
static void chain(G *x, int depth, int train) {
  g_init(x, train ? IR_MODE_TRAIN : IR_MODE_EVAL);
  IrGraph *g = &x->g;
  int y = gb_input(g, 8, 8, 8);
  gb_labels(g);
  for (int i = 0; i < depth; i++) {
    char name[32];
    snprintf(name, sizeof name, "l%d.conv", i);
    y = gb_conv_sq(g, name, y, 8, 3, 1, 1, 1);
    snprintf(name, sizeof name, "l%d.bn", i);
    y = gb_bn(g, name, y, train, train);
    snprintf(name, sizeof name, "l%d.relu", i);
    y = gb_relu(g, name, y);
  }
  g->logits = gb_linear(g, "fc", gb_gap(g, "gap", y), 4);
  gb_xent(g, "xent", g->logits, 0, 1);
  gb_finish(g);
}

static void test_reuse_deep(void) {
  char err[256];
  const size_t S = 8 * 8 * 8;  // one activation per image, floats (a multiple of 16)
  G x;
  chain(&x, 24, 0);  // evaluation, forward only: two activations live at a time
  Plan p, q;
  if (build_plan(&x.g, 1, &p) == 0 && build_plan(&x.g, 0, &q) == 0) {
    printf("deep eval chain: arena %zu floats/image with reuse, %zu without (naive %zu)\n",
           p.arena_per_image, q.arena_per_image, p.naive_per_image);
    T_CHECK(p.arena_per_image <= 2 * S + 64, "eval chain arena %zu > 2 activations", p.arena_per_image);
    T_CHECK(q.arena_per_image == q.naive_per_image && p.naive_per_image == q.naive_per_image &&
                q.naive_per_image >= 72 * S,
            "naive %zu", q.naive_per_image);
    plan_free(&p);
    plan_free(&q);
  }
  g_free(&x);

  chain(&x, 24, 1);  // training: saved activations live on, gradients are reused
  if (ir_autodiff(&x.g, err, sizeof err) < 0) T_CHECK(0, "%s", err);
  else if (build_plan(&x.g, 1, &p) == 0) {
    printf("deep train chain: arena %zu floats/image with reuse, naive %zu (%.0f%%)\n",
           p.arena_per_image, p.naive_per_image, 100.0 * p.arena_per_image / p.naive_per_image);
    // Forward: per layer conv out, bn out, relu out are all read by the backward
    // pass (72 S); backward: ~3 gradients per layer (72 S) of which only a few
    // are live at once. So the arena is a bit over half of the naive size.
    T_CHECK(p.arena_per_image <= 78 * S && p.arena_per_image * 10 <= p.naive_per_image * 6,
            "train chain arena %zu of naive %zu", p.arena_per_image, p.naive_per_image);
    RefRun run = {.total_steps = 1};
    for (int b = 1; b <= 3; b += 2)
      T_CHECK(pc_plan_matches_ref(&x.g, 1, b, 5, &run, err, sizeof err) == 0, "deep chain: %s", err);
    plan_free(&p);
  }
  g_free(&x);
}

// ---------------------------------------------------------------- locations

static void test_locations(void) {
  char err[256];
  G x;
  g_init(&x, IR_MODE_TRAIN);
  IrGraph *g = &x.g;
  int in = gb_input(g, 2, 4, 4);
  gb_labels(g);
  int a = gb_conv_sq(g, "a", in, 3, 3, 1, 1, 1);
  int b = gb_bn(g, "b", gb_conv_sq(g, "bc", in, 2, 1, 1, 0, 1), 1, 1);
  int ab[2] = {a, b};
  int cat = gb_concat(g, "cat", 2, ab);  // (5, 4, 4)
  g->logits = gb_linear(g, "fc", cat, 3);
  gb_xent(g, "xent", g->logits, 0, 1);
  gb_finish(g);
  T_CHECK(ir_concat_to_views(g, err, sizeof err) == 2, "%s", err);
  T_CHECK(ir_autodiff(g, err, sizeof err) == 0, "%s", err);
  Plan p;
  if (build_plan(g, 1, &p) == 0) {
    const PlanLoc *lc = &p.loc[cat], *la = &p.loc[a], *lb = &p.loc[b];
    T_CHECK(lc->region == LOC_ARENA && lc->sample_stride == 80 && lc->unscaled == 0, "concat block");
    T_CHECK(la->region == LOC_ARENA && la->scaled == lc->scaled && la->unscaled == 0 &&
                la->sample_stride == 80,
            "a: scaled %zu unscaled %zu stride %zu", la->scaled, la->unscaled, la->sample_stride);
    T_CHECK(lb->scaled == lc->scaled && lb->unscaled == 3 * 16 && lb->sample_stride == 80,
            "b: scaled %zu unscaled %zu stride %zu", lb->scaled, lb->unscaled, lb->sample_stride);
    // Address arithmetic of plan.h for batch 3: sample 2 of b starts at
    // arena + scaled*3 + 48 + 2*80.
    float arena[1];
    T_CHECK(plan_tensor_ptr(&p, b, arena, arena, 3) == arena + lc->scaled * 3 + 48,
            "plan_tensor_ptr of a view");
    T_CHECK(p.loc[g->labels].region == LOC_ARENA && p.loc[g->labels].sample_stride == 1,
            "labels: one slot per sample");
    T_CHECK(p.loc[g->loss].region == LOC_FIXED, "the loss is in the fixed region");
    int bn = g->tensors[b].producer;
    T_CHECK(p.loc[g->nodes[bn].out[1]].region == LOC_FIXED &&
                p.loc[g->nodes[bn].out[2]].region == LOC_FIXED,
            "batch statistics are in the fixed region");
    for (int t = 0; t < g->n_tensors; t++)
      if (p.loc[t].region == LOC_ARENA && g->tensors[t].view_of < 0)
        T_CHECK(p.loc[t].scaled % 16 == 0, "%s is not 64-byte aligned", g->tensors[t].name);
    for (int s = 0; s < p.n_steps; s++)
      T_CHECK(g->nodes[p.steps[s]].kind != IR_CONCAT, "an in-place concat is a step");
    PlanStats st;
    plan_stats(g, &p, &st);
    T_CHECK(st.arena_bytes_per_image == 4 * p.arena_per_image &&
                st.naive_bytes_per_image == 4 * p.naive_per_image &&
                st.fixed_bytes == 4 * p.fixed_floats && st.n_steps == p.n_steps && st.n_elided == 1,
            "plan_stats");
    int views = 0;
    for (int t = 0; t < g->n_tensors; t++) views += g->tensors[t].view_of >= 0;
    T_CHECK(st.n_views == views, "plan_stats views %d of %d", st.n_views, views);
    // Building again gives the same plan.
    Plan q;
    if (build_plan(g, 1, &q) == 0) {
      T_CHECK(q.n_steps == p.n_steps && memcmp(q.loc, p.loc, sizeof *p.loc * (size_t)g->n_tensors) == 0,
              "plan_build is not deterministic");
      plan_free(&q);
    }
    plan_free(&p);
  }
  g_free(&x);
}

// ---------------------------------------------------------------- no reuse

static void test_no_reuse_disjoint(void) {
  char err[256];
  G x;
  g_init(&x, IR_MODE_TRAIN);
  GbNet o;
  gb_net_defaults(&o);
  gb_nao_net(&x.g, &o);
  IrGraph *g = &x.g;
  T_CHECK(ir_autodiff(g, err, sizeof err) == 0, "%s", err);
  Plan p;
  if (build_plan(g, 0, &p) == 0) {
    T_CHECK(p.arena_per_image == p.naive_per_image, "without reuse the arena is the naive size");
    int overlaps = 0;
    for (int a = 0; a < g->n_tensors; a++)
      for (int b = a + 1; b < g->n_tensors; b++) {
        const PlanLoc *la = &p.loc[a], *lb = &p.loc[b];
        if (g->tensors[a].view_of >= 0 || g->tensors[b].view_of >= 0 || la->region == LOC_NONE ||
            la->region != lb->region)
          continue;
        size_t a0 = la->scaled + la->unscaled, b0 = lb->scaled + lb->unscaled;
        size_t a1 = a0 + (la->region == LOC_ARENA ? la->sample_stride : ir_tensor_numel(&g->tensors[a]));
        size_t b1 = b0 + (lb->region == LOC_ARENA ? lb->sample_stride : ir_tensor_numel(&g->tensors[b]));
        overlaps += a0 < b1 && b0 < a1;
      }
    T_CHECK(overlaps == 0, "%d overlapping pairs without reuse", overlaps);
    plan_free(&p);
  }
  g_free(&x);
}

// ---------------------------------------------------------------- plan == separate storage

static void test_networks_through_plans(void) {
  char err[512];
  static const struct {
    const char *name;
    int train, views, n_cells;
    unsigned reduce;
  } nets[] = {
      {"net train", 1, 0, 3, 2u},
      {"net train, views", 1, 1, 3, 2u},
      {"net eval", 0, 0, 3, 2u},
      {"net eval, views", 0, 1, 3, 2u},
      {"net train 8 cells, views", 1, 1, 8, 8u | 64u},
  };
  for (size_t i = 0; i < sizeof nets / sizeof nets[0]; i++) {
    G x;
    g_init(&x, nets[i].train ? IR_MODE_TRAIN : IR_MODE_EVAL);
    GbNet o;
    gb_net_defaults(&o);
    o.train = nets[i].train;
    o.n_cells = nets[i].n_cells;
    o.reduce = nets[i].reduce;
    o.c = 2;
    gb_nao_net(&x.g, &o);
    IrGraph *g = &x.g;
    int ok = (!nets[i].views || ir_concat_to_views(g, err, sizeof err) >= 0) &&
             ir_autodiff(g, err, sizeof err) == 0;
    T_CHECK(ok, "%s: %s", nets[i].name, err);
    RefRun run = {.step = 3, .total_steps = 10, .seed = 17};
    for (int b = 1; ok && b <= 3; b += 2)
      for (int reuse = 0; reuse <= 1; reuse++)
        T_CHECK(pc_plan_matches_ref(g, reuse, b, 40 + (uint64_t)b, &run, err, sizeof err) == 0,
                "%s, batch %d, reuse %d: %s", nets[i].name, b, reuse, err);
    Plan p;
    if (ok && build_plan(g, 1, &p) == 0) {
      PlanStats st;
      plan_stats(g, &p, &st);
      printf("%-26s %4d steps (%d elided), arena %6zu B/image (naive %6zu, %2.0f%%), fixed %zu B, "
             "%d views\n",
             nets[i].name, st.n_steps, st.n_elided, st.arena_bytes_per_image,
             st.naive_bytes_per_image, 100.0 * st.arena_bytes_per_image / st.naive_bytes_per_image,
             st.fixed_bytes, st.n_views);
      plan_free(&p);
    }
    g_free(&x);
  }
}

// ---------------------------------------------------------------- verify rejects

static void expect_reject(const IrGraph *g, const Plan *p, const char *what, const char *needle) {
  char err[256] = "";
  int rc = plan_verify(g, p, err, sizeof err);
  T_CHECK(rc < 0 && strstr(err, needle), "%s: plan_verify gave %d (%s)", what, rc, err);
}

static void test_verify_rejects(void) {
  char err[256];
  G x;
  chain(&x, 4, 1);
  IrGraph *g = &x.g;
  T_CHECK(ir_concat_to_views(g, err, sizeof err) == 0 && ir_autodiff(g, err, sizeof err) == 0, "%s", err);
  Plan p;
  if (build_plan(g, 1, &p) < 0) {
    g_free(&x);
    return;
  }
  // Two tensors live at the same step (a conv's input and output) made to overlap.
  int conv = -1;
  for (int i = 0; i < g->n_fwd_nodes && conv < 0; i++)
    if (g->nodes[i].kind == IR_CONV && g->nodes[i].in[0] != g->input) conv = i;
  int xin = g->nodes[conv].in[0], yout = g->nodes[conv].out[0];
  PlanLoc keep = p.loc[yout];
  p.loc[yout].scaled = p.loc[xin].scaled + 16;
  expect_reject(g, &p, "overlap", "live together");
  p.loc[yout] = keep;
  // A step moved before the step that writes its input.
  int s1 = -1;
  for (int s = 0; s < p.n_steps; s++)
    if (p.steps[s] == conv) s1 = s;
  int tmp = p.steps[s1];
  p.steps[s1] = p.steps[s1 - 1];
  p.steps[s1 - 1] = tmp;
  expect_reject(g, &p, "order", "before it is written");
  p.steps[s1 - 1] = p.steps[s1];
  p.steps[s1] = tmp;
  // A missing step, a repeated step.
  int last = p.steps[p.n_steps - 1];
  p.n_steps--;
  expect_reject(g, &p, "missing", "not among the steps");
  p.steps[p.n_steps] = p.steps[0];
  p.n_steps++;
  expect_reject(g, &p, "repeated", "runs twice");
  p.steps[p.n_steps - 1] = last;
  // A tensor outside the arena; a statistic in the arena.
  keep = p.loc[yout];
  p.loc[yout].scaled = p.arena_per_image;
  expect_reject(g, &p, "out of the arena", "bad location");
  p.loc[yout] = keep;
  T_CHECK(plan_verify(g, &p, err, sizeof err) == 0, "restored plan: %s", err);
  plan_free(&p);
  g_free(&x);

  // A misplaced view.
  g_init(&x, IR_MODE_EVAL);
  g = &x.g;
  int in = gb_input(g, 2, 4, 4);
  int a = gb_conv_sq(g, "a", in, 3, 3, 1, 1, 1);
  int b = gb_conv_sq(g, "b", in, 2, 3, 1, 1, 1);
  int ab[2] = {a, b};
  g->logits = gb_linear(g, "fc", gb_concat(g, "cat", 2, ab), 3);
  gb_finish(g);
  T_CHECK(ir_concat_to_views(g, err, sizeof err) == 2, "%s", err);
  if (build_plan(g, 1, &p) == 0) {
    p.loc[b].unscaled += 16;
    expect_reject(g, &p, "view", "not at its place");
    plan_free(&p);
  }
  g_free(&x);
}

static void test_build_errors(void) {
  char err[256];
  G x;
  g_init(&x, IR_MODE_EVAL);
  IrGraph *g = &x.g;
  int in = gb_input(g, 2, 4, 4);
  int orphan = ir_add_tensor(g, IR_T_ACT, 2, 4, 4, "orphan");  // nobody writes it
  int ab[2] = {in, orphan};
  g->logits = gb_linear(g, "fc", gb_add(g, "sum", 2, ab), 3);
  gb_finish(g);
  Plan p;
  PlanOptions o = {1};
  T_CHECK(plan_build(g, &o, &p, err, sizeof err) < 0 && strstr(err, "orphan"), "orphan: %s", err);
  g_free(&x);
}

static void test_big_plan_time(void) {
  // A NAO-sized graph (20 cells) builds and verifies in well under a second.
  char err[256];
  G x;
  g_init(&x, IR_MODE_TRAIN);
  GbNet o;
  gb_net_defaults(&o);
  o.n_cells = 20;
  o.reduce = (1u << 6) | (1u << 13);
  o.hw = 8;
  gb_nao_net(&x.g, &o);
  T_CHECK(ir_concat_to_views(&x.g, err, sizeof err) >= 0 && ir_autodiff(&x.g, err, sizeof err) == 0,
          "%s", err);
  clock_t t0 = clock();
  Plan p;
  if (build_plan(&x.g, 1, &p) == 0) {
    double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    printf("20-cell net: %d nodes, %d tensors: plan_build + plan_verify %.3f s, arena %.0f%% of naive\n",
           x.g.n_nodes, x.g.n_tensors, secs, 100.0 * p.arena_per_image / p.naive_per_image);
    T_CHECK(secs < 5, "planning took %.2f s", secs);
    plan_free(&p);
  }
  g_free(&x);
}

int main(void) {
  test_reuse_deep();
  test_locations();
  test_no_reuse_disjoint();
  test_networks_through_plans();
  test_verify_rejects();
  test_build_errors();
  test_big_plan_time();
  if (t_failures) {
    fprintf(stderr, "test_plan: %d checks failed\n", t_failures);
    return 1;
  }
  printf("test_plan: ok\n");
  return 0;
}
