// tests/tools/cuda_test_nets.c — net.cu files of the hand-built test networks
// (tests/unit/emu_nets.c), for the golden tests and the NVRTC check.
//
//   cuda_test_nets write DIR   writes DIR/NAME.cu for every network
//   cuda_test_nets check DIR   compares them with DIR/NAME.cu; prints a diff hint
//   cuda_test_nets list        the network names
// Exit 0 ok, 1 a difference or an error, 2 bad usage.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/emit_cuda.h"
#include "tests/unit/emu_nets.h"

static int make_text(const EmuNet *net, StrBuf *out, char *err, size_t errlen) {
  TG t;
  emu_net_make(net, &t);
  EmitCudaOptions opt;
  emit_cuda_defaults(&opt);
  opt.train = net->mode == IR_MODE_TRAIN;
  char src[128];
  snprintf(src, sizeof src, "tests/unit/emu_nets.c:%s", net->name);
  CudaNetBuild *b = cuda_net_new(&t.pt, src, &opt);
  int rc = cuda_net_add_graph(b, &t.g, opt.train ? "train" : "eval", err, errlen);
  if (!rc) {
    if (opt.train) cuda_net_add_update(b);
    cuda_net_write(b, out);
  }
  cuda_net_free(b);
  tg_free(&t);
  return rc;
}

int main(int argc, char **argv) {
  if (argc < 2 || (strcmp(argv[1], "list") != 0 && argc < 3)) {
    fprintf(stderr, "usage: cuda_test_nets write|check DIR | list\n");
    return 2;
  }
  int write = strcmp(argv[1], "write") == 0, check = strcmp(argv[1], "check") == 0;
  if (strcmp(argv[1], "list") == 0) {
    for (int i = 0; i < emu_net_count(); i++) printf("%s\n", emu_net_at(i)->name);
    return 0;
  }
  if (!write && !check) {
    fprintf(stderr, "usage: cuda_test_nets write|check DIR | list\n");
    return 2;
  }
  int bad = 0;
  for (int i = 0; i < emu_net_count(); i++) {
    const EmuNet *net = emu_net_at(i);
    char path[1024], err[1024];
    snprintf(path, sizeof path, "%s/%s.cu", argv[2], net->name);
    StrBuf text = {0};
    if (make_text(net, &text, err, sizeof err)) {
      fprintf(stderr, "cuda_test_nets: %s: %s\n", net->name, err);
      bad = 1;
      sb_free(&text);
      continue;
    }
    if (write) {
      FILE *f = fopen(path, "w");
      if (!f || fwrite(text.data, 1, text.len, f) != text.len || fclose(f) != 0) {
        perror(path);
        bad = 1;
      }
    } else {
      size_t len = 0;
      const char *why = NULL;
      char *old = nao_read_file(path, &len, &why);
      if (!old) {
        fprintf(stderr, "cuda_test_nets: %s: %s\n", path, why);
        bad = 1;
      } else if (len != text.len || memcmp(old, text.data, len) != 0) {
        fprintf(stderr, "cuda_test_nets: %s differs from what naoc emits now; review with "
                        "`%s write DIR` and git diff\n", path, argv[0]);
        bad = 1;
      }
      free(old);
    }
    sb_free(&text);
  }
  return bad;
}
