/* grammar/nao.y — the grammar of the .nao language (bison).
 *
 * A pure, reentrant LALR(1) parser with locations (NaoLoc byte ranges) and
 * lookahead correction (LAC), so the "expected ..." lists of syntax errors
 * are exact. Errors are reported by yyreport_syntax_error (parse.error
 * custom): it words them in the language's own terms ("expected ';' after
 * '36'") and adds a note where an unclosed block opened.
 *
 * Error recovery: a bad setting or node is skipped up to its ';'; a block
 * whose '}' is missing ends at the next 'network' or 'cell' keyword or at the
 * end of the file; garbage between blocks is skipped up to a ';' or '}' or
 * the next keyword. Recovered blocks are marked broken so that sema does not
 * report what the syntax error already explains.
 *
 * Memory: AST nodes come from the compilation's Arena and tokens point into
 * the source, so a value dropped during error recovery owns nothing; the
 * %destructor below says so for every typed symbol (there is nothing to free,
 * by design, rather than by omission).
 *
 * The EBNF in docs/language.md matches these rules one to one.
 */
%require "3.8"
%define api.pure full
%define api.prefix {nao_yy}
%define api.location.type {NaoLoc}
%define parse.error custom
%define parse.lac full
%locations
%expect 0
%param {yyscan_t scanner}
%parse-param {NaoParse *ctx}

%code requires {
#include "compiler/ast.h"
#include "compiler/parse.h"
#ifndef YY_TYPEDEF_YY_SCANNER_T
#define YY_TYPEDEF_YY_SCANNER_T
typedef void *yyscan_t;
#endif
}

%code {
#include <string.h>

int nao_yylex(NAO_YYSTYPE *yylval, NaoLoc *yylloc, yyscan_t scanner);
static void nao_yyerror(NaoLoc *loc, yyscan_t scanner, NaoParse *ctx, const char *msg);

// A rule's location spans its symbols; an empty rule sits at the end of the
// symbol before it.
#define YYLLOC_DEFAULT(Cur, Rhs, N)                          \
  do {                                                       \
    if (N) {                                                 \
      (Cur).begin = YYRHSLOC(Rhs, 1).begin;                  \
      (Cur).end = YYRHSLOC(Rhs, N).end;                      \
    } else {                                                 \
      (Cur).begin = (Cur).end = YYRHSLOC(Rhs, 0).end;        \
    }                                                        \
  } while (0)

static void *node_new(NaoParse *ctx, size_t n) { return arena_alloc(ctx->arena, n); }
static void block_open(NaoParse *ctx, NaoLoc open, const char *what) {
  ctx->block_active = 1;
  ctx->block_open = open;
  ctx->block_what = what;
}
}

%union {
  AstTok tok;
  AstSetting *setting;
  AstSettingList settings;
  AstBranch branch;
  AstNode *node;
  AstNodeList nodes;
  AstCell *cell;
  AstNetwork *network;
}

%token KW_NETWORK "network" KW_CELL "cell" KW_NODE "node"
%token <tok> IDENT "identifier" NUMBER "number" STRING "string" DIMS "shape"

%type <tok> opt_name value
%type <setting> setting
%type <settings> settings
%type <branch> branch
%type <node> node
%type <nodes> nodes
%type <cell> cell cell_open
%type <network> network network_open

%destructor { (void)$$; /* tokens point into the source: nothing to free */ } <tok> <branch>
%destructor { (void)$$; /* arena-owned: freed with the whole tree */ } <setting> <settings> <node> <nodes> <cell> <network>

%%

file
  : %empty
  | file item
  ;

item
  : network             { ast_file_add_network(ctx->file, $1); }
  | cell                { ast_file_add_cell(ctx->file, $1); }
  /* Garbage between blocks is skipped to a ';', a '}' or the next keyword.
     No yyerrok here: what follows is likely more of the same (the body of a
     cell whose header broke), so bison's usual quiet period applies. */
  | error ';'
  | error '}'
  | error
  ;

/* ---------------------------------------------------------------- network */

network_open
  : "network" opt_name '{'
      {
        $$ = node_new(ctx, sizeof *$$);
        $$->keyword = @1;
        $$->name = $2;
        $$->open = @3;
        block_open(ctx, @3, "the network block");
      }
  ;

network
  : network_open settings '}'
      { $$ = $1; $$->settings = $2; $$->close = @3; $$->broken = $2.broken; $$->loc = nao_loc_span(@1, @3); ctx->block_active = 0; }
  | network_open settings error '}'
      { $$ = $1; $$->settings = $2; $$->close = @4; $$->broken = 1; $$->loc = nao_loc_span(@1, @4); ctx->block_active = 0; }
  | network_open settings error
      { $$ = $1; $$->settings = $2; $$->broken = 1; $$->loc = nao_loc_span(@1, @3); ctx->block_active = 0; }
  ;

opt_name
  : %empty              { $$ = (AstTok){0}; $$.loc = @$; }
  | IDENT               { $$ = $1; }
  ;

settings
  : %empty              { $$ = (AstSettingList){0}; }
  | settings setting    { $$ = $1; ast_settings_append(&$$, $2); }
  | settings error ';'  { $$ = $1; $$.broken = 1; yyerrok; }
  ;

setting
  : IDENT value ';'
      {
        $$ = $1.bad ? NULL : node_new(ctx, sizeof *$$);
        if ($$) {
          $$->name = $1;
          $$->value = $2;
          $$->loc = nao_loc_span(@1, @3);
        }
      }
  ;

value
  : NUMBER | IDENT | STRING | DIMS
  ;

/* ---------------------------------------------------------------- cells */

cell_open
  : "cell" IDENT
      {
        $$ = node_new(ctx, sizeof *$$);
        $$->keyword = @1;
        $$->kind = $2;
      }
  ;

cell
  : cell_open '=' STRING ';'
      { $$ = $1; $$->form = AST_CELL_TOKENS; $$->tokens = $3; $$->loc = nao_loc_span(@1, @4); }
  | cell_open '{' { block_open(ctx, @2, "the cell"); } nodes cell_close
      {
        $$ = $1;
        $$->form = AST_CELL_NODES;
        $$->open = @2;
        $$->nodes = $4;
        $$->loc = nao_loc_span(@1, @5);
        $$->close = @5;
        if ($5.loc.begin == $5.loc.end) { $$->broken = 1; $$->close = (NaoLoc){0, 0}; }
        if ($4.broken) $$->broken = 1;
        ctx->block_active = 0;
      }
  ;

/* '}', or an error that ends the cell: the value says which (an empty range
   for the error). */
%type <tok> cell_close;
cell_close
  : '}'                 { $$ = (AstTok){0}; $$.loc = @1; }
  | error '}'           { $$ = (AstTok){0}; $$.loc = (NaoLoc){@2.begin, @2.begin}; }
  | error               { $$ = (AstTok){0}; $$.loc = (NaoLoc){@1.end, @1.end}; }
  ;

nodes
  : %empty              { $$ = (AstNodeList){0}; }
  | nodes node          { $$ = $1; ast_nodes_append(&$$, $2); }
  | nodes error ';'     { $$ = $1; $$.n++; $$.broken = 1; yyerrok; }
  ;

node
  : "node" NUMBER '=' branch '+' branch ';'
      {
        $$ = node_new(ctx, sizeof *$$);
        $$->id = $2;
        $$->branch[0] = $4;
        $$->branch[1] = $6;
        $$->loc = nao_loc_span(@1, @7);
      }
  ;

branch
  : IDENT '(' NUMBER ')'
      { $$ = (AstBranch){$1, $3, nao_loc_span(@1, @4)}; }
  ;

%%

// ---------------------------------------------------------------- syntax errors

// How a token kind reads in "expected ..." lists.
static const char *expected_name(yysymbol_kind_t k) {
  switch (k) {
    case YYSYMBOL_YYEOF: return "the end of the file";
    case YYSYMBOL_IDENT: return "a name";
    case YYSYMBOL_NUMBER: return "a number";
    case YYSYMBOL_STRING: return "a string";
    case YYSYMBOL_DIMS: return "a shape (3x32x32)";
    case YYSYMBOL_KW_NETWORK: return "'network'";
    case YYSYMBOL_KW_CELL: return "'cell'";
    case YYSYMBOL_KW_NODE: return "'node'";
    default: return yysymbol_name(k);
  }
}

// How the token that was found reads: its kind and, for names and numbers,
// its text (cut to 32 characters).
static void describe_found(NaoParse *ctx, yysymbol_kind_t k, NaoLoc loc, StrBuf *sb) {
  const char *text = ctx->src->text + loc.begin;
  int len = (int)(loc.end - loc.begin);
  if (len > 32) len = 32;
  switch (k) {
    case YYSYMBOL_YYEOF: sb_append(sb, "the end of the file"); break;
    case YYSYMBOL_IDENT: sb_printf(sb, "'%.*s'", len, text); break;
    case YYSYMBOL_NUMBER: sb_printf(sb, "number %.*s", len, text); break;
    case YYSYMBOL_DIMS: sb_printf(sb, "shape %.*s", len, text); break;
    case YYSYMBOL_STRING: sb_append(sb, "a string"); break;
    default: sb_append(sb, expected_name(k)); break;
  }
}

static int same_line(NaoParse *ctx, uint32_t a, uint32_t b) {
  if (a > b) { uint32_t t = a; a = b; b = t; }
  return memchr(ctx->src->text + a, '\n', b - a) == NULL;
}

static int yyreport_syntax_error(const yypcontext_t *yyctx, yyscan_t scanner, NaoParse *ctx) {
  (void)scanner;
  enum { MAX_EXPECTED = 8 };
  yysymbol_kind_t exp[MAX_EXPECTED];
  int n = yypcontext_expected_tokens(yyctx, exp, MAX_EXPECTED);
  if (n < 0) return n;
  yysymbol_kind_t found = yypcontext_token(yyctx);
  NaoLoc loc = *yypcontext_location(yyctx);
  int want_semi = 0, want_close = 0;
  for (int i = 0; i < n; i++) {
    want_semi |= exp[i] == YYTRANSLATE(';');
    want_close |= exp[i] == YYTRANSLATE('}');
  }
  StrBuf sb = {0};
  NaoLoc prev = ctx->prev_tok;
  int have_prev = prev.end > prev.begin && prev.end <= loc.begin;
  // A ';' missing at the end of a line reads best at that line's end; so does
  // whatever is missing at the end of the file.
  int at_prev = have_prev && (found == YYSYMBOL_YYEOF || (want_semi && !same_line(ctx, prev.end, loc.begin)));
  if (n == 0) {
    sb_append(&sb, "unexpected ");
    describe_found(ctx, found, loc, &sb);
  } else {
    // The end of the file, when expected, reads best last.
    for (int i = 0; i + 1 < n; i++)
      if (exp[i] == YYSYMBOL_YYEOF) {
        memmove(&exp[i], &exp[i + 1], (size_t)(n - i - 1) * sizeof exp[0]);
        exp[n - 1] = YYSYMBOL_YYEOF;
        break;
      }
    sb_append(&sb, "expected ");
    for (int i = 0; i < n; i++) {
      if (i) sb_append(&sb, i == n - 1 ? " or " : ", ");
      sb_append(&sb, expected_name(exp[i]));
    }
    if (at_prev && found != YYSYMBOL_YYEOF) {
      int len = (int)(prev.end - prev.begin);
      sb_printf(&sb, " after '%.*s'", len > 32 ? 32 : len, ctx->src->text + prev.begin);
    } else {
      sb_append(&sb, ", found ");
      describe_found(ctx, found, loc, &sb);
    }
  }
  NaoLoc at = at_prev ? (NaoLoc){prev.end, prev.end} : loc;
  nao_parse_error(ctx, at, "%s", sb.data);
  sb_free(&sb);
  if (want_close && ctx->block_active &&
      (found == YYSYMBOL_YYEOF || found == YYSYMBOL_KW_CELL || found == YYSYMBOL_KW_NETWORK))
    diag_note(ctx->diag, ctx->block_open, "%s opened here is not closed", ctx->block_what);
  return 0;
}

// Bison's own messages ("memory exhausted"): not syntax errors of the input.
static void nao_yyerror(NaoLoc *loc, yyscan_t scanner, NaoParse *ctx, const char *msg) {
  (void)scanner;
  nao_parse_error(ctx, *loc, "%s", msg);
}
