"""CUDA-stack detection (jseg/_cuda.py) on fake directory trees: what is found, and what Jittor is told."""
import os

from jseg import _cuda

ARCH = _cuda.ARCH


def touch(root, *paths, text=""):
    for p in paths:
        full = os.path.join(str(root), p.lstrip("/"))
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w") as f:
            f.write(text)
        if "/bin/" in p:
            os.chmod(full, 0o755)


def cudnn_header(root, path, major, minor=0, patch=0):
    touch(root, path, text=f"#define CUDNN_MAJOR {major}\n#define CUDNN_MINOR {minor}\n#define CUDNN_PATCHLEVEL {patch}\n")


def toolkit(root, home, cudart="12"):
    touch(root, f"{home}/bin/nvcc", f"{home}/include/cuda_runtime.h", f"{home}/lib64/libcudart.so",
          f"{home}/lib64/libcudart.so.{cudart}")


def run(root, env=None, site_dirs=()):
    env = dict(env or {}, PATH=(env or {}).get("PATH", "/nonexistent"))
    stack = _cuda.find_stack(env, str(root), [os.path.join(str(root), s.lstrip("/")) for s in site_dirs])
    return stack, _cuda.plan(stack, os.path.join(str(root), "jhome"), str(root))


def test_system_cuda12_with_cudnn9_falls_back_to_jittors_kernels(tmp_path):
    toolkit(tmp_path, "/usr/local/cuda-12.4")
    os.symlink(tmp_path / "usr/local/cuda-12.4", tmp_path / "usr/local/cuda")
    touch(tmp_path, f"/usr/lib/{ARCH}-linux-gnu/libcudnn.so.9.1.0", f"/usr/lib/{ARCH}-linux-gnu/libcudnn.so.9",
          "/usr/include/cudnn.h")
    cudnn_header(tmp_path, "/usr/include/cudnn_version.h", 9, 1, 0)
    stack, plan = run(tmp_path)
    assert stack["nvcc"] == str(tmp_path / "usr/local/cuda/bin/nvcc")
    assert stack["cudnn"]["major"] == 9 and stack["cudnn"]["header_version"] == (9, 1, 0)
    assert plan["env"] == {"nvcc_path": stack["nvcc"], "conv_opt": "1"} and plan["shim"] is None
    assert len(plan["notes"]) == 1 and "cuDNN 9.1.0" in plan["notes"][0] and "cuDNN 8 only" in plan["notes"][0]


def test_cuda11_with_cudnn8_in_the_toolkit_is_used_as_is(tmp_path):
    home = "/usr/local/cuda"
    toolkit(tmp_path, home, cudart="11.0")
    libs = [f"{home}/lib64/{n}.8" for n in _cuda.JITTOR_CUDNN8_LIBS] + [f"{home}/lib64/libcudnn.so.8.9.7"]
    touch(tmp_path, *libs, f"{home}/include/cudnn.h")
    cudnn_header(tmp_path, f"{home}/include/cudnn_version.h", 8, 9, 7)
    stack, plan = run(tmp_path)
    assert stack["cudnn"]["version"] == (8, 9, 7) and stack["cudnn"]["file"] == "libcudnn.so.8.9.7"
    assert plan == {"env": {"nvcc_path": str(tmp_path / "usr/local/cuda/bin/nvcc")}, "shim": None, "notes": []}


def test_cudnn8_missing_one_split_library_is_not_used(tmp_path):
    home = "/usr/local/cuda"
    toolkit(tmp_path, home)
    touch(tmp_path, *[f"{home}/lib64/{n}" for n in _cuda.JITTOR_CUDNN8_LIBS if "cnn_train" not in n],
          f"{home}/include/cudnn.h")
    cudnn_header(tmp_path, f"{home}/include/cudnn_version.h", 8, 6, 0)
    _, plan = run(tmp_path)
    assert plan["env"]["conv_opt"] == "1" and "libcudnn_cnn_train.so is not in the folders" in plan["notes"][0]


def test_pip_wheels_only_get_a_shim_jittor_can_read(tmp_path):
    site = "/venv/lib/python3.12/site-packages"
    touch(tmp_path, f"{site}/nvidia/cuda_nvcc/bin/nvcc", f"{site}/nvidia/cuda_nvcc/include/crt/host_config.h",
          f"{site}/nvidia/cuda_runtime/lib/libcudart.so.12", f"{site}/nvidia/cuda_runtime/include/cuda_runtime.h",
          f"{site}/nvidia/cublas/lib/libcublas.so.12", f"{site}/nvidia/cudnn/lib/libcudnn.so.9")
    cudnn_header(tmp_path, f"{site}/nvidia/cudnn/include/cudnn_version.h", 9, 3, 0)
    stack, plan = run(tmp_path, site_dirs=[site])
    assert stack["nvcc"] == str(tmp_path / site.lstrip("/") / "nvidia/cuda_nvcc/bin/nvcc")
    assert stack["cudart"]["file"] == "libcudart.so.12" and stack["cudnn"]["major"] == 9
    shim = plan["shim"]
    assert shim is not None and plan["env"]["nvcc_path"] == os.path.join(shim["dir"], "bin", "nvcc")
    assert shim["dir"].startswith(str(tmp_path / "jhome/.cache/jittor/jseg_cuda/"))
    assert plan["env"]["conv_opt"] == "1"
    built = _cuda.build_shim(shim)
    assert _cuda.build_shim(shim) == built                            # idempotent
    lib64 = os.path.join(built, "lib64")
    assert os.path.realpath(os.path.join(lib64, "libcudart.so")).endswith("cuda_runtime/lib/libcudart.so.12")
    assert os.path.exists(os.path.join(lib64, "libcublas.so"))        # the other wheels' libraries too
    assert not os.path.exists(os.path.join(lib64, "libcudnn.so"))      # not a cuDNN Jittor cannot use
    assert os.path.exists(os.path.join(built, "include", "cuda_runtime.h"))
    assert os.path.exists(os.path.join(built, "include", "crt", "host_config.h"))
    script = open(os.path.join(built, "bin", "nvcc")).read()
    assert stack["nvcc"] in script and os.access(os.path.join(built, "bin", "nvcc"), os.X_OK)
    assert not [n for n in os.listdir(os.path.dirname(built)) if ".tmp" in n]


def test_conda_toolkit_gets_a_shim_and_its_cudnn8_outside_jittors_folders_is_named(tmp_path):
    prefix = "/opt/conda/envs/seg"
    touch(tmp_path, f"{prefix}/bin/nvcc", f"{prefix}/lib/libcudart.so.12", f"{prefix}/lib/libcudart.so",
          f"{prefix}/include/cuda_runtime.h", f"{prefix}/include/cudnn.h",
          *[f"{prefix}/lib/{n}.8" for n in _cuda.JITTOR_CUDNN8_LIBS])
    cudnn_header(tmp_path, f"{prefix}/include/cudnn_version.h", 8, 9, 2)
    conda = str(tmp_path / prefix.lstrip("/"))
    stack, plan = run(tmp_path, env={"CONDA_PREFIX": conda, "PATH": f"{conda}/bin"})
    assert stack["nvcc"] == f"{conda}/bin/nvcc" and stack["cudart"]["dir"] == f"{conda}/lib"
    assert plan["shim"]["lib_dirs"][0] == f"{conda}/lib"
    assert plan["env"]["conv_opt"] == "1" and "is not in the folders Jittor searches" in plan["notes"][0]


def test_cuda_home_wins_and_the_newest_versioned_toolkit_next(tmp_path):
    toolkit(tmp_path, "/usr/local/cuda-11.8")
    toolkit(tmp_path, "/usr/local/cuda-12.6")
    toolkit(tmp_path, "/usr/local/cuda-12.10")
    toolkit(tmp_path, "/data/cuda-12.1")
    stack, _ = run(tmp_path)
    assert stack["nvcc"] == str(tmp_path / "usr/local/cuda-12.10/bin/nvcc")       # 12.10 > 12.6 > 11.8
    stack, _ = run(tmp_path, env={"CUDA_HOME": str(tmp_path / "data/cuda-12.1")})
    assert stack["nvcc"] == str(tmp_path / "data/cuda-12.1/bin/nvcc")


def test_a_driver_without_a_toolkit_computes_on_the_cpu(tmp_path):
    stack, plan = run(tmp_path)
    assert stack["nvcc"] is None
    assert plan["env"] == {"nvcc_path": ""} and "no CUDA toolkit (nvcc) found" in plan["notes"][0]


def test_nvcc_without_any_runtime_says_so(tmp_path):
    touch(tmp_path, "/usr/local/cuda/bin/nvcc", "/usr/local/cuda/include/cuda_runtime.h")
    _, plan = run(tmp_path)
    assert any("no CUDA runtime (libcudart.so)" in n for n in plan["notes"])
