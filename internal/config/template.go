package config

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// templateError is an undefined variable found by expand, with its position
// in the input (1-based line and column in bytes).
type templateError struct {
	Line, Col int
	Name      string
	Braced    bool // written as ${NAME}
}

// Error describes the undefined variable and how to fix it.
func (e templateError) Error() string {
	if e.Name == "" {
		return "empty variable name in ${}; write $$ for a literal $"
	}
	ref := "$" + e.Name
	if e.Braced {
		ref = "${" + e.Name + "}"
	}
	return fmt.Sprintf("undefined variable %s: set %s in horust's environment, give a default with ${%s:-default}, or write $$ for a literal $",
		ref, e.Name, e.Name)
}

// expand templates text with variables from lookup, by the rules of the
// shellexpand crate (version 3) that the original Horust applies to the whole
// raw text of every service file:
//
//   - $NAME and ${NAME} are replaced by the value of NAME. For $NAME the name
//     is the longest run of letters, digits and '_' (digits may start it, so
//     $1 looks up "1"); ${NAME} ends at the first '}'.
//   - ${NAME:-default} gives the text between ":-" and the first '}' when
//     NAME is unset (not expanded further); a set but empty NAME gives "".
//   - $$ is a literal $, and a $ followed by anything else stays as it is; a
//     "${" with no '}' after it stays as it is.
//   - A '~' that is the very first character, followed by '/' or the end,
//     becomes $HOME (when HOME is set).
//   - Replacement values are not expanded again.
//
// Unlike the original, a TOML comment line (its first non-blank character
// is '#', outside a multi-line string) is left as it is: a commented-out
// key may name a variable that is not set.
//
// An undefined variable (and ${}) is an error; expand collects every one
// of them, leaves the reference as written, and goes on.
//
// lines maps the lines of the result to those of text: lines[k] is the line
// of text that line k+1 of the result comes from (values with newlines make
// the result longer).
func expand(text string, lookup func(string) (string, bool)) (result string, lines []int, errs []templateError) {
	var out strings.Builder
	out.Grow(len(text))
	lines = []int{1}
	line, lineStart := 1, 0 // in text
	// emit writes s for the input text[from:to]; verbatim says s is that
	// input itself.
	emit := func(s string, from, to int, verbatim bool) {
		first := line
		for j := from; j < to; j++ {
			if text[j] == '\n' {
				line++
				lineStart = j + 1
			}
		}
		k := 0
		for j := 0; j < len(s); j++ {
			if s[j] == '\n' {
				k++
				if verbatim {
					lines = append(lines, first+k)
				} else {
					lines = append(lines, line)
				}
			}
		}
		out.WriteString(s)
	}
	i := 0
	if strings.HasPrefix(text, "~") && (len(text) == 1 || text[1] == '/') {
		if home, ok := lookup("HOME"); ok {
			emit(home, 0, 1, false)
			i = 1
		}
	}
	comments := commentLines(text)
	for i < len(text) {
		j := strings.IndexByte(text[i:], '$')
		if j < 0 {
			emit(text[i:], i, len(text), true)
			break
		}
		if j > 0 {
			emit(text[i:i+j], i, i+j, true)
			i += j
		}
		// text[i] is '$'.
		if comments[line-1] {
			end := len(text)
			if k := strings.IndexByte(text[i:], '\n'); k >= 0 {
				end = i + k
			}
			emit(text[i:end], i, end, true)
			i = end
			continue
		}
		if i+1 == len(text) {
			emit("$", i, i+1, true)
			break
		}
		next := text[i+1]
		switch {
		case next == '$':
			emit("$", i, i+2, false)
			i += 2
		case next == '{':
			end := strings.IndexByte(text[i+2:], '}')
			if end < 0 {
				emit("${", i, i+2, true)
				i += 2
				continue
			}
			to := i + 3 + end
			body := text[i+2 : to-1]
			name, def, hasDef := strings.Cut(body, ":-")
			if v, ok := lookup(name); ok && name != "" {
				emit(v, i, to, false)
			} else if hasDef {
				emit(def, i, to, false)
			} else {
				errs = append(errs, templateError{Line: line, Col: i - lineStart + 1, Name: name, Braced: true})
				emit(text[i:to], i, to, true)
			}
			i = to
		default:
			n := nameLen(text[i+1:])
			if n == 0 {
				emit("$", i, i+1, true)
				i++
				continue
			}
			to := i + 1 + n
			name := text[i+1 : to]
			if v, ok := lookup(name); ok {
				emit(v, i, to, false)
			} else {
				errs = append(errs, templateError{Line: line, Col: i - lineStart + 1, Name: name})
				emit(text[i:to], i, to, true)
			}
			i = to
		}
	}
	return out.String(), lines, errs
}

// nameLen returns the length in bytes of the variable name at the start of
// s: the longest run of Unicode letters, numbers and '_'.
func nameLen(s string) int {
	n := 0
	for n < len(s) {
		r, size := utf8.DecodeRuneInString(s[n:])
		if r != '_' && !unicode.IsLetter(r) && !unicode.IsNumber(r) && !unicode.Is(unicode.Other_Alphabetic, r) {
			break
		}
		n += size
	}
	return n
}

// commentLines reports, for each line of text, whether it is a TOML comment
// line: its first non-blank character is '#' and it does not lie inside a
// multi-line string.
func commentLines(text string) []bool {
	var out []bool
	open := "" // the delimiter of the multi-line string the line starts in
	for l := range strings.SplitSeq(text, "\n") {
		out = append(out, open == "" && strings.HasPrefix(strings.TrimLeft(l, " \t"), "#"))
		open = scanLine(l, open)
	}
	return out
}

// scanLine returns the delimiter of the multi-line string (three double
// or three single quotes) still open at the end of the TOML line l, given
// the one open at its start ("" for none). One-line strings and comments
// are skipped whole.
func scanLine(l, open string) string {
	for i := 0; i < len(l); {
		switch {
		case open != "":
			j := closing(l[i:], open)
			if j < 0 {
				return open
			}
			i, open = i+j+3, ""
		case l[i] == '#':
			return ""
		case strings.HasPrefix(l[i:], `"""`) || strings.HasPrefix(l[i:], "'''"):
			open, i = l[i:i+3], i+3
		case l[i] == '"' || l[i] == '\'':
			j := closing(l[i+1:], l[i:i+1])
			if j < 0 {
				return ""
			}
			i += j + 2
		default:
			i++
		}
	}
	return open
}

// closing is the index in s of the delimiter delim that ends a string, or
// -1: in a basic string (delimited by '"') a delimiter after an odd
// number of backslashes is escaped.
func closing(s, delim string) int {
	for from := 0; ; {
		j := strings.Index(s[from:], delim)
		if j < 0 {
			return -1
		}
		j += from
		n := 0
		for k := j - 1; k >= 0 && s[k] == '\\' && delim[0] == '"'; k-- {
			n++
		}
		if n%2 == 0 {
			return j
		}
		from = j + 1
	}
}
