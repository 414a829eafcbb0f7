import AgentFlowCore

// The worker's projections hold a `WorkerRecord`, but encode flat, key by key in the order the
// fields once stood in (the binary codec writes keys in the order they are encoded): the
// registration frame, the client socket's `workers` reply and the API's JSON stay what they
// were. `WorkerRecordTests.projectionsEncodeAsBefore` holds their bytes.

/// Every key of both projections.
fileprivate enum WorkerKeys: String, CodingKey {
    case name, host, gpus, model, slots, freeMemory, gpuName, sandbox, version, busy, state, lastSeen, problem
}

fileprivate extension KeyedDecodingContainer<WorkerKeys> {
    /// The record's fields; a `gpuName` of "" reads as unknown.
    func workerRecord() throws -> WorkerRecord {
        let gpuName = try decodeIfPresent(String.self, forKey: .gpuName)
        return WorkerRecord(
            name: try decode(String.self, forKey: .name), host: try decode(String.self, forKey: .host),
            gpus: try decode([Int].self, forKey: .gpus), model: try decode(String.self, forKey: .model),
            slots: try decode(Int.self, forKey: .slots), freeMemory: try decode(Int64.self, forKey: .freeMemory),
            gpuName: gpuName?.isEmpty == true ? nil : gpuName, sandbox: try decodeIfPresent(String.self, forKey: .sandbox))
    }
}

fileprivate extension KeyedEncodingContainer<WorkerKeys> {
    /// The fields both projections start with, in their order.
    mutating func encodeLeading(_ worker: WorkerRecord) throws {
        try encode(worker.name, forKey: .name)
        try encode(worker.host, forKey: .host)
        try encode(worker.gpus, forKey: .gpus)
        try encode(worker.model, forKey: .model)
        try encode(worker.slots, forKey: .slots)
    }
}

extension WorkerInfo: Codable {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: WorkerKeys.self)
        worker = try c.workerRecord()
        version = try c.decode(Int.self, forKey: .version)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: WorkerKeys.self)
        try c.encodeLeading(worker)
        try c.encode(worker.freeMemory, forKey: .freeMemory)
        try c.encode(version, forKey: .version)
        try c.encodeIfPresent(worker.gpuName, forKey: .gpuName)
        try c.encodeIfPresent(worker.sandbox, forKey: .sandbox)
    }
}

/// `gpuName` is "" when unknown (the API's schema requires it); `sandbox` is absent when the
/// worker runs no code.
extension WorkerReport: Codable {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: WorkerKeys.self)
        worker = try c.workerRecord()
        busy = try c.decode(Int.self, forKey: .busy)
        state = try c.decode(WorkerState.self, forKey: .state)
        lastSeen = try c.decode(String.self, forKey: .lastSeen)
        problem = try c.decode(String.self, forKey: .problem)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: WorkerKeys.self)
        try c.encodeLeading(worker)
        try c.encode(busy, forKey: .busy)
        try c.encode(worker.freeMemory, forKey: .freeMemory)
        try c.encode(state, forKey: .state)
        try c.encode(lastSeen, forKey: .lastSeen)
        try c.encode(problem, forKey: .problem)
        try c.encode(worker.gpuName ?? "", forKey: .gpuName)
        try c.encodeIfPresent(worker.sandbox, forKey: .sandbox)
    }
}
