// tests/unit/test_cuda_kcache.c — the kernel cache (runtime/kcache.c) and the
// per-kernel NVRTC compilation through it (runtime/cuda_compile.c), with the
// real NVRTC on small kernels:
//  - the folder: --kernel-cache, XDG_CACHE_HOME, HOME; "off"; a folder that
//    cannot be made is an error when asked for, a note otherwise;
//  - entries round-trip; a damaged or foreign entry is a miss, removed, and
//    rebuilt; keys change with the source, arch, options and NVRTC version;
//  - the split of device code into per-kernel units (bare device code and a
//    whole net.cu), and the fallback to one unit;
//  - a cold compile compiles every unit, a warm one none, a damaged entry is
//    recompiled; every image is a cubin;
//  - a kernel NVRTC rejects: the message names it, holds NVRTC's log, and the
//    failing source is kept where the message says.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "compiler/cuda_plan.h"
#include "compiler/util.h"
#include "runtime/cuda_compile.h"
#include "runtime/kcache.h"

static int failures;
#define CHECK(cond, ...)                                   \
  do {                                                     \
    if (!(cond)) {                                         \
      failures++;                                          \
      fprintf(stderr, "%s:%d: FAIL: ", __FILE__, __LINE__); \
      fprintf(stderr, __VA_ARGS__);                        \
      fprintf(stderr, "\n");                               \
    }                                                      \
  } while (0)

static char root[] = "/tmp/naoc-kcache-XXXXXX";

static void test_folder(void) {
  KCache c;
  char err[1000], want[300];
  setenv("XDG_CACHE_HOME", root, 1);
  CHECK(kcache_open(&c, NULL, err, sizeof err) == 0 && c.enabled, "XDG folder: %s", err);
  snprintf(want, sizeof want, "%s/naoc", root);
  CHECK(strcmp(c.dir, want) == 0, "default folder %s, want %s", c.dir, want);
  unsetenv("XDG_CACHE_HOME");
  const char *home = getenv("HOME");
  char *home_copy = home ? xstrdup(home) : NULL;
  setenv("HOME", root, 1);
  CHECK(kcache_open(&c, NULL, err, sizeof err) == 0 && c.enabled, "HOME folder");
  snprintf(want, sizeof want, "%s/.cache/naoc", root);
  CHECK(strcmp(c.dir, want) == 0, "HOME folder %s, want %s", c.dir, want);
  unsetenv("HOME");
  CHECK(kcache_open(&c, NULL, err, sizeof err) == 0 && !c.enabled && strstr(c.note, "HOME"),
        "no HOME: %s", c.note);
  if (home_copy) setenv("HOME", home_copy, 1);
  free(home_copy);
  CHECK(kcache_open(&c, "off", err, sizeof err) == 0 && !c.enabled, "off");
  CHECK(kcache_open(&c, "/proc/naoc-cannot-be", err, sizeof err) == -1 &&
            strstr(err, "/proc/naoc-cannot-be"),
        "an impossible folder: %s", err);
}

static void test_entries(void) {
  KCache c;
  char err[1000], dir[300];
  snprintf(dir, sizeof dir, "%s/entries", root);
  CHECK(kcache_open(&c, dir, err, sizeof err) == 0 && c.enabled, "open: %s", err);
  KCacheKey k1, k2, k3, k4, k5;
  kcache_key(&k1, "abc", 3, "sm_90", "", 13, 0);
  kcache_key(&k2, "abd", 3, "sm_90", "", 13, 0);
  kcache_key(&k3, "abc", 3, "sm_80", "", 13, 0);
  kcache_key(&k4, "abc", 3, "sm_90", "-lineinfo ", 13, 0);
  kcache_key(&k5, "abc", 3, "sm_90", "", 12, 9);
  CHECK(strcmp(k1.hex, k2.hex) && strcmp(k1.hex, k3.hex) && strcmp(k1.hex, k4.hex) &&
            strcmp(k1.hex, k5.hex) && strlen(k1.hex) == 32,
        "keys do not depend on everything");
  const char payload[] = "\177ELF pretend cubin";
  CHECK(kcache_put(&c, &k1, "cubin", payload, sizeof payload, err, sizeof err) == 0, "put: %s", err);
  void *d;
  size_t n;
  int damaged;
  CHECK(kcache_get(&c, &k1, "cubin", &d, &n, &damaged) == 1 && n == sizeof payload &&
            !memcmp(d, payload, n) && !damaged,
        "round trip");
  free(d);
  CHECK(kcache_get(&c, &k2, "cubin", &d, &n, &damaged) == 0 && !damaged, "a miss");
  // flip a payload byte: damaged, removed
  char path[1300];
  kcache_entry_path(&c, &k1, "cubin", path, sizeof path);
  FILE *f = fopen(path, "r+b");
  CHECK(f && fseek(f, 70, SEEK_SET) == 0 && fputc('X', f) != EOF && fclose(f) == 0, "damage");
  CHECK(kcache_get(&c, &k1, "cubin", &d, &n, &damaged) == 0 && damaged && access(path, F_OK) != 0,
        "a damaged entry was not refused and removed");
  // a truncated entry
  CHECK(kcache_put(&c, &k1, "cubin", payload, sizeof payload, err, sizeof err) == 0, "put");
  CHECK(truncate(path, 40) == 0, "truncate");
  CHECK(kcache_get(&c, &k1, "cubin", &d, &n, &damaged) == 0 && damaged, "a truncated entry");
  // another key's entry under this name
  char other[1300];
  CHECK(kcache_put(&c, &k2, "cubin", payload, sizeof payload, err, sizeof err) == 0, "put");
  kcache_entry_path(&c, &k2, "cubin", other, sizeof other);
  CHECK(rename(other, path) == 0, "rename");
  CHECK(kcache_get(&c, &k1, "cubin", &d, &n, &damaged) == 0 && damaged, "a foreign entry");
  // no temporary files left behind
  char cmd[400];
  snprintf(cmd, sizeof cmd, "test -z \"$(ls -A '%s' | grep tmp)\"", dir);
  CHECK(system(cmd) == 0, "temporary files left in %s", dir);
}

// A net of two kernels, for splitting and compiling.
static const char *preamble =
    "// ---------------------------------------------------------------- preamble\n"
    "typedef struct { void *p[32]; int n; } NaoArgs;\n"
    "__device__ __forceinline__ float twice(float x) { return 2.0f * x; }\n";
static const char *k_scale =
    "\n// ---------------------------------------------------------------- k0_scale\n"
    "extern \"C\" __global__ void __launch_bounds__(256) k0_scale(const NaoArgs a) {\n"
    "  float *p = (float *)a.p[0];\n"
    "  const int i = blockIdx.x * 256 + threadIdx.x;\n"
    "  if (i < a.n) p[i] = twice(p[i]);\n"
    "}\n";
static const char *k_add =
    "\n// ---------------------------------------------------------------- k1_add\n"
    "extern \"C\" __global__ void __launch_bounds__(256) k1_add(const NaoArgs a) {\n"
    "  float *p = (float *)a.p[0];\n"
    "  const int i = blockIdx.x * 256 + threadIdx.x;\n"
    "  if (i < a.n) p[i] += 1.0f;\n"
    "}\n";

static const CudaKernel kernels[2] = {{"k0_scale", "pw", 256, 1, 0, 0, 1, 0},
                                      {"k1_add", "pw", 256, 1, 0, 0, 1, 0}};

static CudaNet make_net(void) {
  CudaNet net;
  memset(&net, 0, sizeof net);
  net.version = CUDA_NET_VERSION;
  net.n_kernels = 2;
  net.kernels = kernels;
  return net;
}

static void test_split(void) {
  CudaNet net = make_net();
  char err[1000];
  StrBuf src = {0};
  sb_append(&src, preamble);
  sb_append(&src, k_scale);
  sb_append(&src, k_add);
  CudaCompiled c;
  CHECK(cuda_compile_split(&net, src.data, 0, &c, err, sizeof err) == 0 && !c.whole && c.n_units == 2,
        "bare device code: %d units, whole %d", c.n_units, c.whole);
  if (c.n_units == 2) {
    CHECK(c.unit_of_kernel[0] == 0 && c.unit_of_kernel[1] == 1, "unit order");
    CHECK(strstr(c.units[1].text, "twice") && strstr(c.units[1].text, "k1_add") &&
              !strstr(c.units[1].text, "k0_scale"),
          "unit 1:\n%s", c.units[1].text);
  }
  cuda_compiled_free(&c);
  // a whole net.cu: the device code between the guards, the plan outside
  StrBuf file = {0};
  sb_printf(&file, "// net.cu header\n#ifdef __CUDACC_RTC__\n%s#endif  // __CUDACC_RTC__\n\n"
                   "#ifndef __CUDACC_RTC__\nint host_part;\n#endif\n",
            src.data);
  CHECK(cuda_compile_split(&net, file.data, 0, &c, err, sizeof err) == 0 && c.n_units == 2 &&
            !strstr(c.units[0].text, "host_part") && !strstr(c.units[0].text, "header"),
        "net.cu split");
  cuda_compiled_free(&c);
  // a kernel the net does not know of: one unit for everything
  CudaNet one = net;
  one.n_kernels = 1;
  CHECK(cuda_compile_split(&one, src.data, 0, &c, err, sizeof err) == 0 && c.whole && c.n_units == 1,
        "unknown kernel section: whole %d, %d units", c.whole, c.n_units);
  cuda_compiled_free(&c);
  CHECK(cuda_compile_split(&net, "#ifdef __CUDACC_RTC__\nint x;\n", 0, &c, err, sizeof err) == -1 &&
            strstr(err, "#endif"),
        "unterminated device section: %s", err);
  cuda_compiled_free(&c);
  sb_free(&src);
  sb_free(&file);
}

static void test_compile(void) {
  CudaNet net = make_net();
  char err[8192], dir[300];
  snprintf(dir, sizeof dir, "%s/compile", root);
  KCache cache;
  CHECK(kcache_open(&cache, dir, err, sizeof err) == 0, "open: %s", err);
  StrBuf src = {0};
  sb_append(&src, preamble);
  sb_append(&src, k_scale);
  sb_append(&src, k_add);
  CudaCompileOptions o = {.arch = "sm_90", .threads = 2, .cache = &cache};
  CudaCompiled c;
  int rc = cuda_compile_net(&net, src.data, &o, &c, err, sizeof err);
  if (rc && strstr(err, "NVRTC (libnvrtc) not found")) {
    fprintf(stderr, "FAIL: this test needs NVRTC (the CUDA toolkit): %s\n", err);
    failures++;
    cuda_compiled_free(&c);
    sb_free(&src);
    return;
  }
  CHECK(rc == 0 && c.n_compiled == 2 && c.n_cached == 0, "cold: rc %d, %d compiled, %d cached: %s", rc,
        c.n_compiled, c.n_cached, err);
  for (int u = 0; u < c.n_units; u++)
    CHECK(c.units[u].image && c.units[u].size > 64 && !memcmp(c.units[u].image, "\177ELF", 4),
          "unit %d is not a cubin", u);
  cuda_compiled_free(&c);
  rc = cuda_compile_net(&net, src.data, &o, &c, err, sizeof err);
  CHECK(rc == 0 && c.n_compiled == 0 && c.n_cached == 2, "warm: %d compiled, %d cached", c.n_compiled,
        c.n_cached);
  // damage one entry: it is rebuilt
  KCacheKey k;
  kcache_key(&k, c.units[1].text, strlen(c.units[1].text), "sm_90", "", c.nvrtc_major, c.nvrtc_minor);
  char path[1300];
  kcache_entry_path(&cache, &k, "cubin", path, sizeof path);
  CHECK(truncate(path, 100) == 0, "truncate %s", path);
  cuda_compiled_free(&c);
  rc = cuda_compile_net(&net, src.data, &o, &c, err, sizeof err);
  CHECK(rc == 0 && c.n_compiled == 1 && c.n_cached == 1 && c.n_damaged == 1,
        "damaged: %d compiled, %d cached, %d damaged", c.n_compiled, c.n_cached, c.n_damaged);
  cuda_compiled_free(&c);
  // a kernel NVRTC rejects
  StrBuf bad = {0};
  sb_append(&bad, preamble);
  sb_append(&bad, k_scale);
  const char *k_bad = "\n// ---------------------------------------------------------------- k1_add\n"
                      "extern \"C\" __global__ void k1_add(const NaoArgs a) { undeclared_thing = 1; }\n";
  sb_append(&bad, k_bad);
  rc = cuda_compile_net(&net, bad.data, &o, &c, err, sizeof err);
  CHECK(rc == -1 && strstr(err, "NVRTC could not compile kernel k1_add for sm_90") &&
            strstr(err, "undeclared_thing") && strstr(err, "kept in "),
        "failure message: %s", err);
  const char *kept = strstr(err, "kept in ");
  if (kept) {
    char file[1400];
    sscanf(kept + 8, "%1399s", file);
    size_t n;
    const char *why;
    char *text = nao_read_file(file, &n, &why);
    CHECK(text && strstr(text, "undeclared_thing") && strstr(text, "twice"),
          "the kept source %s is not the failing unit", file);
    free(text);
  }
  cuda_compiled_free(&c);
  sb_free(&bad);
  sb_free(&src);
}

int main(void) {
  if (!mkdtemp(root)) {
    perror("mkdtemp");
    return 1;
  }
  test_folder();
  test_entries();
  test_split();
  test_compile();
  char cmd[200];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", root);
  if (failures) {
    fprintf(stderr, "%d failures\n", failures);
    return 1;
  }
  printf("ok\n");
  return 0;
}
