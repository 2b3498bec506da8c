/// Everything needed to build a calendar for one customer: the value a service stores
/// and `cssctl calendar due` reads from a request line.
public struct CalendarSpec: Hashable, Sendable {
    public enum Kind: String, Sendable, Hashable {
        case business
        case twentyFourSeven = "24x7"
    }

    public var kind: Kind
    public var timeZone: String
    /// Support region whose statutory holidays apply (R-SLA-2); nil means none, explicitly.
    /// Holidays of an alternative support location are never added.
    public var region: String?
    public var extraHolidays: [LocalDate]
    /// iCalendar text with more holidays (any other region, or the customer's own days).
    public var icsHolidays: [String]
    /// nil means the kind's default: `OpeningHours.standard` or `OpeningHours.always`.
    public var openingHours: OpeningHours?
    public var excluded: [InstantRange]
    public var years: ClosedRange<Int>

    public init(kind: Kind, timeZone: String, region: String? = nil, extraHolidays: [LocalDate] = [], icsHolidays: [String] = [],
                openingHours: OpeningHours? = nil, excluded: [InstantRange] = [], years: ClosedRange<Int> = BusinessCalendar.defaultYears) {
        self.kind = kind
        self.timeZone = timeZone
        self.region = region
        self.extraHolidays = extraHolidays
        self.icsHolidays = icsHolidays
        self.openingHours = openingHours
        self.excluded = excluded
        self.years = years
    }

    /// Builds the calendar: loads the zone, expands the region's rules and imported days.
    ///
    /// A 24x7 calendar is open through holidays (P1 work never stops); its region is still
    /// validated so a typo is reported rather than ignored.
    /// - Throws: `unknown_time_zone`, `unknown_region`, `malformed_ics`, `unsupported_ics`,
    ///   `empty_opening_hours`, `invalid_opening_hours`.
    public func build(zoneDirectory: String = "/usr/share/zoneinfo") throws(CalendarError) -> BusinessCalendar {
        let zone = try ZoneRules.load(identifier: timeZone, directory: zoneDirectory)
        var holidays: [LocalDate] = []
        let regionRules = try region.map { (code: String) throws(CalendarError) in try HolidayRegion(code: code) }
        var imported: [ICalendarHolidays] = []
        for text in icsHolidays { imported.append(try ICalendarHolidays(parsing: text)) }
        if kind == .business {
            if let r = regionRules { holidays += r.dates(in: years) }
            holidays += extraHolidays
            for ics in imported { holidays += ics.holidays(in: (years.lowerBound - 1)...(years.upperBound + 1)).map(\.date) }
        }
        let hours = openingHours ?? (kind == .business ? .standard : .always)
        return try BusinessCalendar(zone: zone, openingHours: hours, holidays: holidays, excluded: excluded, years: years)
    }
}
