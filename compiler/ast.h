// compiler/ast.h — the syntax tree of a .nao file: what the user wrote, where.
//
// The parser builds it; sema reads it into a NetSpec and a NetSpecLocs (the
// places of every setting, cell, node and branch, kept for later stages).
//
// Memory: every node lives in one Arena owned by the compilation and is freed
// with it at once. Token texts are not copied: an AstTok points into the
// source text (which outlives the tree) and carries its length, so a huge
// input costs no allocation per token. Lists are capped (AST_MAX_ITEMS,
// AST_MAX_LIST): beyond the cap items are counted but not stored, which bounds
// memory on any input; more than a handful of items is an error anyway.
#ifndef NAO_AST_H
#define NAO_AST_H

#include <stdint.h>

#include "compiler/source.h"
#include "compiler/util.h"

enum {
  AST_MAX_ITEMS = 64,  // network blocks and cells stored per file
  AST_MAX_LIST = 64,   // settings per block, nodes per cell stored
};

typedef enum {
  AST_TOK_NONE = 0,  // absent (an optional name not given)
  AST_TOK_IDENT,     // [A-Za-z_][A-Za-z0-9_]*, '-' allowed between parts
  AST_TOK_NUMBER,    // an optional sign, digits, an optional fraction and exponent
  AST_TOK_STRING,    // "...": text is the contents without the quotes
  AST_TOK_DIMS,      // 3x32x32: digits joined by 'x'
} AstTokKind;

typedef struct {
  AstTokKind kind;
  const char *text;  // into the source text; not NUL-terminated
  uint32_t len;
  NaoLoc loc;        // the whole token (a string's quotes included)
  int bad;           // the scanner already reported a problem with it
} AstTok;

typedef struct AstSetting {
  AstTok name, value;
  NaoLoc loc;        // name .. ';'
  struct AstSetting *next;
} AstSetting;

typedef struct {
  AstTok op;         // an identifier
  AstTok input;      // a number
  NaoLoc loc;        // op .. ')'
} AstBranch;

typedef struct AstNode {
  AstTok id;         // the number after `node`
  AstBranch branch[2];
  NaoLoc loc;        // `node` .. ';'
  struct AstNode *next;
} AstNode;

typedef struct {
  AstSetting *head, *tail;
  int n;             // count, stored or not
  int broken;        // a syntax error inside: an entry was skipped
} AstSettingList;

typedef struct {
  AstNode *head, *tail;
  int n;
  int broken;
} AstNodeList;

typedef enum { AST_CELL_NODES, AST_CELL_TOKENS } AstCellForm;

typedef struct AstCell {
  AstTok kind;       // `normal` or `reduction` (checked by sema)
  AstCellForm form;
  AstNodeList nodes; // form NODES
  AstTok tokens;     // form TOKENS: the string of arch tokens
  NaoLoc keyword;    // `cell`
  NaoLoc open, close;// the braces (form NODES); close is empty when missing
  int broken;        // a syntax error inside: the node list is incomplete
  NaoLoc loc;        // `cell` .. '}' or ';'
  struct AstCell *next;
} AstCell;

typedef struct AstNetwork {
  AstTok name;       // kind NONE when the block has no name
  AstSettingList settings;
  NaoLoc keyword, open, close;
  int broken;
  NaoLoc loc;
  struct AstNetwork *next;
} AstNetwork;

typedef struct {
  AstNetwork *networks, *networks_tail;
  AstCell *cells, *cells_tail;
  int n_networks, n_cells;  // counts, stored or not
  int syntax_errors;        // errors of the scanner and the parser
  NaoLoc end;               // the end of the last token (for "missing" errors)
} AstFile;

void ast_settings_append(AstSettingList *l, AstSetting *s);
void ast_nodes_append(AstNodeList *l, AstNode *n);
void ast_file_add_network(AstFile *f, AstNetwork *n);
void ast_file_add_cell(AstFile *f, AstCell *c);

// Token helpers: comparison with a C string, copying into a buffer.
int ast_tok_is(const AstTok *t, const char *s);
// Copies the token text into buf (NUL-terminated). Returns 0, or -1 when it
// does not fit (buf then holds a truncated copy ending in "...").
int ast_tok_copy(const AstTok *t, char *buf, size_t cap);

#endif
