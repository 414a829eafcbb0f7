/// What a client may do on the coordinator's client socket, by the CURVE key it connects with
/// (`coordinator.curve.clientKeys`): `read` sees jobs, workers and history; `submit` also submits
/// and cancels; `admin` also drains and undrains workers. The same order as the HTTP tokens'.
public enum ClientRole: String, Codable, Sendable, Comparable, CaseIterable {
    case read, submit, admin

    public static func < (a: ClientRole, b: ClientRole) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}
