#!/bin/sh
# bench/imagenet_pipeline.sh [DIR] — images per second of the ImageNet
# training input pipeline: the C loader (tests/tools/loader_bench) against
# torchvision's ImageFolder + DataLoader with the same transforms
# (bench/imagenet_pipeline_torch.py), the same number of workers, the same
# batch size, on the same generated folder of 500x375 JPEGs.
#
#   WORKERS=2 BATCH=64 IMAGES=896 REPS=5 bench/imagenet_pipeline.sh [DIR]
#
# DIR defaults to $TMPDIR/naoc-bench-imagenet and is generated when absent
# (10 classes x 100 images, 500x375, JPEG quality 90, ~107 KB each, about
# ImageNet's mean file size). The files are read once beforehand so both
# sides run from the page cache. The runs alternate C / torchvision, REPS
# times each; the script prints every run and the medians of images per
# second (wall clock) and of CPU milliseconds per image (all threads and
# worker processes: less sensitive to other load on a shared machine).
set -eu
BUILD=${BUILD:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
WORKERS=${WORKERS:-2}
BATCH=${BATCH:-64}
IMAGES=${IMAGES:-896}
REPS=${REPS:-5}
DIR=${1:-${TMPDIR:-/tmp}/naoc-bench-imagenet}

make -s "$BUILD/tests/tools/loader_bench" "$BUILD/tests/tools/make_imagenet_folder"
if [ ! -d "$DIR/train" ]; then
  echo "generating $DIR ..."
  "$BUILD/tests/tools/make_imagenet_folder" "$DIR" --classes 10 --train 100 --val 0 --size 500x375 \
    --quality 90 --noise 40 --seed 1
fi
cat "$DIR"/train/*/* >/dev/null
n=$(ls "$DIR"/train/*/* | wc -l)
bytes=$(cat "$DIR"/train/*/* | wc -c)
echo "folder: $n images, $((bytes / n)) bytes each on average; workers $WORKERS, batch $BATCH, $IMAGES images per run"
echo "machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), load before: $(cut -d' ' -f1-3 /proc/loadavg)"

c_runs="" t_runs="" c_cpu="" t_cpu=""
i=0
while [ "$i" -lt "$REPS" ]; do
  c=$("$BUILD/tests/tools/loader_bench" "$DIR" --workers "$WORKERS" --batch "$BATCH" --images "$IMAGES" --seed "$i")
  t=$("$PYTHON" bench/imagenet_pipeline_torch.py "$DIR" --workers "$WORKERS" --batch "$BATCH" --images "$IMAGES" \
      --seed "$i")
  cr=$(echo "$c" | awk '{print $2}') cc=$(echo "$c" | awk '{print $8}')
  tr=$(echo "$t" | awk '{print $2}') tc=$(echo "$t" | awk '{print $8}')
  echo "run $i: C $cr images/s ($cc CPU ms/image), torchvision $tr images/s ($tc CPU ms/image), load $(cut -d' ' -f1 /proc/loadavg)"
  c_runs="$c_runs $cr" t_runs="$t_runs $tr" c_cpu="$c_cpu $cc" t_cpu="$t_cpu $tc"
  i=$((i + 1))
done

median() { printf '%s\n' $1 | sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
cm=$(median "$c_runs") tm=$(median "$t_runs") ccm=$(median "$c_cpu") tcm=$(median "$t_cpu")
echo "median images/s: C $cm, torchvision $tm, ratio $(echo "$cm $tm" | awk '{printf "%.2f", $1 / $2}')x"
echo "median CPU ms/image: C $ccm, torchvision $tcm, ratio $(echo "$tcm $ccm" | awk '{printf "%.2f", $1 / $2}')x"
