import ChangeManagementService
import CSSRuntime

// The change-management service: standard, normal and emergency changes through the Change
// Advisory Board, Test before Production, maintenance windows, notice and freezes (R-CHG-*),
// the SLA exclusion of implementation windows (R-SLA-5), the component directory and the
// Service Update reminder (R-CHG-6, R-CHG-7). Configuration: environment variables, see
// HostSettings (CSS_AMQP_URL, CSS_DATABASE_URL, ...).
await ServiceMain.run(service: "change", schema: ChangeSchema.name, migrations: ChangeSchema.migrations, services: { _, clock in
    let handlers = ChangeHandlers(clock: clock)
    return ServiceHandlers(commands: handlers.commands, events: handlers.events, timers: handlers.timers)
})
