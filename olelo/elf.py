"""Reading and editing an ELF shared library's version needs (x86-64, little-endian):
scripts/install_llama_runtime.py repoints a need glibc 2.36 lacks to one it has, so that
llama.cpp's wheel loads.

    elf.version_needs(Path("lib.so"))                    # [(offset, "GLIBC_2.38"), ...]
    elf.repoint_version(Path("lib.so"), "GLIBC_2.38", "GLIBC_2.2.5")   # how many it changed
"""

from __future__ import annotations

import struct
from pathlib import Path


def version_needs(path: Path) -> list[tuple[int, str]]:
    """(offset of the vernaux entry, version name) of every version an ELF library needs."""
    data = path.read_bytes()
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    sections = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    out = []
    for s in sections:
        if s[1] != 0x6FFFFFFE:  # SHT_GNU_verneed
            continue
        strtab = sections[s[6]][4]
        vn = s[4]
        while True:
            _, cnt, _, aux, nxt = struct.unpack_from("<HHIII", data, vn)
            a = vn + aux
            for _ in range(cnt):
                _, _, _, name, anext = struct.unpack_from("<IHHII", data, a)
                out.append((a, data[strtab + name:data.index(b"\0", strtab + name)].decode()))
                a += anext
            if not nxt:
                break
            vn += nxt
    return out


def repoint_version(path: Path, old: str, new: str) -> int:
    """Make each `old` version need a copy of the `new` one (same hash and name)."""
    data = bytearray(path.read_bytes())
    needs = version_needs(path)
    keep = next((a for a, name in needs if name == new), None)
    n = 0
    for a, name in needs:
        if name == old and keep is not None:
            data[a:a + 4] = data[keep:keep + 4]          # vna_hash
            data[a + 8:a + 12] = data[keep + 8:keep + 12]  # vna_name
            n += 1
    path.write_bytes(bytes(data))
    return n
