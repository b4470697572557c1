// runtime/nvrtc.c — NVRTC through dlopen (nvrtc.h).
//
// The NVRTC types are declared here from the documented C API (nvrtc.h of the
// toolkit is not needed to build): results are ints, programs opaque
// pointers. Nothing global: a NvrtcLib holds the handle and the functions.
#include "runtime/nvrtc.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/util.h"

typedef int NvrtcResult;  // 0 = NVRTC_SUCCESS
typedef struct NvrtcProgramS *NvrtcProgram;

struct NvrtcLib {
  void *handle;
  char path[480];
  const char *(*get_error_string)(NvrtcResult);
  NvrtcResult (*version)(int *, int *);
  NvrtcResult (*create_program)(NvrtcProgram *, const char *, const char *, int,
                                const char *const *, const char *const *);
  NvrtcResult (*destroy_program)(NvrtcProgram *);
  NvrtcResult (*compile_program)(NvrtcProgram, int, const char *const *);
  NvrtcResult (*get_ptx_size)(NvrtcProgram, size_t *);
  NvrtcResult (*get_ptx)(NvrtcProgram, char *);
  NvrtcResult (*get_cubin_size)(NvrtcProgram, size_t *);
  NvrtcResult (*get_cubin)(NvrtcProgram, char *);
  NvrtcResult (*get_log_size)(NvrtcProgram, size_t *);
  NvrtcResult (*get_log)(NvrtcProgram, char *);
};

static void *try_open(const char *path, StrBuf *tried) {
  void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!h) sb_printf(tried, "\n  %s: %s", path, dlerror());
  return h;
}

#define SYM(field, name)                                                            \
  do {                                                                              \
    *(void **)&lib->field = dlsym(lib->handle, name);                               \
    if (!lib->field) {                                                              \
      snprintf(err, errlen, "%s has no symbol %s: not a usable NVRTC", lib->path, name); \
      nvrtc_close(lib);                                                             \
      return NULL;                                                                  \
    }                                                                               \
  } while (0)

NvrtcLib *nvrtc_open(char *err, size_t errlen) {
  NvrtcLib *lib = xcalloc(1, sizeof *lib);
  StrBuf tried = {0};
  char cand[8][480];
  int n = 0;
  const char *env = getenv("NAO_NVRTC");
  if (env && *env) snprintf(cand[n++], sizeof cand[0], "%s", env);
  snprintf(cand[n++], sizeof cand[0], "libnvrtc.so.13");
  snprintf(cand[n++], sizeof cand[0], "libnvrtc.so.12");
  snprintf(cand[n++], sizeof cand[0], "libnvrtc.so");
  const char *home = getenv("CUDA_HOME");
  if (home && *home) {
    snprintf(cand[n++], sizeof cand[0], "%s/lib64/libnvrtc.so.13", home);
    snprintf(cand[n++], sizeof cand[0], "%s/lib64/libnvrtc.so", home);
  }
  snprintf(cand[n++], sizeof cand[0], "/usr/local/cuda/lib64/libnvrtc.so.13");
  snprintf(cand[n++], sizeof cand[0], "/usr/local/cuda/lib64/libnvrtc.so");
  for (int i = 0; i < n && !lib->handle; i++) {
    lib->handle = try_open(cand[i], &tried);
    if (lib->handle) snprintf(lib->path, sizeof lib->path, "%s", cand[i]);
  }
  if (!lib->handle) {
    snprintf(err, errlen,
             "NVRTC (libnvrtc) not found; install the CUDA toolkit (/usr/local/cuda) or set "
             "NAO_NVRTC to the library's path. Tried:%s",
             tried.data ? tried.data : "");
    sb_free(&tried);
    free(lib);
    return NULL;
  }
  sb_free(&tried);
  SYM(get_error_string, "nvrtcGetErrorString");
  SYM(version, "nvrtcVersion");
  SYM(create_program, "nvrtcCreateProgram");
  SYM(destroy_program, "nvrtcDestroyProgram");
  SYM(compile_program, "nvrtcCompileProgram");
  SYM(get_ptx_size, "nvrtcGetPTXSize");
  SYM(get_ptx, "nvrtcGetPTX");
  SYM(get_cubin_size, "nvrtcGetCUBINSize");
  SYM(get_cubin, "nvrtcGetCUBIN");
  SYM(get_log_size, "nvrtcGetProgramLogSize");
  SYM(get_log, "nvrtcGetProgramLog");
  return lib;
}

void nvrtc_close(NvrtcLib *lib) {
  if (!lib) return;
  if (lib->handle) dlclose(lib->handle);
  free(lib);
}

const char *nvrtc_path(const NvrtcLib *lib) { return lib->path; }

static int failed(NvrtcLib *lib, NvrtcResult r, const char *call, const char *name, char *err,
                  size_t errlen) {
  if (r == 0) return 0;
  snprintf(err, errlen, "%s for program %s failed: %s (%d)", call, name ? name : "-",
           lib->get_error_string(r), r);
  return 1;
}

int nvrtc_version(NvrtcLib *lib, int *major, int *minor, char *err, size_t errlen) {
  return failed(lib, lib->version(major, minor), "nvrtcVersion", NULL, err, errlen) ? -1 : 0;
}

void nvrtc_output_free(NvrtcOutput *o) {
  free(o->code);
  free(o->log);
  memset(o, 0, sizeof *o);
}

static int fetch_log(NvrtcLib *lib, NvrtcProgram prog, const char *name, NvrtcOutput *out,
                     char *err, size_t errlen) {
  size_t n = 0;
  if (failed(lib, lib->get_log_size(prog, &n), "nvrtcGetProgramLogSize", name, err, errlen))
    return -1;
  out->log = xmalloc(n + 1);
  out->log[0] = '\0';
  if (n && failed(lib, lib->get_log(prog, out->log), "nvrtcGetProgramLog", name, err, errlen))
    return -1;
  out->log[n] = '\0';
  return 0;
}

int nvrtc_compile(NvrtcLib *lib, const char *name, const char *source, const char *arch,
                  const char *const *opts, int n_opts, NvrtcOutput *out, char *err,
                  size_t errlen) {
  memset(out, 0, sizeof *out);
  NvrtcProgram prog = NULL;
  if (failed(lib, lib->create_program(&prog, source, name, 0, NULL, NULL), "nvrtcCreateProgram",
             name, err, errlen))
    return -1;
  const char **all = xmalloc(sizeof(char *) * (size_t)(n_opts + 2));
  char archopt[64];
  snprintf(archopt, sizeof archopt, "--gpu-architecture=%s", arch);
  all[0] = archopt;
  for (int i = 0; i < n_opts; i++) all[i + 1] = opts[i];
  NvrtcResult cr = lib->compile_program(prog, n_opts + 1, all);
  free(all);
  int rc = fetch_log(lib, prog, name, out, err, errlen);
  if (!rc && cr != 0) {
    snprintf(err, errlen, "nvrtcCompileProgram for program %s (%s) failed: %s (%d); log:\n%s",
             name, arch, lib->get_error_string(cr), cr, out->log ? out->log : "");
    rc = -1;
  }
  out->is_cubin = strncmp(arch, "sm_", 3) == 0;
  if (!rc) {
    size_t n = 0;
    const char *what = out->is_cubin ? "nvrtcGetCUBINSize" : "nvrtcGetPTXSize";
    NvrtcResult r = out->is_cubin ? lib->get_cubin_size(prog, &n) : lib->get_ptx_size(prog, &n);
    if (failed(lib, r, what, name, err, errlen)) rc = -1;
    else {
      out->code = xmalloc(n + 1);
      out->code_size = n;
      what = out->is_cubin ? "nvrtcGetCUBIN" : "nvrtcGetPTX";
      r = out->is_cubin ? lib->get_cubin(prog, out->code) : lib->get_ptx(prog, out->code);
      if (failed(lib, r, what, name, err, errlen)) rc = -1;
    }
  }
  NvrtcResult dr = lib->destroy_program(&prog);
  if (!rc && failed(lib, dr, "nvrtcDestroyProgram", name, err, errlen)) rc = -1;
  return rc;
}

// ---------------------------------------------------------------- ptxas report

static int grab_int(const char *line, const char *after, int *out) {
  const char *p = strstr(line, after);
  if (!p) return 0;
  // the number precedes `after`: walk back over spaces and digits
  const char *q = p;
  while (q > line && q[-1] == ' ') q--;
  const char *end = q;
  while (q > line && q[-1] >= '0' && q[-1] <= '9') q--;
  if (q == end) return 0;
  *out = atoi(q);
  return 1;
}

int nvrtc_parse_ptxas(const char *log, PtxasInfo **out) {
  *out = NULL;
  int n = 0, cap = 0, seen = 0;
  PtxasInfo *v = NULL, *cur = NULL;
  const char *line = log;
  while (line && *line) {
    const char *nl = strchr(line, '\n');
    size_t len = nl ? (size_t)(nl - line) : strlen(line);
    char buf[1024];
    snprintf(buf, sizeof buf, "%.*s", (int)(len < sizeof buf - 1 ? len : sizeof buf - 1), line);
    const char *fn = strstr(buf, "Compiling entry function '");
    if (fn) {
      seen = 1;
      if (n == cap) {
        cap = cap ? 2 * cap : 64;
        v = xrealloc(v, sizeof *v * (size_t)cap);
      }
      cur = &v[n++];
      memset(cur, 0, sizeof *cur);
      fn += strlen("Compiling entry function '");
      const char *q = strchr(fn, '\'');
      snprintf(cur->name, sizeof cur->name, "%.*s", (int)(q ? q - fn : (long)strlen(fn)), fn);
      const char *a = strstr(fn, "for '");
      if (a) {
        a += 5;
        const char *e = strchr(a, '\'');
        snprintf(cur->arch, sizeof cur->arch, "%.*s", (int)(e ? e - a : (long)strlen(a)), a);
      }
    } else if (cur) {
      grab_int(buf, "bytes stack frame", &cur->stack_bytes);
      grab_int(buf, "bytes spill stores", &cur->spill_stores);
      grab_int(buf, "bytes spill loads", &cur->spill_loads);
      grab_int(buf, "registers", &cur->registers);
      grab_int(buf, "bytes smem", &cur->smem_bytes);
      grab_int(buf, "barriers", &cur->barriers);
    }
    line = nl ? nl + 1 : NULL;
  }
  if (!seen) {
    free(v);
    return -1;
  }
  *out = v;
  return n;
}
