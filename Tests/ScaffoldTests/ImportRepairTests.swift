import AgentFlowCore
import Foundation
import Testing

@testable import Scaffold

@Suite struct ImportRepairTests {
    let traceback = """
        Traceback (most recent call last):
          File "solution.py", line 1, in <module>
            def f(xs: List[int]) -> int:
                      ^^^^
        NameError: name 'List' is not defined. Did you mean: 'list'?
        """

    @Test func findsTheUndefinedName() {
        #expect(ImportRepair.undefinedName(in: traceback) == "List")
        #expect(ImportRepair.undefinedName(in: "NameError: name 'total' is not defined") == "total")
        #expect(ImportRepair.undefinedName(in: "TypeError: unsupported operand") == nil)
        #expect(ImportRepair.undefinedName(in: "NameError: name 'x; import os' is not defined") == nil)
    }

    @Test(arguments: [
        ("List", "from typing import List"),
        ("Optional", "from typing import Optional"),
        ("math", "import math"),
        ("Counter", "from collections import Counter"),
        ("reduce", "from functools import reduce"),
    ])
    func knowsTheStandardLibrary(name: String, line: String) {
        #expect(ImportRepair.importLine(for: name, task: "", inputs: [:]) == line)
    }

    @Test func prefersTheNeedsModulesThenTheTasksOwnImports() {
        let inputs = ["total": "def total(numbers):\n    return sum(numbers)\n", "helpers": "PI = 3\n"]
        #expect(ImportRepair.importLine(for: "total", task: "", inputs: inputs) == "import total")
        #expect(ImportRepair.importLine(for: "PI", task: "", inputs: inputs) == "from helpers import PI")
        let task = "Complete it:\n```python\nfrom typing import List, Tuple\nimport numpy as np\n\ndef f(): ...\n```"
        #expect(ImportRepair.importLine(for: "Tuple", task: task, inputs: [:]) == "from typing import List, Tuple")
        #expect(ImportRepair.importLine(for: "np", task: task, inputs: [:]) == "import numpy as np")
        #expect(ImportRepair.importLine(for: "frobnicate", task: task, inputs: inputs) == nil)
    }

    @Test func addsTheLineAfterFutureImportsAndNotTwice() throws {
        let code = "from __future__ import annotations\ndef f(xs: List[int]) -> int:\n    return len(xs)\n"
        let fixed = try #require(ImportRepair.patch(code, output: traceback, task: "", inputs: [:]))
        #expect(fixed.line == "from typing import List")
        #expect(fixed.code.hasPrefix("from __future__ import annotations\nfrom typing import List\ndef f("))
        #expect(ImportRepair.patch(fixed.code, output: traceback, task: "", inputs: [:]) == nil)
    }
}

@Suite struct ImportRepairInTheLoopTests {
    let task = "Complete the function:\n```python\nfrom typing import List\n\ndef add(a, b):\n```"
    let noImports = "```python\ndef add(a: List[int], b) -> int:\n    return sqrt(a[0] * a[0]) + b\n```"

    @Test func theCorrectorAddsMissingImportsWithoutAModelCall() throws {
        let model = ScriptedModel(agent: [noImports], corrector: [good])
        let outcome = backend(model).run(spec(task, verify: .python("from solution import add\nassert add([2], 3) == 5\n")))
        #expect(outcome.end == .succeeded, "\(outcome.detail)")
        #expect(outcome.detail.contains("corrector added an import"))
        #expect(outcome.detail.contains("imports added: from typing import List, from math import sqrt"))
        #expect(model.calls.map(\.role) == [.agent], "no corrector call: the fix was mechanical")
        #expect(outcome.output?.hasPrefix("from math import sqrt\nfrom typing import List\ndef add(") == true, "\(outcome.output ?? "")")
    }

    @Test func theModelCorrectorsPatchGetsTheMechanicalStepToo() throws {
        // The agent's code is wrong (subtracts); the corrector's patch is right but drops the import.
        let wrongTyped = "```python\nfrom typing import List\ndef add(a: List[int], b) -> int:\n    return a[0] - b\n```"
        let patchNoImport = "```python\ndef add(a: List[int], b) -> int:\n    return a[0] + b\n```"
        let model = ScriptedModel(agent: [wrongTyped], corrector: [patchNoImport])
        let outcome = backend(model).run(spec(task, verify: .python("from solution import add\nassert add([2], 3) == 5\n")))
        #expect(outcome.end == .succeeded, "\(outcome.detail)")
        #expect(outcome.detail.contains("verified on turn 1 (corrector's patch, an import added)"), "\(outcome.detail)")
        #expect(model.calls.map(\.role) == [.agent, .corrector])
        #expect(outcome.output?.hasPrefix("from typing import List\ndef add(") == true)
    }

    @Test func theNoteNamesEachAddedImportOnce() throws {
        // Every turn writes the same code without its import; the note lists the line once.
        let noImport = "```python\ndef add(a: List[int], b) -> int:\n    return a[0] - b\n```"
        let model = ScriptedModel(agent: [noImport], corrector: [noImport])
        let outcome = backend(model).run(spec(task, verify: .python("from solution import add\nassert add([2], 3) == 5\n"),
                                              options: ScaffoldOptions(summarizer: false, corrector: true, maxTurns: 3)))
        #expect(outcome.end == .failed)
        #expect(outcome.detail.contains("; imports added: from typing import List; last run: AssertionError"), "\(outcome.detail)")
    }

    @Test func withoutTheCorrectorNothingIsAdded() throws {
        let model = ScriptedModel(agent: [noImports])
        let outcome = backend(model).run(spec(task, verify: .python("from solution import add\n"), options: .raw))
        #expect(outcome.end == .failed)
        #expect(!outcome.detail.contains("imports added"))
    }

    @Test func anUnknownNameGoesToTheModelCorrector() throws {
        let model = ScriptedModel(agent: [crashing], corrector: [good])
        let outcome = backend(model).run(spec())
        #expect(outcome.end == .succeeded, "\(outcome.detail)")
        #expect(model.calls.map(\.role) == [.agent, .corrector])
    }
}
