import CSSModel
import CSSPostgres
import CSSRuntime
import CSSTestSupport
import Foundation
import Testing

/// Durable timers (`TimerStore`, `TimerLoop`) against the real PostgreSQL and RabbitMQ:
/// a fresh database and vhost per test, loops run as separate processes would (own pool,
/// own listener connection), timers armed from yet another pool.
///
/// Every firing is recorded as a row in the firing transaction, without a key constraint,
/// so "exactly once" is checked in SQL: one row per key, none missing.
@Suite(.serialized, .timeLimit(.minutes(3))) struct DurableTimerTests {
    private func near(_ a: Date, _ b: Date) -> Bool { abs(a.timeIntervalSince(b)) < 0.000_01 }

    // Arming a key again keeps one timer and the later arming wins, whether it moves the
    // timer later or earlier; the last of a key in one call wins; cancel removes it. A
    // loop then fires the surviving arming once, at its time.
    @Test func armingTwiceKeepsOneTimerTheLaterArmingWinsAndCancelRemovesIt() async throws {
        try await TimerWorld.with { w in
            let now = SystemClock().now()
            try await w.arm("k", at: now.plus(60), payload: ["n": 1])
            try await w.arm("k", at: now.plus(120), payload: ["n": 2])
            #expect(try await w.int("SELECT count(*) FROM tmr.timers WHERE key = 'k'") == 1)
            var row = try #require(try await w.timerRow("k"))
            #expect(near(row.dueAt, now.plus(120)))
            #expect(row.payload == #"{"n": 2}"#)
            #expect(row.failure == nil)

            try await w.arm("k", at: now.plus(30))
            row = try #require(try await w.timerRow("k"))
            #expect(near(row.dueAt, now.plus(30)), "re-arming earlier is an arming too: it wins")
            #expect(row.payload == "null")

            try await w.arm([DueTimer(key: "j", dueAt: now.plus(10)), DueTimer(key: "j", dueAt: now.plus(20))])
            #expect(near(try #require(try await w.timerRow("j")).dueAt, now.plus(20)), "the last arming of a key in one call wins")
            #expect(try await w.int("SELECT count(*) FROM tmr.timers") == 2)

            try await w.cancel(["k", "no-such-key"])
            #expect(try await w.timerRow("k") == nil)
            #expect(try await w.timerRow("j") != nil)
            try await w.cancel(["j"])
            #expect(try await w.int("SELECT count(*) FROM tmr.timers") == 0)

            // Re-armed before it fell due: only the second arming fires, once, not before its time.
            let base = SystemClock().now()
            try await w.arm("x", at: base.plus(0.3))
            try await w.arm("x", at: base.plus(0.8))
            w.startLoop()
            #expect(try await w.waitForFirings(1, timeout: .seconds(10)))
            try await Task.sleep(for: .milliseconds(700))
            #expect(try await w.firings() == ["x": 1])
            let fired = try await w.other.query("SELECT due_at, fired_at FROM tmr.fired")[0]
            #expect(near(try fired.date(0), base.plus(0.8)))
            #expect(try fired.date(1) >= base.plus(0.8), "fired early")
        }
    }

    // R-SLA-6, R-ESC-3: every threshold timer fires exactly once, also with two timer
    // processes taking from one table at once (FOR UPDATE SKIP LOCKED). 2,000 timers due
    // over two seconds, two loops on two pools: one firing per key, none lost, none early.
    @Test func twoLoopsFireEachOfTwoThousandTimersExactlyOnce() async throws {
        try await TimerWorld.with { w in
            let a = w.startLoop("a", batchSize: 100)
            let b = w.startLoop("b", batchSize: 100)
            _ = try #require(try await w.listenerBackend(a.listenApplication))
            _ = try #require(try await w.listenerBackend(b.listenApplication))

            let start = SystemClock().now()
            let keys = (0..<2000).map { String(format: "k%04d", $0) }
            try await w.arm(keys.enumerated().map { DueTimer(key: $1, dueAt: start.plus(Double($0) / 1000)) })
            #expect(try await w.waitForFirings(2000, timeout: .seconds(60)))
            // A duplicate firing, if any, would come from a loop still working: let both settle.
            try await Task.sleep(for: .milliseconds(500))

            let firings = try await w.firings()
            #expect(Set(firings.keys) == Set(keys), "\(Set(keys).subtracting(firings.keys).count) timers never fired")
            let twice = firings.filter { $0.value != 1 }
            #expect(twice.isEmpty, "fired more than once: \(twice.sorted { $0.key < $1.key }.prefix(10))")
            #expect(try await w.int("SELECT count(*) FROM tmr.fired WHERE fired_at < due_at") == 0, "fired before due")
            #expect(try await w.int("SELECT count(DISTINCT event_id) FROM tmr.fired") == 2000)
            #expect(try await w.int("SELECT count(*) FROM tmr.timers") == 0)
            #expect(a.loop.fired + b.loop.fired == 2000)
            #expect(a.loop.parked + b.loop.parked == 0)
            #expect(a.loop.fired > 0 && b.loop.fired > 0, "one loop did all the work (a \(a.loop.fired), b \(b.loop.fired)): the race was not exercised")

            // Each event went to the broker once (published with confirms, then its outbox row deleted):
            // nothing is bound to this event type, so the broker returned every one and each relay counted it.
            #expect(try await eventually(timeout: .seconds(10)) { try await w.int("SELECT count(*) FROM tmr.outbox") == 0 })
            #expect(a.relay.unroutableEvents + b.relay.unroutableEvents == 2000)
        }
    }

    // R-ESC-3, R-SLA-6: after a crash, timers that fell due meanwhile fire at once, once each,
    // earliest first, in full batches without sleeping in between.
    @Test func timersThatFellDueWhileNothingRanFireOnceAtStart() async throws {
        try await TimerWorld.with { w in
            let now = SystemClock().now()
            let keys = (0..<1000).map { String(format: "late%04d", $0) }
            try await w.arm(keys.enumerated().map { DueTimer(key: $1, dueAt: now.plus(Double($0 - 3600))) })

            let started = ContinuousClock.now
            let a = w.startLoop("a", batchSize: 256, maxSleep: .seconds(30))
            #expect(try await w.waitForFirings(1000, timeout: .seconds(10)), "the backlog did not fire promptly")
            let took = ContinuousClock.now - started
            try await Task.sleep(for: .milliseconds(300))

            let firings = try await w.firings()
            #expect(Set(firings.keys) == Set(keys))
            #expect(firings.values.allSatisfy { $0 == 1 })
            #expect(a.loop.fired == 1000)
            // Earliest first: every batch's timers are due no later than the next batch's.
            let batches = try await w.other.query(
                "SELECT batch, min(due_at), max(due_at), count(*) FROM tmr.fired GROUP BY batch ORDER BY batch")
            #expect(batches.count == 4, "1,000 timers in batches of 256")
            for (earlier, later) in zip(batches, batches.dropFirst()) {
                #expect(try earlier.date(2) <= later.date(1))
            }
            #expect(took < .seconds(10))
        }
    }

    // A loop asleep on an empty table (for up to 30 s) wakes when another process arms a
    // timer: the arming's NOTIFY, delivered at its commit, reaches the loop's listener.
    @Test func anotherProcessArmingWakesASleepingLoop() async throws {
        try await TimerWorld.with { w in
            let a = w.startLoop("a", maxSleep: .seconds(30))
            _ = try #require(try await w.listenerBackend(a.listenApplication))
            // By now the loop found the table empty and sleeps for maxSleep.
            try await Task.sleep(for: .milliseconds(300))

            let armed = ContinuousClock.now
            let due = SystemClock().now().plus(0.3)
            try await w.arm("wake", at: due)
            #expect(try await w.waitForFirings(1, timeout: .seconds(5)), "the loop slept through the arming")
            #expect(ContinuousClock.now - armed < .seconds(5))
            #expect(try await w.other.query("SELECT fired_at FROM tmr.fired")[0].date(0) >= due, "fired early")
        }
    }

    // A timer armed before the loop's listener LISTENs (the loop starting, or its listener
    // reconnecting) sent its NOTIFY to nobody; the loop must not sleep past it for maxSleep.
    // The listener is kept out by the database's connection limit until after the arming.
    @Test func anArmingBeforeTheListenerListensIsNotMissed() async throws {
        try await TimerWorld.with { w in
            var listen = w.database
            listen.connectAttempts = 1
            let a = w.startLoop("a", maxSleep: .seconds(30), listen: listen, start: false)
            try await w.openAllConnections(w.other)
            try await w.openAllConnections(a.client)
            let name = try #require(w.database.database)
            let open = try await w.int("SELECT count(*)::int FROM pg_stat_activity WHERE datname = current_database()")
            try await w.other.execute("ALTER DATABASE \(name) CONNECTION LIMIT \(open)")
            a.start()
            try await Task.sleep(for: .milliseconds(500))  // the loop found nothing due and sleeps for up to 30 s
            #expect(try await w.hasBackend(a.listenApplication) == false)

            let armed = ContinuousClock.now
            try await w.arm("unheard", at: SystemClock().now().plus(0.3))
            try await w.other.execute("ALTER DATABASE \(name) CONNECTION LIMIT -1")
            #expect(try await w.waitForFirings(1, timeout: .seconds(5)), "the loop slept through an arming its listener never heard")
            #expect(ContinuousClock.now - armed < .seconds(5))
            #expect(try await w.listenerBackend(a.listenApplication) != nil)
        }
    }

    // A handler that fails permanently for one timer: the batch is fired one by one, that
    // timer is parked (kept, with the reason, never tried again) and the others fire once.
    // Arming a parked key again clears the failure.
    @Test func aTimerWhoseHandlerFailsIsParkedAndTheOthersFire() async throws {
        try await TimerWorld.with { w in
            let healed = Shared(false)
            let a = w.startLoop("a", hook: { timers, _ in
                if !healed.get, timers.contains(where: { $0.key == "poison" }) { throw PoisonTimer(key: "poison") }
            }, maxSleep: .milliseconds(300))
            let now = SystemClock().now()
            let keys = (0..<9).map { "ok\($0)" }
            try await w.arm(keys.enumerated().map { DueTimer(key: $1, dueAt: now.plus(Double($0) / 100 - 1)) }
                            + [DueTimer(key: "poison", dueAt: now.plus(-0.95))])

            #expect(try await w.waitForFirings(9, timeout: .seconds(10)))
            #expect(await eventually(timeout: .seconds(5)) { a.loop.parked == 1 })
            let attempts = a.handler.attempts("poison")
            try await Task.sleep(for: .milliseconds(1500))  // five maxSleeps: a parked timer is not tried again

            #expect(a.handler.attempts("poison") == attempts)
            #expect(attempts == 2, "once in the batch, once alone")
            let firings = try await w.firings()
            #expect(firings == Dictionary(uniqueKeysWithValues: keys.map { ($0, 1) }))
            let parked = try #require(try await w.timerRow("poison"))
            #expect(parked.failure?.contains("timer poison cannot be applied") == true, "\(parked.failure ?? "no failure")")
            #expect(near(parked.dueAt, now.plus(-0.95)))
            #expect(try await w.armedCount() == 0, "a parked timer does not count as armed")
            #expect(a.loop.fired == 9)

            healed.update { $0 = true }
            try await w.arm("poison", at: SystemClock().now())
            #expect(try await w.waitForFirings(10, timeout: .seconds(5)))
            #expect(try await w.timerRow("poison") == nil)
            #expect(try await w.firings()["poison"] == 1)
        }
    }

    // The timer parked is the one that failed, not whichever is due earliest when parking:
    // here an earlier timer ("early") is held by another process's firing transaction while
    // "poison" fails alone, and that process rolls back just before the parking.
    @Test func parkingParksTheTimerThatFailedNotTheEarliestDue() async throws {
        try await TimerWorld.with { w in
            let now = SystemClock().now()
            try await w.arm([DueTimer(key: "early", dueAt: now.plus(-10)), DueTimer(key: "poison", dueAt: now.plus(-5)),
                             DueTimer(key: "ok1", dueAt: now.plus(-1)), DueTimer(key: "ok2", dueAt: now.plus(-1))])
            let holder = try await LockHolder(world: w, lock: "SELECT 1 FROM tmr.timers WHERE key = 'early' FOR UPDATE")
            let holding = Shared<Int?>(holder.pid)
            let a = w.startLoop("a", hook: { timers, session in
                guard timers.contains(where: { $0.key == "poison" }) else { return }
                if timers.count == 1, let pid = holding.get {
                    // The other process gives "early" up (its transaction rolls back) while "poison" fails alone.
                    _ = try session.query("SELECT pg_cancel_backend($1::int)", [.int(pid)])
                    for _ in 0..<250 {
                        let held = try session.query("SELECT count(*) FROM pg_locks WHERE pid = $1 AND locktype = 'transactionid'", [.int(pid)])[0].int(0)
                        if held == 0 { break }
                        _ = try session.query("SELECT pg_sleep(0.02)")
                    }
                    holding.update { $0 = nil }
                }
                throw PoisonTimer(key: "poison")
            }, maxSleep: .milliseconds(300))

            #expect(try await eventually(timeout: .seconds(10)) { try await w.armedCount() == 0 })
            try await Task.sleep(for: .milliseconds(300))
            try await holder.release()

            #expect(try await w.firings() == ["early": 1, "ok1": 1, "ok2": 1])
            #expect(try await w.timerRow("poison")?.failure != nil, "the failing timer was not parked")
            let early = try await w.timerRow("early")
            #expect(early == nil, "a timer that never failed was parked: \(String(describing: early))")
            #expect(a.loop.parked == 1)
        }
    }

    // A transient failure (the handler's statement cancelled by statement_timeout, 57014)
    // rolls the batch back and retries it: every timer fires once.
    @Test func aStatementTimeoutIsRetriedAndTheTimerFiresOnce() async throws {
        try await TimerWorld.with { w in
            let slowTries = Shared(0)
            let a = w.startLoop("a", hook: { timers, session in
                guard timers.contains(where: { $0.key == "slow" }) else { return }
                if slowTries.update({ $0 += 1; return $0 }) == 1 {
                    try session.execute("SET LOCAL statement_timeout = '50ms'")
                    _ = try session.query("SELECT pg_sleep(2)")
                }
            })
            let now = SystemClock().now()
            try await w.arm(["a1", "a2", "slow", "a3"].map { DueTimer(key: $0, dueAt: now.plus(-1)) })

            #expect(try await w.waitForFirings(4, timeout: .seconds(10)))
            try await Task.sleep(for: .milliseconds(300))
            #expect(try await w.firings() == ["a1": 1, "a2": 1, "slow": 1, "a3": 1])
            #expect(slowTries.get == 2)
            #expect(a.loop.parked == 0)
            #expect(try await w.int("SELECT count(*) FROM tmr.timers") == 0)
        }
    }

    // A transient failure that lasts (lock_timeout, 55P03, while another transaction holds
    // the row the handler updates) is retried until the lock is free; the failed attempts
    // leave nothing behind and the timer fires once.
    @Test func aLockTimeoutIsRetriedUntilTheLockIsFree() async throws {
        try await TimerWorld.with { w in
            let holder = try await LockHolder(world: w, lock: "SELECT 1 FROM tmr.resource WHERE id = 1 FOR UPDATE")
            let a = w.startLoop("a", hook: { _, session in
                try session.execute("SET LOCAL lock_timeout = '100ms'")
                try session.execute("UPDATE tmr.resource SET n = n + 1 WHERE id = 1")
            })
            try await w.arm("locked", at: SystemClock().now())

            #expect(await eventually(timeout: .seconds(10)) { a.handler.attempts("locked") >= 3 })
            #expect(try await w.firedCount() == 0)
            try await holder.release()
            #expect(try await w.waitForFirings(1, timeout: .seconds(10)))
            try await Task.sleep(for: .milliseconds(300))
            #expect(try await w.firings() == ["locked": 1])
            #expect(try await w.int("SELECT n FROM tmr.resource WHERE id = 1") == 1, "a rolled-back attempt left its update")
            #expect(a.loop.parked == 0)
        }
    }

    // stop() ends run() at once while the loop sleeps (here for up to 30 s), and closes its listener.
    @Test func stopEndsRunPromptlyWhileSleeping() async throws {
        try await TimerWorld.with { w in
            let a = w.startLoop("a", maxSleep: .seconds(30))
            _ = try #require(try await w.listenerBackend(a.listenApplication))
            try await w.arm("later", at: SystemClock().now().plus(3600))
            try await Task.sleep(for: .milliseconds(300))

            a.loop.stop()
            #expect(await eventually(timeout: .seconds(2), interval: .milliseconds(10)) { a.hasEnded }, "run() kept sleeping after stop()")
            #expect(try await eventually(timeout: .seconds(5)) { try await w.hasBackend(a.listenApplication) == false }, "the listener connection stayed open")
            #expect(try await w.timerRow("later") != nil, "stopping must leave armed timers alone")
        }
    }

    // stop() also ends run() while a batch keeps failing transiently (it would be retried
    // for as long as the cause lasts); the timer stays armed for the next run.
    @Test func stopEndsRunWhileABatchKeepsFailingTransiently() async throws {
        try await TimerWorld.with { w in
            let a = w.startLoop("a", hook: { _, session in
                try session.execute("SET LOCAL statement_timeout = '20ms'")
                _ = try session.query("SELECT pg_sleep(1)")
            })
            try await w.arm("stuck", at: SystemClock().now())
            #expect(await eventually(timeout: .seconds(10)) { a.handler.attempts("stuck") >= 3 })

            a.loop.stop()
            #expect(await eventually(timeout: .seconds(5), interval: .milliseconds(10)) { a.hasEnded }, "run() kept retrying after stop()")
            let row = try #require(try await w.timerRow("stuck"))
            #expect(row.failure == nil)
            #expect(try await w.firedCount() == 0)
        }
    }

    // The listener's backend terminated (pg_terminate_backend): the loop keeps firing, the
    // listener LISTENs again on a new backend, and arming wakes the loop again.
    @Test func theLoopKeepsFiringWhenItsListenConnectionIsDropped() async throws {
        try await TimerWorld.with { w in
            let a = w.startLoop("a", maxSleep: .seconds(30))
            let first = try #require(try await w.listenerBackend(a.listenApplication))
            try await Task.sleep(for: .milliseconds(300))
            try await w.arm("before", at: SystemClock().now().plus(0.2))
            #expect(try await w.waitForFirings(1, timeout: .seconds(5)))

            #expect(try await w.other.query("SELECT pg_terminate_backend($1::int)", [.int(first)])[0].bool(0))
            // Armed while the listener may be down: it may miss this NOTIFY, but the timer must still fire.
            try await w.arm("during", at: SystemClock().now().plus(0.2))
            let second = try await w.listenerBackend(a.listenApplication, replacing: first, timeout: .seconds(15))
            #expect(second != nil, "the listener did not LISTEN again")
            try await Task.sleep(for: .milliseconds(300))

            let armed = ContinuousClock.now
            try await w.arm("after", at: SystemClock().now().plus(0.3))
            #expect(try await w.waitForFirings(3, timeout: .seconds(5)), "the re-established LISTEN did not wake the loop")
            #expect(ContinuousClock.now - armed < .seconds(5))
            try await Task.sleep(for: .milliseconds(300))
            #expect(try await w.firings() == ["before": 1, "during": 1, "after": 1])
        }
    }

    // No listener at all (its server unreachable): the loop falls back to waking every
    // maxSleep and still fires what other processes arm; stop() still ends it promptly,
    // even while the listener backs off between connection attempts.
    @Test func withoutAListenerTheLoopPollsEveryMaxSleep() async throws {
        try await TimerWorld.with { w in
            var unreachable = w.database
            unreachable.port = 1
            unreachable.connectAttempts = 1
            unreachable.connectTimeoutSeconds = 1
            let a = w.startLoop("a", maxSleep: .seconds(1), listen: unreachable)
            for round in 1...3 {
                try await Task.sleep(for: .seconds(2))  // the loop is asleep again
                try await w.arm("polled\(round)", at: SystemClock().now().plus(0.3))
                #expect(try await w.waitForFirings(round, timeout: .seconds(4)), "round \(round) did not fire by polling")
            }
            #expect(try await w.firings() == ["polled1": 1, "polled2": 1, "polled3": 1])

            a.loop.stop()
            #expect(await eventually(timeout: .seconds(2), interval: .milliseconds(10)) { a.hasEnded }, "run() waited for the listener's backoff")
        }
    }

    // A due timer held by another process's firing transaction (its row locked) is skipped,
    // and the loop waits for it instead of spinning on it; once it is let go it fires once.
    @Test func aLoopDoesNotSpinOnTimersAnotherProcessHolds() async throws {
        try await TimerWorld.with { w in
            // Counts every claim the loop makes (a DELETE on the timer table, even of no rows).
            try await w.other.execute("CREATE SEQUENCE tmr.claims")
            try await w.other.execute("""
                CREATE FUNCTION tmr.count_claim() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM nextval('tmr.claims'); RETURN NULL; END $$
                """)
            try await w.other.execute("CREATE TRIGGER count_claims AFTER DELETE ON tmr.timers FOR EACH STATEMENT EXECUTE FUNCTION tmr.count_claim()")
            try await w.arm("held", at: SystemClock().now().plus(-1))
            let holder = try await LockHolder(world: w, lock: "SELECT 1 FROM tmr.timers WHERE key = 'held' FOR UPDATE")
            let a = w.startLoop("a", maxSleep: .seconds(5))
            try await Task.sleep(for: .milliseconds(300))

            let before = try await w.int("SELECT nextval('tmr.claims')::int")
            try await Task.sleep(for: .seconds(2))
            let claims = try await w.int("SELECT nextval('tmr.claims')::int") - before - 1
            #expect(claims < 100, "\(claims) claims in 2 s: the loop spins on a timer it cannot take")
            #expect(try await w.firedCount() == 0)

            try await holder.release()
            #expect(try await w.waitForFirings(1, timeout: .seconds(5)))
            #expect(try await w.firings() == ["held": 1])
            #expect(a.loop.fired == 1)
        }
    }

    // R-SLA-6 on time: with a lead, a burst that shares one due instant is fired as of that
    // instant ahead of it and committed at the instant, never before; two loops split it and
    // each timer still fires once.
    @Test func aBurstPreparedAheadCommitsAtItsInstantNeverBefore() async throws {
        try await TimerWorld.with { w in
            let instant = Date(timeIntervalSince1970: (SystemClock().now().timeIntervalSince1970 + 2).rounded(.down))
            try await w.arm((0..<600).map { DueTimer(key: String(format: "b%04d", $0), dueAt: instant) })
            let a = w.startLoop("a", batchSize: 400, lead: .milliseconds(700))
            let b = w.startLoop("b", batchSize: 400, lead: .milliseconds(700))
            // Nothing committed before the instant, however early it was prepared.
            while SystemClock().now() < instant.addingTimeInterval(-0.05) {
                #expect(try await w.firedCount() == 0, "a firing committed before its instant")
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(try await w.waitForFirings(600, timeout: .seconds(10)))
            #expect(try await w.firings().values.allSatisfy { $0 == 1 })
            let nows = a.handler.nows.get + b.handler.nows.get
            #expect(!nows.isEmpty && nows.allSatisfy { $0 >= instant }, "fired as of its instant")
            #expect(try await w.int("SELECT count(*) FROM tmr.fired WHERE fired_at < $1", [.date(instant.addingTimeInterval(-0.7))]) == 0)
        }
    }
}
