//! Bytecode as a compiled artifact writes it, which the compiler (coverage)
//! and the runtime (the test runner, which knows deployed contracts by
//! their code) both read: hex whose unlinked library addresses are
//! placeholders, `__$` and 34 hex digits and `$__`.

/// The bytes of `hex` (with or without `0x`), `None` where a deployed copy
/// may hold anything: the 20 bytes of each library placeholder (and a pair
/// of characters that is not hex).
pub fn unlinked_code(hex: &str) -> Vec<Option<u8>> {
    let hex = hex.strip_prefix("0x").unwrap_or(hex).as_bytes();
    let mut code = Vec::with_capacity(hex.len() / 2);
    let mut at = 0;
    while at + 2 <= hex.len() {
        if hex[at..].starts_with(b"__") {
            code.extend([None; 20]);
            at += 40;
        } else {
            let pair = std::str::from_utf8(&hex[at..at + 2]).ok();
            code.push(pair.and_then(|p| u8::from_str_radix(p, 16).ok()));
            at += 2;
        }
    }
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_placeholders_are_twenty_open_bytes() {
        let code = unlinked_code(&format!("0x6001__${}$__00", "ab".repeat(17)));
        assert_eq!(code.len(), 23);
        assert_eq!(code[..2], [Some(0x60), Some(0x01)]);
        assert!(code[2..22].iter().all(Option::is_none));
        assert_eq!(code[22], Some(0));
        assert_eq!(unlinked_code("60zz"), [Some(0x60), None]);
        assert!(unlinked_code("").is_empty());
    }
}
