import Logging

extension Logger {
    /// One line per event on stderr, with the process role in the metadata.
    static func bootstrap(role: String, level: String) -> Logger {
        LoggingSystem.bootstrap(StreamLogHandler.standardError)
        var logger = Logger(label: "trading-api")
        logger.logLevel = Logger.Level(rawValue: level) ?? .info
        logger[metadataKey: "role"] = "\(role)"
        return logger
    }
}
