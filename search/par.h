// search/par.h — run a function on k = 0..n-1 at once, one thread each (k = 0
// in the caller), and wait for all. The controller splits a batch this way.
#ifndef NAO_PAR_H
#define NAO_PAR_H

typedef void (*ParFn)(void *ctx, int k);

// 1 <= n <= 64. If a thread cannot be started, its share runs in the caller after the
// others: slower, never wrong.
void par_run(int n, ParFn fn, void *ctx);

#endif
