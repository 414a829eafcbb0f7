// swift-tools-version:6.1
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "AgentFlow",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "agentflow", targets: ["agentflow"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        // SHA-256 names of input and output blobs (already built for Hummingbird's TLS stack).
        .package(url: "https://github.com/apple/swift-crypto", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.35.2"),
        // The tracing API (Hummingbird already builds it); spans go out through our own OTLP/HTTP
        // exporter (why not swift-otel's: Sources/Traces/OTLPTracer.swift).
        .package(url: "https://github.com/apple/swift-distributed-tracing", from: "1.7.3"),
    ],
    targets: [
        // C libraries from Debian packages, wrapped as system-library targets.
        .systemLibrary(name: "CZeroMQ", providers: [.apt(["libzmq3-dev"])]),
        .systemLibrary(name: "CCurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        .systemLibrary(name: "CSQLite", providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "CZlib", providers: [.apt(["zlib1g-dev"])]),
        // libpq, PostgreSQL's C client (pipeline mode: one round trip per coordinator iteration).
        .systemLibrary(name: "CLibPQ", providers: [.apt(["libpq-dev"])]),
        // glibc's malloc_trim (part of libc; the module map only exposes it).
        .systemLibrary(name: "CMalloc"),

        // A small Swift wrapper over libzmq: contexts, sockets, multipart messages, polling.
        .target(name: "ZeroMQ", dependencies: ["CZeroMQ"], swiftSettings: strict),
        // Domain model: workflows, clusters, budgets, deadlines, clocks. No I/O.
        .target(name: "AgentFlowCore", dependencies: [.product(name: "Yams", package: "Yams"), .product(name: "Crypto", package: "swift-crypto")],
                swiftSettings: strict),
        // File trees in transit: gzip-compressed tar packing and unpacking with limits, and
        // writing untrusted relative paths without following links out of a root.
        .target(name: "Archive", dependencies: ["CZlib", "AgentFlowCore"], swiftSettings: strict),
        // Planning: estimates, simulation, MCPP and baselines, over the domain model's types. No I/O.
        .target(name: "Planner", dependencies: ["AgentFlowCore"], swiftSettings: strict),
        // Wire protocol between CLI, coordinator and workers.
        .target(name: "Wire", dependencies: ["AgentFlowCore"], swiftSettings: strict),
        // Persistence: jobs, subtasks, attempts, workers, the spend ledger — in SQLite, or in
        // PostgreSQL shared by several coordinators (one leads by a fenced lease).
        .target(name: "Store", dependencies: ["CSQLite", "CLibPQ", "AgentFlowCore"], swiftSettings: strict),
        // OpenAI-compatible chat client over libcurl.
        .target(name: "LLM", dependencies: ["CCurl", "AgentFlowCore"], swiftSettings: strict),
        // The three-role agent scaffold and the sandbox it runs code in.
        .target(name: "Scaffold", dependencies: ["AgentFlowCore", "LLM", "Archive"], swiftSettings: strict),
        // Logging set-up (swift-log handler: text or JSON lines) and the Prometheus metrics (the
        // catalogue of names, labels and help, and the coordinator's series), shared by every process.
        .target(name: "Observability", dependencies: [
            .product(name: "Logging", package: "swift-log"), .product(name: "Prometheus", package: "swift-prometheus"),
        ], swiftSettings: strict),
        // Traces: an OpenTelemetry tracer of the tracing API whose spans go to a collector over
        // OTLP/HTTP (protobuf encoded here), and the job → subtask → attempt → call spans.
        .target(name: "Traces", dependencies: ["CCurl", "AgentFlowCore", .product(name: "Tracing", package: "swift-distributed-tracing")],
                swiftSettings: strict),
        .target(name: "Coordinator", dependencies: ["ZeroMQ", "Wire", "Store", "Planner", "AgentFlowCore", "Observability", "Traces", "Archive",
                                                    .product(name: "Logging", package: "swift-log")],
                swiftSettings: strict),
        .target(name: "Worker", dependencies: ["ZeroMQ", "Wire", "AgentFlowCore", "Scaffold", "Planner", "Archive", "Traces", "Observability", .product(name: "Logging", package: "swift-log")],
                swiftSettings: strict),
        // The operator surface over HTTP (Hummingbird): /api/v1, /metrics, the dashboard. Talks to
        // the coordinator's loop only through client requests on its ZeroMQ socket.
        .target(name: "HTTPAPI", dependencies: [
            "AgentFlowCore", "Wire", "ZeroMQ", "Observability", "Archive",
            .product(name: "Hummingbird", package: "hummingbird"), .product(name: "HummingbirdCore", package: "hummingbird"),
            .product(name: "Logging", package: "swift-log"), .product(name: "HTTPTypes", package: "swift-http-types"), .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOHTTPTypes", package: "swift-nio-extras"), "CMalloc",
        ], swiftSettings: strict),
        // The deterministic simulator: the real coordinator core, simulated workers, network, faults.
        .target(name: "Simulation", dependencies: ["Coordinator", "Worker", "Store", "Wire", "Planner", "AgentFlowCore", "Observability"], swiftSettings: strict),
        // Every benchmark harness (bench planner, planner-scale, fleet, dispatch, intake): the pool,
        // the planner benchmark's executor, and the real coordinator run through the simulator.
        .target(name: "Benchmarks", dependencies: ["Planner", "AgentFlowCore", "Coordinator", "Simulation", "Worker", "Store", "Wire",
                                                   "ZeroMQ", "Observability", "HTTPAPI"], swiftSettings: strict),
        .executableTarget(
            name: "agentflow",
            dependencies: [
                "AgentFlowCore", "Planner", "Wire", "Store", "Coordinator", "Worker", "ZeroMQ", "Scaffold", "LLM", "Observability", "HTTPAPI", "Simulation", "Benchmarks",
                "Traces",
                "Archive",
                .product(name: "ArgumentParser", package: "swift-argument-parser"), .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict,
            plugins: ["VersionStamp"]
        ),
        // Bakes `git describe` into the binary for `agentflow --version`.
        .plugin(name: "VersionStamp", capability: .buildTool()),

        // Helpers shared by the test targets (whether the real model servers are up).
        .target(name: "TestSupport", dependencies: ["Planner"], path: "Tests/TestSupport", swiftSettings: strict),
        .testTarget(name: "AgentFlowCoreTests", dependencies: ["AgentFlowCore", "Archive", "Coordinator", "Store", "Wire", "Worker", "Observability", "HTTPAPI", "Traces", "ZeroMQ",
                                                       .product(name: "Logging", package: "swift-log")], swiftSettings: strict),
        .testTarget(name: "PlannerTests", dependencies: ["Planner", "AgentFlowCore", "TestSupport"], swiftSettings: strict),
        .testTarget(name: "BenchmarksTests", dependencies: ["Benchmarks", "Planner", "Simulation", "Coordinator", "AgentFlowCore", "Wire", "Store", "TestSupport"],
                    swiftSettings: strict),
        .testTarget(name: "LLMTests", dependencies: ["LLM", "AgentFlowCore", "TestSupport"], swiftSettings: strict),
        .testTarget(name: "ScaffoldTests", dependencies: ["Scaffold", "LLM", "AgentFlowCore", "Archive", "TestSupport"], swiftSettings: strict),
        .testTarget(name: "IntegrationTests", dependencies: ["AgentFlowCore", "ZeroMQ", "Wire", "Store", "TestSupport"], swiftSettings: strict),
    ]
)
