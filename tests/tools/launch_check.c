// tests/tools/launch_check.c — runs runtime/launch.h's launcher as nao-train
// --gpus does, for tests/e2e/dist_launch.sh:
//   launch_check [--timeout S] [--grace S] [--nccl-id] N PROGRAM ARGS...
// prints "launch: status S failed_rank R hung H" and exits with S (2: bad
// usage, 70: the launcher could not start the children).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/dist.h"
#include "runtime/launch.h"

int main(int argc, char **argv) {
  LaunchOptions o;
  memset(&o, 0, sizeof o);
  o.prog = "launch_check";
  unsigned char id[DIST_NCCL_ID_BYTES];
  for (int i = 0; i < DIST_NCCL_ID_BYTES; i++) id[i] = (unsigned char)(i * 37 + 11);
  int a = 1;
  for (; a < argc && argv[a][0] == '-'; a++) {
    if (!strcmp(argv[a], "--nccl-id")) o.nccl_id = id;
    else if (!strcmp(argv[a], "--timeout") && a + 1 < argc) o.timeout = atof(argv[++a]);
    else if (!strcmp(argv[a], "--grace") && a + 1 < argc) o.grace = atof(argv[++a]);
    else break;
  }
  if (a + 1 >= argc) {
    fprintf(stderr, "usage: launch_check [--timeout S] [--grace S] [--nccl-id] N PROGRAM ARGS...\n");
    return 2;
  }
  o.n = atoi(argv[a]);
  o.argv = argv + a + 1;
  LaunchResult r;
  if (launch_run(&o, &r) != 0) {
    fprintf(stderr, "launch_check: %s\n", r.why);
    return 70;
  }
  printf("launch: status %d failed_rank %d hung %d\n", r.status, r.failed_rank, r.hung);
  return r.status;
}
