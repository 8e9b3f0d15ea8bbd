// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "trading-api",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "trading-api", targets: ["trading-api"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-crypto.git", "3.0.0"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
    ],
    targets: [
        // C libraries from Debian, found through pkg-config.
        .systemLibrary(name: "CFastCGI", pkgConfig: "fcgi", providers: [.apt(["libfcgi-dev"])]),
        .systemLibrary(name: "CLibPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        .systemLibrary(name: "CMemcached", pkgConfig: "libmemcached", providers: [.apt(["libmemcached-dev"])]),
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        // Linux interfaces Swift's Glibc module leaves out: epoll(7), sock_diag(7).
        .systemLibrary(name: "CLinux"),

        // Thin Swift wrappers: each knows its C library and nothing of trading.
        .target(name: "FastCGI", dependencies: ["CFastCGI", "CLinux"]),
        .target(name: "Postgres", dependencies: ["CLibPQ"]),
        .target(name: "Memcached", dependencies: ["CMemcached"]),
        .target(name: "HTTPClient", dependencies: ["CCurl"]),
        .target(name: "WorkerPool", dependencies: [.product(name: "Logging", package: "swift-log")]),

        // The application: routing, auth, views, their SQL, the caching policy and its metrics. No C.
        .target(name: "TradingAPI", dependencies: [
            "Postgres", "Memcached", "WorkerPool", "HTTPClient",
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Prometheus", package: "swift-prometheus"),
        ]),

        // Wires configuration, the pool, FastCGI and the application together.
        .executableTarget(name: "trading-api", dependencies: [
            "FastCGI", "WorkerPool", "TradingAPI", "Postgres", "Memcached",
            .product(name: "Logging", package: "swift-log"),
        ]),

        // Helpers shared by test targets. A plain target (SwiftPM has no test-only library), so
        // `swift build` compiles it too; nothing outside Tests/ depends on it.
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "FastCGITests", dependencies: ["FastCGI", "TestSupport"]),
        .testTarget(name: "PostgresTests", dependencies: ["Postgres"]),
        .testTarget(name: "MemcachedTests", dependencies: ["Memcached"]),
        .testTarget(name: "WorkerPoolTests", dependencies: ["WorkerPool", "TestSupport"]),
        .testTarget(name: "TradingAPITests", dependencies: [
            "TradingAPI", "Memcached", .product(name: "Crypto", package: "swift-crypto"),
        ]),
    ]
)
