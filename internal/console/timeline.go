package console

import (
	"fmt"
	"html"
	"html/template"
	"strings"
	"time"
)

// timelineDays is how many days the HSM page's timeline shows.
const timelineDays = 30

// day is what happened on one UTC day.
type day struct {
	Date                     time.Time // midnight UTC
	BackupsOK, BackupsFailed int
	DrillsPass, DrillsFail   int
	KeyChanges               int // keys or key versions created or updated
}

// event is one thing for the timeline.
type event struct {
	At   time.Time
	Kind string // "backup", "drill", "key"
	OK   bool
}

// bucket sorts events into the timelineDays days that end with today
// (UTC); older and future events are left out.
func bucket(events []event, now time.Time) []day {
	today := now.UTC().Truncate(24 * time.Hour)
	first := today.AddDate(0, 0, -(timelineDays - 1))
	days := make([]day, timelineDays)
	for i := range days {
		days[i].Date = first.AddDate(0, 0, i)
	}
	for _, e := range events {
		i := int(e.At.UTC().Sub(first) / (24 * time.Hour))
		if e.At.Before(first) || i < 0 || i >= timelineDays {
			continue
		}
		d := &days[i]
		switch {
		case e.Kind == "backup" && e.OK:
			d.BackupsOK++
		case e.Kind == "backup":
			d.BackupsFailed++
		case e.Kind == "drill" && e.OK:
			d.DrillsPass++
		case e.Kind == "drill":
			d.DrillsFail++
		case e.Kind == "key":
			d.KeyChanges++
		}
	}
	return days
}

// Timeline geometry, in SVG user units.
const (
	tlCol    = 22 // width of a day
	tlLeft   = 80 // room for the row labels
	tlTop    = 14
	tlRow    = 24
	tlBars   = 40 // height of the key-change bars
	tlHeight = tlTop + 2*tlRow + tlBars + 28
)

// timelineSVG draws the days as inline SVG: a row of backups (a green dot
// when all succeeded, red when one failed), a row of drills (the same),
// and bars of key changes per day. Every mark has a <title> for a tooltip
// and the figure has a text alternative. Only numbers and escaped text go
// into the markup.
func timelineSVG(days []day) template.HTML {
	width := tlLeft + tlCol*len(days) + 10
	maxKeys := 1
	for _, d := range days {
		maxKeys = max(maxKeys, d.KeyChanges)
	}
	var b strings.Builder
	var sumOK, sumFail, drillOK, drillFail, keys int
	for _, d := range days {
		sumOK += d.BackupsOK
		sumFail += d.BackupsFailed
		drillOK += d.DrillsPass
		drillFail += d.DrillsFail
		keys += d.KeyChanges
	}
	desc := fmt.Sprintf("Last %d days: %d backups succeeded, %d failed; %d drills passed, %d failed; %d key changes",
		len(days), sumOK, sumFail, drillOK, drillFail, keys)
	fmt.Fprintf(&b, `<svg class="timeline" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="%s">`,
		width, tlHeight, width, tlHeight, html.EscapeString(desc))
	fmt.Fprintf(&b, `<title>%s</title>`, html.EscapeString(desc))
	label := func(y int, s string) {
		fmt.Fprintf(&b, `<text x="4" y="%d" font-size="11" fill="#444">%s</text>`, y+4, html.EscapeString(s))
	}
	yBackup, yDrill := tlTop+tlRow/2, tlTop+tlRow+tlRow/2
	yBarsBottom := tlTop + 2*tlRow + tlBars
	label(yBackup, "backups")
	label(yDrill, "drills")
	label(yBarsBottom-tlBars/2, "key changes")
	for i, d := range days {
		x := tlLeft + i*tlCol + tlCol/2
		date := d.Date.Format("2006-01-02")
		if i%2 == 0 {
			fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="#f4f4f4"/>`, x-tlCol/2, tlTop, tlCol, 2*tlRow+tlBars)
		}
		mark := func(y, ok, fail int, what, okWord, failWord string) {
			if ok+fail == 0 {
				fmt.Fprintf(&b, `<circle cx="%d" cy="%d" r="2" fill="#bbb"><title>%s: no %s</title></circle>`, x, y, date, what)
				return
			}
			color, cls := "#2e7d32", "ok"
			if fail > 0 {
				color, cls = "#c62828", "fail"
			}
			fmt.Fprintf(&b, `<circle class="%s-%s" cx="%d" cy="%d" r="6" fill="%s"><title>%s: %d %s %s, %d %s</title></circle>`,
				what, cls, x, y, color, date, ok, what, okWord, fail, failWord)
		}
		mark(yBackup, d.BackupsOK, d.BackupsFailed, "backups", "succeeded", "failed")
		mark(yDrill, d.DrillsPass, d.DrillsFail, "drills", "passed", "failed")
		if d.KeyChanges > 0 {
			h := max(2, d.KeyChanges*tlBars/maxKeys)
			fmt.Fprintf(&b, `<rect class="keys" x="%d" y="%d" width="%d" height="%d" fill="#1565c0"><title>%s: %d key changes</title></rect>`,
				x-tlCol/2+3, yBarsBottom-h, tlCol-6, h, date, d.KeyChanges)
		}
		if (i%7 == 0 && i < len(days)-4) || i == len(days)-1 {
			fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="10" text-anchor="middle" fill="#444">%s</text>`, x, yBarsBottom+16, d.Date.Format("Jan 2"))
		}
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}
