import ClassificationService
import CSSRuntime

// The classification service: priority, request class, dispatch and quotas of every
// ticket intake receives; reclassification and dispatch commands.
// Configuration: environment variables, see HostSettings (CSS_AMQP_URL, CSS_DATABASE_URL, ...)
// and ClassificationSettings (CSS_CLOUD_PRODUCTS, CSS_THIRD_PARTY_PRODUCTS, CSS_QUOTA_TREND_MIN).
await ServiceMain.run(service: "classification", schema: ClassificationSchema.name, migrations: ClassificationSchema.migrations) { env, clock in
    let settings = try ClassificationSettings.fromEnvironment(env)
    let handlers = ClassificationHandlers(settings: settings, clock: clock)
    return (handlers.commands, handlers.events)
}
