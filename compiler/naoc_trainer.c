// compiler/naoc_trainer.c — naoc --trainer (naoc_trainer.h).
//
// The trainer is built by the same recipe as `make trainer` so that there is
// one way to build one: naoc finds the source tree it was built from through
// /proc/self/exe (ROOT/BUILD/naoc) and runs make there with absolute paths.
// An installed naoc without its source tree says so.
#include "compiler/naoc_trainer.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int absolute(const char *path, char *out, size_t n) {
  char dir[PATH_MAX], base[PATH_MAX], real[PATH_MAX];
  snprintf(dir, sizeof dir, "%s", path);
  snprintf(base, sizeof base, "%s", path);
  if (!realpath(dirname(dir), real)) return -1;
  return snprintf(out, n, "%s/%s", real, basename(base)) < (int)n ? 0 : -1;
}

int naoc_build_trainer(const char *nao_file, const char *out, const StrBuf *net_cu) {
  char exe[PATH_MAX];
  ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (len <= 0) {
    fprintf(stderr, "naoc: --trainer: cannot find this program's path: %s\n", strerror(errno));
    return NAO_EXIT_INTERNAL;
  }
  exe[len] = '\0';
  // exe = ROOT/BUILD/naoc: cut the last two components (dirname() edits its
  // argument, so each step works on its own copy)
  char tmp[PATH_MAX], build[PATH_MAX], root[PATH_MAX], build_name[PATH_MAX], probe[PATH_MAX + 32];
  snprintf(tmp, sizeof tmp, "%s", exe);
  snprintf(build, sizeof build, "%s", dirname(tmp));
  snprintf(tmp, sizeof tmp, "%s", build);
  snprintf(root, sizeof root, "%s", dirname(tmp));
  snprintf(tmp, sizeof tmp, "%s", build);
  snprintf(build_name, sizeof build_name, "%s", basename(tmp));
  snprintf(probe, sizeof probe, "%s/tools/trainer.sh", root);
  if (access(probe, X_OK) != 0) {
    fprintf(stderr,
            "naoc: --trainer builds with naoc's source tree (make trainer), and %s has none "
            "(no %s)\n",
            exe, probe);
    return NAO_EXIT_USAGE;
  }
  char out_abs[PATH_MAX], nao_abs[PATH_MAX], cu[PATH_MAX + 4];
  if (absolute(out, out_abs, sizeof out_abs) || absolute(nao_file, nao_abs, sizeof nao_abs)) {
    fprintf(stderr, "naoc: --trainer: cannot resolve '%s' or '%s': %s\n", out, nao_file, strerror(errno));
    return NAO_EXIT_INPUT;
  }
  snprintf(cu, sizeof cu, "%s.cu", out_abs);
  FILE *f = fopen(cu, "wb");
  if (!f || fwrite(net_cu->data, 1, net_cu->len, f) != net_cu->len || fclose(f) != 0) {
    fprintf(stderr, "naoc: cannot write '%s': %s\n", cu, strerror(errno));
    if (f) fclose(f);
    return NAO_EXIT_INPUT;
  }
  char a_build[PATH_MAX + 8], a_net[PATH_MAX + 8], a_nao[PATH_MAX + 8], a_out[PATH_MAX + 16];
  snprintf(a_build, sizeof a_build, "BUILD=%s", build_name);
  snprintf(a_net, sizeof a_net, "NET=%s", cu);
  snprintf(a_nao, sizeof a_nao, "NAO=%s", nao_abs);
  snprintf(a_out, sizeof a_out, "TRAINER=%s", out_abs);
  char *argv[] = {"make", "-C", root, "--no-print-directory", a_build, "trainer", a_net, a_nao, a_out, NULL};
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) {
    fprintf(stderr, "naoc: --trainer: fork: %s\n", strerror(errno));
    return NAO_EXIT_INTERNAL;
  }
  if (pid == 0) {
    execvp("make", argv);
    fprintf(stderr, "naoc: --trainer: cannot run make: %s\n", strerror(errno));
    _exit(127);
  }
  int st = 0;
  while (waitpid(pid, &st, 0) < 0)
    if (errno != EINTR) {
      fprintf(stderr, "naoc: --trainer: waitpid: %s\n", strerror(errno));
      return NAO_EXIT_INTERNAL;
    }
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
    fprintf(stderr, "naoc: --trainer: make trainer failed (net.cu kept in %s)\n", cu);
    return NAO_EXIT_INPUT;
  }
  return NAO_EXIT_OK;
}
