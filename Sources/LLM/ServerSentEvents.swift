/// Incremental parser for `text/event-stream` bodies: feed it bytes as they arrive, get each
/// event's `data` (its `data:` lines joined by newlines) when the blank line that ends it arrives.
/// Comments (`:`) and other fields (`event:`, `id:`, `retry:`) are ignored: the chat API uses none.
struct ServerSentEventParser {
    private var line: [UInt8] = []
    private var data: [UInt8] = []
    private var hasData = false
    /// Whether any `data:` line was seen (a plain JSON body has none).
    private(set) var sawEvent = false

    /// Feeds bytes; returns the events they completed, in order.
    mutating func feed(_ bytes: UnsafeRawBufferPointer) -> [String] {
        var events: [String] = []
        for byte in bytes {
            if byte == UInt8(ascii: "\n") {
                if let event = endLine() { events.append(event) }
            } else {
                line.append(byte)
            }
        }
        return events
    }

    /// Ends the stream: an event not followed by a blank line still counts.
    mutating func finish() -> String? {
        if !line.isEmpty, let event = endLine() { return event }
        return dispatch()
    }

    private mutating func endLine() -> String? {
        if line.last == UInt8(ascii: "\r") { line.removeLast() }
        defer { line.removeAll(keepingCapacity: true) }
        if line.isEmpty { return dispatch() }
        let prefix = Array("data:".utf8)
        guard line.starts(with: prefix) else { return nil }
        var payload = line.dropFirst(prefix.count)
        if payload.first == UInt8(ascii: " ") { payload = payload.dropFirst() }
        if hasData { data.append(UInt8(ascii: "\n")) }
        data.append(contentsOf: payload)
        hasData = true
        sawEvent = true
        return nil
    }

    private mutating func dispatch() -> String? {
        guard hasData else { return nil }
        defer {
            data.removeAll(keepingCapacity: true)
            hasData = false
        }
        return String(decoding: data, as: UTF8.self)
    }
}
