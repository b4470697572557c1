// search/par.c — par_run (par.h) on POSIX threads.
#include "search/par.h"

#include <pthread.h>
#include <stdlib.h>

#include "compiler/util.h"

enum { PAR_MAX = 64 };

typedef struct {
  ParFn fn;
  void *ctx;
  int k;
} ParTask;

static void *par_main(void *arg) {
  ParTask *t = arg;
  t->fn(t->ctx, t->k);
  return NULL;
}

void par_run(int n, ParFn fn, void *ctx) {
  NAO_ASSERT(n >= 1 && n <= PAR_MAX);
  ParTask task[PAR_MAX];
  pthread_t th[PAR_MAX];
  int started[PAR_MAX] = {0};
  for (int k = 1; k < n; k++) {
    task[k] = (ParTask){fn, ctx, k};
    started[k] = pthread_create(&th[k], NULL, par_main, &task[k]) == 0;
  }
  fn(ctx, 0);
  for (int k = 1; k < n; k++) {
    if (started[k]) {
      int rc = pthread_join(th[k], NULL);
      if (rc != 0) nao_internal("pthread_join failed (%d)", rc);
    } else {
      fn(ctx, k);
    }
  }
}
