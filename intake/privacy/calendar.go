package privacy

import (
	"crypto/rand"
	"encoding/hex"
	"strings"
	"time"
)

// DefaultDue is SUBJECT_REQUEST_DUE's documented default: the working days
// within which a request is answered when Service.Due is zero.
const DefaultDue = 3

// Almaty is the time of the office that answers the requests: Kazakhstan
// has one zone, UTC+5, since 1 March 2024, without daylight saving. A fixed
// zone keeps due dates independent of the host's tzdata (before 2024a it
// still says UTC+6 for Asia/Almaty).
var Almaty = time.FixedZone("Asia/Almaty", 5*60*60)

type monthDay struct {
	month time.Month
	day   int
}

// fixedHolidays are Kazakhstan's public holidays that fall on the same date
// every year: New Year (1–2 January), Orthodox Christmas (7 January),
// International Women's Day (8 March), Nauryz (21–23 March), Unity Day
// (1 May), Defender of the Fatherland Day (7 May), Victory Day (9 May),
// Capital Day (6 July), Constitution Day (30 August), Republic Day
// (25 October) and Independence Day (16 December).
//
// Not included: Kurban Ait, whose date follows the lunar calendar and is set
// each year, and the days off the government moves or adds by decree
// (a holiday falling on a weekend moves the day off to the next working
// day). Leaving them out can only make a due date earlier, never later than
// the law allows.
var fixedHolidays = map[monthDay]bool{
	{time.January, 1}: true, {time.January, 2}: true, {time.January, 7}: true,
	{time.March, 8}: true, {time.March, 21}: true, {time.March, 22}: true, {time.March, 23}: true,
	{time.May, 1}: true, {time.May, 7}: true, {time.May, 9}: true,
	{time.July, 6}: true, {time.August, 30}: true, {time.October, 25}: true, {time.December, 16}: true,
}

// isWorkingDay reports whether the Almaty date of d is a working day.
func isWorkingDay(d time.Time) bool {
	d = d.In(Almaty)
	if wd := d.Weekday(); wd == time.Saturday || wd == time.Sunday {
		return false
	}
	return !fixedHolidays[monthDay{d.Month(), d.Day()}]
}

// DueDate is when a request received at received must be answered: the end
// (23:59:59 in Almaty) of the n-th working day after the day it came in. The
// day of receipt does not count, as a period set in days starts the day
// after its event. n <= 0 means DefaultDue.
func DueDate(received time.Time, n int) time.Time {
	if n <= 0 {
		n = DefaultDue
	}
	r := received.In(Almaty)
	day := time.Date(r.Year(), r.Month(), r.Day(), 12, 0, 0, 0, Almaty) // noon: AddDate never crosses a date line
	for n > 0 {
		day = day.AddDate(0, 0, 1)
		if isWorkingDay(day) {
			n--
		}
	}
	return time.Date(day.Year(), day.Month(), day.Day(), 23, 59, 59, 0, Almaty)
}

// newReference draws a request reference, "SR-20261124-7F3A9C": the Almaty
// date it was received and 24 random bits, so it says nothing about whom
// it concerns and cannot be guessed.
func newReference(received time.Time) string {
	b := make([]byte, 3)
	rand.Read(b)
	return "SR-" + received.In(Almaty).Format("20060102") + "-" + strings.ToUpper(hex.EncodeToString(b))
}
