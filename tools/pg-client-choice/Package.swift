// swift-tools-version:6.0
import PackageDescription
let package = Package(
    name: "PGNIOBench",
    platforms: [.macOS(.v13)],
    dependencies: [.package(url: "https://github.com/vapor/postgres-nio", exact: "1.33.2")],
    targets: [.executableTarget(name: "PGNIOBench", dependencies: [.product(name: "PostgresNIO", package: "postgres-nio")])]
)
