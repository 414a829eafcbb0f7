import Foundation
import Logging
import Observability
import Synchronization
import Testing

@Suite struct LogLineTests {
    let time = Date(timeIntervalSince1970: 1_800_000_000)

    @Test func textLineHasLevelLabelMessageAndSortedMetadata() {
        let line = LineLogHandler.line(format: .text, time: time, level: .info, label: "agentflow.coordinator", message: "dispatch",
                                       metadata: ["worker": "gpu0", "job": "j-1", "attempt": "j-1/a#1"])
        #expect(line.hasSuffix("\n"))
        #expect(line.contains(" info coordinator: dispatch attempt=j-1/a#1 job=j-1 worker=gpu0\n"))
    }

    @Test func hostileValuesNeverBreakTheLine() {
        let line = LineLogHandler.line(format: .text, time: time, level: .warning, label: "x", message: "a\nb",
                                       metadata: ["reason": "line1\nline2 \u{1b}[31m"])
        #expect(line.filter { $0 == "\n" }.count == 1)
        #expect(line.contains("a\\nb"))
        let json = LineLogHandler.line(format: .json, time: time, level: .warning, label: "x", message: "q\"\n\u{01}",
                                       metadata: ["reason": "line1\nline2", "n": .stringConvertible(3)])
        #expect(json.filter { $0 == "\n" }.count == 1)
        let object = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any]
        #expect(object?["msg"] as? String == "q\"\n\u{01}")
        #expect(object?["reason"] as? String == "line1\nline2")
        #expect(object?["n"] as? Int == 3)
        #expect(object?["level"] as? String == "warning")
    }

    @Test func handlerWritesThroughItsSinkWithLoggerMetadata() {
        let lines = Mutex<[String]>([])
        let sink = LogSink { line in lines.withLock { $0.append(line) } }
        var logger = Logger(label: "agentflow.worker") { label in LineLogHandler(label: label, format: .json, level: .info, sink: sink) }
        logger[metadataKey: "worker"] = "gpu0"
        logger.debug("hidden")
        logger.info("attempt ended", metadata: ["attempt": "j-1/a#1"])
        let got = lines.withLock { $0 }
        #expect(got.count == 1)
        let object = try? JSONSerialization.jsonObject(with: Data(got[0].utf8)) as? [String: Any]
        #expect(object?["worker"] as? String == "gpu0")
        #expect(object?["attempt"] as? String == "j-1/a#1")
        #expect(object?["label"] as? String == "worker")
    }
}
