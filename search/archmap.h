// search/archmap.h — a hash map from token sequences (fixed length per map) to
// an int: deduplication of architectures and table lookups.
#ifndef NAO_ARCHMAP_H
#define NAO_ARCHMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
  int len;          // tokens per key
  size_t cap, count;
  int *keys;        // (cap, len)
  int *vals;        // (cap)
  uint8_t *used;    // (cap)
} ArchMap;

void archmap_init(ArchMap *m, int len);
void archmap_free(ArchMap *m);
// The value stored for tok, or -1 when absent.
int archmap_get(const ArchMap *m, const int *tok);
// Stores val for tok (replacing an existing value).
void archmap_put(ArchMap *m, const int *tok, int val);
void archmap_clear(ArchMap *m);

#endif
