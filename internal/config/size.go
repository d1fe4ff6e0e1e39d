package config

import (
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// sizeUnits are the units of a byte size, upper-cased, with their values.
var sizeUnits = map[string]uint64{
	"": 1, "B": 1,
	"KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12, "PB": 1e15,
	"KIB": 1 << 10, "MIB": 1 << 20, "GIB": 1 << 30, "TIB": 1 << 40, "PIB": 1 << 50,
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
	mult, ok := sizeUnits[unit]
	if !ok {
		return 0, fmt.Errorf("invalid size %q: unknown unit %q; use B, KB, MB, GB, TB, PB, KiB, MiB, GiB, TiB or PiB", s, s[i:])
	}
	// bytes = (whole.frac digits) * mult / 10^len(frac), truncated.
	n, _ := new(big.Int).SetString(whole+frac, 10)
	n.Mul(n, new(big.Int).SetUint64(mult))
	n.Quo(n, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(len(frac))), nil))
	if !n.IsUint64() {
		return 0, errors.New("size is too large (more than 2^64-1 bytes)")
	}
	return n.Uint64(), nil
}
