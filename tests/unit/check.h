// tests/unit/check.h — the few assertions the unit tests share.
//
// CHECK(cond, fmt, ...) records a failure with the place and goes on, so one
// run shows every broken case; check_done() prints the count and gives the
// exit status. Header-only: each test binary has its own counters.
#ifndef NAO_TEST_CHECK_H
#define NAO_TEST_CHECK_H

#include <stdio.h>

static int check_failures, check_count;

#define CHECK(cond, ...)                                                     \
  do {                                                                       \
    check_count++;                                                           \
    if (!(cond)) {                                                           \
      check_failures++;                                                      \
      fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
      fprintf(stderr, __VA_ARGS__);                                          \
      fputc('\n', stderr);                                                   \
    }                                                                        \
  } while (0)

static inline int check_done(const char *name) {
  printf("%s: %d checks, %d failed\n", name, check_count, check_failures);
  return check_failures ? 1 : 0;
}

#endif
