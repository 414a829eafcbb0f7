import AgentFlowCore
import Foundation
import Testing

@testable import Scaffold

/// Code that tries to pass a check it fails (issue 15 item 5). Each one passes the same check
/// when the snippet runs as a plain `python3 _verify.py` in the workspace, as verifiers used to
/// (so the attack is real), and must fail it under ``Sandbox/runVerifier(_:cancel:deadline:)``.
struct VerifierAttack: Sendable, CustomStringConvertible {
    var name: String
    var solution: String
    var snippet: String = "from solution import add\nassert add(2, 3) == 5\nprint('checked')\n"
    /// Whether the plain run passes (killing the parent fails either way).
    var fakesPlainRun = true
    var description: String { name }
}

let unittestSnippet = """
    import unittest
    from solution import add

    class AddTests(unittest.TestCase):
        def test_add(self):
            self.assertEqual(add(2, 3), 5)

    unittest.main()
    """

let verifierAttacks: [VerifierAttack] = [
    VerifierAttack(name: "os._exit(0) at import", solution: "import os\nos._exit(0)\n"),
    VerifierAttack(name: "sys.exit(0) at import", solution: "import sys\nsys.exit(0)\n"),
    VerifierAttack(name: "raise SystemExit at import", solution: "raise SystemExit(0)\n"),
    VerifierAttack(name: "exec of a program that exits 0", solution: "import os\nos.execv('/bin/true', ['true'])\n"),
    VerifierAttack(
        name: "kill the verifier's parent", solution: "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n",
        fakesPlainRun: false),
    VerifierAttack(
        name: "unittest's assertEqual patched",
        solution: "import unittest\nunittest.TestCase.assertEqual = lambda *a, **k: None\ndef add(a, b):\n    return a - b\n",
        snippet: unittestSnippet),
    VerifierAttack(
        name: "unittest's result patched",
        solution: "import unittest\nunittest.TestResult.wasSuccessful = lambda self: True\ndef add(a, b):\n    return a - b\n",
        snippet: unittestSnippet),
    VerifierAttack(
        name: "a trace function jumps over the assert",
        solution: """
            import sys

            def add(a, b):
                return a - b

            def _skip(frame, event, arg):
                if event == "line" and frame.f_code.co_filename.endswith("_verify.py"):
                    with open(frame.f_code.co_filename) as f:
                        lines = f.read().split("\\n")
                    if lines[frame.f_lineno - 1].lstrip().startswith("assert"):
                        frame.f_lineno += 1
                return _skip

            _caller = sys._getframe(1)
            while _caller is not None and not _caller.f_code.co_filename.endswith("_verify.py"):
                _caller = _caller.f_back
            _caller.f_trace = _skip
            sys.settrace(lambda *a: None)
            """),
    VerifierAttack(
        name: "a builtin patched",
        solution: "import builtins\nbuiltins.abs = lambda x: 0\ndef add(a, b):\n    return a - b\n",
        snippet: "from solution import add\nassert abs(add(2, 3) - 5) == 0\n"),
]

/// Code that looks for the guard's token: each route is refused, so the check fails (it would
/// fail anyway; what matters is that the route is closed and the run still ends).
let tokenHunts: [(String, String)] = [
    ("gc", "import gc\nprint(len(gc.get_objects()))\n"),
    ("other threads' frames", "import sys\nprint(sys._current_frames())\n"),
    ("the process's memory", "open('/proc/self/mem', 'rb')\n"),
    ("ctypes", "import ctypes\n"),
    ("a profile function", "import sys\nsys.setprofile(lambda *a: None)\n"),
]

@Suite struct VerifierTests {
    @Test(arguments: verifierAttacks)
    func codeUnderTestCannotFakeAPass(_ attack: VerifierAttack) throws {
        let box = try makeSandbox()
        defer { box.remove() }
        try box.write("solution.py", attack.solution)
        try box.write("_plain_verify.py", attack.snippet)
        let plain = box.runPython(file: "_plain_verify.py")
        if attack.fakesPlainRun {
            #expect(plain.succeeded, "the attack should pass a plain run: \(plain.output)")
        }
        let checked = box.runVerifier(.python(attack.snippet))
        #expect(!checked.succeeded, "\(attack.name) passed the verifier: \(checked.output)")
        #expect(!checked.timedOut, "the verifier ended on its own")
    }

    @Test(arguments: tokenHunts.map(\.0))
    func theTokenCannotBeReadFromTheVerifiersProcess(_ route: String) throws {
        let box = try makeSandbox()
        defer { box.remove() }
        try box.write("solution.py", tokenHunts.first { $0.0 == route }!.1 + "def add(a, b):\n    return a + b\n")
        let checked = box.runVerifier(.python("from solution import add\nassert add(2, 3) == 5\n"))
        #expect(!checked.succeeded)
        #expect(checked.output.contains("the verifier does not allow"), "\(checked.output)")
    }

    @Test func aCorrectSolutionPassesEveryKindOfCheck() throws {
        let box = try makeSandbox()
        defer { box.remove() }
        try box.write("solution.py", "def add(a, b):\n    return a + b\n")
        let snippet = box.runVerifier(.python("from solution import add\nassert add(2, 3) == 5\nprint('checked')\n"))
        #expect(snippet.succeeded, "\(snippet.output)")
        #expect(snippet.output == "checked\n")
        let viaUnittest = box.runVerifier(.python(unittestSnippet))
        #expect(viaUnittest.succeeded, "\(viaUnittest.output)")
        try box.seed("test_add.py", "import unittest\nfrom solution import add\n\nclass T(unittest.TestCase):\n    def test(self):\n        self.assertEqual(add(1, 2), 3)\n")
        for command in ["python3 -m unittest -q", "python3 test_add.py && python3 -m unittest test_add",
                        "python3 -c 'import solution; assert solution.add(1, 1) == 2'", "echo 'import solution' | python3 -",
                        "python -B -W ignore -c 'import solution'", "test -f solution.py && grep -q 'return a + b' solution.py"] {
            let result = box.runVerifier(.command(command))
            #expect(result.succeeded, "\(command): \(result.output)")
        }
    }

    @Test func exitStatusesAndFailuresComeThrough() throws {
        let box = try makeSandbox()
        defer { box.remove() }
        try box.write("solution.py", "def add(a, b):\n    return a - b\n")
        #expect(box.runVerifier(.command("python3 -c 'import sys; sys.exit(3)'")).exitCode == 3)
        #expect(box.runVerifier(.command("python3 -c 'raise SystemExit(\"no\")'")).exitCode == 1)
        let failing = box.runVerifier(.python("from solution import add\nassert add(2, 3) == 5\n"))
        #expect(failing.exitCode == 1)
        #expect(failing.output.contains("AssertionError"))
        // Tracebacks name the workspace, never the verifier's copy.
        #expect(!failing.output.contains(".verify"), "\(failing.output)")
        #expect(box.runVerifier(.command("python3 --version")).succeeded)
    }

    @Test func theWorkflowsOwnFilesAreRestoredForTheCheck() throws {
        let box = try makeSandbox()
        defer { box.remove() }
        let test = "import unittest\nfrom calc import mul\n\nclass T(unittest.TestCase):\n    def test(self):\n        self.assertEqual(mul(2, 3), 6)\n"
        try box.seed("tests/test_calc.py", test)
        try box.seed("tests/__init__.py", "")
        // The attempt's wrong fix, and what it did to the check around it.
        try box.write("calc.py", "def mul(a, b):\n    return a + b\n")
        try box.write("tests/test_calc.py", "import unittest\n\nclass T(unittest.TestCase):\n    def test(self):\n        pass\n")
        try box.write("unittest.py", "import os\nos._exit(0)\n")
        try box.write("sitecustomize.py", "import os\nos._exit(0)\n")
        let plain = box.runShell("python3 -m unittest -q")
        #expect(plain.succeeded, "planted files pass a plain run: \(plain.output)")
        let checked = box.runVerifier(.command("python3 -m unittest -q"))
        #expect(!checked.succeeded, "\(checked.output)")
        #expect(checked.output.contains("AssertionError: 5 != 6"), "\(checked.output)")
        // The workspace itself keeps the attempt's files; the check's copy is gone.
        #expect(box.read("tests/test_calc.py")?.contains("pass") == true)
        #expect(!FileManager.default.fileExists(atPath: box.workspace.path + ".verify"))
        try box.write("calc.py", "def mul(a, b):\n    return a * b\n")
        #expect(box.runVerifier(.command("python3 -m unittest -q")).succeeded)
    }

    @Test func plantedBytecodeForARestoredFileIsIgnored() throws {
        let box = try makeSandbox()
        defer { box.remove() }
        let test = "from calc import mul\nassert mul(2, 3) == 6\n"
        try box.seed("check.py", test)
        try box.write("calc.py", "def mul(a, b):\n    return a + b\n")
        // Bytecode of a passing check, stamped with the restored file's size and time.
        let planted = box.runShell("""
            python3 - <<'EOF'
            import importlib.util, os, py_compile
            open('fake.py', 'w').write('x = 1 ' + ' ' * (len(open('check.py').read()) - 7) + '\\n')
            st = os.stat('check.py'); os.utime('fake.py', (st.st_atime, st.st_mtime))
            py_compile.compile('fake.py', cfile=importlib.util.cache_from_source('check.py'))
            EOF
            python3 -c 'import check' && echo planted-passes
            """)
        #expect(planted.output.contains("planted-passes"), "\(planted.output)")
        let checked = box.runVerifier(.command("python3 -c 'import check'"))
        #expect(!checked.succeeded, "\(checked.output)")
    }

    @Test func aLinkTheCodeLeftIsNeverFollowedByTheWorker() throws {
        let box = try makeSandbox()
        defer { box.remove() }
        let outside = testRoot().appendingPathComponent("outside-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: outside, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: outside) }
        try "secret".write(to: outside.appendingPathComponent("key"), atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: box.workspace.appendingPathComponent("answer.md").path, withDestinationPath: outside.appendingPathComponent("key").path)
        try FileManager.default.createSymbolicLink(atPath: box.workspace.appendingPathComponent("sub").path, withDestinationPath: outside.path)
        #expect(box.read("answer.md") == nil, "a link is not read through")
        try box.seed("sub/restored.py", "x = 1\n")
        #expect(!FileManager.default.fileExists(atPath: outside.appendingPathComponent("restored.py").path))
        #expect(box.read("sub/restored.py") == "x = 1\n")
        #expect(throws: WorkspacePathError.self) { try box.write("../escape.py", "x") }
        #expect(throws: WorkspacePathError.self) { try box.write("/etc/escape.py", "x") }
        box.remove()
        #expect(FileManager.default.fileExists(atPath: outside.appendingPathComponent("key").path), "removing the workspace keeps link targets")
    }
}

@Suite struct VerifiedAttemptTests {
    /// Issue 15's report: a wrong `add` that calls `os._exit(0)` at import was recorded
    /// "succeeded: verified on turn 1". Through the scaffold, every attack ends the attempt unverified.
    @Test(arguments: verifierAttacks)
    func anAttemptWhoseCodeFakesTheCheckIsNotVerified(_ attack: VerifierAttack) throws {
        let reply = "```python\n\(attack.solution)```"
        let model = ScriptedModel(agent: [reply])
        let outcome = backend(model).run(spec(verify: .python(attack.snippet), options: .raw))
        #expect(outcome.end != .succeeded, "\(attack.name): \(outcome.detail)")
    }
}
