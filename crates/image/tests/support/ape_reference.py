#!/usr/bin/env python3
"""Independent reference reader for APE files, used by the Rust tests.

It shares no code with relive: it decodes the printf ELF headers, finds the
Mach-O header through the dd line with a regular expression, reads the PE
header, lists the ZIP with Python's zipfile, and parses the Cosmopolitan
.symtab entries with struct. Prints one JSON object.
"""
import json
import re
import struct
import sys
import zipfile

EM_NAMES = {62: "x86_64", 183: "aarch64"}
PT_NAMES = {0: "NULL", 1: "LOAD", 2: "DYNAMIC", 3: "INTERP", 4: "NOTE", 5: "SHLIB", 6: "PHDR", 7: "TLS",
            0x6474E550: "GNU_EH_FRAME", 0x6474E551: "GNU_STACK", 0x6474E552: "GNU_RELRO", 0x6474E553: "GNU_PROPERTY"}


def decode_printf(data, start):
    out = bytearray()
    i = start
    while i < len(data):
        c = data[i]
        if c == ord("'"):
            return bytes(out)
        if c == ord("\\") and i + 1 < len(data) and 48 <= data[i + 1] <= 55:
            j = i + 1
            v = 0
            while j < len(data) and j < i + 4 and 48 <= data[j] <= 55:
                v = v * 8 + (data[j] - 48)
                j += 1
            out.append(v & 0xFF)
            i = j
        else:
            out.append(c)
            i += 1
    return None


def elf_headers(data):
    headers = []
    seen = set()
    if data[:4] == b"\x7fELF":
        headers.append((0, data[:64]))
    for m in re.finditer(rb"printf '", data[:8192 + 8]):
        if m.start() >= 8192:
            continue
        hdr = decode_printf(data, m.end())
        if hdr is None or len(hdr) < 64 or hdr[:4] != b"\x7fELF" or hdr[4] != 2 or hdr[5] != 1:
            continue
        e_type, = struct.unpack_from("<H", hdr, 16)
        e_phentsize, = struct.unpack_from("<H", hdr, 54)
        if e_type not in (2, 3) or e_phentsize != 56:
            continue
        headers.append((m.start(), hdr))
    out = []
    for offset, hdr in headers:
        e_machine, = struct.unpack_from("<H", hdr, 18)
        if e_machine in seen:
            continue
        seen.add(e_machine)
        entry, phoff = struct.unpack_from("<QQ", hdr, 24)
        phnum, = struct.unpack_from("<H", hdr, 56)
        segs = []
        for k in range(phnum):
            p_type, p_flags, p_offset, p_vaddr, _, p_filesz, p_memsz, _ = struct.unpack_from(
                "<IIQQQQQQ", data, phoff + 56 * k)
            flags = ("r" if p_flags & 4 else "-") + ("w" if p_flags & 2 else "-") + ("x" if p_flags & 1 else "-")
            segs.append({"type": PT_NAMES.get(p_type, p_type), "flags": flags, "offset": p_offset,
                         "vaddr": p_vaddr, "filesz": p_filesz, "memsz": p_memsz})
        out.append({"header_offset": offset, "machine": EM_NAMES.get(e_machine), "e_machine": e_machine,
                    "entry": entry, "phoff": phoff, "phnum": phnum, "segments": segs})
    return out


def macho(data):
    script = data[:8192]
    rx = rb'bs=([ 0-9]+) skip=(?:"|\$\(\()?([ 0-9]+)(?:"|\)\))? count=(?:"|\$\(\()?([ 0-9]+)(?:"|\)\))?'
    for m in re.finditer(rx, script):
        bs, skip, count = (int(g.strip()) for g in m.groups())
        off = skip * bs
        if off + 8 <= len(data) and struct.unpack_from("<II", data, off) == (0xFEEDFACF, 0x01000007):
            ncmds, = struct.unpack_from("<I", data, off + 16)
            at = off + 32
            segs, entry = [], None
            for _ in range(ncmds):
                cmd, size = struct.unpack_from("<II", data, at)
                if cmd == 0x19:
                    name = data[at + 8:at + 24].rstrip(b"\0").decode()
                    vmaddr, vmsize, fileoff, filesize = struct.unpack_from("<QQQQ", data, at + 24)
                    segs.append({"name": name, "vmaddr": vmaddr, "vmsize": vmsize,
                                 "fileoff": fileoff, "filesize": filesize})
                elif cmd == 0x5:
                    entry, = struct.unpack_from("<Q", data, at + 16 + 16 * 8)
                at += size
            return {"offset": off, "size": count * bs, "cputype": 0x01000007, "entry": entry, "segments": segs}
    return None


def pe(data):
    if data[:2] != b"MZ":
        return None
    lfanew, = struct.unpack_from("<I", data, 0x3C)
    if data[lfanew:lfanew + 4] != b"PE\0\0":
        return None
    machine, nsec = struct.unpack_from("<HH", data, lfanew + 4)
    opt_size, = struct.unpack_from("<H", data, lfanew + 20)
    opt = lfanew + 24
    entry_rva, = struct.unpack_from("<I", data, opt + 16)
    image_base, = struct.unpack_from("<Q", data, opt + 24)
    secs = []
    for k in range(nsec):
        s = opt + opt_size + 40 * k
        name = data[s:s + 8].rstrip(b"\0").decode()
        vsize, va, rsize, roff = struct.unpack_from("<IIII", data, s + 8)
        secs.append({"name": name, "virtual_address": va, "virtual_size": vsize,
                     "raw_offset": roff, "raw_size": rsize})
    return {"offset": lfanew, "machine": machine, "image_base": image_base, "entry_rva": entry_rva,
            "sections": secs}


def cosmo_symtab(blob):
    magic, abi, count = struct.unpack_from("<IIQ", blob, 0)
    assert magic == 0x544D5953 and abi == 1
    base, = struct.unpack_from("<q", blob, 32)
    names_off, pool_off = struct.unpack_from("<II", blob, 64)
    syms = []
    for k in range(count):
        x, y = struct.unpack_from("<II", blob, 72 + 8 * k)
        n, = struct.unpack_from("<I", blob, names_off + 4 * k)
        end = blob.index(b"\0", pool_off + n)
        syms.append([blob[pool_off + n:end].decode("utf-8", "replace"), base + x, y - x + 1])
    return syms


def main(path):
    data = open(path, "rb").read()
    result = {"size": len(data), "elf": elf_headers(data), "macho": macho(data), "pe": pe(data),
              "zip": None, "symtabs": {}}
    try:
        z = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        z = None
    if z is not None:
        entries = []
        for info in z.infolist():
            lh = info.header_offset
            name_len, extra_len = struct.unpack_from("<HH", data, lh + 26)
            entries.append({"name": info.filename, "local_header_offset": lh,
                            "data_offset": lh + 30 + name_len + extra_len, "method": info.compress_type,
                            "compressed_size": info.compress_size, "size": info.file_size, "crc32": info.CRC})
            if info.filename.startswith(".symtab."):
                result["symtabs"][info.filename] = cosmo_symtab(z.read(info))
        result["zip"] = {"entries": entries}
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1])
