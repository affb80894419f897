//! What the cheatcodes do to calls between contracts: mocked calls
//! (`mockCall`, `mockCallRevert`: they outlive the transaction, like
//! inference mocks), expected calls (`expectCall`) and recorded logs
//! (`recordLogs`, `getRecordedLogs`), which end with the transaction.

use alloy_primitives::{Address, Bytes, Log};

use super::Vm;

/// A mocked call: calls to `callee` whose calldata starts with `data`
/// answer `answer` without running the callee's code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct CallMock {
    pub callee: Address,
    pub data: Bytes,
    /// Return data, or revert data.
    pub answer: Result<Bytes, Bytes>,
}

/// The answer of the mock that applies to a call of `callee` with
/// `input`: of the mocks whose data the input starts with, the longest
/// (an exact calldata wins over a selector alone); the latest of equals.
pub(super) fn mocked_call<'a>(
    mocks: &'a [CallMock],
    callee: Address,
    input: &[u8],
) -> Option<&'a Result<Bytes, Bytes>> {
    mocks
        .iter()
        .enumerate()
        .filter(|(_, m)| m.callee == callee && input.starts_with(&m.data))
        .max_by_key(|(i, m)| (m.data.len(), *i))
        .map(|(_, m)| &m.answer)
}

/// A call the test expects before its transaction ends.
#[derive(Debug, Clone)]
pub(super) struct ExpectedCall {
    pub callee: Address,
    pub data: Bytes,
    pub seen: bool,
}

impl ExpectedCall {
    /// Marks it seen when a call of `callee` with `input` matches.
    pub(super) fn observe(&mut self, callee: Address, input: &[u8]) {
        self.seen |= self.callee == callee && input.starts_with(&self.data);
    }

    /// The reason a test fails when the call never came.
    pub(super) fn unmet(&self) -> String {
        format!(
            "vm.expectCall: no call to {} with calldata starting 0x{} was made",
            self.callee,
            alloy_primitives::hex::encode(&self.data)
        )
    }
}

/// A log as `getRecordedLogs` returns it.
pub(super) fn recorded(log: &Log) -> Vm::Log {
    Vm::Log { topics: log.topics().to_vec(), data: log.data.data.clone(), emitter: log.address }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_matching_mock_wins_and_the_latest_of_equals() {
        let callee = Address::repeat_byte(1);
        let mock = |data: &[u8], answer: u8| CallMock {
            callee,
            data: Bytes::copy_from_slice(data),
            answer: Ok(Bytes::from(vec![answer])),
        };
        let mocks = [
            mock(&[0xaa], 1),
            mock(&[0xaa, 0xbb], 2),
            mock(&[0xaa], 3),
            CallMock { callee: Address::ZERO, ..mock(&[], 4) },
        ];
        let answer = |input: &[u8]| mocked_call(&mocks, callee, input).map(|a| a.clone().unwrap()[0]);
        assert_eq!(answer(&[0xaa, 0xbb, 0xcc]), Some(2));
        assert_eq!(answer(&[0xaa, 0xcc]), Some(3));
        assert_eq!(answer(&[0xcc]), None);
        assert_eq!(mocked_call(&mocks, Address::ZERO, &[0x01]).map(|a| a.clone().unwrap()[0]), Some(4));
    }
}
