"""Where the CUDA toolkit, its runtime and cuDNN really are, and what Jittor 1.3.11 can use of them.

Jittor 1.3.11 derives every CUDA path from ``nvcc``: headers in ``<nvcc>/../include``, libraries in
``<nvcc>/../lib64`` (``libcudart.so``, unversioned), and cuDNN 8's split libraries
(``libcudnn_ops_infer.so`` ...) and ``cudnn.h`` in those folders or ``/usr/lib/<arch>-linux-gnu``,
``/usr/include``.  GPU servers now often have CUDA 12/13 with cuDNN 9, or the toolkit from conda or
pip wheels (``site-packages/nvidia/...``), where Jittor finds nothing: ``import jittor`` then tries to
download its own CUDA (fails offline) or stops at cuDNN.

``find_stack`` looks in the usual places (``CUDA_HOME``/``CUDA_PATH``, ``PATH``, ``/usr/local/cuda*``,
``/opt/cuda``, ``$CONDA_PREFIX``, pip's ``nvidia/*`` packages, Debian's ``/usr``); ``plan`` turns
that into the settings ``jseg/_env.py`` applies before Jittor starts:

* ``nvcc_path``: the nvcc found;
* a *shim* folder (``<JITTOR_HOME>/.cache/jittor/jseg_cuda/<hash>``) with ``bin/nvcc`` (a script that
  runs the real one), ``include/`` and ``lib64/`` (links, unversioned names added) when the runtime
  or headers are not where Jittor looks;
* ``conv_opt=1`` when Jittor cannot use the cuDNN there is (none, cuDNN 9+, or one outside Jittor's
  folders): Jittor then skips cuDNN (and cuFFT/cuSPARSE, unused here) and convolutions run on its own
  CUDA kernels; one line says so.

Everything takes the file-system root and environment as arguments, so the rules are tested on
fake directory trees (``tests/test_cuda.py``).
"""
import glob
import hashlib
import os
import platform
import re

ARCH = "aarch64" if platform.machine() in ("aarch64", "arm64") else "x86_64"
# cuDNN 8 libraries Jittor 1.3.11 loads one by one for CUDA >= 11
JITTOR_CUDNN8_LIBS = ("libcudnn.so", "libcudnn_ops_infer.so", "libcudnn_ops_train.so", "libcudnn_cnn_infer.so",
                      "libcudnn_cnn_train.so")


def _version_key(path):
    """``/usr/local/cuda-12.4`` -> (12, 4); for sorting newest first."""
    return tuple(int(x) for x in re.findall(r"\d+", os.path.basename(path.rstrip("/"))))


def _lib_version(name, stem):
    """``libcudnn.so.9.1.0`` with stem ``libcudnn.so`` -> (9, 1, 0); ``()`` for the unversioned name."""
    rest = name[len(stem):].lstrip(".")
    return tuple(int(x) for x in rest.split(".") if x.isdigit())


def candidate_homes(env, root="/", site_dirs=()):
    """``[(kind, folder)]``: where a CUDA toolkit or its pieces may be, in the order they are preferred."""
    def at(p):
        return os.path.join(root, p.lstrip("/"))
    homes = []
    for var in ("CUDA_HOME", "CUDA_PATH"):
        if env.get(var):
            homes.append((var, env[var]))
    homes.append(("system", at("/usr/local/cuda")))
    homes += [("system", p) for p in sorted(glob.glob(at("/usr/local/cuda-*")), key=_version_key, reverse=True)]
    homes.append(("system", at("/opt/cuda")))
    if env.get("CONDA_PREFIX"):
        homes.append(("conda", env["CONDA_PREFIX"]))
    for site in site_dirs:
        homes += [("pip", p) for p in sorted(glob.glob(os.path.join(site, "nvidia", "*"))) if os.path.isdir(p)]
    homes.append(("debian", at("/usr")))
    seen, out = set(), []
    for kind, p in homes:
        if os.path.isdir(p) and os.path.realpath(p) not in seen:
            seen.add(os.path.realpath(p))
            out.append((kind, p))
    return out


def lib_dirs(home):
    return [os.path.join(home, d) for d in ("lib64", "lib", f"targets/{ARCH}-linux/lib", f"lib/{ARCH}-linux-gnu")]


def include_dirs(home):
    return [os.path.join(home, d) for d in ("include", f"targets/{ARCH}-linux/include")]


def _find_lib(dirs, stem):
    """``(folder, file name, version)`` of the newest ``stem*`` in the first folder that has one."""
    for d in dirs:
        names = [os.path.basename(p) for p in glob.glob(os.path.join(d, stem + "*"))
                 if os.path.basename(p) == stem or os.path.basename(p).startswith(stem + ".")]
        if names:
            best = max(names, key=lambda n: _lib_version(n, stem))
            versioned = [n for n in names if _lib_version(n, stem)]
            version = max((_lib_version(n, stem) for n in versioned), default=())
            return {"dir": d, "file": best, "version": version}
    return None


def cudnn_header_version(include_dir):
    """(major, minor, patch) from ``cudnn_version.h`` (cuDNN >= 8) or ``cudnn.h``; None if absent."""
    for name in ("cudnn_version.h", "cudnn.h"):
        path = os.path.join(include_dir, name)
        if not os.path.isfile(path):
            continue
        with open(path, errors="replace") as f:
            text = f.read()
        found = {k: int(v) for k, v in re.findall(r"#define\s+CUDNN_(MAJOR|MINOR|PATCHLEVEL)\s+(\d+)", text)}
        if "MAJOR" in found:
            return (found["MAJOR"], found.get("MINOR", 0), found.get("PATCHLEVEL", 0))
    return None


def _which(name, env):
    for d in env.get("PATH", "").split(os.pathsep):
        p = os.path.join(d, name)
        if d and os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    return None


def find_stack(env, root="/", site_dirs=()):
    """What is installed: ``{'nvcc', 'nvcc_home', 'cudart', 'cudnn', 'homes'}`` (None where nothing)."""
    homes = candidate_homes(env, root, site_dirs)
    nvcc = env.get("nvcc_path") or None
    if nvcc is None:
        for d in ([h for k, h in homes if k.startswith("CUDA_")]):
            if os.path.isfile(os.path.join(d, "bin", "nvcc")):
                nvcc = os.path.join(d, "bin", "nvcc")
                break
    nvcc = nvcc or _which("nvcc", env)
    if nvcc is None:
        nvcc = next((os.path.join(h, "bin", "nvcc") for _, h in homes
                     if os.path.isfile(os.path.join(h, "bin", "nvcc"))), None)
    nvcc_home = os.path.dirname(os.path.dirname(os.path.realpath(nvcc))) if nvcc else None
    order = ([nvcc_home] if nvcc_home else []) + [h for _, h in homes if h != nvcc_home]
    all_libs = [d for h in order for d in lib_dirs(h)]
    cudart = _find_lib(all_libs, "libcudart.so")
    cudnn = _find_lib(all_libs, "libcudnn.so")
    if cudnn is not None:
        cudnn_home = os.path.dirname(cudnn["dir"].rstrip("/"))
        heads = include_dirs(cudnn_home) + [d for h in order for d in include_dirs(h)]
        heads.append(os.path.join(root, "usr/include"))
        for d in heads:
            v = cudnn_header_version(d)
            if v is not None:
                cudnn["include_dir"], cudnn["header_version"] = d, v
                break
        cudnn["major"] = (cudnn.get("header_version") or cudnn["version"] or (None,))[0]
    return {"nvcc": nvcc, "nvcc_home": nvcc_home, "cudart": cudart, "cudnn": cudnn, "homes": homes}


def jittor_dirs(nvcc, root="/"):
    """The folders Jittor 1.3.11 searches for CUDA libraries and cuDNN headers, given ``nvcc``."""
    home = os.path.dirname(os.path.dirname(nvcc))
    lib = os.path.join(root, f"usr/lib/{ARCH}-linux-gnu") if nvcc == os.path.join(root, "usr/bin/nvcc") \
        else os.path.join(home, "lib64")
    libs = [os.path.join(home, "bin"), lib, os.path.join(home, f"targets/{ARCH}-linux/lib"),
            os.path.join(root, f"usr/lib/{ARCH}-linux-gnu"), os.path.join(root, "usr/lib")]
    heads = [os.path.join(home, "include"), os.path.join(home, f"targets/{ARCH}-linux/include"),
             os.path.join(root, "usr/include")]
    return lib, libs, heads


def cudnn_usable(stack, nvcc, root="/"):
    """``(True, None)`` if Jittor 1.3.11 will load this cuDNN through ``nvcc``'s folders, else
    ``(False, why)``."""
    cudnn = stack["cudnn"]
    if cudnn is None:
        return False, "no cuDNN found"
    where = cudnn["dir"]
    if cudnn["major"] is not None and cudnn["major"] != 8:
        v = ".".join(map(str, cudnn.get("header_version") or cudnn["version"]))
        return False, (f"cuDNN {v} at {where}: Jittor 1.3.11 works with cuDNN 8 only (it loads cuDNN 8's "
                       "libcudnn_ops_infer/cnn_train libraries)")
    _, libs, heads = jittor_dirs(nvcc, root)
    if not any(os.path.isfile(os.path.join(h, "cudnn.h")) for h in heads):
        return False, f"cuDNN 8 at {where} has no cudnn.h in the folders Jittor searches ({', '.join(heads)})"
    for name in JITTOR_CUDNN8_LIBS:  # Jittor asks for the plain name (or name.8 with CUDA 11)
        if not any(os.path.isfile(os.path.join(d, n)) for d in libs for n in (name, name + ".8")):
            return False, f"cuDNN 8 at {where}: {name} is not in the folders Jittor searches ({', '.join(libs)})"
    return True, None


def plan(stack, jittor_home, root="/"):
    """``{'env': {name: value}, 'shim': {...} or None, 'notes': [one-line messages]}`` for ``_env``.

    Without nvcc, ``nvcc_path=""`` (Jittor would otherwise try to download a CUDA toolkit).
    """
    nvcc = stack["nvcc"]
    if nvcc is None:
        return {"env": {"nvcc_path": ""}, "shim": None,
                "notes": ["jseg: an NVIDIA driver but no CUDA toolkit (nvcc) found (looked in CUDA_HOME, PATH, "
                          "/usr/local/cuda*, conda, pip nvidia-* packages); computing on the CPU. Install the "
                          "toolkit, or point CUDA_HOME or nvcc_path at it"]}
    out = {"env": {"nvcc_path": nvcc}, "shim": None, "notes": []}
    lib, _, _ = jittor_dirs(nvcc, root)
    cudart = stack["cudart"]
    has_runtime = os.path.isfile(os.path.join(lib, "libcudart.so"))
    has_headers = os.path.isfile(os.path.join(os.path.dirname(os.path.dirname(nvcc)), "include", "cuda_runtime.h"))
    if not (has_runtime and has_headers) and cudart is not None:
        sources_lib = [cudart["dir"]]
        sources_inc = [os.path.join(stack["nvcc_home"], "include"),
                       os.path.join(os.path.dirname(cudart["dir"].rstrip("/")), "include")]
        for _, h in stack["homes"]:
            if os.path.basename(h) != "cudnn":      # cuDNN joins only if Jittor can use it (below)
                sources_lib += [d for d in lib_dirs(h) if os.path.isdir(d)]
                sources_inc += [d for d in include_dirs(h) if os.path.isdir(d)]
        key = hashlib.sha1("\n".join([nvcc] + sources_lib + sources_inc).encode()).hexdigest()[:12]
        shim = os.path.join(jittor_home, ".cache", "jittor", "jseg_cuda", key)
        out["shim"] = {"dir": shim, "nvcc": os.path.realpath(nvcc), "lib_dirs": _unique(sources_lib),
                       "include_dirs": _unique(sources_inc)}
        out["env"]["nvcc_path"] = os.path.join(shim, "bin", "nvcc")
        nvcc = out["env"]["nvcc_path"]
    elif cudart is None and not has_runtime:
        out["notes"].append(f"jseg: nvcc at {nvcc} but no CUDA runtime (libcudart.so) found; Jittor will fail to "
                            "start CUDA. Install the CUDA runtime next to the toolkit")
    ok, why = cudnn_usable(stack, stack["nvcc"], root)
    if not ok:
        out["env"]["conv_opt"] = "1"
        out["notes"].append(f"jseg: {why}; convolutions use Jittor's own CUDA kernels (slower than cuDNN)")
    return out


def _unique(items):
    seen, out = set(), []
    for x in items:
        if x not in seen:
            seen.add(x)
            out.append(x)
    return out


def build_shim(shim):
    """Create the shim folder of :func:`plan` (idempotent; built in a temp folder, then renamed)."""
    target = shim["dir"]
    if os.path.isfile(os.path.join(target, "bin", "nvcc")):
        return target
    tmp = f"{target}.tmp{os.getpid()}"
    os.makedirs(os.path.join(tmp, "bin"), exist_ok=True)
    with open(os.path.join(tmp, "bin", "nvcc"), "w") as f:
        f.write(f'#!/bin/sh\nexec "{shim["nvcc"]}" "$@"\n')
    os.chmod(os.path.join(tmp, "bin", "nvcc"), 0o755)
    for sub, sources in (("lib64", shim["lib_dirs"]), ("include", shim["include_dirs"])):
        os.makedirs(os.path.join(tmp, sub), exist_ok=True)
        for src in sources:
            for name in sorted(os.listdir(src)) if os.path.isdir(src) else ():
                link = os.path.join(tmp, sub, name)
                if not os.path.lexists(link):          # the first source wins
                    os.symlink(os.path.join(src, name), link)
                if sub == "lib64" and ".so." in name:   # libcudart.so.12 -> also libcudart.so
                    plain = os.path.join(tmp, sub, name.split(".so.")[0] + ".so")
                    if not os.path.lexists(plain):
                        os.symlink(os.path.join(src, name), plain)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    try:
        os.rename(tmp, target)
    except OSError:  # another process (an MPI rank) built it first
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)
    return target
