/// One holiday: a local date and its name.
public struct Holiday: Hashable, Sendable, Comparable {
    public var date: LocalDate
    public var name: String

    public init(date: LocalDate, name: String) {
        self.date = date
        self.name = name
    }

    public static func < (a: Holiday, b: Holiday) -> Bool { (a.date, a.name) < (b.date, b.name) }
}

/// Statutory holidays of a support region, computed from rules for any year.
///
/// Region codes are ISO 3166-1 alpha-2 with an optional ISO 3166-2 subdivision
/// (`US`, `CA-ON`, `GB-ENG`, `DE`, `FR`, `NL`, `AU-NSW`). The rules are stated for
/// 2000 onwards; observed (substitute) days follow each region's statute. Any other
/// region is an `unknown_region` error: its days come from explicit lists or iCalendar.
public struct HolidayRegion: Hashable, Sendable {
    public let code: String

    public static let supportedCodes = ["US", "CA-ON", "GB-ENG", "DE", "FR", "NL", "AU-NSW"]
        + RuleBuilder.germanStates.map { "DE-" + $0 }

    /// - Throws: `unknown_region` for a code without rules here.
    public init(code: String) throws(CalendarError) {
        let normalized = String(code.uppercased().map { $0 == "_" ? "-" : $0 })
        guard Self.supportedCodes.contains(normalized) else { throw .unknownRegion(code) }
        self.code = normalized
    }

    /// The holidays whose dates fall in `year`, sorted; two holidays on one date are
    /// listed once with both names joined by "; ".
    public func holidays(in year: Int) -> [Holiday] {
        var byDate: [LocalDate: [String]] = [:]
        // Observed days can cross the year boundary (US: 1 January on a Saturday is
        // observed on 31 December), so look at the neighbouring rule years too.
        for y in (year - 1)...(year + 1) {
            for h in rules(for: y) where h.date.year == year {
                if !(byDate[h.date]?.contains(h.name) ?? false) { byDate[h.date, default: []].append(h.name) }
            }
        }
        return byDate.map { Holiday(date: $0.key, name: $0.value.joined(separator: "; ")) }.sorted()
    }

    /// Every holiday date in `years` (dates may lie one day outside the range).
    public func dates(in years: ClosedRange<Int>) -> [LocalDate] {
        var out: [LocalDate] = []
        for y in (years.lowerBound - 1)...(years.upperBound + 1) {
            for h in rules(for: y) { out.append(h.date) }
        }
        return out
    }

    /// The holidays a rule set produces for rule-year `y` (observed days may fall in y ± 1).
    func rules(for y: Int) -> [Holiday] {
        var r = RuleBuilder(year: y)
        switch code {
        case "US": r.unitedStates()
        case "CA-ON": r.ontario()
        case "GB-ENG": r.england()
        case "DE": r.germany()
        case let c where c.hasPrefix("DE-"):
            r.germany()
            r.germanState(String(c.dropFirst(3)))
        case "FR": r.france()
        case "NL": r.netherlands()
        case "AU-NSW": r.newSouthWales()
        default: break
        }
        return r.out
    }
}

/// Accumulates one year's holidays with the date helpers the rules need.
struct RuleBuilder {
    let year: Int
    var out: [Holiday] = []

    init(year: Int) { self.year = year }

    func date(_ m: Int, _ d: Int) -> LocalDate { .ymd(year, m, d) }

    /// The `n`-th `weekday` of month `m` (n = -1 for the last).
    func nth(_ n: Int, _ weekday: Weekday, of m: Int) -> LocalDate {
        if n > 0 {
            let first = date(m, 1)
            let delta = (weekday.rawValue - first.weekday.rawValue + 7) % 7
            return first.adding(days: delta + 7 * (n - 1))
        }
        let last = date(m, Civil.daysInMonth(year: year, month: m))
        return last.adding(days: -((last.weekday.rawValue - weekday.rawValue + 7) % 7))
    }

    /// Western Easter Sunday (anonymous Gregorian algorithm).
    var easter: LocalDate {
        let a = year % 19, b = year / 100, c = year % 100
        let d = b / 4, e = b % 4, f = (b + 8) / 25, g = (b - f + 1) / 3
        let h = (19 * a + b - d - g + 15) % 30
        let i = c / 4, k = c % 4
        let l = (32 + 2 * e + 2 * i - h - k) % 7
        let m = (a + 11 * h + 22 * l) / 451
        let month = (h + l - 7 * m + 114) / 31
        let day = (h + l - 7 * m + 114) % 31 + 1
        return date(month, day)
    }

    mutating func add(_ d: LocalDate, _ name: String) { out.append(Holiday(date: d, name: name)) }

    /// Saturday → Friday before, Sunday → Monday after (5 U.S.C. 6103(b)).
    mutating func addUS(_ d: LocalDate, _ name: String) {
        add(d, name)
        switch d.weekday {
        case .saturday: add(d.adding(days: -1), name + " (observed)")
        case .sunday: add(d.adding(days: 1), name + " (observed)")
        default: break
        }
    }

    /// Saturday or Sunday → the following Monday.
    mutating func addNextMonday(_ d: LocalDate, _ name: String) {
        add(d, name)
        switch d.weekday {
        case .saturday: add(d.adding(days: 2), name + " (observed)")
        case .sunday: add(d.adding(days: 1), name + " (observed)")
        default: break
        }
    }

    /// Sunday → the following Monday only.
    mutating func addSundayToMonday(_ d: LocalDate, _ name: String) {
        add(d, name)
        if d.weekday == .sunday { add(d.adding(days: 1), name + " (observed)") }
    }

    /// Saturday → Monday, Sunday → Tuesday (the Christmas/Boxing Day pair).
    mutating func addNextMondayTuesday(_ d: LocalDate, _ name: String) {
        add(d, name)
        switch d.weekday {
        case .saturday, .sunday: add(d.adding(days: 2), name + " (observed)")
        default: break
        }
    }

    // MARK: Regions

    /// US federal holidays, 5 U.S.C. 6103(a). Inauguration Day (6103(c)) is left out:
    /// it applies only to federal employees in the Washington, D.C. area.
    mutating func unitedStates() {
        addUS(date(1, 1), "New Year's Day")
        if year >= 1986 { add(nth(3, .monday, of: 1), "Martin Luther King Jr. Day") }
        add(nth(3, .monday, of: 2), "Washington's Birthday")
        add(nth(-1, .monday, of: 5), "Memorial Day")
        if year >= 2021 { addUS(date(6, 19), "Juneteenth National Independence Day") }
        addUS(date(7, 4), "Independence Day")
        add(nth(1, .monday, of: 9), "Labor Day")
        add(nth(2, .monday, of: 10), "Columbus Day")
        addUS(date(11, 11), "Veterans Day")
        add(nth(4, .thursday, of: 11), "Thanksgiving Day")
        addUS(date(12, 25), "Christmas Day")
    }

    /// Ontario public holidays (Employment Standards Act, 2000, s. 1), as the oracle lists them.
    mutating func ontario() {
        addNextMonday(date(1, 1), "New Year's Day")
        if year >= 2008 { add(nth(3, .monday, of: 2), "Family Day") }
        add(easter.adding(days: -2), "Good Friday")
        // Victoria Day: the Monday before 25 May.
        add(date(5, 24).adding(days: -((date(5, 24).weekday.rawValue - Weekday.monday.rawValue + 7) % 7)), "Victoria Day")
        add(date(7, 1), "Canada Day")
        add(nth(1, .monday, of: 9), "Labor Day")
        add(nth(2, .monday, of: 10), "Thanksgiving Day")
        addNextMonday(date(12, 25), "Christmas Day")
        addNextMondayTuesday(date(12, 26), "Boxing Day")
    }

    /// England bank holidays (Banking and Financial Dealings Act 1971 plus proclamations).
    mutating func england() {
        addNextMonday(date(1, 1), "New Year's Day")
        add(easter.adding(days: -2), "Good Friday")
        add(easter.adding(days: 1), "Easter Monday")
        switch year {
        case 1995, 2020: add(date(5, 8), "May Day") // moved to VE Day anniversaries
        default: add(nth(1, .monday, of: 5), "May Day")
        }
        switch year {
        case 2002: add(date(6, 4), "Spring Bank Holiday")
        case 2012: add(date(6, 4), "Spring Bank Holiday")
        case 2022: add(date(6, 2), "Spring Bank Holiday")
        default: add(nth(-1, .monday, of: 5), "Spring Bank Holiday")
        }
        add(nth(-1, .monday, of: 8), "Late Summer Bank Holiday")
        let christmas = date(12, 25)
        add(christmas, "Christmas Day")
        if christmas.weekday == .saturday || christmas.weekday == .sunday { add(christmas.adding(days: 2), "Christmas Day (observed)") }
        addNextMondayTuesday(date(12, 26), "Boxing Day")
        // One-off days by royal proclamation.
        switch year {
        case 1999: add(date(12, 31), "Millennium Celebrations")
        case 2002: add(date(6, 3), "Golden Jubilee of Elizabeth II")
        case 2011: add(date(4, 29), "Wedding of William and Catherine")
        case 2012: add(date(6, 5), "Diamond Jubilee of Elizabeth II")
        case 2022:
            add(date(6, 3), "Platinum Jubilee of Elizabeth II")
            add(date(9, 19), "State Funeral of Queen Elizabeth II")
        case 2023: add(date(5, 8), "Coronation of Charles III")
        default: break
        }
    }

    /// German nationwide holidays (no subdivision: state holidays are not included).
    mutating func germany() {
        add(date(1, 1), "New Year's Day")
        add(easter.adding(days: -2), "Good Friday")
        add(easter.adding(days: 1), "Easter Monday")
        add(date(5, 1), "Labor Day")
        add(easter.adding(days: 39), "Ascension Day")
        add(easter.adding(days: 50), "Pentecost Monday")
        if year >= 1990 { add(date(10, 3), "German Unity Day") }
        if year == 2017 { add(date(10, 31), "Reformation Day") }
        add(date(12, 25), "Christmas Day")
        add(date(12, 26), "Second Day of Christmas")
    }

    static let germanStates = ["BB", "BE", "BW", "BY", "HB", "HE", "HH", "MV", "NI", "NW", "RP", "SH", "SL", "SN", "ST", "TH"]

    /// State public holidays on top of the national ones (Feiertagsgesetze der Länder). Days that
    /// only apply to predominantly Catholic municipalities (Assumption in Bavaria, Corpus Christi
    /// in parts of Saxony and Thuringia) are not state-wide and are left to explicit lists.
    mutating func germanState(_ state: String) {
        let epiphany = ["BW", "BY", "ST"], corpusChristi = ["BW", "BY", "HE", "NW", "RP", "SL"]
        let allSaints = ["BW", "BY", "NW", "RP", "SL"]
        if epiphany.contains(state) { add(date(1, 6), "Epiphany") }
        if state == "BE" && year >= 2019 || state == "MV" && year >= 2023 { add(date(3, 8), "Women's Day") }
        if state == "BE" {
            // One-off Berlin holidays by state law.
            switch year {
            case 2020: add(date(5, 8), "75th anniversary of the liberation from Nazism and the end of the Second World War in Europe")
            case 2025: add(date(5, 8), "80th anniversary of the liberation from Nazism and the end of the Second World War in Europe")
            case 2028: add(date(6, 17), "75th anniversary of the East German uprising of 1953")
            default: break
            }
        }
        if state == "BB" {
            add(easter, "Easter Sunday")
            add(easter.adding(days: 49), "Whit Sunday")
        }
        if corpusChristi.contains(state) { add(easter.adding(days: 60), "Corpus Christi") }
        if state == "SL" { add(date(8, 15), "Assumption Day") }
        if state == "TH" && year >= 2019 { add(date(9, 20), "World Children's Day") }
        if ["BB", "MV", "SN", "ST", "TH"].contains(state) || (["HB", "HH", "NI", "SH"].contains(state) && year >= 2018) {
            if year != 2017 { add(date(10, 31), "Reformation Day") }
        }
        if allSaints.contains(state) { add(date(11, 1), "All Saints' Day") }
        if state == "SN" {
            // Repentance and Prayer Day: the Wednesday before 23 November.
            let nov22 = date(11, 22)
            add(nov22.adding(days: -((nov22.weekday.rawValue - Weekday.wednesday.rawValue + 7) % 7)), "Repentance and Prayer Day")
        }
    }

    /// French public holidays (Code du travail, art. L3133-1); Whit Monday was a
    /// working "solidarity day" 2005–2007.
    mutating func france() {
        add(date(1, 1), "New Year's Day")
        add(easter.adding(days: 1), "Easter Monday")
        add(date(5, 1), "Labor Day")
        add(date(5, 8), "Victory Day")
        add(easter.adding(days: 39), "Ascension Day")
        if !(2005...2007).contains(year) { add(easter.adding(days: 50), "Pentecost Monday") }
        add(date(7, 14), "National Day")
        add(date(8, 15), "Assumption Day")
        add(date(11, 1), "All Saints' Day")
        add(date(11, 11), "Armistice Day")
        add(date(12, 25), "Christmas Day")
    }

    /// Dutch public holidays (Algemene termijnenwet); Liberation Day every fifth year.
    mutating func netherlands() {
        add(date(1, 1), "New Year's Day")
        add(easter.adding(days: -2), "Good Friday")
        add(easter, "Easter Sunday")
        add(easter.adding(days: 1), "Easter Monday")
        let kings = year >= 2014 ? date(4, 27) : date(4, 30)
        add(kings.weekday == .sunday ? kings.adding(days: -1) : kings, year >= 2014 ? "King's Day" : "Queen's Day")
        if year % 5 == 0 { add(date(5, 5), "Liberation Day") }
        add(easter.adding(days: 39), "Ascension Day")
        add(easter.adding(days: 49), "Pentecost")
        add(easter.adding(days: 50), "Pentecost Monday")
        add(date(12, 25), "Christmas Day")
        add(date(12, 26), "Second Day of Christmas")
    }

    /// New South Wales public holidays (Public Holidays Act 2010; before 2011 the Banks and
    /// Bank Holidays Act 1912, which only substituted days falling on a Sunday).
    mutating func newSouthWales() {
        let modern = year >= 2011
        if modern { addNextMonday(date(1, 1), "New Year's Day") } else { addSundayToMonday(date(1, 1), "New Year's Day") }
        let australia = date(1, 26)
        if modern {
            // Australia Day moves (not adds) to Monday when it falls on a weekend.
            switch australia.weekday {
            case .saturday: add(australia.adding(days: 2), "Australia Day")
            case .sunday: add(australia.adding(days: 1), "Australia Day")
            default: add(australia, "Australia Day")
            }
        } else {
            addSundayToMonday(australia, "Australia Day")
        }
        add(easter.adding(days: -2), "Good Friday")
        add(easter.adding(days: -1), "Easter Saturday")
        if modern { add(easter, "Easter Sunday") }
        add(easter.adding(days: 1), "Easter Monday")
        // ANZAC Day gets a weekend substitute only for 2026 and 2027 (NSW proclamation).
        if !modern { addSundayToMonday(date(4, 25), "ANZAC Day") } else if (2026...2027).contains(year) { addNextMonday(date(4, 25), "ANZAC Day") } else { add(date(4, 25), "ANZAC Day") }
        add(nth(2, .monday, of: 6), year >= 2023 ? "King's Birthday" : "Queen's Birthday")
        add(nth(1, .monday, of: 10), "Labor Day")
        if modern {
            addNextMondayTuesday(date(12, 25), "Christmas Day")
            addNextMondayTuesday(date(12, 26), "Boxing Day")
        } else {
            add(nth(1, .monday, of: 8), "Bank Holiday")
            let christmas = date(12, 25)
            add(christmas, "Christmas Day")
            if christmas.weekday == .sunday { add(christmas.adding(days: 2), "Christmas Day (observed)") }
            addSundayToMonday(date(12, 26), "Boxing Day")
        }
        if year == 2022 { add(date(9, 22), "National Day of Mourning for Queen Elizabeth II") }
    }
}
