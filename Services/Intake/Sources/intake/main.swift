import CSSRuntime
import IntakeService

// The intake service: customers and Service Tickets in from css.commands.
// Configuration: environment variables, see HostSettings (CSS_AMQP_URL, CSS_DATABASE_URL, ...).
await ServiceMain.run(service: "intake", schema: IntakeSchema.name, handler: IntakeHandler(), eventHandler: TicketReadModel(),
                     migrations: IntakeSchema.migrations)
