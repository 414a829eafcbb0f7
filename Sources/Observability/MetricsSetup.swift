import CoreMetrics
import Foundation
import Metrics
import Prometheus

/// The process's Prometheus registry and the swift-metrics factory that writes into it. The
/// coordinator makes its metrics through `factory` (swift-metrics API); `GET /metrics` renders
/// `registry` in the Prometheus text format. Passing the factory explicitly (instead of a global
/// `MetricsSystem.bootstrap`) keeps several coordinators in one test process apart.
public final class MetricsRegistry: Sendable {
    public let registry: PrometheusCollectorRegistry
    public let factory: PrometheusMetricsFactory

    public init() {
        registry = PrometheusCollectorRegistry()
        var f = PrometheusMetricsFactory(registry: registry)
        // Queue waits are milliseconds to minutes; planner decisions microseconds to seconds.
        let seconds: [Double] = [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300]
        f.defaultDurationHistogramBuckets = seconds.map { Duration.nanoseconds(Int64($0 * 1e9)) }
        factory = f
    }

    /// The Prometheus text exposition of every metric.
    public func render() -> String {
        registry.emitToString()
    }

    /// The registry of this process (one coordinator per process outside tests).
    public static let shared = MetricsRegistry()
}
