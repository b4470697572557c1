// tests/unit/cuda_mock.c — the CUDA driver API on the CPU (cuda_mock.h).
//
// Invariants: every device pointer handed out is a live entry of `allocs`;
// an operation on a stream either runs now or, while that stream captures,
// is appended to the capture; a graph exec owns a copy of its operations
// (payloads included). File-scope state: one mock per process.
#include "tests/unit/cuda_mock.h"

#include <dlfcn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "compiler/util.h"
#include "tests/unit/emu_harness.h"

typedef enum { OP_LAUNCH, OP_COPY, OP_SET, OP_HOST } OpKind;

typedef struct {
  OpKind kind;
  void *fn;             // emulator kernel / host function
  unsigned gx, gy, bx;
  NaoArgs args;
  void *dst;
  const void *src;
  size_t bytes;
  unsigned char value;
  void *payload;        // OP_HOST, owned
  size_t payload_size;
} Op;

typedef struct {
  Op *ops;
  int n, cap;
} OpList;

struct CuStreamSt {
  int capturing, invalid;
  OpList rec;
  CuStream into;  // joined another stream's capture (cuStreamWaitEvent on an event
                  //   recorded there): its operations go into that recording
};
struct CuGraphSt {
  OpList ops;
};
struct CuGraphExecSt {
  OpList ops;
};
struct CuModSt {
  unsigned char *image;
  size_t size;
  CuFunction *fns;  // handles given out, freed with the module (as the driver does)
  int n_fns;
};
struct CuFuncSt {
  void *fn;
  int n_args;
  char name[160];
};
struct CuEventSt {
  double t;
  CuStream captured_in;  // recorded on a capturing stream (a fork point), else NULL
};

typedef struct {
  unsigned char *p;
  size_t n;
  int pinned;
} Alloc;

static struct {
  CudaMockConfig cfg;
  EmuModule emu;
  int built;
  Alloc *allocs;
  int n_allocs, cap_allocs;
  CudaMockStats st;
  char violation[1024];
  CuResult sticky;
  char sticky_msg[512];
  int capturing;        // streams capturing now
  int ctx_refs;
} M;

// ---------------------------------------------------------------- bookkeeping

void cuda_mock_violate(const char *fmt, ...) {
  if (M.violation[0]) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(M.violation, sizeof M.violation, fmt, ap);
  va_end(ap);
}

const char *cuda_mock_violation(void) { return M.violation[0] ? M.violation : NULL; }
void cuda_mock_clear_violation(void) { M.violation[0] = '\0'; }
const CudaMockStats *cuda_mock_stats(void) { return &M.st; }
CudaMockStats *cuda_mock_stats_rw(void) { return &M.st; }
void cuda_mock_set_free(size_t free_bytes) { M.cfg.mem_free = free_bytes; }
void cuda_mock_set_net(const CudaNet *net) { M.cfg.net = net; }

static Alloc *find_alloc(const void *p) {
  const unsigned char *q = p;
  for (int i = 0; i < M.n_allocs; i++)
    if (q >= M.allocs[i].p && q < M.allocs[i].p + M.allocs[i].n) return &M.allocs[i];
  return NULL;
}

int cuda_mock_in_memory(const void *p, size_t bytes, const char *what) {
  Alloc *a = find_alloc(p);
  if (a && !a->pinned && (const unsigned char *)p + bytes <= a->p + a->n) return 1;
  cuda_mock_violate("%s: [%p, +%zu) is not inside device memory", what, p, bytes);
  return 0;
}

static int is_pinned(const void *p, size_t bytes) {
  Alloc *a = find_alloc(p);
  return a && a->pinned && (const unsigned char *)p + bytes <= a->p + a->n;
}

static void *track(size_t n, int pinned) {
  size_t sz = (n + 255) & ~(size_t)255;
  unsigned char *p = aligned_alloc(256, sz ? sz : 256);
  if (!p) return NULL;
  memset(p, 0xff, sz ? sz : 256);  // NaN in every float: unwritten memory shows
  if (M.n_allocs == M.cap_allocs) {
    M.cap_allocs = M.cap_allocs ? 2 * M.cap_allocs : 64;
    M.allocs = xrealloc(M.allocs, sizeof *M.allocs * (size_t)M.cap_allocs);
  }
  M.allocs[M.n_allocs++] = (Alloc){p, sz ? sz : 256, pinned};
  if (!pinned) {
    M.st.allocs++;
    M.st.bytes_live += sz;
  }
  return p;
}

static int untrack(void *p, int pinned) {
  for (int i = 0; i < M.n_allocs; i++)
    if (M.allocs[i].p == p && M.allocs[i].pinned == pinned) {
      if (!pinned) {
        M.st.frees++;
        M.st.bytes_live -= M.allocs[i].n;
      }
      free(p);
      M.allocs[i] = M.allocs[--M.n_allocs];
      return 0;
    }
  return -1;
}

// A call that a capture in global mode forbids.
static CuResult unsafe_during_capture(const char *call) {
  if (!M.capturing) return CUAPI_SUCCESS;
  M.st.capture_violations++;
  cuda_mock_violate("%s called while a stream captures a graph", call);
  return CUAPI_ERROR_STREAM_CAPTURE_UNSUPPORTED;
}

// ---------------------------------------------------------------- operations

static void ops_push(OpList *l, const Op *op) {
  if (l->n == l->cap) {
    l->cap = l->cap ? 2 * l->cap : 64;
    l->ops = xrealloc(l->ops, sizeof *l->ops * (size_t)l->cap);
  }
  l->ops[l->n] = *op;
  if (op->kind == OP_HOST) {
    l->ops[l->n].payload = xmalloc(op->payload_size + 1);
    memcpy(l->ops[l->n].payload, op->payload, op->payload_size);
  }
  l->n++;
}

static void ops_free(OpList *l) {
  for (int i = 0; i < l->n; i++)
    if (l->ops[i].kind == OP_HOST) free(l->ops[i].payload);
  free(l->ops);
  memset(l, 0, sizeof *l);
}

static CuResult run_op(const Op *op) {
  if (M.sticky) return M.sticky;
  switch (op->kind) {
    case OP_LAUNCH: {
      char err[512] = "";
      if (M.emu.launch(op->fn, op->gx, op->gy, op->bx, &op->args, sizeof op->args, err, sizeof err)) {
        M.sticky = CUAPI_ERROR_LAUNCH_FAILED;
        snprintf(M.sticky_msg, sizeof M.sticky_msg, "%s", err);
        cuda_mock_violate("kernel failed in the emulator: %s", err);
        return M.sticky;
      }
      M.st.launches++;
      return CUAPI_SUCCESS;
    }
    case OP_COPY: memmove(op->dst, op->src, op->bytes); return CUAPI_SUCCESS;
    case OP_SET: memset(op->dst, op->value, op->bytes); return CUAPI_SUCCESS;
    case OP_HOST:
      ((MockHostFn)op->fn)(op->payload);
      M.st.lib_calls++;
      return CUAPI_SUCCESS;
  }
  return CUAPI_ERROR_UNKNOWN;
}

// The stream whose recording s writes into, or NULL when s runs at once.
static CuStream recording(CuStream s) {
  if (!s) return NULL;
  if (s->capturing) return s;
  if (s->into && !s->into->capturing) s->into = NULL;  // that capture ended
  return s->into;
}

static CuResult submit(CuStream s, const Op *op) {
  s = recording(s) ? recording(s) : s;
  if (s && s->capturing) {
    if (s->invalid) return CUAPI_ERROR_STREAM_CAPTURE_INVALIDATED;
    ops_push(&s->rec, op);
    return CUAPI_SUCCESS;
  }
  if (op->kind == OP_HOST) {  // payload lives on the caller's stack: run it now
    if (M.sticky) return M.sticky;
    ((MockHostFn)op->fn)(op->payload);
    M.st.lib_calls++;
    return CUAPI_SUCCESS;
  }
  return run_op(op);
}

CuResult cuda_mock_enqueue(CuStream s, MockHostFn fn, const void *payload, size_t size) {
  Op op = {.kind = OP_HOST, .fn = (void *)fn, .payload = (void *)payload, .payload_size = size};
  return submit(s, &op);
}

int cuda_mock_capturing(CuStream s) { return recording(s) != NULL; }

// ---------------------------------------------------------------- the API

static CuResult m_init(unsigned flags) {
  (void)flags;
  return M.cfg.init_result;
}
static CuResult m_driver_version(int *v) {
  *v = 13000;
  return CUAPI_SUCCESS;
}
static CuResult m_device_count(int *c) {
  *c = M.cfg.device_count;
  return CUAPI_SUCCESS;
}
static CuResult m_device_get(CuDevice *d, int ordinal) {
  if (ordinal < 0 || ordinal >= M.cfg.device_count) return CUAPI_ERROR_INVALID_VALUE;
  *d = ordinal;
  return CUAPI_SUCCESS;
}
static CuResult m_device_name(char *name, int len, CuDevice d) {
  (void)d;
  snprintf(name, (size_t)len, "mock device (CPU)");
  return CUAPI_SUCCESS;
}
static CuResult m_device_attr(int *v, int attr, CuDevice d) {
  (void)d;
  switch (attr) {
    case CUAPI_DEV_COMPUTE_CAPABILITY_MAJOR: *v = M.cfg.cc_major; break;
    case CUAPI_DEV_COMPUTE_CAPABILITY_MINOR: *v = M.cfg.cc_minor; break;
    case CUAPI_DEV_MULTIPROCESSOR_COUNT: *v = 4; break;
    default: *v = 0; break;
  }
  return CUAPI_SUCCESS;
}
static CuResult m_total_mem(size_t *b, CuDevice d) {
  (void)d;
  *b = M.cfg.mem_total;
  return CUAPI_SUCCESS;
}
static CuResult m_ctx_retain(CuContext *c, CuDevice d) {
  (void)d;
  M.ctx_refs++;
  *c = (CuContext)(uintptr_t)0x1000;
  return CUAPI_SUCCESS;
}
static CuResult m_ctx_release(CuDevice d) {
  (void)d;
  M.ctx_refs--;
  return CUAPI_SUCCESS;
}
static CuResult m_ctx_set(CuContext c) { return c ? CUAPI_SUCCESS : CUAPI_ERROR_INVALID_CONTEXT; }
static CuResult m_ctx_sync(void) {
  CuResult r = unsafe_during_capture("cuCtxSynchronize");
  M.st.syncs++;
  return r ? r : M.sticky;
}
static CuResult m_mem_info(size_t *f, size_t *t) {
  size_t used = M.st.bytes_live;
  *f = M.cfg.mem_free > used ? M.cfg.mem_free - used : 0;
  *t = M.cfg.mem_total;
  return CUAPI_SUCCESS;
}
static CuResult m_alloc(CuDevptr *p, size_t n) {
  CuResult r = unsafe_during_capture("cuMemAlloc");
  if (r) return r;
  size_t used = M.st.bytes_live;
  if (n > M.cfg.mem_free || used + n > M.cfg.mem_free) return CUAPI_ERROR_OUT_OF_MEMORY;
  void *q = track(n, 0);
  if (!q) return CUAPI_ERROR_OUT_OF_MEMORY;
  *p = (CuDevptr)(uintptr_t)q;
  return CUAPI_SUCCESS;
}
static CuResult m_free(CuDevptr p) {
  CuResult r = unsafe_during_capture("cuMemFree");
  if (r) return r;
  return untrack((void *)(uintptr_t)p, 0) ? CUAPI_ERROR_INVALID_VALUE : CUAPI_SUCCESS;
}
static CuResult m_host_alloc(void **p, size_t n, unsigned flags) {
  (void)flags;
  CuResult r = unsafe_during_capture("cuMemHostAlloc");
  if (r) return r;
  *p = track(n, 1);
  return *p ? CUAPI_SUCCESS : CUAPI_ERROR_OUT_OF_MEMORY;
}
static CuResult m_free_host(void *p) { return untrack(p, 1) ? CUAPI_ERROR_INVALID_VALUE : CUAPI_SUCCESS; }

static int dev_range(CuDevptr p, size_t n, const char *what) {
  return cuda_mock_in_memory((const void *)(uintptr_t)p, n, what);
}

static CuResult host_copy_async(CuStream st, void *dst, const void *src, size_t n, const void *host,
                                const char *call) {
  if (st && st->capturing && !is_pinned(host, n)) {
    st->invalid = 1;
    M.st.capture_violations++;
    cuda_mock_violate("%s from pageable host memory while capturing", call);
    return CUAPI_ERROR_STREAM_CAPTURE_UNSUPPORTED;
  }
  Op op = {.kind = OP_COPY, .dst = dst, .src = src, .bytes = n};
  return submit(st, &op);
}
static CuResult m_htod_async(CuDevptr d, const void *s, size_t n, CuStream st) {
  if (!dev_range(d, n, "cuMemcpyHtoDAsync destination")) return CUAPI_ERROR_INVALID_VALUE;
  return host_copy_async(st, (void *)(uintptr_t)d, s, n, s, "cuMemcpyHtoDAsync");
}
static CuResult m_dtoh_async(void *d, CuDevptr s, size_t n, CuStream st) {
  if (!dev_range(s, n, "cuMemcpyDtoHAsync source")) return CUAPI_ERROR_INVALID_VALUE;
  return host_copy_async(st, d, (const void *)(uintptr_t)s, n, d, "cuMemcpyDtoHAsync");
}
static CuResult m_dtod_async(CuDevptr d, CuDevptr s, size_t n, CuStream st) {
  if (!dev_range(d, n, "cuMemcpyDtoDAsync destination") || !dev_range(s, n, "cuMemcpyDtoDAsync source"))
    return CUAPI_ERROR_INVALID_VALUE;
  Op op = {.kind = OP_COPY, .dst = (void *)(uintptr_t)d, .src = (const void *)(uintptr_t)s, .bytes = n};
  return submit(st, &op);
}
static CuResult m_memset_async(CuDevptr d, unsigned char v, size_t n, CuStream st) {
  if (!dev_range(d, n, "cuMemsetD8Async destination")) return CUAPI_ERROR_INVALID_VALUE;
  Op op = {.kind = OP_SET, .dst = (void *)(uintptr_t)d, .value = v, .bytes = n};
  return submit(st, &op);
}

// The size of an ELF64 image from its headers (a cubin is ELF64).
static size_t elf_size(const unsigned char *e) {
  uint64_t shoff, phoff;
  uint16_t shentsize, shnum, phentsize, phnum;
  memcpy(&phoff, e + 32, 8);
  memcpy(&shoff, e + 40, 8);
  memcpy(&phentsize, e + 54, 2);
  memcpy(&phnum, e + 56, 2);
  memcpy(&shentsize, e + 58, 2);
  memcpy(&shnum, e + 60, 2);
  size_t end = (size_t)(shoff + (uint64_t)shentsize * shnum);
  size_t pend = (size_t)(phoff + (uint64_t)phentsize * phnum);
  if (pend > end) end = pend;
  for (uint16_t i = 0; i < shnum; i++) {  // sections may follow the header table
    const unsigned char *sh = e + shoff + (size_t)i * shentsize;
    uint32_t type;
    uint64_t off, size;
    memcpy(&type, sh + 4, 4);
    memcpy(&off, sh + 24, 8);
    memcpy(&size, sh + 32, 8);
    if (type != 8 /* SHT_NOBITS */ && off + size > end) end = (size_t)(off + size);
  }
  return end;
}

static CuResult m_module_load(CuModule *m, const void *image) {
  const unsigned char *e = image;
  if (!e || memcmp(e, "\177ELF", 4) != 0 || e[4] != 2) {
    cuda_mock_violate("cuModuleLoadData: the image is not an ELF64 cubin");
    return CUAPI_ERROR_INVALID_IMAGE;
  }
  size_t n = elf_size(e);
  CuModule mod = xcalloc(1, sizeof *mod);
  mod->image = xmalloc(n + 1);
  memcpy(mod->image, e, n);
  mod->size = n;
  M.st.modules++;
  *m = mod;
  return CUAPI_SUCCESS;
}
static CuResult m_module_unload(CuModule m) {
  if (!m) return CUAPI_ERROR_INVALID_HANDLE;
  for (int i = 0; i < m->n_fns; i++) free(m->fns[i]);
  free(m->fns);
  free(m->image);
  free(m);
  return CUAPI_SUCCESS;
}

static int image_has(const CuModule m, const char *name) {
  size_t len = strlen(name) + 1;  // with its NUL: a whole symbol name
  for (size_t i = 0; i + len <= m->size; i++)
    if (m->image[i] == (unsigned char)name[0] && memcmp(m->image + i, name, len) == 0) return 1;
  return 0;
}

static CuResult m_get_function(CuFunction *f, CuModule m, const char *name) {
  if (!m || !image_has(m, name)) return CUAPI_ERROR_NOT_FOUND;
  void *fn = M.built ? dlsym(M.emu.so, name) : NULL;
  if (!fn) {
    cuda_mock_violate("kernel %s is in the cubin but not in the emulator's build", name);
    return CUAPI_ERROR_NOT_FOUND;
  }
  CuFunction h = xcalloc(1, sizeof *h);
  h->fn = fn;
  h->n_args = NAO_KARGS_MAX;
  for (int k = 0; M.cfg.net && k < M.cfg.net->n_kernels; k++)
    if (strcmp(M.cfg.net->kernels[k].name, name) == 0) h->n_args = M.cfg.net->kernels[k].n_args;
  snprintf(h->name, sizeof h->name, "%s", name);
  m->fns = xrealloc(m->fns, sizeof *m->fns * (size_t)(m->n_fns + 1));
  m->fns[m->n_fns++] = h;
  *f = h;
  return CUAPI_SUCCESS;
}
static CuResult m_func_attr(int *v, int attr, CuFunction f) {
  if (!f) return CUAPI_ERROR_INVALID_HANDLE;
  *v = attr == CUAPI_FUNC_NUM_REGS ? 32 : attr == CUAPI_FUNC_MAX_THREADS_PER_BLOCK ? 1024 : 0;
  return CUAPI_SUCCESS;
}

static CuResult m_launch(CuFunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                         unsigned by, unsigned bz, unsigned smem, CuStream s, void **params,
                         void **extra) {
  if (!f || !params || extra || gz != 1 || by != 1 || bz != 1 || smem != 0 || !gx || !gy || !bx ||
      bx > 1024) {
    cuda_mock_violate("cuLaunchKernel(%s): unexpected launch configuration", f ? f->name : "?");
    return CUAPI_ERROR_INVALID_VALUE;
  }
  Op op = {.kind = OP_LAUNCH, .fn = f->fn, .gx = gx, .gy = gy, .bx = bx};
  memcpy(&op.args, params[0], sizeof op.args);  // the driver copies the parameters at launch
  for (int i = 0; i < f->n_args && i < NAO_KARGS_MAX; i++) {
    char what[200];
    snprintf(what, sizeof what, "kernel %s, argument %d", f->name, i);
    if (!cuda_mock_in_memory(op.args.p[i], 4, what)) return CUAPI_ERROR_INVALID_VALUE;
  }
  return submit(s, &op);
}

static CuResult m_stream_create(CuStream *s, unsigned flags) {
  (void)flags;
  *s = xcalloc(1, sizeof **s);
  return CUAPI_SUCCESS;
}
static CuResult m_stream_destroy(CuStream s) {
  if (!s) return CUAPI_ERROR_INVALID_HANDLE;
  ops_free(&s->rec);
  free(s);
  return CUAPI_SUCCESS;
}
static CuResult m_stream_sync(CuStream s) {
  if (recording(s)) {
    recording(s)->invalid = 1;
    M.st.capture_violations++;
    cuda_mock_violate("cuStreamSynchronize on a capturing stream");
    return CUAPI_ERROR_STREAM_CAPTURE_UNSUPPORTED;
  }
  M.st.syncs++;
  return M.sticky;
}
static CuResult m_stream_query(CuStream s) {
  if (recording(s)) {
    M.st.capture_violations++;
    cuda_mock_violate("cuStreamQuery on a capturing stream");
    return CUAPI_ERROR_STREAM_CAPTURE_UNSUPPORTED;
  }
  return M.sticky;  // streams run at once: always done
}
// Joining a capture is what a wait for an event recorded in it does; outside
// captures streams run at once, so there is nothing to wait for.
static CuResult m_stream_wait_event(CuStream s, CuEvent e, unsigned flags) {
  if (!s || !e || flags) return CUAPI_ERROR_INVALID_VALUE;
  if (e->captured_in && e->captured_in->capturing && s != e->captured_in) s->into = e->captured_in;
  return CUAPI_SUCCESS;
}
static CuResult m_begin_capture(CuStream s, int mode) {
  if (!s || s->capturing || mode != CUAPI_CAPTURE_MODE_GLOBAL) return CUAPI_ERROR_INVALID_VALUE;
  s->capturing = 1;
  s->invalid = 0;
  M.capturing++;
  return CUAPI_SUCCESS;
}
static CuResult m_end_capture(CuStream s, CuGraph *g) {
  if (!s || !s->capturing) return CUAPI_ERROR_STREAM_CAPTURE_UNMATCHED;
  s->capturing = 0;
  M.capturing--;
  if (s->invalid) {
    ops_free(&s->rec);
    *g = NULL;
    return CUAPI_ERROR_STREAM_CAPTURE_INVALIDATED;
  }
  CuGraph graph = xcalloc(1, sizeof *graph);
  graph->ops = s->rec;
  memset(&s->rec, 0, sizeof s->rec);
  *g = graph;
  M.st.captures++;
  return CUAPI_SUCCESS;
}
static CuResult m_instantiate(CuGraphExec *e, CuGraph g, unsigned long long flags) {
  if (!g || flags) return CUAPI_ERROR_INVALID_VALUE;
  CuGraphExec x = xcalloc(1, sizeof *x);
  for (int i = 0; i < g->ops.n; i++) ops_push(&x->ops, &g->ops.ops[i]);
  *e = x;
  return CUAPI_SUCCESS;
}
static CuResult m_graph_launch(CuGraphExec e, CuStream s) {
  if (!e) return CUAPI_ERROR_INVALID_HANDLE;
  if (s && s->capturing) return CUAPI_ERROR_NOT_SUPPORTED;
  M.st.graph_launches++;
  for (int i = 0; i < e->ops.n; i++) {
    CuResult r = run_op(&e->ops.ops[i]);
    if (r) return r;
  }
  return CUAPI_SUCCESS;
}
static CuResult m_exec_destroy(CuGraphExec e) {
  if (!e) return CUAPI_ERROR_INVALID_HANDLE;
  ops_free(&e->ops);
  free(e);
  return CUAPI_SUCCESS;
}
static CuResult m_graph_destroy(CuGraph g) {
  if (!g) return CUAPI_ERROR_INVALID_HANDLE;
  ops_free(&g->ops);
  free(g);
  return CUAPI_SUCCESS;
}

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return 1e3 * (double)t.tv_sec + 1e-6 * (double)t.tv_nsec;
}
static CuResult m_event_create(CuEvent *e, unsigned flags) {
  (void)flags;
  *e = xcalloc(1, sizeof **e);
  return CUAPI_SUCCESS;
}
static CuResult m_event_record(CuEvent e, CuStream s) {
  if (!e) return CUAPI_ERROR_INVALID_HANDLE;
  e->captured_in = recording(s);  // a fork or join point of a capture
  if (!e->captured_in) e->t = now_ms();
  return CUAPI_SUCCESS;
}
static CuResult m_event_sync(CuEvent e) { return e ? M.sticky : CUAPI_ERROR_INVALID_HANDLE; }
static CuResult m_event_elapsed(float *ms, CuEvent a, CuEvent b) {
  if (!a || !b) return CUAPI_ERROR_INVALID_HANDLE;
  *ms = (float)(b->t - a->t);
  return CUAPI_SUCCESS;
}
static CuResult m_event_destroy(CuEvent e) {
  free(e);
  return CUAPI_SUCCESS;
}
static CuResult m_error_name(CuResult r, const char **s) {
  *s = cuda_api_result_name(r);
  return CUAPI_SUCCESS;
}
static CuResult m_error_string(CuResult r, const char **s) {
  *s = r == CUAPI_ERROR_LAUNCH_FAILED && M.sticky_msg[0] ? M.sticky_msg : "mock driver error";
  return CUAPI_SUCCESS;
}

static const CudaApi mock_api = {
    .name = "mock",
    .init = m_init,
    .driver_get_version = m_driver_version,
    .device_get_count = m_device_count,
    .device_get = m_device_get,
    .device_get_name = m_device_name,
    .device_get_attribute = m_device_attr,
    .device_total_mem = m_total_mem,
    .primary_ctx_retain = m_ctx_retain,
    .primary_ctx_release = m_ctx_release,
    .ctx_set_current = m_ctx_set,
    .ctx_synchronize = m_ctx_sync,
    .mem_get_info = m_mem_info,
    .mem_alloc = m_alloc,
    .mem_free = m_free,
    .mem_host_alloc = m_host_alloc,
    .mem_free_host = m_free_host,
    .memcpy_htod_async = m_htod_async,
    .memcpy_dtoh_async = m_dtoh_async,
    .memcpy_dtod_async = m_dtod_async,
    .memset_d8_async = m_memset_async,
    .module_load_data = m_module_load,
    .module_unload = m_module_unload,
    .module_get_function = m_get_function,
    .func_get_attribute = m_func_attr,
    .launch_kernel = m_launch,
    .stream_create = m_stream_create,
    .stream_destroy = m_stream_destroy,
    .stream_synchronize = m_stream_sync,
    .stream_query = m_stream_query,
    .stream_wait_event = m_stream_wait_event,
    .stream_begin_capture = m_begin_capture,
    .stream_end_capture = m_end_capture,
    .graph_instantiate = m_instantiate,
    .graph_launch = m_graph_launch,
    .graph_exec_destroy = m_exec_destroy,
    .graph_destroy = m_graph_destroy,
    .event_create = m_event_create,
    .event_record = m_event_record,
    .event_synchronize = m_event_sync,
    .event_elapsed_time = m_event_elapsed,
    .event_destroy = m_event_destroy,
    .get_error_name = m_error_name,
    .get_error_string = m_error_string,
};

const CudaApi *cuda_mock_api(void) { return &mock_api; }

int cuda_mock_install(const CudaMockConfig *cfg, char *err, size_t errlen) {
  cuda_mock_uninstall();
  M.cfg = *cfg;
  if (!M.cfg.mem_total) M.cfg.mem_total = (size_t)16 << 30;
  if (!M.cfg.mem_free) M.cfg.mem_free = (size_t)12 << 30;
  if (!M.cfg.device_count) M.cfg.device_count = 1;
  if (!M.cfg.cc_major) M.cfg.cc_major = 9, M.cfg.cc_minor = 0;
  if (cfg->source) {
    if (emu_build(&M.emu, cfg->source, cfg->whole_file, err, errlen)) return -1;
    M.built = 1;
  }
  return 0;
}

void cuda_mock_uninstall(void) {
  if (M.built) emu_unload(&M.emu);
  while (M.n_allocs) {
    free(M.allocs[M.n_allocs - 1].p);
    M.n_allocs--;
  }
  free(M.allocs);
  memset(&M, 0, sizeof M);
}
