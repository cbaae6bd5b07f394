#!/usr/bin/env bash
# Seeds each fuzz target's corpus from the real APE fixtures.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
fixtures="$here/../../shared/fixtures/ape"
mkdir -p "$here"/corpus/{ape_header,zip,cosmo_symtab,whole_file}
for f in pledge.com ent.com ent.elf; do
  head -c 8192 "$fixtures/$f" > "$here/corpus/ape_header/$f"
  cp "$fixtures/$f" "$here/corpus/whole_file/$f"
  python3 - "$fixtures/$f" "$here/corpus" <<'PY'
import sys, zipfile, os
path, corpus = sys.argv[1], sys.argv[2]
data = open(path, "rb").read()
z = zipfile.ZipFile(path)
# Standalone archives (offsets from 0, as the zip target reads them) holding
# the real entries, plain and forced ZIP64.
for force64 in (False, True):
    out = os.path.join(corpus, "zip", os.path.basename(path) + (".zip64" if force64 else "") + ".zip")
    with zipfile.ZipFile(out, "w") as w:
        for i in z.infolist():
            method = zipfile.ZIP_DEFLATED if i.compress_type == 8 else zipfile.ZIP_STORED
            info = zipfile.ZipInfo(i.filename)
            info.compress_type = method
            with w.open(info, "w", force_zip64=force64) as f:
                f.write(z.read(i)[:4096])
for i in z.infolist():
    if i.filename.startswith(".symtab."):
        open(os.path.join(corpus, "cosmo_symtab", os.path.basename(path) + i.filename), "wb").write(z.read(i))
PY
done
echo "corpus ready in $here/corpus"
# Relocatable objects for object_diff: a few small C files at -O0 and -O2.
mkdir -p "$here/corpus/object_diff"
tmp=$(mktemp -d)
printf '#include <stdio.h>\nint g = 1; static int s;\nint f(int x) { static int n; n += x; printf("%%d %%s\\n", n, "lit"); return s + g; }\nstatic int h(int y) { return y * 3; }\nint k(int z) { return h(z) + f(z); }\n' > "$tmp/a.c"
for o in -O0 -O2; do
  gcc $o -c "$tmp/a.c" -o "$here/corpus/object_diff/a$o.o"
  gcc $o -g -c "$tmp/a.c" -o "$here/corpus/object_diff/a$o-g.o"
  gcc $o -ffunction-sections -fdata-sections -c "$tmp/a.c" -o "$here/corpus/object_diff/a$o-sections.o"
done
# SMF modules for smf_parse, smf_load and smf_registry, packed by relive from the same C file.
mkdir -p "$here/corpus/smf_parse" "$here/corpus/smf_load" "$here/corpus/smf_registry"
relive="$here/../target/debug/relive"
[ -x "$relive" ] || (cd "$here/.." && cargo build -q -p relive)
for o in -O0 -O2; do
  gcc $o -fPIC -c "$tmp/a.c" -o "$tmp/a$o.o"
  "$relive" smf pack "$tmp/a$o.o" -o "$here/corpus/smf_parse/a$o.smf" >/dev/null
  cp "$here/corpus/smf_parse/a$o.smf" "$here/corpus/smf_load/"
  cp "$here/corpus/smf_parse/a$o.smf" "$here/corpus/smf_registry/"
done
# For smf_registry: a module that exports an object under the name it
# imports from the host, so its second copy imports the first's object and
# is relinked when the first's data moves. (Its name hash is fixed here;
# the target fixes the module hash.)
printf 'extern char **environ;\nlong environ2 = 5;\nlong *p = &environ2;\nlong get(void) { return (long)environ + environ2 + *p; }\n' > "$tmp/e.c"
gcc -O2 -fPIC -c "$tmp/e.c" -o "$tmp/e.o"
"$relive" smf pack "$tmp/e.o" -o "$tmp/e.smf" >/dev/null
python3 - "$tmp/e.smf" "$here/corpus/smf_registry/self-import.smf" <<'PY'
import struct, sys
b = bytearray(open(sys.argv[1], "rb").read())
count, table = struct.unpack_from("<I", b, 32)[0], struct.unpack_from("<Q", b, 40)[0]
strings = struct.unpack_from("<Q", b, 56)[0]
def name(offset):
    return bytes(b[strings + offset:b.index(0, strings + offset)])
entries = {name(struct.unpack_from("<I", b, table + 40 * i)[0]): table + 40 * i for i in range(count)}
h = 0x811C9DC5
for c in b"environ":
    h = ((h ^ c) * 0x01000193) & 0xFFFFFFFF
struct.pack_into("<II", b, entries[b"environ2"], struct.unpack_from("<I", b, entries[b"environ"])[0], h)
open(sys.argv[2], "wb").write(b)
PY
rm -rf "$tmp"
