// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @notice What a scheduled contract offers: OpenGradient's workflow contracts have `run()`.
interface IWorkflow {
    function run() external;
}

/// @title WorkflowScheduler
/// @notice OpenGradient's workflow scheduler, predeployed by the nml devnet at
///         0x7179724De4e7FF9271FA40C0337c7f90C0508eF6 with the SDK's
///         `registerTask(address contractAddress, uint256 endTime, uint256 frequency)`.
///         The devnet's scheduler account (the `executor`) calls `execute` for
///         every due task in the block after the chain's time reaches it, so
///         `evm_increaseTime` with `evm_mine`, and interval mining, drive it.
///         A task's `run()` that fails is recorded and does not stop the others.
contract WorkflowScheduler {
    struct Task {
        address contractAddress;
        address owner;
        uint256 endTime;
        uint256 frequency;
        /// When it is next due (chain time).
        uint256 nextRun;
        /// When it last ran (0: never).
        uint256 lastRun;
        uint256 runs;
        uint256 failures;
        /// The revert data of its last run, empty when it succeeded.
        bytes lastError;
    }

    /// The gas each run gets.
    uint256 public constant RUN_GAS = 20_000_000;
    /// The most bytes of a failed run's revert data kept (and logged).
    uint256 public constant MAX_ERROR_BYTES = 256;

    address public executor;
    Task[] private tasks;

    event TaskRegistered(uint256 indexed id, address indexed contractAddress, uint256 endTime, uint256 frequency);
    event TaskRun(uint256 indexed id, address indexed contractAddress, bool success, bytes error);

    /// @notice Names the account that runs tasks (a devnet system call, once).
    function initialize(address executor_) external {
        require(executor == address(0), "already initialized");
        executor = executor_;
    }

    /// @notice Runs `contractAddress.run()` every `frequency` seconds of chain
    ///         time from now until `endTime`.
    function registerTask(address contractAddress, uint256 endTime, uint256 frequency) external {
        require(frequency > 0, "frequency must be positive");
        require(endTime > block.timestamp, "endTime is in the past");
        require(contractAddress.code.length > 0, "not a contract");
        tasks.push(Task(contractAddress, msg.sender, endTime, frequency, block.timestamp + frequency, 0, 0, 0, ""));
        emit TaskRegistered(tasks.length - 1, contractAddress, endTime, frequency);
    }

    /// @notice How many tasks there are: their ids are 0 to `taskCount() - 1`.
    function taskCount() external view returns (uint256) {
        return tasks.length;
    }

    /// @notice The ids of the tasks due at this block's time.
    function dueTasks() external view returns (uint256[] memory ids) {
        return dueTasksIn(0, tasks.length);
    }

    /// @notice The ids in [`from`, `to`) of the tasks due at this block's
    ///         time (`to` past the last task stops there). The devnet asks a
    ///         page at a time, so that no call's gas grows with the number of
    ///         tasks.
    function dueTasksIn(uint256 from, uint256 to) public view returns (uint256[] memory ids) {
        if (to > tasks.length) to = tasks.length;
        if (from >= to) return new uint256[](0);
        ids = new uint256[](to - from);
        uint256 count;
        for (uint256 i = from; i < to; i++) {
            if (_due(tasks[i])) ids[count++] = i;
        }
        // Shrinks the array to the ids found.
        assembly {
            mstore(ids, count)
        }
    }

    /// @notice Runs a due task (the executor only).
    function execute(uint256 id) external {
        require(msg.sender == executor, "only the scheduler runs tasks");
        require(id < tasks.length, "no such task");
        Task storage task = tasks[id];
        require(_due(task), "the task is not due");
        task.nextRun = block.timestamp + task.frequency;
        task.lastRun = block.timestamp;
        task.runs++;
        try IWorkflow(task.contractAddress).run{gas: RUN_GAS}() {
            delete task.lastError;
            emit TaskRun(id, task.contractAddress, true, "");
        } catch (bytes memory error) {
            task.failures++;
            // Kept short: every listing of the tasks copies it.
            if (error.length > MAX_ERROR_BYTES) {
                assembly {
                    mstore(error, 256)
                }
            }
            task.lastError = error;
            emit TaskRun(id, task.contractAddress, false, error);
        }
    }

    /// @notice Every task, by id.
    function getTasks() external view returns (Task[] memory) {
        return tasks;
    }

    /// @notice The tasks with ids in [`from`, `to`) (`to` past the last
    ///         task stops there).
    function getTasksIn(uint256 from, uint256 to) external view returns (Task[] memory page) {
        if (to > tasks.length) to = tasks.length;
        if (from >= to) return new Task[](0);
        page = new Task[](to - from);
        for (uint256 i = from; i < to; i++) {
            page[i - from] = tasks[i];
        }
    }

    function _due(Task storage task) private view returns (bool) {
        return task.nextRun <= block.timestamp && block.timestamp <= task.endTime;
    }
}
