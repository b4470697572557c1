// runtime/data.h — datasets: sources, splits and single samples.
//
// A DataSource is one dataset on disk (or generated): its train part and its
// test part, loaded on first use. A DataSet is a split of it: an ordered list
// of item numbers into one part. A sample is one item turned into a float32
// image (C, H, W), normalised and augmented by an AugmentSpec (augment.h), and
// its int32 label; runtime/loader.h batches samples with worker threads.
//
// Kinds:
//   fashion-mnist  idx files (plain or .gz): train-images-idx3-ubyte[.gz],
//                  train-labels-idx1-ubyte[.gz], t10k-*; default directory
//                  /usr/share/datasets/fashion-mnist. 10 classes, 1x28x28.
//   cifar10        the binary version: data_batch_1..5.bin, test_batch.bin in
//                  DIR or DIR/cifar-10-batches-bin. 10 classes, 3x32x32.
//   imagenet       folders DIR/train/<class>/<image> and DIR/val/<class>/...
//                  (or DIR/valid): classes sorted by name as torchvision's
//                  ImageFolder; JPEG, PNG, PPM/PGM decoded by content.
//   synthetic      random images of a given shape and class count, a pure
//                  function of (seed, part, item): nothing is stored.
//
// Splits: DATA_TRAIN and DATA_VALID divide the train part: a permutation of
// its items seeded by split_seed; the last valid_size items of it are the
// validation split (as the reference's indices[split:]), the rest training;
// each split lists its items in increasing order. DATA_TEST is the test part
// (Fashion-MNIST t10k, CIFAR test_batch, ImageNet val/).
//
// Errors: functions return 0, or -1 with "PATH: what is wrong" in err (a
// refused file is never partly used). Nothing here exits or aborts on bad
// input. Thread safety: after data_set_open, data_sample may be called from
// any number of threads at once, each with its own DataScratch.
#ifndef NAO_DATA_H
#define NAO_DATA_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
  DATA_FASHION_MNIST = 0,
  DATA_CIFAR10,
  DATA_IMAGENET,
  DATA_SYNTHETIC,
  DATA_KIND_COUNT
} DataKind;

typedef enum { DATA_TRAIN = 0, DATA_VALID, DATA_TEST } DataSplit;

#define DATA_FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"

typedef struct {
  DataKind kind;
  const char *dir;      // NULL: the kind's default directory (fashion-mnist only)
  int cifar_records;    // cifar10: records each file must hold; 0: 10000
  // synthetic: the shape of its images, its classes and part sizes
  int channels, height, width, classes;
  int train_count, test_count;
  uint64_t seed;        // synthetic: content seed
} DataSourceOptions;

typedef struct DataSource DataSource;

// "fashion-mnist", "cifar10", "imagenet", "synthetic"; -1 when unknown.
int data_kind_parse(const char *name);
// The folder a kind is read from when none is given (Debian's Fashion-MNIST);
// NULL: the kind needs one (cifar10, imagenet) or none (synthetic).
const char *data_default_dir(DataKind kind);
const char *data_kind_name(DataKind k);
const char *data_split_name(DataSplit s);

int data_source_open(const DataSourceOptions *opt, DataSource **out, char *err, size_t errlen);
void data_source_close(DataSource *src);
DataKind data_source_kind(const DataSource *src);
const char *data_source_dir(const DataSource *src);
int data_source_classes(const DataSource *src);
// The class's folder name (imagenet), else its number as text, in buf.
const char *data_source_class_name(const DataSource *src, int k, char *buf, size_t n);

typedef struct {
  DataSource *src;
  DataSplit split;
  int part;          // 0: train part, 1: test part
  int n;             // items
  int32_t *items;    // (n) item numbers within the part, increasing
} DataSet;

// Loads the part the split needs (once per source; call from one thread).
// valid_size: items held out of the train part for DATA_VALID (0: none, and
// then DATA_VALID is an error); it must leave at least one training item.
int data_set_open(DataSource *src, DataSplit split, int valid_size, uint64_t split_seed, DataSet *out,
                  char *err, size_t errlen);
void data_set_close(DataSet *ds);
// Path of an item's file (imagenet) or "" (other kinds).
const char *data_set_item_path(const DataSet *ds, int32_t item);
// The item's label without loading its image.
int32_t data_set_label(const DataSet *ds, int32_t item);

// ---------------------------------------------------------------- samples

struct AugmentSpec;
typedef struct DataScratch DataScratch;  // per-thread decode buffers

DataScratch *data_scratch_new(void);
void data_scratch_free(DataScratch *s);

// The shape of the samples a spec produces from this set: (c, h, w). Returns
// -1 with a message when the spec does not fit the kind (e.g. an imagenet
// spec without an output size).
int data_sample_shape(const DataSet *ds, const struct AugmentSpec *aug, int *c, int *h, int *w, char *err,
                      size_t errlen);

typedef enum {
  DATA_SAMPLE_OK = 0,
  DATA_SAMPLE_UNREADABLE = 1,  // the item's file cannot be decoded; msg says why
} DataSampleStatus;

// Item `item` of the set's part as a (c, h, w) float image in out and its
// label, augmented with the random stream rng_derive(seed, key) (the loader
// passes key = (epoch << 32) | item, so a sample's augmentation depends on
// nothing else). msg receives a warning for DATA_SAMPLE_UNREADABLE.
DataSampleStatus data_sample(const DataSet *ds, int32_t item, const struct AugmentSpec *aug, uint64_t seed,
                             uint64_t key, float *out, int32_t *label, DataScratch *scratch, char *msg,
                             size_t msglen);

#endif
