// runtime/backend_cuda_rt.c — the cuda runtime's setup: driver, device and
// context, the memory check, kernels (NVRTC through the cache, one module per
// unit), device memory; host <-> device copies of the model state.
//
// Invariants: cuda_rt_create either returns a runtime whose every buffer is
// allocated (gradients, momentum and scratch zeroed) and whose every kernel
// is resolved, or frees everything it made and returns NULL with a message.
// Every driver call is checked; a failure names the call and what it was for.
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/util.h"
#include "runtime/backend_cuda_int.h"

int rt_fail(CudaRt *rt, CuResult r, const char *call, const char *what) {
  return cuda_api_fail(rt->cu, r, call, what, rt->err, sizeof rt->err);
}

#define CU(call, name, what)                                 \
  do {                                                       \
    CuResult r_ = (call);                                    \
    if (r_ != CUAPI_SUCCESS) return rt_fail(rt, r_, name, what); \
  } while (0)

static void gib(char *out, size_t n, double bytes) {
  if (bytes >= 1024.0 * 1024 * 1024) snprintf(out, n, "%.2f GiB", bytes / (1024.0 * 1024 * 1024));
  else snprintf(out, n, "%.1f MiB", bytes / (1024.0 * 1024));
}

CuDevptr rt_alloc(CudaRt *rt, size_t bytes, const char *what) {
  CuDevptr p = 0;
  size_t n = bytes ? (bytes + 255) & ~(size_t)255 : 256;
  CuResult r = rt->cu->mem_alloc(&p, n);
  if (r != CUAPI_SUCCESS) {
    char sz[32], why[256];
    gib(sz, sizeof sz, (double)n);
    snprintf(why, sizeof why, "allocating %s of device memory for %s", sz, what);
    rt_fail(rt, r, "cuMemAlloc", why);
    return 0;
  }
  if (rt->n_allocs == rt->cap_allocs) {
    rt->cap_allocs = rt->cap_allocs ? 2 * rt->cap_allocs : 32;
    rt->allocs = xrealloc(rt->allocs, sizeof *rt->allocs * (size_t)rt->cap_allocs);
    rt->alloc_sizes = xrealloc(rt->alloc_sizes, sizeof(size_t) * (size_t)rt->cap_allocs);
  }
  rt->alloc_sizes[rt->n_allocs] = n;
  rt->allocs[rt->n_allocs++] = p;
  rt->info.bytes_allocated += n;
  if (rt->info.bytes_allocated > rt->info.bytes_peak) rt->info.bytes_peak = rt->info.bytes_allocated;
  return p;
}

void rt_free(CudaRt *rt, CuDevptr p) {
  for (int i = 0; i < rt->n_allocs; i++)
    if (rt->allocs[i] == p) {
      rt->cu->mem_free(p);
      rt->info.bytes_allocated -= rt->alloc_sizes[i];
      rt->n_allocs--;
      rt->allocs[i] = rt->allocs[rt->n_allocs];
      rt->alloc_sizes[i] = rt->alloc_sizes[rt->n_allocs];
      return;
    }
}

CuDevptr rt_tensor(const CudaRt *rt, const RtProg *pp, int t, int n) {
  const PlanLoc *l = &pp->p->locs[t];
  if (l->region == LOC_FIXED) return pp->fixed + 4 * (CuDevptr)l->unscaled;
  if (l->region == LOC_NONE) return 0;
  return rt->arena + 4 * ((CuDevptr)l->scaled * (CuDevptr)n + (CuDevptr)l->unscaled);
}

void cuda_rt_options_default(CudaRtOptions *o) {
  memset(o, 0, sizeof *o);
  o->tf32 = -1;
  o->graphs = 1;
  o->conv_search = CUDA_CONV_AUTO;
}

const CudaRtInfo *cuda_rt_info(const CudaRt *rt) { return &rt->info; }
const CudaMemCheck *cuda_rt_memcheck(const CudaRt *rt) { return &rt->mem; }
const char *cuda_rt_error(const CudaRt *rt) { return rt->err; }

// ---------------------------------------------------------------- device

static int open_driver(CudaRt *rt) {
  if (rt->opt.cu) {
    rt->cu = rt->opt.cu;
  } else {
    if (cuda_api_load(&rt->cu_own, &rt->cu_lib, rt->err, sizeof rt->err)) return -1;
    rt->cu = &rt->cu_own;
  }
  CuResult r = rt->cu->init(0);
  if (r != CUAPI_SUCCESS) {
    char what[1200];
    snprintf(what, sizeof what, "initializing the CUDA driver (%s)", rt->cu->name);
    rt_fail(rt, r, "cuInit", what);
    size_t l = strlen(rt->err);
    if (r == CUAPI_ERROR_STUB_LIBRARY)
      snprintf(rt->err + l, sizeof rt->err - l,
               "; that file is the CUDA toolkit's stub, not a driver: no NVIDIA driver is "
               "installed on this machine (use --backend cpu)");
    else if (r == CUAPI_ERROR_NO_DEVICE)
      snprintf(rt->err + l, sizeof rt->err - l, "; this machine has no CUDA device (use --backend cpu)");
    return -1;
  }
  int count = 0;
  CU(rt->cu->device_get_count(&count), "cuDeviceGetCount", "counting the CUDA devices");
  if (rt->opt.device < 0 || rt->opt.device >= count) {
    snprintf(rt->err, sizeof rt->err, "CUDA device %d does not exist: the machine has %d",
             rt->opt.device, count);
    return -1;
  }
  CU(rt->cu->device_get(&rt->dev, rt->opt.device), "cuDeviceGet", "opening the CUDA device");
  CudaRtInfo *in = &rt->info;
  CU(rt->cu->device_get_name(in->device_name, sizeof in->device_name, rt->dev), "cuDeviceGetName",
     "reading the device's name");
  CU(rt->cu->device_get_attribute(&in->cc_major, CUAPI_DEV_COMPUTE_CAPABILITY_MAJOR, rt->dev),
     "cuDeviceGetAttribute", "reading the compute capability");
  CU(rt->cu->device_get_attribute(&in->cc_minor, CUAPI_DEV_COMPUTE_CAPABILITY_MINOR, rt->dev),
     "cuDeviceGetAttribute", "reading the compute capability");
  CU(rt->cu->device_get_attribute(&in->sms, CUAPI_DEV_MULTIPROCESSOR_COUNT, rt->dev),
     "cuDeviceGetAttribute", "reading the multiprocessor count");
  CU(rt->cu->device_total_mem(&in->total_mem, rt->dev), "cuDeviceTotalMem", "reading the memory size");
  CU(rt->cu->driver_get_version(&in->driver_version), "cuDriverGetVersion", "reading the driver version");
  CU(rt->cu->primary_ctx_retain(&rt->ctx, rt->dev), "cuDevicePrimaryCtxRetain",
     "creating the device's context");
  rt->ctx_retained = 1;
  CU(rt->cu->ctx_set_current(rt->ctx), "cuCtxSetCurrent", "making the context current");
  CU(rt->cu->stream_create(&rt->stream, CUAPI_STREAM_NON_BLOCKING), "cuStreamCreate",
     "creating the stream");
  CU(rt->cu->event_create(&rt->ev0, CUAPI_EVENT_DEFAULT), "cuEventCreate", "creating a timing event");
  CU(rt->cu->event_create(&rt->ev1, CUAPI_EVENT_DEFAULT), "cuEventCreate", "creating a timing event");
  return 0;
}

// ---------------------------------------------------------------- memory check

static void prog_sizes(const CudaRt *rt, size_t *train_img, size_t *eval_img, size_t *fixed) {
  *train_img = *eval_img = *fixed = 0;
  for (int i = 0; i < rt->n_progs; i++) {
    const CudaProgram *p = rt->progs[i].p;
    *fixed += (p->fixed_floats + 64) * sizeof(float);
    if (i == rt->eval_prog) *eval_img = p->arena_per_image * sizeof(float);
    else if (p->arena_per_image * sizeof(float) > *train_img)
      *train_img = p->arena_per_image * sizeof(float);
  }
}

static size_t need_for(const CudaMemCheck *m, size_t eval_img, long long batch, int eval_batch,
                       size_t scratch_img) {
  size_t train = (size_t)batch * m->per_image_bytes;
  size_t eval = (size_t)eval_batch * (eval_img + scratch_img);
  return m->fixed_bytes + (eval > train ? eval : train);
}

static int check_memory(CudaRt *rt) {
  size_t free_b = 0, total_b = 0;
  CU(rt->cu->mem_get_info(&free_b, &total_b), "cuMemGetInfo", "reading the device's free memory");
  if (rt->opt.mem_free_limit && rt->opt.mem_free_limit < free_b) free_b = rt->opt.mem_free_limit;
  rt->info.free_mem_at_start = free_b;
  const CudaNet *net = rt->net;
  size_t train_img, eval_img, fixed;
  prog_sizes(rt, &train_img, &eval_img, &fixed);
  CudaMemCheck *m = &rt->mem;
  m->per_image_bytes = train_img + net->scratch_per_image;
  m->fixed_bytes = fixed + sizeof(float) * (3 * net->n_trainable + net->n_buffer) +
                   net->scratch_fixed + 4096 /* masks, hyper */ + rt->blas_ws_bytes +
                   lib_ws_reserve(rt, free_b) + 256 * 64 /* alignment of the allocations */;
  m->need_bytes = need_for(m, eval_img, rt->max_batch, rt->max_eval_batch, net->scratch_per_image);
  size_t train_part = (size_t)rt->max_batch * m->per_image_bytes;
  m->eval_bytes = m->need_bytes - m->fixed_bytes > train_part ? m->need_bytes - m->fixed_bytes - train_part : 0;
  // keep a margin for the libraries' own allocations and fragmentation
  size_t margin = total_b / 50 > ((size_t)256 << 20) ? total_b / 50 : ((size_t)256 << 20);
  m->free_bytes = free_b;
  size_t usable = free_b > margin ? free_b - margin : 0;
  long long lo = 0, hi = 1;
  while (hi < (1LL << 30) && need_for(m, eval_img, hi, rt->max_eval_batch, net->scratch_per_image) <= usable)
    lo = hi, hi *= 2;
  while (hi - lo > 1) {
    long long mid = lo + (hi - lo) / 2;
    if (need_for(m, eval_img, mid, rt->max_eval_batch, net->scratch_per_image) <= usable) lo = mid;
    else hi = mid;
  }
  m->largest_batch = lo;
  if (m->need_bytes <= usable) return 0;
  char need[32], fr[32], img[32], fx[32], mg[32];
  gib(need, sizeof need, (double)m->need_bytes);
  gib(fr, sizeof fr, (double)free_b);
  gib(img, sizeof img, (double)m->per_image_bytes);
  gib(fx, sizeof fx, (double)m->fixed_bytes);
  gib(mg, sizeof mg, (double)margin);
  int n = snprintf(rt->err, sizeof rt->err,
                   "the network does not fit on %s: batch %d needs %s of device memory (%s per "
                   "image of the batch, %s for parameters, optimizer state and workspaces), the "
                   "device has %s free (%s kept as a margin). ",
                   rt->info.device_name, rt->max_batch, need, img, fx, fr, mg);
  if (lo > 0)
    snprintf(rt->err + n, sizeof rt->err - (size_t)n, "The largest training batch that fits is %lld.", lo);
  else
    snprintf(rt->err + n, sizeof rt->err - (size_t)n,
             "Not even a batch of 1 fits (evaluation batch %d).", rt->max_eval_batch);
  return -1;
}

// ---------------------------------------------------------------- kernels

static int load_kernels(CudaRt *rt, const char *source) {
  const CudaNet *net = rt->net;
  if (net->n_kernels == 0) return 0;
  const char *src = source ? source : net->device_source;
  if (!src) {
    snprintf(rt->err, sizeof rt->err, "the net has no device code (neither net.cu's text nor "
                                      "device_source was given)");
    return -1;
  }
  char arch[16];
  snprintf(arch, sizeof arch, "sm_%d%d", rt->info.cc_major, rt->info.cc_minor);
  CudaCompileOptions co = {.arch = arch, .threads = rt->opt.compile_threads, .cache = &rt->cache,
                           .verbose = rt->opt.verbose};
  CudaCompiled cc;
  if (cuda_compile_net(net, src, &co, &cc, rt->err, sizeof rt->err)) {
    cuda_compiled_free(&cc);
    return -1;
  }
  CudaRtInfo *in = &rt->info;
  in->compile_seconds = cc.seconds;
  in->units_compiled = cc.n_compiled;
  in->units_cached = cc.n_cached;
  in->units_damaged = cc.n_damaged;
  in->compile_whole = cc.whole;
  snprintf(in->nvrtc, sizeof in->nvrtc, "NVRTC %d.%d (%s)", cc.nvrtc_major, cc.nvrtc_minor,
           cc.nvrtc_path);
  rt->modules = xcalloc((size_t)cc.n_units, sizeof *rt->modules);
  rt->fns = xcalloc((size_t)net->n_kernels, sizeof *rt->fns);
  int rc = 0;
  for (int u = 0; u < cc.n_units && !rc; u++) {
    char what[300];
    snprintf(what, sizeof what, "loading the cubin of %s (%zu bytes, %s)", cc.units[u].name,
             cc.units[u].size, arch);
    CuResult r = rt->cu->module_load_data(&rt->modules[u], cc.units[u].image);
    if (r != CUAPI_SUCCESS) rc = rt_fail(rt, r, "cuModuleLoadData", what);
    else rt->n_modules = u + 1;
  }
  for (int k = 0; k < net->n_kernels && !rc; k++) {
    char what[300];
    snprintf(what, sizeof what, "finding kernel %s in its module", net->kernels[k].name);
    CuResult r = rt->cu->module_get_function(&rt->fns[k], rt->modules[cc.unit_of_kernel[k]],
                                             net->kernels[k].name);
    if (r != CUAPI_SUCCESS) rc = rt_fail(rt, r, "cuModuleGetFunction", what);
  }
  for (int k = 0; k < net->n_kernels && !rc; k++) {  // local memory is a performance bug
    int local = 0;
    CuResult r = rt->cu->func_get_attribute(&local, CUAPI_FUNC_LOCAL_SIZE_BYTES, rt->fns[k]);
    if (r != CUAPI_SUCCESS) rc = rt_fail(rt, r, "cuFuncGetAttribute", "reading a kernel's local memory");
    else if (local > 0 && rt->opt.verbose)
      fprintf(stderr, "naoc: warning: kernel %s uses %d bytes of local memory per thread\n",
              net->kernels[k].name, local);
  }
  cuda_compiled_free(&cc);
  return rc;
}

// ---------------------------------------------------------------- allocation

static int zero(CudaRt *rt, CuDevptr p, size_t bytes, const char *what) {
  if (!bytes) return 0;
  CU(rt->cu->memset_d8_async(p, 0, bytes, rt->stream), "cuMemsetD8Async", what);
  return 0;
}

static int allocate(CudaRt *rt) {
  const CudaNet *net = rt->net;
  size_t ft = sizeof(float) * (net->n_trainable ? net->n_trainable : 1);
  size_t train_img, eval_img, fixed;
  prog_sizes(rt, &train_img, &eval_img, &fixed);
  size_t arena = train_img * (size_t)rt->max_batch;
  if (eval_img * (size_t)rt->max_eval_batch > arena) arena = eval_img * (size_t)rt->max_eval_batch;
  int nb = rt->max_batch > rt->max_eval_batch ? rt->max_batch : rt->max_eval_batch;
  size_t scratch = net->scratch_fixed + net->scratch_per_image * (size_t)nb;
  int max_masks = 1;
  for (int i = 0; i < rt->n_progs; i++)
    if (rt->progs[i].p->n_masks > max_masks) max_masks = rt->progs[i].p->n_masks;
  if (!(rt->params = rt_alloc(rt, ft, "the parameters")) ||
      !(rt->grads = rt_alloc(rt, ft, "the gradients")) ||
      !(rt->momentum = rt_alloc(rt, ft, "the momentum buffers")) ||
      !(rt->buffers = rt_alloc(rt, sizeof(float) * (net->n_buffer + 1), "the BN statistics")) ||
      !(rt->arena = rt_alloc(rt, arena, "the activation arena")) ||
      !(rt->scratch = rt_alloc(rt, scratch, "the reductions' scratch")) ||
      !(rt->masks = rt_alloc(rt, sizeof(NaoMask) * (size_t)max_masks, "the mask table")) ||
      !(rt->hyper = rt_alloc(rt, sizeof(NaoHyper), "the optimizer's hyperparameters")))
    return -1;
  for (int i = 0; i < rt->n_progs; i++) {
    char what[96];
    snprintf(what, sizeof what, "the fixed region of program %s", rt->progs[i].p->name);
    if (!(rt->progs[i].fixed = rt_alloc(rt, (rt->progs[i].p->fixed_floats + 64) * sizeof(float), what)))
      return -1;
  }
  if (rt->blas_ws_bytes) {
    if (!(rt->blas_ws = rt_alloc(rt, rt->blas_ws_bytes, "cuBLAS's workspace"))) return -1;
    BlasStatus bs = rt->blas->set_workspace(rt->blas_h, (void *)(uintptr_t)rt->blas_ws, rt->blas_ws_bytes);
    if (bs != BLASAPI_STATUS_SUCCESS)
      return cublas_api_fail(rt->blas, bs, "cublasSetWorkspace", "giving cuBLAS its workspace", rt->err,
                             sizeof rt->err);
  }
  rt->host_masks = xcalloc((size_t)max_masks, sizeof(NaoMask));
  if (zero(rt, rt->grads, ft, "zeroing the gradients") ||
      zero(rt, rt->momentum, ft, "zeroing the momentum") ||
      zero(rt, rt->scratch, scratch, "zeroing the scratch region") ||
      zero(rt, rt->masks, sizeof(NaoMask) * (size_t)max_masks, "zeroing the mask table"))
    return -1;
  // host side of the step's outputs: logits of the largest batch, loss, norm
  int classes = 1;
  for (int i = 0; i < rt->n_progs; i++) {
    const CudaProgram *p = rt->progs[i].p;
    if (p->logits >= 0 && p->tensors[p->logits].c > classes) classes = p->tensors[p->logits].c;
  }
  size_t span = 0;
  for (int i = 0; i < rt->n_progs; i++) {
    const CudaProgram *p = rt->progs[i].p;
    if (p->logits < 0) continue;
    size_t ss = p->locs[p->logits].sample_stride;
    size_t s = (size_t)(nb - 1) * (ss ? ss : (size_t)classes) + (size_t)classes;
    if (s > span) span = s;
  }
  rt->host_out_bytes = sizeof(float) * (span + 16 + (size_t)nb * (size_t)classes);
  CuResult r = rt->cu->mem_host_alloc(&rt->host_out, rt->host_out_bytes, 0);
  if (r == CUAPI_SUCCESS) {
    rt->host_out_pinned = 1;
  } else {
    rt->host_out = xmalloc(rt->host_out_bytes);
  }
  CU(rt->cu->stream_synchronize(rt->stream), "cuStreamSynchronize", "zeroing the device buffers");
  return 0;
}

// ---------------------------------------------------------------- create

static int find_programs(CudaRt *rt) {
  const CudaNet *net = rt->net;
  rt->train_prog = rt->eval_prog = rt->update_prog = -1;
  if (net->version != CUDA_NET_VERSION) {
    snprintf(rt->err, sizeof rt->err, "the net was made for cuda_plan.h version %d, this runtime "
                                      "reads version %d: regenerate net.cu",
             net->version, CUDA_NET_VERSION);
    return -1;
  }
  for (int i = 0; i < net->n_programs && rt->n_progs < 4; i++) {
    const CudaProgram *p = &net->programs[i];
    int *slot = strcmp(p->name, "train") == 0    ? &rt->train_prog
                : strcmp(p->name, "eval") == 0   ? &rt->eval_prog
                : strcmp(p->name, "update") == 0 ? &rt->update_prog
                                                 : NULL;
    if (!slot) continue;
    *slot = rt->n_progs;
    rt->progs[rt->n_progs].p = p;
    rt->progs[rt->n_progs].last_n = 0;
    rt->n_progs++;
  }
  if (rt->train_prog < 0 && rt->eval_prog < 0) {
    snprintf(rt->err, sizeof rt->err, "the net has neither a train nor an eval program");
    return -1;
  }
  if ((rt->train_prog >= 0) != (rt->update_prog >= 0)) {
    snprintf(rt->err, sizeof rt->err, "the net has a train program without an update program "
                                      "(or the reverse)");
    return -1;
  }
  return 0;
}

static int net_uses(const CudaNet *net, int gemm) {
  for (int i = 0; i < net->n_programs; i++)
    for (int s = 0; s < net->programs[i].n_steps; s++) {
      CudaStepKind k = net->programs[i].steps[s].kind;
      if (gemm ? k == CUDA_STEP_GEMM : (k != CUDA_STEP_KERNEL && k != CUDA_STEP_GEMM)) return 1;
    }
  return 0;
}

CudaRt *cuda_rt_create(const CudaNet *net, const char *source, int max_batch, int max_eval_batch,
                       const CudaRtOptions *o, char *err, size_t errlen) {
  CudaRt *rt = xcalloc(1, sizeof *rt);
  if (o) rt->opt = *o;
  else cuda_rt_options_default(&rt->opt);
  rt->net = net;
  rt->max_batch = max_batch > 0 ? max_batch : 0;
  rt->max_eval_batch = max_eval_batch > 0 ? max_eval_batch : 0;
  int rc = find_programs(rt);
  if (!rc && rt->train_prog < 0) rt->max_batch = 0;
  if (!rc && rt->eval_prog < 0) rt->max_eval_batch = 0;
  if (!rc && rt->max_batch <= 0 && rt->max_eval_batch <= 0) {
    snprintf(rt->err, sizeof rt->err, "no batch size to run: training batch %d, evaluation batch %d",
             max_batch, max_eval_batch);
    rc = -1;
  }
  if (!rc) {
    const char *dir = rt->opt.kernel_cache ? rt->opt.kernel_cache : getenv("NAOC_KERNEL_CACHE");
    rc = kcache_open(&rt->cache, dir, rt->err, sizeof rt->err);
    if (!rc && !rt->cache.enabled && rt->opt.verbose) fprintf(stderr, "naoc: %s\n", rt->cache.note);
  }
  if (!rc) rc = open_driver(rt);
  rt->need_dnn = net_uses(net, 0);
  rt->need_blas = net_uses(net, 1);
  if (!rc) rc = lib_open(rt);
  if (!rc) rc = check_memory(rt);
  if (!rc) rc = load_kernels(rt, source);
  if (!rc) rc = allocate(rt);
  if (!rc) lib_algo_load(rt);
  if (!rc) rc = seq_build(rt);
  if (rc) {
    snprintf(err, errlen, "%s", rt->err);
    cuda_rt_destroy(rt);
    return NULL;
  }
  return rt;
}

void cuda_rt_destroy(CudaRt *rt) {
  if (!rt) return;
  if (rt->cu && rt->stream) rt->cu->stream_synchronize(rt->stream);
  if (rt->n_algos) lib_algo_save(rt);
  seq_free(rt);
  lib_close(rt);
  if (rt->cu) {
    for (int i = 0; i < rt->n_allocs; i++) rt->cu->mem_free(rt->allocs[i]);
    for (int i = 0; i < rt->n_modules; i++) rt->cu->module_unload(rt->modules[i]);
    if (rt->host_out && rt->host_out_pinned) rt->cu->mem_free_host(rt->host_out);
    if (rt->ev0) rt->cu->event_destroy(rt->ev0);
    if (rt->ev1) rt->cu->event_destroy(rt->ev1);
    if (rt->stream) rt->cu->stream_destroy(rt->stream);
    if (rt->ctx_retained) rt->cu->primary_ctx_release(rt->dev);
  }
  if (rt->host_out && !rt->host_out_pinned) free(rt->host_out);
  for (int i = 0; i < rt->n_algos; i++) free(rt->algos[i].key);
  free(rt->algos);
  free(rt->allocs);
  free(rt->alloc_sizes);
  free(rt->modules);
  free(rt->fns);
  free(rt->host_masks);
  free(rt->active);
  if (rt->cu_lib.handle) cuda_lib_close(&rt->cu_lib);
  free(rt);
}

// ---------------------------------------------------------------- model state

int cuda_rt_upload(CudaRt *rt, const float *params, const float *buffers, const float *momentum,
                   const unsigned char *has_buf) {
  const CudaNet *net = rt->net;
  size_t ft = sizeof(float) * net->n_trainable;
  CU(rt->cu->stream_synchronize(rt->stream), "cuStreamSynchronize", "waiting before an upload");
  if (ft) CU(rt->cu->memcpy_htod(rt->params, params, ft), "cuMemcpyHtoD", "uploading the parameters");
  if (net->n_buffer)
    CU(rt->cu->memcpy_htod(rt->buffers, buffers, sizeof(float) * net->n_buffer), "cuMemcpyHtoD",
       "uploading the BN statistics");
  if (!ft) return 0;
  float *m = xcalloc(net->n_trainable, sizeof(float));
  if (momentum)
    for (int i = 0; i < net->n_params; i++) {
      const ParamInfo *p = &net->params[i];
      if (p->trainable && (!has_buf || has_buf[i]))
        memcpy(m + p->offset, momentum + p->offset, sizeof(float) * p->numel);
    }
  CuResult r = rt->cu->memcpy_htod(rt->momentum, m, ft);
  free(m);
  if (r != CUAPI_SUCCESS) return rt_fail(rt, r, "cuMemcpyHtoD", "uploading the momentum buffers");
  return 0;
}

int cuda_rt_download(CudaRt *rt, float *params, float *buffers, float *momentum) {
  const CudaNet *net = rt->net;
  size_t ft = sizeof(float) * net->n_trainable;
  CU(rt->cu->stream_synchronize(rt->stream), "cuStreamSynchronize", "waiting for the last step");
  if (ft && params)
    CU(rt->cu->memcpy_dtoh(params, rt->params, ft), "cuMemcpyDtoH", "downloading the parameters");
  if (ft && momentum)
    CU(rt->cu->memcpy_dtoh(momentum, rt->momentum, ft), "cuMemcpyDtoH", "downloading the momentum");
  if (net->n_buffer && buffers)
    CU(rt->cu->memcpy_dtoh(buffers, rt->buffers, sizeof(float) * net->n_buffer), "cuMemcpyDtoH",
       "downloading the BN statistics");
  return 0;
}

int cuda_rt_download_grads(CudaRt *rt, float *grads) {
  size_t ft = sizeof(float) * rt->net->n_trainable;
  CU(rt->cu->stream_synchronize(rt->stream), "cuStreamSynchronize", "waiting for the last step");
  if (ft) CU(rt->cu->memcpy_dtoh(grads, rt->grads, ft), "cuMemcpyDtoH", "downloading the gradients");
  return 0;
}

int cuda_rt_sync(CudaRt *rt) {
  CU(rt->cu->stream_synchronize(rt->stream), "cuStreamSynchronize", "waiting for the device");
  return 0;
}
