"""Run under mpirun by test_mpi.py: each rank writes the file names it loaded in one epoch."""
import json
import sys

import jseg  # noqa: F401
import jittor as jt

from jseg.datasets import build_dataset

root, seed, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
pipeline = [dict(type="LoadImageFromFile"), dict(type="LoadAnnotations"),
            dict(type="Resize", img_scale=(32, 32), keep_ratio=False), dict(type="DefaultFormatBundle"),
            dict(type="Collect", keys=["img", "gt_semantic_seg"])]
ds = build_dataset(dict(type="ToyDataset", data_root=root, pipeline=pipeline))
ds.set_loader(samples_per_gpu=2, workers_per_gpu=0, shuffle=True, seed=seed)
batches = [[m["ori_filename"] for m in b["img_metas"]] for b in ds]
shapes = [tuple(b["img"].shape) for b in ds]
with open(f"{out}.{jt.rank}.json", "w") as f:
    json.dump({"rank": jt.rank, "world": jt.world_size, "in_mpi": bool(jt.in_mpi), "batches": batches,
               "batch_size": ds.batch_size, "shapes": shapes}, f)
