//! The line table of a patch's symbol file stops reading the object's line
//! program once every placed function's rows are behind it (SQLite's
//! program is a megabyte for one function's few rows). What it writes
//! must be what reading the whole program writes, wherever the placed
//! function is: first, in the middle, last, or a cold part in its own
//! section; with one code section or one per function; gcc and clang.

use relive_patch::line_table::{self, Moved};
use relive_patch::objfile::Kind;
use relive_patch::ObjectFile;
use relive_testkit::compile_object_with;

const SOURCE: &str = r#"
#include <stdio.h>
__attribute__((noinline)) int first(int x) {
    int y = x * 3;
    if (y > 10)
        y -= 4;
    return y;
}
volatile int seen;
__attribute__((cold, noinline)) void report(const char *m, int x) { fprintf(stderr, m, x); }
__attribute__((noinline)) int middle(int x) {
    if (x == 12345) {
        report("rare %d\n", x);
        x = x * 7 + seen;
    }
    return x + 7;
}
__attribute__((noinline)) int last(int x) {
    int s = 0;
    for (int i = 0; i < x; i++)
        s += i * i;
    return s;
}
int main(int argc, char **argv) {
    (void)argv;
    return first(argc) + middle(argc) + last(argc);
}
"#;

/// The symbol file's line table with the function `symbol` of `obj`
/// placed at 0x10000, reading the program until the function's rows are
/// behind (`early`) or whole.
fn placed_table(obj: &ObjectFile, symbol: usize, early: bool) -> Option<Vec<u8>> {
    let sym = &obj.symbols[symbol];
    let (section, from, to) = (sym.section, sym.offset, sym.offset + sym.size.max(1));
    let start = 0x10000;
    let moved = |s: usize, offset: u64| {
        (s == section && (from..to).contains(&offset)).then(|| Moved {
            start,
            len: sym.size.max(1),
            address: start + (offset - from),
        })
    };
    let debug_line = line_table::with_code_places(obj);
    let ends = [(section, to)];
    line_table::placed(&debug_line, &moved, if early { &ends } else { &[] })
}

#[test]
fn reading_until_the_placed_code_is_behind_writes_what_reading_it_all_writes() {
    let builds: [(&str, &[&str]); 4] = [
        ("gcc", &["-O2", "-g"]),
        ("gcc", &["-O2", "-g", "-ffunction-sections"]),
        ("clang", &["-O2", "-g"]),
        ("clang", &["-O0", "-g", "-ffunction-sections"]),
    ];
    for (cc, flags) in builds {
        let dir = tempfile::tempdir().unwrap();
        let obj = ObjectFile::open(compile_object_with(cc, dir.path(), "lines", SOURCE, flags)).unwrap();
        let functions: Vec<usize> = (0..obj.symbols.len())
            .filter(|&i| obj.symbols[i].kind == Kind::Function && obj.symbols[i].size > 0)
            .collect();
        let names: Vec<&str> = functions.iter().map(|&i| obj.symbols[i].name.as_str()).collect();
        for expected in ["first", "middle", "last", "main"] {
            assert!(names.contains(&expected), "{cc} {flags:?}: {names:?}");
        }
        if cc == "gcc" {
            // The cold part of `middle`, in `.text.unlikely`.
            assert!(names.iter().any(|n| n.starts_with("middle.cold")), "{names:?}");
        }
        for &i in &functions {
            let what = format!("{cc} {flags:?}: {}", obj.symbols[i].name);
            let whole = placed_table(&obj, i, false).unwrap_or_else(|| panic!("{what}: no table"));
            let early = placed_table(&obj, i, true).unwrap_or_else(|| panic!("{what}: no table"));
            assert_eq!(early, whole, "{what}");
            // And the table holds rows: more than the header and one
            // empty sequence.
            let header_only = placed_table_without_rows(&obj);
            assert!(whole.len() > header_only + 16, "{what}: {} bytes", whole.len());
        }
    }
}

/// The length of a table with nothing placed: the object's header alone.
fn placed_table_without_rows(obj: &ObjectFile) -> usize {
    let debug_line = line_table::with_code_places(obj);
    line_table::placed(&debug_line, &|_, _| None, &[]).unwrap().len()
}
