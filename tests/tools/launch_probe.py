"""Run by tests/tools/test_launch.py through scripts/launch.sh: one JSON record per process (no Jittor).

Each process writes its own file (JSEG_LAUNCH_OUT/rank_<r>.json): mpirun forwards the ranks' stdout
through one stream, where two ranks' lines can end up joined on one line."""
import json
import os
import sys

record = {"rank": os.environ.get("OMPI_COMM_WORLD_RANK"), "size": os.environ.get("OMPI_COMM_WORLD_SIZE"),
          "local_rank": os.environ.get("OMPI_COMM_WORLD_LOCAL_RANK"), "argv": sys.argv[1:],
          "probe": os.environ.get("JSEG_LAUNCH_PROBE")}
out = os.environ["JSEG_LAUNCH_OUT"]
with open(os.path.join(out, f"rank_{record['rank'] or 'none'}.json"), "w") as f:
    json.dump(record, f)
