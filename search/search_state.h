// search/search_state.h — the search loop's state: the pool, every evaluation
// made, the phase, the RNG, and its file OUT/state.
//
// The state file is the commit point of the loop: it is replaced atomically
// at the end of every step, and a resumed run continues from exactly what it
// says. Architectures are stored in their text form (space_format), numbers
// with 17 significant digits so they read back bit for bit.
#ifndef NAO_SEARCH_STATE_H
#define NAO_SEARCH_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "runtime/rng.h"
#include "search/space.h"

typedef struct {
  int n, cap, len;
  int *tok;      // (cap, len)
  double *acc;   // measured accuracy; NAN: not evaluated yet
  double *pred;  // accuracy the controller predicted when it generated it; NAN for seeds
  int *born;     // round it entered the pool
} ArchList;

void archlist_init(ArchList *l, int len);
void archlist_free(ArchList *l);
void archlist_push(ArchList *l, const int *tok, double acc, double pred, int born);
void archlist_copy_item(ArchList *dst, const ArchList *src, int i);
// Stable sort by measured accuracy, best first (NAN last).
void archlist_sort_desc(ArchList *l);

typedef enum { PHASE_EVALUATE, PHASE_TRAIN, PHASE_GENERATE, PHASE_FINISHED } SearchPhase;

typedef struct {
  int round;
  SearchPhase phase;
  long evaluations;      // architectures scored so far
  int evaluator_ready;   // round whose begin_round completed (stateful evaluators), -1 none
  Rng rng;               // the loop's random stream (controller training)
  uint64_t log_size;     // committed length of log.jsonl
  char controller[256];  // file of the last committed controller, relative to OUT; "" = fresh
  ArchList pool;         // what the controller trains on; evaluation order in EVALUATE
  ArchList history;      // every evaluation, in the order made
} SearchState;

void search_state_init(SearchState *s, int len);
void search_state_free(SearchState *s);
const char *search_phase_name(SearchPhase p);

// Writes OUT/state atomically. Returns 0 or -1 with a message.
int search_state_save(const SearchState *s, const SearchSpace *sp, const char *out, char *err, size_t errlen);
// Reads OUT/state. Returns 0 or -1 with a message naming the file and line.
int search_state_load(SearchState *s, const SearchSpace *sp, const char *out, char *err, size_t errlen);

#endif
