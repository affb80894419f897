//! The ONNX signature reader against the models `tools/make_models.py` writes,
//! and against damaged copies of them.

use std::path::PathBuf;

use nml_compiler::sema::onnx::{
    GraphElem, MAX_FILE_BYTES, OnnxError, OnnxSignature, Opset, ReadFileError, TensorInfo, read_file, read_signature,
};
use nml_protocol::{Dim, ElementType};

fn model_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/ui/models").join(name)
}

fn model_bytes(name: &str) -> Vec<u8> {
    let path = model_path(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e} (run tools/make_models.py)", path.display()))
}

fn signature(name: &str) -> OnnxSignature {
    read_signature(&model_bytes(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn tensor(name: &str, elem: ElementType, dims: &[Dim]) -> TensorInfo {
    TensorInfo { name: name.into(), elem: GraphElem::Known(elem), shape: Some(dims.to_vec()) }
}

fn default_opset(version: i64) -> Vec<Opset> {
    vec![Opset { domain: String::new(), version }]
}

#[test]
fn vol_onnx_signature() {
    let sig = signature("vol.onnx");
    assert_eq!(sig.ir_version, 8);
    assert_eq!(sig.opsets, default_opset(17));
    assert_eq!(sig.default_opset(), Some(17));
    assert_eq!(sig.inputs, [tensor("returns", ElementType::Float32, &[Dim::Fixed(1), Dim::Fixed(30)])]);
    assert_eq!(sig.outputs, [tensor("vol", ElementType::Float32, &[Dim::Fixed(1)])]);
    assert!(sig.non_tensor_outputs.is_empty());
    assert_eq!(sig.inputs[0].elem.to_string(), "float32");
}

#[test]
fn volatility_onnx_example_is_vol_onnx() {
    let example = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/dynamic-fee/models/volatility.onnx");
    let bytes = std::fs::read(&example).expect("examples/dynamic-fee/models/volatility.onnx");
    assert_eq!(bytes, model_bytes("vol.onnx"));
}

#[test]
fn multi_onnx_signature() {
    let sig = signature("multi.onnx");
    let f14 = [Dim::Fixed(1), Dim::Fixed(4)];
    let i12 = [Dim::Fixed(1), Dim::Fixed(2)];
    assert_eq!(sig.inputs, [tensor("a", ElementType::Float32, &f14), tensor("b", ElementType::Int64, &i12)]);
    assert_eq!(sig.outputs, [tensor("y", ElementType::Float32, &f14), tensor("z", ElementType::Int64, &i12)]);
    assert_eq!(sig.outputs[1].elem.to_string(), "int64");
}

#[test]
fn dynamic_onnx_has_a_symbolic_batch() {
    let sig = signature("dynamic.onnx");
    let n = Dim::Symbolic(Some("N".into()));
    assert_eq!(sig.inputs, [tensor("x", ElementType::Float32, &[n.clone(), Dim::Fixed(3)])]);
    assert_eq!(sig.outputs, [tensor("y", ElementType::Float32, &[n, Dim::Fixed(1)])]);
}

#[test]
fn strings_onnx_signature() {
    let sig = signature("strings.onnx");
    let one = [Dim::Fixed(1)];
    assert_eq!(sig.inputs, [tensor("s", ElementType::String, &one), tensor("x", ElementType::Float32, &one)]);
    assert_eq!(sig.outputs, [tensor("s_out", ElementType::String, &one), tensor("y", ElementType::Float32, &one)]);
    assert_eq!(sig.inputs[0].elem.to_string(), "string");
}

#[test]
fn opset20_onnx_signature() {
    let sig = signature("opset20.onnx");
    assert_eq!(sig.ir_version, 9);
    assert_eq!(sig.default_opset(), Some(20));
    // `axes` is an initializer only, never an input.
    assert_eq!(sig.inputs, signature("vol.onnx").inputs);
    assert_eq!(sig.outputs, signature("vol.onnx").outputs);
}

#[test]
fn with_initializer_input_onnx_hides_the_initializer() {
    let sig = signature("with_initializer_input.onnx");
    assert_eq!(sig.ir_version, 3);
    assert_eq!(sig.opsets, default_opset(7));
    let f12 = [Dim::Fixed(1), Dim::Fixed(2)];
    assert_eq!(sig.inputs, [tensor("x", ElementType::Float32, &f12)]);
    assert_eq!(sig.outputs, [tensor("y", ElementType::Float32, &f12)]);
    // The file does list `w` as a graph input (field 11, a 19-byte
    // ValueInfoProto named `w`): the reader must have hidden it.
    let bytes = model_bytes("with_initializer_input.onnx");
    assert!(bytes.windows(5).any(|w| w == b"\x5a\x13\x0a\x01w"), "w is no longer listed as an input");
}

#[test]
fn truncated_onnx_is_truncated() {
    let err = read_signature(&model_bytes("truncated.onnx")).unwrap_err();
    assert!(matches!(err, OnnxError::Truncated { offset, .. } if offset > 0), "{err:?}");
    assert!(err.to_string().contains("truncated"), "{err}");
}

#[test]
fn not_onnx_text_and_json_have_no_graph() {
    assert_eq!(read_signature(&model_bytes("not_onnx.onnx")), Err(OnnxError::NoGraph));
    for text in [
        &b""[..],
        b"{\"graph\": {\"input\": []}}",
        b"[1, 2, 3]",
        b"model Volatility { onnx \"x.onnx\"; }\n",
        b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR",
        b"PK\x03\x04\x14\0\0\0\x08\0",
    ] {
        let err = read_signature(text).unwrap_err();
        assert_eq!(err, OnnxError::NoGraph, "{}", String::from_utf8_lossy(text));
    }
    assert_eq!(OnnxError::NoGraph.to_string(), "no graph: this is not an ONNX model");
}

/// A deterministic xorshift64 generator.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Every outcome must be a clean one: a plausible signature or an error
/// that says something.
fn check_outcome(bytes: &[u8]) -> Option<OnnxSignature> {
    match read_signature(bytes) {
        Ok(sig) => {
            assert!((1..=100).contains(&sig.ir_version), "{sig:?}");
            Some(sig)
        }
        Err(e) => {
            assert!(!e.to_string().is_empty());
            None
        }
    }
}

#[test]
fn onnx_prefixes_of_vol_never_pass_for_the_whole_model() {
    let vol = model_bytes("vol.onnx");
    let full = signature("vol.onnx");
    for len in 0..vol.len() {
        // Only a cut right after the graph decodes, losing the opset imports.
        if let Some(sig) = check_outcome(&vol[..len]) {
            assert_eq!((&sig.inputs, &sig.outputs), (&full.inputs, &full.outputs), "prefix of {len} bytes");
            assert!(len >= vol.len() * 9 / 10, "prefix of {len} bytes read as a model");
        }
    }
}

#[test]
fn onnx_mutations_of_vol_never_panic() {
    let vol = model_bytes("vol.onnx");
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut ok = 0;
    for _ in 0..20_000 {
        let mut bytes = vol.clone();
        for _ in 0..=rng.below(4) {
            let at = rng.below(bytes.len());
            match rng.below(6) {
                0 => bytes[at] ^= 1 << rng.below(8),
                1 => bytes[at] = rng.next() as u8,
                2 => bytes.insert(at, rng.next() as u8),
                3 if bytes.len() > 1 => {
                    bytes.remove(at);
                }
                4 => {
                    let end = at + rng.below(bytes.len() - at);
                    let chunk = bytes[at..end].to_vec();
                    bytes.splice(at..at, chunk);
                }
                _ => bytes[at] = [0x00, 0x7f, 0x80, 0xff][rng.below(4)],
            }
            if bytes.is_empty() {
                break;
            }
        }
        ok += usize::from(check_outcome(&bytes).is_some());
        let (a, b) = (rng.below(bytes.len()), rng.below(bytes.len()));
        check_outcome(&bytes[a.min(b)..a.max(b)]);
    }
    // Most single flips land in names or unknown fields and still decode;
    // the run must have covered both outcomes.
    assert!(ok > 0 && ok < 20_000, "{ok} of 20000 mutations decoded");
}

#[test]
fn onnx_random_bytes_are_rejected() {
    let mut rng = XorShift(42);
    for _ in 0..5_000 {
        let len = 16 + rng.below(400);
        let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        assert!(read_signature(&bytes).is_err(), "{bytes:02x?} decoded as a model");
    }
}

#[test]
fn onnx_file_reads_a_regular_file() {
    assert_eq!(read_file(&model_path("vol.onnx")).expect("readable"), model_bytes("vol.onnx"));
    assert!(matches!(read_file(&model_path("nope.onnx")), Err(ReadFileError::NotFound)));
    assert!(matches!(read_file(&model_path("")), Err(ReadFileError::Directory)));
}

#[test]
fn onnx_file_larger_than_protobuf_allows_is_not_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("huge.onnx");
    // Sparse: no disk space is used and, with the size checked first, no
    // byte is read.
    std::fs::File::create(&path).and_then(|f| f.set_len(MAX_FILE_BYTES + 1)).expect("sparse file");
    assert!(matches!(read_file(&path), Err(ReadFileError::TooLarge)));
}

/// A socket, like a FIFO or a device, is not read: a FIFO without a writer
/// would block forever and `/dev/zero` never ends.
#[cfg(unix)]
#[test]
fn onnx_file_that_is_not_regular_is_not_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("model.onnx");
    let _listener = std::os::unix::net::UnixListener::bind(&socket).expect("bind");
    assert!(matches!(read_file(&socket), Err(ReadFileError::NotRegular)));
    assert!(matches!(read_file(std::path::Path::new("/dev/zero")), Err(ReadFileError::NotRegular)));
}
