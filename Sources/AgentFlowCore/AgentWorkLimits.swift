import Foundation

/// Bounds on agent work: what a job may carry in, what an attempt may keep, what one reply may
/// ask for. Each is checked where the data enters (the loader, the packer, the worker).
extension Limits {
    /// A job's inputs, packed (gzip-compressed tar), all together: they travel in one message.
    public static let maxInputBytes = 8 << 20
    /// A job's inputs unpacked, all together (a small archive that expands hugely is refused).
    public static let maxInputTreeBytes = 64 << 20
    /// Files and directories in a job's inputs, all together.
    public static let maxInputFiles = 10_000
    /// The outputs one attempt keeps, unpacked, all together; past it the attempt does not pass
    /// (the agent is told which files are too large while it has turns left).
    public static let maxOutputBytes = 8 << 20
    /// Files one attempt keeps.
    public static let maxOutputFiles = 1_000
    /// Expansions of one `foreach`.
    public static let maxForeachItems = 1_000
    /// Subtasks of a workflow after `foreach` expansion.
    public static let maxExpandedSubtasks = 10_000
    /// Parameters a workflow declares, and the bytes of one parameter's value (as JSON).
    public static let maxParams = 100
    public static let maxParamBytes = 64 << 10
    /// Fenced blocks of one reply that are acted on; the rest are reported and ignored.
    public static let maxBlocksPerReply = 16
    /// Bytes of one ```` ```file:PATH ```` block.
    public static let maxFileBlockBytes = 1 << 20
    /// Bytes of a workspace-relative path, and of one of its components.
    public static let maxPathBytes = 1024
    public static let maxPathComponentBytes = 255
}
