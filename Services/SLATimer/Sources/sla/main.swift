import CSSRuntime
import SLATimerService

// The SLA timer service: every ticket's response and restoration clocks (R-SLA-*), from
// classification's and intake's events, fired by durable timers on time and once.
// Configuration: environment variables, see HostSettings (CSS_AMQP_URL, CSS_DATABASE_URL, ...).
await ServiceMain.run(service: "sla", schema: SLASchema.name, migrations: SLASchema.migrations, services: { _, clock in
    let handlers = SLAHandlers(clock: clock)
    return ServiceHandlers(commands: handlers.commands, events: handlers.events, timers: handlers.timers)
})
