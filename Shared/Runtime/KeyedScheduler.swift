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

    private struct Held {
        var shared = 0
        var exclusive = false
    }

    private struct State {
        var pending: [Entry] = []
        var held: [String: Held] = [:]
        var waiters: [(id: UInt64, max: Int, maxBytes: Int, continuation: CheckedContinuation<Batch?, Never>)] = []
        var nextID: UInt64 = 0
        var finished = false
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
        let handOuts = state.withLock { s in
            s.pending += entries
            return Self.serve(&s)
        }
        for (c, batch) in handOuts { c.resume(returning: batch) }
    }

    /// No more items will come: waiters get nil once everything pending was handed out.
    func finish() {
        let handOuts = state.withLock { s in
            s.finished = true
            return Self.serve(&s)
        }
        for (c, batch) in handOuts { c.resume(returning: batch) }
    }

    /// The next batch of at most `max` items and about `maxBytes` bytes; nil at the end.
    func next(max: Int, maxBytes: Int) async -> Batch? {
        while true {
            let id = state.withLock { s -> UInt64 in s.nextID += 1; return s.nextID }
            // Linger: a ready set that is small and young waits a little for company.
            if linger > .zero, let wait = state.withLock({ s in lingerWait(s, max: max) }) {
                try? await Task.sleep(for: wait)
            }
            let batch: Batch?? = await withCheckedContinuation { (c: CheckedContinuation<Batch?, Never>) in
                let immediate: (Batch?)? = state.withLock { s in
                    if let batch = Self.take(&s, max: max, maxBytes: maxBytes) { return .some(batch) }
                    if s.finished && s.pending.isEmpty { return .some(nil) }
                    s.waiters.append((id, max, maxBytes, c))
                    return nil
                }
                if let immediate { c.resume(returning: immediate) }
            }
            if let batch { return batch }
            return nil
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
            return Self.serve(&s)
        }
        for (c, b) in handOuts { c.resume(returning: b) }
    }

    var pendingCount: Int { state.withLock { $0.pending.count } }

    private func lingerWait(_ s: State, max: Int) -> Duration? {
        guard let oldest = s.pending.first else { return nil }
        let ready = min(s.pending.count, max)
        guard ready < lingerBelow, !s.finished else { return nil }
        let age = ContinuousClock.now - oldest.arrived
        return age < linger ? linger - age : nil
    }

    private static func serve(_ s: inout State) -> [(CheckedContinuation<Batch?, Never>, Batch?)] {
        var out: [(CheckedContinuation<Batch?, Never>, Batch?)] = []
        while !s.waiters.isEmpty {
            let w = s.waiters[0]
            if let batch = take(&s, max: w.max, maxBytes: w.maxBytes) {
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

    private static func conflicts(_ k: OrderingKey, _ h: Held?) -> Bool {
        guard let h else { return false }
        return h.exclusive || (k.mode == .exclusive && h.shared > 0)
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
            let ready = e.keys.allSatisfy { k in !conflicts(k, s.held[k.key]) && !conflicts(k, blocked[k.key]) }
            if ready && (chosen.isEmpty || bytes + e.bytes <= maxBytes) {
                chosen.append(i)
                bytes += e.bytes
                for k in e.keys {
                    var h = taking[k.key] ?? Held()
                    if k.mode == .exclusive { h.exclusive = true } else { h.shared += 1 }
                    taking[k.key] = h
                }
            } else {
                for k in e.keys {
                    var h = blocked[k.key] ?? Held()
                    if k.mode == .exclusive { h.exclusive = true } else { h.shared += 1 }
                    blocked[k.key] = h
                }
                if !ready { continue }
                // Ready but over the byte budget: it waits for the next batch, and so does everything after it with its keys.
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
            var held = s.held[key] ?? Held()
            if k.mode == .exclusive { held.exclusive = true } else { held.shared += 1 }
            s.held[key] = held
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
