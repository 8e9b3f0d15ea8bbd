import FoundationEssentials
import Postgres

/// One write endpoint of the API (`POST`): its path, how it reads a batch from the body, and
/// how it writes one. Each conforms in its own file; `WriteEndpoints.all` is the router's table.
///
/// A batch is decoded and validated whole before anything is written (400 naming the first bad
/// item's index and field), then written in one transaction by `TradingService`, which also
/// checks the token's scope and replays `Idempotency-Key`s (`IdempotencyKeys`).
protocol WriteEndpoint: SendableMetatype {
    associatedtype Batch

    /// The path under `/api/v1/`.
    static var path: String { get }
    /// Decodes and validates the body; throws 400 naming the first bad item and field.
    static func decode(_ body: [UInt8], requestID: String) throws(APIError) -> Batch
    /// Writes the batch inside the caller's transaction; returns the 201 body. Throws 400 for
    /// what only the database knows (a user that does not exist) and 409 for a conflict.
    static func write(_ batch: Batch, database: PostgresConnection) throws(WriteError) -> [UInt8]
}

/// Why a write failed inside its transaction.
enum WriteError: Error {
    case rejected(APIError)
    case database(PostgresError)
    /// Another request stored the same `Idempotency-Key` first.
    case raced
}

extension PostgresConnection {
    /// `execute` for the statements of a write.
    func write(_ statement: PreparedStatement, _ parameters: [String?]) throws(WriteError) -> PostgresResult {
        do {
            return try execute(statement, parameters)
        } catch {
            throw .database(error)
        }
    }
}

enum WriteEndpoints {
    static let all: [any WriteEndpoint.Type] = [ReconciliationEventsWrite.self, EquitySnapshotsWrite.self]

    /// Batches hold 1 to this many items.
    static let maximumBatchSize = 1_000
    /// The largest body a worker reads; nginx refuses larger ones first (`client_max_body_size`).
    static let maximumBodyBytes = 1 << 20

    /// The 1-based position of the first of the users (`$1`, a uuid array) without a `users`
    /// row, or NULL: a batch's rows must name existing users.
    static let unknownUser = PreparedStatement(name: "write_unknown_user", sql: """
        SELECT min(u.n)::int8 FROM unnest($1::uuid[]) WITH ORDINALITY AS u(id, n)
        WHERE NOT EXISTS (SELECT 1 FROM users WHERE users.id = u.id)
        """)

    /// Throws 400 naming the first item whose user does not exist (`<batch>[i].user_id`).
    static func requireUsers(_ users: String, batch: String, database: PostgresConnection) throws(WriteError) {
        if let position = try database.write(unknownUser, [users]).int(0, 0) {
            throw .rejected(.badRequest("\(batch)[\(position - 1)].user_id: no such user"))
        }
    }
}

/// An item of a batch body: `{"<batchKey>":[item…]}`.
protocol BatchItem: Decodable {
    /// The body's one field, and the items' name in messages (`events`, `snapshots`).
    static var batchKey: String { get }
}

/// `{"<batchKey>":[item…]}` with no other field.
private struct BatchBody<Item: BatchItem>: Decodable {
    let items: [Item]

    init(from decoder: any Decoder) throws {
        try KeyedDecodingContainer<AnyCodingKey>.refuseUnknownFields(decoder, known: [Item.batchKey])
        items = try decoder.container(keyedBy: AnyCodingKey.self).decode([Item].self, forKey: AnyCodingKey(stringValue: Item.batchKey))
    }
}

/// Decodes a batch body with `JSONDecoder`, turning its errors into one 400 that names where
/// the first problem is: `events[3].volume: …`.
enum BatchDecoding {
    /// The items of a batch body; 400 unless it holds 1 to `maximumBatchSize` valid items.
    static func items<Item: BatchItem>(_ type: Item.Type, from body: [UInt8]) throws(APIError) -> [Item] {
        let items = try decode(BatchBody<Item>.self, from: body).items
        guard (1...WriteEndpoints.maximumBatchSize).contains(items.count) else {
            throw .badRequest("\(Item.batchKey): must hold 1 to \(WriteEndpoints.maximumBatchSize) \(Item.batchKey)")
        }
        return items
    }

    static func decode<T: Decodable>(_ type: T.Type, from body: [UInt8]) throws(APIError) -> T {
        do {
            return try JSONDecoder().decode(type, from: Data(body))
        } catch let error as DecodingError {
            throw .badRequest(message(for: error))
        } catch {
            throw .badRequest("the body is not valid JSON")
        }
    }

    static func message(for error: DecodingError) -> String {
        switch error {
        case .typeMismatch(let type, let context):
            return "\(path(context.codingPath)): must be \(describe(type))"
        case .valueNotFound(let type, let context):
            return "\(path(context.codingPath)): must be \(describe(type)), not null"
        case .keyNotFound(let key, let context):
            return "\(path(context.codingPath + [key])): is required"
        case .dataCorrupted(let context):
            if context.codingPath.isEmpty { return "the body is not valid JSON" }
            return "\(path(context.codingPath)): \(context.debugDescription)"
        @unknown default:
            return "the body does not match the schema"
        }
    }

    /// `events[3].volume` from the decoder's coding path.
    static func path(_ codingPath: [any CodingKey]) -> String {
        var text = ""
        for key in codingPath {
            if let index = key.intValue {
                text += "[\(index)]"
            } else {
                text += text.isEmpty ? key.stringValue : "." + key.stringValue
            }
        }
        return text.isEmpty ? "body" : text
    }

    private static func describe(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Double.Type: "a number"
        case is Int64.Type, is Int.Type, is Int32.Type, is Int16.Type: "an integer"
        case is Bool.Type: "a boolean"
        default: type is any Collection.Type ? "an array" : "an object"
        }
    }
}

/// A key for any field name, to find the ones a schema does not know.
struct AnyCodingKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

extension KeyedDecodingContainer {
    /// Throws for the first field (alphabetically) not in `known`.
    static func refuseUnknownFields(_ decoder: any Decoder, known: Set<String>) throws {
        let all = try decoder.container(keyedBy: AnyCodingKey.self)
        if let unknown = all.allKeys.map(\.stringValue).filter({ !known.contains($0) }).sorted().first {
            throw DecodingError.dataCorruptedError(forKey: AnyCodingKey(stringValue: unknown), in: all,
                                                   debugDescription: "is not a known field")
        }
    }
}
