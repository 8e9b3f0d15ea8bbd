#if canImport(Glibc)
import Glibc
#endif

/// Two glibc functions Swift's Glibc module does not offer, looked up at run time.
///
/// `prctl` is variadic, which Swift cannot call; it is called through a fixed five-argument
/// prototype, which passes arguments exactly as the variadic call would on x86-64 and arm64 Linux.
/// `posix_spawn_file_actions_addclosefrom_np` (glibc 2.34+) is hidden behind `_GNU_SOURCE`.
enum GlibcExtensions {
    private typealias PrctlFunction = @convention(c) (Int32, UInt, UInt, UInt, UInt) -> Int32
    private typealias AddCloseFromFunction =
        @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32

    /// `prctl(PR_SET_PDEATHSIG, signal)`: the kernel sends `signal` when the parent exits
    /// (strictly: when the thread that spawned this process exits). Returns false if unavailable.
    static func setParentDeathSignal(_ signal: Int32) -> Bool {
        guard let symbol = dlsym(nil, "prctl") else { return false }
        let prctl = unsafeBitCast(symbol, to: PrctlFunction.self)
        let prSetPdeathsig: Int32 = 1  // <linux/prctl.h>
        return prctl(prSetPdeathsig, UInt(signal), 0, 0, 0) == 0
    }

    /// Makes the spawned process start with every descriptor from `lowest` up closed.
    /// Returns false (and changes nothing) where glibc lacks the function.
    static func closeDescriptors(from lowest: Int32, in actions: inout posix_spawn_file_actions_t) -> Bool {
        guard let symbol = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np") else { return false }
        let addCloseFrom = unsafeBitCast(symbol, to: AddCloseFromFunction.self)
        return addCloseFrom(&actions, lowest) == 0
    }
}
