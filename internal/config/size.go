package config

import (
	"errors"
	"fmt"
	"math/bits"
	"strconv"
	"strings"
)

// sizeUnit is the value of a byte size's unit, upper-cased. (A switch, not
// a map: a map literal is built at package initialization, in every start.)
func sizeUnit(unit string) (uint64, bool) {
	switch unit {
	case "", "B":
		return 1, true
	case "KB":
		return 1e3, true
	case "MB":
		return 1e6, true
	case "GB":
		return 1e9, true
	case "TB":
		return 1e12, true
	case "PB":
		return 1e15, true
	case "KIB":
		return 1 << 10, true
	case "MIB":
		return 1 << 20, true
	case "GIB":
		return 1 << 30, true
	case "TIB":
		return 1 << 40, true
	case "PIB":
		return 1 << 50, true
	}
	return 0, false
}

// ParseSize parses a byte size by the rules of the bytefmt crate (0.1.7) that
// the original Horust uses: digits with an optional fraction, optional
// spaces, and an optional unit, case-insensitive: B; KB, MB, GB, TB, PB
// (powers of 1000); KiB, MiB, GiB, TiB, PiB (powers of 1024). A bare number
// is bytes. The result is truncated to whole bytes: "1.5KB" is 1500,
// "110 MiB" is 115343360. Leading blanks, other units ("100 M", "1K") and
// sizes beyond 2^64-1 bytes are errors.
//
// Unlike bytefmt, which multiplies in floating point and saturates, the
// arithmetic here is exact ("1.001KB" is 1001 bytes) and an overflow is an
// error.
func ParseSize(s string) (uint64, error) {
	i := 0
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	whole := s[:i]
	if whole == "" {
		return 0, fmt.Errorf("invalid size %q: write a number and an optional unit, e.g. \"100 MB\" or \"10 MiB\"", s)
	}
	frac := ""
	if i < len(s) && s[i] == '.' {
		j := i + 1
		for j < len(s) && isDigit(s[j]) {
			j++
		}
		frac = s[i+1 : j]
		if frac == "" {
			return 0, fmt.Errorf("invalid size %q: a '.' must be followed by digits", s)
		}
		i = j
	}
	for i < len(s) && s[i] == ' ' {
		i++
	}
	unit := strings.ToUpper(s[i:])
	mult, ok := sizeUnit(unit)
	if !ok {
		return 0, fmt.Errorf("invalid size %q: unknown unit %q; use B, KB, MB, GB, TB, PB, KiB, MiB, GiB, TiB or PiB", s, s[i:])
	}
	// bytes = whole*mult + floor(0.frac * mult), exactly: the fraction is
	// taken digit by digit from the last, floor((d*mult + t)/10) at each,
	// which stays below mult and gives the same floor as exact arithmetic.
	tooLarge := errors.New("size is too large (more than 2^64-1 bytes)")
	w, err := strconv.ParseUint(whole, 10, 64)
	if err != nil {
		return 0, tooLarge
	}
	var t uint64
	for i := len(frac) - 1; i >= 0; i-- {
		t = (uint64(frac[i]-'0')*mult + t) / 10
	}
	hi, lo := bits.Mul64(w, mult)
	n, carry := bits.Add64(lo, t, 0)
	if hi != 0 || carry != 0 {
		return 0, tooLarge
	}
	return n, nil
}
