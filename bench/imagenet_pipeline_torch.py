"""bench/imagenet_pipeline_torch.py — the torchvision peer of the C loader's benchmark.

    /usr/bin/python3 bench/imagenet_pipeline_torch.py DIR [--workers W] [--batch B] [--images N]

The reference's ImageNet training input (NAO_V1/train_imagenet.py): ImageFolder
over DIR/train with RandomResizedCrop(224), RandomHorizontalFlip,
ColorJitter(0.4, 0.4, 0.4, 0.2), ToTensor, Normalize, through a shuffling
DataLoader with W worker processes (pin_memory off: there is no GPU here).
Times N images after the first batch, the consumer doing nothing, exactly as
tests/tools/loader_bench does for the C loader. Prints one line:
"images_per_sec X ...".
"""
import argparse
import time

import torch
import torchvision.datasets as dset
import torchvision.transforms as transforms


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    torch.set_num_threads(1)
    normalize = transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
    tf = transforms.Compose([
        transforms.RandomResizedCrop(224),
        transforms.RandomHorizontalFlip(),
        transforms.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4, hue=0.2),
        transforms.ToTensor(),
        normalize,
    ])
    data = dset.ImageFolder(a.dir + "/train", tf)
    got, first, t0 = 0, True, 0.0
    while got < a.images:
        loader = torch.utils.data.DataLoader(data, batch_size=a.batch, shuffle=True, num_workers=a.workers,
                                             persistent_workers=False)
        for images, labels in loader:
            if first:
                t0, first = time.perf_counter(), False
            else:
                got += images.shape[0]
            if got >= a.images:
                break
    dt = time.perf_counter() - t0
    print("images_per_sec %.1f images %d seconds %.3f workers %d batch %d" % (got / dt, got, dt, a.workers, a.batch))


if __name__ == "__main__":
    main()
