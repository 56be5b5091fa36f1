"""scripts/launch.sh (train.sh / test.sh): --hostfile and MPI_ARGS reach mpirun, the rest reaches the module."""
import json
import os
import shutil
import subprocess

import pytest

from tests.helpers import ROOT

MPIRUN = shutil.which("mpirun")


def launch(nprocs, *args, env=None, out=None):
    cmd = f'PY=python3; source scripts/launch.sh; launch {nprocs} tests.tools.launch_probe "$@"'
    env = dict(os.environ, **(env or {}), OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               JSEG_LAUNCH_OUT=str(out or "/nonexistent"))
    return subprocess.run(["bash", "-c", cmd, "launch", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)


@pytest.mark.skipif(MPIRUN is None and not os.environ.get("CI"),
                    reason="Open MPI (mpirun) is not installed; scripts/run_tests.sh installs it")
def test_hostfile_with_two_local_slots(tmp_path):
    assert MPIRUN, "mpirun not found: install Open MPI (apt-get install openmpi-bin libopenmpi-dev)"
    hostfile = tmp_path / "hosts"
    hostfile.write_text("localhost slots=2\n")
    out = tmp_path / "out"
    out.mkdir()
    r = launch(2, "--work-dir", "w", "--hostfile", str(hostfile), "--seed", "3", out=out,
               env={"MPI_ARGS": "-x JSEG_LAUNCH_PROBE=passed", "JSEG_LAUNCH_PROBE": "not forwarded"})
    assert r.returncode == 0, r.stdout + r.stderr
    ranks = sorted((json.loads(p.read_text()) for p in out.iterdir()), key=lambda d: d["rank"])
    assert [(d["rank"], d["size"], d["local_rank"]) for d in ranks] == [("0", "2", "0"), ("1", "2", "1")]
    for d in ranks:
        assert d["argv"] == ["--work-dir", "w", "--seed", "3"]   # --hostfile is mpirun's, not the module's
        assert d["probe"] == "passed"                           # MPI_ARGS reached mpirun


def test_one_process_runs_without_mpirun(tmp_path):
    r = launch(1, "--cfg-options", "a=1", out=tmp_path)
    assert r.returncode == 0, r.stderr
    d = json.loads((tmp_path / "rank_none.json").read_text())
    assert d["rank"] is None and d["argv"] == ["--cfg-options", "a=1"]


def test_missing_hostfile_is_one_line_and_status_2(tmp_path):
    r = launch(2, "--hostfile", str(tmp_path / "nope"))
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.strip().count("\n") == 0 and "nope: no such readable file" in r.stderr
