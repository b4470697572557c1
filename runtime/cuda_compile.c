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

// The device code of `source`: the region between the guards of a net.cu,
// or the whole text.
static int device_region(const char *source, const char **start, const char **stop, char *err,
                         size_t errlen) {
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
  *start = s;
  *stop = end;
  return 0;
}

int cuda_compile_split(const CudaNet *net, const char *source, int whole, CudaCompiled *out,
                       char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  const char *s, *end;
  if (device_region(source, &s, &end, err, errlen)) return -1;
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

// ---------------------------------------------------------------- bundles
// After a compilation, all the net's cubins are also stored as one entry
// keyed by the whole device code, so that a start with everything cached
// reads one file: "NAOB" u32 units, then per unit u32 name length, name,
// u64 image length, image (little endian).

static void put32(StrBuf *b, uint32_t v) {
  unsigned char x[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                        (unsigned char)(v >> 24)};
  sb_appendn(b, (const char *)x, 4);
}

static void bundle_put(const CudaCompiled *c, const KCache *cache, const KCacheKey *k) {
  StrBuf b = {0};
  sb_appendn(&b, "NAOB", 4);
  put32(&b, (uint32_t)c->n_units);
  for (int u = 0; u < c->n_units; u++) {
    size_t nl = strlen(c->units[u].name);
    put32(&b, (uint32_t)nl);
    sb_appendn(&b, c->units[u].name, nl);
    put32(&b, (uint32_t)c->units[u].size);
    put32(&b, (uint32_t)((uint64_t)c->units[u].size >> 32));
    sb_appendn(&b, c->units[u].image, c->units[u].size);
  }
  char e[600];
  kcache_put(cache, k, "bundle", b.data, b.len, e, sizeof e);  // a failure only costs time
  sb_free(&b);
}

static uint64_t get_le(const unsigned char *p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; i++) v |= (uint64_t)p[i] << (8 * i);
  return v;
}

// Fills out from a bundle; -1 when it does not parse or does not hold every
// kernel of the net.
static int bundle_parse(const CudaNet *net, const unsigned char *p, size_t len, CudaCompiled *out) {
  memset(out, 0, sizeof *out);
  if (len < 8 || memcmp(p, "NAOB", 4)) return -1;
  uint64_t n = get_le(p + 4, 4);
  if (n == 0 || n > 1000000) return -1;
  out->units = xcalloc((size_t)n, sizeof *out->units);
  size_t at = 8;
  for (uint64_t u = 0; u < n; u++) {
    if (at + 4 > len) return -1;
    uint64_t nl = get_le(p + at, 4);
    if (nl == 0 || nl > 4096 || at + 4 + nl + 8 > len) return -1;
    CudaUnit *x = &out->units[out->n_units++];
    x->name = xmalloc(nl + 1);
    memcpy(x->name, p + at + 4, nl);
    x->name[nl] = '\0';
    at += 4 + nl;
    uint64_t il = get_le(p + at, 8);
    at += 8;
    if (il == 0 || il > len - at) return -1;
    x->image = xmalloc(il + 1);
    memcpy(x->image, p + at, il);
    x->size = il;
    x->cached = 1;
    at += il;
  }
  if (at != len) return -1;
  out->unit_of_kernel = xmalloc(sizeof(int) * ((size_t)net->n_kernels + 1));
  out->whole = out->n_units == 1 && !strcmp(out->units[0].name, "net");
  for (int k = 0; k < net->n_kernels; k++) {
    out->unit_of_kernel[k] = -1;
    for (int u = 0; u < out->n_units; u++)
      if (out->whole || !strcmp(out->units[u].name, net->kernels[k].name)) out->unit_of_kernel[k] = u;
    if (out->unit_of_kernel[k] < 0) return -1;
  }
  out->n_cached = out->n_units;
  return 0;
}

// Compiles every unit of out that is not cached, on threads. Returns 0, or
// -1 with the first failing unit's message (in unit order).
static int compile_units(NvrtcLib *lib, const CudaCompileOptions *o, const char *opts_text,
                         CudaCompiled *out, char *err, size_t errlen) {
  Job j;
  memset(&j, 0, sizeof j);
  j.o = o;
  j.lib = lib;
  j.c = out;
  snprintf(j.opts_text, sizeof j.opts_text, "%s", opts_text);
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
  worker(&j);  // this thread works too (and alone when no thread could start)
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
  return rc;
}

int cuda_compile_net(const CudaNet *net, const char *source, const CudaCompileOptions *o,
                     CudaCompiled *out, char *err, size_t errlen) {
  double t0 = now_s();
  memset(out, 0, sizeof *out);
  const char *rs, *re;
  if (device_region(source, &rs, &re, err, errlen)) return -1;
  CudaLib pre;
  NvrtcLib *lib = NULL;
  CudaCompiled info;  // NVRTC's identity, kept across the resets of out below
  memset(&info, 0, sizeof info);
  int rc = open_nvrtc(&info, &pre, &lib, err, errlen);
  char opts_text[512] = "";
  for (int i = 0; i < o->n_opts; i++)
    snprintf(opts_text + strlen(opts_text), sizeof opts_text - strlen(opts_text), "%s ", o->opts[i]);
  KCacheKey whole_key;
  StrBuf tag = {0};
  sb_printf(&tag, "bundle %d|", o->whole);
  sb_appendn(&tag, rs, (size_t)(re - rs));
  kcache_key(&whole_key, tag.data, tag.len, o->arch, opts_text, info.nvrtc_major, info.nvrtc_minor);
  sb_free(&tag);
  void *bun = NULL;
  size_t blen = 0;
  int damaged = 0, done = 0;
  if (!rc && kcache_get(o->cache, &whole_key, "bundle", &bun, &blen, &damaged)) {
    done = bundle_parse(net, bun, blen, out) == 0;  // everything in one read
    if (!done) cuda_compiled_free(out), damaged = 1;
  }
  free(bun);
  if (!rc && !done) rc = cuda_compile_split(net, source, o->whole, out, err, errlen);
  if (!rc && !done) {
    out->n_damaged = damaged;
    out->nvrtc_major = info.nvrtc_major;  // the units' keys hold NVRTC's version
    out->nvrtc_minor = info.nvrtc_minor;
    rc = compile_units(lib, o, opts_text, out, err, errlen);
    if (!rc) bundle_put(out, o->cache, &whole_key);
  }
  nvrtc_close(lib);
  cuda_lib_close(&pre);
  out->nvrtc_major = info.nvrtc_major;
  out->nvrtc_minor = info.nvrtc_minor;
  memcpy(out->nvrtc_path, info.nvrtc_path, sizeof out->nvrtc_path);
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
