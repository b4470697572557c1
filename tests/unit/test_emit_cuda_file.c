// tests/unit/test_emit_cuda_file.c — net.cu as a file: byte-for-byte
// deterministic; its plan section compiles with the project's warning flags
// (-Werror) and, loaded, equals the in-memory CudaNet it was printed from;
// its device section compiles as a whole under the emulator with every
// kernel present; no absolute path in the header.
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compiler/emit_cuda.h"
#include "tests/unit/emu_harness.h"
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

static CudaNetBuild *build(const EmuNet *net, TG *t, const char *source) {
  emu_net_make(net, t);
  EmitCudaOptions opt;
  emit_cuda_defaults(&opt);
  opt.train = net->mode == IR_MODE_TRAIN;
  CudaNetBuild *b = cuda_net_new(&t->pt, source, &opt);
  char err[512];
  if (cuda_net_add_graph(b, &t->g, opt.train ? "train" : "eval", err, sizeof err)) {
    fprintf(stderr, "%s: %s\n", net->name, err);
    failures++;
  }
  if (opt.train) cuda_net_add_update(b);
  return b;
}

static int same_node(const IrNode *a, const IrNode *b) {
  if (a->kind != b->kind || strcmp(a->name, b->name) || a->n_in != b->n_in ||
      a->n_out != b->n_out || a->n_param != b->n_param || a->accumulate != b->accumulate ||
      a->fwd != b->fwd || a->aux != b->aux)
    return 0;
  if (memcmp(a->in, b->in, sizeof(int) * (size_t)a->n_in) ||
      memcmp(a->out, b->out, sizeof(int) * (size_t)a->n_out) ||
      memcmp(a->param, b->param, sizeof(int) * (size_t)a->n_param))
    return 0;
  switch (a->kind) {
    case IR_CONV:
    case IR_CONV_BWD_DATA:
    case IR_CONV_BWD_FILTER: return memcmp(&a->a.conv, &b->a.conv, sizeof a->a.conv) == 0;
    case IR_POOL:
    case IR_POOL_BWD: return memcmp(&a->a.pool, &b->a.pool, sizeof a->a.pool) == 0;
    case IR_BN:
    case IR_BN_BWD: return memcmp(&a->a.bn, &b->a.bn, sizeof a->a.bn) == 0;
    case IR_XENT:
    case IR_XENT_BWD: return memcmp(&a->a.xent, &b->a.xent, sizeof a->a.xent) == 0;
    case IR_DROPOUT:
    case IR_DROPPATH:
    case IR_MASK_BWD: return memcmp(&a->a.drop, &b->a.drop, sizeof a->a.drop) == 0;
    default: return 1;
  }
}

static int same_tensor(const IrTensor *a, const IrTensor *b) {
  return strcmp(a->name, b->name) == 0 && a->kind == b->kind && a->c == b->c && a->h == b->h &&
         a->w == b->w && a->producer == b->producer && a->view_of == b->view_of &&
         a->chan_offset == b->chan_offset && a->grad_of == b->grad_of;
}

#define SAME_ARRAY(what, n, a, b)                                              \
  CHECK((n) == 0 || memcmp((a), (b), sizeof *(a) * (size_t)(n)) == 0, "%s: %s differ", \
        name, what)

static void compare_program(const char *name, const CudaProgram *a, const CudaProgram *b) {
  CHECK(strcmp(a->name, b->name) == 0 && a->mode == b->mode, "%s: program header", name);
  CHECK(a->n_nodes == b->n_nodes && a->n_tensors == b->n_tensors &&
            a->n_ir_tensors == b->n_ir_tensors && a->n_steps == b->n_steps &&
            a->n_args == b->n_args && a->n_convs == b->n_convs && a->n_gemms == b->n_gemms &&
            a->n_masks == b->n_masks && a->n_order == b->n_order,
        "%s: program %s counts differ", name, a->name);
  if (failures) return;
  for (int i = 0; i < a->n_nodes; i++)
    CHECK(same_node(&a->nodes[i], &b->nodes[i]), "%s: node %d differs", name, i);
  for (int i = 0; i < a->n_tensors; i++)
    CHECK(same_tensor(&a->tensors[i], &b->tensors[i]), "%s: tensor %d differs", name, i);
  SAME_ARRAY("locs", a->n_tensors, a->locs, b->locs);
  SAME_ARRAY("order", a->n_order, a->order, b->order);
  SAME_ARRAY("steps", a->n_steps, a->steps, b->steps);
  SAME_ARRAY("args", a->n_args, a->args, b->args);
  SAME_ARRAY("convs", a->n_convs, a->convs, b->convs);
  SAME_ARRAY("gemms", a->n_gemms, a->gemms, b->gemms);
  SAME_ARRAY("masks", a->n_masks, a->masks, b->masks);
  CHECK(a->arena_per_image == b->arena_per_image && a->fixed_floats == b->fixed_floats &&
            a->input == b->input && a->labels == b->labels && a->logits == b->logits &&
            a->aux_logits == b->aux_logits && a->loss == b->loss,
        "%s: program %s sizes or well-known tensors differ", name, a->name);
}

static void compare_nets(const char *name, const CudaNet *a, const CudaNet *b) {
  CHECK(a->version == b->version && strcmp(a->source, b->source) == 0 &&
            strcmp(a->options, b->options) == 0,
        "%s: header fields differ", name);
  CHECK(a->n_params == b->n_params && a->n_trainable == b->n_trainable &&
            a->n_buffer == b->n_buffer,
        "%s: parameter counts differ", name);
  for (int i = 0; i < a->n_params && i < b->n_params; i++) {
    const ParamInfo *p = &a->params[i], *q = &b->params[i];
    CHECK(strcmp(p->name, q->name) == 0 && p->ndim == q->ndim &&
              memcmp(p->dims, q->dims, sizeof(int) * (size_t)p->ndim) == 0 &&
              p->numel == q->numel && p->trainable == q->trainable && p->offset == q->offset &&
              p->init == q->init && p->fan_in == q->fan_in && p->aux == q->aux,
          "%s: parameter %d differs", name, i);
  }
  CHECK(a->n_kernels == b->n_kernels, "%s: kernel counts differ", name);
  for (int i = 0; i < a->n_kernels && i < b->n_kernels; i++) {
    const CudaKernel *k = &a->kernels[i], *l = &b->kernels[i];
    CHECK(strcmp(k->name, l->name) == 0 && strcmp(k->pattern, l->pattern) == 0 &&
              k->block == l->block && k->grid_x == l->grid_x && k->grid_nb == l->grid_nb &&
              k->smem_bytes == l->smem_bytes && k->n_args == l->n_args && k->reduces == l->reduces,
          "%s: kernel %d differs", name, i);
  }
  CHECK(a->n_programs == b->n_programs && a->scratch_fixed == b->scratch_fixed &&
            a->scratch_per_image == b->scratch_per_image,
        "%s: program counts or scratch differ", name);
  for (int i = 0; i < a->n_programs && i < b->n_programs && !failures; i++)
    compare_program(name, &a->programs[i], &b->programs[i]);
}

static void test_net(const EmuNet *net, const char *dir) {
  int before = failures;
  TG t1, t2;
  CudaNetBuild *b1 = build(net, &t1, "/abs/path/to/net.nao");
  CudaNetBuild *b2 = build(net, &t2, "/abs/path/to/net.nao");
  StrBuf s1 = {0}, s2 = {0};
  cuda_net_write(b1, &s1);
  cuda_net_write(b2, &s2);
  CHECK(s1.len == s2.len && memcmp(s1.data, s2.data, s1.len) == 0,
        "%s: two emissions differ", net->name);
  CHECK(!strstr(s1.data, "/abs/path"), "%s: the absolute source path leaked", net->name);
  CHECK(strstr(s1.data, "from net.nao.") != NULL, "%s: header names the source", net->name);
  char path[600], so[600], log[600];
  snprintf(path, sizeof path, "%s/%s.cu", dir, net->name);
  snprintf(so, sizeof so, "%s/%s.so", dir, net->name);
  snprintf(log, sizeof log, "%s/%s.log", dir, net->name);
  FILE *f = fopen(path, "w");
  CHECK(f && fwrite(s1.data, 1, s1.len, f) == s1.len && fclose(f) == 0, "write %s", path);
  const char *cc = getenv("CC") && *getenv("CC") ? getenv("CC") : "cc";
  StrBuf cmd = {0};
  sb_printf(&cmd,
            "'%s' -std=c11 -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes "
            "-Wformat=2 -Wvla -fno-common -Werror -I. -fPIC -shared -x c '%s' -o '%s' >'%s' 2>&1",
            cc, path, so, log);
  int rc = system(cmd.data);
  sb_free(&cmd);
  if (rc != 0) {
    size_t len;
    const char *why;
    char *out = nao_read_file(log, &len, &why);
    CHECK(0, "%s: the plan section does not compile cleanly:\n%.2000s", net->name, out ? out : why);
    free(out);
  } else {
    void *h = dlopen(so, RTLD_NOW | RTLD_LOCAL);
    CHECK(h != NULL, "dlopen %s: %s", so, dlerror());
    const CudaNet *(*get)(void) = NULL;
    if (h) *(void **)&get = dlsym(h, "nao_net_get");
    CHECK(get != NULL, "%s: nao_net_get missing", net->name);
    if (get) compare_nets(net->name, cuda_net_get(b1), get());
    if (h) dlclose(h);
  }
  // the device section of the whole file, under the emulator
  EmuModule m;
  char err[4096];
  if (emu_build(&m, s1.data, 1, err, sizeof err)) {
    CHECK(0, "%s: %s", net->name, err);
  } else {
    const CudaNet *n = cuda_net_get(b1);
    for (int i = 0; i < n->n_kernels; i++)
      CHECK(dlsym(m.so, n->kernels[i].name) != NULL, "%s: kernel %s missing from the file",
            net->name, n->kernels[i].name);
    emu_unload(&m);
  }
  unlink(path);
  unlink(so);
  unlink(log);
  sb_free(&s1);
  sb_free(&s2);
  cuda_net_free(b1);
  cuda_net_free(b2);
  tg_free(&t1);
  tg_free(&t2);
  if (failures == before)
    printf("%-12s net.cu deterministic, plan compiles and loads equal, device code complete\n",
           net->name);
}

int main(void) {
  const char *tmp = getenv("TMPDIR");
  char dir[512];
  snprintf(dir, sizeof dir, "%s/nao-netcu-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp(dir)) {
    fprintf(stderr, "mkdtemp %s: %s\n", dir, strerror(errno));
    return 1;
  }
  for (int i = 0; i < emu_net_count(); i++) test_net(emu_net_at(i), dir);
  rmdir(dir);
  if (failures) {
    fprintf(stderr, "%d failures\n", failures);
    return 1;
  }
  return 0;
}
