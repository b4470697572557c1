// tests/tools/fuse_dump.c — print the fusion groups of a hand-built test
// network (tests/unit/emu_nets.c): `fuse_dump NAME [--no-fuse]`.
#include <stdio.h>
#include <string.h>

#include "compiler/fuse.h"
#include "tests/unit/emu_nets.h"

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: fuse_dump NAME [--no-fuse]\n");
    return 2;
  }
  const EmuNet *net = emu_net_find(argv[1]);
  if (!net) {
    fprintf(stderr, "fuse_dump: no test network %s\n", argv[1]);
    return 1;
  }
  TG t;
  emu_net_make(net, &t);
  FuseOptions fo = {.no_fuse = argc > 2 && strcmp(argv[2], "--no-fuse") == 0};
  FusePlan fp;
  char err[512];
  if (fuse_build(&t.g, &fo, &fp, err, sizeof err)) {
    fprintf(stderr, "fuse_dump: %s\n", err);
    tg_free(&t);
    return 1;
  }
  StrBuf sb = {0};
  fuse_dump(&fp, &sb);
  fputs(sb.data ? sb.data : "", stdout);
  sb_free(&sb);
  fuse_free(&fp);
  tg_free(&t);
  return 0;
}
