import ArgumentParser

/// The operator tool. Each area of the system adds its own subcommand group here.
@main
struct CSSCtl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cssctl",
        abstract: "Operator tool for the customer success backbone.",
        subcommands: [CalendarCommand.self]
    )
}
