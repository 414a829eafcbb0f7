/// PostgreSQL's `text` cannot hold NUL (U+0000), and a model's output (or any text from
/// outside) may. So text bound to PostgreSQL is escaped, reversibly, and unescaped when read:
/// NUL becomes U+FFFF "0" and U+FFFF itself becomes U+FFFF U+FFFF. U+FFFF is a Unicode
/// noncharacter, reserved for a program's internal use, so stored text almost never holds it;
/// text with neither character (nearly all) is stored as is, and rows written before the escape
/// read back unchanged (a lone U+FFFF not followed by "0" or U+FFFF reads as itself). Both stores
/// keep such text whole: SQLite binds by byte length (`SQLiteText.swift`).
enum PostgresText {
    static let marker: Unicode.Scalar = "\u{FFFF}"

    /// `text` as PostgreSQL can store it (no NUL).
    static func escape(_ text: String) -> String {
        // U+FFFF is EF BF BF in UTF-8: text without a 0x00 or 0xEF byte needs nothing.
        guard text.utf8.contains(where: { $0 == 0 || $0 == 0xEF }) else { return text }
        var out = String.UnicodeScalarView()
        for u in text.unicodeScalars {
            switch u {
            case "\u{0}": out.append(marker); out.append("0")
            case marker: out.append(marker); out.append(marker)
            default: out.append(u)
            }
        }
        return String(out)
    }

    /// What ``escape(_:)`` was given.
    static func unescape(_ stored: String) -> String {
        guard stored.utf8.contains(0xEF) else { return stored }
        var out = String.UnicodeScalarView()
        var afterMarker = false
        for u in stored.unicodeScalars {
            if afterMarker {
                afterMarker = false
                switch u {
                case "0": out.append("\u{0}")
                case marker: out.append(marker)
                default: out.append(marker); out.append(u)
                }
            } else if u == marker {
                afterMarker = true
            } else {
                out.append(u)
            }
        }
        if afterMarker { out.append(marker) }
        return String(out)
    }
}
