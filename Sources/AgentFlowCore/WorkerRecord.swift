/// A worker, as it described itself when it registered: the one type for this fact. What each
/// part of the system needs of it is a projection that holds this record:
/// - the registration the wire carries, `WorkerInfo` (Wire): the record and the protocol version;
/// - the store's `workers` row, `StoreWrite.worker` (Store): the record (less `gpuName` and
///   `sandbox`, which the schema does not keep), its ``WorkerState`` and when it was last heard from;
/// - what `agentflow workers` and `GET /api/v1/workers` show, `WorkerReport` (Wire): the record
///   with what the coordinator sees now (busy slots, state, last seen, problem);
/// - the coordinator's live entry (`WorkerEntry`): the record beside its connection and attempts.
public struct WorkerRecord: Sendable, Equatable {
    public var name: String
    public var host: String
    public var gpus: [Int]
    public var model: String
    public var slots: Int
    /// Free accelerator (or host) memory in bytes, as far as the worker can tell.
    public var freeMemory: Int64
    /// The GPU's name as nvidia-smi gives it (`agentflow node`), nil when unknown.
    public var gpuName: String?
    /// How it runs model-written code, e.g. "bubblewrap, cgroups v1 (cpu, memory, pids),
    /// workspace: tmpfs", "bubblewrap, cgroups: off, …" or "none (--unsafe-no-sandbox), …";
    /// nil for a backend that runs none (sim).
    public var sandbox: String?

    public init(name: String, host: String, gpus: [Int], model: String, slots: Int, freeMemory: Int64, gpuName: String? = nil,
                sandbox: String? = nil) {
        self.name = name
        self.host = host
        self.gpus = gpus
        self.model = model
        self.slots = slots
        self.freeMemory = freeMemory
        self.gpuName = gpuName
        self.sandbox = sandbox
    }
}

/// A worker's state, as the store, `agentflow workers` and the API say it.
public enum WorkerState: String, Codable, Sendable, CaseIterable {
    case alive
    /// No new attempts: `agentflow drain`, or its node stopping.
    case draining
    /// Its model server keeps failing: no attempts for a cooldown.
    case suspended
    case dead
}
