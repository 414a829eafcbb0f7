import Prometheus

/// The HTTP server's series (``MetricCatalogue/httpConnections`` and its kin): open connections
/// and streams, refusals at a cap, closes for slowness. Every label value is one of a few fixed
/// words, so the set is bounded. Thread-safe: the series are swift-prometheus atomics, made once.
public final class HTTPMetrics: Sendable {
    /// The cap a connection or stream was refused at.
    public enum Limit: String, CaseIterable, Sendable {
        case connections, connectionsPerSource = "connections_per_source", streams, streamsPerSource = "streams_per_source"
    }

    /// Where a slow connection was when it was closed.
    public enum Phase: String, CaseIterable, Sendable {
        case header, body, idle
    }

    let connections: Gauge
    let streams: Gauge
    let refusals: [Limit: Counter]
    let timeouts: [Phase: Counter]

    public init(registry: MetricsRegistry = .shared) {
        let r = registry.registry
        connections = r.makeGauge(descriptor: MetricCatalogue.httpConnections.descriptor)
        streams = r.makeGauge(descriptor: MetricCatalogue.httpStreams.descriptor)
        refusals = Dictionary(uniqueKeysWithValues: Limit.allCases.map {
            ($0, r.makeCounter(descriptor: MetricCatalogue.httpRefused.descriptor, labels: [("limit", $0.rawValue)]))
        })
        timeouts = Dictionary(uniqueKeysWithValues: Phase.allCases.map {
            ($0, r.makeCounter(descriptor: MetricCatalogue.httpTimedOut.descriptor, labels: [("phase", $0.rawValue)]))
        })
    }

    public func refused(_ limit: Limit) { refusals[limit]?.increment() }
    public func timedOut(_ phase: Phase) { timeouts[phase]?.increment() }
    public func open(connections c: Int, streams s: Int) {
        connections.set(Double(c))
        streams.set(Double(s))
    }
}
