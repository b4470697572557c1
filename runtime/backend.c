// runtime/backend.c — backend selection and the helpers every backend shares.
#include "runtime/backend.h"

#include <stdio.h>
#include <string.h>

static const char *const kind_names[BACKEND_KIND_COUNT] = {"cpu", "cuda"};

int backend_kind_parse(const char *name) {
  for (int k = 0; k < BACKEND_KIND_COUNT; k++)
    if (strcmp(name, kind_names[k]) == 0) return k;
  return -1;
}

const char *backend_kind_name(BackendKind k) {
  return k >= 0 && k < BACKEND_KIND_COUNT ? kind_names[k] : "?";
}

Backend *backend_create(BackendKind kind, const NetBuild *nb, ModelState *host,
                        const BackendOptions *opt, char *err, size_t errlen) {
  switch (kind) {
    case BACKEND_CPU: return backend_cpu_create(nb, host, opt, err, errlen);
    case BACKEND_CUDA: return backend_cuda_create(nb, host, opt, err, errlen);
    default: break;
  }
  snprintf(err, errlen, "unknown backend %d", (int)kind);
  return NULL;
}

void backend_destroy(Backend *b) {
  if (b) b->ops->destroy(b);
}

void backend_topk(const float *logits, size_t ld, int n, int k, const int32_t *labels, int *top1,
                  int *top5) {
  *top1 = *top5 = 0;
  for (int i = 0; i < n; i++) {
    const float *row = logits + (size_t)i * ld;
    int y = labels[i];
    if (y < 0 || y >= k) continue;
    int larger = 0;
    for (int j = 0; j < k; j++) larger += row[j] > row[y];
    *top1 += larger < 1;
    *top5 += larger < 5;
  }
}
