import Foundation
import Logging
import Synchronization

/// How log lines look: `text` for people (the default), `json` for log collectors.
public enum LogFormat: String, CaseIterable, Sendable {
    case text, json
}

/// One place that sets up swift-log for every command. Call `bootstrap` once, first thing;
/// every `Logger` made afterwards writes one line per event to standard error.
public enum LogSetup {
    private static let done = Atomic<Bool>(false)

    /// Installs the AgentFlow handler (once per process; later calls are ignored, so tests and
    /// embedded mode can call it freely).
    public static func bootstrap(format: LogFormat = .text, level: Logger.Level = .info) {
        guard done.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged else { return }
        LoggingSystem.bootstrap { label in
            LineLogHandler(label: label, format: format, level: level, sink: .standardError)
        }
    }

    /// Parses `--log-level` values (trace, debug, info, notice, warning, error, critical).
    public static func level(_ text: String) -> Logger.Level? {
        Logger.Level(rawValue: text.lowercased())
    }
}

/// Where log lines go. Writes are whole lines, so lines from several threads never interleave.
public final class LogSink: Sendable {
    let write: @Sendable (String) -> Void

    public init(_ write: @escaping @Sendable (String) -> Void) {
        self.write = write
    }

    public static let standardError = LogSink { line in
        FileHandle.standardError.write(Data(line.utf8))
    }
}

/// A swift-log handler that writes one line per event:
///
/// text: `2026-11-29T23:40:01.123Z info coordinator: dispatch attempt=j-x/a#1 job=j-x worker=gpu0`
/// json: `{"ts":"…","level":"info","label":"coordinator","msg":"dispatch","job":"j-x",…}`
public struct LineLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    public var metadataProvider: Logger.MetadataProvider?
    let label: String
    let format: LogFormat
    let sink: LogSink

    public init(label: String, format: LogFormat, level: Logger.Level, sink: LogSink) {
        self.label = label
        self.format = format
        self.logLevel = level
        self.sink = sink
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var all = metadata
        if let provided = metadataProvider?.get() { all.merge(provided) { _, new in new } }
        if let extra = event.metadata { all.merge(extra) { _, new in new } }
        sink.write(Self.line(format: format, time: Date(), level: event.level, label: label, message: event.message.description, metadata: all))
    }

    /// Formats one event as a line (with its newline).
    public static func line(format: LogFormat, time: Date, level: Logger.Level, label: String, message: String, metadata: Logger.Metadata) -> String {
        let ts = time.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
        let short = label.hasPrefix("agentflow.") ? String(label.dropFirst("agentflow.".count)) : label
        let keys = metadata.keys.sorted()
        switch format {
        case .text:
            var s = "\(ts) \(level.rawValue) \(short): \(oneLine(message))"
            for k in keys { s += " \(k)=\(textValue(metadata[k]!))" }
            return s + "\n"
        case .json:
            var s = "{\"ts\":\(jsonString(ts)),\"level\":\(jsonString(level.rawValue)),\"label\":\(jsonString(short)),\"msg\":\(jsonString(message))"
            for k in keys { s += ",\(jsonString(k)):\(jsonValue(metadata[k]!))" }
            return s + "}\n"
        }
    }

    /// Control characters (a hostile worker name, a multi-line error) never break a line.
    static func oneLine(_ s: String) -> String {
        var out = ""
        for u in s.unicodeScalars {
            switch u {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 || u.value == 0x7f { out += String(format: "\\x%02x", u.value) } else { out.unicodeScalars.append(u) }
            }
        }
        return out
    }

    static func textValue(_ v: Logger.MetadataValue) -> String {
        switch v {
        case .string(let s):
            let flat = oneLine(s)
            return flat.contains(" ") || flat.isEmpty || flat.contains("\"") ? jsonString(s) : flat
        case .stringConvertible(let c): return textValue(.string(c.description))
        case .array(let a): return "[" + a.map(textValue).joined(separator: ",") + "]"
        case .dictionary(let d): return "{" + d.keys.sorted().map { "\($0)=\(textValue(d[$0]!))" }.joined(separator: ",") + "}"
        }
    }

    static func jsonValue(_ v: Logger.MetadataValue) -> String {
        switch v {
        case .string(let s): return jsonString(s)
        case .stringConvertible(let c):
            // Numbers stay numbers; everything else is a string.
            if c is Int || c is Int64 || c is UInt64 || c is Int32 { return c.description }
            if let d = c as? Double { return d.isFinite ? c.description : jsonString(c.description) }
            if let b = c as? Bool { return b ? "true" : "false" }
            return jsonString(c.description)
        case .array(let a): return "[" + a.map(jsonValue).joined(separator: ",") + "]"
        case .dictionary(let d): return "{" + d.keys.sorted().map { "\(jsonString($0)):\(jsonValue(d[$0]!))" }.joined(separator: ",") + "}"
        }
    }

    /// A JSON string literal (RFC 8259 escaping).
    public static func jsonString(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 { out += String(format: "\\u%04x", u.value) } else { out.unicodeScalars.append(u) }
            }
        }
        return out + "\""
    }
}
