import Foundation
import TestSupport
import Testing

/// `tools/check-llama-build.sh` (run by `tools/setup-models.sh` after every install) finds AMX
/// instructions in llama.cpp libraries with `objdump -d` — the instructions that died with
/// SIGILL on VMs that advertise AMX but cannot execute it — and passes the portable build.
@Suite struct LlamaBuildCheckTests {
    /// A folder holding one shared library `libggml-cpu.so` compiled from `source` (C).
    func library(_ source: String) throws -> URL {
        let dir = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("af-llama-check-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try source.write(to: dir.appendingPathComponent("lib.c"), atomically: true, encoding: .utf8)
        let cc = Process()
        cc.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        cc.arguments = ["gcc", "-shared", "-fPIC", "-o", dir.appendingPathComponent("libggml-cpu.so").path, dir.appendingPathComponent("lib.c").path]
        try launch(cc)
        cc.waitUntilExit()
        try #require(cc.terminationStatus == 0, "gcc failed")
        return dir
    }

    @Test func aLibraryWithAMXTileInstructionsFailsTheCheck() throws {
        let dir = try library("""
            void load(void) { __asm__ volatile("ldtilecfg (%rdi)"); __asm__ volatile("tileloadd (%rax,%rbx,1), %tmm0"); }
            void dot(void) { __asm__ volatile("tdpbssd %tmm1, %tmm2, %tmm3"); __asm__ volatile("tilerelease"); }
            """)
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try runScript("tools/check-llama-build.sh", [dir.path], env: [:])
        #expect(r.code == 1, "\(r.output)")
        #expect(r.output.contains("AMX instructions in \(dir.path)/libggml-cpu.so (4 lines)"), "\(r.output)")
        #expect(r.output.contains("tileloadd (%rax,%rbx,1),%tmm0"), "\(r.output)")
    }

    @Test func aLibraryWithoutAMXPassesAndAnEmptyFolderIsAnError() throws {
        let dir = try library("int add(int a, int b) { return a + b; }\n")
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try runScript("tools/check-llama-build.sh", [dir.path], env: [:])
        #expect(r.code == 0, "\(r.output)")
        #expect(r.output.contains("ok: no AMX in libggml-cpu.so"), "\(r.output)")
        try FileManager.default.removeItem(at: dir.appendingPathComponent("libggml-cpu.so"))
        let empty = try runScript("tools/check-llama-build.sh", [dir.path], env: [:])
        #expect(empty.code == 2, "\(empty.output)")
    }

    /// The build `tools/setup-models.sh` installed in this checkout (`make test` runs it first).
    @Test(.enabled(if: ModelServerOutageTests.localModelsInstalled, "needs tools/setup-models.sh (.venv)"))
    func theInstalledLlamaCppHasNoAMXInstruction() throws {
        let r = try runScript("tools/check-llama-build.sh", [Paths.root.appendingPathComponent(".venv").path], env: [:], timeout: 120)
        #expect(r.code == 0, "\(r.output)")
        #expect(r.output.contains("ok: no AMX in libggml-cpu.so"), "\(r.output)")
    }
}
