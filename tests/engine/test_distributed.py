"""2 Open MPI processes vs 1 process with the same global batch (SyncBN): same parameters, same evaluation,
for each model family (SegNeXt, SegFormer, CGRSeg: its backbone's BNs are SyncBN too).

The optimizer here is SGD with momentum (see mpi_train.py for why not AdamW).
"""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from jseg.datasets import make_toy_dataset
from tests.helpers import ROOT

MPIRUN = shutil.which("mpirun")
SCRIPT = os.path.join(ROOT, "tests", "engine", "mpi_train.py")


@pytest.mark.slow
@pytest.mark.skipif(MPIRUN is None and not os.environ.get("CI"),
                    reason="Open MPI (mpirun) is not installed; scripts/run_tests.sh installs it")
@pytest.mark.parametrize("model", ["segnext", "segformer", "cgrseg"])
def test_two_processes_equal_one(tmp_path, model):
    assert MPIRUN, "mpirun not found: install Open MPI (apt-get install openmpi-bin libopenmpi-dev)"
    toy = make_toy_dataset(str(tmp_path / "toy"), n_train=8, n_val=3, size=32)
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", PYTHONPATH=ROOT)
    k = 3
    runs = {"one": [sys.executable, SCRIPT, toy, str(tmp_path / "one"), str(k), model],
            "two": [MPIRUN, "--oversubscribe", "-np", "2", sys.executable, SCRIPT, toy, str(tmp_path / "two"),
                    str(k), model]}
    for name, cmd in runs.items():
        r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
        assert r.returncode == 0, name + r.stdout[-3000:] + r.stderr[-3000:]
    one, two = (np.load(tmp_path / f"{n}_params.npz") for n in ("one", "two"))
    bad = {key: float(np.abs(two[key] - one[key]).max()) for key in one.files
           if not np.allclose(two[key], one[key], rtol=1e-5, atol=1e-5)}
    assert not bad, bad
    e1, e2 = (json.load(open(tmp_path / f"{n}_eval.json")) for n in ("one", "two"))
    assert (e1["world"], e2["world"]) == (1, 2)
    assert e1["aAcc"] == e2["aAcc"] and e1["IoU"] == e2["IoU"]        # exactly the same evaluation
    # the k steps really trained (the parameters differ from a fresh init)
    init = tmp_path / "init"
    r = subprocess.run([sys.executable, SCRIPT, toy, str(init), "0", model], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    fresh = np.load(f"{init}_params.npz")
    moved = sum(not np.allclose(fresh[kk], one[kk]) for kk in one.files if not kk.endswith("num_batches_tracked"))
    assert moved > 50
