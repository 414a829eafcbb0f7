import Foundation

/// The body of `POST /api/v1/jobs` (DESIGN §3): the workflow as YAML text (any content type
/// but JSON); or, with `Content-Type: application/json`, either a workflow as a JSON object or
/// the envelope `{"workflow": YAML text or object, "params": {...}, "inputs": {"NAME": base64
/// tar.gz}}` — an object with a `workflow` key (a workflow itself never has one).
struct SubmissionBody: Equatable {
    /// The workflow's text (a JSON object becomes pretty-printed JSON, which is YAML, so
    /// validation messages still carry line numbers).
    var yaml: String
    /// Parameter overrides, as JSON text of an object (nil: none given).
    var paramsJSON: String?
    /// Input archives by name, base64 as sent (nil: none given).
    var inputs: [String: String]?
    /// Text files the workflow names (a schema file), by path (nil: none given).
    var files: [String: String]?

    /// Whether the body carries more than the workflow: then it goes on as a ``Submission``,
    /// as the CLI sends one, and the coordinator reads parameters, inputs and files from it.
    var carriesMore: Bool { paramsJSON != nil || inputs?.isEmpty == false || files?.isEmpty == false }

    /// Why a body cannot be a submission, in words (answered with 400).
    struct Problem: Error, Equatable {
        var message: String
    }

    static func parse(_ bytes: [UInt8], contentType: String?, file: String) -> Result<SubmissionBody, Problem> {
        guard !bytes.contains(0), let text = String(bytes: bytes, encoding: .utf8) else {
            return .failure(Problem(message: "\(file): the body is not UTF-8 text"))
        }
        let mediaType = contentType?.split(separator: ";").first?.trimmingCharacters(in: .whitespaces).lowercased() ?? ""
        guard mediaType == "application/json" || mediaType.hasSuffix("+json") else { return .success(SubmissionBody(yaml: text)) }
        let parsed: Any
        do {
            parsed = try JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed])
        } catch {
            return .failure(Problem(message: "\(file): the body is not valid JSON (or is nested too deeply): \(String(describing: error).prefix(200))"))
        }
        guard let object = parsed as? [String: Any] else {
            return .failure(Problem(message: "\(file): a JSON body must be one object: a workflow, or {\"workflow\": ..., \"params\": {...}, \"inputs\": {...}}"))
        }
        guard let workflow = object["workflow"] else { return .success(SubmissionBody(yaml: pretty(object))) }
        let unknown = object.keys.filter { !["workflow", "params", "inputs", "files"].contains($0) }.sorted()
        guard unknown.isEmpty else {
            return .failure(Problem(message: "unknown key \(unknown.map { "'\($0.prefix(40))'" }.joined(separator: ", ")) in the submission (expected workflow, params, inputs, files)"))
        }
        var body: SubmissionBody
        switch workflow {
        case let text as String: body = SubmissionBody(yaml: text)
        case let object as [String: Any]: body = SubmissionBody(yaml: pretty(object))
        default: return .failure(Problem(message: "'workflow' must be the workflow's YAML text or a JSON object"))
        }
        if let params = object["params"], !(params is NSNull) {
            guard let p = params as? [String: Any] else { return .failure(Problem(message: "'params' must be an object of name → value")) }
            if !p.isEmpty { body.paramsJSON = pretty(p) }
        }
        if let inputs = object["inputs"], !(inputs is NSNull) {
            guard let i = inputs as? [String: Any], let strings = i as? [String: String] else {
                return .failure(Problem(message: "'inputs' must be an object of name → base64 tar.gz text"))
            }
            body.inputs = strings
        }
        if let files = object["files"], !(files is NSNull) {
            guard let f = files as? [String: Any], let strings = f as? [String: String] else {
                return .failure(Problem(message: "'files' must be an object of path → text"))
            }
            body.files = strings
        }
        return .success(body)
    }

    static func pretty(_ object: [String: Any]) -> String {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }
}
