// tests/tools/nvrtc_check.c — compile every kernel of net.cu files with NVRTC.
//
//   nvrtc_check [--arch sm_90,sm_80] [--report FILE] NET.cu...
//
// For each file and architecture: the whole file is compiled as NVRTC sees it
// (__CUDACC_RTC__ defined, so the plan section is skipped) with
// --ptxas-options=-v; apart from ptxas's report the log must be empty (no
// warning or error from the front end or ptxas); the report gives every
// kernel's registers, shared memory, stack frame and spills, written to the
// report file (one line per kernel and architecture). Any spill or stack frame
// (local memory) fails, and so does a kernel of the file missing from the
// report. Exit: 0 all good, 1 a check failed (or NVRTC is missing: the
// message says how to provide it), 2 bad usage.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/util.h"
#include "runtime/nvrtc.h"

static int count_kernels(const char *src) {
  int n = 0;
  for (const char *p = strstr(src, "extern \"C\" __global__"); p;
       p = strstr(p + 1, "extern \"C\" __global__"))
    n++;
  return n;
}

static const char *base_name(const char *path) {
  const char *s = strrchr(path, '/');
  return s ? s + 1 : path;
}

// The log minus ptxas's verbose report: warnings and errors, if any.
static void other_lines(const char *log, StrBuf *out) {
  for (const char *line = log; line && *line;) {
    const char *nl = strchr(line, '\n');
    size_t len = nl ? (size_t)(nl - line) : strlen(line);
    int report = 0;
    if (len > 5 && strncmp(line, "ptxas", 5) == 0) {  // "ptxas info    : ..." or "ptxas   .  ..."
      size_t i = 5;
      while (i < len && line[i] == ' ') i++;
      report = (i < len && line[i] == '.') || (len - i >= 4 && strncmp(line + i, "info", 4) == 0);
    }
    int blank = 1;
    for (size_t i = 0; i < len; i++)
      if (line[i] != ' ' && line[i] != '\r' && line[i] != '\t') blank = 0;
    if (!report && !blank) {
      sb_appendn(out, line, len);
      sb_append(out, "\n");
    }
    line = nl ? nl + 1 : NULL;
  }
}

static int check_arch(NvrtcLib *lib, const char *path, const char *src, const char *arch,
                      FILE *rep) {
  char err[8192];
  const char *name = base_name(path);
  NvrtcOutput out;
  const char *verbose[1] = {"--ptxas-options=-v"};
  if (nvrtc_compile(lib, name, src, arch, verbose, 1, &out, err, sizeof err)) {
    fprintf(stderr, "nvrtc_check: %s: %s\n", path, err);
    nvrtc_output_free(&out);
    return 1;
  }
  int bad = 0;
  StrBuf other = {0};
  other_lines(out.log, &other);
  if (other.len) {
    fprintf(stderr, "nvrtc_check: %s (%s): the log is not empty:\n%s", path, arch, other.data);
    bad = 1;
  }
  sb_free(&other);
  PtxasInfo *info = NULL;
  int n = nvrtc_parse_ptxas(out.log, &info);
  int want = count_kernels(src);
  if (n < 0) {
    fprintf(stderr, "nvrtc_check: %s (%s): no ptxas report in the log:\n%s\n", path, arch, out.log);
    bad = 1;
    n = 0;
  } else if (n != want) {
    fprintf(stderr, "nvrtc_check: %s (%s): ptxas reported %d kernels, the file has %d\n", path,
            arch, n, want);
    bad = 1;
  }
  int max_regs = 0, spills = 0;
  for (int i = 0; i < n; i++) {
    const PtxasInfo *k = &info[i];
    fprintf(rep, "%-8s %-64s regs %3d  smem %6d  stack %4d  spill-st %4d  spill-ld %4d  barriers %d\n",
            arch, k->name, k->registers, k->smem_bytes, k->stack_bytes, k->spill_stores,
            k->spill_loads, k->barriers);
    if (k->registers > max_regs) max_regs = k->registers;
    if (k->spill_stores || k->spill_loads || k->stack_bytes) {
      fprintf(stderr, "nvrtc_check: %s (%s): kernel %s uses local memory: %d bytes stack, %d/%d bytes spilled\n",
              path, arch, k->name, k->stack_bytes, k->spill_stores, k->spill_loads);
      spills++;
    }
  }
  printf("%s (%s): %d kernels, log %s, at most %d registers, %d using local memory\n", name, arch,
         n, bad ? "NOT empty" : "empty", max_regs, spills);
  free(info);
  nvrtc_output_free(&out);
  return bad || spills;
}

int main(int argc, char **argv) {
  const char *archs = "sm_90,sm_80", *report = NULL;
  int first = 1;
  for (; first < argc && argv[first][0] == '-'; first++) {
    if (strcmp(argv[first], "--arch") == 0 && first + 1 < argc) archs = argv[++first];
    else if (strcmp(argv[first], "--report") == 0 && first + 1 < argc) report = argv[++first];
    else {
      fprintf(stderr, "usage: nvrtc_check [--arch sm_90,sm_80] [--report FILE] NET.cu...\n");
      return 2;
    }
  }
  if (first >= argc) {
    fprintf(stderr, "usage: nvrtc_check [--arch sm_90,sm_80] [--report FILE] NET.cu...\n");
    return 2;
  }
  char err[4096];
  NvrtcLib *lib = nvrtc_open(err, sizeof err);
  if (!lib) {
    fprintf(stderr, "nvrtc_check: %s\n", err);
    return 1;
  }
  int major = 0, minor = 0;
  if (nvrtc_version(lib, &major, &minor, err, sizeof err)) {
    fprintf(stderr, "nvrtc_check: %s\n", err);
    nvrtc_close(lib);
    return 1;
  }
  FILE *rep = report ? fopen(report, "w") : stdout;
  if (!rep) {
    perror(report);
    nvrtc_close(lib);
    return 1;
  }
  fprintf(rep, "# NVRTC %d.%d (%s)\n", major, minor, nvrtc_path(lib));
  int bad = 0;
  for (int i = first; i < argc; i++) {
    size_t len = 0;
    const char *why = NULL;
    char *src = nao_read_file(argv[i], &len, &why);
    if (!src) {
      fprintf(stderr, "nvrtc_check: %s: %s\n", argv[i], why);
      bad = 1;
      continue;
    }
    fprintf(rep, "# %s\n", base_name(argv[i]));
    char list[256];
    snprintf(list, sizeof list, "%s", archs);
    for (char *a = strtok(list, ","); a; a = strtok(NULL, ",")) bad |= check_arch(lib, argv[i], src, a, rep);
    free(src);
  }
  if (report) fclose(rep);
  nvrtc_close(lib);
  return bad ? 1 : 0;
}
