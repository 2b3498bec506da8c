@testable import CSSAMQP
import Testing

/// The ack planning alone: no broker.
@Suite struct UnackedLedgerTests {
    func ledger(_ tags: ClosedRange<UInt64>, bytes: Int = 10) -> UnackedLedger {
        var l = UnackedLedger()
        for t in tags { l.received(tag: t, bytes: bytes) }
        return l
    }

    @Test func aContiguousPrefixIsOneMultipleAck() {
        var l = ledger(1...5)
        let acks = l.ack([3, 1, 2])
        #expect(acks.map(\.tag) == [3])
        #expect(acks.map(\.multiple) == [true])
        #expect(l.bytes == 20)
    }

    @Test func tagsAboveAGapGoOneByOneAndLaterCloseTheGap() {
        var l = ledger(1...6)
        let first = l.ack([2, 4, 5])
        #expect(first.map(\.tag) == [2, 4, 5])
        #expect(first.allSatisfy { !$0.multiple })
        // 1 closes the gap below 2; 3 closes the one below 4 and 5: the prefix is now 1...5.
        let second = l.ack([3, 1])
        #expect(second.map(\.tag) == [3])
        #expect(second[0].multiple)
        #expect(l.count == 1)
        #expect(l.bytes == 10)
    }

    @Test func aSingleLowestTagIsAPlainAck() {
        var l = ledger(1...3)
        let acks = l.ack([1])
        #expect(acks.map(\.tag) == [1])
        #expect(acks.map(\.multiple) == [false])
    }

    @Test func nackedTagsDoNotBlockThePrefixAndUnknownOrDuplicateTagsAreIgnored() {
        var l = ledger(1...4)
        let settled = l.settle(1), again = l.settle(1)
        #expect(settled)
        #expect(!again)
        let acks = l.ack([3, 2, 2, 99])
        #expect(acks.map(\.tag) == [3])
        #expect(acks[0].multiple)
        #expect(l.ack([2]).isEmpty)
        #expect(l.count == 1)
    }

    @Test func resetForgetsTheOldConnection() {
        var l = ledger(1...3)
        l.reset()
        #expect(l.bytes == 0)
        #expect(l.ack([1]).isEmpty)
    }

    @Test func shuffledBatchesSettleEverythingWithFewFrames() {
        var l = ledger(1...1000, bytes: 1)
        var tags = Array(UInt64(1)...1000).shuffled()
        var frames = 0
        var acked = Set<UInt64>()
        while !tags.isEmpty {
            let n = min(tags.count, Int.random(in: 1...60))
            let batch = Array(tags.prefix(n))
            tags.removeFirst(n)
            for a in l.ack(batch) {
                frames += 1
                #expect(!acked.contains(a.tag))
                acked.insert(a.tag)
            }
        }
        #expect(l.count == 0)
        #expect(l.bytes == 0)
        #expect(frames < 1000)
    }
}
