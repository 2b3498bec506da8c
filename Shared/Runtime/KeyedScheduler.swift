import Foundation
import Synchronization

/// What a command is about, for ordering: commands with conflicting keys run one after
/// the other in delivery order, never in two workers at once.
///
/// Two `shared` claims of one key do not conflict (two submits for one customer may
/// run side by side); an `exclusive` claim conflicts with every other claim of its key
/// (an onboarding of that customer waits for the submits before it, and those after
/// it wait for it).
public struct OrderingKey: Sendable, Hashable, CustomStringConvertible {
    public enum Mode: Sendable, Hashable { case shared, exclusive }

    public var key: String
    public var mode: Mode

    public init(_ key: String, _ mode: Mode) {
        self.key = key
        self.mode = mode
    }

    public static func exclusive(_ key: String) -> OrderingKey { OrderingKey(key, .exclusive) }
    public static func shared(_ key: String) -> OrderingKey { OrderingKey(key, .shared) }

    public var description: String { "\(mode == .shared ? "shared" : "exclusive"):\(key)" }
}

/// Hands work to concurrent workers in arrival order while never letting two
/// conflicting items (``OrderingKey``) be in flight in different batches.
///
/// An item is taken when no batch in flight holds a conflicting key and no earlier
/// item still waiting holds one (so order per key is the arrival order). A batch's
/// keys are held until ``finished(_:)``. Items of one batch run in order inside one
/// transaction, so they may share keys freely.
///
/// `linger`: when fewer than `lingerBelow` items are ready and the oldest of them
/// arrived less than `linger` ago, the worker waits up to that long for more, so a
/// moderate rate still makes batches of several items (fewer commits per item).
final class KeyedScheduler<Item: Sendable>: Sendable {
    struct Entry: Sendable {
        var item: Item
        var keys: [OrderingKey]
        var bytes: Int
        var arrived: ContinuousClock.Instant
    }

    /// A batch handed out; give it back to ``finished(_:)``.
    struct Batch: Sendable {
        var items: [Item]
        fileprivate var keys: [OrderingKey]
    }

    /// The claims on one key: by batches in flight, by earlier items left waiting, or by the batch being built.
    private struct Held {
        var shared = 0
        var exclusive = false

        mutating func claim(_ mode: OrderingKey.Mode) {
            if mode == .exclusive { exclusive = true } else { shared += 1 }
        }

        func conflicts(with mode: OrderingKey.Mode) -> Bool {
            exclusive || (mode == .exclusive && shared > 0)
        }
    }

    private struct State {
        var pending: [Entry] = []
        var held: [String: Held] = [:]
        var waiters: [(max: Int, maxBytes: Int, continuation: CheckedContinuation<Batch?, Never>)] = []
        var finished = false
        var timerArmed = false
    }

    private let state = Mutex(State())
    let linger: Duration
    let lingerBelow: Int

    init(linger: Duration = .zero, lingerBelow: Int = 1) {
        self.linger = linger
        self.lingerBelow = lingerBelow
    }

    /// Adds items in arrival order.
    func add(_ entries: [Entry]) {
        guard !entries.isEmpty else { return }
        let (handOuts, wait) = state.withLock { s in
            s.pending += entries
            let out = serve(&s)
            return (out, armTimer(&s))
        }
        for (c, batch) in handOuts { c.resume(returning: batch) }
        startTimer(wait)
    }

    /// No more items will come: waiters get nil once everything pending was handed out.
    func finish() {
        let handOuts = state.withLock { s in
            s.finished = true
            return serve(&s)
        }
        for (c, batch) in handOuts { c.resume(returning: batch) }
    }

    /// The next batch of at most `max` items and about `maxBytes` bytes; nil at the end.
    func next(max: Int, maxBytes: Int) async -> Batch? {
        await withCheckedContinuation { (c: CheckedContinuation<Batch?, Never>) in
            let (immediate, wait): ((Batch?)?, Duration?) = state.withLock { s in
                if !lingering(s), let batch = Self.take(&s, max: max, maxBytes: maxBytes) { return (.some(batch), nil) }
                if s.finished && s.pending.isEmpty { return (.some(nil), nil) }
                s.waiters.append((max, maxBytes, c))
                return (nil, armTimer(&s))
            }
            if let immediate { c.resume(returning: immediate) }
            startTimer(wait)
        }
    }

    private func startTimer(_ wait: Duration?) {
        guard let wait else { return }
        Task {
            try? await Task.sleep(for: wait)
            self.lingerEnded()
        }
    }

    /// Releases a batch's keys, letting items that waited for them go.
    func finished(_ batch: Batch) {
        let handOuts = state.withLock { s in
            for k in batch.keys {
                guard var h = s.held[k.key] else { continue }
                if k.mode == .exclusive { h.exclusive = false } else { h.shared -= 1 }
                s.held[k.key] = (h.exclusive || h.shared > 0) ? h : nil
            }
            return serve(&s)
        }
        for (c, b) in handOuts { c.resume(returning: b) }
    }

    private func lingerEnded() {
        let handOuts = state.withLock { s in
            s.timerArmed = false
            return serve(&s)
        }
        for (c, b) in handOuts { c.resume(returning: b) }
    }

    var pendingCount: Int { state.withLock { $0.pending.count } }

    /// Whether a small, young set of pending items should wait for company.
    private func lingering(_ s: State) -> Bool {
        guard linger > .zero, !s.finished, let oldest = s.pending.first, s.pending.count < lingerBelow else { return false }
        return ContinuousClock.now - oldest.arrived < linger
    }

    /// Arms one timer for the end of the current linger; the duration when one must be started.
    private func armTimer(_ s: inout State) -> Duration? {
        guard lingering(s), !s.timerArmed, !s.waiters.isEmpty, let oldest = s.pending.first else { return nil }
        s.timerArmed = true
        return linger - (ContinuousClock.now - oldest.arrived)
    }

    private func serve(_ s: inout State) -> [(CheckedContinuation<Batch?, Never>, Batch?)] {
        var out: [(CheckedContinuation<Batch?, Never>, Batch?)] = []
        if lingering(s) { return out }
        while !s.waiters.isEmpty {
            let w = s.waiters[0]
            if let batch = Self.take(&s, max: w.max, maxBytes: w.maxBytes) {
                s.waiters.removeFirst()
                out.append((w.continuation, batch))
            } else if s.finished && s.pending.isEmpty {
                s.waiters.removeFirst()
                out.append((w.continuation, nil))
            } else {
                break
            }
        }
        return out
    }

    /// Takes the ready items, in order, holding their keys; nil when none is ready.
    private static func take(_ s: inout State, max: Int, maxBytes: Int) -> Batch? {
        guard !s.pending.isEmpty else { return nil }
        // Keys of earlier items left waiting: a later item with a conflicting key waits too.
        var blocked: [String: Held] = [:]
        // Keys this batch takes (items of one batch do not conflict with each other).
        var taking: [String: Held] = [:]
        var chosen: [Int] = []
        var bytes = 0
        for (i, e) in s.pending.enumerated() {
            if chosen.count >= max { break }
            let ready = e.keys.allSatisfy { k in
                !(s.held[k.key]?.conflicts(with: k.mode) ?? false) && !(blocked[k.key]?.conflicts(with: k.mode) ?? false)
            }
            if ready && (chosen.isEmpty || bytes + e.bytes <= maxBytes) {
                chosen.append(i)
                bytes += e.bytes
                for k in e.keys { taking[k.key, default: Held()].claim(k.mode) }
            } else {
                // Waiting (for a key, or for the next batch's byte budget): later items with its keys wait behind it.
                for k in e.keys { blocked[k.key, default: Held()].claim(k.mode) }
            }
        }
        guard !chosen.isEmpty else { return nil }
        var items: [Item] = []
        var keys: [OrderingKey] = []
        items.reserveCapacity(chosen.count)
        for i in chosen {
            items.append(s.pending[i].item)
        }
        // A batch holds each key once, exclusively if any of its items claims it so.
        for (key, h) in taking {
            let k = OrderingKey(key, h.exclusive ? .exclusive : .shared)
            keys.append(k)
            s.held[key, default: Held()].claim(k.mode)
        }
        let chosenSet = Set(chosen)
        if chosen.count == s.pending.count {
            s.pending.removeAll(keepingCapacity: true)
        } else {
            s.pending = s.pending.enumerated().compactMap { chosenSet.contains($0.offset) ? nil : $0.element }
        }
        return Batch(items: items, keys: keys)
    }
}
