// tests/tools/st_compare.c — compares the tensors of two safetensors files
// byte for byte (the resume tests: a resumed run's weights against a straight
// run's).
//
//   st_compare A.safetensors B.safetensors [--prefix P]   (P: only names starting with P)
//
// Equal: same tensor names, dtypes, shapes and bytes (metadata ignored).
// Prints the first difference (tensor, element, both values for F32) and the
// number of differing tensors. Exit codes: 0 equal, 1 different or unreadable,
// 2 bad usage.
#include <stdio.h>
#include <string.h>

#include "runtime/safetensors.h"

static int selected(const char *name, const char *prefix) {
  return !prefix || strncmp(name, prefix, strlen(prefix)) == 0;
}

static int count_selected(const SafeTensors *st, const char *prefix) {
  int n = 0;
  for (int i = 0; i < st_count(st); i++) n += selected(st_at(st, i)->name, prefix);
  return n;
}

static int differs(const StTensor *a, const StTensor *b) {
  if (a->dtype != b->dtype || a->ndim != b->ndim ||
      memcmp(a->shape, b->shape, sizeof(int64_t) * (size_t)a->ndim) != 0) {
    printf("%s: dtype or shape differs\n", a->name);
    return 1;
  }
  if (memcmp(a->data, b->data, a->nbytes) == 0) return 0;
  size_t es = st_dtype_size(a->dtype), i = 0;
  while (i < a->nbytes / es && memcmp((const char *)a->data + i * es, (const char *)b->data + i * es, es) == 0) i++;
  if (a->dtype == ST_F32)
    printf("%s: element %zu differs: %.9g vs %.9g\n", a->name, i, (double)((const float *)a->data)[i],
           (double)((const float *)b->data)[i]);
  else
    printf("%s: element %zu differs\n", a->name, i);
  return 1;
}

int main(int argc, char **argv) {
  const char *prefix = NULL;
  if (argc == 5 && strcmp(argv[3], "--prefix") == 0) prefix = argv[4];
  else if (argc != 3) {
    fprintf(stderr, "usage: st_compare A.safetensors B.safetensors [--prefix P]\n");
    return 2;
  }
  SafeTensors *a, *b;
  char err[512];
  if (st_open(argv[1], &a, err, sizeof err) != 0 || st_open(argv[2], &b, err, sizeof err) != 0) {
    fprintf(stderr, "st_compare: %s\n", err);
    return 1;
  }
  int bad = 0, n = 0;
  for (int i = 0; i < st_count(a); i++) {
    const StTensor *ta = st_at(a, i);
    if (!selected(ta->name, prefix)) continue;
    n++;
    const StTensor *tb = st_find(b, ta->name);
    if (!tb) {
      printf("%s: only in %s\n", ta->name, argv[1]);
      bad++;
    } else {
      bad += differs(ta, tb);
    }
  }
  int nb = count_selected(b, prefix);
  if (nb != n) {
    printf("%s has %d tensors, %s %d\n", argv[1], n, argv[2], nb);
    bad++;
  }
  printf("%d tensors compared, %d differ\n", n, bad);
  st_close(a);
  st_close(b);
  return bad || n == 0 ? 1 : 0;
}
