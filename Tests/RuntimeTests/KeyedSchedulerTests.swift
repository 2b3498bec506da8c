@testable import CSSRuntime
import Foundation
import Testing

/// Issue 6, item 8: the order commands are handed to workers, without a broker.
@Suite struct KeyedSchedulerTests {
    typealias Entry = KeyedScheduler<Int>.Entry

    static func entry(_ n: Int, _ keys: [OrderingKey], bytes: Int = 1) -> Entry {
        Entry(item: n, keys: keys, bytes: bytes, arrived: .now)
    }

    @Test func aBatchTakesEverythingReadyInArrivalOrder() async {
        let s = KeyedScheduler<Int>()
        s.add([Self.entry(1, [.exclusive("t:1")]), Self.entry(2, [.exclusive("t:2")]), Self.entry(3, [.exclusive("t:1")])])
        let batch = await s.next(max: 10, maxBytes: .max)
        // Items of one batch run in order in one transaction, so they may share a key.
        #expect(batch?.items == [1, 2, 3])
    }

    @Test func aKeyInFlightHoldsBackLaterItemsWithItAndKeepsTheirOrder() async {
        let s = KeyedScheduler<Int>()
        s.add([Self.entry(1, [.exclusive("t:1")])])
        let first = await s.next(max: 10, maxBytes: .max)
        #expect(first?.items == [1])
        s.add([Self.entry(2, [.exclusive("t:1")]), Self.entry(3, [.exclusive("t:2")]), Self.entry(4, [.exclusive("t:1")])])
        // A second worker meanwhile gets only what does not touch t:1.
        let second = await s.next(max: 10, maxBytes: .max)
        #expect(second?.items == [3])
        s.finished(first!)
        let third = await s.next(max: 10, maxBytes: .max)
        #expect(third?.items == [2, 4])
    }

    @Test func sharedClaimsRunSideBySideButNotBesideAnExclusiveOne() async {
        let s = KeyedScheduler<Int>()
        s.add([Self.entry(1, [.shared("c:acme")])])
        let a = await s.next(max: 1, maxBytes: .max)
        s.add([Self.entry(2, [.shared("c:acme")]), Self.entry(3, [.exclusive("c:acme")]), Self.entry(4, [.shared("c:acme")])])
        let b = await s.next(max: 10, maxBytes: .max)
        // 2 may run beside 1; the onboarding (3) waits for both, and 4 waits behind it.
        #expect(b?.items == [2])
        s.finished(a!)
        #expect(s.pendingCount == 2)
        s.finished(b!)
        let c = await s.next(max: 10, maxBytes: .max)
        #expect(c?.items == [3, 4])
    }

    @Test func itemsWithoutKeysNeverWait() async {
        let s = KeyedScheduler<Int>()
        s.add([Self.entry(1, [.exclusive("x")])])
        let a = await s.next(max: 10, maxBytes: .max)
        s.add([Self.entry(2, [.exclusive("x")]), Self.entry(3, [])])
        #expect(await s.next(max: 10, maxBytes: .max)?.items == [3])
        s.finished(a!)
    }

    @Test func aBatchStaysWithinItsByteBudgetUnlessOneItemIsLarger() async {
        let s = KeyedScheduler<Int>()
        s.add([Self.entry(1, [], bytes: 600), Self.entry(2, [], bytes: 600), Self.entry(3, [], bytes: 100)])
        // 2 does not fit beside 1; 3 (no conflicting key) does.
        #expect(await s.next(max: 10, maxBytes: 1000)?.items == [1, 3])
        #expect(await s.next(max: 10, maxBytes: 1000)?.items == [2])
        s.add([Self.entry(4, [], bytes: 5000)])
        #expect(await s.next(max: 10, maxBytes: 1000)?.items == [4])
    }

    @Test func aWaitingWorkerIsWokenByNewItemsAndByReleasedKeys() async {
        let s = KeyedScheduler<Int>()
        s.add([Self.entry(1, [.exclusive("k")])])
        let held = await s.next(max: 10, maxBytes: .max)!
        s.add([Self.entry(2, [.exclusive("k")])])
        async let waiting = s.next(max: 10, maxBytes: .max)
        try? await Task.sleep(for: .milliseconds(50))
        s.finished(held)
        #expect(await waiting?.items == [2])
    }

    @Test func finishEndsEveryWaiterOnceEverythingWasTaken() async {
        let s = KeyedScheduler<Int>()
        async let a = s.next(max: 10, maxBytes: .max)
        try? await Task.sleep(for: .milliseconds(20))
        s.finish()
        #expect(await a == nil)
    }

    @Test func lingerWaitsBrieflyForCompanyAtModerateRates() async {
        let s = KeyedScheduler<Int>(linger: .milliseconds(30), lingerBelow: 4)
        s.add([Self.entry(1, [])])
        Task {
            try? await Task.sleep(for: .milliseconds(5))
            s.add([Self.entry(2, []), Self.entry(3, [])])
        }
        let batch = await s.next(max: 10, maxBytes: .max)
        #expect(batch?.items == [1, 2, 3])
    }

    @Test func sizeChunksKeepStatementsSmall() {
        let sizes = [10, 10, 10, 50, 5]
        let chunks = sizeChunks(sizes, maxBytes: 25, maxCount: 10, size: { $0 })
        #expect(chunks.map(Array.init) == [[10, 10], [10], [50], [5]])
        #expect(sizeChunks(Array(repeating: 1, count: 7), maxBytes: 100, maxCount: 3, size: { $0 }).map(\.count) == [3, 3, 1])
    }
}
