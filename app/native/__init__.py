"""The native decoding step (``decode_step.c``): built on this machine once, loaded with ctypes.

Why C and not PyTorch for one step: a token of the 135M model reads 138 MB of int8 weights, which
this machine's memory bandwidth allows in ~3 ms, but the PyTorch step spent ~20 ms dispatching ~40
small operations per layer and repacking activations for fbgemm per call (`shopdesk bench`). One C
call per step does the same arithmetic (``decode_step.c`` says how it matches fbgemm's) without that.

It is built from the repo's source with the system C compiler (``cc``, ~1 s) into the model cache
directory, named by a hash of the source, flags and CPU, so a changed source or another CPU gets its
own build; ``shopdesk prepare`` builds it ahead. Without a compiler, or on a CPU without AVX2 where
the scalar code would be slower than PyTorch's, ``load`` raises ``NativeUnavailable`` and the decoder
keeps its PyTorch step (logged once). ctypes releases the GIL during the call.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("decode_step.c")
FLAGS = ("-O3", "-march=native", "-fPIC", "-shared", "-fopenmp", "-fno-math-errno")
_build_lock = threading.Lock()


class NativeUnavailable(RuntimeError):
    """The native step cannot be built or loaded here; the PyTorch step is used instead."""


@functools.cache
def _cpu_flags() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("flags"):
                return line
    except OSError:
        pass
    return platform.processor()


def library_path(build_dir: Path) -> Path:
    digest = hashlib.sha1()
    for part in (SOURCE.read_bytes(), " ".join(FLAGS).encode(), _cpu_flags().encode(), platform.machine().encode()):
        digest.update(part)
    return build_dir / f"decode_step-{digest.hexdigest()[:16]}.so"


def build(build_dir: Path) -> Path:
    """The shared library for this source and CPU, compiled into ``build_dir`` when missing."""
    if "avx2" not in _cpu_flags():
        raise NativeUnavailable("this CPU has no AVX2; the native step would be slower than PyTorch's")
    target = library_path(build_dir)
    if target.is_file():
        return target
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not compiler:
        raise NativeUnavailable("no C compiler (cc or gcc) to build the native decoding step; "
                                "install one (Debian: apt-get install gcc) or set CC")
    with _build_lock:
        if target.is_file():
            return target
        try:
            build_dir.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(suffix=".so", dir=build_dir)
        except OSError as exc:  # a read-only model cache, say: decode with PyTorch rather than fail to load
            raise NativeUnavailable(f"cannot write the native decoding step into {build_dir}: {exc}") from exc
        os.close(fd)
        try:
            done = subprocess.run([compiler, *FLAGS, "-o", tmp, str(SOURCE), "-lm"], capture_output=True,
                                  text=True, timeout=120, check=False)
            if done.returncode != 0:
                raise NativeUnavailable(f"{compiler} failed to build {SOURCE.name}: {done.stderr.strip()[-500:]}")
            os.replace(tmp, target)  # atomic: other workers see the whole library or none
        except subprocess.TimeoutExpired as exc:
            raise NativeUnavailable(f"{compiler} took over {exc.timeout:.0f} s to build {SOURCE.name}") from exc
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    log.info("built the native decoding step: %s", target)
    return target


def load(build_dir: Path) -> Any:
    """The loaded library (built first when needed), its functions typed."""
    try:
        lib = ctypes.CDLL(str(build(build_dir)))
    except OSError as exc:
        raise NativeUnavailable(f"cannot load the native decoding step: {exc}") from exc
    p = ctypes.c_void_p
    lib.sd_create.restype = p
    lib.sd_create.argtypes = [p, ctypes.c_float, p, p, p, p, p, p, p, p, p]
    lib.sd_set_threads.restype = None
    lib.sd_set_threads.argtypes = [p, ctypes.c_int]
    lib.sd_free.restype = None
    lib.sd_free.argtypes = [p]
    lib.sd_step.restype = ctypes.c_int
    lib.sd_step.argtypes = [p, ctypes.c_int, p, p, p, p]
    return lib
