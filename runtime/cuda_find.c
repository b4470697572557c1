// runtime/cuda_find.c — finding NVIDIA's shared libraries (cuda_find.h).
//
// Invariants: nothing global is changed (no setenv): a library found in a
// folder is opened by full path, its siblings first, so that later dlopen
// calls by soname (from the library itself or from other code) find the
// copies already loaded. Every dlopen failure is recorded for the message.
#include "runtime/cuda_find.h"

#include <dlfcn.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "compiler/util.h"

static const char *const driver_names[] = {"libcuda.so.1", "libcuda.so", NULL};
static const char *const nvrtc_names[] = {"libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so", NULL};
static const char *const nvrtc_sib[] = {"libnvrtc-builtins.so.*", NULL};
static const char *const cudnn_names[] = {"libcudnn.so.9", "libcudnn.so", NULL};
static const char *const cudnn_sib[] = {"libcudnn_graph.so.9", "libcudnn_ops.so.9",
                                        "libcudnn_heuristic.so.9", "libcudnn_engines_*.so.9",
                                        "libcudnn_cnn.so.9", "libcudnn_ext.so.9", NULL};
static const char *const cublas_names[] = {"libcublas.so.13", "libcublas.so.12", "libcublas.so",
                                           NULL};
static const char *const cublas_sib[] = {"libcublasLt.so.13", "libcublasLt.so.12", NULL};

const CudaLibSpec cuda_spec_driver = {"the CUDA driver (libcuda)", "NAOC_CUDA_LIB", driver_names,
                                      NULL, 0, 1, 0};
const CudaLibSpec cuda_spec_nvrtc = {"NVRTC (libnvrtc)", "NAOC_NVRTC_LIB", nvrtc_names, nvrtc_sib,
                                     1, 0, 1};
const CudaLibSpec cuda_spec_cudnn = {"cuDNN 9 (libcudnn)", "NAOC_CUDNN_LIB", cudnn_names,
                                     cudnn_sib, 1, 0, 1};
const CudaLibSpec cuda_spec_cublas = {"cuBLAS (libcublas)", "NAOC_CUBLAS_LIB", cublas_names,
                                      cublas_sib, 1, 0, 1};

static int is_dir(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int is_file(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

// ---------------------------------------------------------------- folders

typedef struct {
  char **v;
  int n, cap;
} DirList;

static void dirs_add(DirList *d, const char *path) {
  if (!is_dir(path)) return;
  char *real = realpath(path, NULL);
  const char *p = real ? real : path;
  for (int i = 0; i < d->n; i++)
    if (strcmp(d->v[i], p) == 0) {
      free(real);
      return;
    }
  if (d->n == d->cap) {
    d->cap = d->cap ? 2 * d->cap : 16;
    d->v = xrealloc(d->v, sizeof(char *) * (size_t)d->cap);
  }
  d->v[d->n++] = xstrdup(p);
  free(real);
}

static void dirs_glob(DirList *d, const char *pattern) {
  glob_t g;
  if (glob(pattern, GLOB_NOSORT, NULL, &g) != 0) return;
  // sorted for a deterministic order whatever the file system returns
  for (size_t i = 1; i < g.gl_pathc; i++)
    for (size_t j = i; j > 0 && strcmp(g.gl_pathv[j - 1], g.gl_pathv[j]) > 0; j--) {
      char *t = g.gl_pathv[j];
      g.gl_pathv[j] = g.gl_pathv[j - 1];
      g.gl_pathv[j - 1] = t;
    }
  for (size_t i = 0; i < g.gl_pathc; i++) dirs_add(d, g.gl_pathv[i]);
  globfree(&g);
}

static void dirs_free(DirList *d) {
  for (int i = 0; i < d->n; i++) free(d->v[i]);
  free(d->v);
  memset(d, 0, sizeof *d);
}

// Wheel folders nvidia/*/lib under one site-packages root.
static void wheel_dirs(DirList *d, const char *site) {
  char pat[1200];
  snprintf(pat, sizeof pat, "%s/nvidia/*/lib", site);
  dirs_glob(d, pat);
  snprintf(pat, sizeof pat, "%s/nvidia/*/lib64", site);
  dirs_glob(d, pat);
}

static void site_roots(DirList *roots) {
  char pat[1200];
  const char *venv = getenv("VIRTUAL_ENV");
  if (venv && *venv) {
    snprintf(pat, sizeof pat, "%s/lib/python3*/site-packages", venv);
    dirs_glob(roots, pat);
  }
  const char *pp = getenv("PYTHONPATH");
  while (pp && *pp) {  // entries as given: the device's --target /tmp/site installs
    const char *colon = strchr(pp, ':');
    size_t len = colon ? (size_t)(colon - pp) : strlen(pp);
    if (len > 0 && len < 1000) {
      snprintf(pat, sizeof pat, "%.*s", (int)len, pp);
      dirs_add(roots, pat);
    }
    pp = colon ? colon + 1 : NULL;
  }
  const char *path = getenv("PATH");
  while (path && *path) {  // the python3 of each PATH folder: DIR/../lib/python3*/site-packages
    const char *colon = strchr(path, ':');
    size_t len = colon ? (size_t)(colon - path) : strlen(path);
    if (len > 0 && len < 1000) {
      snprintf(pat, sizeof pat, "%.*s/python3", (int)len, path);
      if (access(pat, X_OK) == 0) {
        snprintf(pat, sizeof pat, "%.*s/../lib/python3*/site-packages", (int)len, path);
        dirs_glob(roots, pat);
      }
    }
    path = colon ? colon + 1 : NULL;
  }
  dirs_glob(roots, "/opt/*/.venv/lib/python3*/site-packages");
  dirs_glob(roots, "/opt/*/lib/python3*/site-packages");
  dirs_glob(roots, "/usr/local/lib/python3*/dist-packages");
  dirs_glob(roots, "/usr/local/lib/python3*/site-packages");
  dirs_add(roots, "/usr/lib/python3/dist-packages");
  const char *home = getenv("HOME");
  if (home && *home) {
    snprintf(pat, sizeof pat, "%s/.local/lib/python3*/site-packages", home);
    dirs_glob(roots, pat);
  }
}

static void search_dirs(const CudaLibSpec *spec, DirList *d) {
  char p[1200];
  if (spec->toolkit) {
    const char *home = getenv("CUDA_HOME");
    if (!home || !*home) home = getenv("CUDA_PATH");
    if (home && *home) {
      snprintf(p, sizeof p, "%s/lib64", home);
      dirs_add(d, p);
    }
    dirs_add(d, "/usr/local/cuda/lib64");
    dirs_add(d, "/usr/local/cuda/targets/x86_64-linux/lib");
  }
  if (spec->driver) {
    dirs_add(d, "/usr/local/nvidia/lib64");
    dirs_add(d, "/usr/local/nvidia/lib");
    dirs_add(d, "/usr/lib/wsl/lib");
  }
  if (spec->wheels) {
    DirList roots = {0};
    site_roots(&roots);
    for (int i = 0; i < roots.n; i++) wheel_dirs(d, roots.v[i]);
    dirs_free(&roots);
  }
}

void cuda_lib_search_dirs(const CudaLibSpec *spec, char *out, size_t outlen) {
  DirList d = {0};
  search_dirs(spec, &d);
  StrBuf sb = {0};
  for (int i = 0; i < d.n; i++) sb_printf(&sb, "%s\n", d.v[i]);
  snprintf(out, outlen, "%s", sb.data ? sb.data : "");
  sb_free(&sb);
  dirs_free(&d);
}

// ---------------------------------------------------------------- opening

static void *try_open(const char *path, int flags, StrBuf *tried) {
  void *h = dlopen(path, flags);
  if (!h) {
    const char *e = dlerror();
    sb_printf(tried, "\n  %s: %s", path, e ? e : "failed");
  }
  return h;
}

// Loads the siblings of a library found in `dir` (best effort: a missing one
// is the library's own business to report).
static void load_siblings(const CudaLibSpec *spec, const char *dir, CudaLib *lib) {
  if (!spec->siblings) return;
  for (int i = 0; spec->siblings[i]; i++) {
    char pat[1200];
    snprintf(pat, sizeof pat, "%s/%s", dir, spec->siblings[i]);
    glob_t g;
    if (glob(pat, 0, NULL, &g) != 0) continue;
    for (size_t k = 0; k < g.gl_pathc && lib->n_sib < (int)(sizeof lib->sib / sizeof lib->sib[0]);
         k++) {
      void *h = dlopen(g.gl_pathv[k], RTLD_LAZY | RTLD_GLOBAL);
      if (h) lib->sib[lib->n_sib++] = h;
    }
    globfree(&g);
  }
}

static int open_in_dir(const CudaLibSpec *spec, const char *dir, CudaLib *lib, StrBuf *tried) {
  for (int i = 0; spec->names[i]; i++) {
    char p[1024];
    if (snprintf(p, sizeof p, "%s/%s", dir, spec->names[i]) >= (int)sizeof p || !is_file(p))
      continue;
    load_siblings(spec, dir, lib);
    lib->handle = try_open(p, RTLD_NOW | RTLD_GLOBAL, tried);
    if (lib->handle) {
      snprintf(lib->path, sizeof lib->path, "%s", p);
      return 0;
    }
  }
  return -1;
}

static int open_env(const CudaLibSpec *spec, const char *val, CudaLib *lib, char *err,
                    size_t errlen) {
  StrBuf tried = {0};
  int rc = -1;
  if (is_dir(val)) {
    rc = open_in_dir(spec, val, lib, &tried);
    if (rc) sb_printf(&tried, "\n  no %s in the folder", spec->names[0]);
  } else {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", val);
    char *slash = strrchr(dir, '/');
    if (slash) {
      *slash = '\0';
      load_siblings(spec, dir[0] ? dir : "/", lib);
    }
    lib->handle = try_open(val, RTLD_NOW | RTLD_GLOBAL, &tried);
    if (lib->handle) {
      snprintf(lib->path, sizeof lib->path, "%s", val);
      rc = 0;
    }
  }
  if (rc) {
    snprintf(err, errlen, "%s: %s=%s cannot be loaded:%s", spec->what, spec->env, val,
             tried.data ? tried.data : "");
    cuda_lib_close(lib);
  }
  sb_free(&tried);
  return rc;
}

int cuda_lib_open(const CudaLibSpec *spec, CudaLib *lib, char *err, size_t errlen) {
  memset(lib, 0, sizeof *lib);
  const char *env = getenv(spec->env);
  if (env && *env) return open_env(spec, env, lib, err, errlen);
  StrBuf tried = {0};
  for (int i = 0; spec->names[i]; i++) {
    lib->handle = try_open(spec->names[i], RTLD_NOW | RTLD_GLOBAL, &tried);
    if (lib->handle) {
      snprintf(lib->path, sizeof lib->path, "%s", spec->names[i]);
      sb_free(&tried);
      return 0;
    }
  }
  DirList d = {0};
  search_dirs(spec, &d);
  int rc = -1;
  for (int i = 0; i < d.n && rc; i++) rc = open_in_dir(spec, d.v[i], lib, &tried);
  if (rc) {
    StrBuf where = {0};
    for (int i = 0; i < d.n; i++) sb_printf(&where, "%s%s", i ? ", " : "", d.v[i]);
    snprintf(err, errlen,
             "%s not found: set %s to its path, or add its folder to LD_LIBRARY_PATH. "
             "Searched the loader's path%s%s; tried:%s",
             spec->what, spec->env, d.n ? " and " : "", where.data ? where.data : "",
             tried.data ? tried.data : "");
    sb_free(&where);
    cuda_lib_close(lib);
  }
  dirs_free(&d);
  sb_free(&tried);
  return rc;
}

void cuda_lib_close(CudaLib *lib) {
  if (lib->handle) dlclose(lib->handle);
  for (int i = lib->n_sib - 1; i >= 0; i--) dlclose(lib->sib[i]);
  memset(lib, 0, sizeof *lib);
}

void *cuda_lib_sym(const CudaLib *lib, const char *name) {
  return lib->handle ? dlsym(lib->handle, name) : NULL;
}
