/// The deliveries of one connection that the owner has not settled yet, and how to
/// acknowledge a batch of them in as few frames as the protocol allows.
///
/// Pure bookkeeping for the consumer's link thread: no I/O, tested on its own.
/// Delivery tags on a channel increase from 1, so the lowest unsettled tags form a
/// prefix; when an ack settles all of it, one `basic.ack multiple=true` for the
/// batch's highest tag in that prefix covers them (tags below it settled earlier are
/// no longer outstanding at the broker, so the multiple ack does not touch them).
/// Tags above a gap are acknowledged one by one: an ack is never held back.
struct UnackedLedger: Sendable, Equatable {
    /// Body bytes of the unsettled deliveries.
    private(set) var bytes = 0
    private var pending: [UInt64: Int] = [:]
    /// Tags in the order received (increasing); those before `head` are all settled.
    private var order: [UInt64] = []
    private var head = 0

    var count: Int { pending.count }

    /// A new connection: the old tags are void.
    mutating func reset() {
        self = UnackedLedger()
    }

    mutating func received(tag: UInt64, bytes: Int) {
        pending[tag] = bytes
        order.append(tag)
        self.bytes += bytes
    }

    /// Settles `tags` (unknown or already settled ones are ignored) and returns the
    /// acks to send, in order.
    mutating func ack(_ tags: [UInt64]) -> [(tag: UInt64, multiple: Bool)] {
        var batch = Set<UInt64>()
        for tag in tags where batch.insert(tag).inserted {
            guard let b = pending.removeValue(forKey: tag) else {
                batch.remove(tag)
                continue
            }
            bytes -= b
        }
        guard !batch.isEmpty else { return [] }
        var highest: UInt64?
        var covered = 0
        while head < order.count, pending[order[head]] == nil {
            if batch.contains(order[head]) {
                highest = order[head]
                covered += 1
            }
            head += 1
        }
        compact()
        var acks: [(tag: UInt64, multiple: Bool)] = []
        if let highest { acks.append((highest, covered > 1)) }
        for tag in batch.sorted() where tag > (highest ?? 0) {
            acks.append((tag, false))
        }
        return acks
    }

    /// Settles one tag without an ack (a nack); false if it was not outstanding.
    mutating func settle(_ tag: UInt64) -> Bool {
        guard let b = pending.removeValue(forKey: tag) else { return false }
        bytes -= b
        return true
    }

    private mutating func compact() {
        order.dropConsumed(head: &head)
    }
}

extension Array {
    /// Drops the elements before `head` that were consumed (a queue read from the front):
    /// all of them once `head` reached the end, else in bulk once they are at least half,
    /// so a queue that is never empty under steady load does not keep them for ever.
    mutating func dropConsumed(head: inout Int) {
        if head == count {
            removeAll(keepingCapacity: true)
            head = 0
        } else if head >= 1024 && head * 2 >= count {
            removeFirst(head)
            head = 0
        }
    }
}
