// ==== plain_solidity.nml ====
import "@nml/og/OGInference.sol";
import {TensorLib} from "@nml/og/TensorLib.sol";
import "@nml/nml/Tensors.sol";
// An .nml file with no NML in it is just Solidity.
pragma solidity ^0.8.24;

contract Counter {
    uint256 public count;
    function increment() external { count += 1; }
}

