// ==== empty.nml ====
import "@nml/og/OGInference.sol";
import {TensorLib} from "@nml/og/TensorLib.sol";
import "@nml/nml/Tensors.sol";

