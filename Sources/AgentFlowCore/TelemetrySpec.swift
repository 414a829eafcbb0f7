import Foundation
import Yams

/// Where traces go (`telemetry:` in cluster.yaml; off when absent):
///
/// ```yaml
/// telemetry: {otlp: http://127.0.0.1:4318, serviceName: agentflow}
/// ```
///
/// `otlp` is an OpenTelemetry collector's OTLP/HTTP endpoint: spans go, protobuf-encoded, to
/// `URL/v1/traces` (or to the URL itself when it already ends in `/v1/traces`), as the
/// `OTEL_EXPORTER_OTLP_ENDPOINT` convention has it.
public struct TelemetrySpec: Codable, Sendable, Equatable {
    public var otlp: String
    /// The `service.name` resource attribute of every span.
    public var serviceName: String

    public init(otlp: String, serviceName: String = "agentflow") {
        self.otlp = otlp
        self.serviceName = serviceName
    }

    /// The URL spans are posted to.
    public var tracesURL: String {
        let base = otlp.hasSuffix("/") ? String(otlp.dropLast()) : otlp
        return base.hasSuffix("/v1/traces") ? base : base + "/v1/traces"
    }

    /// Why `url` cannot be an OTLP/HTTP endpoint, or nil.
    public static func problem(url: String) -> String? {
        guard url.count <= 2000, let u = URLComponents(string: url), let scheme = u.scheme?.lowercased(), ["http", "https"].contains(scheme),
              let host = u.host, !host.isEmpty, u.query == nil, u.fragment == nil,
              !url.unicodeScalars.contains(where: { $0.value < 0x21 || $0.value == 0x7F }) else {
            return "telemetry.otlp must be an http:// or https:// URL of an OTLP/HTTP collector (e.g. http://127.0.0.1:4318), got \(Limits.printable(url, limit: 80))"
        }
        return nil
    }
}

extension Cluster {
    static func parseTelemetry(_ node: Node, _ r: YAMLReader) throws -> TelemetrySpec {
        let m = try r.mapping(node, "telemetry")
        try r.checkKeys(m, allowed: ["otlp", "serviceName"], in: "telemetry")
        guard let n = m["otlp"] else { throw r.error(node, "telemetry needs otlp: the URL of an OTLP/HTTP collector (e.g. http://127.0.0.1:4318)") }
        let url = try r.string(n, "telemetry.otlp")
        if let problem = TelemetrySpec.problem(url: url) { throw r.error(n, problem) }
        var spec = TelemetrySpec(otlp: url)
        if let s = m["serviceName"] {
            let name = try r.string(s, "telemetry.serviceName")
            if let problem = Limits.name(name, "telemetry.serviceName") { throw r.error(s, problem) }
            spec.serviceName = name
        }
        return spec
    }
}
