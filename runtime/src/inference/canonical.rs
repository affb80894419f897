//! A model request read from its canonical encoding in one pass.
//!
//! A request's id hashes its canonical encoding (what solc and every
//! standard encoder write), so the precompile must know whether the
//! arguments it was given are that encoding before it may take their hash
//! as the id. Decoding them and encoding the result again to compare costs
//! two passes and two sets of allocations (2 µs in a loop for a tensor of 64
//! numbers, and several times that with the cold caches of a block, where
//! this runs); [`model_request`] does both in one: it decodes and, as it goes,
//! checks every byte against the one canonical layout: each tail exactly
//! where the one before it ends, every offset and length the only value it
//! may have, integers sign- or zero-extended, padding zero, nothing after
//! the end. Anything else is `None`, and the caller takes the general path
//! ([`InferenceCall::decode`](super::InferenceCall::decode) and a fresh
//! encoding), which also says what is wrong with arguments that do not decode.

use alloy_primitives::U256;

use super::abi::{ModelInferenceRequest, ModelInput, MultiDimensionalNumberTensor, Number, StringTensor};

const WORD: usize = 32;

/// The request whose canonical encoding `abi.encode(request)` is exactly
/// `args` (the arguments of `runModelInference`, after the selector), or
/// `None` when `args` is anything else.
pub fn model_request(args: &[u8]) -> Option<ModelInferenceRequest> {
    let reader = Reader { buf: args };
    // One dynamic parameter: its offset, then its encoding to the end.
    if reader.offset(0)? != WORD {
        return None;
    }
    let (request, end) = reader.request(WORD)?;
    (end == args.len()).then_some(request)
}

/// The encoding being read: each method reads the item at a position and
/// returns it with the position where its encoding ends.
struct Reader<'a> {
    buf: &'a [u8],
}

impl Reader<'_> {
    fn word(&self, at: usize) -> Option<&[u8; WORD]> {
        self.buf.get(at..at.checked_add(WORD)?)?.try_into().ok()
    }

    /// An unsigned integer of at most `bytes` bytes, zero-extended.
    fn uint(&self, at: usize, bytes: usize) -> Option<u64> {
        let (high, low) = self.word(at)?.split_at(WORD - bytes);
        if high.iter().any(|b| *b != 0) {
            return None;
        }
        u64::try_from(U256::from_be_slice(low)).ok()
    }

    /// An offset or a length: never more than the encoding's size, which
    /// also bounds every allocation by what the encoding could hold.
    fn offset(&self, at: usize) -> Option<usize> {
        usize::try_from(self.uint(at, WORD)?).ok().filter(|n| *n <= self.buf.len())
    }

    fn int128(&self, at: usize) -> Option<i128> {
        let (high, low) = self.word(at)?.split_at(16);
        let value = i128::from_be_bytes(low.try_into().ok()?);
        let sign = if value < 0 { 0xff } else { 0 };
        high.iter().all(|b| *b == sign).then_some(value)
    }

    /// A `string`: its length, then its bytes, zero-padded to a word.
    fn string(&self, at: usize) -> Option<(String, usize)> {
        let len = self.offset(at)?;
        let start = at + WORD;
        let end = start.checked_add(len.div_ceil(WORD) * WORD)?;
        let padded = self.buf.get(start..end)?;
        let (text, padding) = padded.split_at(len);
        if padding.iter().any(|b| *b != 0) {
            return None;
        }
        Some((String::from_utf8(text.to_vec()).ok()?, end))
    }

    /// A `T[]` of a static `T` of `words` words each.
    fn static_array<T>(&self, at: usize, words: usize, item: impl Fn(usize) -> Option<T>) -> Option<(Vec<T>, usize)> {
        let len = self.offset(at)?;
        let start = at + WORD;
        let end = start.checked_add(len.checked_mul(words * WORD)?)?;
        if end > self.buf.len() {
            return None;
        }
        let items = (0..len).map(|i| item(start + i * words * WORD)).collect::<Option<_>>()?;
        Some((items, end))
    }

    /// A `T[]` of a dynamic `T`: its length, the offsets of its items
    /// (from the first offset's position), then the items in order.
    fn dynamic_array<T>(
        &self,
        at: usize,
        item: impl Fn(&Self, usize) -> Option<(T, usize)>,
    ) -> Option<(Vec<T>, usize)> {
        let len = self.offset(at)?;
        let heads = at + WORD;
        let mut next = heads.checked_add(len.checked_mul(WORD)?)?;
        // Each item has a head word: the encoding must hold them all.
        if next > self.buf.len() {
            return None;
        }
        let mut items = Vec::with_capacity(len);
        for i in 0..len {
            if heads.checked_add(self.offset(heads + i * WORD)?)? != next {
                return None;
            }
            let (value, end) = item(self, next)?;
            items.push(value);
            next = end;
        }
        Some((items, next))
    }

    /// The head word at `head` of a tuple starting at `start`, an offset
    /// that must point at `next`, where the previous tail ended.
    fn tail_at(&self, start: usize, head: usize, next: usize) -> Option<usize> {
        (start.checked_add(self.offset(head)?)? == next).then_some(next)
    }

    fn request(&self, at: usize) -> Option<(ModelInferenceRequest, usize)> {
        let mode = u8::try_from(self.uint(at, 1)?).ok()?;
        let (model, end) = self.string(self.tail_at(at, at + WORD, at + 3 * WORD)?)?;
        let (input, end) = self.input(self.tail_at(at, at + 2 * WORD, end)?)?;
        Some((ModelInferenceRequest { mode, modelCID: model, input }, end))
    }

    fn input(&self, at: usize) -> Option<(ModelInput, usize)> {
        let (numbers, end) = self.dynamic_array(self.tail_at(at, at, at + 2 * WORD)?, Self::number_tensor)?;
        let (strings, end) = self.dynamic_array(self.tail_at(at, at + WORD, end)?, Self::string_tensor)?;
        Some((ModelInput { numbers, strings }, end))
    }

    fn number_tensor(&self, at: usize) -> Option<(MultiDimensionalNumberTensor, usize)> {
        let (name, end) = self.string(self.tail_at(at, at, at + 3 * WORD)?)?;
        let number = |i| Some(Number { value: self.int128(i)?, decimals: self.int128(i + WORD)? });
        let (values, end) = self.static_array(self.tail_at(at, at + WORD, end)?, 2, number)?;
        let dimension = |i| u32::try_from(self.uint(i, 4)?).ok();
        let (shape, end) = self.static_array(self.tail_at(at, at + 2 * WORD, end)?, 1, dimension)?;
        Some((MultiDimensionalNumberTensor { name, values, shape }, end))
    }

    fn string_tensor(&self, at: usize) -> Option<(StringTensor, usize)> {
        let (name, end) = self.string(self.tail_at(at, at, at + 2 * WORD)?)?;
        let (values, end) = self.dynamic_array(self.tail_at(at, at + WORD, end)?, Self::string)?;
        Some((StringTensor { name, values }, end))
    }
}

#[cfg(test)]
mod tests {
    use alloy_sol_types::SolValue;
    use rand_chacha::ChaCha8Rng;
    use rand_chacha::rand_core::{RngCore, SeedableRng};

    use super::*;

    fn random_request(rng: &mut ChaCha8Rng) -> ModelInferenceRequest {
        let text = |rng: &mut ChaCha8Rng| {
            let words = ["", "x", "QmQfHBah12d1MgqCvSR9HB4YKAyNYYcFBvca8kkcZG5J51", "ünïcødé ✓", &"long".repeat(17)];
            words[rng.next_u32() as usize % words.len()].to_owned()
        };
        let int = |rng: &mut ChaCha8Rng| match rng.next_u32() % 4 {
            0 => i128::MIN,
            1 => i128::MAX,
            2 => i128::from(rng.next_u32() as i32),
            _ => i128::from(rng.next_u64()) << 64 | i128::from(rng.next_u64()),
        };
        let numbers = (0..rng.next_u32() % 3)
            .map(|_| MultiDimensionalNumberTensor {
                name: text(rng),
                values: (0..rng.next_u32() % 70).map(|_| Number { value: int(rng), decimals: int(rng) }).collect(),
                shape: (0..rng.next_u32() % 3).map(|_| rng.next_u32()).collect(),
            })
            .collect();
        let strings = (0..rng.next_u32() % 3)
            .map(|_| StringTensor { name: text(rng), values: (0..rng.next_u32() % 3).map(|_| text(rng)).collect() })
            .collect();
        ModelInferenceRequest {
            mode: rng.next_u32() as u8,
            modelCID: text(rng),
            input: ModelInput { numbers, strings },
        }
    }

    /// What [`model_request`] must answer, by definition: the request the
    /// general decoder reads, when its canonical encoding is `args`.
    fn by_definition(args: &[u8]) -> Option<ModelInferenceRequest> {
        let (request,) = <(ModelInferenceRequest,)>::abi_decode_params(args).ok()?;
        (request.abi_encode() == args).then_some(request)
    }

    #[test]
    fn canonical_encodings_read_back_as_their_requests() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for _ in 0..300 {
            let request = random_request(&mut rng);
            let args = request.abi_encode();
            assert_eq!(model_request(&args), Some(request));
        }
    }

    #[test]
    fn any_other_bytes_are_refused_exactly_when_they_are_not_a_canonical_encoding() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let mut refused = 0;
        for _ in 0..3_000 {
            let mut args = random_request(&mut rng).abi_encode();
            let at = rng.next_u32() as usize % args.len();
            match rng.next_u32() % 6 {
                // A byte changed: in a number, a string or padding, an offset, a length.
                0 | 1 => args[at] ^= 1 << (rng.next_u32() % 8),
                // A whole word set to a small number (a plausible offset or length).
                2 => {
                    let word = at / WORD * WORD;
                    args[word..word + WORD].copy_from_slice(&U256::from(rng.next_u32() % 512).to_be_bytes::<32>());
                }
                // Cut short, or more after the end.
                3 => args.truncate(at),
                4 => args.extend_from_slice(&[0; WORD]),
                // The top byte of a word set (an integer not sign-extended, a huge offset).
                _ => args[at / WORD * WORD] = 0xff,
            }
            let read = model_request(&args);
            refused += usize::from(read.is_none());
            assert_eq!(read, by_definition(&args), "{}", alloy_primitives::hex::encode(&args));
        }
        // Most changes make something that is not a canonical encoding.
        assert!(refused > 2_000, "{refused}");
    }
}
