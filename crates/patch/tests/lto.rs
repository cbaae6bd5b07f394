//! LTO objects, built by the real compilers: slim ones (gcc -flto) and
//! LLVM bitcode (clang -flto) have no machine code and are refused with
//! the fix; fat ones (gcc -ffat-lto-objects) carry real code and are read
//! like any other object.

use relive_patch::objfile::Kind;
use relive_patch::{diff, ObjectFile, PatchError};
use relive_testkit::{compile_object, compile_object_with};

const SOURCE: &str = "int counter = 1;\nint value(void) { return counter + 1; }\n";

fn refusal(cc: &str, flags: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let obj = compile_object_with(cc, dir.path(), "app", SOURCE, flags);
    match ObjectFile::open(&obj) {
        Err(e @ PatchError::NotObject { .. }) => {
            let message = e.to_string();
            assert!(
                message.contains(&obj.display().to_string()),
                "names the file: {message}"
            );
            message
        }
        Err(e) => panic!("{cc} {flags:?}: wrong error {e}"),
        Ok(o) => panic!("{cc} {flags:?}: read as an object with {} symbols", o.symbols.len()),
    }
}

#[test]
fn gcc_lto_objects_are_refused_unless_fat() {
    for flags in [&["-O2", "-flto"][..], &["-O0", "-flto", "-fno-fat-lto-objects"][..]] {
        let message = refusal("gcc", flags);
        assert!(message.contains("GCC LTO object (-flto)"), "{message}");
        assert!(message.contains("-fno-lto"), "{message}");
        assert!(message.contains("-ffat-lto-objects"), "{message}");
    }
    fat_lto_objects_are_read_for_their_code();
}

#[test]
fn clang_bitcode_is_refused_with_the_fix() {
    for flags in [&["-O2", "-flto"][..], &["-O2", "-flto=thin"][..]] {
        let message = refusal("clang", flags);
        assert!(message.contains("LLVM bitcode"), "{message}");
        assert!(message.contains("-flto") && message.contains("-fno-lto"), "{message}");
    }
}

/// What the refusal must not catch: `-ffat-lto-objects` has real code.
fn fat_lto_objects_are_read_for_their_code() {
    let dir = tempfile::tempdir().unwrap();
    let fat = compile_object(dir.path(), "fat", SOURCE, &["-O2", "-flto", "-ffat-lto-objects"]);
    let data = std::fs::read(&fat).unwrap();
    assert!(
        data.windows(9).any(|w| w == b".gnu.lto_"),
        "a fat object keeps GCC's LTO sections too"
    );
    let fat = ObjectFile::open(&fat).unwrap();
    let value = fat.symbols.iter().find(|s| s.name == "value").expect("value");
    assert_eq!(value.kind, Kind::Function);
    assert!(value.bytes.as_ref().is_some_and(|b| !b.is_empty()));
    // The same code as a plain compile, and an edit shows.
    let plain = ObjectFile::open(compile_object(dir.path(), "plain", SOURCE, &["-O2"])).unwrap();
    let d = diff(&plain, &fat);
    assert!(d.changed.is_empty() && d.unchanged >= 2, "{d:?}");
    let edited = compile_object(
        dir.path(),
        "edited",
        &SOURCE.replace("+ 1", "+ 2"),
        &["-O2", "-flto", "-ffat-lto-objects"],
    );
    let d = diff(&fat, &ObjectFile::open(edited).unwrap());
    assert_eq!(d.changed.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), ["value"]);
}
