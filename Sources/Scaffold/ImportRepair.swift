import Foundation

/// The corrector's first, mechanical step: code that fails with `NameError: name 'X' is not
/// defined`, where X is something an import provides, gets that import and is run again
/// before any model is asked. It costs no tokens.
///
/// Small models drop imports all the time: given a task whose code starts with
/// `from typing import List`, SmolLM2-135M writes the function without that line, and neither
/// it nor its corrector call adds it back when shown the NameError (docs/benchmarks.md).
///
/// Where the import comes from, in order: a module of the subtask's `needs` that defines X
/// (`from add import add`); an import line in the task's text that names X; the `typing`
/// names; standard-library modules used by name (`math.sqrt` without `import math`); and a
/// few standard-library functions and classes usually imported by name.
enum ImportRepair {
    /// The name of the last `NameError` in `output`, if any.
    static func undefinedName(in output: String) -> String? {
        let marker = "NameError: name '"
        guard let range = output.range(of: marker, options: .backwards) else { return nil }
        let rest = output[range.upperBound...]
        guard let end = rest.firstIndex(of: "'") else { return nil }
        let name = String(rest[..<end])
        guard let first = name.first, first == "_" || first.isLetter,
              name.allSatisfy({ $0 == "_" || $0.isLetter || $0.isNumber })
        else { return nil }
        return name
    }

    /// The import line that defines `name`, or `nil` when none is known.
    static func importLine(for name: String, task: String, inputs: [String: String]) -> String? {
        for (module, code) in inputs.sorted(by: { $0.key < $1.key }) {
            if name == module { return "import \(module)" }
            if defines(code, name) { return "from \(module) import \(name)" }
        }
        if let line = taskImport(of: name, in: task) { return line }
        if typingNames.contains(name) { return "from typing import \(name)" }
        if standardModules.contains(name) { return "import \(name)" }
        if let module = standardNames[name] { return "from \(module) import \(name)" }
        return nil
    }

    /// `code` with the import that `output`'s NameError asks for, or `nil` when there is none
    /// to add (unknown name, or the code already has that line).
    static func patch(_ code: String, output: String, task: String, inputs: [String: String]) -> (code: String, line: String)? {
        guard let name = undefinedName(in: output), let line = importLine(for: name, task: task, inputs: inputs) else {
            return nil
        }
        var lines = code.components(separatedBy: "\n")
        guard !lines.contains(where: { $0.trimmingCharacters(in: .whitespaces) == line }) else { return nil }
        // After a shebang, encoding line and `from __future__` imports, which must stay first.
        var at = 0
        while at < lines.count, lines[at].hasPrefix("#!") || lines[at].hasPrefix("# -*-") || lines[at].hasPrefix("from __future__") {
            at += 1
        }
        lines.insert(line, at: at)
        return (lines.joined(separator: "\n"), line)
    }

    /// Whether `code` defines `name` at its top level (`def`, `class` or an assignment).
    private static func defines(_ code: String, _ name: String) -> Bool {
        code.split(separator: "\n").contains { line in
            line.hasPrefix("def \(name)(") || line.hasPrefix("class \(name)(") || line.hasPrefix("class \(name):")
                || line.hasPrefix("\(name) =") || line.hasPrefix("\(name)=") || line.hasPrefix("async def \(name)(")
        }
    }

    /// An `import …`/`from … import …` line of the task's text whose imported names include `name`.
    private static func taskImport(of name: String, in task: String) -> String? {
        for raw in task.split(separator: "\n") {
            let line = raw.trimmingCharacters(in: .whitespaces)
            let imported: Substring
            if line.hasPrefix("from "), let range = line.range(of: " import ") {
                imported = line[range.upperBound...]
            } else if line.hasPrefix("import ") {
                imported = line.dropFirst("import ".count)
            } else {
                continue
            }
            // "a, b as c" binds a and c; "(a, b)" too.
            let bound = imported.split(separator: ",").compactMap { part -> Substring? in
                let words = part.split(whereSeparator: { $0 == " " || $0 == "(" || $0 == ")" })
                return words.count >= 3 && words[words.count - 2] == "as" ? words.last : words.first
            }
            if bound.contains(where: { $0 == name || $0.split(separator: ".").first == Substring(name) }) { return line }
        }
        return nil
    }

    private static let typingNames: Set<String> = [
        "Any", "Callable", "Dict", "FrozenSet", "Generator", "Iterable", "Iterator", "List", "Literal",
        "Mapping", "Optional", "Sequence", "Set", "Tuple", "Type", "TypeVar", "Union",
    ]

    private static let standardModules: Set<String> = [
        "bisect", "collections", "copy", "datetime", "decimal", "fractions", "functools", "hashlib", "heapq",
        "itertools", "json", "math", "operator", "os", "random", "re", "statistics", "string", "sys", "time",
    ]

    private static let standardNames: [String: String] = [
        "Counter": "collections", "defaultdict": "collections", "deque": "collections", "OrderedDict": "collections",
        "namedtuple": "collections", "reduce": "functools", "lru_cache": "functools", "cache": "functools",
        "permutations": "itertools", "combinations": "itertools", "product": "itertools", "accumulate": "itertools",
        "sqrt": "math", "floor": "math", "ceil": "math", "gcd": "math", "pi": "math", "inf": "math",
        "Fraction": "fractions", "Decimal": "decimal", "heappush": "heapq", "heappop": "heapq",
    ]
}
