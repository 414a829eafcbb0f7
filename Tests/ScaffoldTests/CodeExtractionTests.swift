import Testing

@testable import Scaffold

@Suite struct CodeExtractionTests {
    @Test func takesThePythonBlock() {
        let reply = "Here:\n```text\nnot this\n```\n```python\ndef f():\n    return 1\n```\nDone."
        #expect(CodeExtraction.pythonBlock(in: reply) == "def f():\n    return 1\n")
    }

    @Test func takesAnUnlabelledBlockWhenNoneIsPython() {
        #expect(CodeExtraction.pythonBlock(in: "```\nx = 1\n```") == "x = 1\n")
    }

    @Test func keepsAnUnterminatedFinalBlock() {
        #expect(CodeExtraction.pythonBlock(in: "```python\ndef g(x):\n    return x") == "def g(x):\n    return x\n")
    }

    @Test func noFenceMeansNoCode() {
        #expect(CodeExtraction.pythonBlock(in: "I think you should write a loop.") == nil)
        #expect(CodeExtraction.pythonBlock(in: "```python\n\n```") == nil)
    }

    @Test func knowsWhenABlockIsComplete() {
        #expect(!CodeExtraction.hasCompleteBlock("Sure:\n```python\ndef f():\n    return 1\n"))
        #expect(!CodeExtraction.hasCompleteBlock("```python\n```"))
        #expect(!CodeExtraction.hasCompleteBlock("Sure:\n```py"))
        #expect(CodeExtraction.hasCompleteBlock("Sure:\n```python\ndef f():\n    return 1\n```"))
        #expect(CodeExtraction.hasCompleteBlock("```python\nx = 1\n```\nMore text"))
    }
}
