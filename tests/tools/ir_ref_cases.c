// tests/tools/ir_ref_cases.c — writes the reference interpreter's results on a
// set of one-op graphs, for tests/py/test_ir_ref_torch.py to recompute with
// PyTorch (float64) from the same inputs and parameters.
//
// Each case is  input -> conv 3x3 "pre" -> t -> OP -> classifier (linear) ->
// cross-entropy (smoothing, weight), batch 3, run forward and backward by
// ir_ref after ir_autodiff. Output: "NAOREF1\n", then records
//   u32 name length, name, u32 ndim, u32 dims[ndim], f64 values
// in little-endian order: "case:SPEC" (no values) opens a case, followed by
// "input", "labels", "param:NAME" (before the run), "mask" (dropout/drop-path),
// "t", "logits", "loss", "grad_t", "grad:NAME", "buffer_after:NAME".
//
// usage: ir_ref_cases OUT.bin      exit 0, or 1 when OUT cannot be written.
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/autodiff.h"
#include "tests/unit/graph_builders.h"

typedef struct {
  FILE *f;
  int failed;
} Out;

static void put_u32(Out *o, uint32_t v) {
  unsigned char b[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                        (unsigned char)(v >> 24)};
  if (fwrite(b, 1, 4, o->f) != 4) o->failed = 1;
}

static void record(Out *o, const char *name, int ndim, const int *dims, const double *v) {
  put_u32(o, (uint32_t)strlen(name));
  if (fwrite(name, 1, strlen(name), o->f) != strlen(name)) o->failed = 1;
  put_u32(o, (uint32_t)ndim);
  size_t n = ndim ? 1 : 0;
  for (int d = 0; d < ndim; d++) {
    put_u32(o, (uint32_t)dims[d]);
    n *= (size_t)dims[d];
  }
  if (n && fwrite(v, sizeof(double), n, o->f) != n) o->failed = 1;  // x86-64: little endian
}

static void tensor_record(Out *o, const char *name, const RefState *s, int t) {
  const IrTensor *x = &s->g->tensors[t];
  size_t n = ir_tensor_numel(x) * (size_t)(s->stride[t] ? s->batch : 1);
  if (x->kind == IR_T_LABELS) n = (size_t)s->batch;
  double *v = xmalloc(sizeof(double) * n);
  ref_read(s, t, v);
  int dims[4] = {s->batch, x->c, x->h, x->w};
  if (x->kind == IR_T_SCALAR) record(o, name, 1, (int[]){1}, v);
  else if (x->kind == IR_T_LABELS) record(o, name, 1, dims, v);
  else record(o, name, 4, dims, v);
  free(v);
}

static void params_record(Out *o, const RefState *s, const char *prefix, int grads, int buffers) {
  const ParamTable *pt = s->g->params;
  for (int i = 0; i < pt->n; i++) {
    const ParamInfo *p = &pt->items[i];
    if ((grads || buffers) && p->trainable == buffers) continue;
    const double *base = grads ? s->grads : p->trainable ? s->params : s->buffers;
    char name[PARAM_NAME_MAX + 32];
    snprintf(name, sizeof name, "%s%s", prefix, p->name);
    record(o, name, p->ndim, p->dims, base + p->offset);
  }
}

typedef struct {
  const char *spec;  // what the Python side rebuilds
  int kind;          // 0 conv, 1 pool, 2 bn, 3 relu, 4 gap, 5 dropout, 6 droppath
  int a[11];
  int c, h, w;
} Case;

static int build_op(IrGraph *g, const Case *k, int t) {
  const int *a = k->a;
  switch (k->kind) {
  case 0: return gb_conv(g, "op", t, a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9]);
  case 1: return gb_pool(g, "op", t, a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9]);
  case 2: return gb_bn(g, "op", t, a[0], a[0]);
  case 3: return gb_relu(g, "op", t);
  case 4: return gb_gap(g, "op", t);
  case 5: return gb_dropout(g, "op", t, 0.6f);
  default: return gb_droppath(g, "op", t, 0.5f, 2, 4);
  }
}

static int run_case(Out *o, const Case *k, uint64_t seed) {
  ParamTable pt;
  params_init(&pt);
  IrGraph g;
  ir_init(&g, &pt, IR_MODE_TRAIN);
  int x = gb_input(&g, 3, k->h, k->w);
  gb_labels(&g);
  int t = gb_conv_sq(&g, "pre", x, k->c, 3, 1, 1, 1);
  int y = build_op(&g, k, t);
  g.logits = gb_linear(&g, "classifier", y, 5);
  gb_xent(&g, "xent", g.logits, 0.1f, 0.4f);
  gb_finish(&g);
  char err[256];
  int rc = ir_autodiff(&g, err, sizeof err);
  RefState s;
  ref_init(&s, &g, 3);
  gb_random_params(&g, &s, seed);
  gb_random_data(&g, &s, seed + 1);
  char spec[256];
  snprintf(spec, sizeof spec, "case:%s eps=%.17g momentum=%.17g smoothing=%.17g weight=%.17g", k->spec,
           (double)1e-5f, (double)0.1f, (double)0.1f, (double)0.4f);
  record(o, spec, 0, NULL, NULL);
  tensor_record(o, "input", &s, x);
  tensor_record(o, "labels", &s, g.labels);
  params_record(o, &s, "param:", 0, 0);
  RefRun run = {.step = 3, .total_steps = 8, .seed = seed};
  if (rc == 0) rc = ref_run(&s, &run, 0, g.n_nodes, err, sizeof err);
  if (rc == 0) {
    const IrNode *op = &g.nodes[g.tensors[y].producer];
    if (op->kind == IR_DROPOUT || op->kind == IR_DROPPATH) tensor_record(o, "mask", &s, op->out[1]);
    tensor_record(o, "t", &s, t);
    tensor_record(o, "logits", &s, g.logits);
    tensor_record(o, "loss", &s, g.loss);
    for (int u = 0; u < g.n_tensors; u++)
      if (g.tensors[u].grad_of == t) tensor_record(o, "grad_t", &s, u);
    params_record(o, &s, "grad:", 1, 0);
    params_record(o, &s, "buffer_after:", 0, 1);
  } else {
    fprintf(stderr, "ir_ref_cases: %s: %s\n", k->spec, err);
  }
  ref_free(&s);
  ir_free(&g);
  params_free(&pt);
  return rc;
}

static const Case k_cases[] = {
    {"conv cout=5 kh=3 kw=3 sh=1 sw=1 pt=1 pl=1 pb=1 pr=1 groups=1", 0, {5, 3, 3, 1, 1, 1, 1, 1, 1, 1}, 4, 6, 6},
    {"conv cout=4 kh=3 kw=3 sh=2 sw=2 pt=1 pl=1 pb=1 pr=1 groups=4", 0, {4, 3, 3, 2, 2, 1, 1, 1, 1, 4}, 4, 7, 7},
    {"conv cout=6 kh=1 kw=3 sh=1 sw=2 pt=0 pl=1 pb=0 pr=1 groups=2", 0, {6, 1, 3, 1, 2, 0, 1, 0, 1, 2}, 4, 6, 6},
    {"conv cout=3 kh=1 kw=1 sh=2 sw=2 pt=-1 pl=-1 pb=1 pr=1 groups=1", 0, {3, 1, 1, 2, 2, -1, -1, 1, 1, 1}, 4, 7, 7},
    {"conv cout=3 kh=3 kw=3 sh=1 sw=1 pt=-1 pl=2 pb=0 pr=1 groups=1", 0, {3, 3, 3, 1, 1, -1, 2, 0, 1, 1}, 4, 6, 6},
    {"pool max=1 kh=3 kw=3 sh=2 sw=2 pt=1 pl=1 pb=1 pr=1 counted=0", 1, {1, 3, 3, 2, 2, 1, 1, 1, 1, 0}, 3, 6, 6},
    {"pool max=1 kh=2 kw=2 sh=2 sw=2 pt=0 pl=0 pb=1 pr=1 counted=1", 1, {1, 2, 2, 2, 2, 0, 0, 1, 1, 1}, 3, 6, 6},
    {"pool max=1 kh=2 kw=2 sh=1 sw=1 pt=0 pl=0 pb=1 pr=1 counted=1", 1, {1, 2, 2, 1, 1, 0, 0, 1, 1, 1}, 3, 5, 5},
    {"pool max=0 kh=3 kw=3 sh=1 sw=1 pt=1 pl=1 pb=1 pr=1 counted=0", 1, {0, 3, 3, 1, 1, 1, 1, 1, 1, 0}, 3, 5, 5},
    {"pool max=0 kh=3 kw=3 sh=2 sw=2 pt=1 pl=1 pb=1 pr=1 counted=1", 1, {0, 3, 3, 2, 2, 1, 1, 1, 1, 1}, 3, 6, 6},
    {"pool max=0 kh=2 kw=2 sh=2 sw=2 pt=0 pl=0 pb=1 pr=1 counted=1", 1, {0, 2, 2, 2, 2, 0, 0, 1, 1, 1}, 3, 6, 6},
    {"pool max=0 kh=5 kw=5 sh=3 sw=3 pt=0 pl=0 pb=0 pr=0 counted=1", 1, {0, 5, 5, 3, 3, 0, 0, 0, 0, 1}, 3, 8, 8},
    {"bn train=1", 2, {1}, 4, 4, 4},
    {"bn train=0", 2, {0}, 4, 4, 4},
    {"relu", 3, {0}, 4, 4, 4},
    {"gap", 4, {0}, 4, 4, 4},
    {"dropout", 5, {0}, 4, 3, 3},
    {"droppath", 6, {0}, 4, 3, 3},
};

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: ir_ref_cases OUT.bin\n");
    return 2;
  }
  Out o = {fopen(argv[1], "wb"), 0};
  if (!o.f) {
    fprintf(stderr, "ir_ref_cases: cannot write %s: %s\n", argv[1], strerror(errno));
    return 1;
  }
  if (fwrite("NAOREF1\n", 1, 8, o.f) != 8) o.failed = 1;
  int rc = 0;
  for (size_t i = 0; i < sizeof k_cases / sizeof k_cases[0]; i++)
    rc |= run_case(&o, &k_cases[i], 1000 + i);
  if (fclose(o.f) != 0) o.failed = 1;
  if (o.failed) {
    fprintf(stderr, "ir_ref_cases: writing %s failed: %s\n", argv[1], strerror(errno));
    return 1;
  }
  return rc ? 70 : 0;
}
