// tests/tools/netcu_arch.c — net.cu for a network given by preset and arch
// tokens, without the .nao front end (emit_net_cu on a NetSpec):
//
//   netcu_arch DATASET CHANNELS LAYERS "ARCH TOKENS" OUT.cu [--aux W] [--no-fuse]
//
// DATASET: cifar10, imagenet, fashion-mnist. Prints the header statistics.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/emit_cuda.h"

int main(int argc, char **argv) {
  if (argc < 6) {
    fprintf(stderr, "usage: netcu_arch DATASET CHANNELS LAYERS \"ARCH\" OUT.cu [--aux W] [--no-fuse]\n");
    return 2;
  }
  const DatasetInfo *d = dataset_by_name(argv[1]);
  if (!d) {
    fprintf(stderr, "netcu_arch: unknown dataset %s\n", argv[1]);
    return 2;
  }
  NetSpec ns;
  netspec_init(&ns);
  netspec_apply_dataset(&ns, d->id);
  ns.channels = atoi(argv[2]);
  ns.layers = atoi(argv[3]);
  char err[1024];
  if (netspec_parse_arch(&ns, argv[4], err, sizeof err)) {
    fprintf(stderr, "netcu_arch: %s\n", err);
    return 1;
  }
  EmitCudaOptions opt;
  emit_cuda_defaults(&opt);
  for (int i = 6; i < argc; i++) {
    if (strcmp(argv[i], "--aux") == 0 && i + 1 < argc) ns.aux_weight = atof(argv[++i]);
    else if (strcmp(argv[i], "--no-fuse") == 0) opt.no_fuse = 1;
    else {
      fprintf(stderr, "netcu_arch: unknown option %s\n", argv[i]);
      return 2;
    }
  }
  StrBuf out = {0};
  const char *name = strrchr(argv[5], '/') ? strrchr(argv[5], '/') + 1 : argv[5];
  if (emit_net_cu(&ns, name, &opt, &out, err, sizeof err)) {
    fprintf(stderr, "netcu_arch: %s\n", err);
    return 1;
  }
  FILE *f = fopen(argv[5], "w");
  if (!f || fwrite(out.data, 1, out.len, f) != out.len || fclose(f) != 0) {
    perror(argv[5]);
    return 1;
  }
  // the header's statistics lines
  const char *p = out.data;
  for (int line = 0; line < 12 && p; line++) {
    const char *nl = strchr(p, '\n');
    if (strncmp(p, "// kernels", 10) == 0 || strncmp(p, "// program", 10) == 0 ||
        strncmp(p, "// param", 8) == 0)
      printf("%.*s\n", (int)(nl ? nl - p : (long)strlen(p)), p);
    p = nl ? nl + 1 : NULL;
  }
  sb_free(&out);
  return 0;
}
