import CSSCalendar

/// A customer's calendars, built from its `customer.onboarded` data: the business calendar
/// (its zone, its region's statutory holidays, its extra holidays and holiday calendar) and
/// the 24x7 one in its zone. The SLA timer counts on them; escalation holds P2–P4
/// notifications to the business one.
public struct CustomerCalendars: Sendable {
    public var business: BusinessCalendar
    public var always: BusinessCalendar

    public init(business: BusinessCalendar, always: BusinessCalendar) {
        self.business = business
        self.always = always
    }

    /// - Throws: ``CommandRejection`` `missing_field` / `invalid_field` when the profile cannot make
    ///   a calendar (no zone, unknown zone, holidays that do not parse): intake refuses those, so it
    ///   is a bug upstream.
    public static func build(profile: JSONValue) throws(CommandRejection) -> CustomerCalendars {
        guard let zone = profile["timeZone"]?.stringValue else {
            throw CommandRejection(code: ErrorCode.missingField, field: "data.timeZone", message: "customer.onboarded carries no timeZone")
        }
        // A region without statutory rules is accepted by intake only with the customer's own holidays (R-SLA-2).
        let region = profile["supportRegion"]?.stringValue.flatMap { HolidayRegion.supportedCodes.contains($0) ? $0 : nil }
        do {
            var extra: [LocalDate] = []
            for day in profile["extraHolidays"]?.arrayValue ?? [] {
                if let text = day.stringValue { extra.append(try LocalDate(iso: text)) }
            }
            let ics = profile["holidayCalendar"]?.stringValue.map { [$0] } ?? []
            let business = try CalendarSpec(kind: .business, timeZone: zone, region: region, extraHolidays: extra, icsHolidays: ics).build()
            let always = try CalendarSpec(kind: .twentyFourSeven, timeZone: zone).build()
            return CustomerCalendars(business: business, always: always)
        } catch {
            throw CommandRejection(code: ErrorCode.invalidField, field: "data", message: "the customer's calendar cannot be built: \(error.message)")
        }
    }
}
