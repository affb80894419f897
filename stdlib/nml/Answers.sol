// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title Answers
/// @notice Reading an LLM's answer in a contract or a test: what `ask` and
///         `chat` return is text, and a decision needs a yes, a no or a
///         number out of it. Every function is pure and ASCII-case-insensitive
///         where it says so; `""` (the simulation pass, docs/llm.md) is
///         neither yes nor no and holds no number.
/// @dev `import {Answers} from "@nml/nml/Answers.sol";` then
///      `using Answers for string;` and `if (answer.isYes()) ...`.
library Answers {
    /// @notice Whether `text` contains `part` (case-sensitive; `""` is in every text).
    function contains(string memory text, string memory part) internal pure returns (bool) {
        return indexOf(text, part) != type(uint256).max;
    }

    /// @notice Whether `text` contains `part`, ignoring ASCII case.
    function containsIgnoreCase(string memory text, string memory part) internal pure returns (bool) {
        return indexOf(lower(text), lower(part)) != type(uint256).max;
    }

    /// @notice Where `part` first starts in `text`, or `type(uint256).max`.
    function indexOf(string memory text, string memory part) internal pure returns (uint256) {
        bytes memory t = bytes(text);
        bytes memory p = bytes(part);
        if (p.length > t.length) return type(uint256).max;
        for (uint256 i = 0; i + p.length <= t.length; i++) {
            bool same = true;
            for (uint256 j = 0; j < p.length; j++) {
                if (t[i + j] != p[j]) {
                    same = false;
                    break;
                }
            }
            if (same) return i;
        }
        return type(uint256).max;
    }

    /// @notice `text` with ASCII letters in lower case.
    function lower(string memory text) internal pure returns (string memory) {
        bytes memory t = bytes(text);
        bytes memory out = new bytes(t.length);
        for (uint256 i = 0; i < t.length; i++) {
            bytes1 c = t[i];
            out[i] = (c >= "A" && c <= "Z") ? bytes1(uint8(c) + 32) : c;
        }
        return string(out);
    }

    /// @notice `text` without leading and trailing spaces, tabs, newlines,
    ///         quotes and final punctuation (`.`, `!`, `,`).
    function trim(string memory text) internal pure returns (string memory) {
        bytes memory t = bytes(text);
        uint256 start = 0;
        uint256 end = t.length;
        while (start < end && _blank(t[start])) start++;
        while (end > start && (_blank(t[end - 1]) || t[end - 1] == "." || t[end - 1] == "!" || t[end - 1] == ",")) {
            end--;
        }
        bytes memory out = new bytes(end - start);
        for (uint256 i = 0; i < out.length; i++) out[i] = t[start + i];
        return string(out);
    }

    /// @notice Whether the answer's first word is yes (`yes`, `y`, `true`,
    ///         any case), e.g. "Yes.", " YES, because ...".
    function isYes(string memory text) internal pure returns (bool) {
        string memory word = firstWord(text);
        return _eq(word, "yes") || _eq(word, "y") || _eq(word, "true");
    }

    /// @notice Whether the answer's first word is no (`no`, `n`, `false`, any case).
    function isNo(string memory text) internal pure returns (bool) {
        string memory word = firstWord(text);
        return _eq(word, "no") || _eq(word, "n") || _eq(word, "false");
    }

    /// @notice The first word of the answer, lower-cased, without quotes or punctuation.
    function firstWord(string memory text) internal pure returns (string memory) {
        bytes memory t = bytes(trim(text));
        uint256 end = 0;
        while (end < t.length && _letterOrDigit(t[end])) end++;
        bytes memory out = new bytes(end);
        for (uint256 i = 0; i < end; i++) out[i] = t[i];
        return lower(string(out));
    }

    /// @notice The first unsigned integer in the answer ("about 42 bps" → 42),
    ///         with `found = false` when there is none or it overflows.
    function firstUint(string memory text) internal pure returns (bool found, uint256 value) {
        bytes memory t = bytes(text);
        uint256 i = 0;
        while (i < t.length && !_digit(t[i])) i++;
        if (i == t.length) return (false, 0);
        for (; i < t.length && _digit(t[i]); i++) {
            uint256 d = uint8(t[i]) - 48;
            if (value > (type(uint256).max - d) / 10) return (false, 0);
            value = value * 10 + d;
        }
        return (true, value);
    }

    function _eq(string memory a, string memory b) private pure returns (bool) {
        return keccak256(bytes(a)) == keccak256(bytes(b));
    }

    function _blank(bytes1 c) private pure returns (bool) {
        return c == " " || c == "\t" || c == "\n" || c == "\r" || c == '"' || c == "'";
    }

    function _digit(bytes1 c) private pure returns (bool) {
        return c >= "0" && c <= "9";
    }

    function _letterOrDigit(bytes1 c) private pure returns (bool) {
        return _digit(c) || (c >= "a" && c <= "z") || (c >= "A" && c <= "Z");
    }
}
