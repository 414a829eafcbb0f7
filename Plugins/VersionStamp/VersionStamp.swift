import Foundation
import PackagePlugin

/// Bakes `git describe` into the `agentflow` binary (`agentflow --version`): before every
/// build, `tools/version-stamp.sh` writes `AgentFlowVersion.swift`, rewriting it only when the
/// version changed, so an unchanged tree recompiles nothing.
@main
struct VersionStamp: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: any Target) throws -> [Command] {
        let output = context.pluginWorkDirectoryURL.appending(path: "Generated")
        let root = context.package.directoryURL
        return [
            .prebuildCommand(
                displayName: "Stamping the version from git describe",
                executable: URL(fileURLWithPath: "/bin/sh"),
                arguments: [root.appending(path: "tools/version-stamp.sh").path, root.path, output.appending(path: "AgentFlowVersion.swift").path],
                outputFilesDirectory: output),
        ]
    }
}
