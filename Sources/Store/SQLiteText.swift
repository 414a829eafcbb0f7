import CSQLite

// Text to and from SQLite by its byte length, never by its first NUL: a model's output (or any
// text from outside) may hold U+0000, and binding with length -1 stored it cut there.

/// Binds `text` whole (all its UTF-8 bytes, NULs included) to parameter `index`.
func bindText(_ stmt: OpaquePointer?, _ index: Int32, _ text: String) -> Int32 {
    var text = text
    return text.withUTF8 { bytes in
        // An empty buffer may have no address; a nil pointer would bind NULL, not "".
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return sqlite3_bind_text(stmt, index, "", 0, CSQLite_transient()) }
        return base.withMemoryRebound(to: CChar.self, capacity: bytes.count) {
            sqlite3_bind_text64(stmt, index, $0, UInt64(bytes.count), CSQLite_transient(), UInt8(SQLITE_UTF8))
        }
    }
}

/// Column `column` of the current row as text, all of its bytes (NULs included).
func columnText(_ stmt: OpaquePointer?, _ column: Int32) -> String {
    // sqlite3_column_text first, then sqlite3_column_bytes: the length is of the text form.
    guard let p = sqlite3_column_text(stmt, column) else { return "" }
    let count = Int(sqlite3_column_bytes(stmt, column))
    return String(decoding: UnsafeBufferPointer(start: p, count: count), as: UTF8.self)
}
