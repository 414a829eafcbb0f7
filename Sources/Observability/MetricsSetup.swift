import Prometheus

/// The process's Prometheus registry. The coordinator writes its series through
/// ``CoordinatorMetrics`` (names, labels and help from ``MetricCatalogue``); `GET /metrics`
/// renders the registry in the Prometheus text format. Passing a registry explicitly (instead
/// of a process-wide one) keeps several coordinators in one test process apart.
public final class MetricsRegistry: Sendable {
    public let registry: PrometheusCollectorRegistry

    public init() {
        registry = PrometheusCollectorRegistry()
    }

    /// The Prometheus text exposition of every metric.
    public func render() -> String {
        registry.emitToString()
    }

    /// The registry of this process (one coordinator per process outside tests).
    public static let shared = MetricsRegistry()
}
