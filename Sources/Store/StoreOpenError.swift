/// A database that cannot be opened for reading (``Store/init(readingOnly:)``): missing, not
/// an AgentFlow database, or a schema of another version.
public struct StoreOpenError: Error, CustomStringConvertible {
    public var database: String
    public var problem: String

    public var description: String { "database \(database): \(problem)" }
}
