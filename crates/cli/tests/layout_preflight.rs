//! Layout pre-flight (issue 24): an edit that changes the layout of a
//! struct the changed code reads (through a pointer into the heap, or
//! through a global) is refused naming the struct and the field, and the
//! program runs on unchanged; the same code edited without a layout
//! change is patched.

use std::path::Path;

use relive_testkit::{relive_run, PATIENCE};

const APP: &str = r#"
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
struct point { int x; int y; };
struct cfg { int a; int b; };
struct cfg *conf;
__attribute__((noinline)) int sum(const struct point *q) { return q->x + q->y; }
__attribute__((noinline)) int conf_b(void) { return conf->b; }
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    struct point *p = malloc(sizeof *p);
    p->x = 1; p->y = 2;
    conf = calloc(1, sizeof *conf);
    conf->b = 2;
    for (;;) { printf("sum %d b %d\n", sum(p), conf_b()); usleep(3000); }
}
"#;

#[test]
fn a_changed_struct_read_through_a_pointer_is_refused_naming_it() {
    for flags in [&["-O0", "-g"][..], &["-O2", "-g"][..]] {
        let dir = tempfile::tempdir().unwrap();
        let exe = relive_testkit::compile(dir.path(), "app", APP, flags);
        let source = dir.path().join("app.c");
        let relive = Path::new(env!("CARGO_BIN_EXE_relive"));
        let (target, events) = relive_run(relive, &[], exe, &[], dir);
        target.wait_for("sum 3 b 2");
        // A field added before `y`: sum reads y elsewhere now.
        let moved = APP.replace(
            "struct point { int x; int y; };",
            "struct point { int x; int z; int y; };",
        );
        std::fs::write(&source, &moved).unwrap();
        let e = events.recv_timeout(PATIENCE).expect("relive reported no reload");
        assert_eq!(e["event"], "refused", "{flags:?}: {e}");
        let message = e["message"].as_str().unwrap();
        assert!(
            message.contains("struct point") && message.contains("field z"),
            "{message}"
        );
        for _ in 0..20 {
            let line = target.next_line();
            assert_eq!(line, "sum 3 b 2", "{flags:?}: the program runs on unchanged");
        }
        // A struct reached only through a global pointer.
        let moved = APP.replace("struct cfg { int a; int b; };", "struct cfg { int a; long c; int b; };");
        std::fs::write(&source, &moved).unwrap();
        let e = events.recv_timeout(PATIENCE).expect("relive reported no reload");
        assert_eq!(e["event"], "refused", "{flags:?}: {e}");
        let message = e["message"].as_str().unwrap();
        assert!(
            message.contains("struct cfg") && message.contains("field c"),
            "{message}"
        );
        target.wait_for("sum 3 b 2");
        // Back to the old layouts, with a new computation: patched.
        std::fs::write(&source, APP.replace("return q->x + q->y;", "return q->x * 10 + q->y;")).unwrap();
        let e = events.recv_timeout(PATIENCE).expect("relive reported no reload");
        assert_eq!(e["event"], "patched", "{flags:?}: {e}");
        target.wait_for("sum 12 b 2");
    }
}
