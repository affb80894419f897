//! Arbitrary bytes into the parser: if they are UTF-8, `syntax::parse` must
//! return a tree or a diagnostic, never panic or overflow the stack.

#![no_main]

use libfuzzer_sys::fuzz_target;
use nml_compiler::diagnostics::FileId;
use nml_compiler::syntax;

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else { return };
    if let Err(diag) = syntax::parse(FileId(0), src) {
        // The renderers slice the source at the span: it must lie inside the
        // text and on character boundaries.
        if let Some((_, span)) = &diag.location {
            assert!(span.start <= span.end, "reversed span {span:?}");
            assert!(src.get(span.clone()).is_some(), "span {span:?} is not a slice of the {}-byte input", src.len());
        }
    }
});
