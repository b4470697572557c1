// search/search_report.h — what the search writes for people and tools: TSV
// tables of a round, summary.json, top/rank-N files, JSON-lines records.
// Internal to search_loop.c.
#ifndef NAO_SEARCH_REPORT_H
#define NAO_SEARCH_REPORT_H

#include <stddef.h>

#include "compiler/util.h"
#include "search/search.h"
#include "search/search_state.h"

// A JSON string literal for s, appended to sb.
void report_json_string(StrBuf *sb, const char *s);
// A JSON number, or null when not finite.
void report_json_number(StrBuf *sb, double x);

// round-RRR/archs.tsv: the architectures evaluated in a round (index into the
// pool, arch text, measured, predicted, file relative to out_dir; files[k]
// starts with out_dir/).
int report_round_archs(const char *path, const char *out_dir, const SearchSpace *sp, const ArchList *pool,
                       const int *idx, int n, char *const *files, char *err, size_t errlen);
// round-RRR/pool.tsv: the pool after the round's evaluation (sorted).
int report_pool(const char *path, const SearchSpace *sp, const ArchList *pool, char *err, size_t errlen);
// The best K of `ranked` (sorted, best first) as OUT/top/rank-N files and
// OUT/summary.json.
int report_summary(const SearchOptions *o, const SearchSpace *sp, const SearchState *st, const ArchList *ranked,
                   int finished, char *err, size_t errlen);

#endif
