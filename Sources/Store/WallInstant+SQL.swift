import AgentFlowCore

// A wall-clock instant is stored as its seconds since 1970 (a REAL / DOUBLE PRECISION column),
// converted here, once, for every statement that binds one.
extension WallInstant: SQLBindable {
    public var sqlValue: SQLValue { .double(secondsSince1970) }
}

extension ParameterSink {
    mutating func add(_ v: WallInstant) throws { try add(v.secondsSince1970) }
    mutating func add(_ v: WallInstant?) throws { try add(v?.secondsSince1970) }
}

extension Row {
    /// A wall-clock column, read as stored (checked where the row is used, e.g. at resume).
    public func wallInstant(_ i: Int) -> WallInstant { WallInstant(secondsSince1970: double(i)) }

    public func optionalWallInstant(_ i: Int) -> WallInstant? { optionalDouble(i).map(WallInstant.init(secondsSince1970:)) }
}
