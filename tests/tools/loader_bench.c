// tests/tools/loader_bench.c — images per second of the loader on an
// ImageNet-format folder (bench/imagenet_pipeline.sh runs it beside the
// torchvision peer).
//
//   loader_bench DIR [--workers W] [--batch B] [--images N] [--eval]
//                [--no-dct] [--seed S]
//
// Times the delivery of N images after the first batch (so thread start-up
// and the first decodes are not counted, as in the peer), the consumer doing
// nothing but hand batches back. Prints one line: "images_per_sec X ...
// cpu_ms_per_image Y ..." (Y: CPU time of all threads over the same window).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "runtime/loader.h"

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

// CPU seconds of the whole process (all threads).
static double cpu(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

static void quiet(void *user, const char *msg) {
  (void)user, (void)msg;
}

int main(int argc, char **argv) {
  const char *dir = NULL;
  int workers = -1, batch = 64, images = 1000, train = 1, dct = 1;
  unsigned long long seed = 1;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : "";
    if (!strcmp(a, "--workers")) workers = atoi(v), i++;
    else if (!strcmp(a, "--batch")) batch = atoi(v), i++;
    else if (!strcmp(a, "--images")) images = atoi(v), i++;
    else if (!strcmp(a, "--seed")) seed = strtoull(v, NULL, 10), i++;
    else if (!strcmp(a, "--eval")) train = 0;
    else if (!strcmp(a, "--no-dct")) dct = 0;
    else if (a[0] != '-' && !dir) dir = a;
    else return fprintf(stderr, "loader_bench: unknown argument '%s'\n", a), 2;
  }
  if (!dir || batch < 1 || images < 1) {
    fprintf(stderr, "usage: loader_bench DIR [--workers W] [--batch B] [--images N] [--eval] [--no-dct]\n");
    return 2;
  }
  char err[1024];
  DataSourceOptions so = {.kind = DATA_IMAGENET, .dir = dir};
  DataSource *src;
  DataSet ds;
  if (data_source_open(&so, &src, err, sizeof err) != 0 ||
      data_set_open(src, train ? DATA_TRAIN : DATA_TEST, 0, 0, &ds, err, sizeof err) != 0)
    return fprintf(stderr, "loader_bench: %s\n", err), 1;
  LoaderOptions o;
  loader_options_default(&o, DATA_IMAGENET, train);
  o.batch = batch, o.workers = workers, o.seed = seed, o.shuffle = 1;
  o.aug.dct_scale = dct;
  o.warn = quiet;
  Loader *ld;
  if (loader_open(&ds, &o, &ld, err, sizeof err) != 0) return fprintf(stderr, "loader_bench: %s\n", err), 1;
  int epoch = 0, got = 0, first = 1;
  double t0 = 0, c0 = 0;
  loader_start_epoch(ld, epoch, err, sizeof err);
  while (got < images) {
    LoaderBatch *b;
    int rc = loader_next(ld, &b, err, sizeof err);
    if (rc < 0) return fprintf(stderr, "loader_bench: %s\n", err), 1;
    if (rc == 0) {
      loader_start_epoch(ld, ++epoch, err, sizeof err);
      continue;
    }
    if (first) t0 = now(), c0 = cpu(), first = 0;
    else got += b->n;
    loader_release(ld, b);
  }
  double dt = now() - t0, dc = cpu() - c0;
  printf("images_per_sec %.1f images %d seconds %.3f cpu_ms_per_image %.2f workers %d batch %d dct %d\n", got / dt,
         got, dt, dc * 1e3 / got, workers, batch, dct);
  loader_close(ld);
  data_set_close(&ds);
  data_source_close(src);
  return 0;
}
