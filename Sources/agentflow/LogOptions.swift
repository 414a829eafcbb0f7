import ArgumentParser
import Logging
import Observability

/// `--log-format` and `--log-level`, for the commands that log (coordinator, worker, run, bench).
struct LogOptions: ParsableArguments {
    @Option(name: .long, help: "Log lines: text (default) or json.")
    var logFormat: String = "text"

    @Option(name: .long, help: "Least severe level logged: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String?

    func validate() throws {
        if LogFormat(rawValue: logFormat) == nil { throw ValidationError("--log-format must be text or json, got '\(logFormat)'") }
        if let logLevel, LogSetup.level(logLevel) == nil {
            throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical; got '\(logLevel)'")
        }
    }

    func bootstrap(defaultLevel: Logger.Level) {
        LogSetup.bootstrap(format: LogFormat(rawValue: logFormat) ?? .text, level: logLevel.flatMap(LogSetup.level) ?? defaultLevel)
    }
}

/// A command whose process logs through swift-log; `main` sets logging up before `run`.
protocol LoggingCommand {
    var logging: LogOptions { get }
    /// Services log every event (info); commands that print a report log only problems.
    var defaultLogLevel: Logger.Level { get }
}
