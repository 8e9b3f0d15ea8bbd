/// The cache epoch as the copies a worker could read say it is (`CacheKeys.epochCopies`).
///
/// The epoch has one copy on every memcached server, so that a server cut off by a partition
/// (it keeps its data) cannot bring back an old epoch unnoticed: while the change listener has
/// not yet caught its copy up, the copies disagree and the cache is not trusted. A copy that
/// cannot be read (its server is down, or restarted empty) is left out; a server that restarted
/// empty holds no old generation either. Rule: docs/design/cache-freshness.md, "Epoch copies".
enum EpochReading: Equatable {
    /// Every copy read holds this tag.
    case current(StoredTag)
    /// A copy holds the paused marker (`CacheKeys.pausedEpoch`): nobody listens for commits.
    case paused
    /// No copy could be read, copies disagree, or one holds neither a tag nor the marker: the
    /// change listener is writing them (after its start, a reconnect, or a server's return).
    case unsettled

    /// `copies` as `MemcachedClient.get(many:)` returns them: `nil` where nothing was read.
    init(copies: some Collection<[UInt8]?>) {
        var agreed: [UInt8]?
        for case let copy? in copies {
            if copy == CacheKeys.pausedEpoch {
                self = .paused
                return
            }
            if agreed == nil {
                agreed = copy
            } else if agreed != copy {
                self = .unsettled
                return
            }
        }
        guard let agreed, let tag = StoredTag(agreed) else {
            self = .unsettled
            return
        }
        self = .current(tag)
    }
}
