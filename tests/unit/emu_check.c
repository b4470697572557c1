// tests/unit/emu_check.c — emit, emulate, compare (emu_check.h).
#include "tests/unit/emu_check.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/rng.h"
#include "tests/unit/emu_harness.h"

typedef struct {
  double max_rel;
  char worst[160];
  int compared;
} Cmp;

// Relative to the largest reference magnitude of the tensor (norm-wise), so
// values near zero in a tensor of large ones do not dominate.
static void cmp_tensor(Cmp *c, const char *what, const float *a, const double *b, size_t n) {
  double mx = 0, worst = 0;
  for (size_t i = 0; i < n; i++)
    if (fabs(b[i]) > mx) mx = fabs(b[i]);
  double scale = mx > 1e-5 ? mx : 1e-5;
  for (size_t i = 0; i < n; i++) {
    double d = fabs((double)a[i] - b[i]) / scale;
    if (!(d <= worst)) worst = isnan(d) ? INFINITY : d;
  }
  c->compared++;
  if (!(worst <= c->max_rel)) {
    c->max_rel = worst;
    snprintf(c->worst, sizeof c->worst, "%s", what);
  }
}

static void init_params(const ParamTable *pt, Rng *rng, float *params, float *buffers) {
  for (int i = 0; i < pt->n; i++) {
    const ParamInfo *p = &pt->items[i];
    float *dst = (p->trainable ? params : buffers) + p->offset;
    const char *suffix = strrchr(p->name, '.');
    for (size_t k = 0; k < p->numel; k++) {
      double u = rng_uniform(rng), v;
      if (!p->trainable) v = suffix && strcmp(suffix, ".running_var") == 0 ? 0.5 + u : 0.2 * rng_normal(rng);
      else if (p->init == PINIT_ONES) v = 0.8 + 0.4 * u;
      else if (p->init == PINIT_ZEROS) v = 0.4 * (u - 0.5);
      else if (p->init == PINIT_LINEAR_BIAS) v = (u - 0.5) / sqrt(p->fan_in > 0 ? p->fan_in : 1);
      else v = rng_normal(rng) * sqrt(2.0 / (p->fan_in > 0 ? p->fan_in : 1));
      dst[k] = (float)v;
    }
  }
}

static void fill_input(const IrGraph *g, EmuMem *mem, const CudaProgram *p, Rng *rng, int n,
                       float **input, int **labels) {
  *input = NULL;
  *labels = NULL;
  if (g->input >= 0) {
    const IrTensor *x = &g->tensors[g->input];
    size_t per = ir_tensor_numel(x);
    *input = xmalloc(sizeof(float) * per * (size_t)n + 1);
    float *dst = emu_tensor(mem, p, g->input);
    for (int s = 0; s < n; s++)
      for (size_t i = 0; i < per; i++) {
        float v = (float)rng_normal(rng);
        (*input)[(size_t)s * per + i] = v;
        dst[(size_t)s * p->locs[g->input].sample_stride + i] = v;
      }
  }
  if (g->labels >= 0) {
    int k = g->logits >= 0 ? g->tensors[g->logits].c : 10;
    *labels = xmalloc(sizeof(int) * (size_t)n + 1);
    int *dst = (int *)emu_tensor(mem, p, g->labels);
    for (int s = 0; s < n; s++) {
      (*labels)[s] = (int)rng_below(rng, (uint64_t)k);
      dst[(size_t)s * p->locs[g->labels].sample_stride] = (*labels)[s];
    }
  }
}

static void compare_tensors(Cmp *c, const IrGraph *g, EmuMem *mem, const CudaProgram *p,
                            const EmuRefRun *r, int all) {
  int nt = p->n_ir_tensors;
  double *buf = NULL;
  size_t cap = 0;
  for (int t = 0; t < nt; t++) {
    const IrTensor *x = &g->tensors[t];
    if (p->locs[t].region == LOC_NONE || x->kind == IR_T_LABELS) continue;
    int wanted = all || t == g->logits || t == g->loss || t == g->aux_logits;
    if (!wanted) continue;
    int batch = x->kind == IR_T_ACT;
    int nn = batch ? mem->n : 1, hw = x->h * x->w;
    size_t cnt = (size_t)nn * x->c * hw;
    if (cnt > cap) {
      cap = cnt;
      buf = xrealloc(buf, sizeof(double) * cap);
    }
    float *a = xmalloc(sizeof(float) * cnt);
    float *base = emu_tensor(mem, p, t);
    size_t ss = p->locs[t].sample_stride, i = 0;
    for (int s = 0; s < nn; s++)
      for (int ch = 0; ch < x->c; ch++)
        for (int e = 0; e < hw; e++, i++) {
          a[i] = base[(size_t)s * ss + (size_t)ch * hw + e];
          buf[i] = *emu_ref_at(r, t, s, ch, e);
        }
    char what[160];
    snprintf(what, sizeof what, "tensor %.120s", x->name);
    cmp_tensor(c, what, a, buf, cnt);
    free(a);
  }
  free(buf);
}

static void compare_params(Cmp *c, const ParamTable *pt, const EmuMem *mem, const EmuRefRun *r,
                           int grads) {
  for (int i = 0; i < pt->n; i++) {
    const ParamInfo *p = &pt->items[i];
    char what[160];
    if (p->trainable) {
      if (!grads) continue;
      snprintf(what, sizeof what, "gradient %.120s", p->name);
      cmp_tensor(c, what, mem->grads + p->offset, r->grads + p->offset, p->numel);
    } else {
      snprintf(what, sizeof what, "buffer %.120s", p->name);
      cmp_tensor(c, what, mem->buffers + p->offset, r->buffers + p->offset, p->numel);
    }
  }
}

// SGD with momentum, weight decay and clipping by global norm, in double.
static int check_update(EmuModule *m, EmuMem *mem, const CudaNet *net, const ParamTable *pt,
                        Rng *rng, Cmp *c, char *err, size_t errlen) {
  const CudaProgram *up = cuda_net_program(net, "update");
  if (!up) {
    snprintf(err, errlen, "no update program");
    return -1;
  }
  size_t n = pt->n_trainable;
  double *p0 = xmalloc(sizeof(double) * (n + 1)), *g0 = xmalloc(sizeof(double) * (n + 1));
  double *b0 = xmalloc(sizeof(double) * (n + 1));
  for (size_t i = 0; i < n; i++) {
    mem->momentum[i] = (float)(0.1 * rng_normal(rng));
    p0[i] = mem->params[i];
    g0[i] = mem->grads[i];
    b0[i] = mem->momentum[i];
  }
  double ss = 0;
  for (size_t i = 0; i < n; i++) ss += g0[i] * g0[i];
  double norm = sqrt(ss);
  mem->hyper = (NaoHyper){0.1f, 0.9f, 3e-4f, (float)(norm * 0.5)};  // clipping active
  double coef = mem->hyper.max_norm / (norm + 1e-6);
  if (coef > 1) coef = 1;
  EmuMem um = *mem;
  um.arena = um.fixed = NULL;
  um.scratch = NULL;
  emu_alloc(&um, up);
  int rc = emu_run(m, &um, up, err, errlen);
  if (!rc) {
    for (size_t i = 0; i < n; i++) {
      double g = g0[i] * coef + mem->hyper.weight_decay * p0[i];
      b0[i] = mem->hyper.momentum * b0[i] + g;
      p0[i] = p0[i] - mem->hyper.lr * b0[i];
    }
    if (getenv("NAO_DEBUG_SGD")) fprintf(stderr, "norm %g clip %g want %g %g\n", um.fixed[0], um.fixed[1], norm, coef);
    if (getenv("NAO_DEBUG_SGD"))
      for (size_t i = 0; i < n; i++)
        if (fabs(mem->momentum[i] - b0[i]) > 1e-4 * (1 + fabs(b0[i])))
          fprintf(stderr, "sgd %zu: momentum %g want %g, param %g want %g, grad %g\n", i,
                  mem->momentum[i], b0[i], mem->params[i], p0[i], g0[i]);
    cmp_tensor(c, "sgd parameters", mem->params, p0, n);
    cmp_tensor(c, "sgd momentum", mem->momentum, b0, n);
    double got_norm = um.fixed[0];
    cmp_tensor(c, "gradient norm", &um.fixed[0], &norm, 1);
    (void)got_norm;
  }
  emu_release(&um);
  free(p0);
  free(g0);
  free(b0);
  return rc;
}

int emu_check(TG *t, const EmitCudaOptions *opt0, const EmuCheck *chk0, const char *label,
              EmuResult *res) {
  EmuCheck chk = chk0 ? *chk0 : (EmuCheck){0};
  if (chk.n <= 0) chk.n = 5;
  if (!chk.seed) chk.seed = 1;
  if (chk.tol <= 0) chk.tol = 1e-4;
  EmitCudaOptions opt;
  if (opt0) opt = *opt0;
  else {
    emit_cuda_defaults(&opt);
    opt.no_reuse = 1;
  }
  EmuResult dummy;
  if (!res) res = &dummy;
  memset(res, 0, sizeof *res);
  char err[8192] = "";
  int rc = -1;
  const IrGraph *g = &t->g;
  const ParamTable *pt = &t->pt;
  CudaNetBuild *b = cuda_net_new(pt, "test.nao", &opt);
  EmuModule m = {0};
  EmuMem mem = {0};
  EmuRefRun ref = {0};
  float *input = NULL;
  int *labels = NULL;
  NaoMask *masks = NULL;
  const NaoMask **by_node = NULL;
  if (cuda_net_add_graph(b, g, "train", err, sizeof err)) goto done;
  if (chk.update) cuda_net_add_update(b);
  const CudaNet *net = cuda_net_get(b);
  const CudaProgram *p = &net->programs[0];
  if (chk.print_source) fputs(net->device_source, stdout);
  for (int s = 0; s < p->n_steps; s++) {
    if (p->steps[s].kind == CUDA_STEP_KERNEL) res->launches++;
    else res->library_steps++;
  }
  res->kernels = net->n_kernels;
  if (emu_build(&m, net->device_source, 0, err, sizeof err)) goto done;
  Rng rng;
  rng_seed(&rng, chk.seed);
  mem.net = net;
  mem.n = chk.n;
  mem.params = xmalloc(sizeof(float) * (pt->n_trainable + 1));
  mem.grads = xmalloc(sizeof(float) * (pt->n_trainable + 1));
  mem.momentum = xcalloc(pt->n_trainable + 1, sizeof(float));
  mem.buffers = xmalloc(sizeof(float) * (pt->n_buffer + 1));
  init_params(pt, &rng, mem.params, mem.buffers);
  for (size_t i = 0; i < pt->n_trainable; i++) mem.grads[i] = NAN;
  masks = xcalloc((size_t)p->n_masks + 1, sizeof *masks);
  by_node = xcalloc((size_t)g->n_nodes + 1, sizeof *by_node);
  for (int s = 0; s < p->n_masks; s++) {
    float keep = (float)(0.5 + 0.4 * rng_uniform(&rng));
    masks[s] = (NaoMask){rng_u64(&rng), keep, 1.0f / keep};
    by_node[p->masks[s].node] = &masks[s];
  }
  mem.masks = masks;
  emu_alloc(&mem, p);
  fill_input(g, &mem, p, &rng, chk.n, &input, &labels);
  float *buf0 = xmalloc(sizeof(float) * (pt->n_buffer + 1));  // buffers before the run
  memcpy(buf0, mem.buffers, sizeof(float) * pt->n_buffer);
  int bad = emu_run(&m, &mem, p, err, sizeof err);
  if (!bad) bad = emu_ref_run(&ref, g, chk.n, mem.params, buf0, by_node, input, labels, err, sizeof err);
  free(buf0);
  if (bad) goto done;
  Cmp c = {0};
  compare_tensors(&c, g, &mem, p, &ref, opt.no_reuse);
  compare_params(&c, pt, &mem, &ref, g->n_fwd_nodes < g->n_nodes);
  if (chk.update && check_update(&m, &mem, net, pt, &rng, &c, err, sizeof err)) goto done;
  res->max_rel = c.max_rel;
  res->compared = c.compared;
  snprintf(res->worst, sizeof res->worst, "%s", c.worst);
  printf("%-28s %3d launches (%2d kernels), %2d library steps, %3d values compared, max rel err %.2e (%s)\n",
         label, res->launches, res->kernels, res->library_steps, c.compared, c.max_rel,
         c.worst[0] ? c.worst : "-");
  rc = c.max_rel <= chk.tol ? 0 : -1;
  if (rc) fprintf(stderr, "%s: error %.3e above %.1e in %s\n", label, c.max_rel, chk.tol, c.worst);
  if (!rc && chk.expect_kernels > 0 && res->launches != chk.expect_kernels) {
    fprintf(stderr, "%s: %d kernel launches, expected %d\n", label, res->launches, chk.expect_kernels);
    rc = -1;
  }
  if (!rc && chk.max_kernels > 0 && res->launches > chk.max_kernels) {
    fprintf(stderr, "%s: %d kernel launches, expected at most %d\n", label, res->launches, chk.max_kernels);
    rc = -1;
  }
done:
  if (err[0] && rc) fprintf(stderr, "%s: %s\n", label, err);
  emu_ref_free(&ref);
  emu_release(&mem);
  emu_unload(&m);
  free(mem.params);
  free(mem.grads);
  free(mem.momentum);
  free(mem.buffers);
  free(masks);
  free(by_node);
  free(input);
  free(labels);
  cuda_net_free(b);
  return rc;
}
