package config

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// wholeUnits are the units a fraction is rewritten in, largest first.
var wholeUnits = []struct {
	name string
	d    time.Duration
}{{"h", time.Hour}, {"m", time.Minute}, {"s", time.Second}, {"ms", time.Millisecond}, {"us", time.Microsecond}, {"ns", time.Nanosecond}}

// wholeDuration suggests a whole-number spelling of a duration written with
// a fraction: use "1500ms" for "1.5s", "90s" for "1.5m".
func wholeDuration(s string) string {
	d, err := time.ParseDuration(strings.Join(strings.Fields(s), ""))
	if err != nil || d <= 0 {
		return `write a whole number of a smaller unit, e.g. "1500ms" for 1.5 s`
	}
	u := wholeUnits[len(wholeUnits)-1] // every duration is whole in ns
	for _, w := range wholeUnits {
		if d%w.d == 0 {
			u = w
			break
		}
	}
	return fmt.Sprintf("use \"%d%s\"", d/u.d, u.name)
}

// errDurationOverflow is returned for a duration too large for time.Duration
// (about 292 years).
var errDurationOverflow = errors.New("number is too large")

// durationUnit is the length of a humantime unit. Units are
// case-sensitive: "m" is a minute and "M" a month (30.44 days). (A switch,
// not a map: a map literal is built at package initialization, in every
// start.)
func durationUnit(name string) (time.Duration, bool) {
	switch name {
	case "nanos", "nsec", "ns":
		return time.Nanosecond, true
	case "usec", "us", "µs":
		return time.Microsecond, true
	case "millis", "msec", "ms":
		return time.Millisecond, true
	case "seconds", "second", "secs", "sec", "s":
		return time.Second, true
	case "minutes", "minute", "mins", "min", "m":
		return time.Minute, true
	case "hours", "hour", "hrs", "hr", "h":
		return time.Hour, true
	case "days", "day", "d":
		return 24 * time.Hour, true
	case "weeks", "week", "w":
		return 7 * 24 * time.Hour, true
	case "months", "month", "M":
		return 2_630_016 * time.Second, true
	case "years", "year", "y":
		return 31_557_600 * time.Second, true
	}
	return 0, false
}

// ParseDuration parses a duration by the rules of the humantime crate
// (version 2) that the original Horust uses: one or more spans of
// <integer><unit>, added up, such as "10s", "500ms", "1min", "2h 30m" or
// "1h30m". Blanks may stand between spans and between a number and its unit,
// and blanks inside the digits are skipped ("1 0s" is 10 s). Units are
// case-sensitive (see durationUnit). Fractions ("1.5s"), a bare number
// ("10"), an empty or blank string, an unknown unit and values beyond
// time.Duration's range (about 292 years) are errors.
func ParseDuration(s string) (time.Duration, error) {
	var total time.Duration
	i := skipBlanks(s, 0)
	if i == len(s) {
		return 0, errors.New("value is empty; write a number and a unit, e.g. \"5s\"")
	}
	for i < len(s) {
		// A number: digits, with blanks between them ignored.
		if !isDigit(s[i]) {
			return 0, fmt.Errorf("expected a number at offset %d of %q", i, s)
		}
		var n uint64
	number:
		for i < len(s) {
			r, size := utf8.DecodeRuneInString(s[i:])
			switch {
			case isDigit(s[i]):
				if n > (math.MaxUint64-9)/10 {
					return 0, errDurationOverflow
				}
				n = n*10 + uint64(s[i]-'0')
			case unicode.IsSpace(r):
			case isASCIILetter(s[i]) || r == 'µ':
				break number
			case r == '.':
				return 0, fmt.Errorf("fractions are not allowed: %s", wholeDuration(s))
			default:
				return 0, fmt.Errorf("invalid character %q at offset %d of %q", r, i, s)
			}
			i += size
		}
		// A unit: letters up to a blank, a digit (the next span) or the end.
		start := i
		if i < len(s) && strings.HasPrefix(s[i:], "µ") {
			i += len("µ")
		}
		for i < len(s) && isASCIILetter(s[i]) {
			i++
		}
		if i < len(s) && !isDigit(s[i]) {
			if r, _ := utf8.DecodeRuneInString(s[i:]); !unicode.IsSpace(r) {
				return 0, fmt.Errorf("invalid character %q at offset %d of %q", r, i, s)
			}
		}
		name := s[start:i]
		if name == "" {
			return 0, fmt.Errorf("time unit needed, for example %dsec or %dms", n, n)
		}
		unit, ok := durationUnit(name)
		if !ok {
			return 0, fmt.Errorf("unknown time unit %q; use ns, us, ms, s, min, h, d, w, M (months) or y (and the long forms)", name)
		}
		if n > uint64(math.MaxInt64/unit) {
			return 0, errDurationOverflow
		}
		span := time.Duration(n) * unit
		if total > math.MaxInt64-span {
			return 0, errDurationOverflow
		}
		total += span
		// A blank ends a unit; then only another span may follow.
		i = skipBlanks(s, i)
	}
	return total, nil
}

func isDigit(c byte) bool       { return c >= '0' && c <= '9' }
func isASCIILetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// skipBlanks returns the index of the first non-blank rune of s at or after i.
func skipBlanks(s string, i int) int {
	for i < len(s) {
		r, size := utf8.DecodeRuneInString(s[i:])
		if !unicode.IsSpace(r) {
			break
		}
		i += size
	}
	return i
}
