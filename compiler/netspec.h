// compiler/netspec.h — a network as the compiler understands it, free of syntax.
//
// A NetSpec is what a .nao file means once checked: the backbone settings and the
// two cells as NAO arch tokens (x_in x_op y_in y_op per node). It is the contract
// between the front end (which builds it from a file), the search (which builds
// it from token sequences and writes it back as .nao text) and the lowering to
// the IR (which consumes it). NetLayout is the shape inference over it: every
// cell's input and output sizes and channels, computed once, used by the checks,
// the lowering and the drawings alike.
//
// Everything here is plain data and pure functions: no allocation, no globals.
#ifndef NAO_NETSPEC_H
#define NAO_NETSPEC_H

#include <stddef.h>

enum {
  NAO_MAX_NODES = 16,                    // B
  NAO_MAX_STATES = NAO_MAX_NODES + 2,    // ids 0..B+1
  NAO_MAX_LAYERS = 64,                   // N
  NAO_MAX_CELLS = 3 * NAO_MAX_LAYERS + 2,
  NAO_MAX_CHANNELS = 8192,               // F
  NAO_MAX_CLASSES = 1000000,
  NAO_MAX_IMAGE = 8192,                  // input height and width
  NAO_MAX_IN_CHANNELS = 64,
  NAO_NAME_MAX = 64,
};

typedef enum { CELL_NORMAL = 0, CELL_REDUCTION = 1 } CellKind;
typedef enum { STEM_CIFAR = 0, STEM_IMAGENET = 1 } StemKind;
typedef enum {
  DATASET_NONE = 0,  // explicit input shape and class count
  DATASET_CIFAR10,
  DATASET_IMAGENET,
  DATASET_FASHION_MNIST,
} DatasetPreset;

typedef struct {
  int x_in, x_op, y_in, y_op;  // input ids 0..b+1 for node b; op ids of ops.h
} NetNode;

typedef struct {
  int n_nodes;
  NetNode node[NAO_MAX_NODES];
} NetCell;

typedef struct {
  char name[NAO_NAME_MAX];   // the network's name ("" when the file gives none)
  DatasetPreset dataset;
  int in_channels, in_height, in_width;
  int classes;
  StemKind stem;
  int channels;             // F: channels of the first stage's cells
  int layers;               // N: normal cells per stage; cells = 3N + 2
  int nodes;                // B
  double aux_weight;        // weight of the auxiliary loss; 0: no auxiliary head
  double drop_path_keep;    // keep probability at the end of training; 1: off
  double dropout_keep;      // keep probability before the classifier; 1: off
  NetCell cell[2];          // indexed by CellKind
} NetSpec;

// ---------------------------------------------------------------- presets

typedef struct {
  DatasetPreset id;
  const char *name;          // "cifar10", "imagenet", "fashion-mnist"
  int in_channels, in_height, in_width, classes;
  StemKind stem;
} DatasetInfo;

const DatasetInfo *dataset_info(DatasetPreset id);
const DatasetInfo *dataset_by_name(const char *name);  // NULL when unknown
const char *stem_name(StemKind stem);                   // "cifar", "imagenet"

// A NetSpec with the reference CIFAR-10 backbone (F=36, N=6, B=5, aux 0.4,
// drop-path keep 0.8, dropout keep 0.6) and empty cells. Settings not given in
// a file keep these values; a preset then sets the input, classes and stem.
void netspec_init(NetSpec *ns);
void netspec_apply_dataset(NetSpec *ns, DatasetPreset d);

// ---------------------------------------------------------------- arch tokens

// Parses "x_in x_op y_in y_op ..." (whitespace separated, 8B integers for both
// cells, normal first) into the spec's cells and sets ns->nodes. Returns 0, or
// -1 with a message in err (what is wrong and where: "token 7 ...").
int netspec_parse_arch(NetSpec *ns, const char *text, char *err, size_t errlen);
// Checks one cell's tokens: node b's inputs within 0..b+1, ops known. Returns
// 0, or -1 with a message naming the node and branch.
int netcell_check(const NetCell *cell, char *err, size_t errlen);
// Writes both cells as the reference's fixed_arc string: 8B space-separated ints.
void netspec_format_arch(const NetSpec *ns, char *out, size_t outlen);

// The cell's loose ends: states 0..B+1 that no node consumes, in increasing id
// order (the concatenated output). Returns their count.
int netcell_loose_ends(const NetCell *cell, int ids[NAO_MAX_STATES]);

// ---------------------------------------------------------------- shape inference

typedef enum { CALIB_NONE = 0, CALIB_CONV, CALIB_FR } CalibKind;

typedef struct {
  int h, w, c;
} NetShape;

typedef struct {
  int index;                // i: 0..3N+1
  int reduction;            // 1 for cells N and 2N+1
  int c;                    // the cell's channel count
  NetShape in0, in1;        // s0 and s1 as they arrive
  CalibKind calib0, calib1; // what MaybeCalibrateSize does to each
  NetShape state;           // both inputs after calibration: (h, w, c)
  int n_concat;
  int concat[NAO_MAX_STATES];
  int concat_fr[NAO_MAX_STATES];  // concat entry k goes through a FactorizedReduce
  NetShape out;             // (h, w, c * n_concat)
} NetCellLayout;

typedef struct {
  int n_cells;
  NetShape input;
  NetShape stem0, stem1;    // s0 and s1 entering cell 0 (equal for the CIFAR stem)
  NetCellLayout cell[NAO_MAX_CELLS];
  int has_aux;
  int aux_cell;             // 2N + 1
  NetShape aux_in;
  int aux_pool_stride;      // 3 (CIFAR) or 2 (ImageNet, and CIFAR heads on 7x7)
  NetShape final;           // last cell's output
} NetLayout;

// Why a layout could not be made; the front end maps each to a place in the file.
typedef enum {
  LAYOUT_OK = 0,
  LAYOUT_ODD_SIZE,       // a stride-2 reduction met an odd height or width
  LAYOUT_TOO_SMALL,      // a size reached 0
  LAYOUT_ODD_CHANNELS,   // a factorized reduction or the ImageNet stem needs even channels
  LAYOUT_AUX_SIZE,       // the auxiliary head cannot reach 2x2
  LAYOUT_BAD_CELL,       // the cells' tokens are invalid (netcell_check)
} LayoutError;

// Infers every shape. Returns LAYOUT_OK, or an error with a message in err that
// names the cell and the size ("cell 5 (reduction) gets 15x15 ...").
LayoutError netspec_layout(const NetSpec *ns, NetLayout *out, char *err, size_t errlen);

#endif
