// tests/unit/spec_eq.h — field-by-field NetSpec comparison for the tests
// (memcmp would also compare padding).
#ifndef NAO_TEST_SPEC_EQ_H
#define NAO_TEST_SPEC_EQ_H

#include <stddef.h>

#include "compiler/netspec.h"

// 1 when equal; otherwise 0 and the first difference in why.
int spec_equal(const NetSpec *a, const NetSpec *b, char *why, size_t cap);

#endif
