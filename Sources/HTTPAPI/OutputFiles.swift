import AgentFlowCore
import Archive
import Foundation
import Hummingbird
import NIOCore
import Wire

/// `GET /api/v1/jobs/{id}/outputs/{subtask}/{path}`: one file a subtask kept, taken from its
/// packed bundle and checked against the manifest's SHA-256 before it is served.
struct OutputFiles: Sendable {
    /// The link with the request's token's rights.
    let link: ScopedLink

    func file(job: String, subtask: String, path: String) async -> Response {
        guard let normal = WorkspacePath.normalized(path), normal == path else {
            return jsonError(.badRequest, "the path \(Limits.printable(path)) is not a plain relative path")
        }
        let expected: String
        let blob: Blob
        do {
            switch try await link.request(.outputs(job: job)) {
            case .outputs(let kept):
                guard let file = kept.first(where: { $0.subtask == subtask })?.files.first(where: { $0.path == path }) else {
                    return jsonError(.notFound, "subtask \(Limits.printable(subtask)) of \(job) kept no file \(Limits.printable(path))")
                }
                expected = file.sha256
            case .error(let code, let message): return jsonError(APIRoutes.status(code), message)
            default: return jsonError(.badGateway, "unexpected reply from the coordinator")
            }
            switch try await link.request(.outputBundle(job: job, subtask: subtask)) {
            case .bundle(let b): blob = b
            case .error(let code, let message): return jsonError(APIRoutes.status(code), message)
            default: return jsonError(.badGateway, "unexpected reply from the coordinator")
            }
        } catch {
            return jsonError(.serviceUnavailable, "\(error)")
        }
        guard let contents = try? TarGz.unpack(blob.data, maxEntries: Limits.maxOutputFiles * 2, maxBytes: Limits.maxOutputBytes),
              let entry = contents.entries.first(where: { $0.path == path && !$0.isDirectory }), Blob.hash(entry.data) == expected else {
            return jsonError(.internalServerError, "the stored outputs of \(Limits.printable(subtask)) do not hold \(Limits.printable(path)) as listed")
        }
        var headers: HTTPFields = [.contentType: Self.contentType(path)]
        headers[.contentDisposition] = "inline; filename=\"\((path as NSString).lastPathComponent.filter { $0 != "\"" && $0.isASCII })\""
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: entry.data)))
    }

    /// Text types for what agents usually write, bytes otherwise.
    static func contentType(_ path: String) -> String {
        switch (path as NSString).pathExtension.lowercased() {
        case "json": return "application/json"
        case "md": return "text/markdown; charset=utf-8"
        case "txt", "py", "sh", "csv", "yaml", "yml", "toml", "log": return "text/plain; charset=utf-8"
        case "html": return "text/plain; charset=utf-8"   // never rendered as a page from this origin
        default: return "application/octet-stream"
        }
    }
}
