import CSSRuntime
import EscalationService

// The escalation notification service: on-call rotations and escalation chains (R-ESC-*),
// from classification's and the SLA timer's events, moved by durable timers; one
// acknowledgement stops a chain. Messages for people go to `css.escalations`.
// Configuration: environment variables, see HostSettings (CSS_AMQP_URL, CSS_DATABASE_URL, ...).
await ServiceMain.run(service: "escalation", schema: EscalationSchema.name, migrations: EscalationSchema.migrations, services: { _, clock in
    let handlers = EscalationHandlers(clock: clock)
    return ServiceHandlers(commands: handlers.commands, events: handlers.events, timers: handlers.timers)
})
