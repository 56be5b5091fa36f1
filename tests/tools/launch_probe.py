"""Run by tests/tools/test_launch.py through scripts/launch.sh: one JSON line per process (no Jittor)."""
import json
import os
import sys

print(json.dumps({"rank": os.environ.get("OMPI_COMM_WORLD_RANK"), "size": os.environ.get("OMPI_COMM_WORLD_SIZE"),
                  "local_rank": os.environ.get("OMPI_COMM_WORLD_LOCAL_RANK"), "argv": sys.argv[1:],
                  "probe": os.environ.get("JSEG_LAUNCH_PROBE")}), flush=True)
