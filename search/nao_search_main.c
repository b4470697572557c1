// search/nao_search_main.c — the nao-search command: options (search_opts.c),
// then the search loop (search_loop.c). Exit codes: 0 done, 1 bad input
// (table, command, run folder, a failed training, collect with runs not
// finished), 2 bad usage, 3 a job list waits to be run (--evaluator full
// --job-list; then `nao-search collect`), 70 internal error.
#include <stdio.h>

#include "compiler/util.h"
#include "search/search.h"

int main(int argc, char **argv) {
  SearchOptions o;
  int rc = search_options_parse(argc, argv, &o);
  if (rc < 0) return NAO_EXIT_OK;  // --help
  if (rc) return rc;
  rc = search_run(&o);
  search_options_free(&o);
  return rc;
}
