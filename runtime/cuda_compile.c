// runtime/cuda_compile.c — per-kernel NVRTC units, compiled on threads through
// the kernel cache (cuda_compile.h).
//
// Invariants: the units and their order depend only on the source text; the
// result does not depend on the thread count (each unit is compiled alone,
// the first failing unit in unit order is the one reported). NVRTC is called
// concurrently on distinct programs only.
#include "runtime/cuda_compile.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "compiler/util.h"
#include "runtime/cuda_find.h"
#include "runtime/nvrtc.h"

// ---------------------------------------------------------------- split

static const char *find_line(const char *s, const char *end, const char *prefix) {
  size_t n = strlen(prefix);
  for (const char *p = s; p && p < end;) {
    if ((size_t)(end - p) >= n && strncmp(p, prefix, n) == 0) return p;
    p = memchr(p, '\n', (size_t)(end - p));
    if (p) p++;
  }
  return NULL;
}

// A separator line "// ------...---- NAME": returns NAME's start and length.
static int separator_name(const char *line, const char *end, const char **name, size_t *len) {
  const char *p = line;
  if (end - p < 24 || strncmp(p, "// ", 3) != 0) return 0;
  p += 3;
  int dashes = 0;
  while (p < end && *p == '-') p++, dashes++;
  if (dashes < 16 || p >= end || *p != ' ') return 0;
  p++;
  const char *q = p;
  while (q < end && *q != '\n') q++;
  *name = p;
  *len = (size_t)(q - p);
  return *len > 0;
}

static int kernel_index(const CudaNet *net, const char *name, size_t len) {
  for (int i = 0; i < net->n_kernels; i++)
    if (strlen(net->kernels[i].name) == len && strncmp(net->kernels[i].name, name, len) == 0)
      return i;
  return -1;
}

static int count_globals(const char *s, const char *end) {
  int n = 0;
  for (const char *p = s; p < end; p++) {
    p = memchr(p, '_', (size_t)(end - p));
    if (!p) break;
    if ((size_t)(end - p) >= 10 && strncmp(p, "__global__", 10) == 0) n++;
  }
  return n;
}

static void add_unit(CudaCompiled *c, const char *name, size_t nlen, const char *pre, size_t plen,
                     const char *body, size_t blen) {
  CudaUnit *u = &c->units[c->n_units++];
  memset(u, 0, sizeof *u);
  u->name = xmalloc(nlen + 1);
  memcpy(u->name, name, nlen);
  u->name[nlen] = '\0';
  u->text = xmalloc(plen + blen + 2);
  memcpy(u->text, pre, plen);
  memcpy(u->text + plen, body, blen);
  u->text[plen + blen] = '\n';
  u->text[plen + blen + 1] = '\0';
}

// Per-kernel split of the device region [s, end). Returns 0, or -1 when the
// region does not have the expected shape (the caller makes one unit).
static int split_kernels(const CudaNet *net, const char *s, const char *end, CudaCompiled *c) {
  int nk = net->n_kernels;
  if (nk == 0) return -1;
  const char **at = xcalloc((size_t)nk, sizeof *at);
  const char *first = NULL;
  int found = 0, rc = 0;
  for (const char *p = s; p && p < end && !rc;) {
    const char *name;
    size_t len;
    if (separator_name(p, end, &name, &len)) {
      int k = kernel_index(net, name, len);
      if (k >= 0) {
        if (at[k]) rc = -1;  // a kernel twice
        at[k] = p;
        found++;
        if (!first) first = p;
      }
    }
    p = memchr(p, '\n', (size_t)(end - p));
    if (p) p++;
  }
  if (rc || found != nk) {
    free(at);
    return -1;
  }
  c->units = xcalloc((size_t)nk, sizeof *c->units);
  c->unit_of_kernel = xmalloc(sizeof(int) * (size_t)nk);
  // kernels in text order, each up to the next kernel's separator
  for (const char *p = first; p && p < end;) {
    int k = -1;
    for (int i = 0; i < nk; i++)
      if (at[i] == p) k = i;
    const char *next = end;
    for (int i = 0; i < nk; i++)
      if (at[i] > p && at[i] < next) next = at[i];
    if (count_globals(p, next) != 1) {
      rc = -1;
      break;
    }
    c->unit_of_kernel[k] = c->n_units;
    const char *nm = net->kernels[k].name;
    add_unit(c, nm, strlen(nm), s, (size_t)(first - s), p, (size_t)(next - p));
    p = next < end ? next : NULL;
  }
  free(at);
  return rc;
}

int cuda_compile_split(const CudaNet *net, const char *source, int whole, CudaCompiled *out,
                       char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  const char *s = source, *end = source + strlen(source);
  const char *ifd = find_line(s, end, "#ifdef __CUDACC_RTC__");
  if (ifd) {
    s = memchr(ifd, '\n', (size_t)(end - ifd));
    s = s ? s + 1 : end;
    const char *e = find_line(s, end, "#endif  // __CUDACC_RTC__");
    if (!e) {
      snprintf(err, errlen, "the device code's #ifdef __CUDACC_RTC__ has no matching "
                            "'#endif  // __CUDACC_RTC__': not a net.cu written by naoc");
      return -1;
    }
    end = e;
  }
  if (s >= end) {
    snprintf(err, errlen, "the source has no device code");
    return -1;
  }
  if (!whole && split_kernels(net, s, end, out) == 0) return 0;
  cuda_compiled_free(out);
  memset(out, 0, sizeof *out);
  out->whole = 1;
  out->units = xcalloc(1, sizeof *out->units);
  out->unit_of_kernel = xcalloc((size_t)net->n_kernels + 1, sizeof(int));
  add_unit(out, "net", 3, "", 0, s, (size_t)(end - s));
  return 0;
}

// ---------------------------------------------------------------- compile

typedef struct {
  const CudaCompileOptions *o;
  NvrtcLib *lib;
  CudaCompiled *c;
  char opts_text[512];
  pthread_mutex_t mu;
  int next;
  int *failed;         // per unit: 1 when it failed
  char **errors;       // per unit: its message
  KCacheKey *keys;
} Job;

static void compile_unit(Job *j, int i) {
  CudaUnit *u = &j->c->units[i];
  const CudaCompileOptions *o = j->o;
  KCacheKey *k = &j->keys[i];
  kcache_key(k, u->text, strlen(u->text), o->arch, j->opts_text, j->c->nvrtc_major,
             j->c->nvrtc_minor);
  int damaged = 0;
  if (kcache_get(o->cache, k, "cubin", &u->image, &u->size, &damaged)) {
    u->cached = 1;
    return;
  }
  if (damaged) {
    pthread_mutex_lock(&j->mu);
    j->c->n_damaged++;
    pthread_mutex_unlock(&j->mu);
  }
  char prog[160], err[2048];
  snprintf(prog, sizeof prog, "%s.cu", u->name);
  NvrtcOutput out;
  if (nvrtc_compile(j->lib, prog, u->text, o->arch, o->opts, o->n_opts, &out, err, sizeof err)) {
    StrBuf m = {0};
    sb_printf(&m, "NVRTC could not compile kernel %s for %s", u->name, o->arch);
    if (out.log && out.log[0]) sb_printf(&m, "; NVRTC's log:\n%s", out.log);
    else sb_printf(&m, ": %s", err);
    char kept[1400], kerr[600];
    if (kcache_keep_failed(o->cache, u->name, k, u->text, out.log, kept, sizeof kept, kerr,
                           sizeof kerr) == 0)
      sb_printf(&m, "\nthe failing source is kept in %s (its log beside it)", kept);
    else sb_printf(&m, "\n(the failing source could not be kept: %s)", kerr);
    j->failed[i] = 1;
    j->errors[i] = sb_steal(&m);
    nvrtc_output_free(&out);
    return;
  }
  u->image = out.code;
  u->size = out.code_size;
  out.code = NULL;
  nvrtc_output_free(&out);
  char perr[600];
  if (kcache_put(o->cache, k, "cubin", u->image, u->size, perr, sizeof perr) && o->verbose)
    fprintf(stderr, "naoc: warning: kernel cache: %s\n", perr);
  if (o->verbose) fprintf(stderr, "naoc: compiled %s for %s\n", u->name, o->arch);
}

static void *worker(void *arg) {
  Job *j = arg;
  for (;;) {
    pthread_mutex_lock(&j->mu);
    int i = j->next < j->c->n_units ? j->next++ : -1;
    pthread_mutex_unlock(&j->mu);
    if (i < 0) return NULL;
    compile_unit(j, i);
  }
}

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int open_nvrtc(CudaCompiled *c, CudaLib *pre, NvrtcLib **lib, char *err, size_t errlen) {
  // Our search first (it knows the wheels); nvrtc_open then finds the loaded
  // copy by its soname. When ours fails, nvrtc_open's own search still runs.
  char ferr[2048] = "";
  if (cuda_lib_open(&cuda_spec_nvrtc, pre, ferr, sizeof ferr) != 0) pre->handle = NULL;
  char nerr[2048];
  *lib = nvrtc_open(nerr, sizeof nerr);
  if (!*lib) {
    snprintf(err, errlen, "cannot compile the kernels: %s", ferr[0] ? ferr : nerr);
    return -1;
  }
  snprintf(c->nvrtc_path, sizeof c->nvrtc_path, "%s", pre->handle ? pre->path : nvrtc_path(*lib));
  return nvrtc_version(*lib, &c->nvrtc_major, &c->nvrtc_minor, err, errlen);
}

int cuda_compile_net(const CudaNet *net, const char *source, const CudaCompileOptions *o,
                     CudaCompiled *out, char *err, size_t errlen) {
  double t0 = now_s();
  if (cuda_compile_split(net, source, o->whole, out, err, errlen)) return -1;
  CudaLib pre;
  NvrtcLib *lib = NULL;
  if (open_nvrtc(out, &pre, &lib, err, errlen)) {
    nvrtc_close(lib);
    cuda_lib_close(&pre);
    return -1;
  }
  Job j;
  memset(&j, 0, sizeof j);
  j.o = o;
  j.lib = lib;
  j.c = out;
  for (int i = 0; i < o->n_opts; i++)
    snprintf(j.opts_text + strlen(j.opts_text), sizeof j.opts_text - strlen(j.opts_text), "%s ",
             o->opts[i]);
  pthread_mutex_init(&j.mu, NULL);
  j.failed = xcalloc((size_t)out->n_units, sizeof(int));
  j.errors = xcalloc((size_t)out->n_units, sizeof(char *));
  j.keys = xcalloc((size_t)out->n_units, sizeof(KCacheKey));
  int nt = o->threads > 0 ? o->threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
  if (nt < 1) nt = 1;
  if (nt > 64) nt = 64;
  if (nt > out->n_units) nt = out->n_units;
  pthread_t th[64];
  int started = 0;
  for (int t = 1; t < nt; t++)
    if (pthread_create(&th[started], NULL, worker, &j) == 0) started++;
  worker(&j);
  for (int t = 0; t < started; t++) pthread_join(th[t], NULL);
  int rc = 0;
  for (int i = 0; i < out->n_units; i++) {
    if (j.failed[i] && !rc) {
      snprintf(err, errlen, "%s", j.errors[i]);
      rc = -1;
    }
    free(j.errors[i]);
    if (out->units[i].cached) out->n_cached++;
    else if (!j.failed[i]) out->n_compiled++;
  }
  free(j.failed);
  free(j.errors);
  free(j.keys);
  pthread_mutex_destroy(&j.mu);
  nvrtc_close(lib);
  cuda_lib_close(&pre);
  out->seconds = now_s() - t0;
  return rc;
}

void cuda_compiled_free(CudaCompiled *c) {
  for (int i = 0; i < c->n_units; i++) {
    free(c->units[i].name);
    free(c->units[i].text);
    free(c->units[i].image);
  }
  free(c->units);
  free(c->unit_of_kernel);
  memset(c, 0, sizeof *c);
}
