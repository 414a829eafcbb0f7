import AgentFlowCore
import Foundation
import Wire

/// Input blobs for workers that ask (`fetchBlobs`): a worker gets the bodies of the inputs and
/// needs' outputs of an attempt it runs, nothing else. Inputs live in the job's workflow (the
/// submission carries them and the jobs table keeps it), outputs in the store; a restarted
/// coordinator has both.
extension CoordinatorCore {
    mutating func serveBlobs(_ hashes: [String], for id: AttemptID, to identity: Data, worker: String) {
        guard let job = jobs[id.job], let attempt = job.live[id], attempt.record.worker == worker else { return }
        let wanted = Set(hashes.prefix(64))
        var found: [Blob] = []
        var bytes = 0
        for blob in job.workflow.inputs.compactMap(\.blob) + job.outputBundles.values.sorted(by: { $0.sha256 < $1.sha256 }) {
            guard wanted.contains(blob.sha256), !found.contains(blob) else { continue }
            // One message stays under the socket's 16 MiB frame limit; the worker asks again for the rest.
            if bytes + blob.data.count > Limits.maxInputBytes && !found.isEmpty { break }
            bytes += blob.data.count
            found.append(blob)
        }
        if !found.isEmpty { send(.blobs(found), to: identity) }
    }
}
