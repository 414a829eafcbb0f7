import Foundation

/// One GPU as nvidia-smi reports it.
public struct GPUInfo: Sendable, Equatable {
    public var index: Int
    /// Free memory in bytes.
    public var freeMemory: Int64
    public var name: String

    public init(index: Int, freeMemory: Int64, name: String) {
        self.index = index
        self.freeMemory = freeMemory
        self.name = name
    }
}

public struct GPUInventoryError: Error, CustomStringConvertible {
    public var description: String
}

/// This host's GPUs, from `nvidia-smi --query-gpu=index,memory.free,name --format=csv,noheader,nounits`,
/// restricted to `CUDA_VISIBLE_DEVICES` when it is set.
public enum GPUInventory {
    public static let arguments = ["--query-gpu=index,memory.free,name", "--format=csv,noheader,nounits"]

    /// Parses nvidia-smi's CSV: `0, 81037, NVIDIA H100 80GB HBM3` per line (memory in MiB).
    public static func parse(_ text: String) throws -> [GPUInfo] {
        var out: [GPUInfo] = []
        for raw in text.split(whereSeparator: \.isNewline) {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty { continue }
            let parts = line.split(separator: ",", maxSplits: 2).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 3, let index = Int(parts[0]), index >= 0, index < 4096,
                  let mib = Int64(parts[1]), mib >= 0, mib < (1 << 40) else {
                throw GPUInventoryError(description: "nvidia-smi printed a line that is not 'index, memory.free (MiB), name': '\(line.prefix(200))'")
            }
            let name = String(parts[2].unicodeScalars.filter { $0.value >= 32 && $0.value != 127 }.prefix(128).map(Character.init))
            if out.contains(where: { $0.index == index }) { throw GPUInventoryError(description: "nvidia-smi lists GPU \(index) twice") }
            out.append(GPUInfo(index: index, freeMemory: mib * 1024 * 1024, name: name))
        }
        return out
    }

    /// The GPUs of `all` that `CUDA_VISIBLE_DEVICES` lets this process use: all when it is unset,
    /// none when it is empty or -1, else the listed indices (in that order; UUIDs are not supported).
    public static func visible(_ all: [GPUInfo], cudaVisibleDevices: String?) throws -> [GPUInfo] {
        guard let cvd = cudaVisibleDevices else { return all }
        let items = cvd.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        var out: [GPUInfo] = []
        for item in items {
            guard let i = Int(item) else {
                throw GPUInventoryError(description: "CUDA_VISIBLE_DEVICES='\(cvd)': only GPU indices are supported, not '\(item)'")
            }
            if i < 0 { break }  // CUDA stops at the first invalid index
            guard let gpu = all.first(where: { $0.index == i }) else {
                throw GPUInventoryError(description: "CUDA_VISIBLE_DEVICES names GPU \(i), which nvidia-smi does not list")
            }
            if !out.contains(gpu) { out.append(gpu) }
        }
        return out
    }

    /// Runs nvidia-smi (found on PATH) and returns the visible GPUs.
    public static func query(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> [GPUInfo] {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["nvidia-smi"] + arguments
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = FileHandle.nullDevice
        do { try p.run() } catch { throw GPUInventoryError(description: "cannot run nvidia-smi: \(error)") }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            let why = String(decoding: errData + data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            throw GPUInventoryError(description: "nvidia-smi failed (exit \(p.terminationStatus))" + (why.isEmpty ? "; is it installed and on PATH?" : ": \(why.prefix(300))"))
        }
        return try visible(parse(String(decoding: data, as: UTF8.self)), cudaVisibleDevices: environment["CUDA_VISIBLE_DEVICES"])
    }
}
